package dhcpsrv

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testServerIP = netip.MustParseAddr("10.77.0.1")

func testSubnet() Subnet {
	return Subnet{
		Prefix: netip.MustParsePrefix("10.77.0.0/24"),
		First:  netip.MustParseAddr("10.77.0.100"), Last: netip.MustParseAddr("10.77.0.199"),
		Router: testServerIP, DNS: []netip.Addr{testServerIP}, Domain: "lab.example", LeaseTime: time.Hour,
	}
}

func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	cfg.Interface = "test0"
	cfg.ServerIP = testServerIP
	if cfg.Mode == ModeFull && !cfg.Subnet.Prefix.IsValid() {
		cfg.Subnet = testSubnet()
	}
	if cfg.Boot == nil {
		cfg.Boot = &BootTable{HTTPBase: "http://10.77.0.1:8080"}
	}
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

var zeroSrc = netip.AddrPortFrom(netip.IPv4Unspecified(), 68)

// exchange runs one request through the handler and decodes the reply.
func exchange(t testing.TB, s *Server, req *dhcpv4.DHCPv4, port int, src netip.AddrPort) (*dhcpv4.DHCPv4, netip.AddrPort) {
	t.Helper()
	out, err := s.handle(context.Background(), req, port, src)
	require.NoError(t, err)
	if out == nil {
		return nil, netip.AddrPort{}
	}
	m, err := dhcpv4.FromBytes(out.bytes)
	require.NoError(t, err)
	return m, out.dst
}

func plainDiscover(mac net.HardwareAddr, mods ...func(*dhcpv4.DHCPv4)) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet, ClientHWAddr: mac,
		TransactionID: dhcpv4.TransactionID{1, 2, 3, 4}, ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero,
		ServerIPAddr: net.IPv4zero, GatewayIPAddr: net.IPv4zero, Options: dhcpv4.Options{}}
	m.Options.Update(dhcpv4.OptMessageType(dhcpv4.MessageTypeDiscover))
	for _, f := range mods {
		f(m)
	}
	return m
}

