package tftpsrv

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// engines are option sets that select each mode of the octet sender:
// lock-step and RFC 7440 windows.
var engines = []struct {
	name string
	opts []string
}{
	{"lock-step", []string{"blksize", "1024"}},
	{"windowed", []string{"blksize", "1024", "windowsize", "8"}},
}

func TestShutdownWithStalledClient(t *testing.T) {
	dir := testTree(t, map[string][]byte{"big": randomBytes(t, 1<<20)})
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			srv := &Server{Handler: FileServer(os.DirFS(dir))} // defaults: 1 s × 5 to give up
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			require.NoError(t, err)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(conn) }()

			c := newRawClient(t, conn.LocalAddr().String())
			c.request(opRRQ, "big", eng.opts...)
			require.Equal(t, opOACK, opOf(c.recv(3*time.Second)))
			c.ack(0)
			require.Equal(t, opDATA, opOf(c.recv(3*time.Second)))
			// The client now stalls: it never acknowledges.

			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = srv.Shutdown(ctx)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, time.Since(start), time.Second, "Shutdown must return by its deadline")
			assert.ErrorIs(t, <-served, ErrServerClosed)
			assert.ErrorIs(t, srv.Serve(conn), ErrServerClosed, "a closed server stays closed")
		})
	}
}

func TestShutdownGracefulWaitsForTransfers(t *testing.T) {
	data := randomBytes(t, 200_000)
	dir := testTree(t, map[string][]byte{"f": data})
	srv := &Server{Handler: FileServer(os.DirFS(dir))}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(conn) }()
	c := newRawClient(t, conn.LocalAddr().String())
	got := make(chan []byte)
	go func() {
		b, _ := c.download("f", "windowsize", "4")
		got <- b
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	assert.Equal(t, data, <-got)
}

func TestVanishedClientTimesOut(t *testing.T) {
	dir := testTree(t, map[string][]byte{"big": randomBytes(t, 1<<20)})
	const timeout, retries = 100 * time.Millisecond, 3
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			ends := make(chan Event, 4)
			addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), Timeout: timeout, Retries: retries,
				OnEvent: func(e Event) {
					if e.Kind == TransferEnd {
						ends <- e
					}
				}}, "udp4")
			c := newRawClient(t, addr)
			c.request(opRRQ, "big", eng.opts...)
			require.Equal(t, opOACK, opOf(c.recv(3*time.Second)))
			c.ack(0)
			sent := time.Now()
			select {
			case e := <-ends:
				assert.ErrorIs(t, e.Err, ErrTimeout)
				assert.InDelta(t, float64(timeout*(retries+1)), float64(time.Since(sent)), float64(300*time.Millisecond))
			case <-time.After(5 * time.Second):
				t.Fatal("transfer to a vanished client did not end")
			}
		})
	}
}

func TestLimits(t *testing.T) {
	dir := testTree(t, map[string][]byte{"big": randomBytes(t, 1<<20)})
	var logs logBuffer
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), Logger: logs.logger(),
		Timeout: 300 * time.Millisecond, Retries: 1, MaxTransfersPerClient: 2}, "udp4")
	for range 2 { // two transfers whose clients never acknowledge
		c := newRawClient(t, addr)
		c.request(opRRQ, "big")
		require.Equal(t, opDATA, opOf(c.recv(3*time.Second)))
	}
	c := newRawClient(t, addr)
	c.request(opRRQ, "big")
	p := c.recv(3 * time.Second)
	require.Equal(t, opERROR, opOf(p))
	code, msg := errOf(p)
	assert.Equal(t, ErrCodeNotDefined, code)
	assert.Contains(t, msg, "busy")
	assert.Contains(t, logs.String(), "too many transfers")
	// When the stalled transfers give up, the client is admitted again.
	time.Sleep(800 * time.Millisecond)
	got, _ := newRawClient(t, addr).download("big")
	assert.Len(t, got, 1<<20)
}

