// Package etcdstore is a dhcpsrv.SharedLeaseStore on etcd, so that several
// pxekit servers on one segment (or behind one relay) hand out addresses
// from one lease table. It lives apart from dhcpsrv so that programs using
// dhcpsrv alone do not compile the etcd client.
//
// Layout under Config.Prefix (one JSON lease, as dhcpsrv.Lease marshals it,
// per key):
//
//	PREFIX/leases/ip/<address>  the latest record of the address
//	PREFIX/leases/mac/<mac>     a copy of the record bound to the MAC
//
// A claim (one Put) compares the mod revisions of the address key, of the
// MAC key and of the key of the MAC the address belonged to before, and
// writes them all or nothing: the conflict rule (dhcpsrv.CheckClaim) is
// judged on exactly the records the write replaces. etcd answers a
// transaction once a quorum has it in its log on disk, which is the
// durability a server needs before it ACKs.
//
// Claims are group-committed: the claims of concurrent Puts go into one
// transaction whose If holds every claim's comparisons, so that one raft
// round and one disk flush commit them all. A batch is sent as soon as the
// previous one has returned (no timer adds latency), holds at most
// Config.MaxTxnOps comparisons, and never two claims on one key (the later
// waits for the next batch, judged on what the first wrote). Each Put
// returns once the transaction holding its claim has returned: nil only
// when etcd committed it. When a batch fails its comparisons (another
// server wrote one of its keys), the transaction brings the current
// records back and every claim of the batch is written again in a
// transaction of its own, so that one conflicting claim never refuses the
// others. LookupMAC calls are batched alike, into one linearizable read
// sent after each of them began. A renewal is a claim like any other,
// committed before Put returns: left unwritten, the stored expiry would
// come before the one the client was ACKed, and another server could bind
// the address in between.
//
// While etcd does not answer, calls fail with dhcpsrv.ErrStoreUnavailable;
// after a failure they fail at once for Config.RetryAfter before the next
// attempt reaches etcd, so that a server does not queue a timeout per
// request. The client reconnects by itself and the watch resumes from the
// last revision seen (or reloads everything after a compaction).
package etcdstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/internal/etcdcache"
	"github.com/pxekit/pxekit/internal/etcdguard"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config configures a Store.
type Config struct {
	// Client is the etcd client; the Store uses it and never closes it.
	// Required.
	Client *clientv3.Client
	// Prefix is the key prefix shared by the servers of one lease table,
	// without a trailing slash. Default "pxekit/dhcp".
	Prefix string
	// Timeout bounds every request to etcd. Default 2 s.
	Timeout time.Duration
	// RetryAfter is how long calls fail at once after etcd did not answer,
	// before one is let through to try again. Default 1 s.
	RetryAfter time.Duration
	// MaxTxnOps bounds the comparisons (1 to 3 per claim) of one group
	// commit and the keys of one batched lookup. It must not exceed the
	// etcd server's --max-txn-ops; should it anyway, the store halves
	// it and logs a warning. Zero means 128, etcd's default; other
	// values below 3 are refused.
	MaxTxnOps int
	// Logger receives the store's logs (etcd unreachable, at most one line
	// per minute while it lasts, and its return); nil means silent.
	Logger *slog.Logger
}

// Store is a dhcpsrv.SharedLeaseStore on etcd. Create it with New.
type Store struct {
	cli    *clientv3.Client
	prefix string // with trailing slash
	log    *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards cache, sending, closed
	cache  map[string]rec
	closed bool
	// sending holds the records of the group commit in flight by key,
	// so that the watch's echo of them needs no decoding.
	sending map[string]sent

	// subMu orders the watch's dispatches against Watch's replay, so a
	// subscriber sees every record in commit order.
	subMu sync.Mutex
	subs  map[int]func(dhcpsrv.Lease)
	subID int
	next  int64 // revision the watch resumes from; watch goroutine only

	guard etcdguard.Guard // etcd's health: fail fast, outages logged

	writes *queue[*claim]  // claims waiting for the next group commit
	reads  *queue[*lookup] // LookupMAC calls waiting for the next read
	maxOps atomic.Int64    // Config.MaxTxnOps, halved if etcd refuses it

	commitTxn   txnFunc // sends every transaction
	beforeBatch func()  // see hooks
	beforeReads func()  // see hooks
}

