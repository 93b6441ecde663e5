package simclient

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A renewal names the bound address in ciaddr and neither a server nor a
// requested address.
func TestRenewRequest(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	m := RenewRequest(mac, 42, netip.MustParseAddr("10.0.0.7"))
	assert.Equal(t, dhcpv4.MessageTypeRequest, m.MessageType())
	assert.Equal(t, "10.0.0.7", m.ClientIPAddr.String())
	assert.Nil(t, m.ServerIdentifier())
	assert.Nil(t, m.RequestedIPAddress())
	assert.Equal(t, []byte{0, 7}, m.Options[93])
}

// InNetns opens sockets in the namespace (its loopback is its own), and
// NetnsDialer connects from there; the caller's namespace is unchanged.
func TestInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian package iproute2)")
	}
	ns := fmt.Sprintf("simcli-%d", os.Getpid()%100000)
	out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	out, err = exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput()
	require.NoError(t, err, "%s", out)

	var l net.Listener
	require.NoError(t, InNetns(ns, func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}))
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	// Not reachable from here: the port is the namespace's.
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the namespace's listener answered in the caller's namespace")
	}
	c, err := NetnsDialer(ns, netip.MustParseAddr("127.0.0.1"), 2*time.Second)(t.Context(), "tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	buf := make([]byte, 2)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, err = c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "hi", string(buf))

	assert.Error(t, InNetns(ns+"-missing", func() error { return nil }))
}
