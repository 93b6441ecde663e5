package etcdstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pxekit/pxekit/dhcpsrv"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// queue holds the requests that wait for the next batch. A goroutine of
// the store takes everything queued each time its previous batch has
// returned, with no timer: an idle store sends a lone request at once, and
// a request waits for the transaction in flight (and for as many more as
// MaxTxnOps and claims on the same keys ahead of it need).
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	wake   chan struct{} // a token: something was queued
}

func newQueue[T any]() *queue[T] { return &queue[T]{wake: make(chan struct{}, 1)} }

// push queues v; false once the queue is closed.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns and removes everything queued, oldest first.
func (q *queue[T]) take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	v := q.items
	q.items = nil
	return v
}

// close refuses further pushes and returns what was still queued.
func (q *queue[T]) close() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	v := q.items
	q.items = nil
	return v
}

// len is the number of requests queued.
func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// claim is one Put waiting for a group commit.
type claim struct {
	ctx  context.Context // the caller's: a claim whose caller left is dropped
	l    dhcpsrv.Lease
	val  string     // l as JSON
	done chan error // buffered: the write loop never waits on it
	// fresh holds the records the failed batch brought back, for
	// putAlone; set before errAlone is sent on done.
	fresh map[string]rec
}

// errAlone tells Put to write its claim in a transaction of its own (see
// putAlone); it never leaves the package.
var errAlone = errors.New("etcdstore: claim to be written alone")

// writeLoop runs the group commits until Close.
func (s *Store) writeLoop() {
	defer s.wg.Done()
	var carry []*claim // claims held back for the next batch
	for {
		if len(carry) == 0 {
			select {
			case <-s.ctx.Done():
			case <-s.writes.wake:
			}
		}
		if s.ctx.Err() != nil {
			for _, c := range append(carry, s.writes.close()...) {
				c.done <- dhcpsrv.ErrStoreClosed
			}
			return
		}
		if s.beforeBatch != nil {
			s.beforeBatch()
		}
		carry = s.writeBatch(append(carry, s.writes.take()...))
	}
}

// writeBatch commits as many of pending (oldest first) as one transaction
// may hold and answers them; it returns the claims left for the next one.
func (s *Store) writeBatch(pending []*claim) (carry []*claim) {
	now := time.Now()
	maxOps := int(s.maxOps.Load())
	held := map[string]bool{} // keys of this batch and of the claims held back
	var batch []*claim
	var plans []plan
	ncmp := 0
	for _, c := range pending {
		if err := c.ctx.Err(); err != nil {
			c.done <- err // nobody waits for it; nothing written
			continue
		}
		p, err := s.plan(c.l, c.val, s.cached, now)
		if err != nil {
			// Refused on the cache, which may be stale: judged
			// again alone, on records read from etcd.
			c.done <- errAlone
			continue
		}
		clash := false
		for _, k := range p.keys {
			clash = clash || held[k]
			held[k] = true
		}
		if clash || ncmp+len(p.keys) > maxOps {
			// A later claim on the same keys must wait too, so that
			// a server's writes of one key commit in order.
			carry = append(carry, c)
			continue
		}
		ncmp += len(p.keys)
		batch = append(batch, c)
		plans = append(plans, p)
	}
	if len(batch) == 0 {
		return carry
	}
	var cmps []clientv3.Cmp
	var then, els []clientv3.Op
	for _, p := range plans {
		for i, k := range p.keys {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", p.revs[i]))
			els = append(els, clientv3.OpGet(k))
		}
		then = append(then, p.ops...)
	}
	s.mu.Lock()
	for i, c := range batch {
		for _, k := range plans[i].writes {
			s.sending[k] = sent{val: c.val, l: c.l}
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for _, p := range plans {
			for _, k := range p.writes {
				delete(s.sending, k)
			}
		}
		s.mu.Unlock()
	}()
	tooMany := false
	var resp *clientv3.TxnResponse
	err := s.do(s.ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.commitTxn(ctx, cmps, then, els)
		if len(batch) > 1 && s.tooMany(err, len(cmps)) {
			tooMany, err = true, nil
		}
		return err
	})
	switch {
	case tooMany:
		return append(batch, carry...)
	case err != nil:
		if s.ctx.Err() != nil {
			err = dhcpsrv.ErrStoreClosed
		}
		for _, c := range batch {
			c.done <- err
		}
		return carry
	}
	rev := resp.Header.Revision
	if resp.Succeeded {
		for i, c := range batch {
			s.committed(plans[i], c.l, rev)
			c.done <- nil
		}
		return carry
	}
	// Another server wrote one of the keys: the Else brought back every
	// compared key, and each claim is judged again alone on them.
	j := 0
	for i, c := range batch {
		c.fresh = make(map[string]rec, len(plans[i].keys))
		for _, k := range plans[i].keys {
			c.fresh[k] = s.fromRange(k, resp.Responses[j].GetResponseRange().GetKvs(), rev)
			j++
		}
		c.done <- errAlone
	}
	return carry
}