func asRequest(m *dhcpv4.DHCPv4, server, ip netip.Addr) *dhcpv4.DHCPv4 {
	r := *m
	r.Options = dhcpv4.Options{}
	for k, v := range m.Options {
		r.Options[k] = v
	}
	r.Options.Update(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	if server.IsValid() {
		r.Options.Update(dhcpv4.OptServerIdentifier(server.AsSlice()))
	}
	if ip.IsValid() {
		r.Options.Update(dhcpv4.OptRequestedIPAddress(ip.AsSlice()))
	}
	return &r
}

func withType(m *dhcpv4.DHCPv4, typ dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	r := *m
	r.Options = dhcpv4.Options{}
	for k, v := range m.Options {
		r.Options[k] = v
	}
	r.Options.Update(dhcpv4.OptMessageType(typ))
	return &r
}

func TestProxyRecordedClients(t *testing.T) {
	var events []Event
	var mu sync.Mutex
	s := newTestServer(t, Config{Mode: ModeProxy, OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	want := map[string]struct{ file, vc string }{
		"ovmf-pxe":       {"ipxe/snponly.efi", "PXEClient"}, // GRUB would not find its server
		"ovmf-http":      {"http://10.77.0.1:8080/ipxe/snponly.efi", "HTTPClient"},
		"ipxe-efi":       {"http://10.77.0.1:8080/boot.ipxe", "PXEClient"},
		"ipxe-bios":      {"http://10.77.0.1:8080/boot.ipxe", "PXEClient"},
		"arm64-no-opt93": {"grubaa64.efi", "PXEClient"},
		"relayed-bios":   {"pxelinux.0", "PXEClient"},
	}
	for _, rc := range recordedClients {
		req, err := dhcpv4.FromBytes(recordedPacket(t, rc))
		require.NoError(t, err)
		offer, dst := exchange(t, s, req, 67, zeroSrc)
		w, ok := want[rc.name]
		if !ok {
			assert.Nil(t, offer, "%s: proxy must ignore non-PXE clients", rc.name)
			continue
		}
		require.NotNil(t, offer, rc.name)
		assert.Equal(t, dhcpv4.MessageTypeOffer, offer.MessageType(), rc.name)
		assert.True(t, offer.YourIPAddr.IsUnspecified(), "%s: proxy never assigns", rc.name)
		assert.Equal(t, w.file, offer.BootFileName, rc.name)
		assert.Equal(t, w.file, offer.BootFileNameOption(), rc.name)
		assert.Equal(t, w.vc, offer.ClassIdentifier(), rc.name)
		assert.Equal(t, "10.77.0.1", offer.ServerIPAddr.String(), rc.name)
		assert.Equal(t, "10.77.0.1", offer.TFTPServerName(), rc.name)
		assert.Equal(t, "10.77.0.1", offer.ServerIdentifier().String(), rc.name)
		assert.False(t, offer.Options.Has(dhcpv4.OptionVendorSpecificInformation), "%s: no option 43 by default", rc.name)
		assert.Equal(t, req.Options[optClientGUID], offer.Options[optClientGUID], rc.name)
		assert.Nil(t, offer.Options[51], "%s: no lease time from a proxy", rc.name)
		if rc.giaddr != "" {
			assert.Equal(t, rc.giaddr+":67", dst.String())
		} else {
			assert.Equal(t, "255.255.255.255:68", dst.String())
		}

		// The boot-server REQUEST on port 4011, unicast from the client's
		// new address, is answered unicast with the same file.
		creq := asRequest(req, netip.Addr{}, netip.Addr{})
		creq.ClientIPAddr = net.IPv4(10, 77, 0, 150).To4()
		src := netip.MustParseAddrPort("10.77.0.150:68")
		ack, dst := exchange(t, s, creq, 4011, src)
		require.NotNil(t, ack, rc.name)
		assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
		assert.Equal(t, w.file, ack.BootFileName)
		assert.Equal(t, src, dst)
	}
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for _, e := range events {
		assert.True(t, e.Client.Proxy, "a proxy hands out no address")
		if e.Client.MAC.String() == "52:54:00:12:34:56" {
			types = append(types, string(e.Type))
		}
	}
	assert.Equal(t, []string{"DISCOVER", "REQUEST"}, types, "handle emits received messages; sends are emitted by serveOne")
}

func TestProxyBypassOption43(t *testing.T) {
	s := newTestServer(t, Config{ProxyBypass: true})
	req := buildDiscover(t, recordedClients[0])
	offer, _ := exchange(t, s, req, 67, zeroSrc)
	require.NotNil(t, offer)
	assert.Equal(t, []byte{6, 1, 8, 0xff}, offer.Options[optPXEVendor], "option 43 ends with the end sub-option")
}

func TestFullDORA(t *testing.T) {
	s := newTestServer(t, Config{Mode: ModeFull})
	mac := mustMAC("52:54:00:00:00:01")
	disc := plainDiscover(mac, func(m *dhcpv4.DHCPv4) { m.Options[optVendorClass] = []byte("d-i") })
	offer, dst := exchange(t, s, disc, 67, zeroSrc)
	require.NotNil(t, offer)
	assert.Equal(t, dhcpv4.MessageTypeOffer, offer.MessageType())
	assert.Equal(t, "255.255.255.255:68", dst.String())
	ip := addrOf(offer.YourIPAddr)
	assert.Equal(t, "10.77.0.100", ip.String())
	assert.Equal(t, []net.IP{net.IPv4(10, 77, 0, 1).To4()}, offer.DNS(), "d-i needs option 6")
	assert.Equal(t, "lab.example", offer.DomainName())
	assert.Equal(t, time.Hour, offer.IPAddressLeaseTime(0))
	assert.Empty(t, offer.BootFileName, "no boot file for a non-PXE client")

	ack, _ := exchange(t, s, asRequest(disc, testServerIP, ip), 67, zeroSrc)
	require.NotNil(t, ack)
	assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	assert.Equal(t, ip, addrOf(ack.YourIPAddr))
	require.Len(t, s.Leases(), 1)
	assert.Equal(t, LeaseBound, s.Leases()[0].State)

	// Same client again gets the same address.
	offer2, _ := exchange(t, s, disc, 67, zeroSrc)
	assert.Equal(t, ip, addrOf(offer2.YourIPAddr))

	// Another client never gets it.
	other := plainDiscover(mustMAC("52:54:00:00:00:02"))
	offer3, _ := exchange(t, s, other, 67, zeroSrc)
	assert.NotEqual(t, ip, addrOf(offer3.YourIPAddr))
	nak, dst := exchange(t, s, asRequest(other, netip.Addr{}, ip), 67, zeroSrc)
	require.NotNil(t, nak)
	assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType())
	assert.Equal(t, "255.255.255.255:68", dst.String())

	// Renewal is unicast to ciaddr.
	renew := asRequest(disc, netip.Addr{}, netip.Addr{})
	renew.ClientIPAddr = ip.AsSlice()
	ack, dst = exchange(t, s, renew, 67, netip.AddrPortFrom(ip, 68))
	require.NotNil(t, ack)
	assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	assert.Equal(t, netip.AddrPortFrom(ip, 68), dst)

	// A REQUEST selecting another server is ignored.
	none, _ := exchange(t, s, asRequest(other, netip.MustParseAddr("10.77.0.2"), addrOf(offer3.YourIPAddr)), 67, zeroSrc)
	assert.Nil(t, none)

	// INIT-REBOOT on a foreign network: NAK.
	nak, _ = exchange(t, s, asRequest(other, netip.Addr{}, netip.MustParseAddr("192.168.1.5")), 67, zeroSrc)
	assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType())

	// RELEASE frees the address (kept for the same MAC).
	rel := withType(disc, dhcpv4.MessageTypeRelease)
	rel.ClientIPAddr = ip.AsSlice()
	rel.Options.Update(dhcpv4.OptServerIdentifier(testServerIP.AsSlice()))
	out, _ := exchange(t, s, rel, 67, netip.AddrPortFrom(ip, 68))
	assert.Nil(t, out)
	assert.Equal(t, LeaseReleased, leaseOf(s, ip).State)
	offer4, _ := exchange(t, s, disc, 67, zeroSrc)
	assert.Equal(t, ip, addrOf(offer4.YourIPAddr), "a released address returns to its old client")

	// INFORM: unicast, no address, no lease time.
	inf := withType(disc, dhcpv4.MessageTypeInform)
	inf.ClientIPAddr = net.IPv4(10, 77, 0, 7).To4()
	ack, dst = exchange(t, s, inf, 67, netip.MustParseAddrPort("10.77.0.7:68"))
	require.NotNil(t, ack)
	assert.True(t, ack.YourIPAddr.IsUnspecified())
	assert.Nil(t, ack.Options[51])
	assert.Equal(t, "10.77.0.7:68", dst.String())
}

func leaseOf(s *Server, ip netip.Addr) Lease {
	for _, l := range s.Leases() {
		if l.IP == ip {
			return l
		}
	}
	return Lease{}
}

func TestFullDecline(t *testing.T) {
	s := newTestServer(t, Config{Mode: ModeFull})
	disc := plainDiscover(mustMAC("52:54:00:00:00:03"))
	offer, _ := exchange(t, s, disc, 67, zeroSrc)
	ip := addrOf(offer.YourIPAddr)
	exchange(t, s, asRequest(disc, testServerIP, ip), 67, zeroSrc)
	dec := withType(disc, dhcpv4.MessageTypeDecline)
	dec.Options.Update(dhcpv4.OptRequestedIPAddress(ip.AsSlice()))
	dec.Options.Update(dhcpv4.OptServerIdentifier(testServerIP.AsSlice()))
	out, _ := exchange(t, s, dec, 67, zeroSrc)
	assert.Nil(t, out)
	assert.Equal(t, LeaseDeclined, leaseOf(s, ip).State)
	offer2, _ := exchange(t, s, disc, 67, zeroSrc)
	assert.NotEqual(t, ip, addrOf(offer2.YourIPAddr), "a declined address is quarantined")
}

func TestFullRequestedAndReservation(t *testing.T) {
	sub := testSubnet()
	sub.Reservations = []Reservation{{MAC: mustMAC("52:54:00:00:00:aa"), IP: netip.MustParseAddr("10.77.0.20"), Hostname: "node20"}}
	s := newTestServer(t, Config{Mode: ModeFull, Subnet: sub})
	disc := plainDiscover(mustMAC("52:54:00:00:00:04"), func(m *dhcpv4.DHCPv4) {
		m.Options.Update(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 150)))
	})
	offer, _ := exchange(t, s, disc, 67, zeroSrc)
	assert.Equal(t, "10.77.0.150", offer.YourIPAddr.String(), "a free requested address is honoured")

	res := plainDiscover(mustMAC("52:54:00:00:00:aa"))
	offer, _ = exchange(t, s, res, 67, zeroSrc)
	assert.Equal(t, "10.77.0.20", offer.YourIPAddr.String())
	assert.Equal(t, "node20", offer.HostName())
	ack, _ := exchange(t, s, asRequest(res, testServerIP, netip.MustParseAddr("10.77.0.20")), 67, zeroSrc)
	assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	assert.Equal(t, "node20", ack.HostName())

	// Nobody else may take the reserved address.
	nak, _ := exchange(t, s, asRequest(disc, netip.Addr{}, netip.MustParseAddr("10.77.0.20")), 67, zeroSrc)
	assert.Equal(t, dhcpv4.MessageTypeNak, nak.MessageType())
}

