package etcdtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cluster is an etcd cluster of several members run for a test, each its
// own process on 127.0.0.1, so that one can be killed while the others
// keep a quorum.
type Cluster struct {
	// Members are the processes; Members[i].Stop kills member i
	// (SIGKILL) and Members[i].Restart starts it again on its data.
	Members []*Etcd
	// Endpoints are the members' client URLs, in the order of Members.
	Endpoints []string

	t testing.TB
}

// StartCluster starts an n-member cluster and waits (at most 30 s) until
// every member answers. It skips the test when Binary is absent.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	skipWithoutBinary(t)
	if n < 1 {
		t.Fatalf("etcdtest: a cluster of %d members", n)
	}
	c := &Cluster{t: t}
	peers := make([]string, n)
	initial := make([]string, n)
	for i := range n {
		c.Endpoints = append(c.Endpoints, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		initial[i] = fmt.Sprintf("m%d=%s", i, peers[i])
	}
	for i := range n {
		e := &Etcd{t: t, Endpoint: c.Endpoints[i],
			args: memberArgs(fmt.Sprintf("m%d", i), t.TempDir(), c.Endpoints[i], peers[i], strings.Join(initial, ","))}
		// A member waits for the others before it answers: all are
		// started before any is waited for.
		e.start()
		t.Cleanup(e.Stop)
		c.Members = append(c.Members, e)
	}
	for _, e := range c.Members {
		e.WaitReady(30 * time.Second)
	}
	return c
}

// Dial returns a handle on etcd members that are already running (a
// Cluster's, or ones another process started), for helpers that take an
// *Etcd: its Client dials every endpoint and moves to another member when
// one dies. Stop, Pause and Resume do nothing; Restart fails the test.
func Dial(t testing.TB, endpoints ...string) *Etcd {
	t.Helper()
	if len(endpoints) == 0 {
		t.Fatal("etcdtest: Dial without endpoints")
	}
	return &Etcd{t: t, Endpoint: endpoints[0], endpoints: endpoints}
}

// Etcd returns a handle on the whole cluster (see Dial).
func (c *Cluster) Etcd() *Etcd { return Dial(c.t, c.Endpoints...) }

// Client returns a new client of every member; the caller closes it.
func (c *Cluster) Client() *clientv3.Client { return c.Etcd().Client() }

// Leader returns the index in Members of the member the running members
// name as their leader, or an error when none answers within ctx or they
// have none.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	cli := c.Client()
	defer cli.Close()
	var lastErr error
	for {
		ids := make(map[uint64]int) // member ID -> index
		var leader uint64
		for i, ep := range c.Endpoints {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := cli.Status(sctx, ep)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			ids[st.Header.MemberId] = i
			if st.Leader != 0 {
				leader = st.Leader
			}
		}
		if i, ok := ids[leader]; ok && leader != 0 {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("etcdtest: no leader: %v (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
