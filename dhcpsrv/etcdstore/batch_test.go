package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/internal/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// txnLog records the transactions a store sends: the number of
// comparisons of each write (read-only ones are counted apart).
type txnLog struct {
	mu     sync.Mutex
	writes []int
	reads  int
}

func (g *txnLog) wrap(next txnFunc) txnFunc {
	return func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
		g.mu.Lock()
		if len(cmps) > 0 {
			g.writes = append(g.writes, len(cmps))
		} else {
			g.reads++
		}
		g.mu.Unlock()
		return next(ctx, cmps, then, els)
	}
}

func (g *txnLog) snapshot() ([]int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.writes...), g.reads
}

// gate holds the write loop before its next batch until open is called,
// so that the claims queued meanwhile go into one transaction.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate  { return &gate{ch: make(chan struct{})} }
func (g *gate) wait() { <-g.ch }
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func openTest(t testing.TB, e *etcdtest.Etcd, cfg Config, h hooks) *Store {
	t.Helper()
	c := e.Client()
	t.Cleanup(func() { c.Close() })
	cfg.Client = c
	if cfg.Prefix == "" {
		cfg.Prefix = "batch/" + t.Name()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second // a loaded machine, a disk flush per commit
	}
	s, err := open(t.Context(), cfg, h)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func testMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x52, 0x54, 0, 0xbb, byte(i >> 8), byte(i)}
}
func testIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 97, byte(i >> 8), byte(i)}) }
func testLease(m net.HardwareAddr, a netip.Addr) dhcpsrv.Lease {
	return dhcpsrv.Lease{IP: a, MAC: m, Expiry: time.Now().Add(time.Hour).Truncate(time.Second), State: dhcpsrv.LeaseBound}
}

// putAll runs one Put per lease concurrently, once n of them are queued
// behind the gate, and returns their errors in order.
func putAll(t *testing.T, s *Store, g *gate, leases []dhcpsrv.Lease) []error {
	t.Helper()
	errs := make([]error, len(leases))
	var wg sync.WaitGroup
	for i, l := range leases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(t.Context(), l)
		}()
	}
	require.Eventually(t, func() bool { return s.writes.len() == len(leases) }, 10*time.Second, time.Millisecond)
	g.open()
	wg.Wait()
	return errs
}

// modRevs returns the mod revision of every key under the store's prefix.
func modRevs(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	resp, err := s.cli.Get(t.Context(), s.prefix, clientv3.WithPrefix())
	require.NoError(t, err)
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.ModRevision
	}
	return out
}

// TestBatchOneConflict: a group commit in which one claim lost its address
// to another server (a write the store's cache has not seen) fails as a
// whole; every other claim is then committed alone, the losing one gets
// ErrConflict, and nothing of it is written.
func TestBatchOneConflict(t *testing.T) {
	e := etcdtest.Start(t)
	g, log := newGate(), &txnLog{}
	var s *Store
	var raced atomic.Bool
	h := hooks{beforeBatch: g.wait, txn: func(next txnFunc) txnFunc {
		next = log.wrap(next)
		return func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
			if len(cmps) > 0 && raced.CompareAndSwap(false, true) {
				// Another server binds address 3 first, directly.
				other := testLease(testMAC(100), testIP(3))
				v, err := json.Marshal(other)
				assert.NoError(t, err)
				_, err = s.cli.Txn(ctx).Then(clientv3.OpPut(s.ipKey(other.IP), string(v)),
					clientv3.OpPut(s.macKey(other.MAC), string(v))).Commit()
				assert.NoError(t, err)
			}
			return next(ctx, cmps, then, els)
		}
	}}
	s = openTest(t, e, Config{}, h)
	var leases []dhcpsrv.Lease
	for i := 1; i <= 5; i++ {
		leases = append(leases, testLease(testMAC(i), testIP(i)))
	}
	errs := putAll(t, s, g, leases)
	for i, err := range errs {
		if leases[i].IP == testIP(3) {
			assert.ErrorIs(t, err, dhcpsrv.ErrConflict, "the claim that lost")
			continue
		}
		assert.NoError(t, err, "claim %d", i)
	}
	writes, _ := log.snapshot()
	require.NotEmpty(t, writes)
	assert.Equal(t, 10, writes[0], "all five claims (address and MAC each) were in the first transaction")
	assert.Len(t, writes, 1+4, "then each winner alone")

	got, ok, err := s.LookupMAC(t.Context(), testMAC(3))
	require.NoError(t, err)
	assert.False(t, ok, "the losing MAC is bound to nothing: %+v", got)
	got, ok, err = s.LookupMAC(t.Context(), testMAC(100))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, testIP(3), got.IP)
	for _, i := range []int{1, 2, 4, 5} {
		got, ok, err := s.LookupMAC(t.Context(), testMAC(i))
		require.NoError(t, err)
		require.True(t, ok, "MAC %d", i)
		assert.Equal(t, testIP(i), got.IP)
	}
}

