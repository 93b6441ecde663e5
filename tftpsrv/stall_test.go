package tftpsrv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawClientFrom is a raw client bound to a chosen loopback source address
// (any of 127.0.0.0/8 works on Linux), so one test can play many hosts.
func rawClientFrom(t *testing.T, src, server string) *rawClient {
	t.Helper()
	sa, err := net.ResolveUDPAddr("udp4", server)
	require.NoError(t, err)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, server: sa}
}

// endEvents collects TransferEnd events.
type endEvents struct {
	mu     sync.Mutex
	ends   []Event
	starts int
}

func (e *endEvents) on(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Kind == TransferStart {
		e.starts++
		return
	}
	e.ends = append(e.ends, ev)
}

// matching waits until n ends satisfy match (events may be reported a
// moment after the client has its answer) and returns them all.
func (e *endEvents) matching(t *testing.T, n int, match func(Event) bool) []Event {
	t.Helper()
	var got []Event
	assert.Eventually(t, func() bool {
		ends, _ := e.snapshot()
		got = got[:0]
		for _, ev := range ends {
			if match(ev) {
				got = append(got, ev)
			}
		}
		return len(got) >= n
	}, 3*time.Second, 20*time.Millisecond, "want %d matching end events", n)
	return got
}

func (e *endEvents) snapshot() ([]Event, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.ends...), e.starts
}

// admittedWithin requests name from 127.0.0.1 until it is not refused as
// busy, and returns how long that took. It fails the test past limit.
func admittedWithin(t *testing.T, addr, name string, want []byte, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		c := newRawClient(t, addr)
		c.request(opRRQ, name)
		p := c.recv(2 * time.Second)
		require.NotNil(t, p, "no answer")
		if opOf(p) == opERROR {
			code, msg := errOf(p)
			require.Equal(t, "server busy, try again later", msg, "code %d", code)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		// Admitted: receive the rest in lock-step (loopback loses
		// nothing, so no retransmission handling is needed).
		took := time.Since(start)
		var got []byte
		for expect := uint16(1); ; expect++ {
			require.Equal(t, opDATA, opOf(p), "%v", p)
			require.Equal(t, expect, binary.BigEndian.Uint16(p[2:]))
			got = append(got, p[4:]...)
			c.ack(expect)
			if len(p)-4 < defBlockSize {
				break
			}
			p = c.recv(2 * time.Second)
			require.NotNil(t, p, "block %d did not come", expect+1)
		}
		assert.True(t, bytes.Equal(want, got), "content differs")
		return took
	}
	t.Fatalf("still busy after %v", limit)
	return 0
}

