// Package etcdguard runs the requests of pxekit's etcd-backed stores (the
// DHCP lease store and fleet's install state): each under a timeout, failing
// fast for a while once etcd stopped answering, so that a dead cluster costs
// a caller a quick error instead of a timeout per request, and with the
// outage logged once, then at most once a minute, and its end once.
package etcdguard

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Guard is one store's view of etcd's health. Set the fields before the
// first Do; a Guard is safe for concurrent use after that.
type Guard struct {
	// What names the store in log lines ("etcd lease store").
	What string
	// DownNote is added to the first warning of an outage: what the
	// server does meanwhile.
	DownNote string
	// Unavailable is the sentinel every failure wraps, so that callers
	// can answer errors.Is(err, Unavailable).
	Unavailable error
	// Timeout bounds each request.
	Timeout time.Duration
	// RetryAfter is how long requests fail fast after a failure before
	// one is let through to etcd again.
	RetryAfter time.Duration
	// Log receives the outage lines; nil is silent.
	Log *slog.Logger

	mu       sync.Mutex
	down     bool
	downAt   time.Time
	retryAt  time.Time
	loggedAt time.Time
	lastErr  error
	failures int
}

// Do runs f with a context bounded by Timeout that requires an etcd leader.
// While etcd is known to be down and RetryAfter has not passed, it fails at
// once without calling f. A failure of f wraps Unavailable; ctx ending is
// returned as ctx.Err(), since it says nothing about etcd.
func (g *Guard) Do(ctx context.Context, f func(ctx context.Context) error) error {
	if err := g.admit(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), g.Timeout)
	err := f(cctx)
	cancel()
	if err == nil {
		g.Healthy()
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	g.Failed(err)
	return fmt.Errorf("%w: %v", g.Unavailable, err)
}

func (g *Guard) admit() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.down {
		return nil
	}
	now := time.Now()
	if now.Before(g.retryAt) {
		return fmt.Errorf("%w: %v", g.Unavailable, g.lastErr)
	}
	g.retryAt = now.Add(g.RetryAfter)
	return nil
}

// Failed records a failure seen outside Do (a watch that broke, say).
func (g *Guard) Failed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	g.lastErr, g.failures = err, g.failures+1
	g.retryAt = now.Add(g.RetryAfter)
	if !g.down {
		g.down, g.downAt, g.loggedAt = true, now, now
		g.log().Warn(g.What+" unreachable: "+g.DownNote, "error", err)
		return
	}
	if now.Sub(g.loggedAt) >= time.Minute {
		g.loggedAt = now
		g.log().Warn(g.What+" still unreachable", "for", now.Sub(g.downAt).Round(time.Second), "failures", g.failures, "error", err)
	}
}

// Healthy records a success seen outside Do, ending an outage.
func (g *Guard) Healthy() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		g.log().Info(g.What+" reachable again", "after", time.Since(g.downAt).Round(time.Second), "failures", g.failures)
	}
	g.down, g.failures, g.lastErr = false, 0, nil
}

func (g *Guard) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

// Follow watches every key under prefix from revision next() until ctx
// ends, handing each batch of events to apply (which advances next). The
// etcd client resumes a broken watch by itself; when the watch ends anyway
// (leader lost, an error), it is opened again from next() after a backoff
// (100 ms doubling to 5 s), and when the revisions it needs were compacted
// away, resync reloads everything first. Errors are recorded in g. next,
// apply and resync run on the caller's goroutine only.
func Follow(ctx context.Context, cli *clientv3.Client, prefix string, g *Guard,
	next func() int64, apply func([]*clientv3.Event), resync func(context.Context) error) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(next()))
		compacted := false
		for resp := range wch {
			if resp.CompactRevision != 0 {
				compacted = true
				break
			}
			if err := resp.Err(); err != nil {
				g.Failed(err)
				break
			}
			apply(resp.Events)
			backoff = 100 * time.Millisecond
		}
		cancel()
		if compacted && resync(ctx) == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
