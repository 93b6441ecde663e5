package dhcpsrv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/simclient"
	"github.com/pxekit/pxekit/internal/testutil"
)

// testNet is a veth pair between two namespaces made for one test: the
// server side (srvNS/srvIf, 10.231.0.1/24) and an unconfigured client side.
type testNet struct {
	srvNS, cliNS string
	srvIf, cliIf string
}

var netSeq int

// requireRoot skips t unless it can make network namespaces and the
// client tools it runs are installed.
func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	testutil.RequireNetns(t)
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian package: udhcpc / isc-dhcp-client)", tool)
		}
	}
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	netSeq++
	id := fmt.Sprintf("%d%c", os.Getpid()%100000, 'a'+netSeq%26)
	n := &testNet{srvNS: "dhcpsrv-" + id + "-s", cliNS: "dhcpsrv-" + id + "-c", srvIf: "dsv" + id + "s", cliIf: "dsv" + id + "c"}
	testutil.AddNetns(t, n.srvNS)
	testutil.AddNetns(t, n.cliNS)
	testutil.Run(t, "ip", "link", "add", n.srvIf, "netns", n.srvNS, "type", "veth", "peer", "name", n.cliIf, "netns", n.cliNS)
	testutil.Run(t, "ip", "-n", n.srvNS, "addr", "add", "10.231.0.1/24", "dev", n.srvIf)
	testutil.Run(t, "ip", "-n", n.srvNS, "link", "set", n.srvIf, "up")
	testutil.Run(t, "ip", "-n", n.cliNS, "link", "set", n.cliIf, "up")
	return n
}

// inNetns runs fn on a thread switched into the named namespace (see
// [simclient.InNetns]). Sockets made there stay in that namespace.
func inNetns(t *testing.T, ns string, fn func() error) error {
	t.Helper()
	return simclient.InNetns(ns, fn)
}

// startServer listens inside the server namespace and serves until cleanup.
func startServer(t *testing.T, n *testNet, cfg Config) *Server {
	t.Helper()
	cfg.Interface = n.srvIf
	if cfg.Mode == ModeFull {
		cfg.Subnet.Prefix = netipPrefix("10.231.0.0/24")
		cfg.Subnet.First, cfg.Subnet.Last = netipAddr("10.231.0.100"), netipAddr("10.231.0.199")
		cfg.Subnet.DNS = append(cfg.Subnet.DNS, netipAddr("10.231.0.1"))
	}
	s, err := listenIn(t, n.srvNS, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Shutdown(context.Background())
	})
	return s
}

// listenIn makes a server of cfg and opens its sockets in namespace ns.
func listenIn(t *testing.T, ns string, cfg Config) (*Server, error) {
	t.Helper()
	var s *Server
	err := inNetns(t, ns, func() error {
		var err error
		if s, err = New(cfg); err != nil {
			return err
		}
		return s.Listen()
	})
	return s, err
}

// newClient opens an nclient4 client with MAC mac on the client side of n,
// sending each message 1+retry times.
func newClient(t *testing.T, n *testNet, mac net.HardwareAddr, retry int) *nclient4.Client {
	t.Helper()
	var c *nclient4.Client
	require.NoError(t, inNetns(t, n.cliNS, func() error {
		var err error
		c, err = nclient4.New(n.cliIf, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(retry), nclient4.WithHWAddr(mac))
		return err
	}))
	return c
}

func udhcpc(t *testing.T, n *testNet, extra ...string) (string, error) {
	script := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"BOUND ip=$ip dns=$dns router=$router\"\nexit 0\n"), 0o755))
	args := append([]string{"netns", "exec", n.cliNS, "udhcpc", "-i", n.cliIf, "-f", "-q", "-n", "-t", "4", "-T", "1", "-s", script}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	return string(out), err
}

func TestNetnsFullUdhcpcAndPXE(t *testing.T) {
	requireRoot(t, "udhcpc")
	n := newTestNet(t)
	events := make(chan Event, 64)
	s := startServer(t, n, Config{Mode: ModeFull, Boot: &BootTable{HTTPBase: "http://10.231.0.1:8080"}, LeaseFile: filepath.Join(t.TempDir(), "leases"),
		OnEvent: func(e Event) {
			select {
			case events <- e:
			default:
			}
		}})

	// Debian installer's DHCP client: vendor class d-i, must get an address
	// and a DNS server.
	out, err := udhcpc(t, n, "-V", "d-i")
	require.NoError(t, err, out)
	assert.Contains(t, out, "BOUND ip=10.231.0.100 dns=10.231.0.1")
	require.Len(t, s.Leases(), 1)

	// A crafted iPXE DISCOVER from the same wire gets address + script URL.
	c := newClient(t, n, mustMAC("52:54:00:12:34:58"), 2)
	defer c.Close()
	rc := recordedClients[2] // ipxe-efi
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease, err := c.Request(ctx, pxeMods(t, rc)...)
	require.NoError(t, err)
	assert.Equal(t, "http://10.231.0.1:8080/boot.ipxe", lease.ACK.BootFileName)
	assert.Equal(t, "10.231.0.101", lease.ACK.YourIPAddr.String())

	seen := map[EventType]bool{}
	for len(events) > 0 {
		e := <-events
		seen[e.Type] = true
	}
	for _, typ := range []EventType{EventDiscover, EventOffer, EventRequest, EventAck} {
		assert.True(t, seen[typ], typ)
	}

	// A second server on the same interface is refused.
	_, err = listenIn(t, n.srvNS, Config{Interface: n.srvIf, Mode: ModeProxy})
	assert.ErrorIs(t, err, ErrAlreadyServing)
}

