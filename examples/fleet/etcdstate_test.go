package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/internal/etcdtest"
)

func TestParseStoreURL(t *testing.T) {
	for _, tc := range []struct {
		in        string
		endpoints []string
		prefix    string
		err       string
	}{
		{"etcd://10.0.0.5:2379/pxekit/lab", []string{"http://10.0.0.5:2379"}, "pxekit/lab", ""},
		{"etcd://a:2379,b:2379,[fd00::1]:2379/p/", []string{"http://a:2379", "http://b:2379", "http://[fd00::1]:2379"}, "p", ""},
		{"http://a:2379/p", nil, "", "want etcd://"},
		{"etcd://a:2379", nil, "", "give a key prefix"},
		{"etcd://a:2379/", nil, "", "give a key prefix"},
		{"etcd://a:2379/x//y", nil, "", "give a key prefix"},
		{"etcd://a/p", nil, "", `"a" is not HOST:PORT`},
		{"etcd://a:0/p", nil, "", "bad port"},
		{"etcd://a:2379,:2379/p", nil, "", "is not HOST:PORT"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ep, prefix, err := ParseStoreURL(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.endpoints, ep)
			assert.Equal(t, tc.prefix, prefix)
		})
	}
}

// etcdClient is a client of e for one simulated server, closed at the end
// of the test (after the stores using it: cleanups run last-in first-out).
func etcdClient(t *testing.T, e *etcdtest.Etcd) *clientv3.Client {
	t.Helper()
	c := e.Client()
	t.Cleanup(func() { c.Close() })
	return c
}

// openEtcdStore opens a store on prefix with the default timeouts (a
// loaded test machine can take longer than a short one).
func openEtcdStore(t *testing.T, cli *clientv3.Client, prefix, digest string) *Store {
	t.Helper()
	return openEtcdStoreTimeout(t, cli, prefix, digest, 0)
}

