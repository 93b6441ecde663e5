package dhcpsrv

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecideRequest(t *testing.T) {
	a, b := netipAddr("10.77.0.150"), netipAddr("10.77.0.151")
	foreign := netipAddr("192.168.1.5")
	for _, tc := range []struct {
		name string
		f    requestFacts
		want verdict
		why  string
	}{
		{"selecting another server", requestFacts{kind: reqSelecting, ip: a, inSubnet: true, held: a, free: true}, verdictIgnore, ""},
		{"selecting the offer", requestFacts{kind: reqSelecting, ours: true, ip: a, inSubnet: true, held: a, free: true}, verdictAck, ""},
		{"selecting another address than offered", requestFacts{kind: reqSelecting, ours: true, ip: b, inSubnet: true, held: a, free: true}, verdictNak, "not the address held for this client"},
		{"selecting without a record, free", requestFacts{kind: reqSelecting, ours: true, ip: a, inSubnet: true, free: true}, verdictAck, ""},
		{"selecting without a record, taken", requestFacts{kind: reqSelecting, ours: true, ip: a, inSubnet: true}, verdictNak, "address not available"},
		{"selecting without an address", requestFacts{kind: reqSelecting, ours: true}, verdictNak, "no address requested"},
		{"init-reboot wrong network", requestFacts{kind: reqInitReboot, ip: foreign, held: a}, verdictNak, "wrong network"},
		{"init-reboot its lease", requestFacts{kind: reqInitReboot, ip: a, inSubnet: true, held: a, free: true}, verdictAck, ""},
		{"init-reboot another address", requestFacts{kind: reqInitReboot, ip: b, inSubnet: true, held: a, free: true}, verdictNak, "not the address held for this client"},
		{"init-reboot without a record, free", requestFacts{kind: reqInitReboot, ip: b, inSubnet: true, free: true}, verdictAck, ""},
		{"init-reboot without a record, taken", requestFacts{kind: reqInitReboot, ip: b, inSubnet: true}, verdictNak, "address not available"},
		{"renewing its lease", requestFacts{kind: reqRenewing, ip: a, inSubnet: true, held: a, free: true}, verdictAck, ""},
		{"renewing another address", requestFacts{kind: reqRenewing, ip: b, inSubnet: true, held: a, free: true}, verdictNak, "not the address held for this client"},
		{"renewing without a record, free", requestFacts{kind: reqRenewing, ip: b, inSubnet: true, free: true}, verdictAck, ""},
		{"renewing without a record, taken", requestFacts{kind: reqRenewing, ip: b, inSubnet: true}, verdictNak, "address not available"},
		{"renewing outside the subnet", requestFacts{kind: reqRenewing, ip: foreign}, verdictNak, "wrong network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, why := decideRequest(tc.f)
			assert.Equal(t, tc.want, v)
			assert.Equal(t, tc.why, why)
		})
	}
}

// testClock is an injectable clock (Server.now) for hold and lease times.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// addressesOf counts what the pool sets aside for mac now: addresses held
// by a pending offer, and unexpired bound leases.
func addressesOf(s *Server, mac net.HardwareAddr) (held, bound int) {
	now := s.now()
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	for _, e := range s.pool.byIP {
		if e.holdMAC == string(mac) && now.Before(e.holdExpiry) {
			held++
		}
		if string(e.lease.MAC) == string(mac) && e.lease.State == LeaseBound && now.Before(e.lease.Expiry) {
			bound++
		}
	}
	return held, bound
}

func withXID(m *dhcpv4.DHCPv4, i int) *dhcpv4.DHCPv4 {
	m.TransactionID = dhcpv4.TransactionID{0xa5, 0, byte(i >> 8), byte(i)}
	return m
}

func withRequested(ip netip.Addr) func(*dhcpv4.DHCPv4) {
	return func(m *dhcpv4.DHCPv4) { m.Options.Update(dhcpv4.OptRequestedIPAddress(ip.AsSlice())) }
}

