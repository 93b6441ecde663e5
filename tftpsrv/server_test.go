package tftpsrv

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDownloadOptions(t *testing.T) {
	big := randomBytes(t, 300_000)
	exact := randomBytes(t, 4*1468) // a multiple of blksize needs an empty last block
	dir := testTree(t, map[string][]byte{"boot/big.img": big, "exact.bin": exact, "empty": nil})
	var logs logBuffer
	srv := &Server{Handler: FileServer(os.DirFS(dir)), Logger: logs.logger()}
	for _, network := range []string{"udp4", "udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			addr := startServer(t, &Server{Handler: srv.Handler, Logger: srv.Logger}, network)
			for _, tc := range []struct {
				name     string
				file     string
				want     []byte
				opts     []string
				wantOACK map[string]string
			}{
				{"plain", "boot/big.img", big, nil, nil},
				{"absolute path", "/boot/big.img", big, nil, nil},
				{"backslashes", `\boot\big.img`, big, nil, nil},
				{"blksize and tsize", "boot/big.img", big, []string{"blksize", "1468", "tsize", "0"},
					map[string]string{"blksize": "1468", "tsize": "300000"}},
				{"upper-case options", "boot/big.img", big, []string{"BLKSIZE", "1024", "TSize", "0"},
					map[string]string{"blksize": "1024", "tsize": "300000"}},
				{"blksize above ceiling", "boot/big.img", big, []string{"blksize", "8192"},
					map[string]string{"blksize": "1468"}},
				{"small blksize", "boot/big.img", big, []string{"blksize", "100"},
					map[string]string{"blksize": "100"}},
				{"windowsize", "boot/big.img", big, []string{"blksize", "1468", "windowsize", "16"},
					map[string]string{"blksize": "1468", "windowsize": "16"}},
				{"windowsize above ceiling", "boot/big.img", big, []string{"windowsize", "500"},
					map[string]string{"windowsize": "32"}},
				{"timeout", "boot/big.img", big, []string{"timeout", "3"}, map[string]string{"timeout": "3"}},
				{"exact multiple windowed", "exact.bin", exact, []string{"blksize", "1468", "windowsize", "4"},
					map[string]string{"blksize": "1468", "windowsize": "4"}},
				{"exact multiple lock-step", "exact.bin", exact, []string{"blksize", "1468"},
					map[string]string{"blksize": "1468"}},
				{"empty file", "empty", nil, []string{"windowsize", "4", "tsize", "0"},
					map[string]string{"windowsize": "4", "tsize": "0"}},
				{"unknown option only", "exact.bin", exact, []string{"foo", "bar"}, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := newRawClient(t, addr)
					got, oack := c.download(tc.file, tc.opts...)
					assert.True(t, bytes.Equal(tc.want, got), "content differs: got %d bytes, want %d", len(got), len(tc.want))
					if tc.wantOACK == nil {
						assert.Nil(t, oack)
					} else {
						assert.Equal(t, tc.wantOACK, oack)
					}
				})
			}
		})
	}
	assert.NotContains(t, logs.String(), "level=WARN")
	assert.NotContains(t, logs.String(), "level=ERROR")
}

func TestRefusals(t *testing.T) {
	dir := testTree(t, map[string][]byte{"a.txt": []byte("hello")})
	evc := make(chan Event, 100)
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), OnEvent: func(e Event) { evc <- e }}, "udp4")
	for _, tc := range []struct {
		name     string
		op       uint16
		file     string
		mode     string
		wantCode ErrorCode
	}{
		{"missing", opRRQ, "nope.efi", "octet", ErrCodeFileNotFound},
		{"directory", opRRQ, "/", "octet", ErrCodeAccessViolation},
		{"dot-dot", opRRQ, "../etc/passwd", "octet", ErrCodeAccessViolation},
		{"deep dot-dot", opRRQ, "a/../../etc/passwd", "octet", ErrCodeAccessViolation},
		{"control char", opRRQ, "a\x01b", "octet", ErrCodeAccessViolation},
		{"too long", opRRQ, string(bytes.Repeat([]byte("a"), 300)), "octet", ErrCodeAccessViolation},
		{"write", opWRQ, "a.txt", "octet", ErrCodeAccessViolation},
		{"mail mode", opRRQ, "a.txt", "mail", ErrCodeIllegalOp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRawClient(t, addr)
			c.send(packRequest(tc.op, tc.file, tc.mode, nil))
			p := c.recv(3 * time.Second)
			require.NotNil(t, p)
			require.Equal(t, opERROR, opOf(p))
			code, msg := errOf(p)
			assert.Equal(t, tc.wantCode, code)
			assert.NotContains(t, msg, dir, "error text must not reveal server paths")
			assert.NotContains(t, msg, "/tmp")
			e := <-evc
			assert.Equal(t, TransferEnd, e.Kind)
			assert.Error(t, e.Err)
		})
	}
}

