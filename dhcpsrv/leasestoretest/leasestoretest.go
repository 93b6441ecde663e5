// Package leasestoretest is the contract test suite of dhcpsrv.LeaseStore
// (and dhcpsrv.SharedLeaseStore): what the doc comments of those interfaces
// promise, checked the same way for every implementation.
//
//	func TestContract(t *testing.T) {
//		leasestoretest.Run(t, func(t *testing.T) dhcpsrv.LeaseStore { ... })
//	}
package leasestoretest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Run checks the LeaseStore contract on stores made by newStore, one per
// subtest, each empty; newStore closes them at the end of the test (a
// second Close must be harmless). The SharedLeaseStore part runs when the
// store implements it and is skipped (with a note) otherwise.
func Run(t *testing.T, newStore func(t *testing.T) dhcpsrv.LeaseStore) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, dhcpsrv.LeaseStore)
	}{
		{"EmptyLoad", testEmptyLoad},
		{"RoundTrip", testRoundTrip},
		{"LastWriteWins", testLastWriteWins},
		{"ConcurrentPuts", testConcurrentPuts},
		{"PutAfterClose", testPutAfterClose},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
	for _, c := range []struct {
		name string
		fn   func(*testing.T, dhcpsrv.SharedLeaseStore)
	}{
		{"Shared/AddressTaken", testAddressTaken},
		{"Shared/OneAddressPerMAC", testOneAddressPerMAC},
		{"Shared/ReleaseAndReuse", testReleaseAndReuse},
		{"Shared/ExpiredIsFree", testExpiredIsFree},
		{"Shared/Decline", testDecline},
		{"Shared/LookupMAC", testLookupMAC},
		{"Shared/Race", testRace},
		{"Shared/Watch", testWatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, ok := newStore(t).(dhcpsrv.SharedLeaseStore)
			if !ok {
				t.Skip("not a SharedLeaseStore: used by one server only, the server's view refuses conflicts")
			}
			c.fn(t, s)
		})
	}
}

// RunShared checks what two servers sharing one backend see of each
// other's writes: newPair returns two stores on one, empty, backend.
func RunShared(t *testing.T, newPair func(t *testing.T) (a, b dhcpsrv.SharedLeaseStore)) {
	t.Run("StaleViewRefused", func(t *testing.T) {
		a, b := newPair(t)
		ctx := t.Context()
		// b reads first, so its view (if it keeps one) holds X free.
		_, err := b.Load(ctx)
		require.NoError(t, err)
		require.NoError(t, a.Put(ctx, bound(mac(1), ip(10))))
		assert.ErrorIs(t, b.Put(ctx, bound(mac(2), ip(10))), dhcpsrv.ErrConflict)
		require.NoError(t, b.Put(ctx, bound(mac(1), ip(10))), "the owner renews through either server")
		assert.ErrorIs(t, a.Put(ctx, bound(mac(1), ip(11))), dhcpsrv.ErrConflict, "a's view may not know the renewal")
		l, ok, err := b.LookupMAC(ctx, mac(1))
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, ip(10), l.IP)
	})
	t.Run("WatchSeesOtherServer", func(t *testing.T) {
		a, b := newPair(t)
		got := make(chan dhcpsrv.Lease, 1024)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Watch(ctx, sink(got)) }()
		require.NoError(t, a.Put(t.Context(), bound(mac(3), ip(30))))
		waitFor(t, got, func(l dhcpsrv.Lease) bool { return l.IP == ip(30) && l.MAC.String() == mac(3).String() })
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not return after its context ended")
		}
	})
	t.Run("Race", func(t *testing.T) {
		a, b := newPair(t)
		// Twenty MACs through two servers race for five addresses.
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := map[netip.Addr][]string{}
		for i := range 20 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 5 {
					err := s.Put(t.Context(), bound(mac(100+i), ip(50+j)))
					if err == nil {
						mu.Lock()
						won[ip(50+j)] = append(won[ip(50+j)], mac(100+i).String())
						mu.Unlock()
						return
					}
					if !errors.Is(err, dhcpsrv.ErrConflict) {
						t.Errorf("Put: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		assert.Len(t, won, 5)
		for addr, macs := range won {
			assert.Len(t, macs, 1, "%v granted to %v", addr, macs)
		}
	})
}

func mac(i int) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0, 0xcc, byte(i >> 8), byte(i)} }
func ip(i int) netip.Addr        { return netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}) }