// Retransmitted DISCOVERs from one MAC are offered one address, whose hold
// each retransmission refreshes; even with a different option 50 each time.
func TestOneOfferPerMAC(t *testing.T) {
	clk := newTestClock()
	s := newTestServer(t, Config{Mode: ModeFull})
	s.now = clk.now
	mac := mustMAC("52:54:00:00:10:01")
	var first netip.Addr
	for i := range 5 {
		var mods []func(*dhcpv4.DHCPv4)
		if i >= 2 {
			mods = append(mods, withRequested(netipAddr("10.77.0.150").Next().Next()))
		}
		offer, _ := exchange(t, s, withXID(plainDiscover(mac, mods...), i), 67, zeroSrc)
		require.NotNil(t, offer)
		ip := addrOf(offer.YourIPAddr)
		if i == 0 {
			first = ip
		}
		assert.Equal(t, first, ip, "retransmission %d", i)
		held, bound := addressesOf(s, mac)
		assert.Equal(t, 1, held, "retransmission %d", i)
		assert.Zero(t, bound)
		clk.advance(50 * time.Second) // 250 s in all: past offerHold unless refreshed
	}
	clk.advance(-50 * time.Second)
	other := plainDiscover(mustMAC("52:54:00:00:10:02"), withRequested(first))
	offer, _ := exchange(t, s, other, 67, zeroSrc)
	require.NotNil(t, offer)
	assert.NotEqual(t, first, addrOf(offer.YourIPAddr), "the refreshed hold keeps the address for its client")

	// Once the hold has run out without a retransmission, others may have it.
	clk.advance(offerHold + time.Second)
	offer, _ = exchange(t, s, withXID(other, 9), 67, zeroSrc)
	assert.Equal(t, first, addrOf(offer.YourIPAddr))
	held, _ := addressesOf(s, mustMAC("52:54:00:00:10:02"))
	assert.Equal(t, 1, held, "taking a requested address released the MAC's previous offer")
}

// Five REQUESTs from one MAC for five addresses bind one, whatever state
// the REQUESTs claim.
func TestOneBindingPerMAC(t *testing.T) {
	renewing := func(m *dhcpv4.DHCPv4, ip netip.Addr) *dhcpv4.DHCPv4 {
		r := asRequest(m, netip.Addr{}, netip.Addr{})
		r.ClientIPAddr = ip.AsSlice()
		return r
	}
	for _, tc := range []struct {
		name  string
		build func(m *dhcpv4.DHCPv4, ip netip.Addr) *dhcpv4.DHCPv4
	}{
		{"selecting", func(m *dhcpv4.DHCPv4, ip netip.Addr) *dhcpv4.DHCPv4 { return asRequest(m, testServerIP, ip) }},
		{"init-reboot", func(m *dhcpv4.DHCPv4, ip netip.Addr) *dhcpv4.DHCPv4 { return asRequest(m, netip.Addr{}, ip) }},
		{"renewing", renewing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, Config{Mode: ModeFull})
			mac := mustMAC("52:54:00:00:11:01")
			var acked []netip.Addr
			naks := 0
			for i := range 5 {
				ip := netipAddr("10.77.0.150")
				for range i {
					ip = ip.Next()
				}
				ans, _ := exchange(t, s, withXID(tc.build(plainDiscover(mac), ip), i), 67, zeroSrc)
				require.NotNil(t, ans)
				switch ans.MessageType() {
				case dhcpv4.MessageTypeAck:
					acked = append(acked, ip)
				case dhcpv4.MessageTypeNak:
					naks++
				}
			}
			assert.Equal(t, []netip.Addr{netipAddr("10.77.0.150")}, acked, "only a MAC without a record gets a free address")
			assert.Equal(t, 4, naks)
			_, bound := addressesOf(s, mac)
			assert.Equal(t, 1, bound)

			// The NAKed client starts over and is offered its lease.
			offer, _ := exchange(t, s, plainDiscover(mac), 67, zeroSrc)
			assert.Equal(t, "10.77.0.150", offer.YourIPAddr.String())
		})
	}
}

