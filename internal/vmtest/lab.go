package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pxekit/pxekit/internal/simclient"
)

// NamespacePrefix starts the name of every namespace a [Lab] creates; the
// rest is the creating process's PID and a counter, so leftovers of a killed
// test run can be recognised and removed by the next one.
const NamespacePrefix = "pxekit-"

// LabConfig describes the private network. The zero value is usable.
type LabConfig struct {
	// OutDir receives every log (servers, serial console, QEMU, timeline).
	// Empty: $PXEKIT_VM_OUT/<test name> when that variable is set (kept
	// after the test, for CI artifacts), else a t.TempDir().
	OutDir string
	// Iface is the tap device's name inside the namespace (default tap0).
	Iface string
	// ServerAddr is the address of the tap on the server side, with the
	// prefix length of the lab network (default 10.77.0.1/24).
	ServerAddr netip.Prefix
	// MTU of the tap device; 0 keeps the kernel default (1500). A smaller
	// MTU shows whether a TFTP server caps its block size to the link.
	MTU int
}

// Lab is one private network namespace with a tap device, the servers
// started in it and the VMs attached to it. Create it with [NewLab].
type Lab struct {
	name   string
	iface  string
	addr   netip.Prefix
	out    string
	logf   func(format string, args ...any)
	mu     sync.Mutex
	procs  []*Proc
	closed bool
}

// NewLab creates the namespace and its tap device, and registers Close with
// t.Cleanup. It skips the test (via [Require]) when the host cannot run VM
// tests and fails it when setup goes wrong.
func NewLab(t testing.TB, cfg LabConfig) *Lab {
	t.Helper()
	Require(t)
	if cfg.OutDir == "" {
		if base := os.Getenv("PXEKIT_VM_OUT"); base != "" {
			cfg.OutDir = filepath.Join(base, sanitize(t.Name()))
		} else {
			cfg.OutDir = t.TempDir()
		}
	}
	lab, err := newLab(context.Background(), cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			lab.dumpLogs()
		}
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("vmtest: namespace %s, %s %s, logs in %s", lab.name, lab.iface, lab.addr, lab.out)
	return lab
}

func newLab(ctx context.Context, cfg LabConfig, logf func(string, ...any)) (*Lab, error) {
	if cfg.Iface == "" {
		cfg.Iface = "tap0"
	}
	if !cfg.ServerAddr.IsValid() {
		cfg.ServerAddr = netip.MustParsePrefix("10.77.0.1/24")
	}
	if !cfg.ServerAddr.Addr().Is4() {
		return nil, fmt.Errorf("vmtest: server address %s is not IPv4", cfg.ServerAddr)
	}
	out, err := filepath.Abs(cfg.OutDir)
	if err != nil {
		return nil, fmt.Errorf("vmtest: output directory: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("vmtest: output directory: %w", err)
	}
	removeStaleNamespaces(ctx, logf)
	name, err := createNamespace(ctx)
	if err != nil {
		return nil, err
	}
	lab := &Lab{name: name, iface: cfg.Iface, addr: cfg.ServerAddr, out: out, logf: logf}
	steps := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "tuntap", "add", "dev", cfg.Iface, "mode", "tap"},
		{"ip", "addr", "add", cfg.ServerAddr.String(), "dev", cfg.Iface},
		{"ip", "link", "set", cfg.Iface, "up"},
	}
	if cfg.MTU > 0 {
		steps = append(steps, []string{"ip", "link", "set", cfg.Iface, "mtu", strconv.Itoa(cfg.MTU)})
	}
	for _, s := range steps {
		if _, err := lab.Exec(ctx, s[0], s[1:]...); err != nil {
			_ = lab.Close()
			return nil, err
		}
	}
	return lab, nil
}