// txnFunc sends one transaction to etcd.
type txnFunc func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error)

// hooks let the package's tests watch and steer what reaches etcd.
type hooks struct {
	// txn, if set, wraps the function that sends transactions.
	txn func(next txnFunc) txnFunc
	// beforeBatch and beforeReads, if set, run each time before the
	// write or the read loop takes what is queued (to gather requests
	// into one batch).
	beforeBatch, beforeReads func()
}

// sent is a record being written: its value and the lease it encodes.
type sent struct {
	val string
	l   dhcpsrv.Lease
}

// rec is the cached state of one key: its lease, its mod revision (0 when
// absent) and the revision of the newest change seen (see etcdcache).
type rec = etcdcache.Entry[dhcpsrv.Lease]

// New checks cfg, loads the lease table into the store's cache and starts
// watching the prefix. It fails if etcd does not answer within Timeout.
func New(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, hooks{})
}

func open(ctx context.Context, cfg Config, h hooks) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("etcdstore: Config.Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "pxekit/dhcp"
	}
	if strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("etcdstore: prefix %q ends with a slash", cfg.Prefix)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	switch {
	case cfg.MaxTxnOps == 0:
		cfg.MaxTxnOps = 128
	case cfg.MaxTxnOps < 3:
		return nil, fmt.Errorf("etcdstore: MaxTxnOps %d is below 3, the comparisons of one claim", cfg.MaxTxnOps)
	}
	s := &Store{cli: cfg.Client, prefix: cfg.Prefix + "/",
		log: cfg.Logger, cache: map[string]rec{}, sending: map[string]sent{}, subs: map[int]func(dhcpsrv.Lease){}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.guard = etcdguard.Guard{What: "etcd lease store", DownNote: "renewals are answered from memory, new leases refused",
		Unavailable: dhcpsrv.ErrStoreUnavailable, Timeout: cfg.Timeout, RetryAfter: cfg.RetryAfter, Log: s.log}
	s.writes, s.reads = newQueue[*claim](), newQueue[*lookup]()
	s.maxOps.Store(int64(cfg.MaxTxnOps))
	s.commitTxn = func(ctx context.Context, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
		return s.cli.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
	}
	if h.txn != nil {
		s.commitTxn = h.txn(s.commitTxn)
	}
	s.beforeBatch, s.beforeReads = h.beforeBatch, h.beforeReads
	s.ctx, s.cancel = context.WithCancel(context.Background())
	rev, err := s.reload(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.next = rev + 1
	s.wg.Add(3)
	go s.watchLoop()
	go s.writeLoop()
	go s.readLoop()
	return s, nil
}

func (s *Store) ipKey(ip netip.Addr) string { return s.prefix + "leases/ip/" + ip.String() }
func (s *Store) macKey(mac net.HardwareAddr) string {
	return s.prefix + "leases/mac/" + strings.ToLower(mac.String())
}
func (s *Store) isIPKey(k string) bool { return strings.HasPrefix(k, s.prefix+"leases/ip/") }

// decode reads a record written by this package; anything else under the
// prefix is an error (someone else's data, or corruption), never a panic.
func decode(key string, v []byte) (dhcpsrv.Lease, error) {
	var l dhcpsrv.Lease
	if err := json.Unmarshal(v, &l); err != nil {
		return l, fmt.Errorf("etcdstore: key %q: %w", key, err)
	}
	return l, nil
}

// do runs one request against etcd with the store's timeout, failing fast
// while etcd is known to be down.
func (s *Store) do(ctx context.Context, f func(ctx context.Context) error) error {
	if s.ctx.Err() != nil {
		return dhcpsrv.ErrStoreClosed
	}
	return s.guard.Do(ctx, f)
}

// reload reads every key under the prefix into the cache and returns the
// revision it read at.
func (s *Store) reload(ctx context.Context) (int64, error) {
	var resp *clientv3.GetResponse
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.cli.Get(ctx, s.prefix+"leases/", clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	cache := make(map[string]rec, len(resp.Kvs))
	s.mu.Lock()
	for k, r := range s.cache {
		if r.Seen > rev { // learnt after this read: keep
			cache[k] = r
		}
	}
	s.mu.Unlock()
	for _, kv := range resp.Kvs {
		if _, newer := cache[string(kv.Key)]; newer {
			continue
		}
		l, err := decode(string(kv.Key), kv.Value)
		if err != nil {
			s.log.Warn("etcd lease store: record skipped", "err", err)
			continue
		}
		cache[string(kv.Key)] = rec{Val: l, Rev: kv.ModRevision, Seen: rev}
	}
	s.mu.Lock()
	for k, r := range s.cache {
		if _, ok := cache[k]; !ok && r.Seen > rev { // learnt meanwhile
			cache[k] = r
		}
	}
	s.cache = cache
	s.mu.Unlock()
	return rev, nil
}

// Load implements dhcpsrv.LeaseStore: every address record, read from etcd.
func (s *Store) Load(ctx context.Context) ([]dhcpsrv.Lease, error) {
	if _, err := s.reload(ctx); err != nil {
		return nil, err
	}
	return s.cachedLeases(), nil
}

// cachedLeases is every address record in the cache.
func (s *Store) cachedLeases() []dhcpsrv.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dhcpsrv.Lease
	for k, r := range s.cache {
		if r.Rev != 0 && s.isIPKey(k) {
			out = append(out, r.Val)
		}
	}
	return out
}

// LookupMAC implements dhcpsrv.SharedLeaseStore with a linearizable read,
// sent after the call began (batched with the lookups queued meanwhile).
func (s *Store) LookupMAC(ctx context.Context, mac net.HardwareAddr) (dhcpsrv.Lease, bool, error) {
	key := s.macKey(mac)
	r, err := s.lookup(ctx, key)
	if err != nil {
		return dhcpsrv.Lease{}, false, err
	}
	if len(r.kvs) == 0 {
		s.remember(key, rec{Seen: r.rev})
		return dhcpsrv.Lease{}, false, nil
	}
	kv := r.kvs[0]
	l, err := decode(key, kv.Value)
	if err != nil {
		return dhcpsrv.Lease{}, false, err
	}
	s.remember(key, rec{Val: l, Rev: kv.ModRevision, Seen: r.rev})
	return l, true, nil
}

// remember caches r for key unless the cache has seen a newer change.
func (s *Store) remember(key string, r rec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	etcdcache.Put(s.cache, key, r)
}

func (s *Store) cached(key string) rec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache[key]
}

