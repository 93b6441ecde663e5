package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/pxekit/pxekit/dhcpsrv/etcdstore"
	"github.com/pxekit/pxekit/internal/etcdcache"
	"github.com/pxekit/pxekit/internal/etcdguard"
)

// Several fleet servers share one truth through etcd (-store
// etcd://HOST:PORT[,HOST:PORT...]/PREFIX). Layout under PREFIX:
//
//	PREFIX/inventory               digest of the inventory every server serves
//	PREFIX/state/secret            the secret deriving unknown MACs' tokens
//	PREFIX/state/hosts/<mac>       one Record (JSON, with its token) per MAC
//	PREFIX/dhcp/...                the DHCP leases (dhcpsrv/etcdstore)
//
// What stays per server: its step log (the live steps on /status),
// the addresses DHCP saw each MAC use (pins), its logs, and every file it
// serves (media, loaders, rendered answer files), which each server builds
// from its own copy of the inventory and media.
//
// Failure behaviour, while etcd (its quorum) does not answer:
//
//   - boot loaders, menus and media keep being served from what each server
//     last saw of the state, and DHCP renewals are answered from the lease
//     view in memory (dhcpsrv does that; new leases are refused);
//   - an answer file is served only once its fetch is recorded (the host
//     moves to installing): unrecorded, the request gets 503 and the
//     installer retries, instead of an install that another server could
//     start a second time; a host already installing is asked of etcd
//     too, so a server cut off from etcd cannot install a host that
//     another server saw finish;
//   - reports and re-arms are refused with 503 (the installer's report
//     retries until one is recorded);
//   - the log says so once, then at most once a minute, and again when etcd
//     answers; nothing needs a restart.

// DefaultEtcdTimeout bounds each request to etcd when EtcdStoreConfig
// leaves Timeout zero.
const DefaultEtcdTimeout = 2 * time.Second

// EtcdStoreConfig configures OpenEtcdStore.
type EtcdStoreConfig struct {
	// Client is the etcd client; the store uses it and never closes it.
	// Required.
	Client *clientv3.Client
	// Prefix is the key prefix the servers of one fleet share, without a
	// trailing slash. Required.
	Prefix string
	// InventoryDigest, when set, is compared with the digest stored under
	// PREFIX/inventory (stored there by the first server): a difference
	// refuses to open (ErrInventoryMismatch). See InventoryDigest.
	InventoryDigest string
	// Timeout bounds every request to etcd. Default DefaultEtcdTimeout.
	Timeout time.Duration
	// RetryAfter is how long calls fail at once after etcd did not answer
	// before one tries again. Default 1 s.
	RetryAfter time.Duration
	// Logger receives the store's logs; nil means silent.
	Logger *slog.Logger

	// readOnly (-check) compares the inventory digest without storing
	// it, and the store refuses every change.
	readOnly bool
}

// ErrInventoryMismatch means the servers sharing a prefix were started with
// different inventories.
var ErrInventoryMismatch = errors.New("another inventory is served on this etcd prefix")

// InventoryDigest is the digest of an inventory file's bytes that servers
// sharing a prefix compare: they must serve the same file, byte for byte.
func InventoryDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseStoreURL reads -store etcd://HOST:PORT[,HOST:PORT...]/PREFIX into
// client endpoints (http://HOST:PORT) and the key prefix.
func ParseStoreURL(s string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		return nil, "", fmt.Errorf("-store %q: want etcd://HOST:PORT[,HOST:PORT...]/PREFIX", s)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" || strings.Contains(prefix, "//") {
		return nil, "", fmt.Errorf("-store %q: give a key prefix after the hosts (etcd://HOST:PORT/pxekit/lab)", s)
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return nil, "", fmt.Errorf("-store %q: %q is not HOST:PORT", s, h)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return nil, "", fmt.Errorf("-store %q: %q: bad port", s, h)
		}
		endpoints = append(endpoints, "http://"+net.JoinHostPort(host, port))
	}
	return endpoints, prefix, nil
}

