package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireNetns skips t unless it can make network namespaces: it runs as
// root and ip(8) is installed.
func RequireNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian package iproute2)")
	}
}

// Run runs a command that must succeed; a failure names the command and
// shows its output.
func Run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
}

// AddNetns makes the network namespace name with its loopback up; the
// test's cleanup deletes it. Names must be unique on the host: put the
// process ID in them.
func AddNetns(t testing.TB, name string) {
	t.Helper()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// Segment is an Ethernet segment made for one test: a bridge, br0, in a
// network namespace of its own, with a namespace per port. The test's
// cleanup removes them all.
type Segment struct {
	t testing.TB
	// NS is the namespace holding the bridge.
	NS string
}

// NewSegment makes namespace ns holding an empty bridge that is up.
func NewSegment(t testing.TB, ns string) *Segment {
	t.Helper()
	AddNetns(t, ns)
	Run(t, "ip", "-n", ns, "link", "add", "br0", "type", "bridge")
	Run(t, "ip", "-n", ns, "link", "set", "br0", "up")
	return &Segment{t: t, NS: ns}
}

// Port makes namespace ns and connects it to the bridge with a veth pair:
// ifname in ns, addressed addr (with its prefix length, "10.0.0.1/24") and
// up; its peer, ifname+"b", on the bridge.
func (s *Segment) Port(ns, ifname, addr string) {
	s.t.Helper()
	AddNetns(s.t, ns)
	peer := ifname + "b"
	Run(s.t, "ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer, "netns", s.NS)
	Run(s.t, "ip", "-n", s.NS, "link", "set", peer, "master", "br0", "up")
	Run(s.t, "ip", "-n", ns, "addr", "add", addr, "dev", ifname)
	Run(s.t, "ip", "-n", ns, "link", "set", ifname, "up")
}