// maxAttempts bounds the compare-and-set retries of one claim written
// alone; each failed attempt means another server wrote one of the same
// keys meanwhile.
const maxAttempts = 8

// Put implements dhcpsrv.SharedLeaseStore. The claim joins the next group
// commit (see the package doc) and Put returns once the transaction that
// holds it has returned from etcd: nil only when etcd committed it.
func (s *Store) Put(ctx context.Context, l dhcpsrv.Lease) error {
	if !l.IP.Is4() {
		return fmt.Errorf("etcdstore: lease address %v is not IPv4", l.IP)
	}
	// MarshalJSON itself: json.Marshal would only check and compact
	// what it writes, compact already.
	val, err := l.MarshalJSON()
	if err != nil {
		return fmt.Errorf("etcdstore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &claim{ctx: ctx, l: l, val: string(val), done: make(chan error, 1)}
	if !s.writes.push(c) {
		return dhcpsrv.ErrStoreClosed
	}
	select {
	case err = <-c.done:
	case <-ctx.Done():
		// The claim may still be committed, which is the safe
		// direction: the lease is not granted, the address stays taken
		// until it expires.
		return ctx.Err()
	}
	if err == errAlone {
		return s.putAlone(ctx, l, string(val), c.fresh)
	}
	return err
}

// plan is the transaction of one claim: the keys it compares with the
// mod revisions they must still have, and what it writes.
type plan struct {
	keys    []string
	revs    []int64
	ops     []clientv3.Op
	writes  []string // keys put, cached with the lease afterwards
	deletes []string
}

// plan judges l (marshalled as val) with dhcpsrv.CheckClaim on the records
// get returns and builds its transaction. keys is set even when the rule
// refuses the claim, so that the caller can tell whether the records were
// read from etcd or from the cache.
func (s *Store) plan(l dhcpsrv.Lease, val string, get func(string) rec, now time.Time) (plan, error) {
	var p plan
	ipK, macK := s.ipKey(l.IP), ""
	if len(l.MAC) > 0 {
		macK = s.macKey(l.MAC)
	}
	cur := get(ipK)
	var bound rec
	p.keys = append(p.keys, ipK)
	if macK != "" {
		bound = get(macK)
		p.keys = append(p.keys, macK)
	}
	oldK := ""
	if len(cur.Val.MAC) > 0 && !bytes.Equal(cur.Val.MAC, l.MAC) {
		oldK = s.macKey(cur.Val.MAC)
		p.keys = append(p.keys, oldK)
	}
	if err := dhcpsrv.CheckClaim(cur.Val, bound.Val, l, now); err != nil {
		return p, err
	}
	for _, k := range p.keys {
		p.revs = append(p.revs, get(k).Rev)
	}
	p.ops = append(p.ops, clientv3.OpPut(ipK, val))
	p.writes = append(p.writes, ipK)
	if macK != "" {
		switch {
		case l.State != dhcpsrv.LeaseDeclined:
			p.ops = append(p.ops, clientv3.OpPut(macK, val))
			p.writes = append(p.writes, macK)
		case bound.Rev != 0 && bound.Val.IP == l.IP:
			p.ops = append(p.ops, clientv3.OpDelete(macK))
			p.deletes = append(p.deletes, macK)
		}
	}
	if oldK != "" {
		if old := get(oldK); old.Rev != 0 && old.Val.IP == l.IP {
			p.ops = append(p.ops, clientv3.OpDelete(oldK))
			p.deletes = append(p.deletes, oldK)
		}
	}
	return p, nil
}

// committed caches what a committed plan wrote, at revision rev.
func (s *Store) committed(p plan, l dhcpsrv.Lease, rev int64) {
	for _, k := range p.writes {
		s.remember(k, rec{Val: l, Rev: rev, Seen: rev})
	}
	for _, k := range p.deletes {
		s.remember(k, rec{Seen: rev})
	}
}

// putAlone writes one claim in transactions of its own: the claims that
// the cache refuses (it may be stale) and those of a group commit that
// failed. fresh holds records read from etcd for this claim already.
// Records come from fresh, else from the cache; a failed comparison
// brings the current ones, and the rule is judged again on them.
func (s *Store) putAlone(ctx context.Context, l dhcpsrv.Lease, val string, fresh map[string]rec) error {
	if fresh == nil {
		fresh = map[string]rec{}
	}
	get := func(k string) rec {
		if r, ok := fresh[k]; ok {
			return r
		}
		return s.cached(k)
	}
	for range maxAttempts {
		p, err := s.plan(l, val, get, time.Now())
		if err != nil {
			stale := false
			for _, k := range p.keys {
				if _, ok := fresh[k]; !ok {
					stale = true
				}
			}
			if !stale {
				return err
			}
			if err := s.read(ctx, p.keys, fresh); err != nil {
				return err
			}
			continue
		}
		cmps := make([]clientv3.Cmp, len(p.keys))
		elseOps := make([]clientv3.Op, len(p.keys))
		for i, k := range p.keys {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", p.revs[i])
			elseOps[i] = clientv3.OpGet(k)
		}
		var resp *clientv3.TxnResponse
		err = s.do(ctx, func(ctx context.Context) error {
			var err error
			resp, err = s.commitTxn(ctx, cmps, p.ops, elseOps)
			return err
		})
		if err != nil {
			return err
		}
		rev := resp.Header.Revision
		if resp.Succeeded {
			s.committed(p, l, rev)
			return nil
		}
		for i, k := range p.keys {
			fresh[k] = s.fromRange(k, resp.Responses[i].GetResponseRange().GetKvs(), rev)
		}
	}
	return fmt.Errorf("%w: %v: too many concurrent writes", dhcpsrv.ErrConflict, l.IP)
}

// read fetches keys in one transaction into fresh.
func (s *Store) read(ctx context.Context, keys []string, fresh map[string]rec) error {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k)
	}
	var resp *clientv3.TxnResponse
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.commitTxn(ctx, nil, ops, nil)
		return err
	})
	if err != nil {
		return err
	}
	for i, k := range keys {
		fresh[k] = s.fromRange(k, resp.Responses[i].GetResponseRange().GetKvs(), resp.Header.Revision)
	}
	return nil
}

