package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/internal/etcdtest"
	"github.com/pxekit/pxekit/internal/simclient"
	"github.com/pxekit/pxekit/internal/testutil"
)

// The rack tests run two fleet programs, each a process of its own in a
// network namespace, in full DHCP mode on one Ethernet segment (a bridge
// in a namespace of its own) with one etcd, and play a rack of UEFI
// machines from a third namespace on the same bridge: DORA, the GRUB menu
// over TFTP from the server that ACKed, the answer file over HTTP, the
// installer's report. etcd runs on the test's loopback; each server
// reaches it through a forwarder the test runs, listening on the server
// namespace's own loopback.

const (
	rackHosts    = 200
	rackNet      = "10.233.7.0/24"
	rackPool     = "10.233.7.10-10.233.7.250"
	rackClientIP = "10.233.7.3"
	rackHTTPPort = 8080
)

var rackServerIPs = [2]string{"10.233.7.1", "10.233.7.2"}

// rack is one segment with its servers, its etcd and its machines.
type rack struct {
	t      *testing.T
	brNS   string
	srvNS  [2]string
	srvIf  [2]string
	cliNS  string
	cliIf  string
	etcd   *etcdtest.Etcd
	prefix string
	inv    string
	macs   []string
	links  [2]*rackLink
	srv    [2]*child
	dh     *simclient.DHCP

	addrMu sync.Mutex // serializes ip addr add
}

// newRack makes the segment, starts etcd and writes an inventory of
// rackHosts hosts; the servers are started by startServer.
func newRack(t *testing.T, prefix string) *rack {
	t.Helper()
	testutil.RequireNetns(t)
	needHostLoaders(t)
	e := etcdtest.Start(t) // skips without etcd-server
	id := fmt.Sprint(os.Getpid() % 100000)
	r := &rack{t: t, etcd: e, prefix: prefix, brNS: "rack-" + id + "-br", cliNS: "rack-" + id + "-c", cliIf: "rk" + id + "c"}
	br := testutil.NewSegment(t, r.brNS)
	for i := range 2 {
		r.srvNS[i], r.srvIf[i] = fmt.Sprintf("rack-%s-s%d", id, i), fmt.Sprintf("rk%ss%d", id, i)
		br.Port(r.srvNS[i], r.srvIf[i], rackServerIPs[i]+"/24")
		r.links[i] = newRackLink(t, r.srvNS[i], strings.TrimPrefix(e.Endpoint, "http://"))
	}
	br.Port(r.cliNS, r.cliIf, rackClientIP+"/24")

	dir := t.TempDir()
	fakeNetboot(t, filepath.Join(dir, "nb"))
	text, macs := multiInventory(rackHosts)
	r.inv, r.macs = filepath.Join(dir, "fleet.yaml"), macs
	require.NoError(t, os.WriteFile(r.inv, []byte(text), 0o644))

	require.NoError(t, simclient.InNetns(r.cliNS, func() error {
		var err error
		r.dh, err = simclient.ListenDHCP(context.Background(), r.cliIf)
		return err
	}))
	t.Cleanup(func() { r.dh.Close() })
	return r
}

// rackLink forwards TCP connections from a listener on a server
// namespace's loopback to etcd on the test's loopback: the server's way to
// its etcd, which the test can cut (partition) and mend (heal).
type rackLink struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool // open connections, both sides
}

func newRackLink(t *testing.T, ns, target string) *rackLink {
	t.Helper()
	k := &rackLink{target: target, conns: map[net.Conn]bool{}}
	require.NoError(t, simclient.InNetns(ns, func() error {
		var err error
		k.l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}))
	t.Cleanup(func() { k.l.Close() })
	go func() {
		for {
			c, err := k.l.Accept()
			if err != nil {
				return
			}
			go k.pipe(c)
		}
	}()
	return k
}

// track adds c to the open connections, unless the link is cut.
func (k *rackLink) track(c net.Conn) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conns[c] = true
	return !k.cut
}

func (k *rackLink) untrack(c net.Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.conns, c)
}

