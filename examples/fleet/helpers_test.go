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
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/testutil"
)

// The inventory most tests use. Three listed hosts on two profiles so that
// per-host answers, per-profile menus and unknown MACs all differ.
const (
	macWeb = "52:54:00:f1:00:01"
	macDB  = "52:54:00:f1:00:02"
	macApp = "52:54:00:f1:00:03"
	macNew = "52:54:00:99:00:09" // not in the inventory

	testHash = "$6$rounds=4096$abcdefgh$M2l1izR64CUBqdu.KqZLmg8uviqbo4SNjWyuU.R.XVD/qnFai6Mp9Xeq/ZQcBieIiv9JKi.OVFY.siouPqUdE." // "pxekit-test"
)

func macPath(s string) string { return strings.ReplaceAll(s, ":", "-") }

// testInventory is the inventory text; netboot is written as given, so a
// relative path exercises resolution against the inventory's directory.
func testInventory(netboot, unknown string) string {
	return fmt.Sprintf(`unknown: %s
defaults:
  timezone: Asia/Shanghai
  disk: {wipe: true}
  root: {password: {hash: %q}}
  users: [{name: ops, sudo: true, password: {hash: %q}}]
profiles:
  debian11:
    os: debian-11
    netboot: %s
    mirror: http://deb.debian.org/debian
  debian12:
    os: debian-12
    netboot: %s
    mirror: http://deb.debian.org/debian
    spec: {packages: {names: [curl]}}
hosts:
  - {mac: "52:54:00:f1:00:01", hostname: web01, profile: debian12, layout: lvm, overrides: {packages: {names: [nginx]}}}
  - mac: 52-54-00-F1-00-02
    hostname: db01
    profile: debian12
    address: 10.77.0.21/24
    gateway: 10.77.0.1
    dns: [10.77.0.1]
    overrides: {packages: {names: [postgresql]}}
  - {mac: "52:54:00:f1:00:03", hostname: app01, profile: debian11}
`, unknown, testHash, testHash, netboot, netboot)
}

// fakeNetboot lays out a Debian netboot tree in dir (see
// testutil.FakeNetboot).
func fakeNetboot(t *testing.T, dir string) {
	t.Helper()
	testutil.FakeNetboot(t, dir)
}

// fakeHostRoot is a root holding the loader packages' files at their
// Debian paths (see bootmenu.FindLoaders), optionally without iPXE's snponly.efi.
func fakeHostRoot(t *testing.T, snponly bool) string {
	t.Helper()
	root := t.TempDir()
	files := []string{
		"usr/lib/shim/shimx64.efi.signed",
		"usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
		"usr/lib/PXELINUX/pxelinux.0",
		"usr/lib/syslinux/modules/bios/ldlinux.c32",
		"usr/lib/syslinux/modules/bios/menu.c32",
	}
	if snponly {
		files = append(files, "usr/lib/ipxe/snponly.efi")
	}
	for _, f := range files {
		p := filepath.Join(root, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("fake "+filepath.Base(f)), 0o644))
	}
	return root
}

// writeInventory writes the test inventory and its netboot tree (relative
// to it) into a fresh directory and returns the inventory's path.
func writeInventory(t *testing.T, unknown string) string {
	t.Helper()
	dir := t.TempDir()
	fakeNetboot(t, filepath.Join(dir, "nb"))
	p := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(p, []byte(testInventory("nb", unknown)), 0o644))
	return p
}

