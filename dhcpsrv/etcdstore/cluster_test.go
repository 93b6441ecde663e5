package etcdstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/internal/etcdtest"
	"github.com/pxekit/pxekit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The tests of this file put the two full-mode servers of
// TestTwoServersOneEtcd (same segment, same relay, same prefix) on a
// 3-member etcd cluster whose client knows every member, and take one
// piece away in the middle of a run of clients: an etcd member, a server
// process, or the network between one server and etcd.

// clusterRun is the timeout of one batch of clients: far above what a
// batch takes (seconds), far below the test's budget.
const clusterRun = 60 * time.Second

// afterLeases calls fault once view reports at least n leases (so that
// clients are still running when it happens), or after limit. The channel
// then gets how many leases the view held.
func afterLeases(view func() int, n int, limit time.Duration, fault func()) <-chan int {
	done := make(chan int, 1)
	go func() {
		deadline := time.Now().Add(limit)
		for view() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		at := view()
		fault()
		done <- at
	}()
	return done
}

func macsFrom(first, n int) []net.HardwareAddr {
	macs := make([]net.HardwareAddr, n)
	for i := range macs {
		macs[i] = clientMAC(first + i)
	}
	return macs
}

// assertKeys reads the lease keys straight from etcd, without the store:
// every address key and every MAC key decodes, each MAC key names an
// address whose key names that MAC back, no address is named by two MAC
// keys, and every ACKed MAC's key names its ACKed address, bound and
// unexpired.
func assertKeys(t *testing.T, cli *clientv3.Client, prefix string, acked map[string]netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/leases/", clientv3.WithPrefix())
	require.NoError(t, err)
	byIP := map[netip.Addr]dhcpsrv.Lease{}
	byMAC := map[string]dhcpsrv.Lease{}
	for _, kv := range resp.Kvs {
		var l dhcpsrv.Lease
		require.NoError(t, json.Unmarshal(kv.Value, &l), "key %s", kv.Key)
		k := string(kv.Key)
		switch {
		case strings.HasPrefix(k, prefix+"/leases/ip/"):
			require.Equal(t, l.IP.String(), strings.TrimPrefix(k, prefix+"/leases/ip/"), "address key and record")
			byIP[l.IP] = l
		case strings.HasPrefix(k, prefix+"/leases/mac/"):
			require.Equal(t, l.MAC.String(), strings.TrimPrefix(k, prefix+"/leases/mac/"), "MAC key and record")
			byMAC[l.MAC.String()] = l
		default:
			t.Errorf("unexpected key %s", k)
		}
	}
	owner := map[netip.Addr]string{}
	for mac, l := range byMAC {
		if other, dup := owner[l.IP]; dup {
			t.Errorf("%v is named by the MAC keys of %s and %s", l.IP, other, mac)
		}
		owner[l.IP] = mac
		assert.Equal(t, mac, byIP[l.IP].MAC.String(), "address key of %v, named by the MAC key of %s", l.IP, mac)
	}
	now := time.Now()
	for mac, ip := range acked {
		l, ok := byMAC[mac]
		if !assert.True(t, ok, "no MAC key for %s", mac) {
			continue
		}
		assert.Equal(t, ip, l.IP, "MAC key of %s", mac)
		assert.Equal(t, dhcpsrv.LeaseBound, l.State, "MAC key of %s", mac)
		assert.True(t, now.Before(l.Expiry), "MAC key of %s expired", mac)
	}
	t.Logf("etcd holds %d address keys and %d MAC keys at revision %d", len(byIP), len(byMAC), resp.Header.Revision)
}

// checkAll runs both checks of the lease table against the ACKs.
func checkAll(t *testing.T, e *etcdtest.Etcd, acked map[string]netip.Addr) {
	t.Helper()
	assertOneToOne(t, e, acked)
	cli := e.Client()
	defer cli.Close()
	assertKeys(t, cli, "twoservers", acked)
}

// merge adds b's ACKs to a, failing on a MAC ACKed two different addresses.
func merge(t *testing.T, a, b map[string]netip.Addr) {
	t.Helper()
	for mac, ip := range b {
		if old, ok := a[mac]; ok && old != ip {
			t.Errorf("%s ACKed %v, then %v", mac, old, ip)
		}
		a[mac] = ip
	}
}

