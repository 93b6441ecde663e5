package dhcpsrv

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeShared is a SharedLeaseStore in memory, for the server's side of the
// contract without etcd: the conflict rule, the MAC binding, and an outage
// switch. It pushes no live changes (servers see each other through
// LookupMAC and conflicts only).
type fakeShared struct {
	mu   sync.Mutex
	ip   map[netip.Addr]Lease
	mac  map[string]Lease
	down bool
}

func newFakeShared() *fakeShared {
	return &fakeShared{ip: map[netip.Addr]Lease{}, mac: map[string]Lease{}}
}

func (f *fakeShared) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *fakeShared) Load(context.Context) ([]Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Lease
	for _, l := range f.ip {
		out = append(out, l)
	}
	return out, nil
}

func (f *fakeShared) Put(_ context.Context, l Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ErrStoreUnavailable
	}
	cur := f.ip[l.IP]
	if err := CheckClaim(cur, f.mac[string(l.MAC)], l, time.Now()); err != nil {
		return err
	}
	if len(cur.MAC) > 0 && !bytes.Equal(cur.MAC, l.MAC) && f.mac[string(cur.MAC)].IP == l.IP {
		delete(f.mac, string(cur.MAC))
	}
	f.ip[l.IP] = l
	if len(l.MAC) > 0 {
		if l.State == LeaseDeclined {
			if f.mac[string(l.MAC)].IP == l.IP {
				delete(f.mac, string(l.MAC))
			}
		} else {
			f.mac[string(l.MAC)] = l
		}
	}
	return nil
}

func (f *fakeShared) LookupMAC(_ context.Context, mac net.HardwareAddr) (Lease, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Lease{}, false, ErrStoreUnavailable
	}
	l, ok := f.mac[string(mac)]
	return l, ok, nil
}

func (f *fakeShared) Watch(ctx context.Context, fn func(Lease)) error {
	ls, _ := f.Load(ctx)
	for _, l := range ls {
		fn(l)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeShared) Close() error { return nil }

// sharedPair is two servers (10.77.0.1 and 10.77.0.2) on one fakeShared.
func sharedPair(t *testing.T, sub Subnet) (a, b *Server, st *fakeShared) {
	st = newFakeShared()
	a = newTestServer(t, Config{Mode: ModeFull, Leases: st, Subnet: sub})
	b, err := New(Config{Interface: "test0", Mode: ModeFull, ServerIP: netipAddr("10.77.0.2"), Leases: st, Subnet: sub})
	require.NoError(t, err)
	return a, b, st
}

func dora(t *testing.T, s *Server, mac net.HardwareAddr) netip.Addr {
	t.Helper()
	disc := plainDiscover(mac)
	offer, _ := exchange(t, s, disc, 67, zeroSrc)
	require.NotNil(t, offer)
	ack, _ := exchange(t, s, asRequest(disc, s.ServerIP(), addrOf(offer.YourIPAddr)), 67, zeroSrc)
	require.NotNil(t, ack)
	require.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	return addrOf(ack.YourIPAddr)
}

func TestSharedStoreServersAgree(t *testing.T) {
	a, b, _ := sharedPair(t, testSubnet())
	m1, m2 := mustMAC("52:54:00:00:20:01"), mustMAC("52:54:00:00:20:02")
	x := dora(t, a, m1)

	// b has not heard of x: a client asking b for it is refused by the
	// store, and NAKed rather than left waiting.
	nak, _ := exchange(t, b, asRequest(plainDiscover(m2), netip.Addr{}, x), 67, zeroSrc)
	require.NotNil(t, nak)
	assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType())

	// b offers m1 the address the store has for it, not one of its own.
	offer, _ := exchange(t, b, plainDiscover(m1), 67, zeroSrc)
	require.NotNil(t, offer)
	assert.Equal(t, x, addrOf(offer.YourIPAddr))
	ack, _ := exchange(t, b, asRequest(plainDiscover(m1), b.ServerIP(), x), 67, zeroSrc)
	require.NotNil(t, ack)
	assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType(), "the owner renews through the other server")

	// Each server starts its search for free addresses elsewhere.
	assert.NotEqual(t, a.pool.cursor, b.pool.cursor)
}

func TestSharedStoreDown(t *testing.T) {
	a, _, st := sharedPair(t, testSubnet())
	m1, m2 := mustMAC("52:54:00:00:21:01"), mustMAC("52:54:00:00:21:02")
	x := dora(t, a, m1)
	st.setDown(true)

	renew := asRequest(plainDiscover(m1), netip.Addr{}, netip.Addr{})
	renew.ClientIPAddr = x.AsSlice()
	ack, _ := exchange(t, a, renew, 67, zeroSrc)
	require.NotNil(t, ack, "a renewal is answered from the server's view")
	require.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	lt := ack.IPAddressLeaseTime(0)
	assert.True(t, lt > 0 && lt <= time.Hour, "only what is left of the stored lease: %v", lt)

	_, err := a.handle(t.Context(), plainDiscover(m2), 67, zeroSrc)
	assert.ErrorIs(t, err, ErrStoreUnavailable, "no offer without the store")
	_, err = a.handle(t.Context(), asRequest(plainDiscover(m2), netip.Addr{}, netipAddr("10.77.0.150")), 67, zeroSrc)
	assert.ErrorIs(t, err, ErrStoreUnavailable, "no new lease without the store")

	st.setDown(false)
	dora(t, a, m2)
}

func TestSharedStoreReservationReleasesDynamic(t *testing.T) {
	mac := mustMAC("52:54:00:00:22:01")
	st := newFakeShared()
	dyn := Lease{IP: netipAddr("10.77.0.150"), MAC: mac, Expiry: time.Now().Add(time.Hour), State: LeaseBound}
	require.NoError(t, st.Put(t.Context(), dyn))
	sub := testSubnet()
	sub.Reservations = []Reservation{{MAC: mac, IP: netipAddr("10.77.0.20")}}
	s := newTestServer(t, Config{Mode: ModeFull, Leases: st, Subnet: sub})
	assert.Equal(t, netipAddr("10.77.0.20"), dora(t, s, mac))
	st.mu.Lock()
	defer st.mu.Unlock()
	assert.Equal(t, LeaseReleased, st.ip[dyn.IP].State, "the dynamic lease was given back")
	assert.Equal(t, netipAddr("10.77.0.20"), st.mac[string(mac)].IP)
}