// createNamespace adds a namespace named pxekit-<pid>-<n> with the first
// free n. "ip netns add" creates its mount point exclusively, so parallel
// labs in one process cannot get the same name, without shared counters.
func createNamespace(ctx context.Context) (string, error) {
	for n := 1; n < 1000; n++ {
		name := fmt.Sprintf("%s%d-%d", NamespacePrefix, os.Getpid(), n)
		if exists("/run/netns/" + name) {
			continue
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput()
		if err == nil {
			return name, nil
		}
		if !bytes.Contains(out, []byte("exists")) {
			return "", fmt.Errorf("vmtest: ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
	}
	return "", errors.New("vmtest: no free namespace name")
}

// removeStaleNamespaces deletes namespaces left behind by test processes
// that were killed before their cleanup ran (the PID in the name is gone),
// ending whatever still runs inside them.
func removeStaleNamespaces(ctx context.Context, logf func(string, ...any)) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), NamespacePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || exists(fmt.Sprintf("/proc/%d", pid)) {
			continue
		}
		logf("vmtest: removing stale namespace %s (process %d is gone)", e.Name(), pid)
		killNamespace(ctx, e.Name())
		_ = exec.CommandContext(ctx, "ip", "netns", "delete", e.Name()).Run()
	}
}

// Name is the network namespace's name (for "ip netns exec").
func (l *Lab) Name() string { return l.name }

// Iface is the tap device's name inside the namespace.
func (l *Lab) Iface() string { return l.iface }

// ServerIP is the server-side address of the tap.
func (l *Lab) ServerIP() netip.Addr { return l.addr.Addr() }

// Prefix is the server address with the lab network's prefix length.
func (l *Lab) Prefix() netip.Prefix { return l.addr }

// OutDir is where logs go; files a test writes there end up beside them.
func (l *Lab) OutDir() string { return l.out }

// Env is the environment given to processes started with [Lab.Start]:
// PXE_NETNS, PXE_IFACE, PXE_SERVER_IP, PXE_PREFIX (length) and PXE_OUT, so
// that server command lines need not repeat the lab's parameters.
func (l *Lab) Env() []string {
	return []string{
		"PXE_NETNS=" + l.name,
		"PXE_IFACE=" + l.iface,
		"PXE_SERVER_IP=" + l.addr.Addr().String(),
		"PXE_PREFIX=" + strconv.Itoa(l.addr.Bits()),
		"PXE_OUT=" + l.out,
	}
}

// Exec runs a command to completion inside the namespace and returns its
// combined output; the error includes that output.
func (l *Lab) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vmtest: %s %s in %s: %w: %s", name, strings.Join(args, " "), l.name, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Do runs fn on an OS thread that has entered the namespace. Sockets that
// fn opens belong to the namespace for their whole life, so servers can run
// in the test process itself (see [Lab.ListenPacket]). Goroutines that fn
// starts do not inherit the namespace.
func (l *Lab) Do(fn func() error) error {
	var ferr error // fn's own error, returned as it is
	if err := simclient.InNetns(l.name, func() error { ferr = fn(); return nil }); err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	return ferr
}

// ListenPacket opens a packet socket (e.g. "udp4", ":67") inside the
// namespace, for servers that run in the test process.
func (l *Lab) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := l.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// Listen opens a stream listener (e.g. "tcp4", "10.77.0.1:8080") inside the
// namespace, for in-process HTTP servers.
func (l *Lab) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := l.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// Proc is a process running inside the namespace, started by [Lab.Start].
type Proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