func TestFullPXEGetsBootAndAddress(t *testing.T) {
	s := newTestServer(t, Config{Mode: ModeFull})
	for _, rc := range recordedClients[:4] {
		req := buildDiscover(t, rc)
		offer, _ := exchange(t, s, req, 67, zeroSrc)
		require.NotNil(t, offer, rc.name)
		assert.True(t, addrOf(offer.YourIPAddr).IsValid(), rc.name)
		assert.NotEmpty(t, offer.BootFileName, rc.name)
		ack, _ := exchange(t, s, asRequest(req, testServerIP, addrOf(offer.YourIPAddr)), 67, zeroSrc)
		require.NotNil(t, ack)
		assert.Equal(t, offer.BootFileName, ack.BootFileName, rc.name)
	}
}

func TestPoolExhaustedAndProbe(t *testing.T) {
	sub := testSubnet()
	sub.Last = netip.MustParseAddr("10.77.0.102")
	probed := map[netip.Addr]int{}
	s := newTestServer(t, Config{Mode: ModeFull, Subnet: sub, Probe: func(_ context.Context, ip netip.Addr) (bool, error) {
		probed[ip]++
		return ip.String() == "10.77.0.100", nil
	}})
	offer, _ := exchange(t, s, plainDiscover(mustMAC("52:54:00:00:01:01")), 67, zeroSrc)
	assert.Equal(t, "10.77.0.101", offer.YourIPAddr.String(), "address answering the probe is skipped")
	assert.Equal(t, LeaseDeclined, leaseOf(s, netip.MustParseAddr("10.77.0.100")).State)
	_, _ = exchange(t, s, plainDiscover(mustMAC("52:54:00:00:01:02")), 67, zeroSrc)
	_, err := s.handle(context.Background(), plainDiscover(mustMAC("52:54:00:00:01:03")), 67, zeroSrc)
	assert.ErrorIs(t, err, ErrPoolExhausted)
}

