// Package etcdtest runs a private etcd for tests (one member, or a cluster): on
// 127.0.0.1, on ports picked free, with a data directory of the test's own,
// stopped when the test ends. Tests skip when the etcd binary is absent.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is where Debian's etcd-server package installs etcd.
const Binary = "/usr/bin/etcd"

// Etcd is one etcd process run for a test.
type Etcd struct {
	// Endpoint is the client URL, http://127.0.0.1:PORT.
	Endpoint string

	// endpoints, when set, are what Client dials instead of Endpoint
	// (a handle made by Dial).
	endpoints []string

	t    testing.TB
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// Start starts etcd and waits (at most 20 s) until it answers. It skips
// the test when Binary is absent.
func Start(t testing.TB) *Etcd {
	t.Helper()
	skipWithoutBinary(t)
	cport, pport := freePort(t), freePort(t)
	e := &Etcd{t: t, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", cport)}
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	e.args = memberArgs("test", t.TempDir(), e.Endpoint, peer, "test="+peer)
	e.start()
	t.Cleanup(e.Stop)
	e.WaitReady(20 * time.Second)
	return e
}

func skipWithoutBinary(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("needs %s (Debian package etcd-server)", Binary)
	}
}

// memberArgs is the command line of one member of a new cluster whose
// members are listed in initial (name=peerURL,...).
func memberArgs(name, dataDir, client, peer, initial string) []string {
	return []string{
		"--name", name, "--data-dir", dataDir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", initial, "--initial-cluster-state", "new",
		"--log-level", "error",
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (e *Etcd) start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.args == nil {
		e.t.Fatal("etcdtest: a handle made by Dial cannot start etcd")
	}
	cmd := exec.Command(Binary, e.args...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so a kill reaches nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start etcd: %v", err)
	}
	e.cmd, e.out, e.done = cmd, out, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(e.done)
}

// Stop kills etcd and waits for it to exit; stopping a stopped etcd does
// nothing.
func (e *Etcd) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGCONT) // a paused etcd dies too
	e.cmd.Process.Kill()
	<-e.done
	e.cmd = nil
}

// Restart starts etcd again on the same ports and data, and waits until it
// answers.
func (e *Etcd) Restart(wait time.Duration) {
	e.start()
	e.WaitReady(wait)
}

// WaitReady fails the test unless etcd answers a read within wait.
func (e *Etcd) WaitReady(wait time.Duration) {
	e.t.Helper()
	c := e.Client()
	defer c.Close()
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Get(ctx, "health-probe")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.mu.Lock()
			out := e.out.String()
			e.mu.Unlock()
			e.t.Fatalf("etcd not ready after %v: %v\n%s", wait, err, out)
		}
		select {
		case <-e.done:
			e.mu.Lock()
			how, out := "stopped", e.out.String()
			if e.cmd != nil {
				how = e.cmd.ProcessState.String()
			}
			e.mu.Unlock()
			e.t.Fatalf("etcd %s exited (%s):\n%s", e.Endpoint, how, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Client returns a new client of this etcd (of every endpoint, for a handle
// made by Dial), silent; the caller closes it.
func (e *Etcd) Client() *clientv3.Client {
	eps := e.endpoints
	if eps == nil {
		eps = []string{e.Endpoint}
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.t.Fatalf("etcd client: %v", err)
	}
	return c
}

// Pause stops etcd with SIGSTOP: its connections stay open and nothing
// answers, as in a network partition that drops packets silently.
//
// It returns once every thread of etcd is stopped: SIGSTOP is delivered
// asynchronously, and a request sent just after the signal could still be
// answered by a thread not yet stopped.
func (e *Etcd) Pause() {
	e.signal(syscall.SIGSTOP)
	e.mu.Lock()
	pid := 0
	if e.cmd != nil {
		pid = e.cmd.Process.Pid
	}
	e.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); pid != 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if allStopped(pid) {
			return
		}
	}
}

// allStopped reports whether every thread of pid is in the stopped state.
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name's closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume continues an etcd stopped by Pause.
func (e *Etcd) Resume() { e.signal(syscall.SIGCONT) }

func (e *Etcd) signal(sig syscall.Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd != nil {
		e.cmd.Process.Signal(sig)
	}
}