// runFaulted binds n clients through r and calls fault once view (server
// 0's lease count) holds a third of them, so that clients are still
// running. Every client must be bound, and the fault must come before the
// run ends; what names the fault ("leader m1 killed") for the log and the
// failure. It returns the ACKs.
func runFaulted(t *testing.T, r *relay, n int, view func() int, what string, fault func()) map[string]netip.Addr {
	t.Helper()
	faulted := afterLeases(view, n/3, 30*time.Second, fault)
	ctx, cancel := context.WithTimeout(t.Context(), clusterRun)
	defer cancel()
	t0 := time.Now()
	acked, err := doraAll(ctx, r, macsFrom(0, n))
	el := time.Since(t0)
	at := <-faulted
	require.NoError(t, err, "a client failed; %s", r.stats())
	require.Len(t, acked, n)
	t.Logf("%d clients bound in %v through two servers; %s with %d of them in server 0's view; %s",
		n, el.Round(time.Millisecond), what, at, r.stats())
	assert.Less(t, at, n, "%s after the run", what)
	return acked
}

// bindLate binds 20 new clients after the run of n whose ACKs are acked,
// adds theirs, and checks the lease table against all of them.
func bindLate(t *testing.T, r *relay, c *etcdtest.Cluster, acked map[string]netip.Addr, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clusterRun)
	defer cancel()
	late, err := doraAll(ctx, r, macsFrom(n, 20))
	require.NoError(t, err)
	merge(t, acked, late)
	checkAll(t, c.Etcd(), acked)
}

// TestClusterMemberKilled: the etcd leader is killed with SIGKILL while
// 200 clients are getting addresses; the remaining two members elect
// another, the servers' clients move to them, and every client completes.
func TestClusterMemberKilled(t *testing.T) {
	g := newSegment(t)
	c := etcdtest.StartCluster(t, 3)
	srv := [2]*dhcpsrv.Server{startServer(t, g, 0, c.Etcd()), startServer(t, g, 1, c.Etcd())}
	r := newRelay(t, g)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	leader, err := c.Leader(ctx)
	cancel()
	require.NoError(t, err)

	n := *nClients
	acked := runFaulted(t, r, n, func() int { return len(srv[0].Leases()) }, fmt.Sprintf("leader m%d killed", leader), func() {
		c.Members[leader].Stop()
	})

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	next, err := c.Leader(ctx)
	cancel()
	require.NoError(t, err)
	assert.NotEqual(t, leader, next)
	checkAll(t, c.Etcd(), acked)

	// The two members left keep serving new clients.
	bindLate(t, r, c, acked, n)
}

// serverProcEnv starts TestClusterServerProcess as a server:
// "namespace|interface|index|endpoint,endpoint...".
const serverProcEnv = "PXEKIT_ETCDSTORE_TEST_SERVER"

// TestClusterServerProcess is not a test: it is the server process that
// TestClusterServerKilled starts and kills. Run without serverProcEnv it
// does nothing.
func TestClusterServerProcess(t *testing.T) {
	v := os.Getenv(serverProcEnv)
	if v == "" {
		return
	}
	f := strings.Split(v, "|")
	require.Len(t, f, 4, serverProcEnv)
	i, err := strconv.Atoi(f[2])
	require.NoError(t, err)
	require.True(t, i == 0 || i == 1, "server index %d", i)
	g := &segment{}
	g.srvNS[i], g.srvIf[i] = f[0], f[1]
	startServer(t, g, i, etcdtest.Dial(t, strings.Split(f[3], ",")...))
	fmt.Println("serving")
	// Until the parent kills it, or dies itself (its end of stdin
	// closes).
	io.Copy(io.Discard, os.Stdin)
}