func TestReplyLimits(t *testing.T) {
	long := "http://10.77.0.1/" + strings.Repeat("a", 120)
	s := newTestServer(t, Config{Boot: BootFunc(func(Client) (BootAnswer, error) { return BootAnswer{File: long}, nil })})
	_, err := s.handle(context.Background(), buildDiscover(t, recordedClients[0]), 67, zeroSrc)
	assert.ErrorIs(t, err, ErrBootFileTooLong)

	s = newTestServer(t, Config{Boot: BootFunc(func(Client) (BootAnswer, error) {
		return BootAnswer{File: "x.efi", ServerName: strings.Repeat("n", 250)}, nil
	})})
	req := buildDiscover(t, recordedClients[0])
	delete(req.Options, optMaxMsgSize)
	req.Options[optClientGUID] = nil
	_, err = s.handle(context.Background(), req, 67, zeroSrc)
	require.NoError(t, err, "fits in 548")
	s = newTestServer(t, Config{Boot: BootFunc(func(Client) (BootAnswer, error) {
		return BootAnswer{File: strings.Repeat("f", 127), ServerName: strings.Repeat("n", 255)}, nil
	})})
	req.Options[optClientGUID] = make([]byte, 200)
	_, err = s.handle(context.Background(), req, 67, zeroSrc)
	assert.ErrorIs(t, err, ErrReplyTooLarge)
	// A client announcing 1472 bytes gets the large reply.
	req.Options.Update(dhcpv4.OptMaxMessageSize(1472))
	_, err = s.handle(context.Background(), req, 67, zeroSrc)
	assert.NoError(t, err)
}

func TestLeasesSurviveCleanRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	s, err := New(Config{Interface: "test0", ServerIP: testServerIP, Mode: ModeFull, Subnet: testSubnet(), LeaseFile: path})
	require.NoError(t, err)
	got := map[string]netip.Addr{}
	for i := range 20 {
		mac := mustMAC(fmt.Sprintf("52:54:00:00:02:%02x", i))
		disc := plainDiscover(mac)
		offer, _ := exchange(t, s, disc, 67, zeroSrc)
		ack, _ := exchange(t, s, asRequest(disc, testServerIP, addrOf(offer.YourIPAddr)), 67, zeroSrc)
		require.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
		got[mac.String()] = addrOf(ack.YourIPAddr)
	}
	_, err = New(Config{Interface: "test0", ServerIP: testServerIP, Mode: ModeFull, Subnet: testSubnet(), LeaseFile: path})
	assert.ErrorIs(t, err, ErrLeaseFileBusy, "two servers on one lease file")
	require.NoError(t, s.Shutdown(context.Background()))

	s2 := newTestServer(t, Config{Mode: ModeFull, LeaseFile: path})
	assert.Len(t, s2.Leases(), 20)
	for m, ip := range got {
		offer, _ := exchange(t, s2, plainDiscover(mustMAC(m)), 67, zeroSrc)
		assert.Equal(t, ip, addrOf(offer.YourIPAddr), m)
	}
	fresh, _ := exchange(t, s2, plainDiscover(mustMAC("52:54:00:00:03:01")), 67, zeroSrc)
	for _, ip := range got {
		assert.NotEqual(t, ip, addrOf(fresh.YourIPAddr))
	}
}

func TestRateLimiter(t *testing.T) {
	r := newRateLimiter(1, 3)
	now := time.Unix(0, 0)
	assert.True(t, r.allow([]byte("a"), now))
	assert.True(t, r.allow([]byte("a"), now))
	assert.True(t, r.allow([]byte("a"), now))
	assert.False(t, r.allow([]byte("a"), now))
	assert.True(t, r.allow([]byte("b"), now))
	assert.True(t, r.allow([]byte("a"), now.Add(time.Second)))
}

func TestModeAndPool(t *testing.T) {
	for _, m := range []Mode{"", ModeProxy, ModeFull, ModeOff} {
		_, err := New(Config{Mode: m, Interface: "test0", ServerIP: testServerIP, Subnet: testSubnet()})
		require.NoError(t, err, "mode %q", m)
	}
	_, err := New(Config{Mode: "auto", Interface: "test0", ServerIP: testServerIP})
	require.ErrorContains(t, err, `Config.Mode "auto"`)
	f, l, err := ParsePool("10.77.0.100-10.77.0.199")
	require.NoError(t, err)
	assert.Equal(t, "10.77.0.100", f.String())
	assert.Equal(t, "10.77.0.199", l.String())
	for _, bad := range []string{"10.77.0.100", "a-b", "10.0.0.9-10.0.0.1", "::1-::2"} {
		_, _, err := ParsePool(bad)
		assert.Error(t, err, bad)
	}
	_, err = New(Config{Interface: "x", ServerIP: testServerIP, Mode: ModeFull})
	assert.ErrorContains(t, err, "Subnet.Prefix")
	_, err = New(Config{Mode: ModeProxy})
	assert.ErrorContains(t, err, "Interface")
}

func FuzzHandle(f *testing.F) {
	for _, rc := range recordedClients {
		b := buildDiscover(f, rc)
		f.Add(b.ToBytes(), uint8(0))
		f.Add(asRequest(b, testServerIP, netip.MustParseAddr("10.77.0.100")).ToBytes(), uint8(1))
	}
	f.Add([]byte{1, 1, 6, 0, 0, 0}, uint8(2))
	sFull := newTestServer(f, Config{Mode: ModeFull, RatePerMAC: -1})
	sProxy := newTestServer(f, Config{Mode: ModeProxy})
	f.Fuzz(func(t *testing.T, b []byte, sel uint8) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		s := sFull
		if sel&1 == 1 {
			s = sProxy
		}
		port := 67
		if sel&2 == 2 {
			port = 4011
		}
		out, err := s.handle(context.Background(), req, port, zeroSrc)
		if err != nil || out == nil {
			return
		}
		if len(out.bytes) > 1472 {
			t.Fatalf("reply of %d bytes", len(out.bytes))
		}
		if _, err := dhcpv4.FromBytes(out.bytes); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
	})
}