func TestRequestAfterOffer(t *testing.T) {
	clk := newTestClock()
	s := newTestServer(t, Config{Mode: ModeFull})
	s.now = clk.now
	mac := mustMAC("52:54:00:00:12:01")
	disc := plainDiscover(mac)
	offer, _ := exchange(t, s, disc, 67, zeroSrc)
	o := addrOf(offer.YourIPAddr)

	// SELECTING another address than offered: NAK, and the offer stands.
	for i, ip := range []string{"10.77.0.170", "10.77.0.171", "10.77.0.172"} {
		nak, _ := exchange(t, s, withXID(asRequest(disc, testServerIP, netipAddr(ip)), i), 67, zeroSrc)
		require.NotNil(t, nak)
		assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType(), ip)
		assert.Equal(t, "not the address held for this client", nak.Message())
	}
	held, bound := addressesOf(s, mac)
	assert.Equal(t, [2]int{1, 0}, [2]int{held, bound})
	ack, _ := exchange(t, s, asRequest(disc, testServerIP, o), 67, zeroSrc)
	require.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	held, bound = addressesOf(s, mac)
	assert.Equal(t, [2]int{0, 1}, [2]int{held, bound}, "the bound lease replaced the offer")

	// With its lease bound, INIT-REBOOT or RENEWING another address is NAKed.
	nak, _ := exchange(t, s, asRequest(disc, netip.Addr{}, netipAddr("10.77.0.180")), 67, zeroSrc)
	assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType())
	renew := asRequest(disc, netip.Addr{}, netip.Addr{})
	renew.ClientIPAddr = netipAddr("10.77.0.181").AsSlice()
	nak, _ = exchange(t, s, renew, 67, zeroSrc)
	assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType())

	// After the lease expired, the MAC has no record and may bind anew.
	clk.advance(time.Hour + time.Second)
	ack, _ = exchange(t, s, asRequest(disc, netip.Addr{}, netipAddr("10.77.0.182")), 67, zeroSrc)
	assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	_, bound = addressesOf(s, mac)
	assert.Equal(t, 1, bound)
}

// A REQUEST naming another server declines this server's offer, which is
// then free for other clients at once.
func TestRequestForOtherServerDropsOffer(t *testing.T) {
	s := newTestServer(t, Config{Mode: ModeFull})
	mac := mustMAC("52:54:00:00:13:01")
	disc := plainDiscover(mac)
	offer, _ := exchange(t, s, disc, 67, zeroSrc)
	o := addrOf(offer.YourIPAddr)
	none, _ := exchange(t, s, asRequest(disc, netipAddr("10.77.0.2"), o), 67, zeroSrc)
	assert.Nil(t, none)
	held, _ := addressesOf(s, mac)
	assert.Zero(t, held)
	offer, _ = exchange(t, s, plainDiscover(mustMAC("52:54:00:00:13:02"), withRequested(o)), 67, zeroSrc)
	assert.Equal(t, o, addrOf(offer.YourIPAddr))
}

// A reservation added while the MAC held a dynamic lease moves it: the old
// address is NAKed, the DISCOVER that follows gets the reservation.
func TestReservationWins(t *testing.T) {
	path := t.TempDir() + "/leases"
	mac := mustMAC("52:54:00:00:14:01")
	s := newTestServer(t, Config{Mode: ModeFull, LeaseFile: path})
	disc := plainDiscover(mac)
	offer, _ := exchange(t, s, disc, 67, zeroSrc)
	dyn := addrOf(offer.YourIPAddr)
	ack, _ := exchange(t, s, asRequest(disc, testServerIP, dyn), 67, zeroSrc)
	require.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	require.NoError(t, s.Shutdown(t.Context()))

	sub := testSubnet()
	sub.Reservations = []Reservation{{MAC: mac, IP: netipAddr("10.77.0.20")}}
	s = newTestServer(t, Config{Mode: ModeFull, LeaseFile: path, Subnet: sub})
	renew := asRequest(disc, netip.Addr{}, netip.Addr{})
	renew.ClientIPAddr = dyn.AsSlice()
	nak, _ := exchange(t, s, renew, 67, zeroSrc)
	assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType())
	offer, _ = exchange(t, s, disc, 67, zeroSrc)
	assert.Equal(t, "10.77.0.20", offer.YourIPAddr.String())
}

// The offers index never outgrows the address records, whatever number of
// MACs passes through.
func TestOffersIndexBounded(t *testing.T) {
	clk := newTestClock()
	sub := testSubnet()
	sub.Last = netipAddr("10.77.0.109") // 10 addresses
	s := newTestServer(t, Config{Mode: ModeFull, Subnet: sub})
	s.now = clk.now
	for i := range 500 {
		mac := net.HardwareAddr{0x52, 0x54, 0, 0, byte(i >> 8), byte(i)}
		s.handle(t.Context(), plainDiscover(mac), 67, zeroSrc)
		clk.advance(10 * time.Second)
	}
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	assert.LessOrEqual(t, len(s.pool.offers), 10)
	for k, ip := range s.pool.offers {
		assert.Equal(t, k, s.pool.byIP[ip].holdMAC)
	}
}
