package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pxekit/pxekit/internal/etcdtest"
)

// multiInventory is an inventory of n hosts on one profile.
func multiInventory(n int) (text string, macs []string) {
	var b strings.Builder
	fmt.Fprintf(&b, `unknown: local
defaults:
  disk: {wipe: true}
  root: {password: {hash: %q}}
profiles:
  debian12: {os: debian-12, netboot: nb, mirror: http://deb.debian.org/debian}
hosts:
`, testHash)
	for i := range n {
		mac := fmt.Sprintf("52:54:00:c0:%02x:%02x", i/256, i%256)
		macs = append(macs, mac)
		fmt.Fprintf(&b, "  - {mac: %q, hostname: h%03d, profile: debian12}\n", mac, i)
	}
	return b.String(), macs
}

// multiSetup starts etcd and writes an inventory of n hosts (with a
// stand-in netboot tree) into a new directory; it returns the etcd, the
// directory, the inventory's path, its MACs and the -store URL of prefix.
func multiSetup(t *testing.T, n int, prefix string) (e *etcdtest.Etcd, dir, inv string, macs []string, url string) {
	t.Helper()
	e = etcdtest.Start(t)
	needHostLoaders(t)
	dir = t.TempDir()
	fakeNetboot(t, filepath.Join(dir, "nb"))
	text, macs := multiInventory(n)
	inv = filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(inv, []byte(text), 0o644))
	return e, dir, inv, macs, "etcd://" + strings.TrimPrefix(e.Endpoint, "http://") + "/" + prefix
}