func (k *rackLink) pipe(c net.Conn) {
	defer c.Close()
	defer k.untrack(c)
	if !k.track(c) {
		// Cut: the connection is accepted and nothing answers, as
		// when a partition drops packets; heal closes it.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	u, err := net.DialTimeout("tcp", k.target, 2*time.Second)
	if err != nil {
		return // etcd is down: the server sees its connection closed
	}
	defer u.Close()
	defer k.untrack(u)
	if !k.track(u) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done // either side closed: close both
}

// partition cuts the link: open connections end, new ones hang.
func (k *rackLink) partition() { k.set(true) }

// heal mends the link: the hanging connections end, new ones reach etcd.
func (k *rackLink) heal() { k.set(false) }

func (k *rackLink) set(cut bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cut = cut
	for c := range k.conns {
		c.Close()
	}
}

func (k *rackLink) addr() string { return k.l.Addr().String() }

// startServer starts fleet server i (the test binary as the program, see
// TestMain) in its namespace and waits until it serves HTTP.
func (r *rack) startServer(i int) *child {
	t := r.t
	t.Helper()
	args, err := json.Marshal([]string{"-inventory", r.inv, "-dhcp", "full", "-iface", r.srvIf[i], "-pool", rackPool,
		"-dns", rackServerIPs[i], "-http-addr", fmt.Sprintf(":%d", rackHTTPPort), "-tftp-addr", ":69",
		"-syslog-addr", "", "-progress", "log", "-store", "etcd://" + r.links[i].addr() + "/" + r.prefix})
	require.NoError(t, err)
	c := &child{http: r.base(i), stderr: &syncBuffer{}, done: make(chan error, 1)}
	// ip netns exec becomes the program: its pid is the server's.
	c.cmd = exec.Command("ip", "netns", "exec", r.srvNS[i], os.Args[0])
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(args))
	c.cmd.Stderr = c.stderr
	require.NoError(t, c.cmd.Start())
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			// The server's log, for the post-mortem.
			p := filepath.Join(os.TempDir(), fmt.Sprintf("%s-server%d.log", t.Name(), i))
			if os.WriteFile(p, []byte(c.stderr.String()), 0o644) == nil {
				t.Logf("server %d's log: %s", i, p)
			}
		}
		_ = c.cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("server %d (pid %d) did not exit", i, c.cmd.Process.Pid)
		}
	})
	hc := r.httpClient(netip.Addr{})
	deadline := time.Now().Add(30 * time.Second) // a race-instrumented binary starts slowly
	for {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("server %d exited: %v\n%s", i, err, c.stderr.String())
		default:
		}
		if resp, err := hc.Get(c.http + "status.json"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %d not serving after 30 s:\n%s", i, c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.srv[i] = c
	return c
}

func (r *rack) base(i int) string {
	return fmt.Sprintf("http://%s:%d/", rackServerIPs[i], rackHTTPPort)
}

// httpClient is an HTTP client in the machines' namespace, connecting from
// local (the namespace's own address when invalid), one connection per
// request as installers make them.
func (r *rack) httpClient(local netip.Addr) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, DisableKeepAlives: true,
		DialContext: simclient.NetnsDialer(r.cliNS, local, 3*time.Second),
	}}
}

// status reads server i's status.json, by MAC.
func (r *rack) status(i int) (map[string]HostStatus, error) {
	resp, err := r.httpClient(netip.Addr{}).Get(r.base(i) + "status.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	out := map[string]HostStatus{}
	for _, h := range st.Hosts {
		out[h.MAC] = h
	}
	return out, nil
}

// serverIndex is the index of the server whose address ip is, or -1.
func serverIndex(ip net.IP) int {
	for i, s := range rackServerIPs {
		if ip.String() == s {
			return i
		}
	}
	return -1
}

// rackMachine is what one simulated machine did.
type rackMachine struct {
	mac    net.HardwareAddr
	n      int // index in the inventory
	ip     netip.Addr
	srv    int       // the server of its latest ACK
	ackAt  time.Time // its first ACK
	boots  int       // DORAs that ended in an ACK
	tok    string
	answer []int // answer-file status codes (0: no answer)
	report []int // report status codes
	// answerFrom counts answer files (200) by server.
	answerFrom [2]int
	// wrongMenus are the menus it got for another MAC (or for an
	// unknown client), after which it rebooted.
	wrongMenus []string
	done       bool
	err        error

	// mu guards ip, srv, ackAt, tok and done, which the outage test
	// reads while the machine runs; the rest is read after it ended.
	mu sync.Mutex
}

func (m *rackMachine) ipAt() netip.Addr { m.mu.Lock(); defer m.mu.Unlock(); return m.ip }
func (m *rackMachine) srvAt() int       { m.mu.Lock(); defer m.mu.Unlock(); return m.srv }
func (m *rackMachine) tokAt() string    { m.mu.Lock(); defer m.mu.Unlock(); return m.tok }
func (m *rackMachine) doneAt() bool     { m.mu.Lock(); defer m.mu.Unlock(); return m.done }

// rackLeasedBefore returns the machines whose first ACK came before at.
func rackLeasedBefore(ms []*rackMachine, at time.Time) []*rackMachine {
	var out []*rackMachine
	for _, m := range ms {
		m.mu.Lock()
		if !m.ackAt.IsZero() && m.ackAt.Before(at) {
			out = append(out, m)
		}
		m.mu.Unlock()
	}
	return out
}

// rackSchedule is a firmware's retransmission schedule, shortened: a rack
// test waits seconds where EDK2 waits a minute, and reboots instead.
var rackSchedule = []time.Duration{2 * time.Second, 3 * time.Second, 3 * time.Second}

// dora leases an address as a UEFI machine does and returns the ACK.
func (r *rack) dora(ctx context.Context, mac net.HardwareAddr, xid uint32) (*dhcpv4.DHCPv4, error) {
	offer, err := r.dh.Exchange(ctx, simclient.UEFIRequest(mac, xid, dhcpv4.MessageTypeDiscover), dhcpv4.MessageTypeOffer, rackSchedule, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("DISCOVER: %w", err)
	}
	req := simclient.UEFIRequest(mac, xid, dhcpv4.MessageTypeRequest)
	req.Options.Update(dhcpv4.OptServerIdentifier(offer.ServerIdentifier()))
	req.Options.Update(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))
	ack, err := r.dh.Exchange(ctx, req, dhcpv4.MessageTypeAck, rackSchedule, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("REQUEST: %w", err)
	}
	return ack, nil
}