// expiry is an hour ahead, on whole seconds so every encoding keeps it.
func expiry() time.Time { return time.Now().Add(time.Hour).Truncate(time.Second) }

func bound(m net.HardwareAddr, a netip.Addr) dhcpsrv.Lease {
	return dhcpsrv.Lease{IP: a, MAC: m, Hostname: "node-" + a.String(), Expiry: expiry(), State: dhcpsrv.LeaseBound}
}

func byIP(ls []dhcpsrv.Lease) map[netip.Addr]dhcpsrv.Lease {
	m := map[netip.Addr]dhcpsrv.Lease{}
	for _, l := range ls {
		m[l.IP] = l
	}
	return m
}

func load(t *testing.T, s dhcpsrv.LeaseStore) map[netip.Addr]dhcpsrv.Lease {
	t.Helper()
	ls, err := s.Load(t.Context())
	require.NoError(t, err)
	return byIP(ls)
}

func assertLease(t *testing.T, want, got dhcpsrv.Lease) {
	t.Helper()
	assert.Equal(t, want.IP, got.IP)
	assert.Equal(t, want.MAC.String(), got.MAC.String())
	assert.Equal(t, want.Hostname, got.Hostname)
	assert.True(t, want.Expiry.Equal(got.Expiry), "expiry %v, want %v", got.Expiry, want.Expiry)
	assert.Equal(t, want.State, got.State)
}

// sink forwards records to c without ever blocking the store.
func sink(c chan<- dhcpsrv.Lease) func(dhcpsrv.Lease) {
	return func(l dhcpsrv.Lease) {
		select {
		case c <- l:
		default:
		}
	}
}

func waitFor(t *testing.T, c <-chan dhcpsrv.Lease, ok func(dhcpsrv.Lease) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-c:
			if ok(l) {
				return
			}
		case <-timeout:
			t.Fatal("record not delivered within 10 s")
		}
	}
}

func testEmptyLoad(t *testing.T, s dhcpsrv.LeaseStore) {
	assert.Empty(t, load(t, s))
}

func testRoundTrip(t *testing.T, s dhcpsrv.LeaseStore) {
	want := []dhcpsrv.Lease{
		bound(mac(1), ip(1)),
		{IP: ip(2), MAC: mac(2), Expiry: expiry(), State: dhcpsrv.LeaseReleased},
		{IP: ip(3), Expiry: expiry(), State: dhcpsrv.LeaseDeclined},
	}
	for _, l := range want {
		require.NoError(t, s.Put(t.Context(), l))
	}
	got := load(t, s)
	require.Len(t, got, len(want))
	for _, l := range want {
		assertLease(t, l, got[l.IP])
	}
}

func testLastWriteWins(t *testing.T, s dhcpsrv.LeaseStore) {
	l := bound(mac(1), ip(1))
	require.NoError(t, s.Put(t.Context(), l))
	l.Expiry = l.Expiry.Add(time.Hour)
	require.NoError(t, s.Put(t.Context(), l), "renewal")
	l.State = dhcpsrv.LeaseReleased
	require.NoError(t, s.Put(t.Context(), l), "release")
	got := load(t, s)
	require.Len(t, got, 1)
	assertLease(t, l, got[l.IP])
}

