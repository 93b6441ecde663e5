package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// lossNet is a lossy link between two network namespaces that the bench
// creates and removes itself. This kernel has no sch_netem, so the link is
// two TUN devices, one in each namespace, joined by a forwarder in this
// process that drops a fixed share of the packets in each direction,
// pseudo-randomly from a fixed seed.
type lossNet struct {
	srvNS, cliNS     string
	srvAddr, cliAddr string
	tuns             [2]*os.File
	wg               sync.WaitGroup
	dropped, passed  [2]int64 // per direction: server→client, client→server
	mu               sync.Mutex
	closeOnce        sync.Once
}

// newLossNet builds the namespaces and the link. Names carry the process
// ID, so a concurrent or crashed run cannot collide with this one; close
// removes everything it made, also after a partial setup.
func newLossNet(ctx context.Context, loss float64, seed uint64) (_ *lossNet, err error) {
	id := os.Getpid() % 100000
	n := &lossNet{
		srvNS: fmt.Sprintf("pxkb-srv-%d", id), cliNS: fmt.Sprintf("pxkb-cli-%d", id),
		srvAddr: "10.201.0.1", cliAddr: "10.201.0.2",
	}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	tunNames := [2]string{fmt.Sprintf("pxkbs%d", id), fmt.Sprintf("pxkbc%d", id)}
	for i, name := range tunNames {
		if n.tuns[i], err = openTUN(name); err != nil {
			return nil, err
		}
	}
	steps := [][]string{
		{"netns", "add", n.srvNS},
		{"netns", "add", n.cliNS},
		{"link", "set", tunNames[0], "netns", n.srvNS},
		{"link", "set", tunNames[1], "netns", n.cliNS},
		{"-n", n.srvNS, "addr", "add", n.srvAddr + "/24", "dev", tunNames[0]},
		{"-n", n.cliNS, "addr", "add", n.cliAddr + "/24", "dev", tunNames[1]},
		{"-n", n.srvNS, "link", "set", "lo", "up"},
		{"-n", n.cliNS, "link", "set", "lo", "up"},
		{"-n", n.srvNS, "link", "set", tunNames[0], "up"},
		{"-n", n.cliNS, "link", "set", tunNames[1], "up"},
	}
	for _, args := range steps {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	for dir := range 2 {
		rng := rand.New(rand.NewPCG(seed, uint64(dir)))
		n.wg.Add(1)
		go n.forward(dir, n.tuns[dir], n.tuns[1-dir], rng, loss)
	}
	return n, nil
}

// openTUN creates a TUN device (IP packets, no extra header) that lives as
// long as the returned file.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	// Non-blocking, so the runtime poller serves reads and close
	// interrupts them.
	return os.NewFile(uintptr(fd), name), nil
}

// forward copies packets from one TUN device to the other until either is
// closed, dropping each with probability loss.
func (n *lossNet) forward(dir int, from, to *os.File, rng *rand.Rand, loss float64) {
	defer n.wg.Done()
	buf := make([]byte, 65536)
	var dropped, passed int64
	failures := 0 // consecutive read errors
	defer func() {
		n.mu.Lock()
		n.dropped[dir], n.passed[dir] = dropped, passed
		n.mu.Unlock()
	}()
	for {
		k, err := from.Read(buf)
		if err != nil {
			if failures++; errors.Is(err, os.ErrClosed) || failures > 1000 {
				return
			}
			continue // a transient error on one packet
		}
		failures = 0
		if rng.Float64() < loss {
			dropped++
			continue
		}
		passed++
		if _, err := to.Write(buf[:k]); errors.Is(err, os.ErrClosed) {
			return
		}
	}
}

// stats reports dropped and forwarded packets per direction, after close.
func (n *lossNet) stats() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	share := func(d, p int64) float64 {
		if d+p == 0 {
			return 0
		}
		return 100 * float64(d) / float64(d+p)
	}
	return fmt.Sprintf("server→client %d of %d dropped (%.2f %%), client→server %d of %d dropped (%.2f %%)",
		n.dropped[0], n.dropped[0]+n.passed[0], share(n.dropped[0], n.passed[0]),
		n.dropped[1], n.dropped[1]+n.passed[1], share(n.dropped[1], n.passed[1]))
}

// close stops the forwarder, which destroys the TUN devices, and deletes
// the namespaces. Deleting a namespace that still holds a process fails,
// so callers stop their servers and clients first.
func (n *lossNet) close() {
	n.closeOnce.Do(n.teardown)
}

func (n *lossNet) teardown() {
	for _, f := range n.tuns {
		if f != nil {
			f.Close()
		}
	}
	n.wg.Wait()
	for _, ns := range []string{n.srvNS, n.cliNS} {
		_ = exec.Command("ip", "netns", "delete", ns).Run()
	}
}

// command runs argv inside namespace ns (the host's when ns is empty).
func nsCommand(ctx context.Context, ns string, argv ...string) *exec.Cmd {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}
