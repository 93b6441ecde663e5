package isosrc_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/isosrc"
)

// serveListen serves files on isosrc.Listen over loopback until the test
// ends and returns the address.
func serveListen(t *testing.T, data []byte, l isosrc.HTTPLimits) string {
	t.Helper()
	ln, err := isosrc.Listen("127.0.0.1:0", l)
	require.NoError(t, err)
	srv := isosrc.NewHTTPServer(isosrc.FileServer(fstest.MapFS{"initrd.gz": {Data: data}}), l)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// getOnce sends one keep-alive GET on a fresh connection and returns the
// connection, the request not yet answered.
func getOnce(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(c, "GET /initrd.gz HTTP/1.1\r\nHost: pxe\r\nUser-Agent: GRUB 2.06\r\n\r\n")
	require.NoError(t, err)
	return c.(*net.TCPConn)
}

// readBody reads one response from c.
func readBody(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return body
}

// After a client that read everything closes first, the server resets the
// connection instead of closing it with a FIN: it keeps no LAST_ACK state
// that a rebooted GRUB, reusing its fixed source port, would run into.
func TestListenResetsWhatTheClientClosedFirst(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reset needs SIOCOUTQ, which only Linux has")
	}
	data := bytes.Repeat([]byte("initrd"), 100_000)
	c := getOnce(t, serveListen(t, data, isosrc.HTTPLimits{}))
	br := bufio.NewReader(c)
	require.Equal(t, data, readBody(t, br))
	require.NoError(t, c.CloseWrite()) // GRUB's FIN after the last byte

	_, err := br.ReadByte()
	assert.True(t, errors.Is(err, syscall.ECONNRESET), "want a reset from the server, got %v", err)
}

// A client that half-closes right after its request still gets the whole
// response: the reset waits until every byte is acknowledged.
func TestListenHalfClosedClientGetsEverything(t *testing.T) {
	data := bytes.Repeat([]byte("kernel"), 400_000) // more than the socket buffers hold at once
	c := getOnce(t, serveListen(t, data, isosrc.HTTPLimits{}))
	require.NoError(t, c.CloseWrite())
	time.Sleep(100 * time.Millisecond) // let the server see the FIN before anything is read
	assert.Equal(t, data, readBody(t, bufio.NewReader(c)))
}

// When the server closes first (an idle keep-alive connection), it closes
// as usual, with a FIN.
func TestListenServerCloseIsGraceful(t *testing.T) {
	data := []byte("menu")
	c := getOnce(t, serveListen(t, data, isosrc.HTTPLimits{IdleTimeout: 100 * time.Millisecond}))
	br := bufio.NewReader(c)
	require.Equal(t, data, readBody(t, br))
	_, err := br.ReadByte()
	assert.Equal(t, io.EOF, err)
}