// TestBatchSplitAtOpLimit: claims queued together are committed in as few
// transactions as MaxTxnOps allows, each within it.
func TestBatchSplitAtOpLimit(t *testing.T) {
	e := etcdtest.Start(t)
	g, log := newGate(), &txnLog{}
	s := openTest(t, e, Config{MaxTxnOps: 8}, hooks{beforeBatch: g.wait, txn: log.wrap})
	var leases []dhcpsrv.Lease
	for i := range 10 {
		leases = append(leases, testLease(testMAC(i), testIP(i)))
	}
	for i, err := range putAll(t, s, g, leases) {
		require.NoError(t, err, "claim %d", i)
	}
	writes, _ := log.snapshot()
	assert.Equal(t, []int{8, 8, 4}, writes, "two keys per claim, at most 8 comparisons per transaction")

	// Keys written by one transaction share its revision.
	perRev := map[int64]int{}
	for _, rev := range modRevs(t, s) {
		perRev[rev]++
	}
	assert.Len(t, perRev, 3)
	for rev, n := range perRev {
		assert.LessOrEqual(t, n, 8, "revision %d", rev)
	}
}

// TestBatchSameKey: two claims on one key never share a transaction (etcd
// refuses a key put twice in one): the later waits for the next batch and
// is judged on what the first wrote.
func TestBatchSameKey(t *testing.T) {
	e := etcdtest.Start(t)
	g, log := newGate(), &txnLog{}
	s := openTest(t, e, Config{}, hooks{beforeBatch: g.wait, txn: log.wrap})
	first := testLease(testMAC(1), testIP(1))
	renewal := first
	renewal.Expiry = renewal.Expiry.Add(time.Hour)
	other := testLease(testMAC(2), testIP(2))
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, l := range []dhcpsrv.Lease{first, renewal, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(t.Context(), l)
		}()
		// In this order in the queue.
		require.Eventually(t, func() bool { return s.writes.len() == i+1 }, 10*time.Second, time.Millisecond)
	}
	g.open()
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "claim %d", i)
	}
	writes, _ := log.snapshot()
	assert.Equal(t, []int{4, 2}, writes, "first and other together, the renewal next")
	got, ok, err := s.LookupMAC(t.Context(), first.MAC)
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, renewal.Expiry.Equal(got.Expiry), "the later claim was written last")
}

// TestBatchAckAfterCommit: a Put returns only once the transaction holding
// its claim has returned from etcd, even when etcd applied it already, and
// a transaction that fails fails every claim in it.
func TestBatchAckAfterCommit(t *testing.T) {
	e := etcdtest.Start(t)
	hold := make(chan struct{})
	inTxn := make(chan struct{}, 16)
	var fail atomic.Bool
	s := openTest(t, e, Config{Timeout: 2 * time.Second, RetryAfter: 50 * time.Millisecond}, hooks{txn: func(next txnFunc) txnFunc {
		return func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
			if len(cmps) == 0 {
				return next(ctx, cmps, then, els)
			}
			if fail.Load() {
				return nil, errors.New("injected failure")
			}
			resp, err := next(ctx, cmps, then, els)
			inTxn <- struct{}{}
			<-hold // committed in etcd, not yet answered
			return resp, err
		}
	}})
	l := testLease(testMAC(1), testIP(1))
	done := make(chan error, 1)
	go func() { done <- s.Put(t.Context(), l) }()
	<-inTxn
	got, err := s.cli.Get(t.Context(), s.ipKey(l.IP))
	require.NoError(t, err)
	require.Len(t, got.Kvs, 1, "etcd has the record")
	select {
	case err := <-done:
		t.Fatalf("Put returned %v before its transaction did", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(hold)
	require.NoError(t, <-done)

	fail.Store(true)
	errs := make(chan error, 3)
	for i := 2; i <= 4; i++ {
		go func() { errs <- s.Put(t.Context(), testLease(testMAC(i), testIP(i))) }()
	}
	for range 3 {
		assert.ErrorIs(t, <-errs, dhcpsrv.ErrStoreUnavailable)
	}
}

// TestBatchLookups: LookupMAC calls queued while a read is in flight share
// the next linearizable read, and each gets its own MAC's binding.
func TestBatchLookups(t *testing.T) {
	e := etcdtest.Start(t)
	log := &txnLog{}
	const n = 40
	var s *Store
	var armed atomic.Bool
	var sent atomic.Int64 // lookups in reads that reached etcd
	s = openTest(t, e, Config{}, hooks{txn: func(next txnFunc) txnFunc {
		next = log.wrap(next)
		return func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
			if len(cmps) == 0 && armed.Load() {
				// The reads in flight wait until every lookup is
				// either in one of them or queued.
				sent.Add(int64(len(then)))
				assert.Eventually(t, func() bool { return sent.Load()+int64(s.reads.len()) == n }, 10*time.Second, time.Millisecond)
			}
			return next(ctx, cmps, then, els)
		}
	}})
	for i := range n / 2 {
		require.NoError(t, s.Put(t.Context(), testLease(testMAC(i), testIP(i))))
	}
	_, reads0 := log.snapshot()
	armed.Store(true)
	var wg sync.WaitGroup
	type res struct {
		l   dhcpsrv.Lease
		ok  bool
		err error
	}
	out := make([]res, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, ok, err := s.LookupMAC(t.Context(), testMAC(i))
			out[i] = res{l, ok, err}
		}()
	}
	wg.Wait()
	for i, r := range out {
		require.NoError(t, r.err, "lookup %d", i)
		if i < n/2 {
			require.True(t, r.ok, "lookup %d", i)
			assert.Equal(t, testIP(i), r.l.IP)
		} else {
			assert.False(t, r.ok, "lookup %d", i)
		}
	}
	_, reads := log.snapshot()
	assert.LessOrEqual(t, reads-reads0, 2, "the read in flight, then one read for all the lookups queued meanwhile")
}