// openEtcdStoreTimeout is openEtcdStore with the request timeout given, so
// that the outage tests take seconds.
func openEtcdStoreTimeout(t *testing.T, cli *clientv3.Client, prefix, digest string, timeout time.Duration) *Store {
	t.Helper()
	s, err := OpenEtcdStore(context.Background(), EtcdStoreConfig{
		Client: cli, Prefix: prefix, InventoryDigest: digest, Timeout: timeout, RetryAfter: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// etcdServer is one fleet server of a test on a shared etcd prefix.
type etcdServer struct {
	f     *fleet
	store *Store
	h     http.Handler // as serve composes it: guardState around the routes
}

// newEtcdServer builds a fleet over the test inventory (in dir, which
// holds the fake netboot tree) with its own etcd client and store.
func newEtcdServer(t *testing.T, e *etcdtest.Etcd, prefix, dir string, timeout time.Duration) *etcdServer {
	t.Helper()
	text := testInventory("nb", UnknownLocal)
	inv, err := ParseInventory([]byte(text), dir)
	require.NoError(t, err)
	store := openEtcdStoreTimeout(t, etcdClient(t, e), prefix, InventoryDigest([]byte(text)), timeout)
	f, err := buildFleet(inv, buildOptions{
		HTTPBase: "http://10.0.0.1:8080/", ServerIP: netip.MustParseAddr("10.0.0.1"), Proxy: true,
		DNS: nil, Store: store, HostRoot: fakeHostRoot(t, false),
	})
	require.NoError(t, err)
	t.Cleanup(f.Close)
	return &etcdServer{f: f, store: store, h: f.HTTPHandler()}
}

func (s *etcdServer) answer(t *testing.T, mac string) int {
	t.Helper()
	tok := s.f.gate.Token(mustMAC(t, mac))
	return call{method: http.MethodGet, target: "/hosts/" + macPath(mac) + "/" + tok + "/preseed.cfg"}.do(s.h).Code
}

func (s *etcdServer) report(t *testing.T, mac, stage string) int {
	t.Helper()
	tok := s.f.gate.Token(mustMAC(t, mac))
	body := fmt.Sprintf(`{"stage":%q,"hostname":"x","os":"debian-12","status":"ok","checks":[]}`, stage)
	return call{method: http.MethodPost, target: "/api/report/" + macPath(mac) + "/" + tok, body: body,
		header: map[string]string{"Content-Type": "application/json"}}.do(s.h).Code
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A host re-armed on one server installs from the other and reports to
// the first: each step is recorded once and both views agree.
func TestEtcdTwoServersOneTruth(t *testing.T) {
	e := etcdtest.Start(t)
	dir := t.TempDir()
	fakeNetboot(t, filepath.Join(dir, "nb"))
	a := newEtcdServer(t, e, "fleet", dir, 0)
	b := newEtcdServer(t, e, "fleet", dir, 0)
	web := mustMAC(t, macWeb)

	require.Equal(t, a.f.gate.Token(web), b.f.gate.Token(web), "one token per host across servers")

	_, err := a.f.gate.Reinstall("web01")
	require.NoError(t, err)
	tok := a.f.gate.Token(web)
	eventually(t, "b sees the re-arm", func() bool { return b.f.gate.Token(web) == tok })

	require.Equal(t, http.StatusOK, b.answer(t, macWeb), "the answer file from the other server")
	eventually(t, "a sees installing", func() bool { r, _ := a.store.Get(macWeb); return r.State == Installing })
	require.Equal(t, http.StatusOK, a.answer(t, macWeb), "a refetch of the same install")

	require.Less(t, a.report(t, macWeb, "installed"), 300, "reported on the first server")
	assert.Equal(t, http.StatusConflict, b.report(t, macWeb, "installed"), "the stage is taken once across servers")
	eventually(t, "both views agree", func() bool {
		ra, _ := a.store.Get(macWeb)
		rb, _ := b.store.Get(macWeb)
		return ra.State == Installed && rb.State == Installed && ra.Report != nil && rb.Report != nil &&
			ra.Report.At.Equal(rb.Report.At) && ra.Token == rb.Token
	})
	assert.Equal(t, ActLocal, b.f.gate.Decide(web).Action)
	assert.Equal(t, http.StatusForbidden, b.answer(t, macWeb), "an installed host gets no answer file")
	sa, sb := a.f.status().Hosts, b.f.status().Hosts
	require.Equal(t, len(sa), len(sb))
	for i := range sa {
		assert.Equal(t, sa[i].State, sb[i].State, sa[i].Hostname)
		assert.Equal(t, sa[i].Next, sb[i].Next, sa[i].Hostname)
	}
}

// Concurrent changes of one record from two servers: each transition is
// made by exactly one of them.
func TestEtcdConcurrentTransitions(t *testing.T) {
	e := etcdtest.Start(t)
	stores := []*Store{openEtcdStore(t, etcdClient(t, e), "cas", ""), openEtcdStore(t, etcdClient(t, e), "cas", "")}
	const macs, perStore = 10, 4
	var moved, reported atomic.Int64
	var wg sync.WaitGroup
	for i := range macs {
		mac := fmt.Sprintf("52:54:00:aa:00:%02x", i)
		for _, s := range stores {
			for range perStore {
				wg.Go(func() {
					_, err := s.UpdateIf(mac, func(r *Record) error {
						if r.State != Pending {
							return errStarted
						}
						r.State = Installing
						return nil
					})
					if err == nil {
						moved.Add(1)
					} else {
						assert.ErrorIs(t, err, errStarted, "%v", err)
					}
					_, err = s.UpdateIf(mac, func(r *Record) error {
						if r.Report != nil {
							return ErrReplay
						}
						r.Report, r.State = &Report{Report: answerfile.Report{Status: "ok"}}, Installed
						return nil
					})
					if err == nil {
						reported.Add(1)
					} else {
						assert.ErrorIs(t, err, ErrReplay, "%v", err)
					}
				})
			}
		}
	}
	wg.Wait()
	assert.Equal(t, int64(macs), moved.Load(), "armed -> installing once per MAC")
	assert.Equal(t, int64(macs), reported.Load(), "report recorded once per MAC")
	eventually(t, "both stores see every record installed", func() bool {
		for _, s := range stores {
			all := s.All()
			if len(all) != macs {
				return false
			}
			for _, r := range all {
				if r.State != Installed {
					return false
				}
			}
		}
		return true
	})
}

// Two gates reporting the same stage at once: one is recorded.
func TestEtcdConcurrentReports(t *testing.T) {
	e := etcdtest.Start(t)
	inv, err := ParseInventory([]byte(testInventory("nb", UnknownLocal)), ".")
	require.NoError(t, err)
	var gates []*Gate
	for range 2 {
		gates = append(gates, NewGate(inv, openEtcdStore(t, etcdClient(t, e), "rep", ""), nil))
	}
	web := mustMAC(t, macWeb)
	var ok, replay atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := gates[i%2].Reported(web, Report{Report: answerfile.Report{Status: "ok"}})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplay):
				replay.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), ok.Load())
	assert.Equal(t, int64(7), replay.Load())
}

func TestEtcdInventoryDigest(t *testing.T) {
	e := etcdtest.Start(t)
	cli := etcdClient(t, e)
	one, other := InventoryDigest([]byte("a")), InventoryDigest([]byte("b"))
	openEtcdStore(t, cli, "inv", one)
	openEtcdStore(t, cli, "inv", one) // the same inventory: fine
	_, err := OpenEtcdStore(context.Background(), EtcdStoreConfig{Client: cli, Prefix: "inv", InventoryDigest: other})
	require.ErrorIs(t, err, ErrInventoryMismatch)
	assert.Contains(t, err.Error(), "inv/inventory")
	openEtcdStore(t, cli, "inv2", other) // another prefix: another fleet

	// -check compares and stores nothing.
	_, err = OpenEtcdStore(context.Background(), EtcdStoreConfig{Client: cli, Prefix: "inv", InventoryDigest: other, readOnly: true})
	require.ErrorIs(t, err, ErrInventoryMismatch)
	s, err := OpenEtcdStore(context.Background(), EtcdStoreConfig{Client: cli, Prefix: "inv3", InventoryDigest: one, readOnly: true})
	require.NoError(t, err)
	s.Close()
	openEtcdStore(t, cli, "inv3", other) // nothing was stored by -check
}

// etcd away (stopped, or paused as in a partition that drops packets):
// changes fail with ErrStateUnavailable, answer files and reports get 503,
// boot menus are still served; all recovers without a restart.
func TestEtcdOutage(t *testing.T) {
	for _, mode := range []string{"stopped", "paused"} {
		t.Run(mode, func(t *testing.T) {
			e := etcdtest.Start(t)
			dir := t.TempDir()
			fakeNetboot(t, filepath.Join(dir, "nb"))
			s := newEtcdServer(t, e, "out", dir, 500*time.Millisecond)
			menu := "/hosts/" + macPath(macWeb) + "/boot.ipxe"
			require.Equal(t, http.StatusOK, call{method: http.MethodGet, target: menu}.do(s.h).Code)

			if mode == "stopped" {
				e.Stop()
			} else {
				e.Pause()
			}
			start := time.Now()
			_, err := s.store.Update(macDB, func(r *Record) { r.Hostname = "x" })
			took := time.Since(start)
			require.ErrorIs(t, err, ErrStateUnavailable)
			t.Logf("etcd %s: Update failed after %v: %v", mode, took.Round(time.Millisecond), err)
			assert.Less(t, took, 5*time.Second, "bounded by the store's timeout")

			assert.Equal(t, http.StatusServiceUnavailable, s.answer(t, macWeb), "no install that is not recorded")
			if st, ok := s.f.steps.last(mustMAC(t, macWeb).String()); ok {
				assert.NotEqual(t, StageAnswer, st.Stage, "a withheld answer file is no step")
			}
			assert.Equal(t, http.StatusServiceUnavailable, s.report(t, macApp, "installed"))
			assert.Equal(t, http.StatusOK, call{method: http.MethodGet, target: menu}.do(s.h).Code, "boot menus are still served")
			r, _ := s.store.Get(macWeb)
			assert.Equal(t, Pending, r.State)
			time.Sleep(2 * time.Second) // "a few seconds" away

			if mode == "stopped" {
				e.Restart(20 * time.Second)
			} else {
				e.Resume()
			}
			back := time.Now()
			eventually(t, "the answer file is served again", func() bool { return s.answer(t, macWeb) == http.StatusOK })
			t.Logf("etcd %s: answer files served again %v after etcd returned", mode, time.Since(back).Round(time.Millisecond))
			r, _, err = s.store.Sync(macWeb)
			require.NoError(t, err)
			assert.Equal(t, Installing, r.State)
			assert.Less(t, s.report(t, macWeb, "installed"), 300)

			// The watch is back too: another server's change shows.
			other := openEtcdStore(t, etcdClient(t, e), "out", "")
			_, err = other.Update(macDB, func(r *Record) { r.Hostname = "changed-elsewhere" })
			require.NoError(t, err)
			eventually(t, "the watch resumed", func() bool { r, _ := s.store.Get(macDB); return r.Hostname == "changed-elsewhere" })
		})
	}
}