// Two fleet programs (-store etcd, DHCP off, on loopback) serve one
// inventory: every host fetches its answer file from both and reports to
// both at once; each host's armed -> installing and its report are written
// once, and both status pages agree. A third program with another
// inventory is refused.
func TestEtcdTwoPrograms(t *testing.T) {
	const hosts = 60
	e, dir, inv, macs, url := multiSetup(t, hosts, "multi")

	// -syslog-addr "": the two would share its default port.
	servers := []*server{startServer(t, inv, "-store", url, "-syslog-addr", ""), startServer(t, inv, "-store", url, "-syslog-addr", "")}

	other := filepath.Join(dir, "other.yaml")
	otherText, _ := multiInventory(hosts + 1)
	require.NoError(t, os.WriteFile(other, []byte(otherText), 0o644))
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, []string{"-inventory", other, "-dhcp", "off", "-store", url, "-syslog-addr", "", "-http-addr", "127.0.0.1:0", "-tftp-addr", "127.0.0.1:0"}, &bytes.Buffer{}, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "another inventory is served on this etcd prefix")

	view := openEtcdStore(t, etcdClient(t, e), "multi", "")
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, url, body string) int { code, _ := rackDo(client, method, url, body); return code }
	var wg sync.WaitGroup
	type result struct{ answers, reports []int }
	results := make([]result, hosts)
	for i, mac := range macs {
		wg.Go(func() {
			r, ok := view.Get(mac)
			if !assert.True(t, ok, mac) || !assert.NotEmpty(t, r.Token, mac) {
				return
			}
			var mu sync.Mutex
			var inner sync.WaitGroup
			for _, s := range servers {
				inner.Go(func() {
					c := do(http.MethodGet, s.http+"hosts/"+macPath(mac)+"/"+r.Token+"/preseed.cfg", "")
					mu.Lock()
					results[i].answers = append(results[i].answers, c)
					mu.Unlock()
				})
			}
			inner.Wait()
			body := fmt.Sprintf(`{"hostname":"h%03d","os":"debian-12","status":"ok","checks":[]}`, i)
			for _, s := range servers {
				inner.Go(func() {
					c := do(http.MethodPost, s.http+"api/report/"+macPath(mac)+"/"+r.Token, body)
					mu.Lock()
					results[i].reports = append(results[i].reports, c)
					mu.Unlock()
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
	for i, r := range results {
		assert.Equal(t, []int{200, 200}, r.answers, macs[i])
		ok, conflict := 0, 0
		for _, c := range r.reports {
			switch {
			case c >= 200 && c < 300:
				ok++
			case c == http.StatusConflict:
				conflict++
			}
		}
		assert.Equal(t, [2]int{1, 1}, [2]int{ok, conflict}, "%s: one report recorded, one replay: %v", macs[i], r.reports)
	}

	// Every record was written three times: its token, installing, installed.
	cli := etcdClient(t, e)
	resp, err := cli.Get(context.Background(), "multi/state/hosts/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, hosts)
	for _, kv := range resp.Kvs {
		assert.Equal(t, int64(3), kv.Version, "writes of %s", kv.Key)
	}
	eventually(t, "both status pages show every host installed", func() bool {
		for _, s := range servers {
			st := statusJSON(t, s)
			n := 0
			for _, h := range st {
				if h.State == Installed {
					n++
				}
			}
			if n != hosts {
				return false
			}
		}
		return true
	})
}

// Of two fleet servers on one etcd, one (its own process) is killed with
// SIGKILL while hosts install: the hosts that had their answer file from
// it go on with the other (retrying as installers do), and every host's
// armed -> installing and report are still written exactly once.
func TestEtcdKillOneServer(t *testing.T) {
	const hosts = 60
	e, _, inv, macs, url := multiSetup(t, hosts, "kill")
	victim := startChild(t, inv, "-store", url, "-syslog-addr", "")
	survivor := startServer(t, inv, "-store", url, "-syslog-addr", "")
	view := openEtcdStore(t, etcdClient(t, e), "kill", "")

	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, url, body string) int { code, _ := rackDo(client, method, url, body); return code }
	var fromVictim atomic.Int64
	// An installer: answer file, then report, each tried on the victim
	// first (when asked) and then on the survivor until it succeeds.
	install := func(i int, mac string, victimFirst bool) {
		r, _ := view.Get(mac)
		bases := []string{survivor.http}
		if victimFirst {
			bases = []string{victim.http, survivor.http}
		}
		try := func(what string, f func(base string) bool) {
			for attempt := 0; attempt < 50; attempt++ {
				if f(bases[min(attempt, len(bases)-1)]) {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Errorf("%s: %s never succeeded", mac, what)
		}
		try("answer", func(base string) bool {
			ok := do(http.MethodGet, base+"hosts/"+macPath(mac)+"/"+r.Token+"/preseed.cfg", "") == http.StatusOK
			if ok && base == victim.http {
				fromVictim.Add(1)
			}
			return ok
		})
		time.Sleep(300 * time.Millisecond) // the install
		body := fmt.Sprintf(`{"hostname":"h%03d","os":"debian-12","status":"ok","checks":[]}`, i)
		try("report", func(base string) bool {
			c := do(http.MethodPost, base+"api/report/"+macPath(mac)+"/"+r.Token, body)
			// 409: an earlier attempt was recorded though its answer was lost.
			return (c >= 200 && c < 300) || c == http.StatusConflict
		})
	}
	var wg sync.WaitGroup
	for i, mac := range macs {
		wg.Go(func() { install(i, mac, i%2 == 0) })
	}
	// SIGKILL once some installs have their answer file from the victim
	// and wait to report.
	eventually(t, "the victim served answer files", func() bool { return fromVictim.Load() >= 5 })
	require.NoError(t, victim.cmd.Process.Kill())
	killed := fromVictim.Load()
	wg.Wait()
	t.Logf("answer files served by the killed server: %d of %d before SIGKILL, %d in all", killed, hosts, fromVictim.Load())

	cli := etcdClient(t, e)
	resp, err := cli.Get(context.Background(), "kill/state/hosts/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, hosts)
	for _, kv := range resp.Kvs {
		rec, err := decodeRecord(string(kv.Key), kv.Value)
		require.NoError(t, err)
		assert.Equal(t, Installed, rec.State, rec.MAC)
		assert.Equal(t, int64(3), kv.Version, "writes of %s: token, installing, installed", kv.Key)
	}
	eventually(t, "the survivor shows every host installed", func() bool {
		n := 0
		for _, h := range statusJSON(t, survivor) {
			if h.State == Installed {
				n++
			}
		}
		return n == hosts
	})
}
