package dhcpsrv

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNameservers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	tests := []struct {
		name, text string
		want       []netip.Addr
	}{
		{"systemd stub only", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lab\n", nil},
		{"mixed", "# comment\nnameserver 10.0.0.53\nnameserver ::1\nnameserver 2001:db8::53\nnameserver 10.0.0.54 \n" +
			"nameserver\nnameserver bogus\nnameserver 0.0.0.0\nnameserver 10.0.0.53\n\tnameserver\t192.168.1.1",
			[]netip.Addr{addr("10.0.0.53"), addr("10.0.0.54"), addr("192.168.1.1")}},
		{"empty", "", nil},
		{"one long line", strings.Repeat("x", 200<<10), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Nameservers(write(strings.ReplaceAll(tt.name, " ", "-"), tt.text)))
		})
	}
	assert.Empty(t, Nameservers(filepath.Join(dir, "missing")))
	assert.Empty(t, Nameservers(dir), "a directory is unreadable as a file")
	for _, ip := range Nameservers("") { // the host's: whatever it holds, never loopback
		assert.True(t, ip.Is4() && !ip.IsLoopback(), ip)
	}
}

func TestListenError(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "udp4", Err: os.NewSyscallError("bind", errno)}
	}
	err := listenError("eth0", 67, false, opErr(syscall.EACCES))
	require.ErrorIs(t, err, syscall.EACCES)
	assert.ErrorContains(t, err, "ports 67 and 4011 need root or CAP_NET_BIND_SERVICE")
	assert.ErrorContains(t, err, "eth0 port 67")

	err = listenError("eth0", 67, true, opErr(syscall.EADDRINUSE))
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	require.ErrorIs(t, err, ErrAlreadyServing)
	assert.ErrorContains(t, err, "another DHCP server (dnsmasq, dhcpd, a second pxekit?) holds the port")
	assert.ErrorContains(t, err, "--bind-interfaces")
	assert.NotContains(t, listenError("eth0", 4011, false, opErr(syscall.EADDRINUSE)).Error(), "--bind-interfaces")

	err = listenError("eth0", 67, false, opErr(syscall.ENODEV))
	require.ErrorIs(t, err, syscall.ENODEV)
	assert.False(t, errors.Is(err, ErrAlreadyServing))
}

func TestNetnsDefaultInterface(t *testing.T) {
	requireRoot(t)
	n := newTestNet(t)
	var name string
	var ip netip.Addr
	require.NoError(t, inNetns(t, n.srvNS, func() (err error) {
		name, ip, err = DefaultInterface()
		return err
	}))
	assert.Equal(t, n.srvIf, name)
	assert.Equal(t, addr("10.231.0.1"), ip)

	err := inNetns(t, n.cliNS, func() error {
		_, _, err := DefaultInterface()
		return err
	})
	assert.ErrorContains(t, err, "no interface is up, non-loopback and has an IPv4 address")
}

// A DHCP port held by another program is reported with who may hold it,
// and errors.Is still sees the cause.
func TestNetnsListenInUse(t *testing.T) {
	requireRoot(t)
	n := newTestNet(t)
	var listenErr error
	require.NoError(t, inNetns(t, n.srvNS, func() error {
		// Port 67 held by a plain socket (no SO_REUSEPORT), as dhcpd would.
		pc, err := net.ListenPacket("udp4", "0.0.0.0:67")
		if err != nil {
			return err
		}
		t.Cleanup(func() { pc.Close() })
		sub := testSubnet()
		sub.Prefix = netip.MustParsePrefix("10.231.0.0/24")
		sub.First, sub.Last = addr("10.231.0.100"), addr("10.231.0.199")
		sub.Router, sub.DNS = addr("10.231.0.1"), nil
		s, err := New(Config{Interface: n.srvIf, Mode: ModeFull, Subnet: sub})
		if err != nil {
			return err
		}
		t.Cleanup(func() { s.Shutdown(t.Context()) })
		listenErr = s.Listen()
		return nil
	}))
	require.ErrorIs(t, listenErr, syscall.EADDRINUSE)
	require.ErrorIs(t, listenErr, ErrAlreadyServing)
	assert.ErrorContains(t, listenErr, "another DHCP server (dnsmasq, dhcpd, a second pxekit?) holds the port")
}