// newTestFleet builds the fleet in-process over a fake host root and a
// state file of its own.
func newTestFleet(t *testing.T, unknown string, snponly bool, opts ...func(*buildOptions)) (*fleet, *Store) {
	t.Helper()
	dir := t.TempDir()
	fakeNetboot(t, filepath.Join(dir, "nb"))
	inv, err := ParseInventory([]byte(testInventory("nb", unknown)), dir)
	require.NoError(t, err)
	store, err := OpenStore(filepath.Join(dir, "fleet.state.json"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	o := buildOptions{
		HTTPBase: "http://10.0.0.1:8080/", ServerIP: netip.MustParseAddr("10.0.0.1"), Proxy: true,
		DNS: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Store: store, HostRoot: fakeHostRoot(t, snponly),
	}
	for _, opt := range opts {
		opt(&o)
	}
	f, err := buildFleet(inv, o)
	require.NoError(t, err)
	t.Cleanup(f.Close)
	return f, store
}

// syncBuffer is a bytes.Buffer the server's goroutines write while the
// test reads it (the name this package's tests use).
type syncBuffer = testutil.Buffer

// needHostLoaders skips a test of the whole program: it has no flag for a
// fake host root, so it serves the host's loader packages (CI installs them).
func needHostLoaders(t *testing.T) {
	t.Helper()
	if _, err := bootmenu.FindLoaders(bootmenu.LoaderSource{}, "/"); err != nil {
		t.Skipf("the program serves the host's boot loaders and there are none (%v): apt-get install %s", err, bootmenu.HostLoaderPackages)
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed; it is the real client this test drives (apt-get install %s)", name, name)
	}
	return p
}

// freePorts returns a TCP and a UDP loopback port free a moment ago.
func freePorts(t *testing.T) (tcp, udp int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tcp = l.Addr().(*net.TCPAddr).Port
	l.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	udp = pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	return tcp, udp
}

// server is the whole program running in-process through run().
type server struct {
	inventory, state string
	http, tftp       string // "http://127.0.0.1:P/", "tftp://127.0.0.1:P/"
	stdout, stderr   *syncBuffer
}

// startServer runs the program on the inventory with DHCP off on free
// loopback ports, and stops it when the test ends.
func startServer(t *testing.T, inventory string, extra ...string) *server {
	t.Helper()
	needHostLoaders(t)
	// A port free when picked can be taken before the program binds it.
	for attempt := 0; attempt < 3; attempt++ {
		hp, tp := freePorts(t)
		_, sp := freePorts(t) // syslog: its default :5514 would be shared by concurrent test runs
		s := &server{
			inventory: inventory,
			state:     strings.TrimSuffix(inventory, ".yaml") + ".state.json",
			http:      fmt.Sprintf("http://127.0.0.1:%d/", hp),
			tftp:      fmt.Sprintf("tftp://127.0.0.1:%d/", tp),
			stdout:    &syncBuffer{}, stderr: &syncBuffer{},
		}
		args := append([]string{"-inventory", inventory, "-dhcp", "off", "-progress", "log",
			"-http-addr", "127.0.0.1:" + strconv.Itoa(hp), "-tftp-addr", "127.0.0.1:" + strconv.Itoa(tp),
			"-syslog-addr", "127.0.0.1:" + strconv.Itoa(sp)}, extra...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- run(ctx, args, s.stdout, s.stderr) }()
		code, up := waitUp(s.http+"status.json", done)
		if up {
			t.Cleanup(func() {
				cancel()
				select {
				case code := <-done:
					if code != 0 {
						t.Errorf("fleet exited %d: %s", code, s.stderr.String())
					}
				case <-time.After(10 * time.Second):
					t.Errorf("fleet did not stop within 10 s")
				}
			})
			return s
		}
		cancel()
		if !strings.Contains(s.stderr.String(), "address already in use") {
			t.Fatalf("fleet did not start (exit %d): %s", code, s.stderr.String())
		}
	}
	t.Fatal("no free ports after 3 attempts")
	return nil
}

// waitUp polls url until it answers, the program exits, or 10 s pass.
func waitUp(url string, done <-chan int) (code int, up bool) {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			return code, false
		default:
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return 0, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1, false
}

// tool runs a client program with a bounded time and returns its output.
func tool(t *testing.T, name string, args ...string) (stdout string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// tftpGet fetches name with curl's TFTP client.
func tftpGet(t *testing.T, s *server, name string) (string, error) {
	t.Helper()
	return tool(t, "curl", "-sS", "--max-time", "10", s.tftp+name)
}

// httpDo runs curl and returns the status code and body.
func httpDo(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := tool(t, "curl", append([]string{"-sS", "--max-time", "10", "-w", "\n%{http_code}"}, args...)...)
	require.NoError(t, err)
	i := strings.LastIndexByte(out, '\n')
	code, err := strconv.Atoi(out[i+1:])
	require.NoError(t, err, out)
	return code, out[:i]
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	return httpDo(t, url)
}

// statusJSON reads /status.json, keyed by MAC.
func statusJSON(t *testing.T, s *server) map[string]HostStatus {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(s.http + "status.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var st Status
	require.NoError(t, json.Unmarshal(data, &st), string(data))
	out := map[string]HostStatus{}
	for _, h := range st.Hosts {
		out[h.MAC] = h
	}
	return out
}

// waitStage waits for mac's latest step to be stage: a file's step is
// recorded once it is served, which can be after the client has it all.
func waitStage(t *testing.T, s *server, mac, stage string) {
	t.Helper()
	var last HostStatus
	ok := assert.Eventually(t, func() bool {
		last = statusJSON(t, s)[mac]
		return string(last.Stage) == stage
	}, 5*time.Second, 20*time.Millisecond)
	if !ok {
		t.Errorf("%s: stage %q, want %q: %+v", mac, last.Stage, stage, last)
	}
}

// reportJSON is the body the installers' post-install script sends.
func reportJSON(hostname, status string, checks map[string]bool) string {
	type check struct {
		Name string `json:"name"`
		OK   bool   `json:"ok"`
	}
	body := struct {
		Hostname string  `json:"hostname"`
		OS       string  `json:"os"`
		Status   string  `json:"status"`
		Checks   []check `json:"checks"`
	}{Hostname: hostname, OS: "debian-12", Status: status, Checks: []check{}}
	for _, n := range sortedKeys(checks) {
		body.Checks = append(body.Checks, check{n, checks[n]})
	}
	b, _ := json.Marshal(body)
	return string(b)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// debianReport posts a report the way Debian's late_command does: the
// installer's busybox wget with --post-data.
func debianReport(t *testing.T, url, body string) error {
	t.Helper()
	needTool(t, "busybox")
	_, err := tool(t, "busybox", "wget", "-q", "-O", "/dev/null", "--header", "Content-Type: application/json", "--post-data", body, url)
	return err
}

// assertOneProblemEach checks that each of want is part of exactly one of
// problems; err is the error they came from, shown on failure.
func assertOneProblemEach(t *testing.T, problems, want []string, err error) {
	t.Helper()
	for _, w := range want {
		n := 0
		for _, p := range problems {
			if strings.Contains(p, w) {
				n++
			}
		}
		assert.Equal(t, 1, n, "want exactly one problem containing %q in:\n%s", w, err)
	}
}