// TestSlotExhaustion reproduces the report: read requests asking for the
// longest RFC 2349 timeout (255 s), never acknowledged, from several
// addresses, take every transfer slot. Scaled down (16 slots, 4 per
// address, a 1 s StallTimeout), the slots must come back within the bound
// and an ordinary client must then be served.
func TestSlotExhaustion(t *testing.T) {
	data := randomBytes(t, 100_000)
	dir := testTree(t, map[string][]byte{"f": data})
	const (
		slots     = 16
		perClient = 4
		stall     = time.Second
	)
	for _, tc := range []struct {
		name string
		mode string
		opts []string
		cfg  func(*Server)
		// wantOACK is what the attacker's request gets first.
		wantOACK map[string]string
	}{
		{
			// The reported attack. The timeout is declined (above
			// MaxClientTimeout), and Timeout × (Retries+1) = 10 s
			// is cut to StallTimeout.
			name: "timeout 255 declined", mode: "octet",
			opts:     []string{"timeout", "255", "blksize", "1468"},
			cfg:      func(s *Server) { s.Timeout, s.Retries = 500*time.Millisecond, 19 },
			wantOACK: map[string]string{"blksize": "1468"},
		},
		{
			// A timeout within MaxClientTimeout is granted, yet the
			// slot is still held no longer than StallTimeout.
			name: "granted timeout, stall bound", mode: "octet",
			opts: []string{"timeout", "3"},
			cfg: func(s *Server) {
				s.MaxClientTimeout, s.Timeout, s.Retries = 3*time.Second, 500*time.Millisecond, 19
			},
			wantOACK: map[string]string{"timeout": "3"},
		},
		{
			// netascii runs on pin/tftp, whose retries are lowered
			// to fit StallTimeout.
			name: "netascii on pin", mode: "netascii",
			cfg: func(s *Server) { s.Timeout, s.Retries = 250*time.Millisecond, 19 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev endEvents
			srv := &Server{Handler: FileServer(os.DirFS(dir))}
			tc.cfg(srv)
			srv.MaxTransfers, srv.MaxTransfersPerClient, srv.StallTimeout = slots, perClient, stall
			srv.OnEvent = ev.on
			addr := startServer(t, srv, "udp4")

			var o []option
			for i := 0; i+1 < len(tc.opts); i += 2 {
				o = append(o, option{tc.opts[i], tc.opts[i+1]})
			}
			rrq := packRequest(opRRQ, "f", tc.mode, o)
			// Four hosts take four slots each. Each attacker reads
			// the first answer (so the slot is surely taken) and
			// never acknowledges anything.
			for h := range slots / perClient {
				for range perClient {
					c := rawClientFrom(t, fmt.Sprintf("127.0.0.%d", 10+h), addr)
					c.send(rrq)
					p := c.recv(2 * time.Second)
					require.NotNil(t, p)
					if tc.wantOACK != nil {
						require.Equal(t, opOACK, opOf(p))
						assert.Equal(t, tc.wantOACK, oackOf(p))
					} else {
						require.Equal(t, opDATA, opOf(p), "%v", p)
					}
				}
				// A host over its cap is refused while slots are
				// still free elsewhere.
				if h == 0 {
					c := rawClientFrom(t, "127.0.0.10", addr)
					c.send(rrq)
					p := c.recv(2 * time.Second)
					require.Equal(t, opERROR, opOf(p))
					_, msg := errOf(p)
					assert.Contains(t, msg, "busy")
				}
			}
			attacked := time.Now()
			// Every slot is taken: an ordinary client is refused...
			c := newRawClient(t, addr)
			c.request(opRRQ, "f")
			p := c.recv(2 * time.Second)
			require.Equal(t, opERROR, opOf(p))
			_, msg := errOf(p)
			require.Contains(t, msg, "busy")
			// ... until the stalled transfers are given up, within
			// StallTimeout of their last progress (their request).
			admittedWithin(t, addr, "f", data, 10*time.Second)
			took := time.Since(attacked)
			t.Logf("slots came back after %v", took.Round(time.Millisecond))
			assert.Less(t, took, stall+time.Second)

			attacks := ev.matching(t, slots, func(e Event) bool {
				return e.RemoteAddr.Addr().String() != "127.0.0.1" && !errors.Is(e.Err, ErrBusy)
			})
			assert.Len(t, attacks, slots)
			for _, e := range attacks {
				if assert.ErrorIs(t, e.Err, ErrTimeout, "every attacking transfer ends with ErrTimeout") {
					assert.InDelta(t, float64(stall), float64(e.Duration), float64(500*time.Millisecond),
						"given up at StallTimeout")
				}
			}
		})
	}
}

func TestConfigStall(t *testing.T) {
	h := FileServer(os.DirFS(t.TempDir()))
	for _, srv := range []*Server{
		{Handler: h, StallTimeout: -1},
		{Handler: h, MaxClientTimeout: -1},
		{Handler: h, Timeout: 20 * time.Second}, // longer than the default StallTimeout
		{Handler: h, Timeout: 2 * time.Second, StallTimeout: time.Second},
	} {
		assert.Error(t, srv.ListenAndServe("127.0.0.1:0"))
	}
	cfg, err := (&Server{Handler: h}).settings()
	require.NoError(t, err)
	assert.Equal(t, DefaultStallTimeout, cfg.stall)
	assert.Equal(t, DefaultMaxClientTimeout, cfg.maxClientTO)
	assert.Equal(t, DefaultRetries, cfg.pinRetries)
	cfg, err = (&Server{Handler: h, Timeout: 2 * time.Second, Retries: 9, StallTimeout: 7 * time.Second}).settings()
	require.NoError(t, err)
	assert.Equal(t, 2, cfg.pinRetries, "pin/tftp gives up within StallTimeout: 2 s × 3")
	cfg, err = (&Server{Handler: h, Timeout: time.Second, Retries: 9, StallTimeout: 4 * time.Second}).settings()
	require.NoError(t, err)
	assert.Equal(t, 2, cfg.pinRetries, "strictly within: 1 s × 3")
	cfg, err = (&Server{Handler: h, Timeout: time.Second, StallTimeout: time.Second}).settings()
	require.NoError(t, err)
	assert.Equal(t, 0, cfg.pinRetries)
}

// TestFIFOUnderDir: with Dir, a FIFO is "file not found" at once, however
// often it is asked for, and the client is never locked out.
func TestFIFOUnderDir(t *testing.T) {
	dir := testTree(t, map[string][]byte{"ok": []byte("fine")})
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	d, err := Dir(dir)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	addr := startServer(t, &Server{Handler: FileServer(d), MaxTransfersPerClient: 2, MaxTransfers: 2}, "udp4")
	for range 6 { // three times the cap
		c := newRawClient(t, addr)
		start := time.Now()
		c.request(opRRQ, "fifo", "blksize", "1468")
		p := c.recv(2 * time.Second)
		require.Equal(t, opERROR, opOf(p))
		code, msg := errOf(p)
		assert.Equal(t, ErrCodeFileNotFound, code)
		assert.Equal(t, "file not found", msg)
		assert.Less(t, time.Since(start), time.Second)
	}
	got, _ := newRawClient(t, addr).download("ok")
	assert.Equal(t, "fine", string(got))
}