// addAddr puts ip on the machines' interface, so that they can send from
// it: the servers give a host's menu and answer file to its address only.
func (r *rack) addAddr(ip netip.Addr) error {
	r.addrMu.Lock()
	defer r.addrMu.Unlock()
	out, err := exec.Command("ip", "-n", r.cliNS, "addr", "add", ip.String()+"/32", "dev", r.cliIf).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("File exists")) && !bytes.Contains(out, []byte("already assigned")) {
		return fmt.Errorf("ip addr add %s: %v: %s", ip, err, out)
	}
	return nil
}

// tftp reads name from server srv, from ip, in the machines' namespace.
func (r *rack) tftp(ctx context.Context, srv int, ip netip.Addr, name string, o simclient.TFTPOptions) (simclient.TFTPResult, []byte, error) {
	c := &simclient.TFTP{Server: netip.AddrPortFrom(netip.MustParseAddr(rackServerIPs[srv]), 69), Local: ip,
		Timeout: time.Second, Retries: 4}
	var buf bytes.Buffer
	var res simclient.TFTPResult
	err := simclient.InNetns(r.cliNS, func() error {
		var err error
		res, err = c.Read(ctx, name, o, &buf)
		return err
	})
	return res, buf.Bytes(), err
}

// rackHooks let a test watch and steer the machines.
type rackHooks struct {
	// answered is called after each answer file served (200); sent is
	// when the request that got it left the machine.
	answered func(m *rackMachine, srv int, sent time.Time)
	// installTime is how long the install takes.
	installTime time.Duration
}

