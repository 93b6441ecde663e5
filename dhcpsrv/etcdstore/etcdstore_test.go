package etcdstore_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"testing"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/dhcpsrv/etcdstore"
	"github.com/pxekit/pxekit/dhcpsrv/leasestoretest"
	"github.com/pxekit/pxekit/internal/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newStore opens a store on its own prefix of e, closed with the test.
func newStore(t *testing.T, e *etcdtest.Etcd, prefix string) *etcdstore.Store {
	t.Helper()
	c := e.Client()
	t.Cleanup(func() { c.Close() })
	// Generous: the test machine may be loaded, and each Put waits for a
	// disk flush.
	s, err := etcdstore.New(t.Context(), etcdstore.Config{Client: c, Prefix: prefix, Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	e := etcdtest.Start(t)
	leasestoretest.Run(t, func(t *testing.T) dhcpsrv.LeaseStore {
		return newStore(t, e, "test/"+t.Name())
	})
	leasestoretest.RunShared(t, func(t *testing.T) (a, b dhcpsrv.SharedLeaseStore) {
		return newStore(t, e, "test/"+t.Name()), newStore(t, e, "test/"+t.Name())
	})
}

// lineCounter counts log records by level.
type lineCounter struct {
	mu sync.Mutex
	n  map[slog.Level]int
}

func (c *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *lineCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.n[r.Level]++
	c.mu.Unlock()
	return nil
}
func (c *lineCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *lineCounter) WithGroup(string) slog.Handler      { return c }
func (c *lineCounter) count(l slog.Level) int             { c.mu.Lock(); defer c.mu.Unlock(); return c.n[l] }

func TestOutage(t *testing.T) {
	e := etcdtest.Start(t)
	c := e.Client()
	defer c.Close()
	logs := &lineCounter{n: map[slog.Level]int{}}
	s, err := etcdstore.New(t.Context(), etcdstore.Config{Client: c, Prefix: "outage", Timeout: 500 * time.Millisecond,
		RetryAfter: 200 * time.Millisecond, Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s.Close()
	got := make(chan dhcpsrv.Lease, 64)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.Watch(ctx, func(l dhcpsrv.Lease) {
		select {
		case got <- l:
		default:
		}
	})
	lease := func(i int) dhcpsrv.Lease {
		return dhcpsrv.Lease{IP: netip.AddrFrom4([4]byte{10, 98, 0, byte(i)}), MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)},
			Expiry: time.Now().Add(time.Hour), State: dhcpsrv.LeaseBound}
	}
	require.NoError(t, s.Put(t.Context(), lease(1)))

	e.Stop()
	t0 := time.Now()
	for i := range 20 {
		err := s.Put(t.Context(), lease(2))
		require.ErrorIs(t, err, dhcpsrv.ErrStoreUnavailable, "put %d", i)
		_, _, err = s.LookupMAC(t.Context(), lease(1).MAC)
		require.ErrorIs(t, err, dhcpsrv.ErrStoreUnavailable)
		time.Sleep(50 * time.Millisecond)
	}
	// 40 calls over about a second: most fail at once.
	assert.Less(t, time.Since(t0), 10*time.Second)
	assert.Equal(t, 1, logs.count(slog.LevelWarn), "one warning per outage (then at most one a minute)")

	e.Restart(20 * time.Second)
	require.Eventually(t, func() bool { return s.Put(t.Context(), lease(2)) == nil }, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, 1, logs.count(slog.LevelInfo), "recovery logged once")

	// The watch resumed: a write by another client reaches the subscriber.
	other := newStore(t, e, "outage")
	require.NoError(t, other.Put(t.Context(), lease(3)))
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l := <-got:
			if l.IP == lease(3).IP {
				return
			}
		case <-deadline:
			t.Fatal("the watch did not resume after etcd returned")
		}
	}
}
