package tftpsrv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/testutil"
)

// startServer serves srv on a fresh loopback socket (network "udp4" or
// "udp6") and shuts it down when the test ends.
func startServer(t testing.TB, srv *Server, network string) string {
	t.Helper()
	addr := "127.0.0.1:0"
	switch network {
	case "udp6":
		addr = "[::1]:0"
	case "udp":
		addr = ":0" // dual-stack wildcard, as ListenAndServe(":69") makes
	}
	conn, err := net.ListenPacket(network, addr)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		require.ErrorIs(t, <-done, ErrServerClosed)
	})
	if network == "udp" {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port))
	}
	return conn.LocalAddr().String()
}

// testTree writes files into a temporary directory and returns it.
func testTree(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, 0o644))
	}
	return dir
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// logBuffer collects log output for assertions.
type logBuffer struct{ testutil.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// rawClient is a minimal TFTP client speaking packets directly, so tests can
// see exactly what the server sends and misbehave on purpose.
type rawClient struct {
	t      testing.TB
	conn   *net.UDPConn
	server *net.UDPAddr // where requests go
	peer   *net.UDPAddr // the transfer's TID, set by the first reply
	buf    []byte
	// drop, when set, decides to lose a packet (received or sent) to
	// simulate a lossy network.
	drop func() bool
}

func newRawClient(t testing.TB, server string) *rawClient {
	t.Helper()
	c := openRawClient(t, server)
	t.Cleanup(func() { c.conn.Close() })
	return c
}

// openRawClient is newRawClient for callers that close the socket
// themselves.
func openRawClient(t testing.TB, server string) *rawClient {
	t.Helper()
	sa, err := net.ResolveUDPAddr("udp", server)
	require.NoError(t, err)
	local := "127.0.0.1:0"
	if sa.IP.To4() == nil {
		local = "[::1]:0"
	}
	la, _ := net.ResolveUDPAddr("udp", local)
	conn, err := net.ListenUDP("udp", la)
	require.NoError(t, err)
	return &rawClient{t: t, conn: conn, server: sa}
}

func (c *rawClient) send(b []byte) {
	if c.drop != nil && opOf(b) == opACK && c.drop() {
		return
	}
	to := c.server
	if c.peer != nil {
		to = c.peer
	}
	_, err := c.conn.WriteToUDP(b, to)
	require.NoError(c.t, err)
}

func (c *rawClient) request(op uint16, name string, opts ...string) {
	var o []option
	for i := 0; i+1 < len(opts); i += 2 {
		o = append(o, option{opts[i], opts[i+1]})
	}
	c.peer = nil
	c.send(packRequest(op, name, "octet", o))
}

// recv returns the next packet, or nil after the timeout.
func (c *rawClient) recv(timeout time.Duration) []byte {
	if c.buf == nil {
		c.buf = make([]byte, 65536)
	}
	buf := c.buf
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	n, from, err := c.conn.ReadFromUDP(buf)
	for err == nil && c.drop != nil && c.drop() {
		n, from, err = c.conn.ReadFromUDP(buf)
	}
	if err != nil {
		return nil
	}
	if c.peer == nil {
		c.peer = from
	}
	return append([]byte(nil), buf[:n]...)
}

// silence is how long download waits before re-acknowledging.
func (c *rawClient) silence() time.Duration {
	if c.drop != nil {
		return 150 * time.Millisecond
	}
	return 500 * time.Millisecond
}

// recvOp waits for a packet with opcode op, skipping retransmissions of
// earlier packets (a server under load may resend its OACK), and returns
// the opcode seen last (0 on timeout).
func (c *rawClient) recvOp(op uint16, timeout time.Duration) uint16 {
	deadline := time.Now().Add(timeout)
	var got uint16
	for time.Now().Before(deadline) {
		p := c.recv(time.Until(deadline))
		if p == nil {
			break
		}
		if got = opOf(p); got == op || got == opERROR {
			return got
		}
	}
	return got
}

func (c *rawClient) ack(block uint16) {
	b := binary.BigEndian.AppendUint16(nil, opACK)
	c.send(binary.BigEndian.AppendUint16(b, block))
}

func (c *rawClient) sendError(code ErrorCode, msg string) {
	c.send(packError(code, msg))
}

// parsed packet views for assertions
func opOf(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func errOf(b []byte) (ErrorCode, string) {
	r, _ := parseReply(b)
	return r.code, r.msg
}

func oackOf(b []byte) map[string]string {
	m := map[string]string{}
	f := bytes.Split(b[2:], []byte{0})
	for i := 0; i+1 < len(f); i += 2 {
		m[string(f[i])] = string(f[i+1])
	}
	return m
}

// download fetches name with the given options, receiving windows the way
// RFC 7440 clients do (ACK the last block of each window), and returns the
// data and the OACK (nil when none came). It fails the test on any ERROR.
func (c *rawClient) download(name string, opts ...string) ([]byte, map[string]string) {
	c.t.Helper()
	c.request(opRRQ, name, opts...)
	blksize, window := 512, 1
	var oack map[string]string
	var data []byte
	var expect uint16 = 1
	inWindow := 0
	silences := 0
	for {
		p := c.recv(c.silence())
		if p == nil {
			// On silence, acknowledge the last block received in
			// order, as RFC 7440 clients do, so a lost tail of a
			// window is sent again.
			silences++
			require.Less(c.t, silences, 20, "timeout waiting for block %d", expect)
			if c.peer != nil && (oack != nil || expect > 1) {
				c.ack(expect - 1)
				inWindow = 0
			}
			continue
		}
		silences = 0
		switch opOf(p) {
		case opOACK:
			oack = oackOf(p)
			if v, ok := oack["blksize"]; ok {
				blksize, _ = strconv.Atoi(v)
			}
			if v, ok := oack["windowsize"]; ok {
				window, _ = strconv.Atoi(v)
			}
			c.ack(0)
		case opDATA:
			blk := binary.BigEndian.Uint16(p[2:])
			if blk != expect && expect-blk < 0x8000 {
				// An old block: our ACK was lost and the server
				// resent; acknowledge again what we have (atftp
				// does the same).
				c.ack(expect - 1)
				inWindow = 0
				continue
			}
			if blk != expect {
				// A gap: acknowledge what arrived in order so the
				// server resends from there (RFC 7440).
				if window > 1 && blk-expect < 0x8000 && inWindow > 0 {
					c.ack(expect - 1)
					inWindow = 0
				}
				continue
			}
			data = append(data, p[4:]...)
			inWindow++
			last := len(p)-4 < blksize
			if last || inWindow == window {
				c.ack(blk)
				inWindow = 0
			}
			if last {
				return data, oack
			}
			expect++
		case opERROR:
			code, msg := errOf(p)
			c.t.Fatalf("ERROR %d %q", code, msg)
		}
	}
}