// TestBatchTooManyOps: an etcd whose --max-txn-ops is below MaxTxnOps
// makes the store send smaller transactions, not report an outage.
func TestBatchTooManyOps(t *testing.T) {
	e := etcdtest.Start(t)
	g, log := newGate(), &txnLog{}
	s := openTest(t, e, Config{}, hooks{beforeBatch: g.wait, txn: func(next txnFunc) txnFunc {
		next = log.wrap(next)
		return func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
			if max(len(cmps), len(then), len(els)) > 5 {
				return nil, rpctypes.ErrTooManyOps
			}
			return next(ctx, cmps, then, els)
		}
	}})
	var leases []dhcpsrv.Lease
	for i := range 12 {
		leases = append(leases, testLease(testMAC(i), testIP(i)))
	}
	for i, err := range putAll(t, s, g, leases) {
		require.NoError(t, err, "claim %d", i)
	}
	assert.LessOrEqual(t, s.maxOps.Load(), int64(5))
	for i, l := range leases {
		got, ok, err := s.LookupMAC(t.Context(), l.MAC)
		require.NoError(t, err, fmt.Sprint("lookup ", i))
		require.True(t, ok)
		assert.Equal(t, l.IP, got.IP)
	}
}

// TestBatchTooManyOpsReads: the same for batched lookups.
func TestBatchTooManyOpsReads(t *testing.T) {
	e := etcdtest.Start(t)
	g, log := newGate(), &txnLog{}
	var refused atomic.Int64
	s := openTest(t, e, Config{}, hooks{beforeReads: g.wait, txn: func(next txnFunc) txnFunc {
		next = log.wrap(next)
		return func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
			if len(cmps) == 0 && len(then) > 4 {
				refused.Add(1)
				return nil, rpctypes.ErrTooManyOps
			}
			return next(ctx, cmps, then, els)
		}
	}})
	const n = 12
	for i := range n {
		require.NoError(t, s.Put(t.Context(), testLease(testMAC(i), testIP(i))))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, ok, err := s.LookupMAC(t.Context(), testMAC(i))
			if err == nil && (!ok || l.IP != testIP(i)) {
				err = fmt.Errorf("got %v %v", l.IP, ok)
			}
			errs[i] = err
		}()
	}
	require.Eventually(t, func() bool { return s.reads.len() == n }, 10*time.Second, time.Millisecond)
	g.open()
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "lookup %d", i)
	}
	assert.Positive(t, refused.Load(), "the first read held all %d lookups", n)
	assert.LessOrEqual(t, s.maxOps.Load(), int64(4))
}

// BenchmarkPut compares claims group-committed (Put) with the same claims
// written one transaction each (putAlone), from 64 goroutines: the
// concurrency of the DHCP benchmark.
func BenchmarkPut(b *testing.B) {
	e := etcdtest.Start(b)
	for _, mode := range []string{"group", "alone"} {
		b.Run(mode, func(b *testing.B) {
			s := openTest(b, e, Config{Prefix: "bench/" + mode}, hooks{})
			var next atomic.Int64
			b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					l := testLease(testMAC(i), netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}))
					var err error
					if mode == "group" {
						err = s.Put(b.Context(), l)
					} else {
						v, _ := l.MarshalJSON()
						err = s.putAlone(b.Context(), l, string(v), nil)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkLookupMAC measures batched lookups from 64 goroutines, half of
// them of bound MACs.
func BenchmarkLookupMAC(b *testing.B) {
	e := etcdtest.Start(b)
	s := openTest(b, e, Config{Prefix: "bench/lookup"}, hooks{})
	for i := range 256 {
		if err := s.Put(b.Context(), testLease(testMAC(i), testIP(i))); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.LookupMAC(b.Context(), testMAC(int(next.Add(1)%512))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
