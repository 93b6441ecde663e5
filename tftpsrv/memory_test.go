package tftpsrv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memProbe is the outcome of holdTransfers: what n transfers held open at
// once cost the server process.
type memProbe struct {
	n int
	// heapPer is the growth of the live heap (after a forced GC) per
	// transfer, with every transfer waiting for the ACK of its first
	// DATA; the clients' own buffers are allocated before the baseline.
	heapPer float64
	// stackPer is the growth of goroutine stack memory per transfer,
	// the client's goroutine included.
	stackPer float64
	// cpu is the process's CPU time (user + system) for the whole run,
	// clients included.
	cpu time.Duration
}

// holdTransfers serves a file of size bytes to n lock-step or windowed
// clients on loopback, holds every transfer open at its first block until
// all n are, measures the server's memory then, and lets them finish.
func holdTransfers(tb testing.TB, n, size, blksize, window int) memProbe {
	tb.Helper()
	dir := testTree(tb, map[string][]byte{"f": randomBytes(tb, size)})
	srv := &Server{
		Handler: FileServer(os.DirFS(dir)), MaxTransfersPerClient: n, MaxTransfers: n,
		MaxBlockSize: blksize, Timeout: 5 * time.Second, StallTimeout: 60 * time.Second,
	}
	addr := startServer(tb, srv, "udp4")
	sa, err := net.ResolveUDPAddr("udp4", addr)
	require.NoError(tb, err)

	conns := make([]*net.UDPConn, n)
	bufs := make([][]byte, n)
	for i := range conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(tb, err)
		tb.Cleanup(func() { c.Close() })
		conns[i], bufs[i] = c, make([]byte, blksize+4)
	}
	var reached, release sync.WaitGroup
	reached.Add(n)
	release.Add(1)
	base := heapSample()
	start := cpuTime()
	errs := make(chan error, n)
	for i := range conns {
		go func() {
			errs <- holdingClient(conns[i], sa, bufs[i], size, blksize, window, &reached, &release)
		}()
	}
	waited := make(chan struct{})
	go func() { reached.Wait(); close(waited) }()
	select {
	case <-waited:
	case err := <-errs:
		release.Done()
		tb.Fatalf("a client failed before every transfer was open: %v", err)
	case <-time.After(30 * time.Second):
		release.Done()
		tb.Fatalf("not every transfer open after 30 s")
	}
	held := heapSample()
	release.Done()
	for range conns {
		require.NoError(tb, <-errs)
	}
	return memProbe{
		n:        n,
		heapPer:  float64(held.live-base.live) / float64(n),
		stackPer: float64(held.stacks-base.stacks) / float64(n),
		cpu:      cpuTime() - start,
	}
}

// holdingClient reads the file in lock-step or windows, stopping at block 1
// until release.
func holdingClient(c *net.UDPConn, server *net.UDPAddr, buf []byte, size, blksize, window int, reached, release *sync.WaitGroup) error {
	opts := []option{{"blksize", strconv.Itoa(blksize)}}
	if window > 1 {
		opts = append(opts, option{"windowsize", strconv.Itoa(window)})
	}
	if _, err := c.WriteToUDP(packRequest(opRRQ, "f", "octet", opts), server); err != nil {
		reached.Done()
		return err
	}
	var peer *net.UDPAddr
	ack := func(b uint16) error {
		_, err := c.WriteToUDP(binary.BigEndian.AppendUint16([]byte{0, byte(opACK)}, b), peer)
		return err
	}
	got, expect, held := 0, uint16(1), false
	defer func() {
		if !held {
			reached.Done()
		}
	}()
	for {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", got, err)
		}
		if peer == nil {
			peer = from
		}
		switch opOf(buf[:n]) {
		case opOACK:
			if expect == 1 {
				if err := ack(0); err != nil {
					return err
				}
			}
		case opDATA:
			blk := binary.BigEndian.Uint16(buf[2:])
			if blk != expect {
				continue // a resend of the held block, or a gap (none on loopback)
			}
			if !held {
				held = true
				reached.Done()
				release.Wait()
			}
			got += n - 4
			expect++
			last := n-4 < blksize
			if last || (int(blk)%window == 0) {
				if err := ack(blk); err != nil {
					return err
				}
			}
			if last {
				if got != size {
					return fmt.Errorf("got %d bytes, want %d", got, size)
				}
				return nil
			}
		case opERROR:
			code, msg := errOf(buf[:n])
			return fmt.Errorf("ERROR %d %q after %d bytes", code, msg, got)
		}
	}
}

type heapStats struct{ live, stacks uint64 }

// heapSample forces collections and reads the live heap found, and the
// goroutine stack memory. Two collections: the first moves what sync.Pools
// hold to their victim caches, the second frees it.
func heapSample() heapStats {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return heapStats{live: s[0].Value.Uint64(), stacks: s[1].Value.Uint64()}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmHWM is the process's peak resident memory, from /proc/self/status.
func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// TestTransferMemory bounds what a transfer waiting for an ACK keeps on the
// heap: its read-ahead buffer, its window ring and its bookkeeping. (The
// rack benchmark holds 200 such transfers at once, in lock-step at blksize
// 1024 for the kernel and initrd, windowsize 4 at blksize 1468 for the boot
// loaders.)
func TestTransferMemory(t *testing.T) {
	for _, tc := range []struct {
		blksize, window int
		max             float64 // bytes of live heap per transfer
	}{
		{1024, 1, 16 << 10},
		{1468, 4, 36 << 10},
	} {
		t.Run(fmt.Sprintf("blksize=%d/window=%d", tc.blksize, tc.window), func(t *testing.T) {
			p := holdTransfers(t, 50, 256<<10, tc.blksize, tc.window)
			t.Logf("%d transfers held: %.1f KiB heap and %.1f KiB stack each", p.n, p.heapPer/1024, p.stackPer/1024)
			assert.LessOrEqual(t, p.heapPer, tc.max, "live heap per transfer")
		})
	}
}

// BenchmarkConcurrentTransfers is the rack's TFTP load in one process: 200
// clients at once, each held at its first block until all are in, then
// reading 1 MiB. It reports the server's live heap and stack per held
// transfer, the process's CPU per transferred MiB (clients included) and
// its VmHWM (clients included).
func BenchmarkConcurrentTransfers(b *testing.B) {
	for _, tc := range []struct{ blksize, window int }{{1024, 1}, {1468, 4}} {
		b.Run(fmt.Sprintf("blksize=%d/window=%d", tc.blksize, tc.window), func(b *testing.B) {
			const n, size = 200, 1 << 20
			var p memProbe
			for b.Loop() {
				p = holdTransfers(b, n, size, tc.blksize, tc.window)
			}
			b.ReportMetric(p.heapPer, "heapB/transfer")
			b.ReportMetric(p.stackPer, "stackB/transfer")
			b.ReportMetric(float64(p.cpu.Microseconds())/float64(n*size>>20), "cpu-µs/MiB")
			if hwm, err := vmHWM(); err == nil {
				b.ReportMetric(float64(hwm)/(1<<20), "VmHWM-MiB")
			}
		})
	}
}
