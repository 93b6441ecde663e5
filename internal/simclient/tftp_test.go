package simclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"hash/crc32"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/tftpsrv"
)

// startTFTP serves files with tftpsrv on a loopback port.
func startTFTP(t *testing.T, files fstest.MapFS) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &tftpsrv.Server{Handler: tftpsrv.FileServer(files)}
	go func() { _ = srv.Serve(conn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestTFTPRead runs the client against tftpsrv on loopback: EDK2's size
// probe, a windowed read, a lock-step read, a missing file.
func TestTFTPRead(t *testing.T) {
	data := make([]byte, 1468*40+123)
	_, _ = rand.Read(data)
	server := startTFTP(t, fstest.MapFS{"f.bin": {Data: data}})
	var rx, tx atomic.Int64
	c := &TFTP{Server: server, Local: netip.MustParseAddr("127.0.0.1"), RX: &rx, TX: &tx}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	probe, err := c.Read(ctx, "f.bin", TFTPOptions{BlockSize: 1468, WindowSize: 4, TSize: true, Probe: true}, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), probe.TSize)
	assert.Zero(t, probe.Size)
	assert.Equal(t, "1468", probe.OACK["blksize"])

	want := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	for _, o := range []TFTPOptions{{BlockSize: 1468, WindowSize: 4}, {BlockSize: 1024, TSize: true}, {}} {
		var got bytes.Buffer
		r, err := c.Read(ctx, "f.bin", o, &got)
		require.NoError(t, err, "%+v", o)
		assert.Equal(t, int64(len(data)), r.Size)
		assert.Equal(t, want, r.CRC)
		assert.True(t, bytes.Equal(data, got.Bytes()))
		if o.BlockSize == 0 {
			assert.Nil(t, r.OACK, "no options asked, none acknowledged")
			assert.Equal(t, int64(-1), r.TSize)
		}
	}
	assert.Greater(t, rx.Load(), int64(3*len(data)))
	assert.Positive(t, tx.Load())

	_, err = c.Read(ctx, "missing", TFTPOptions{BlockSize: 1468}, nil)
	assert.ErrorContains(t, err, "server error")
}

// TestTFTPTimeout: a server that never answers ends the read after
// Retries timeouts, and a cancelled context ends it at once.
func TestTFTPTimeout(t *testing.T) {
	mute, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer mute.Close()
	c := &TFTP{Server: mute.LocalAddr().(*net.UDPAddr).AddrPort(), Timeout: 20 * time.Millisecond, Retries: 3}
	start := time.Now()
	_, err = c.Read(context.Background(), "f", TFTPOptions{}, nil)
	assert.ErrorContains(t, err, "timed out")
	assert.Less(t, time.Since(start), 2*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Timeout = time.Hour
	_, err = c.Read(ctx, "f", TFTPOptions{}, nil)
	assert.ErrorIs(t, err, context.Canceled)

	_, err = (&TFTP{}).Read(context.Background(), "f", TFTPOptions{}, nil)
	assert.Error(t, err, "no server")
}

// TestTFTPReadUnderLoss loses packets both ways, in lock-step and in
// windows, and with an extra option: every read still completes intact.
func TestTFTPReadUnderLoss(t *testing.T) {
	data := make([]byte, 1468*60+7)
	_, _ = rand.Read(data)
	server := startTFTP(t, fstest.MapFS{"f.bin": {Data: data}})
	rng := mrand.New(mrand.NewPCG(1, 2))
	lost := 0
	c := &TFTP{Server: server, Timeout: 100 * time.Millisecond, Retries: 30, Loss: func() bool {
		if rng.Float64() < 0.05 {
			lost++
			return true
		}
		return false
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, o := range []TFTPOptions{
		{BlockSize: 1468},
		{BlockSize: 1468, WindowSize: 4},
		{BlockSize: 1468, WindowSize: 16, Extra: []string{"timeout", "1"}},
	} {
		var got bytes.Buffer
		r, err := c.Read(ctx, "f.bin", o, &got)
		require.NoError(t, err, "%+v", o)
		assert.True(t, bytes.Equal(data, got.Bytes()), "%+v: %d bytes", o, r.Size)
		if o.Extra != nil {
			assert.Equal(t, "1", r.OACK["timeout"])
		}
	}
	assert.Positive(t, lost)
}

// TestTFTPReadIPv6 reads over ::1 when the host has IPv6 loopback.
func TestTFTPReadIPv6(t *testing.T) {
	conn, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skip("simclient: skipped: no IPv6 loopback:", err)
	}
	srv := &tftpsrv.Server{Handler: tftpsrv.FileServer(fstest.MapFS{"f": {Data: []byte("hello")}})}
	go func() { _ = srv.Serve(conn) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	c := &TFTP{Server: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	var got bytes.Buffer
	_, err = c.Read(t.Context(), "f", TFTPOptions{}, &got)
	require.NoError(t, err)
	assert.Equal(t, "hello", got.String())
}