// OpenEtcdStore returns a Store kept in etcd under cfg.Prefix, shared with
// every server using the same prefix. It checks the inventory digest,
// loads every record and watches for other servers' changes until Close.
// It fails if etcd does not answer within Timeout.
func OpenEtcdStore(ctx context.Context, cfg EtcdStoreConfig) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("state: EtcdStoreConfig.Client is required")
	}
	if cfg.Prefix == "" || strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("state: etcd prefix %q: want a non-empty prefix without a trailing slash", cfg.Prefix)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultEtcdTimeout
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	e := &etcdState{cli: cfg.Client, prefix: cfg.Prefix + "/",
		log: cfg.Logger, cache: map[string]erec{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.guard = etcdguard.Guard{What: "etcd install state",
		DownNote:    "answer files and reports are refused (503) until it answers; boot files are still served",
		Unavailable: ErrStateUnavailable, Timeout: cfg.Timeout, RetryAfter: cfg.RetryAfter, Log: e.log}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if cfg.InventoryDigest != "" {
		if err := e.claimInventory(ctx, cfg.InventoryDigest, cfg.readOnly); err != nil {
			e.cancel()
			return nil, err
		}
	}
	rev, err := e.reload(ctx)
	if err != nil {
		e.cancel()
		return nil, fmt.Errorf("state: etcd %s: %w", cfg.Prefix, err)
	}
	e.next = rev + 1
	e.wg.Add(1)
	go e.watchLoop()
	return &Store{shared: e, readOnly: cfg.readOnly}, nil
}

// etcdState is the sharedState on etcd.
type etcdState struct {
	cli    *clientv3.Client
	prefix string // with trailing slash
	log    *slog.Logger

	ctx    context.Context // ends at close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	next   int64 // revision the watch resumes from; watch goroutine only

	mu        sync.Mutex // guards cache, secretHex
	cache     map[string]erec
	secretHex string

	guard etcdguard.Guard // etcd's health: fail fast, outages logged
}

// erec is the cached state of one host key: its record, its mod revision
// (0: absent) and the newest revision it reflects (see etcdcache).
type erec = etcdcache.Entry[Record]

func (e *etcdState) hostsPrefix() string     { return e.prefix + "state/hosts/" }
func (e *etcdState) key(mac string) string   { return e.hostsPrefix() + mac }
func (e *etcdState) secretKey() string       { return e.prefix + "state/secret" }
func (e *etcdState) inventoryKey() string    { return e.prefix + "inventory" }
func (e *etcdState) isHostKey(k string) bool { return strings.HasPrefix(k, e.hostsPrefix()) }

// claimInventory stores digest as the prefix's inventory if there is none,
// else compares.
func (e *etcdState) claimInventory(ctx context.Context, digest string, compareOnly bool) error {
	k := e.inventoryKey()
	put := clientv3.OpPut(k, digest)
	if compareOnly {
		put = clientv3.OpGet(k) // a fresh prefix: nothing to compare
	}
	var resp *clientv3.TxnResponse
	err := e.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(put).Else(clientv3.OpGet(k)).Commit()
		return err
	})
	if err != nil {
		return fmt.Errorf("state: etcd %s: %w", strings.TrimSuffix(e.prefix, "/"), err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 1 && string(kvs[0].Value) == digest {
		return nil
	}
	stored := ""
	if len(kvs) == 1 {
		stored = string(kvs[0].Value)
	}
	return fmt.Errorf("%w: etcd key %s holds %.20s…, this inventory is %.20s…; every server sharing a prefix must serve the same inventory file (to change it: stop every server, then delete that key, or use another prefix)",
		ErrInventoryMismatch, k, stored, digest)
}

// do runs one request against etcd with the store's timeout, failing fast
// while etcd is known to be down.
func (e *etcdState) do(ctx context.Context, f func(ctx context.Context) error) error {
	if e.ctx.Err() != nil {
		return fmt.Errorf("%w: store closed", ErrStateUnavailable)
	}
	return e.guard.Do(ctx, f)
}

// decode reads a record; anything unreadable is an error, never a panic.
func decodeRecord(key string, v []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("state: etcd key %q: %w", key, err)
	}
	if r.State == "done" {
		r.State = Installed
	}
	return r, nil
}