// pxeMods turns a recorded client into nclient4 modifiers.
func pxeMods(t *testing.T, rc recordedClient) []dhcpv4.Modifier {
	m := buildDiscover(t, rc)
	var mods []dhcpv4.Modifier
	for code, v := range m.Options {
		if code == 53 || code == 55 {
			continue
		}
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(code), v))
	}
	return mods
}

func TestNetnsProxy(t *testing.T) {
	requireRoot(t, "udhcpc")
	n := newTestNet(t)
	startServer(t, n, Config{Mode: ModeProxy, Boot: &BootTable{HTTPBase: "http://10.231.0.1:8080"}})

	c := newClient(t, n, mustMAC("52:54:00:12:34:56"), 2)
	defer c.Close()
	for _, rc := range recordedClients[:2] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		offer, err := c.DiscoverOffer(ctx, pxeMods(t, rc)...)
		cancel()
		require.NoError(t, err, rc.name)
		assert.True(t, offer.YourIPAddr.IsUnspecified(), rc.name)
		assert.True(t, strings.HasSuffix(offer.BootFileName, ".efi"), rc.name)
		assert.Equal(t, "10.231.0.1", offer.ServerIdentifier().String())
	}

	// A plain client gets nothing from a proxy.
	out, err := udhcpc(t, n, "-V", "d-i", "-t", "2")
	assert.Error(t, err, out)
	assert.NotContains(t, out, "BOUND")
}

func TestNetnsICMPProbe(t *testing.T) {
	requireRoot(t)
	n := newTestNet(t)
	testutil.Run(t, "ip", "-n", n.cliNS, "addr", "add", "10.231.0.150/24", "dev", n.cliIf)
	// Generous: the first echo waits for ARP, and CI machines are loaded.
	probe := ICMPProbe(2 * time.Second)
	var used, free bool
	require.NoError(t, inNetns(t, n.srvNS, func() error {
		var err error
		if used, err = probe(context.Background(), netipAddr("10.231.0.150")); err != nil {
			return err
		}
		free, err = probe(context.Background(), netipAddr("10.231.0.151"))
		return err
	}))
	assert.True(t, used, "a host answering ping is in use")
	assert.False(t, free)
}

func TestNetnsDhclient(t *testing.T) {
	requireRoot(t, "dhclient")
	n := newTestNet(t)
	startServer(t, n, Config{Mode: ModeFull})
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n[ \"$reason\" = BOUND ] && echo \"BOUND ip=$new_ip_address dns=$new_domain_name_servers\" >> "+dir+"/out\nexit 0\n"), 0o755))
	logf, err := os.Create(filepath.Join(dir, "dhclient.log"))
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", n.cliNS, "dhclient", "-1", "-d", "-sf", script,
		"-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), n.cliIf)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var got []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got, _ = os.ReadFile(filepath.Join(dir, "out")); len(got) > 0 {
			break
		}
	}
	if len(got) == 0 {
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("dhclient never bound:\n%s", log)
	}
	assert.Contains(t, string(got), "BOUND ip=10.231.0.100 dns=10.231.0.1")
}