// Start runs bin with args inside the namespace, in the caller's working
// directory, with the test's environment plus [Lab.Env]. Stdout and stderr
// go to OutDir/<name>.log. The process is stopped when the lab closes (or
// earlier with [Proc.Stop]); the test fails if it cannot be started.
// Servers should stay in the foreground: [Proc.WaitLog] reports a process
// that exits as a failure. The tap has no carrier until a VM boots, so a
// server should bind to the lab's address or interface, not wait for "up".
func (l *Lab) Start(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	p, err := l.start(name, nil, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartEnv is [Lab.Start] with extra environment variables ("K=V").
func (l *Lab) StartEnv(t testing.TB, name string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	p, err := l.start(name, env, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *Lab) start(name string, env []string, bin string, args ...string) (*Proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("vmtest: lab is closed")
	}
	logPath := filepath.Join(l.out, sanitize(name)+".log")
	// A fresh log for a new name, so that waiting never matches lines of
	// an earlier run in a kept OutDir; a restarted process appends.
	mode := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	for _, p := range l.procs {
		if p.log == logPath {
			mode = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
	}
	f, err := os.OpenFile(logPath, mode, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmtest: log for %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.name, bin}, args...)...)
	cmd.Env = append(append(os.Environ(), l.Env()...), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group, so Stop reaches helpers the server forks; die
	// with the test process if it is killed before cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vmtest: start %s (%s): %w", name, bin, err)
	}
	p := &Proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Name is the name given to [Lab.Start].
func (p *Proc) Name() string { return p.name }

// LogPath is the file receiving the process's stdout and stderr.
func (p *Proc) LogPath() string { return p.log }

// PID is the process ID ("ip netns exec" replaces itself with the program).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and its wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// WaitLog waits until re matches the process's log and returns the matching
// line. It fails early (see [ErrExited]) when the process exits without
// having logged a match.
func (p *Proc) WaitLog(ctx context.Context, re *regexp.Regexp) (string, error) {
	return waitFile(ctx, p.log, re, p.gone)
}

func (p *Proc) gone() error {
	if done, err := p.Exited(); done {
		return fmt.Errorf("%s %w (%v)", p.name, errExited, err)
	}
	return nil
}

// Stop ends the process group: SIGTERM, then SIGKILL after two seconds.
func (p *Proc) Stop() error {
	return stopGroup(p.cmd.Process.Pid, p.done, 2*time.Second)
}

// stopGroup signals the process group pgid and waits until done closes.
func stopGroup(pgid int, done <-chan struct{}, grace time.Duration) error {
	select {
	case <-done:
		return nil
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("vmtest: process %d did not exit after SIGKILL", pgid)
	}
}

// Close stops every process started in the lab, kills anything else still
// running in the namespace (servers that daemonized) and deletes the
// namespace with its tap device. It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	l.mu.Unlock()

	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killNamespace(ctx, l.name)
	if out, err := exec.CommandContext(ctx, "ip", "netns", "delete", l.name).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("vmtest: ip netns delete %s: %v: %s", l.name, err, bytes.TrimSpace(out)))
	}
	return errors.Join(errs...)
}

// killNamespace ends every process inside the namespace: SIGTERM, a short
// grace period, then SIGKILL, and waits until none is left.
func killNamespace(ctx context.Context, ns string) {
	pids := func() []int {
		out, _ := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
		var ps []int
		for _, f := range strings.Fields(string(out)) {
			// Never this process: a thread of it may be inside the
			// namespace (Lab.Do).
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				ps = append(ps, pid)
			}
		}
		return ps
	}
	ps := pids()
	if len(ps) == 0 {
		return
	}
	for _, pid := range ps {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		if ps = pids(); len(ps) == 0 || ctx.Err() != nil {
			break
		}
		if i == 10 {
			for _, pid := range ps {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// dumpLogs logs the tail of every log file of a failed test, so CI output
// shows what happened even when the output directory is discarded.
func (l *Lab) dumpLogs() {
	entries, err := os.ReadDir(l.out)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(l.out, e.Name()))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(stripANSI(string(data)), "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		l.logf("vmtest: last lines of %s:\n\t%s", e.Name(), strings.Join(lines, "\n\t"))
	}
}

// stripANSI removes terminal escape sequences (firmware and the installer
// draw menus on the serial console) so dumped logs stay readable.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		if c == '\r' || (c < 0x20 && c != '\n' && c != '\t') {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sanitize turns a test or process name into a file name.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
