package dhcpsrv

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const arpTable = `IP address       HW type     Flags       HW address            Mask     Device
10.77.0.9        0x1         0x2         52:54:00:00:00:09     *        pxe0
10.77.0.10       0x1         0x0         00:00:00:00:00:00     *        pxe0
10.77.0.150      0x1         0x2         52:54:00:99:99:99     *        pxe0
garbage
10.77.0.11       0x1         0x2         not-a-mac             *        pxe0
`

// fakeNeighbors counts reads of a fixed table.
type fakeNeighbors struct {
	reads atomic.Int32
	table string
	err   error
}

func (f *fakeNeighbors) read() ([]byte, error) {
	f.reads.Add(1)
	return []byte(f.table), f.err
}

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestBindingsDHCPWinsOverNeighbors(t *testing.T) {
	n := &fakeNeighbors{table: arpTable}
	b := &Bindings{Neighbors: n.read}
	dhcpMAC := mustMAC("52:54:00:12:34:56")
	b.Bind(dhcpMAC, addr("10.77.0.150"))

	got, ok := b.MAC(addr("10.77.0.150"))
	require.True(t, ok)
	assert.Equal(t, dhcpMAC, got, "DHCP binding wins over the neighbour table")
	assert.Zero(t, n.reads.Load(), "a bound address does not read the neighbour table")

	got, ok = b.MAC(addr("10.77.0.9"))
	require.True(t, ok)
	assert.Equal(t, "52:54:00:00:00:09", got.String())
	_, ok = b.MAC(addr("10.77.0.10"))
	assert.False(t, ok, "incomplete neighbour entry")
	_, ok = b.MAC(addr("10.77.0.11"))
	assert.False(t, ok, "unparsable MAC")
	_, ok = b.MAC(netip.AddrFrom16(addr("10.77.0.9").As16()))
	assert.True(t, ok, "IPv4-mapped addresses are unmapped")
	_, ok = b.MAC(netip.Addr{})
	assert.False(t, ok)

	ip, ok := b.IP(dhcpMAC)
	require.True(t, ok)
	assert.Equal(t, addr("10.77.0.150"), ip)
	_, ok = b.IP(mustMAC("52:54:00:00:00:09"))
	assert.False(t, ok, "IP consults DHCP bindings only")
}

func TestBindingsNeighborsReadAtMostOncePerSecond(t *testing.T) {
	n := &fakeNeighbors{table: arpTable}
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	b := &Bindings{Neighbors: n.read, now: clk.now}
	for range 100 {
		b.MAC(addr("10.77.0.9"))
		b.MAC(addr("10.77.0.99")) // unknown everywhere
	}
	assert.EqualValues(t, 1, n.reads.Load())
	clk.add(999 * time.Millisecond)
	b.MAC(addr("10.77.0.99"))
	assert.EqualValues(t, 1, n.reads.Load())
	clk.add(time.Millisecond)
	b.MAC(addr("10.77.0.99"))
	assert.EqualValues(t, 2, n.reads.Load(), "re-read after one second")

	// A new neighbour shows up after the next read, a failed read forgets
	// the old table.
	n.table += "10.77.0.99 0x1 0x2 52:54:00:00:00:99 * pxe0\n"
	_, ok := b.MAC(addr("10.77.0.99"))
	assert.False(t, ok, "cached")
	clk.add(time.Second)
	_, ok = b.MAC(addr("10.77.0.99"))
	assert.True(t, ok)
	n.err = errors.New("gone")
	clk.add(time.Second)
	_, ok = b.MAC(addr("10.77.0.99"))
	assert.False(t, ok)
	assert.EqualValues(t, 4, n.reads.Load())
}