// boot runs machine m from power-on to its report as firmware, GRUB and
// the installer do, within ctx: a machine that loses its server (no answer
// over TFTP, a refused connection) reboots and starts again from DHCP,
// and a 503 is retried after a second, as the installers retry.
func (r *rack) boot(ctx context.Context, m *rackMachine, h rackHooks) {
	macDash := macPath(m.mac.String())
	body := fmt.Sprintf(`{"hostname":"h%03d","os":"debian-12","status":"ok","checks":[]}`, m.n)
	pause := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	var lastErr error
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 && !pause(500*time.Millisecond) {
			break
		}
		// Firmware: DHCP, the address on the interface.
		ack, err := r.dora(ctx, m.mac, uint32(m.n)<<16|uint32(attempt))
		if err != nil {
			lastErr = err
			continue
		}
		ip, _ := netip.AddrFromSlice(ack.YourIPAddr.To4())
		srv := serverIndex(ack.ServerIdentifier())
		if srv < 0 || !ip.IsValid() {
			m.err = fmt.Errorf("ACK from %v for %v", ack.ServerIdentifier(), ack.YourIPAddr)
			return
		}
		if m.ip.IsValid() && m.ip != ip {
			m.err = fmt.Errorf("a second address: %s, then %s", m.ip, ip)
			return
		}
		m.mu.Lock()
		m.ip, m.srv, m.boots = ip, srv, m.boots+1
		if m.ackAt.IsZero() {
			m.ackAt = time.Now()
		}
		m.mu.Unlock()
		if err := r.addAddr(ip); err != nil {
			m.err = err
			return
		}
		// shim's size probe of the boot file, then GRUB reads its menu.
		if _, _, err := r.tftp(ctx, srv, ip, ack.BootFileNameOption(), simclient.TFTPOptions{BlockSize: 1468, TSize: true, Probe: true}); err != nil {
			lastErr = fmt.Errorf("boot file: %w", err)
			continue
		}
		_, menu, err := r.tftp(ctx, srv, ip, "/grub/grub.cfg", simclient.TFTPOptions{BlockSize: 1024, TSize: true})
		if err != nil {
			lastErr = fmt.Errorf("grub.cfg: %w", err)
			continue
		}
		// fleet's grub.cfg begins with the per-host snippet: GRUB
		// hands over to the MAC's own file ($prefix is /grub).
		if bytes.Contains(menu, []byte("configfile")) {
			if _, own, err := r.tftp(ctx, srv, ip, "/grub/grub.cfg-01-"+macDash, simclient.TFTPOptions{BlockSize: 1024, TSize: true}); err == nil {
				menu = own
			}
		}
		gb, err := simclient.ParseGRUBMenu(string(menu))
		if err != nil {
			// The menu of an address the server could not tie to
			// this MAC (see wrongMenus in rackSummary).
			m.wrongMenus = append(m.wrongMenus, fmt.Sprintf("%s to %s: %v", rackServerIPs[srv], ip, err))
			lastErr = fmt.Errorf("grub.cfg: %w", err)
			continue
		}
		answer := simclient.ExpandGRUBVars(gb.Answer, map[string]string{"net_default_mac": m.mac.String()})
		au, err := url.Parse(answer)
		if err != nil || au.Host != fmt.Sprintf("%s:%d", rackServerIPs[srv], rackHTTPPort) {
			m.err = fmt.Errorf("grub.cfg names answer file %q, not on the server that ACKed (%s)", answer, rackServerIPs[srv])
			return
		}
		parts := strings.Split(strings.Trim(au.Path, "/"), "/") // hosts/MAC/TOKEN/preseed.cfg
		if len(parts) != 4 || parts[0] != "hosts" {
			m.err = fmt.Errorf("grub.cfg names answer file %q", answer)
			return
		}
		if parts[1] != macDash {
			// Another host's install menu (see wrongMenus in rackSummary).
			m.wrongMenus = append(m.wrongMenus, fmt.Sprintf("%s to %s: %s's install menu", rackServerIPs[srv], ip, parts[1]))
			lastErr = fmt.Errorf("grub.cfg names another host's answer file %q", answer)
			continue
		}
		m.mu.Lock()
		m.tok = parts[2]
		m.mu.Unlock()
		// The installer: its answer file, retried while the server
		// answers 503; a server gone means a reboot.
		hc := r.httpClient(ip)
		sent := time.Now()
		code, data := rackDo(hc, http.MethodGet, answer, "")
		for code == http.StatusServiceUnavailable && pause(time.Second) {
			m.answer = append(m.answer, code)
			sent = time.Now()
			code, data = rackDo(hc, http.MethodGet, answer, "")
		}
		m.answer = append(m.answer, code)
		if code != http.StatusOK {
			lastErr = fmt.Errorf("answer file from %s: %d", rackServerIPs[srv], code)
			continue
		}
		if !bytes.Contains(data, []byte("d-i ")) {
			m.err = fmt.Errorf("answer file: not a preseed: %.100q", data)
			return
		}
		m.answerFrom[srv]++
		if h.answered != nil {
			h.answered(m, srv, sent)
		}
		if !pause(h.installTime) {
			break
		}
		// The report, to the server of the answer file, else (gone) to
		// the other one; retried while refused with 503.
		for try := 0; ctx.Err() == nil; try++ {
			to := srv
			if try%2 == 1 {
				to = 1 - srv
			}
			code, _ := rackDo(hc, http.MethodPost, r.base(to)+"api/report/"+macDash+"/"+m.tok, body)
			m.report = append(m.report, code)
			if code >= 200 && code < 300 || code == http.StatusConflict {
				m.mu.Lock()
				m.done = true
				m.mu.Unlock()
				return
			}
			if code == http.StatusServiceUnavailable || code == 0 {
				pause(500 * time.Millisecond)
				continue
			}
			m.err = fmt.Errorf("report to %s: %d", rackServerIPs[to], code)
			return
		}
	}
	m.err = fmt.Errorf("not done: %v (last error: %v)", ctx.Err(), lastErr)
}

// rackDo sends one request and returns its status (0 when there was no
// answer) and body.
func rackDo(hc *http.Client, method, u, body string) (int, []byte) {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data
}

// machines makes one rackMachine per inventory host.
func (r *rack) machines() []*rackMachine {
	ms := make([]*rackMachine, len(r.macs))
	for i, s := range r.macs {
		mac, err := net.ParseMAC(s)
		require.NoError(r.t, err)
		ms[i] = &rackMachine{mac: mac, n: i, srv: -1}
	}
	return ms
}