// startServerProcess runs server i of g in a process of its own (this test
// binary, TestClusterServerProcess) and returns once it serves.
func startServerProcess(t *testing.T, g *segment, i int, endpoints []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterServerProcess$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d|%s", serverProcEnv, g.srvNS[i], g.srvIf[i], i, strings.Join(endpoints, ",")))
	_, err := cmd.StdinPipe() // closed when this process ends
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &testutil.Buffer{} // for the log
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "serving" {
				ready <- true
				io.Copy(io.Discard, out)
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "server process ended before serving:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server process not serving after 30 s:\n%s", stderr.String())
	}
	return cmd
}

// TestClusterServerKilled: of the two servers, the one in its own process
// is killed with SIGKILL while 200 clients are getting addresses; the
// other finishes every client, and no address is held twice (a lease the
// dead server committed without its ACK reaching the client is offered
// again to the same MAC by the survivor).
func TestClusterServerKilled(t *testing.T) {
	g := newSegment(t)
	c := etcdtest.StartCluster(t, 3)
	survivor := startServer(t, g, 0, c.Etcd())
	victim := startServerProcess(t, g, 1, c.Endpoints)
	r := newRelay(t, g)

	n := *nClients
	acked := runFaulted(t, r, n, func() int { return len(survivor.Leases()) }, "server 1 killed", func() {
		victim.Process.Kill()
	})
	err := victim.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "server process: %v", err)
	assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
	checkAll(t, c.Etcd(), acked)

	// Every bound client is offered its own address again by the
	// survivor alone (each exchange waits its full second for the dead
	// server).
	for _, mac := range macsFrom(0, 5) {
		offers := r.exchange(r.msg(mac, dhcpv4.MessageTypeDiscover), time.Second, dhcpv4.MessageTypeOffer)
		require.Len(t, offers, 1, "offers to %v", mac)
		assert.Equal(t, acked[mac.String()].String(), offers[0].YourIPAddr.String(), "offer to %v", mac)
	}
}

// gate is a TCP proxy to one etcd member that can be cut: while cut it
// forwards nothing in either direction and answers nothing, yet closes no
// connection (no RST, no FIN), as a firewall dropping packets or a cut
// link does; new connections are accepted and then hear nothing. Heal
// closes the connections that lived through the cut (their streams lost
// bytes) and forwards again; the client reconnects.
type gate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &gate{ln: ln, target: strings.TrimPrefix(target, "http://"), conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
	})
	return p
}

func (p *gate) endpoint() string { return "http://" + p.ln.Addr().String() }

func (p *gate) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = true
	return p.cut
}

func (p *gate) isCut() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.cut }

func (p *gate) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.track(c) {
			go io.Copy(io.Discard, c)
			continue
		}
		d, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.track(d)
		go p.pipe(d, c)
		go p.pipe(c, d)
	}
}

// pipe copies src to dst, dropping what it reads while the gate is cut.
func (p *gate) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			src.Close()
			dst.Close()
			return
		}
		if p.isCut() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

func (p *gate) Cut() { p.mu.Lock(); p.cut = true; p.mu.Unlock() }

func (p *gate) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
	p.closeAll()
}

func (p *gate) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// answers describes what each server said to m, for the log.
func answers(r *relay, m *dhcpv4.DHCPv4, wait time.Duration, want ...dhcpv4.MessageType) (map[string]*dhcpv4.DHCPv4, string) {
	got := map[string]*dhcpv4.DHCPv4{}
	for _, a := range r.exchange(m, wait, want...) {
		got[a.ServerIdentifier().String()] = a
	}
	var b strings.Builder
	for _, ip := range serverIPs {
		a, ok := got[ip]
		switch {
		case !ok:
			fmt.Fprintf(&b, " %s: nothing;", ip)
		case a.MessageType() == dhcpv4.MessageTypeAck:
			fmt.Fprintf(&b, " %s: ACK %v for %v;", ip, a.YourIPAddr, a.IPAddressLeaseTime(0))
		default:
			fmt.Fprintf(&b, " %s: %v %v;", ip, a.MessageType(), a.YourIPAddr)
		}
	}
	return got, strings.TrimSpace(b.String())
}