// fromRange turns the answer of a Get of key into a rec and caches it.
func (s *Store) fromRange(key string, kvs []*mvccpb.KeyValue, rev int64) rec {
	r, err := etcdcache.FromRange(key, kvs, rev, decode)
	if err != nil {
		s.log.Warn("etcd lease store: record unreadable, treated as free", "err", err)
	}
	s.remember(key, r)
	return r
}

// Watch implements dhcpsrv.SharedLeaseStore. The store watches the prefix
// from New to Close whether or not anyone subscribes; Watch replays the
// cached records and then forwards what the store's watch sees.
func (s *Store) Watch(ctx context.Context, fn func(dhcpsrv.Lease)) error {
	s.subMu.Lock()
	all := s.cachedLeases()
	for _, l := range all {
		fn(l)
	}
	id := s.subID
	s.subID++
	s.subs[id] = fn
	s.subMu.Unlock()
	defer func() {
		s.subMu.Lock()
		delete(s.subs, id)
		s.subMu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return dhcpsrv.ErrStoreClosed
	}
}

// watchLoop follows the prefix until Close. The etcd client resumes a
// broken watch from the last revision itself; when the watch ends anyway
// (leader lost, compaction), it is opened again from s.next, after a full
// reload when the revisions it needs were compacted away.
func (s *Store) watchLoop() {
	defer s.wg.Done()
	etcdguard.Follow(s.ctx, s.cli, s.prefix+"leases/", &s.guard,
		func() int64 { return s.next }, s.apply,
		func(ctx context.Context) error {
			rev, err := s.reload(ctx)
			if err != nil {
				return err
			}
			s.next = rev + 1
			s.dispatchAll()
			return nil
		})
}