// lookup is one LookupMAC waiting for the next batched read.
type lookup struct {
	ctx  context.Context
	key  string
	done chan lookupResult // buffered
}

type lookupResult struct {
	kvs []*mvccpb.KeyValue
	rev int64 // revision of the read
	err error
}

// lookup reads key in the next batched read.
func (s *Store) lookup(ctx context.Context, key string) (lookupResult, error) {
	if err := ctx.Err(); err != nil {
		return lookupResult{}, err
	}
	if s.ctx.Err() != nil {
		return lookupResult{}, dhcpsrv.ErrStoreClosed
	}
	l := &lookup{ctx: ctx, key: key, done: make(chan lookupResult, 1)}
	if !s.reads.push(l) {
		return lookupResult{}, dhcpsrv.ErrStoreClosed
	}
	select {
	case r := <-l.done:
		return r, r.err
	case <-ctx.Done():
		return lookupResult{}, ctx.Err()
	}
}

// readLoop runs the batched reads until Close.
func (s *Store) readLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			for _, l := range s.reads.close() {
				l.done <- lookupResult{err: dhcpsrv.ErrStoreClosed}
			}
			return
		case <-s.reads.wake:
		}
		if s.beforeReads != nil {
			s.beforeReads()
		}
		pending := s.reads.take()
		for len(pending) > 0 {
			pending = s.readBatch(pending)
		}
	}
}

// readBatch reads the keys of as many of pending as one transaction may
// hold, in one linearizable read-only transaction, and answers them; it
// returns the rest.
func (s *Store) readBatch(pending []*lookup) []*lookup {
	maxOps := int(s.maxOps.Load())
	index := map[string]int{} // key -> its Get in ops
	var ops []clientv3.Op
	var batch []*lookup
	n := 0
	for ; n < len(pending); n++ {
		l := pending[n]
		if err := l.ctx.Err(); err != nil {
			l.done <- lookupResult{err: err}
			continue
		}
		if _, ok := index[l.key]; !ok {
			if len(ops) == maxOps {
				break
			}
			index[l.key] = len(ops)
			ops = append(ops, clientv3.OpGet(l.key))
		}
		batch = append(batch, l)
	}
	if len(batch) == 0 {
		return pending[n:]
	}
	tooMany := false
	var resp *clientv3.TxnResponse
	err := s.do(s.ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.commitTxn(ctx, nil, ops, nil)
		if len(ops) > 1 && s.tooMany(err, len(ops)) {
			tooMany, err = true, nil
		}
		return err
	})
	if tooMany {
		return append(batch, pending[n:]...) // again, in smaller batches
	}
	if err != nil && s.ctx.Err() != nil {
		err = dhcpsrv.ErrStoreClosed
	}
	for _, l := range batch {
		if err != nil {
			l.done <- lookupResult{err: err}
			continue
		}
		l.done <- lookupResult{kvs: resp.Responses[index[l.key]].GetResponseRange().GetKvs(), rev: resp.Header.Revision}
	}
	return pending[n:]
}

// tooMany reports whether err is etcd refusing a transaction of n
// operations (its --max-txn-ops is below Config.MaxTxnOps); the batches
// are then halved, down to 3. That is a setting, not an outage.
func (s *Store) tooMany(err error, n int) bool {
	if !errors.Is(err, rpctypes.ErrTooManyOps) {
		return false
	}
	for {
		cur := s.maxOps.Load()
		if int64(n) > cur {
			return true // sent before the last cut: again, smaller
		}
		next := max(3, int64(n)/2)
		if next >= cur {
			return false // as small as it gets: a real error
		}
		if s.maxOps.CompareAndSwap(cur, next) {
			s.log.Warn("etcd lease store: etcd refused a transaction; Config.MaxTxnOps exceeds its --max-txn-ops",
				"operations", n, "now at most", next)
			return true
		}
	}
}