func TestNetnsMalformedAndShutdown(t *testing.T) {
	requireRoot(t)
	n := newTestNet(t)
	testutil.Run(t, "ip", "-n", n.cliNS, "addr", "add", "10.231.0.50/24", "dev", n.cliIf)
	var logs testutil.Buffer
	s, err := listenIn(t, n.srvNS, Config{Interface: n.srvIf, Mode: ModeProxy, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()

	var c *net.UDPConn
	require.NoError(t, inNetns(t, n.cliNS, func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 231, 0, 50), Port: 4011})
		return err
	}))
	defer c.Close()
	srv := &net.UDPAddr{IP: net.IPv4(10, 231, 0, 1), Port: 4011}
	_, err = c.WriteToUDP([]byte("not a dhcp packet"), srv)
	require.NoError(t, err)
	// A valid boot-server request still gets its answer afterwards.
	req := asRequest(buildDiscover(t, recordedClients[0]), netip.Addr{}, netip.Addr{})
	req.ClientIPAddr = net.IPv4(10, 231, 0, 50).To4()
	_, err = c.WriteToUDP(req.ToBytes(), srv)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 1500)
	k, _, err := c.ReadFromUDP(buf)
	require.NoError(t, err)
	ack, err := dhcpv4.FromBytes(buf[:k])
	require.NoError(t, err)
	assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	assert.Equal(t, "ipxe/snponly.efi", ack.BootFileName, "proxy: UEFI PXE chainloads iPXE")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	assert.ErrorIs(t, <-done, ErrServerClosed)
	assert.Contains(t, logs.String(), "count.malformed=1")
}

// A proxy shares port 67 with the host's address-giving DHCP server when
// that server allows it (dnsmasq --bind-interfaces), and both get the
// broadcasts.
func TestNetnsProxyBesideDHCPServer(t *testing.T) {
	requireRoot(t)
	n := newTestNet(t)
	var other *net.UDPConn
	require.NoError(t, inNetns(t, n.srvNS, func() error {
		var err error
		other, err = listenUDP(n.srvIf, 67, true)
		return err
	}))
	defer other.Close()
	startServer(t, n, Config{Mode: ModeProxy})

	c := newClient(t, n, mustMAC("52:54:00:12:34:56"), 2)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer, err := c.DiscoverOffer(ctx, pxeMods(t, recordedClients[0])...)
	require.NoError(t, err)
	assert.Equal(t, "ipxe/snponly.efi", offer.BootFileName, "proxy: UEFI PXE chainloads iPXE")
	require.NoError(t, other.SetReadDeadline(time.Now().Add(2*time.Second)))
	buf := make([]byte, 1500)
	_, _, err = other.ReadFromUDP(buf)
	assert.NoError(t, err, "the other server got the broadcast too")

	// A program holding port 67 exclusively makes the proxy fail clearly.
	n2 := newTestNet(t)
	var excl *net.UDPConn
	require.NoError(t, inNetns(t, n2.srvNS, func() error {
		var err error
		excl, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 67})
		return err
	}))
	defer excl.Close()
	_, err = listenIn(t, n2.srvNS, Config{Interface: n2.srvIf, Mode: ModeProxy})
	assert.ErrorIs(t, err, ErrAlreadyServing)
	assert.ErrorContains(t, err, "bind-interfaces")
}

// The attack of one MAC on the pool, end to end over a veth pair: crafted
// DISCOVER retransmissions get one address, crafted REQUESTs for five
// addresses bind at most one.
func TestNetnsOneAddressPerMAC(t *testing.T) {
	requireRoot(t)
	n := newTestNet(t)
	s := startServer(t, n, Config{Mode: ModeFull, LeaseFile: filepath.Join(t.TempDir(), "leases")})
	exchangeAs := func(mac net.HardwareAddr, msgs []*dhcpv4.DHCPv4) []*dhcpv4.DHCPv4 {
		t.Helper()
		c := newClient(t, n, mac, 1)
		defer c.Close()
		var out []*dhcpv4.DHCPv4
		for _, m := range msgs {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := c.SendAndRead(ctx, nclient4.DefaultServers, m, nil)
			cancel()
			require.NoError(t, err)
			out = append(out, resp)
		}
		return out
	}
	countBound := func(mac net.HardwareAddr) int {
		k := 0
		for _, l := range s.Leases() {
			if l.MAC.String() == mac.String() && l.State == LeaseBound {
				k++
			}
		}
		return k
	}

	// Five retransmitted DISCOVERs: one address, offered five times.
	mac := mustMAC("52:54:00:aa:00:01")
	var discs []*dhcpv4.DHCPv4
	for i := range 5 {
		discs = append(discs, withXID(plainDiscover(mac), i))
	}
	offers := exchangeAs(mac, discs)
	for _, o := range offers {
		assert.Equal(t, dhcpv4.MessageTypeOffer, o.MessageType())
		assert.Equal(t, offers[0].YourIPAddr.String(), o.YourIPAddr.String())
	}
	held, bound := addressesOf(s, mac)
	assert.Equal(t, 1, held)
	assert.Zero(t, bound)

	// The same MAC asking for five other addresses: five NAKs, still one.
	var reqs []*dhcpv4.DHCPv4
	for i := range 5 {
		reqs = append(reqs, withXID(asRequest(plainDiscover(mac), netipAddr("10.231.0.1"), netipAddr(fmt.Sprintf("10.231.0.%d", 150+i))), 10+i))
	}
	for _, a := range exchangeAs(mac, reqs) {
		assert.Equal(t, dhcpv4.MessageTypeNak, a.MessageType())
	}
	held, bound = addressesOf(s, mac)
	assert.Equal(t, [2]int{1, 0}, [2]int{held, bound})

	// A MAC the server never saw, REQUESTing five addresses (INIT-REBOOT):
	// one ACK, four NAKs, one lease.
	mac2 := mustMAC("52:54:00:aa:00:02")
	reqs = nil
	for i := range 5 {
		reqs = append(reqs, withXID(asRequest(plainDiscover(mac2), netip.Addr{}, netipAddr(fmt.Sprintf("10.231.0.%d", 160+i))), 20+i))
	}
	acks := 0
	for _, a := range exchangeAs(mac2, reqs) {
		if a.MessageType() == dhcpv4.MessageTypeAck {
			acks++
		}
	}
	assert.Equal(t, 1, acks)
	assert.Equal(t, 1, countBound(mac2))
	assert.Zero(t, countBound(mac))
}

