package tftpsrv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const netnsChildEnv = "TFTPSRV_TEST_NETNS_CHILD"

// TestBlockSizeCappedToMTU runs in a network namespace of its own whose
// loopback has a 1400-byte MTU, and checks that a client asking for 8192 is
// granted what fits one frame (MTU − 32 on IPv4, − 52 on IPv6), as dnsmasq
// does, even though MaxBlockSize would allow more.
func TestBlockSizeCappedToMTU(t *testing.T) {
	if os.Getenv(netnsChildEnv) != "" {
		dir := testTree(t, map[string][]byte{"f": randomBytes(t, 20_000)})
		for network, want := range map[string]string{"udp4": "1368", "udp6": "1348"} {
			addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), MaxBlockSize: 65464}, network)
			// Datagrams queued before Serve enables IP_PKTINFO carry no
			// interface; make sure the server is reading first.
			newRawClient(t, addr).download("f")
			_, oack := newRawClient(t, addr).download("f", "blksize", "8192")
			assert.Equal(t, want, oack["blksize"], network)
			_, oack = newRawClient(t, addr).download("f", "blksize", "8192", "windowsize", "4")
			assert.Equal(t, want, oack["blksize"], network)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("ip not installed (Debian package iproute2)")
	}
	ns := fmt.Sprintf("tftpsrv-%d", os.Getpid())
	out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	out, err = exec.Command(ip, "-n", ns, "link", "set", "lo", "mtu", "1400", "up").CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command(ip, "netns", "exec", ns, os.Args[0], "-test.run", "^TestBlockSizeCappedToMTU$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "--- PASS: TestBlockSizeCappedToMTU")
}