// TestFIFOUnderDirFS: os.DirFS opens a FIFO with a blocking open(2), so the
// handler never returns. StallTimeout frees the slot anyway and tells the
// client; the stuck goroutine stays until a writer appears (here, the
// test's cleanup).
func TestFIFOUnderDirFS(t *testing.T) {
	dir := testTree(t, map[string][]byte{"ok": []byte("fine")})
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	const stall = 500 * time.Millisecond
	var ev endEvents
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), MaxTransfersPerClient: 2,
		StallTimeout: stall, Timeout: 100 * time.Millisecond, OnEvent: ev.on}, "udp4")
	t.Cleanup(func() { unblockFIFO(t, fifo) })

	var clients []*rawClient
	for range 2 {
		c := newRawClient(t, addr)
		c.request(opRRQ, "fifo")
		clients = append(clients, c)
	}
	time.Sleep(100 * time.Millisecond)
	c := newRawClient(t, addr)
	c.request(opRRQ, "ok")
	_, msg := errOf(c.recv(2 * time.Second))
	require.Contains(t, msg, "busy", "the stuck handlers hold both slots")
	for _, c := range clients {
		p := c.recv(2 * time.Second)
		require.Equal(t, opERROR, opOf(p))
		code, msg := errOf(p)
		assert.Equal(t, ErrCodeNotDefined, code)
		assert.Equal(t, "transfer timed out", msg)
	}
	took := admittedWithin(t, addr, "ok", []byte("fine"), 5*time.Second)
	assert.Less(t, took, stall+time.Second)
	stalled := ev.matching(t, 2, func(e Event) bool { return e.Name == "fifo" })
	assert.Len(t, stalled, 2)
	for _, e := range stalled {
		assert.ErrorIs(t, e.Err, ErrStalled)
	}
}

// unblockFIFO opens the FIFO for writing and closes it, so readers stuck in
// open(2) get end of file.
func unblockFIFO(t *testing.T, fifo string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("could not unblock the FIFO's readers")
	}
}

// blockingReader is content whose Read waits until release is closed, like
// a FIFO or a hung network file system behind some fs.FS.
type blockingReader struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (b *blockingReader) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return 0, io.EOF
}

// TestStuckReadFreesSlot: a Read that never returns cannot pin a slot, on
// either engine. The own sender tells the client from the transfer's
// socket; pin/tftp does once the Read returns.
func TestStuckReadFreesSlot(t *testing.T) {
	const stall = 500 * time.Millisecond
	for _, mode := range []string{"octet", "netascii"} {
		t.Run(mode, func(t *testing.T) {
			content := &blockingReader{release: make(chan struct{}), entered: make(chan struct{})}
			var ev endEvents
			srv := &Server{
				Handler: HandlerFunc(func(w ResponseWriter, r *Request) {
					if r.Name == "ok" {
						_, _ = w.Write([]byte("fine"))
						return
					}
					w.ServeContent(content, -1)
				}),
				MaxTransfers: 1, StallTimeout: stall, Timeout: 100 * time.Millisecond, OnEvent: ev.on,
			}
			addr := startServer(t, srv, "udp4")
			// Registered after startServer, so it runs before the
			// server's shutdown: the stuck reads end first.
			t.Cleanup(func() { close(content.release) })

			c := newRawClient(t, addr)
			c.send(packRequest(opRRQ, "stuck", mode, nil))
			select {
			case <-content.entered:
			case <-time.After(2 * time.Second):
				t.Fatal("content never read")
			}
			start := time.Now()
			if mode == "octet" {
				p := c.recv(2 * time.Second)
				require.Equal(t, opERROR, opOf(p))
				_, msg := errOf(p)
				assert.Equal(t, "transfer timed out", msg)
			}
			took := admittedWithin(t, addr, "ok", []byte("fine"), 5*time.Second)
			assert.Less(t, took, stall+time.Second)
			t.Logf("slot back %v after the read blocked", time.Since(start).Round(time.Millisecond))
			stalled := ev.matching(t, 1, func(e Event) bool { return e.Name == "stuck" })
			require.Len(t, stalled, 1)
			assert.ErrorIs(t, stalled[0].Err, ErrStalled)

			// Shutdown does not wait for a transfer given up as
			// stalled, except that pin/tftp waits for its own.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := srv.Shutdown(ctx)
			if mode == "octet" {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			}
		})
	}
}