// Listen reports a taken interface before anything is announced; Serve
// then answers on the sockets Listen opened, and Serve alone still listens
// by itself.
func TestNetnsListen(t *testing.T) {
	requireRoot(t)
	n := newTestNet(t)
	newIn := func(mode Mode) (*Server, error) {
		var s *Server
		err := inNetns(t, n.srvNS, func() error {
			var err error
			if s, err = New(Config{Interface: n.srvIf, Mode: mode}); err != nil {
				return err
			}
			return s.Listen()
		})
		return s, err
	}
	s1, err := newIn(ModeProxy)
	require.NoError(t, err)
	assert.Error(t, s1.Listen(), "a second Listen")

	_, err = newIn(ModeProxy)
	assert.ErrorIs(t, err, ErrAlreadyServing, "a second server on the interface")

	done := make(chan error, 1)
	go func() { done <- s1.Serve(context.Background()) }()
	discoverPXE := func() (*dhcpv4.DHCPv4, error) {
		var c *nclient4.Client
		require.NoError(t, inNetns(t, n.cliNS, func() error {
			var err error
			c, err = nclient4.New(n.cliIf, nclient4.WithTimeout(time.Second), nclient4.WithRetry(3), nclient4.WithHWAddr(mustMAC("52:54:00:12:34:56")))
			return err
		}))
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.DiscoverOffer(ctx, pxeMods(t, recordedClients[0])...)
	}
	offer, err := discoverPXE()
	require.NoError(t, err, "Serve after Listen answers")
	assert.Equal(t, "ipxe/snponly.efi", offer.BootFileName, "proxy: UEFI PXE chainloads iPXE")
	assert.Error(t, s1.Serve(context.Background()), "Serve twice")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s1.Shutdown(ctx))
	assert.ErrorIs(t, <-done, ErrServerClosed)

	// The lock went with the sockets. A server that listened and never
	// served shuts down at once, releasing them too.
	s2, err := newIn(ModeProxy)
	require.NoError(t, err)
	require.NoError(t, s2.Shutdown(ctx))
	assert.ErrorIs(t, s2.Listen(), ErrServerClosed)
	assert.ErrorIs(t, s2.Serve(ctx), ErrServerClosed)

	// Serve without Listen opens the sockets itself, as before.
	s3, err := New(Config{Interface: n.srvIf, Mode: ModeProxy, ServerIP: netipAddr("10.231.0.1")})
	require.NoError(t, err)
	done3 := make(chan error, 1)
	go func() { done3 <- inNetns(t, n.srvNS, func() error { return s3.Serve(context.Background()) }) }()
	offer, err = discoverPXE()
	require.NoError(t, err, "Serve without Listen answers")
	assert.Equal(t, "ipxe/snponly.efi", offer.BootFileName, "proxy: UEFI PXE chainloads iPXE")
	s4, err := New(Config{Interface: n.srvIf, Mode: ModeProxy, ServerIP: netipAddr("10.231.0.1")})
	require.NoError(t, err)
	err = inNetns(t, n.srvNS, func() error { return s4.Serve(context.Background()) })
	assert.ErrorIs(t, err, ErrAlreadyServing, "Serve alone still refuses a second server")
	require.NoError(t, s3.Shutdown(ctx))
	assert.ErrorIs(t, <-done3, ErrServerClosed)
}

func TestListenModeOff(t *testing.T) {
	s, err := New(Config{Mode: ModeOff})
	require.NoError(t, err)
	require.NoError(t, s.Listen(), "nothing to open")
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	require.NoError(t, s.Shutdown(context.Background()))
	assert.ErrorIs(t, <-done, ErrServerClosed)
	assert.ErrorIs(t, s.Listen(), ErrServerClosed)
}
