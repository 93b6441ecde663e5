package isosrc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObserve(t *testing.T) {
	tree := fstest.MapFS{"boot/linux": {Data: []byte("kernel")}}
	files := ContentOnly(FileServer(tree))
	for _, tc := range []struct {
		name, method, target string
		h                    http.Handler
		status               int
		bytes                int64
		event                string // Name
		served               bool
	}{
		{"file", "GET", "/boot/linux", files, 200, 6, "boot/linux", true},
		{"uncleaned path", "GET", "/boot/./x/../linux", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "k") }), 200, 1, "boot/linux", true},
		{"range", "GET", "/boot/linux", ContentOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set("Range", "bytes=2-")
			FileServer(tree).ServeHTTP(w, r)
		})), 206, 4, "boot/linux", true},
		{"head", "HEAD", "/boot/linux", files, 200, 0, "boot/linux", false},
		{"missing", "GET", "/boot/initrd", files, 404, 19, "boot/initrd", false},
		{"refused", "GET", "/hosts/x/ks.cfg", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusForbidden)
		}), 403, 3, "hosts/x/ks.cfg", false},
		{"nothing written", "POST", "/api/report", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), 200, 0, "api/report", true},
		{"early hints first", "GET", "/a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNoContent)
		}), 204, 0, "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []HTTPEvent
			h := Observe(tc.h, func(ev HTTPEvent) { got = append(got, ev) })
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r.RemoteAddr = "[::ffff:10.0.0.7]:4711"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			require.Len(t, got, 1)
			ev := got[0]
			assert.Equal(t, tc.status, ev.Status)
			if rec.Code >= 200 { // the recorder keeps a 103 as the code
				assert.Equal(t, rec.Code, ev.Status, "the status the client got")
			}
			assert.Equal(t, tc.bytes, ev.Bytes)
			assert.Equal(t, tc.event, ev.Name)
			assert.Equal(t, tc.served, ev.Served())
			assert.Equal(t, netip.MustParseAddrPort("10.0.0.7:4711"), ev.RemoteAddr, "unmapped")
			assert.Same(t, r, ev.Request)
			assert.NoError(t, ev.Err)
		})
	}
	assert.False(t, HTTPEvent{Status: 200}.Served(), "an event without its request")
}

// Observe must not hide the connection's ReadFrom: without it every
// kernel and initrd would be copied through user space instead of going
// out with sendfile(2).
func TestObserveKeepsSendfile(t *testing.T) {
	dir := t.TempDir()
	body := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	require.NoError(t, os.WriteFile(filepath.Join(dir, "initrd"), body, 0o644))
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()

	events := make(chan HTTPEvent, 1)
	var readerFrom bool
	files := FileServer(root.FS())
	h := Observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readerFrom = w.(io.ReaderFrom)
		files.ServeHTTP(w, r)
	}), func(ev HTTPEvent) { events <- ev })
	srv, base := serveForTest(t, h)
	defer srv.Close()

	resp, err := http.Get(base + "/initrd")
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, len(body), len(got))
	ev := waitEvent(t, events)
	assert.True(t, readerFrom, "the handler's writer must keep io.ReaderFrom")
	assert.Equal(t, int64(len(body)), ev.Bytes)
	assert.True(t, ev.Served())
	assert.True(t, ev.RemoteAddr.Addr().IsLoopback())
}

// A client that hangs up half-way has not reached the step.
func TestObserveClientGone(t *testing.T) {
	events := make(chan HTTPEvent, 1)
	chunk := make([]byte, 64<<10)
	h := Observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1073741824")
		for range 1 << 14 { // 1 GiB at most: the write fails long before
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), func(ev HTTPEvent) { events <- ev })
	srv, base := serveForTest(t, h)
	defer srv.Close()

	c, err := net.Dial("tcp", base[len("http://"):])
	require.NoError(t, err)
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	_, err = http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	ev := waitEvent(t, events)
	assert.Equal(t, 200, ev.Status)
	assert.Error(t, ev.Err)
	assert.False(t, ev.Served())
	assert.Less(t, ev.Bytes, int64(1<<30))
}

func serveForTest(t *testing.T, h http.Handler) (*http.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewHTTPServer(h, HTTPLimits{WriteTimeout: 5 * time.Second})
	go func() { _ = srv.Serve(LimitListener(ln, HTTPLimits{})) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, "http://" + ln.Addr().String()
}

func waitEvent(t *testing.T, events <-chan HTTPEvent) HTTPEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
		return HTTPEvent{}
	}
}