func TestSubnetFromInterface(t *testing.T) {
	sub, err := SubnetFromInterface("lo", "127.0.0.100-127.0.0.200")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.0/8", sub.Prefix.String())
	assert.Equal(t, "127.0.0.1", sub.Router.String(), "d-i stops without a router")
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, sub.DNS, "d-i stops without DNS")
	_, err = SubnetFromInterface("no-such-if0", "127.0.0.100-127.0.0.200")
	assert.Error(t, err)
	_, err = SubnetFromInterface("lo", "bad")
	assert.Error(t, err)
}

func TestProxyIgnoresRequestOnPort67(t *testing.T) {
	s := newTestServer(t, Config{Mode: ModeProxy})
	req := asRequest(buildDiscover(t, recordedClients[3]), testServerIP, netip.MustParseAddr("10.77.0.191"))
	out, _ := exchange(t, s, req, 67, zeroSrc)
	assert.Nil(t, out, "the address server on the same host answers this one")
}

// Client.Proxy tells a BootPolicy whether another server gives the
// address: yes in proxy mode; in full mode no, on port 67 and on port 4011
// alike (UEFI firmware asks 4011 after our own ACK, whose siaddr GRUB
// reads: it must keep shim and GRUB, not be sent to iPXE).
func TestClientProxyFlag(t *testing.T) {
	var seen []bool
	var mu sync.Mutex
	policy := BootFunc(func(c Client) (BootAnswer, error) {
		mu.Lock()
		seen = append(seen, c.Proxy)
		mu.Unlock()
		return (&BootTable{}).Decide(c)
	})
	req := buildDiscover(t, recordedClients[0]) // OVMF x86-64 PXE
	creq := asRequest(req, netip.Addr{}, netip.Addr{})
	creq.ClientIPAddr = net.IPv4(10, 77, 0, 150).To4()
	src := netip.MustParseAddrPort("10.77.0.150:68")

	full := newTestServer(t, Config{Mode: ModeFull, Boot: policy})
	offer, _ := exchange(t, full, req, 67, zeroSrc)
	require.NotNil(t, offer)
	assert.Equal(t, "grubx64.efi", offer.BootFileName, "full mode: our ACK names the TFTP server")
	ack, _ := exchange(t, full, creq, 4011, src)
	require.NotNil(t, ack)
	assert.Equal(t, "grubx64.efi", ack.BootFileName, "port 4011 in full mode: the address is ours")

	proxy := newTestServer(t, Config{Mode: ModeProxy, Boot: policy})
	offer, _ = exchange(t, proxy, req, 67, zeroSrc)
	require.NotNil(t, offer)
	assert.Equal(t, "ipxe/snponly.efi", offer.BootFileName)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []bool{false, false, true}, seen)
}

// A full-mode answer is an address with a boot file, as a classic DHCP
// server's: no "PXEClient" (which announces boot-server discovery on port
// 4011), but "HTTPClient" for UEFI HTTP boot, which ignores an offer
// without it; port 4011 answers keep "PXEClient".
func TestFullModeVendorClass(t *testing.T) {
	s := newTestServer(t, Config{Mode: ModeFull})
	want := map[string]string{
		"ovmf-pxe":  "",
		"ovmf-http": "HTTPClient",
		"ipxe-efi":  "",
		"ipxe-bios": "",
	}
	for _, rc := range recordedClients {
		vc, ok := want[rc.name]
		if !ok {
			continue
		}
		req, err := dhcpv4.FromBytes(recordedPacket(t, rc))
		require.NoError(t, err)
		offer, _ := exchange(t, s, req, 67, zeroSrc)
		require.NotNil(t, offer, rc.name)
		assert.NotEmpty(t, offer.BootFileName, rc.name)
		assert.Equal(t, vc, string(offer.Options[optVendorClass]), "%s: option 60 of the OFFER", rc.name)
		yiaddr, _ := netip.AddrFromSlice(offer.YourIPAddr.To4())
		ack, _ := exchange(t, s, asRequest(req, testServerIP, yiaddr), 67, zeroSrc)
		require.NotNil(t, ack, rc.name)
		assert.Equal(t, vc, string(ack.Options[optVendorClass]), "%s: option 60 of the ACK", rc.name)
		if rc.name == "ovmf-pxe" {
			bs, _ := exchange(t, s, asRequest(req, netip.Addr{}, netip.Addr{}), s.cfg.ProxyPort, netip.AddrPortFrom(yiaddr, 4011))
			require.NotNil(t, bs, "port 4011 after our own ACK")
			assert.Equal(t, "PXEClient", string(bs.Options[optVendorClass]), "port 4011 answer")
		}
	}
}