// apply takes watch events into the cache and hands the address records to
// the subscribers.
func (s *Store) apply(evs []*clientv3.Event) {
	// subMu first, as Watch takes it: a new subscriber's replay then
	// comes wholly before or wholly after these events.
	s.subMu.Lock()
	defer s.subMu.Unlock()
	var out []dhcpsrv.Lease
	s.mu.Lock()
	for _, ev := range evs {
		kv := ev.Kv
		k, rev := string(kv.Key), kv.ModRevision
		s.next = max(s.next, rev+1)
		// A read may have brought a newer state of the key into the
		// cache already (Put keeps it); the event still goes to the
		// subscribers, who see the watch's order only.
		if ev.Type == clientv3.EventTypeDelete {
			etcdcache.Put(s.cache, k, rec{Seen: rev})
			continue
		}
		var l dhcpsrv.Lease
		var err error
		// The echo of this store's own writes needs no decoding.
		if old, known := s.cache[k]; known && old.Rev == rev && old.Val.IP.IsValid() {
			l = old.Val // this very revision is cached already
		} else if w, ok := s.sending[k]; ok && w.val == string(kv.Value) {
			l = w.l
		} else {
			l, err = decode(k, kv.Value)
		}
		if err != nil {
			s.log.Warn("etcd lease store: record skipped", "err", err)
			etcdcache.Put(s.cache, k, rec{Rev: rev, Seen: rev})
			continue
		}
		etcdcache.Put(s.cache, k, rec{Val: l, Rev: rev, Seen: rev})
		if s.isIPKey(k) {
			out = append(out, l)
		}
	}
	s.mu.Unlock()
	for _, fn := range s.subs {
		for _, l := range out {
			fn(l)
		}
	}
}

// dispatchAll hands every cached address record to the subscribers, after
// a reload.
func (s *Store) dispatchAll() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	all := s.cachedLeases()
	for _, fn := range s.subs {
		for _, l := range all {
			fn(l)
		}
	}
}

// Close stops the watch; it does not close the etcd client. Calls after
// Close fail with dhcpsrv.ErrStoreClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

var _ dhcpsrv.SharedLeaseStore = (*Store)(nil)