func TestBindingsMaxEvictsLeastRecentlyBound(t *testing.T) {
	b := &Bindings{Max: 3, Neighbors: func() ([]byte, error) { return nil, nil }}
	mac := func(i int) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0, 0, 0, byte(i)} }
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 77, 0, byte(i)}) }
	for i := 1; i <= 3; i++ {
		b.Bind(mac(i), ip(i))
	}
	b.Bind(mac(1), ip(1)) // bound again: now the most recent
	b.Bind(mac(4), ip(4)) // drops 2
	_, ok := b.MAC(ip(2))
	assert.False(t, ok)
	for _, i := range []int{1, 3, 4} {
		got, ok := b.MAC(ip(i))
		require.True(t, ok, i)
		assert.Equal(t, mac(i), got)
	}

	// Rebinding moves an address or a MAC, never leaves two entries.
	b.Bind(mac(1), ip(9))
	_, ok = b.MAC(ip(1))
	assert.False(t, ok, "mac 1 moved to .9")
	b.Bind(mac(3), ip(9))
	_, ok = b.IP(mac(1))
	assert.False(t, ok, ".9 now belongs to mac 3")
	b.mu.Lock()
	assert.Equal(t, b.lru.Len(), len(b.byIP))
	assert.Equal(t, b.lru.Len(), len(b.byMAC))
	b.mu.Unlock()

	// A flood of distinct clients keeps the table at Max.
	for i := range 10000 {
		b.Bind(net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
	}
	b.mu.Lock()
	assert.Equal(t, 3, b.lru.Len())
	assert.Len(t, b.byIP, 3)
	assert.Len(t, b.byMAC, 3)
	b.mu.Unlock()
}

func TestBindingsNeighborCacheBounded(t *testing.T) {
	var table []byte
	for i := range 100 {
		table = fmt.Appendf(table, "10.0.0.%d 0x1 0x2 52:54:00:00:00:%02x * eth0\n", i+1, i+1)
	}
	m := parseNeighbors(table, 10)
	assert.Len(t, m, 10)
}

func TestBindingsReturnCopies(t *testing.T) {
	b := &Bindings{Neighbors: func() ([]byte, error) { return []byte(arpTable), nil }}
	mac := mustMAC("52:54:00:12:34:56")
	b.Bind(mac, addr("10.77.0.150"))
	mac[5] = 0xff // the caller's slice is not kept
	got, _ := b.MAC(addr("10.77.0.150"))
	assert.Equal(t, "52:54:00:12:34:56", got.String())
	got[0] = 0xff
	got, _ = b.MAC(addr("10.77.0.150"))
	assert.Equal(t, "52:54:00:12:34:56", got.String())

	got, _ = b.MAC(addr("10.77.0.9"))
	got[0] = 0xff
	got, _ = b.MAC(addr("10.77.0.9"))
	assert.Equal(t, "52:54:00:00:00:09", got.String(), "neighbour entries too")
}