// checkOutcome asserts what every rack test ends with: every machine done
// with one address of its own, etcd's leases and records agreeing, each
// host's record written three times (token, installing, installed: one
// install) with its report, and the status pages of the running servers
// showing every host installed.
func (r *rack) checkOutcome(ms []*rackMachine, running []int) {
	t := r.t
	t.Helper()
	byIP := map[netip.Addr]string{}
	for _, m := range ms {
		if !assert.True(t, m.done, "%s: %v", m.mac, m.err) {
			continue
		}
		if other, dup := byIP[m.ip]; dup {
			t.Errorf("%s ACKed to %s and %s", m.ip, other, m.mac)
		}
		byIP[m.ip] = m.mac.String()
	}

	cli := etcdClient(t, r.etcd)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Leases: every MAC's one address, no address bound to two MACs.
	now := time.Now()
	resp, err := cli.Get(ctx, r.prefix+"/dhcp/leases/", clientv3.WithPrefix())
	require.NoError(t, err)
	ipOwner := map[netip.Addr]string{}
	macIPs := map[string][]netip.Addr{}
	macKey := map[string]netip.Addr{}
	for _, kv := range resp.Kvs {
		var l dhcpsrv.Lease
		require.NoError(t, json.Unmarshal(kv.Value, &l), "%s", kv.Key)
		k := string(kv.Key)
		switch {
		case strings.Contains(k, "/leases/ip/"):
			if l.State != dhcpsrv.LeaseBound || !now.Before(l.Expiry) {
				continue
			}
			if other, dup := ipOwner[l.IP]; dup {
				t.Errorf("etcd: %s bound to %s and %s", l.IP, other, l.MAC)
			}
			ipOwner[l.IP] = l.MAC.String()
			macIPs[l.MAC.String()] = append(macIPs[l.MAC.String()], l.IP)
		case strings.Contains(k, "/leases/mac/"):
			macKey[l.MAC.String()] = l.IP
		}
	}
	for _, m := range ms {
		key := m.mac.String()
		if assert.Len(t, macIPs[key], 1, "%s: bound addresses in etcd", key) {
			assert.Equal(t, m.ip, macIPs[key][0], "%s: etcd's address and the ACK's", key)
		}
		assert.Equal(t, m.ip, macKey[key], "%s: etcd's MAC key", key)
	}

	// Install state: one install, one report per host.
	resp, err = cli.Get(ctx, r.prefix+"/state/hosts/", clientv3.WithPrefix())
	require.NoError(t, err)
	assert.Len(t, resp.Kvs, len(ms))
	for _, kv := range resp.Kvs {
		rec, err := decodeRecord(string(kv.Key), kv.Value)
		require.NoError(t, err)
		assert.Equal(t, Installed, rec.State, rec.MAC)
		assert.NotNil(t, rec.Report, rec.MAC)
		assert.Equal(t, int64(3), kv.Version, "writes of %s: token, installing, installed", kv.Key)
	}

	// The status pages of the running servers agree with etcd and with
	// each other; an address a page shows is the host's lease.
	var pages []map[string]HostStatus
	deadline := time.Now().Add(15 * time.Second)
	for _, i := range running {
		for {
			st, err := r.status(i)
			n := 0
			for _, h := range st {
				if h.State == Installed {
					n++
				}
			}
			if err == nil && n == len(ms) {
				pages = append(pages, st)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d: %d of %d hosts installed on its status page (%v)", i, n, len(ms), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var wrongIP []string
	for pi, st := range pages {
		shown := map[string]string{}
		for _, m := range ms {
			h := st[m.mac.String()]
			if h.IP != "" {
				if h.IP != m.ip.String() {
					wrongIP = append(wrongIP, fmt.Sprintf("server %d's page shows %s for %s, which leased %s", running[pi], h.IP, m.mac, m.ip))
				}
				if other, dup := shown[h.IP]; dup {
					wrongIP = append(wrongIP, fmt.Sprintf("server %d's page shows %s for %s and %s", running[pi], h.IP, other, m.mac))
				}
				shown[h.IP] = m.mac.String()
			}
			if pi > 0 {
				p := pages[0][m.mac.String()]
				assert.Equal(t, p.State, h.State, m.mac)
				assert.Equal(t, p.Next, h.Next, m.mac)
				if assert.NotNil(t, h.Report, m.mac) && assert.NotNil(t, p.Report, m.mac) {
					assert.True(t, p.Report.At.Equal(h.Report.At), "%s: report time %v and %v", m.mac, p.Report.At, h.Report.At)
				}
			}
		}
	}
	// A page showed the address of an OFFER the host never took (it took
	// the other server's) until DHCP steps carried the ACK's address only.
	assert.Empty(t, wrongIP, "status pages show addresses the hosts do not hold")
}

// answerLines counts, per MAC, the answer files the servers' logs say they
// served.
func answerLines(logs ...string) map[string]int {
	re := regexp.MustCompile(`stage=answer mac=([0-9a-f:]{17})`)
	out := map[string]int{}
	for _, l := range logs {
		for _, m := range re.FindAllStringSubmatch(l, -1) {
			out[m[1]]++
		}
	}
	return out
}

// runAll boots every machine at once (each started after its delay) and
// waits for all of them.
func (r *rack) runAll(ctx context.Context, ms []*rackMachine, delay func(i int) time.Duration, h rackHooks) {
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			if d := delay(i); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			r.boot(ctx, m, h)
		})
	}
	wg.Wait()
}

// rackSummary logs where the answer files came from and fails on any
// machine served another's menu: fleet once tied an
// address to a MAC on a REQUEST meant for the other server (dhcpsrv's
// Bindings now trust only this server's own ACK in full mode), so a server
// could hand X the install menu of Y, which had asked the other server for
// that address.
func rackSummary(t *testing.T, ms []*rackMachine, took time.Duration) {
	var from [2]int
	reboots, wrong := 0, 0
	for _, m := range ms {
		from[0] += m.answerFrom[0]
		from[1] += m.answerFrom[1]
		reboots += max(m.boots-1, 0)
		wrong += len(m.wrongMenus)
	}
	t.Logf("%d machines in %.1f s: answer files %d from server 0, %d from server 1; %d reboots after an ACK",
		len(ms), took.Seconds(), from[0], from[1], reboots)
	if wrong == 0 {
		return
	}
	for _, m := range ms {
		for _, w := range m.wrongMenus {
			t.Errorf("%s: a menu not its own, from %s", m.mac, w)
		}
	}
}