func testConcurrentPuts(t *testing.T, s dhcpsrv.LeaseStore) {
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(t.Context(), bound(mac(i), ip(i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "put %d", i)
	}
	got := load(t, s)
	require.Len(t, got, n)
	keys := make([]string, 0, n)
	for a, l := range got {
		assert.Equal(t, a, l.IP)
		keys = append(keys, l.MAC.String())
	}
	sort.Strings(keys)
	assert.Len(t, keys, n)
}

func testPutAfterClose(t *testing.T, s dhcpsrv.LeaseStore) {
	require.NoError(t, s.Close())
	// MemoryStore has nothing to close and keeps working; every store
	// that holds a resource refuses.
	if _, mem := s.(*dhcpsrv.MemoryStore); mem {
		return
	}
	assert.Error(t, s.Put(t.Context(), bound(mac(1), ip(1))))
}

func testAddressTaken(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	ctx := t.Context()
	require.NoError(t, s.Put(ctx, bound(mac(1), ip(1))))
	err := s.Put(ctx, bound(mac(2), ip(1)))
	require.ErrorIs(t, err, dhcpsrv.ErrConflict)
	// A quarantine after a conflict probe (no MAC) may not take it either.
	err = s.Put(ctx, dhcpsrv.Lease{IP: ip(1), Expiry: expiry(), State: dhcpsrv.LeaseDeclined})
	require.ErrorIs(t, err, dhcpsrv.ErrConflict)
	got := load(t, s)
	assert.Equal(t, mac(1).String(), got[ip(1)].MAC.String(), "refused Puts wrote nothing")
}

func testOneAddressPerMAC(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	ctx := t.Context()
	require.NoError(t, s.Put(ctx, bound(mac(1), ip(1))))
	require.ErrorIs(t, s.Put(ctx, bound(mac(1), ip(2))), dhcpsrv.ErrConflict)
	assert.NotContains(t, load(t, s), ip(2))
}

func testReleaseAndReuse(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	ctx := t.Context()
	l := bound(mac(1), ip(1))
	require.NoError(t, s.Put(ctx, l))
	rel := l
	rel.MAC, rel.State = mac(2), dhcpsrv.LeaseReleased
	require.ErrorIs(t, s.Put(ctx, rel), dhcpsrv.ErrConflict, "only the owner releases")
	l.State, l.Expiry = dhcpsrv.LeaseReleased, time.Now().Truncate(time.Second)
	require.NoError(t, s.Put(ctx, l))
	// The released MAC may bind another address, and another MAC this one.
	require.NoError(t, s.Put(ctx, bound(mac(1), ip(2))))
	require.NoError(t, s.Put(ctx, bound(mac(2), ip(1))))
	b, ok, err := s.LookupMAC(ctx, mac(1))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, ip(2), b.IP)
}

func testExpiredIsFree(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	ctx := t.Context()
	old := bound(mac(1), ip(1))
	old.Expiry = time.Now().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, s.Put(ctx, old))
	require.NoError(t, s.Put(ctx, bound(mac(2), ip(1))))
	_, ok, err := s.LookupMAC(ctx, mac(1))
	require.NoError(t, err)
	assert.False(t, ok, "the MAC whose record was replaced has no binding")
	require.NoError(t, s.Put(ctx, bound(mac(1), ip(2))), "and may bind anew")
}

func testDecline(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	ctx := t.Context()
	require.NoError(t, s.Put(ctx, bound(mac(1), ip(1))))
	dec := dhcpsrv.Lease{IP: ip(1), MAC: mac(1), Expiry: expiry(), State: dhcpsrv.LeaseDeclined}
	require.NoError(t, s.Put(ctx, dec), "the owner declines")
	require.ErrorIs(t, s.Put(ctx, bound(mac(2), ip(1))), dhcpsrv.ErrConflict, "quarantined")
	_, ok, err := s.LookupMAC(ctx, mac(1))
	require.NoError(t, err)
	assert.False(t, ok, "a declined address binds no MAC")
	require.NoError(t, s.Put(ctx, bound(mac(1), ip(2))))
}

func testLookupMAC(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	ctx := t.Context()
	_, ok, err := s.LookupMAC(ctx, mac(1))
	require.NoError(t, err)
	assert.False(t, ok)
	want := bound(mac(1), ip(7))
	require.NoError(t, s.Put(ctx, want))
	got, ok, err := s.LookupMAC(ctx, mac(1))
	require.NoError(t, err)
	require.True(t, ok)
	assertLease(t, want, got)
}

func testRace(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(t.Context(), bound(mac(i), ip(1)))
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
			continue
		}
		assert.ErrorIs(t, err, dhcpsrv.ErrConflict, fmt.Sprint("put ", i))
	}
	assert.Equal(t, 1, won, "exactly one MAC gets the address")
}

func testWatch(t *testing.T, s dhcpsrv.SharedLeaseStore) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	require.NoError(t, s.Put(ctx, bound(mac(1), ip(1))))
	got := make(chan dhcpsrv.Lease, 1024)
	go s.Watch(ctx, sink(got))
	waitFor(t, got, func(l dhcpsrv.Lease) bool { return l.IP == ip(1) }) // replayed
	require.NoError(t, s.Put(ctx, bound(mac(2), ip(2))))
	waitFor(t, got, func(l dhcpsrv.Lease) bool { return l.IP == ip(2) && l.State == dhcpsrv.LeaseBound })
}