// remember caches r for key unless the cache has seen a newer change.
func (e *etcdState) remember(key string, r erec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	etcdcache.Put(e.cache, key, r)
}

func (e *etcdState) cached(key string) erec {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cache[key]
}

// fromRange turns the answer of a Get of key into an erec and caches it.
func (e *etcdState) fromRange(key string, kvs []*mvccpb.KeyValue, rev int64) erec {
	r, err := etcdcache.FromRange(key, kvs, rev, decodeRecord)
	if err != nil {
		e.log.Warn("etcd install state: record unreadable, treated as pending", "error", err)
	}
	e.remember(key, r)
	return r
}

// reload reads every host record into the cache and returns the revision
// it read at.
func (e *etcdState) reload(ctx context.Context) (int64, error) {
	var resp *clientv3.GetResponse
	err := e.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = e.cli.Get(ctx, e.hostsPrefix(), clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	present := map[string]bool{}
	for _, kv := range resp.Kvs {
		present[string(kv.Key)] = true
		e.fromRange(string(kv.Key), []*mvccpb.KeyValue{kv}, rev)
	}
	e.mu.Lock()
	for k, r := range e.cache {
		if !present[k] && r.Seen <= rev {
			e.cache[k] = erec{Seen: rev} // deleted meanwhile
		}
	}
	e.mu.Unlock()
	return rev, nil
}

func (e *etcdState) get(mac string) (Record, bool) {
	r := e.cached(e.key(mac))
	return r.Val, r.Rev != 0
}

func (e *etcdState) all() []Record {
	e.mu.Lock()
	out := make([]Record, 0, len(e.cache))
	for _, r := range e.cache {
		if r.Rev != 0 {
			out = append(out, r.Val)
		}
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out
}

func (e *etcdState) sync(mac string) (Record, bool, error) {
	r, err := e.fetch(e.key(mac))
	if err != nil {
		return Record{}, false, err
	}
	return r.Val, r.Rev != 0, nil
}

// maxCASAttempts bounds the compare-and-swap retries of one update; each
// failed attempt means another server changed the record meanwhile.
const maxCASAttempts = 16

// errCASExhausted ends an update that lost every attempt to other writers.
var errCASExhausted = errors.New("state: record changed by other servers on every attempt")

func (e *etcdState) update(mac string, fn func(*Record) error) (Record, error) {
	key := e.key(mac)
	cur := e.cached(key)
	fresh := false // cur was read from etcd during this update
	for range maxCASAttempts {
		r := cur.Val
		if cur.Rev == 0 {
			r = Record{MAC: mac, State: Pending}
		}
		if err := fn(&r); err != nil {
			if !fresh {
				// The refusal may rest on a copy a moment old (say a
				// re-arm on another server not seen yet): ask etcd.
				nc, ferr := e.fetch(key)
				if ferr != nil {
					return cur.Val, ferr
				}
				if nc.Rev != cur.Rev {
					cur, fresh = nc, true
					continue
				}
			}
			return cur.Val, err
		}
		val, err := json.Marshal(r)
		if err != nil {
			return cur.Val, fmt.Errorf("state: %w", err)
		}
		var resp *clientv3.TxnResponse
		err = e.do(e.ctx, func(ctx context.Context) error {
			var err error
			resp, err = e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.Rev)).
				Then(clientv3.OpPut(key, string(val))).Else(clientv3.OpGet(key)).Commit()
			return err
		})
		if err != nil {
			return cur.Val, err
		}
		rev := resp.Header.Revision
		if resp.Succeeded {
			e.remember(key, erec{Val: r, Rev: rev, Seen: rev})
			return r, nil
		}
		cur, fresh = e.fromRange(key, resp.Responses[0].GetResponseRange().GetKvs(), rev), true
	}
	return cur.Val, fmt.Errorf("%w: %s", errCASExhausted, mac)
}

// fetch reads key from etcd into the cache.
func (e *etcdState) fetch(key string) (erec, error) {
	var resp *clientv3.GetResponse
	err := e.do(e.ctx, func(ctx context.Context) error {
		var err error
		resp, err = e.cli.Get(ctx, key)
		return err
	})
	if err != nil {
		return erec{}, err
	}
	return e.fromRange(key, resp.Kvs, resp.Header.Revision), nil
}