// startRack makes the rack, starts both servers and returns its machines
// with a context that ends the run after limit.
func startRack(t *testing.T, prefix string, limit time.Duration) (*rack, []*rackMachine, context.Context) {
	t.Helper()
	r := newRack(t, prefix)
	r.startServer(0)
	r.startServer(1)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return r, r.machines(), ctx
}

// runUntil boots the machines in the background, machine i powering on
// i*step after the start, and waits for trigger. It returns when the run
// started, a channel closed once every machine has finished, and false
// when the rack finished before trigger was closed.
func (r *rack) runUntil(ctx context.Context, ms []*rackMachine, step time.Duration, h rackHooks, trigger <-chan struct{}) (time.Time, <-chan struct{}, bool) {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		r.runAll(ctx, ms, func(i int) time.Duration { return time.Duration(i) * step }, h)
	}()
	select {
	case <-trigger:
		return start, done, true
	case <-done:
		return start, done, false
	}
}

// Two fleet servers in full DHCP mode share one segment and one etcd; 200
// UEFI machines boot at once: every MAC holds one address and no address
// two MACs, in etcd and on both status pages; every answer file is served
// once and every report recorded once.
func TestEtcdRackTwoServers(t *testing.T) {
	r, ms, ctx := startRack(t, "rack", 100*time.Second)
	start := time.Now()
	r.runAll(ctx, ms, func(int) time.Duration { return 0 }, rackHooks{installTime: 200 * time.Millisecond})
	rackSummary(t, ms, time.Since(start))
	for _, m := range ms {
		assert.Equal(t, []int{http.StatusOK}, m.answer, "%s: answer-file requests", m.mac)
		assert.Len(t, m.report, 1, "%s: reports sent", m.mac)
	}
	r.checkOutcome(ms, []int{0, 1})
	served := answerLines(r.srv[0].stderr.String(), r.srv[1].stderr.String())
	for _, m := range ms {
		assert.Equal(t, 1, served[m.mac.String()], "%s: answer files the servers logged", m.mac)
	}
}

// Of the two servers, one is killed with SIGKILL while the rack installs:
// the machines it served reboot (or, installing, report to the other), the
// other server finishes every host; no address is held twice and no host
// installs twice.
func TestEtcdRackKillOneServer(t *testing.T) {
	r, ms, ctx := startRack(t, "rackkill", 120*time.Second)
	victim := r.srv[0]
	var fromVictim atomic.Int64
	trigger := make(chan struct{})
	var once sync.Once
	h := rackHooks{installTime: 300 * time.Millisecond, answered: func(m *rackMachine, srv int, _ time.Time) {
		if srv == 0 && fromVictim.Add(1) >= 50 {
			once.Do(func() { close(trigger) })
		}
	}}
	// Machines power on over ten seconds, as a rack's PDUs bring them up.
	start, done, ok := r.runUntil(ctx, ms, 50*time.Millisecond, h, trigger)
	if !ok {
		t.Fatalf("the victim served %d answer files; the rack finished before the kill", fromVictim.Load())
	}
	victim.killNow(t)
	t.Logf("server 0 killed (SIGKILL) after %.1f s, having served %d answer files", time.Since(start).Seconds(), fromVictim.Load())
	<-done
	rackSummary(t, ms, time.Since(start))
	r.checkOutcome(ms, []int{1})
}