func TestConfigValidation(t *testing.T) {
	h := FileServer(os.DirFS(t.TempDir()))
	for _, srv := range []*Server{
		{},
		{Handler: h, Timeout: -1},
		{Handler: h, Retries: -1},
		{Handler: h, MaxBlockSize: 7},
		{Handler: h, MaxBlockSize: 65465},
		{Handler: h, MaxWindowSize: 70000},
		{Handler: h, MaxTransfers: -1},
	} {
		assert.Error(t, srv.ListenAndServe("127.0.0.1:0"))
	}
}

var leakRequests = flag.Int("leak.requests", 10_000, "requests TestNoLeaks sends, spread over every kind")

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestNoLeaks sends requests of every kind and checks that sockets and
// goroutines come back to where they started.
func TestNoLeaks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	perKind := *leakRequests / 8
	if testing.Short() {
		perKind = 100
	}
	dir := testTree(t, map[string][]byte{"small": []byte("tiny file"), "two": randomBytes(t, 3000)})
	srv := &Server{Handler: FileServer(os.DirFS(dir)), Timeout: 500 * time.Millisecond,
		MaxTransfers: 100000, MaxTransfersPerClient: 100000}
	// Warm up lazily created runtime state before taking the baseline.
	runtime.GC()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan struct{})
	go func() { _ = srv.Serve(conn); close(served) }()
	addr := conn.LocalAddr().String()
	newRawClient(t, addr).download("small")
	time.Sleep(50 * time.Millisecond)
	fds, gos := openFDs(t), runtime.NumGoroutine()

	kinds := []func(c *rawClient){
		func(c *rawClient) { // completed, lock-step
			c.download("small")
		},
		func(c *rawClient) { // completed, windowed
			c.download("two", "windowsize", "2")
		},
		func(c *rawClient) { // missing
			c.request(opRRQ, "missing")
			require.Equal(t, opERROR, opOf(c.recv(2*time.Second)))
		},
		func(c *rawClient) { // refused name
			c.request(opRRQ, "../etc/passwd")
			require.Equal(t, opERROR, opOf(c.recv(2*time.Second)))
		},
		func(c *rawClient) { // write
			c.request(opWRQ, "small")
			require.Equal(t, opERROR, opOf(c.recv(2*time.Second)))
		},
		func(c *rawClient) { // aborted after the first block, both engines
			c.request(opRRQ, "two")
			require.Equal(t, opDATA, opOf(c.recv(2*time.Second)))
			c.sendError(ErrCodeNotDefined, "abort")
		},
		func(c *rawClient) {
			c.request(opRRQ, "two", "windowsize", "2")
			require.Equal(t, opOACK, opOf(c.recv(2*time.Second)))
			c.ack(0)
			require.Equal(t, opDATA, c.recvOp(opDATA, 2*time.Second))
			c.sendError(ErrCodeNotDefined, "abort")
		},
		func(c *rawClient) { // UEFI size probe
			c.request(opRRQ, "two", "tsize", "0")
			require.Equal(t, opOACK, opOf(c.recv(2*time.Second)))
			c.sendError(ErrCodeOptionRefused, "probe")
		},
	}
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Client sockets stay open for a while after use so that
			// late packets (a retransmission from a transfer that
			// timed out under load, or pin/tftp answering a client's
			// ERROR with its own) do not reach a reused port.
			type used struct {
				c  *rawClient
				at time.Time
			}
			var recent []used
			defer func() {
				for _, u := range recent {
					u.c.conn.Close()
				}
			}()
			for i := w; i < perKind*len(kinds); i += workers {
				for len(recent) > 0 && time.Since(recent[0].at) > 2*time.Second {
					recent[0].c.conn.Close()
					recent = recent[1:]
				}
				c := openRawClient(t, addr)
				recent = append(recent, used{c, time.Now()})
				kinds[i%len(kinds)](c)
				if t.Failed() {
					return
				}
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (openFDs(t) > fds || runtime.NumGoroutine() > gos) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.LessOrEqual(t, openFDs(t), fds, "file descriptors leaked")
	assert.LessOrEqual(t, runtime.NumGoroutine(), gos, "goroutines leaked")
	if t.Failed() {
		buf := make([]byte, 1<<20)
		fmt.Println(string(buf[:runtime.Stack(buf, true)]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	<-served
}