// TestClusterPartition: server 0 reaches the cluster through gates that
// are cut while 200 clients are getting addresses, server 1 directly.
// Every client completes through server 1; server 0 grants nothing new
// while cut, renews from memory what its view holds, and serves again
// once the gates heal. The test logs what each server answered.
func TestClusterPartition(t *testing.T) {
	g := newSegment(t)
	c := etcdtest.StartCluster(t, 3)
	gates := make([]*gate, len(c.Endpoints))
	var eps []string
	for i, ep := range c.Endpoints {
		gates[i] = newGate(t, ep)
		eps = append(eps, gates[i].endpoint())
	}
	cutOff := startServer(t, g, 0, etcdtest.Dial(t, eps...))
	startServer(t, g, 1, c.Etcd())
	r := newRelay(t, g)

	n := *nClients
	cutAt := time.Time{}
	acked := runFaulted(t, r, n, func() int { return len(cutOff.Leases()) }, "server 0 cut from etcd", func() {
		for _, p := range gates {
			p.Cut()
		}
		cutAt = time.Now()
	})
	checkAll(t, c.Etcd(), acked)
	view := map[string]bool{}
	for _, l := range cutOff.Leases() {
		view[l.MAC.String()] = true
	}
	var known, unknown net.HardwareAddr
	for i := range n {
		mac := clientMAC(i)
		if view[mac.String()] && known == nil {
			known = mac
		}
		if !view[mac.String()] && unknown == nil {
			unknown = mac
		}
	}
	require.NotNil(t, known, "no lease in server 0's view")
	require.NotNil(t, unknown, "server 0's view holds every lease despite the cut")

	// Still cut: what each server answers.
	for _, probe := range []struct {
		what string
		mac  net.HardwareAddr
	}{{"renewal of a lease in server 0's view", known}, {"renewal of a lease bound during the cut", unknown}} {
		req := r.msg(probe.mac, dhcpv4.MessageTypeRequest)
		req.ClientIPAddr = acked[probe.mac.String()].AsSlice()
		got, desc := answers(r, req, 3*time.Second, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
		t.Logf("%v after the cut, %s: %s", time.Since(cutAt).Round(time.Millisecond), probe.what, desc)
		a := got[serverIPs[1]]
		if assert.NotNil(t, a, "server 1 (etcd reachable) did not answer the %s", probe.what) {
			assert.Equal(t, dhcpv4.MessageTypeAck, a.MessageType())
		}
		if a := got[serverIPs[0]]; a != nil && a.MessageType() == dhcpv4.MessageTypeAck {
			assert.Equal(t, acked[probe.mac.String()].String(), a.YourIPAddr.String(), "server 0 ACKed another address")
			assert.Less(t, a.IPAddressLeaseTime(0), 10*time.Minute, "server 0 promised a full lease without etcd")
		}
	}
	newMAC := clientMAC(n)
	got, desc := answers(r, r.msg(newMAC, dhcpv4.MessageTypeDiscover), 3*time.Second, dhcpv4.MessageTypeOffer)
	t.Logf("%v after the cut, DISCOVER of a new client: %s", time.Since(cutAt).Round(time.Millisecond), desc)
	assert.Nil(t, got[serverIPs[0]], "server 0 offered an address without etcd")
	assert.NotNil(t, got[serverIPs[1]], "server 1 did not offer")

	// Healed: server 0 offers again, by itself, without a restart.
	for _, p := range gates {
		p.Heal()
	}
	healed := time.Now()
	require.Eventually(t, func() bool {
		got, _ := answers(r, r.msg(newMAC, dhcpv4.MessageTypeDiscover), time.Second, dhcpv4.MessageTypeOffer)
		return got[serverIPs[0]] != nil
	}, 30*time.Second, 100*time.Millisecond, "server 0 never offered again after the gates healed")
	t.Logf("server 0 offers again %v after the gates healed", time.Since(healed).Round(time.Millisecond))
	bindLate(t, r, c, acked, n)
	// The watch caught up: server 0's view holds every lease again.
	require.Eventually(t, func() bool {
		m := map[string]bool{}
		for _, l := range cutOff.Leases() {
			m[l.MAC.String()] = true
		}
		for mac := range acked {
			if !m[mac] {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "server 0's view after the heal")
}