// etcd is stopped (SIGKILL) for rackOutage while the rack installs, then
// started again. Meanwhile the servers answer renewals of the leases they
// hold and serve boot files and menus, but lease no new address and refuse
// answer files and reports with 503; each logs the outage once per store.
// Once etcd is back every machine completes, no server restarted.
func TestEtcdRackOutage(t *testing.T) {
	const rackOutage = 30 * time.Second
	r, ms, ctx := startRack(t, "rackdown", 150*time.Second)

	var answered atomic.Int64
	stop := make(chan struct{})
	var amu sync.Mutex
	var answerTimes []time.Time
	h := rackHooks{installTime: 300 * time.Millisecond, answered: func(*rackMachine, int, time.Time) {
		amu.Lock()
		answerTimes = append(answerTimes, time.Now())
		amu.Unlock()
		if answered.Add(1) == 60 {
			close(stop)
		}
	}}
	// Power-on over 30 s: some machines before, some during, some after
	// the outage.
	start, done, ok := r.runUntil(ctx, ms, 150*time.Millisecond, h, stop)
	if !ok {
		t.Fatal("the rack finished before the outage")
	}
	logMark := [2]int{len(r.srv[0].stderr.String()), len(r.srv[1].stderr.String())}
	r.etcd.Stop()
	downAt := time.Now()
	t.Logf("etcd stopped after %.1f s, %d answer files served", downAt.Sub(start).Seconds(), answered.Load())

	// What the machines that had leases before the outage get during it.
	time.Sleep(3 * time.Second) // both stores have noticed
	leased := rackLeasedBefore(ms, downAt.Add(-2*time.Second))
	require.NotEmpty(t, leased)
	renewed, served := 0, 0
	for k, m := range leased[:min(10, len(leased))] {
		ip := m.ipAt()
		ack, err := r.dh.Exchange(ctx, simclient.RenewRequest(m.mac, 0xee000000|uint32(k), ip), dhcpv4.MessageTypeAck,
			[]time.Duration{2 * time.Second, 2 * time.Second}, nil, nil)
		if assert.NoError(t, err, "%s: renewal of %s while etcd is down", m.mac, ip) {
			assert.Equal(t, ip.String(), ack.YourIPAddr.String(), "%s: renewal", m.mac)
			renewed++
		}
		for srv := range 2 {
			// The server that did not ACK it has no menu for it (it
			// knows the host's address from DHCP only when it ACKed),
			// but every server serves the boot loaders.
			res, _, err := r.tftp(ctx, srv, ip, "shimx64.efi", simclient.TFTPOptions{BlockSize: 1468, WindowSize: 4})
			if assert.NoError(t, err, "%s: boot file from server %d while etcd is down", m.mac, srv) {
				assert.Positive(t, res.Size)
				served++
			}
		}
	}
	// A machine that has no lease gets none.
	newMAC, _ := net.ParseMAC("52:54:00:c0:ff:01")
	_, err := r.dora(ctx, newMAC, 0xfe000001)
	assert.Error(t, err, "a new lease while etcd is down")
	// Answer files and reports are refused with 503 (the machines see it
	// themselves; here one request of each, directly).
	var probe *rackMachine
	for _, m := range leased {
		if m.tokAt() != "" && !m.doneAt() {
			probe = m
			break
		}
	}
	if probe != nil {
		hc := r.httpClient(probe.ipAt())
		code, _ := rackDo(hc, http.MethodGet, r.base(probe.srvAt())+"hosts/"+macPath(probe.mac.String())+"/"+probe.tokAt()+"/preseed.cfg", "")
		assert.Equal(t, http.StatusServiceUnavailable, code, "%s: answer file while etcd is down", probe.mac)
		t.Logf("%s: answer file while etcd is down: %d", probe.mac, code)
	} else {
		t.Log("no machine between its menu and its report at the outage: the direct answer-file probe was skipped")
	}
	remaining := rackOutage - time.Since(downAt)
	time.Sleep(max(remaining, 0))
	upMark := [2]int{len(r.srv[0].stderr.String()), len(r.srv[1].stderr.String())}
	r.etcd.Restart(20 * time.Second)
	upAt := time.Now()
	t.Logf("etcd down %.1f s; during it: %d of %d renewals ACKed, %d boot files served", upAt.Sub(downAt).Seconds(), renewed, min(10, len(leased)), served)

	select {
	case <-done:
	case <-ctx.Done():
		<-done
	}
	rackSummary(t, ms, time.Since(start))
	for _, at := range answerTimes {
		if at.After(downAt) && at.Before(upAt) {
			t.Errorf("an answer file served %.1f s into the outage", at.Sub(downAt).Seconds())
		}
	}
	for _, at := range answerTimes {
		if at.After(upAt) {
			t.Logf("first answer file %.1f s after etcd answered again", at.Sub(upAt).Seconds())
			break
		}
	}
	// No machine got a first lease while etcd was down.
	for _, m := range ms {
		if m.ackAt.After(downAt) && m.ackAt.Before(upAt) {
			t.Errorf("%s: first ACK %.1f s into the outage", m.mac, m.ackAt.Sub(downAt).Seconds())
		}
	}
	var refused [2]int // answer files, reports
	for _, m := range ms {
		for k, codes := range [][]int{m.answer, m.report} {
			for _, c := range codes {
				if c == http.StatusServiceUnavailable {
					refused[k]++
				}
			}
		}
	}
	t.Logf("503 answers the machines saw during the outage: %d to answer-file requests, %d to reports", refused[0], refused[1])
	assert.Positive(t, refused[0]+refused[1], "answer files or reports refused with 503")
	r.checkOutcome(ms, []int{0, 1})

	// Every server recovers by itself: an answer file of an installed host
	// asks etcd (StartInstall reads the record), 503 while the server
	// cannot reach it, 403 once it can.
	m0 := ms[0]
	for i := range r.srv {
		u := r.base(i) + "hosts/" + macPath(m0.mac.String()) + "/" + m0.tok + "/preseed.cfg"
		hc := r.httpClient(m0.ip)
		code := 0
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if code, _ = rackDo(hc, http.MethodGet, u, ""); code != http.StatusServiceUnavailable && code != 0 {
				break
			}
		}
		assert.Equal(t, http.StatusForbidden, code, "server %d: an installed host's answer file, etcd back", i)
		t.Logf("server %d: answers from etcd again (seen %.1f s after etcd was back, once the rack had finished)", i, time.Since(upAt).Seconds())
	}

	// Logged once per store and server during the 30 s; the end once
	// per outage (on a loaded machine a store has been seen to fail
	// again for a few seconds just after etcd came back: logged, not
	// failed).
	for i, s := range r.srv {
		all := s.stderr.String()
		down, after := all[logMark[i]:upMark[i]], all[upMark[i]:]
		for _, what := range []string{"etcd install state", "etcd lease store"} {
			assert.Equal(t, 1, strings.Count(down, what+" unreachable"), "server %d: %q outage lines:\n%s", i, what, rackGrep(down, "etcd"))
			assert.Equal(t, 0, strings.Count(down, what+" still unreachable"), "server %d", i)
			assert.LessOrEqual(t, strings.Count(after, what+" unreachable"), strings.Count(after, what+" reachable again"),
				"server %d: %q: a later outage that did not end", i, what)
		}
		// Counted from the outage on: the guard may see etcd back (and
		// say so) before the test takes its mark after the restart.
		assert.GreaterOrEqual(t, strings.Count(all[logMark[i]:], "etcd install state reachable again"), 1, "server %d: recovery lines", i)
		t.Logf("server %d after etcd came back: %s", i, strings.ReplaceAll(rackGrep(after, "etcd "), "\n", "; "))
		logs := all[logMark[i]:]
		// Refusals during the outage are the store's to log, once.
		assert.Zero(t, strings.Count(logs, "report not saved"), "server %d logged every refused report", i)
		select {
		case err := <-s.done:
			s.done <- err
			t.Errorf("server %d exited: %v", i, err)
		default:
		}
	}
}