func TestSizeProbeIsQuiet(t *testing.T) {
	data := randomBytes(t, 100_000)
	dir := testTree(t, map[string][]byte{"bootx64.efi": data})
	var logs logBuffer
	evc := make(chan Event, 100)
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), Logger: logs.logger(),
		OnEvent: func(e Event) { evc <- e }}, "udp4")
	for _, opts := range [][]string{
		{"tsize", "0", "blksize", "1468", "windowsize", "4"}, // OVMF
		{"tsize", "0", "blksize", "1468"},                    // lock-step engine
	} {
		c := newRawClient(t, addr)
		c.request(opRRQ, "bootx64.efi", opts...)
		p := c.recv(3 * time.Second)
		require.Equal(t, opOACK, opOf(p))
		assert.Equal(t, strconv.Itoa(len(data)), oackOf(p)["tsize"])
		c.sendError(ErrCodeOptionRefused, "User aborted the transfer")
		require.Equal(t, TransferStart, (<-evc).Kind)
		end := <-evc
		assert.True(t, end.Probe)
		assert.NoError(t, end.Err)

		c2 := newRawClient(t, addr)
		got, _ := c2.download("bootx64.efi", opts[2:]...)
		assert.Equal(t, data, got)
		<-evc
		assert.NoError(t, (<-evc).Err)
	}
	assert.NotContains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "tftp size probe answered")
}

// TestDownloadUnderLoss drops 3 % of the packets the client receives and
// of the ACKs it sends; every transfer must still complete intact.
func TestDownloadUnderLoss(t *testing.T) {
	data := randomBytes(t, 400_000)
	dir := testTree(t, map[string][]byte{"f": data, "small": data[:30_000]})
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), Timeout: 100 * time.Millisecond, Retries: 10,
		OnEvent: func(e Event) {
			if e.Err != nil {
				t.Logf("transfer failed: %v after %d bytes", e.Err, e.Bytes)
			}
		}}, "udp4")
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	drop := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64() < 0.03
	}
	for _, tc := range []struct {
		file string
		opts []string
	}{
		{"f", []string{"blksize", "1468"}},
		{"f", []string{"blksize", "1468", "windowsize", "4"}},
		{"f", []string{"blksize", "1468", "windowsize", "16"}},
		// The smallest timeout a client can ask for is 1 s, and each
		// loss costs one: keep this file small.
		{"small", []string{"timeout", "1", "blksize", "1468"}},
	} {
		t.Run(fmt.Sprint(tc.opts), func(t *testing.T) {
			c := newRawClient(t, addr)
			c.drop = drop
			got, _ := c.download(tc.file, tc.opts...)
			want := data
			if tc.file == "small" {
				want = data[:30_000]
			}
			assert.True(t, bytes.Equal(want, got), "got %d bytes", len(got))
		})
	}
}

// TestLossCostsRoundTripsNotTimeouts checks that a lost packet on a fast
// link is resent after a few round trips, not after the full timeout the
// client asked for (curl asks for 6 s): 30 losses must not cost 30 × 6 s.
func TestLossCostsRoundTripsNotTimeouts(t *testing.T) {
	data := randomBytes(t, 1468*400)
	dir := testTree(t, map[string][]byte{"f": data})
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir))}, "udp4")
	rng := rand.New(rand.NewPCG(3, 4))
	var mu sync.Mutex
	c := newRawClient(t, addr)
	c.drop = func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64() < 0.03
	}
	start := time.Now()
	got, oack := c.download("f", "blksize", "1468", "timeout", "6")
	assert.Equal(t, "6", oack["timeout"])
	assert.True(t, bytes.Equal(data, got), "got %d bytes", len(got))
	// About 24 exchanges of 800 lose a packet; at 150 ms of the test
	// client's own re-ACK wait or the server's 100 ms floor each, that is
	// seconds, where a fixed 6 s timer would take minutes.
	assert.Less(t, time.Since(start), 20*time.Second)
}

// TestNetasciiOnPin covers the netascii path, the one transfers still take
// through pin/tftp: line ends are converted to CR LF.
func TestNetasciiOnPin(t *testing.T) {
	dir := testTree(t, map[string][]byte{"menu": []byte("a\nb\n")})
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir))}, "udp4")
	c := newRawClient(t, addr)
	c.send(packRequest(opRRQ, "menu", "netascii", nil))
	p := c.recv(3 * time.Second)
	require.Equal(t, opDATA, opOf(p))
	assert.Equal(t, "a\r\nb\r\n", string(p[4:]))
	c.ack(1)
}