func (e *etcdState) secret() ([]byte, error) {
	e.mu.Lock()
	have := e.secretHex
	e.mu.Unlock()
	if have == "" {
		k, draw := e.secretKey(), randomHex(32)
		var resp *clientv3.TxnResponse
		err := e.do(e.ctx, func(ctx context.Context) error {
			var err error
			resp, err = e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
				Then(clientv3.OpPut(k, draw)).Else(clientv3.OpGet(k)).Commit()
			return err
		})
		if err != nil {
			return nil, err
		}
		have = draw
		if !resp.Succeeded {
			kvs := resp.Responses[0].GetResponseRange().GetKvs()
			if len(kvs) == 0 {
				return nil, fmt.Errorf("state: etcd key %s vanished", k)
			}
			have = string(kvs[0].Value)
		}
		if b, err := hex.DecodeString(have); err != nil || len(b) < 16 {
			return nil, fmt.Errorf("state: etcd key %s is not a secret; delete it to draw a new one", k)
		}
		e.mu.Lock()
		e.secretHex = have
		e.mu.Unlock()
	}
	key, _ := hex.DecodeString(have)
	return key, nil
}

func (e *etcdState) close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}

// watchLoop follows the host records until close. The client resumes a
// broken watch itself; when the watch ends anyway (leader lost,
// compaction) it is opened again from e.next, after a full reload when
// the revisions it needs were compacted away.
func (e *etcdState) watchLoop() {
	defer e.wg.Done()
	etcdguard.Follow(e.ctx, e.cli, e.hostsPrefix(), &e.guard,
		func() int64 { return e.next }, e.apply,
		func(ctx context.Context) error {
			rev, err := e.reload(ctx)
			if err != nil {
				return err
			}
			e.next = rev + 1
			return nil
		})
}

// apply takes watch events into the cache.
func (e *etcdState) apply(evs []*clientv3.Event) {
	for _, ev := range evs {
		kv := ev.Kv
		k, rev := string(kv.Key), kv.ModRevision
		e.next = max(e.next, rev+1)
		if !e.isHostKey(k) {
			continue
		}
		if ev.Type == clientv3.EventTypeDelete {
			e.remember(k, erec{Seen: rev})
			continue
		}
		e.fromRange(k, []*mvccpb.KeyValue{kv}, rev)
	}
}

// sharedStores are what -store opened: the install state, the DHCP lease
// store (nil unless DHCP is in full mode) and the client under both.
type sharedStores struct {
	state  *Store
	leases *etcdstore.Store
	cli    *clientv3.Client
}

// Close releases the stores, then the client.
func (s *sharedStores) Close() {
	if s.leases != nil {
		s.leases.Close()
	}
	s.state.Close()
	s.cli.Close()
}

// openSharedStores connects to the etcd of -store, refuses a prefix that
// serves another inventory, and opens the install state (and, for full
// DHCP, the lease store under PREFIX/dhcp). readOnly (-check) compares the
// inventory digest without storing it and changes nothing.
func openSharedStores(ctx context.Context, url string, inventory []byte, leases, readOnly bool, log *slog.Logger) (*sharedStores, error) {
	endpoints, prefix, err := ParseStoreURL(url)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		// Keepalives notice a silent partition, so the watch moves on
		// to another member instead of waiting on a dead connection.
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 3 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("-store %s: %w", url, err)
	}
	st, err := OpenEtcdStore(ctx, EtcdStoreConfig{
		Client: cli, Prefix: prefix, InventoryDigest: InventoryDigest(inventory), readOnly: readOnly,
		Logger: log,
	})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("-store %s: %w", url, err)
	}
	s := &sharedStores{state: st, cli: cli}
	if leases && !readOnly {
		s.leases, err = etcdstore.New(ctx, etcdstore.Config{Client: cli, Prefix: prefix + "/dhcp", Logger: log})
		if err != nil {
			st.Close()
			cli.Close()
			return nil, fmt.Errorf("-store %s: DHCP leases: %w", url, err)
		}
	}
	return s, nil
}