// Server 0 is cut off from etcd (its connections hang, as in a network
// partition that drops packets) for rackPartition while the rack installs,
// then the link is mended; server 1 keeps etcd throughout. Meanwhile the
// cut-off server leases nothing new and refuses answer files and reports
// (503), so no host installs twice and no address is given twice; the
// other server serves the rack; afterwards every machine completes.
func TestEtcdRackPartition(t *testing.T) {
	const rackPartition = 20 * time.Second
	r, ms, ctx := startRack(t, "rackpart", 120*time.Second)

	var answered atomic.Int64
	cutNow := make(chan struct{})
	var amu sync.Mutex
	var during [2]int // answer files asked for and answered while cut
	var cutAt, healAt time.Time
	h := rackHooks{installTime: 300 * time.Millisecond, answered: func(_ *rackMachine, srv int, sent time.Time) {
		now := time.Now()
		amu.Lock()
		// A request sent before the cut may still be answered after it
		// (its state was saved in time), and one sent during it may be
		// answered once the link is back (the server waited for etcd);
		// one both sent and answered during the cut must not be.
		if !cutAt.IsZero() && sent.After(cutAt) && (healAt.IsZero() || now.Before(healAt)) {
			during[srv]++
		}
		amu.Unlock()
		if answered.Add(1) == 40 {
			close(cutNow)
		}
	}}
	start, done, ok := r.runUntil(ctx, ms, 100*time.Millisecond, h, cutNow)
	if !ok {
		t.Fatal("the rack finished before the partition")
	}
	logMark := len(r.srv[0].stderr.String())
	r.links[0].partition()
	amu.Lock()
	cutAt = time.Now() // after: the commands that cut take time under load
	amu.Unlock()
	time.Sleep(rackPartition)
	amu.Lock()
	healAt = time.Now() // before: from here on the link may carry again
	amu.Unlock()
	r.links[0].heal()
	amu.Lock()
	t.Logf("server 0 cut off from etcd %.1f s into the run, for %.1f s; answer files served meanwhile: %d by server 0, %d by server 1",
		cutAt.Sub(start).Seconds(), healAt.Sub(cutAt).Seconds(), during[0], during[1])
	amu.Unlock()
	<-done
	rackSummary(t, ms, time.Since(start))
	assert.Zero(t, during[0], "answer files from the server cut off from etcd")
	for _, m := range ms {
		if m.ackAt.After(cutAt.Add(3*time.Second)) && m.ackAt.Before(healAt) && m.srv == 0 && m.boots == 1 {
			t.Errorf("%s: first ACK from the cut-off server %.1f s into the partition", m.mac, m.ackAt.Sub(cutAt).Seconds())
		}
	}
	r.checkOutcome(ms, []int{0, 1})
	logs := r.srv[0].stderr.String()[logMark:]
	t.Logf("server 0 during and after the partition: %s", strings.ReplaceAll(rackGrep(logs, "etcd "), "\n", "; "))
	t.Logf("server 0: %d \"report not saved\" errors", strings.Count(logs, "report not saved"))
}

// rackGrep returns the lines of s containing sub.
func rackGrep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