func TestBindingsObserve(t *testing.T) {
	mac := mustMAC("52:54:00:12:34:56")
	c := Client{MAC: mac}
	tests := []struct {
		name string
		ev   Event
		want netip.Addr // zero: nothing bound
	}{
		// Full mode: only this server's own ACK is the authority.
		{"offer", Event{Type: EventOffer, IP: addr("10.77.0.100"), Client: c}, netip.Addr{}},
		{"ack", Event{Type: EventAck, IP: addr("10.77.0.101"), Client: c}, addr("10.77.0.101")},
		{"request for another server", Event{Type: EventRequest, Client: Client{MAC: mac, RequestedIP: addr("10.77.0.102")}}, netip.Addr{}},
		{"renewal, ciaddr", Event{Type: EventRequest, Client: Client{MAC: mac, ClientIP: addr("10.77.0.103")}}, netip.Addr{}},
		// Proxy mode: the client's own word is the best there is.
		{"proxy request, option 50", Event{Type: EventRequest, Client: Client{MAC: mac, Proxy: true, RequestedIP: addr("10.77.0.102"), ClientIP: addr("10.77.0.1")}}, addr("10.77.0.102")},
		{"proxy request, ciaddr", Event{Type: EventRequest, Client: Client{MAC: mac, Proxy: true, ClientIP: addr("10.77.0.103")}}, addr("10.77.0.103")},
		{"proxy inform", Event{Type: EventInform, Client: Client{MAC: mac, Proxy: true, ClientIP: addr("10.77.0.104")}}, addr("10.77.0.104")},
		{"proxy discover wish", Event{Type: EventDiscover, Client: Client{MAC: mac, Proxy: true, RequestedIP: addr("10.77.0.105")}}, netip.Addr{}},
		{"proxy discover ciaddr", Event{Type: EventDiscover, Client: Client{MAC: mac, Proxy: true, ClientIP: addr("10.77.0.106")}}, addr("10.77.0.106")},
		{"proxy offer without address", Event{Type: EventOffer, Client: Client{MAC: mac, Proxy: true}}, netip.Addr{}},
		{"proxy ack without address", Event{Type: EventAck, Client: Client{MAC: mac, Proxy: true}}, netip.Addr{}},
		{"nak", Event{Type: EventNak, Client: Client{MAC: mac, Proxy: true, RequestedIP: addr("10.77.0.107")}}, netip.Addr{}},
		{"decline", Event{Type: EventDecline, IP: addr("10.77.0.108"), Client: Client{MAC: mac, Proxy: true, RequestedIP: addr("10.77.0.108")}}, netip.Addr{}},
		{"release", Event{Type: EventRelease, IP: addr("10.77.0.109"), Client: Client{MAC: mac, Proxy: true, ClientIP: addr("10.77.0.109")}}, netip.Addr{}},
		{"zero MAC", Event{Type: EventAck, IP: addr("10.77.0.110"), Client: Client{MAC: make(net.HardwareAddr, 6)}}, netip.Addr{}},
		{"no MAC", Event{Type: EventAck, IP: addr("10.77.0.111")}, netip.Addr{}},
		{"unspecified", Event{Type: EventAck, IP: netip.IPv4Unspecified(), Client: c}, netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Bindings{Neighbors: func() ([]byte, error) { return nil, nil }}
			b.Observe(tt.ev)
			ip, ok := b.IP(tt.ev.Client.MAC)
			assert.Equal(t, tt.want.IsValid(), ok)
			assert.Equal(t, tt.want, ip)
		})
	}
}

func TestBindingsConcurrent(t *testing.T) {
	n := &fakeNeighbors{table: arpTable}
	b := &Bindings{Max: 50, Neighbors: n.read}
	var wg sync.WaitGroup
	start := time.Now()
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				mac := net.HardwareAddr{2, 0, 0, 0, byte(g), byte(i)}
				ip := netip.AddrFrom4([4]byte{10, 2, byte(g), byte(i)})
				b.Observe(Event{Type: EventAck, IP: ip, Client: Client{MAC: mac}})
				b.MAC(ip)
				b.MAC(addr("10.77.0.9"))
				b.IP(mac)
			}
		})
	}
	wg.Wait()
	b.mu.Lock()
	assert.LessOrEqual(t, b.lru.Len(), 50)
	b.mu.Unlock()
	// One read per started second at most, plus the first.
	assert.LessOrEqual(t, int(n.reads.Load()), int(time.Since(start)/time.Second)+1)
}

func FuzzParseNeighbors(f *testing.F) {
	f.Add([]byte(arpTable), 10)
	f.Add([]byte("IP address HW type Flags HW address Mask Device\n"), 1)
	f.Add([]byte("::ffff:10.0.0.1 0x1 0x2 52:54:00:00:00:01 * eth0\n0.0.0.0 0x1 0x2 52:54:00:00:00:01 * eth0"), 5)
	f.Add([]byte("10.0.0.1 0x20 0x2 80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:01:02:03 * ib0\n"), 5)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max <= 0 || max > 1000 {
			max = 1000
		}
		m := parseNeighbors(data, max)
		require.LessOrEqual(t, len(m), max)
		for ip, mac := range m {
			require.True(t, ip.IsValid() && !ip.IsUnspecified() && !ip.Is4In6(), ip)
			require.True(t, usableMAC(mac), mac)
		}
	})
}
