package isosrc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckPath(t *testing.T) {
	for p, want := range map[string]int{
		"/iso/BaseOS/repodata/repomd.xml":     0,
		"/grub/grub.cfg-01-52-54-00-12-34-56": 0,
		"/ünïcode.txt":                        0,
		"/a\x00b":                             http.StatusBadRequest,
		"/a\nb":                               http.StatusBadRequest,
		"/a\x7fb":                             http.StatusBadRequest,
		"/\xff\xfe":                           http.StatusBadRequest,
		"/" + strings.Repeat("a", 1024):       http.StatusNotFound,
		"/" + strings.Repeat("a", 256):        http.StatusNotFound,
		"/" + strings.Repeat("a", 255):        0,
	} {
		assert.Equal(t, want, CheckPath(p), "%.40q", p)
	}
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b.txt", "/a\x00", "/\xff", "/" + strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		code := CheckPath(p)
		switch code {
		case 0:
			if len(p) > maxPathBytes || !utf8ValidNoControl(p) {
				t.Fatalf("%q passed", p)
			}
			for _, e := range strings.Split(p, "/") {
				if len(e) > 255 {
					t.Fatalf("%q passed with a %d-byte element", p, len(e))
				}
			}
		case http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("%q: code %d", p, code)
		}
	})
}

func utf8ValidNoControl(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func TestContentOnly(t *testing.T) {
	var reached []string
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.Method+" "+r.URL.Path)
		_, _ = io.WriteString(w, "ok")
	})
	h := ContentOnly(inner)
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodGet, "/a/b.txt", http.StatusOK, ""},
		{http.MethodHead, "/a/b.txt", http.StatusOK, ""},
		{http.MethodPost, "/a/b.txt", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPut, "/a/b.txt", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, "/a/b.txt", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/a\x00b", http.StatusBadRequest, ""},
		{http.MethodGet, "/\xff", http.StatusBadRequest, ""},
		{http.MethodGet, "/" + strings.Repeat("x", 2000), http.StatusNotFound, ""},
	} {
		reached = nil
		r := httptest.NewRequest(tc.method, "/", nil)
		r.URL.Path = tc.path // beyond what a request line may carry
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tc.code, w.Code, "%s %.40q", tc.method, tc.path)
		assert.Equal(t, tc.allow, w.Header().Get("Allow"), "%s %.40q", tc.method, tc.path)
		if tc.code == http.StatusOK {
			assert.Equal(t, []string{tc.method + " " + tc.path}, reached)
		} else {
			assert.Empty(t, reached, "refused before the handler: %s %.40q", tc.method, tc.path)
			assert.NotContains(t, w.Body.String(), "\x00", "the path is not echoed")
		}
	}

	// GoodPath alone leaves the method to the handler (an API's POST).
	w := httptest.NewRecorder()
	assert.True(t, GoodPath(w, httptest.NewRequest(http.MethodPost, "/api/report", nil)))
	assert.Equal(t, http.StatusOK, w.Code)
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.URL.Path = "/api/\x01"
	w = httptest.NewRecorder()
	assert.False(t, GoodPath(w, r))
	assert.Equal(t, http.StatusBadRequest, w.Code)
}

func TestDefaultMaxConns(t *testing.T) {
	for soft, want := range map[uint64]int{0: 16, 256: 16, 300: 22, 1024: 384, 65536: 4096, 1 << 40: 4096} {
		assert.Equal(t, want, DefaultMaxConns(soft), "soft %d", soft)
	}
	soft, err := RaiseFileLimit()
	require.NoError(t, err)
	assert.Positive(t, soft)
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	assert.Equal(t, lim.Cur, soft, "the limit in force is returned")
	assert.Equal(t, lim.Max, lim.Cur, "raised to the hard limit")
}

func TestNewHTTPServerLimits(t *testing.T) {
	srv := NewHTTPServer(http.NotFoundHandler(), HTTPLimits{})
	assert.Equal(t, DefaultReadHeaderTimeout, srv.ReadHeaderTimeout)
	assert.Equal(t, DefaultReadTimeout, srv.ReadTimeout)
	assert.Equal(t, DefaultIdleTimeout, srv.IdleTimeout)
	assert.Equal(t, DefaultWriteTimeout, srv.WriteTimeout)
	assert.Equal(t, DefaultMaxHeaderBytes, srv.MaxHeaderBytes)

	set := HTTPLimits{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second,
		WriteTimeout: 4 * time.Second, MaxHeaderBytes: 5000, MaxBodyBytes: 6, MaxConns: 7}
	assert.Equal(t, set, set.withDefaults(), "set fields stay")
	srv = NewHTTPServer(http.NotFoundHandler(), set)
	assert.Equal(t, time.Second, srv.ReadHeaderTimeout)
	assert.Equal(t, 4*time.Second, srv.WriteTimeout)
	assert.Equal(t, 5000, srv.MaxHeaderBytes)

	// Bodies are capped for every handler.
	var readErr error
	h := bounded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
	}), HTTPLimits{MaxBodyBytes: 10}.withDefaults())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/api/x", strings.NewReader(strings.Repeat("x", 11))))
	var mbe *http.MaxBytesError
	assert.ErrorAs(t, readErr, &mbe)
}

// recordingWriter is a ResponseWriter with ReadFrom, as net/http's is.
type recordingWriter struct {
	*httptest.ResponseRecorder
	srcs []io.Reader
	ns   []int64 // the limits asked, when asked
}

func (r *recordingWriter) ReadFrom(src io.Reader) (int64, error) {
	r.srcs = append(r.srcs, src)
	if lr, ok := src.(*io.LimitedReader); ok {
		r.ns = append(r.ns, lr.N)
	}
	return io.Copy(r.ResponseRecorder, src)
}

func TestProgressKeepsSendfileShape(t *testing.T) {
	// net's sendfile(2) path takes a source with SyscallConn (*os.File),
	// alone or inside a single *io.LimitedReader: each chunk must keep
	// that shape.
	p := filepath.Join(t.TempDir(), "f")
	data := strings.Repeat("0123456789", 300_000) // 3 MB: three chunks
	require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()

	rw := &recordingWriter{ResponseRecorder: httptest.NewRecorder()}
	h := bounded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := w.(io.ReaderFrom)
		require.True(t, ok, "ReadFrom survives the wrapper")
		n, err := io.CopyN(w, f, int64(len(data)-5))
		assert.NoError(t, err)
		assert.Equal(t, int64(len(data)-5), n)
	}), HTTPLimits{}.withDefaults())
	h.ServeHTTP(rw, httptest.NewRequest(http.MethodGet, "/f", nil))
	assert.Equal(t, data[:len(data)-5], rw.Body.String())
	require.Len(t, rw.srcs, 3)
	for _, src := range rw.srcs {
		lr, ok := src.(*io.LimitedReader)
		require.True(t, ok, "%T", src)
		assert.IsType(t, (*os.File)(nil), lr.R)
	}
	assert.Equal(t, []int64{contentChunk, contentChunk, int64(len(data)-5) - 2*contentChunk}, rw.ns)
}

// TestHTTPProgressDeadline: a client that stops reading is cut off after
// WriteTimeout, while one that keeps reading gets a response far longer
// than WriteTimeout.
func TestHTTPProgressDeadline(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 64<<20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(big)
		done <- err
	}), HTTPLimits{WriteTimeout: time.Second})
	go func() { _ = srv.Serve(LimitListener(ln, HTTPLimits{MaxConns: 4})) }()
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	select { // the client reads nothing
	case err := <-done:
		assert.Error(t, err, "the stalled response ended with an error")
	case <-time.After(10 * time.Second):
		t.Fatal("a client that stopped reading kept its response past WriteTimeout")
	}

	// A slow but steady reader: 8 MiB every 150 ms, longer than
	// WriteTimeout in all.
	start := time.Now()
	c2, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	_, err = io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var got int64
	buf := make([]byte, 8<<20)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err != nil {
			break
		}
		time.Sleep(150 * time.Millisecond)
	}
	assert.Equal(t, int64(len(big)), got)
	assert.Greater(t, time.Since(start), time.Second)
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not return")
	}
}

// The connection cap must not hide *net.TCPConn's ReadFrom: net/http sends
// files with sendfile(2) only through it (behind x/net's netutil wrapper
// every kernel and initrd was copied through user space).
func TestLimitListenerKeepsReadFrom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ll := LimitListener(ln, HTTPLimits{MaxConns: 1})
	defer ll.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	c, err := ll.Accept()
	require.NoError(t, err)
	_, ok := c.(io.ReaderFrom)
	assert.True(t, ok, "accepted connection lost ReadFrom")

	// The cap holds until the first connection closes, then frees.
	accepted := make(chan net.Conn, 1)
	go func() {
		if c2, err := ll.Accept(); err == nil {
			accepted <- c2
		}
	}()
	c3, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c3.Close()
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted over the cap of 1")
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, c.Close())
	_ = c.Close() // a second Close frees nothing more (once)
	select {
	case c2 := <-accepted:
		c2.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the slot was not freed by Close")
	}
}

// Close ends an Accept that waits for a slot, and non-TCP listeners are
// capped too.
func TestLimitListenerCloseAndUnix(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	ll := LimitListener(ln, HTTPLimits{MaxConns: 1})
	go func() {
		if c, err := net.Dial("unix", sock); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := ll.Accept()
	require.NoError(t, err)
	defer c.Close()
	assert.IsType(t, (*limitedConn)(nil), c)
	waiting := make(chan error, 1)
	go func() { _, err := ll.Accept(); waiting <- err }()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, ll.Close())
	select {
	case err := <-waiting:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the waiting Accept")
	}
}

// fileServerGet serves h and returns code, body and headers of one GET.
func fileServerGet(t *testing.T, h http.Handler, p, rng string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.URL.Path = p
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String(), w.Header()
}

func TestFileServer(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "BaseOS", "repodata"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "BaseOS", "repodata", "repomd.xml"), []byte("0123456789"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>"), 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("s"), 0o000))
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "escape")))
	trees := map[string]fs.FS{
		"MapFS": fstest.MapFS{
			"BaseOS/repodata/repomd.xml": {Data: []byte("0123456789")},
			"index.html":                 {Data: []byte("<p>")},
			"fifo":                       {Mode: fs.ModeNamedPipe},
		},
		"DirFS": os.DirFS(dir),
	}
	if root, err := os.OpenRoot(dir); err == nil {
		defer root.Close()
		trees["os.Root"] = root.FS()
	}
	for name, fsys := range trees {
		t.Run(name, func(t *testing.T) {
			h := FileServer(fsys)
			for _, tc := range []struct {
				path, rng string
				code      int
				body      string
			}{
				{"/BaseOS/repodata/repomd.xml", "", http.StatusOK, "0123456789"},
				{"/BaseOS/repodata/repomd.xml", "bytes=2-4", http.StatusPartialContent, "234"},
				{"/index.html", "", http.StatusOK, "<p>"}, // no redirect to "/"
				{"/BaseOS/", "", http.StatusNotFound, ""},
				{"/BaseOS", "", http.StatusNotFound, ""},
				{"/", "", http.StatusNotFound, ""},
				{"", "", http.StatusNotFound, ""},
				{"/fifo", "", http.StatusNotFound, ""}, // refused without opening: no hang
				{"/../etc/passwd", "", http.StatusNotFound, ""},
				{"/BaseOS/../index.html", "", http.StatusNotFound, ""},
				{"/BaseOS//repodata/repomd.xml", "", http.StatusNotFound, ""},
				{"/missing", "", http.StatusNotFound, ""},
			} {
				done := make(chan struct{})
				go func() {
					defer close(done)
					code, body, _ := fileServerGet(t, h, tc.path, tc.rng)
					assert.Equal(t, tc.code, code, tc.path)
					if tc.body != "" {
						assert.Equal(t, tc.body, body, tc.path)
					}
					assert.NotContains(t, body, "repodata", "no listing: %s", tc.path)
				}()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatalf("GET %s hangs", tc.path)
				}
			}
			if name == "os.Root" {
				code, _, _ := fileServerGet(t, h, "/escape", "")
				assert.Equal(t, http.StatusNotFound, code, "a link out of the root")
			}
		})
	}
	if os.Geteuid() != 0 {
		code, _, _ := fileServerGet(t, FileServer(os.DirFS(dir)), "/secret", "")
		assert.Equal(t, http.StatusForbidden, code)
	}
}

// An *Image serves regular files through Image.Handler (sendfile), but
// FileServer keeps its own rules over it: no listing, no redirect.
func TestFileServerImage(t *testing.T) {
	img := openISO(t, tree{files: map[string]string{
		"images/pxeboot/vmlinuz": "kernelkernelkernel",
		"images/index.html":      "<p>",
	}})
	h := FileServer(img)
	code, body, _ := fileServerGet(t, h, "/images/pxeboot/vmlinuz", "bytes=6-11")
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, "kernel", body)
	code, body, _ = fileServerGet(t, h, "/images/index.html", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "<p>", body)
	for _, p := range []string{"/images/", "/images", "/", "/images/pxeboot/", "/images/missing"} {
		code, body, _ = fileServerGet(t, h, p, "")
		assert.Equal(t, http.StatusNotFound, code, p)
		assert.NotContains(t, body, "pxeboot", p)
	}
	// Image.Handler itself lists a directory.
	code, body, _ = fileServerGet(t, img.Handler(), "/images/pxeboot/", "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "vmlinuz")
}

// writeCounts returns the write-class system calls (write, sendfile, ...)
// and the bytes they wrote, of this process, from /proc/self/io.
func writeCounts(t *testing.T) (syscw, wchar int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io (kernel without task I/O accounting?): %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscw":
			syscw = n
		case "wchar":
			wchar = n
		}
	}
	return syscw, wchar
}

// TestFileServerSendfile shows that a file of an *os.File-backed tree goes
// out through sendfile(2) when served as the package means it to be:
// FileServer behind NewHTTPServer on a LimitListener.
//
// Without strace, the evidence is the kernel's per-process count of
// write-class system calls (/proc/self/io syscw; sendfile counts there as
// one). Any user-space copy net/http can fall back to moves at most 32 KiB
// per write, so 64 MiB needs at least 2048 writes; sendfile moves as much
// as the socket takes per call. http.FileServerFS over the same tree, which
// hides the *os.File and copies through user space, is the control that
// shows the counter sees the difference. The client reads with a 4 MiB
// buffer and writes only its request, so the count is the server's.
func TestFileServerSendfile(t *testing.T) {
	const size = 64 << 20
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "initrd.img"))
	require.NoError(t, err)
	block := make([]byte, 1<<20)
	sum := sha256.New()
	for i := range size / len(block) {
		for j := range block {
			block[j] = byte(i*31 + j*7)
		}
		_, err := f.Write(block)
		require.NoError(t, err)
		sum.Write(block)
	}
	require.NoError(t, f.Close())
	want := sum.Sum(nil)

	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files", FileServer(os.DirFS(dir))))
	mux.Handle("/control/", http.StripPrefix("/control", http.FileServerFS(os.DirFS(dir))))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conns := make(chan net.Conn, 8)
	srv := NewHTTPServer(mux, HTTPLimits{})
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		conns <- c
		return ctx
	}
	go func() { _ = srv.Serve(LimitListener(ln, HTTPLimits{MaxConns: 4})) }()
	defer srv.Close()

	client := &http.Client{Timeout: time.Minute}
	buf := make([]byte, 4<<20)
	get := func(p string) int64 {
		before, _ := writeCounts(t)
		resp, err := client.Get("http://" + ln.Addr().String() + p)
		require.NoError(t, err)
		h := sha256.New()
		n, err := io.CopyBuffer(h, resp.Body, buf)
		require.NoError(t, err)
		resp.Body.Close()
		after, _ := writeCounts(t)
		require.Equal(t, int64(size), n, p)
		require.Equal(t, want, h.Sum(nil), "%s: the bytes arrive intact", p)
		return after - before
	}
	viaFileServer := get("/files/initrd.img")
	viaControl := get("/control/initrd.img")
	t.Logf("64 MiB in %d write-class system calls through FileServer, %d through http.FileServerFS", viaFileServer, viaControl)

	c := <-conns
	assert.IsType(t, (*limitedTCPConn)(nil), c, "the server got the capped *net.TCPConn")
	_, ok := c.(io.ReaderFrom)
	assert.True(t, ok, "%T has ReadFrom", c)
	assert.GreaterOrEqual(t, viaControl, int64(size/(32<<10)), "the counter sees a user-space copy")
	assert.Less(t, viaFileServer, int64(size/(64<<10)),
		"FileServer averaged under 64 KiB per call: not sendfile")
}

func TestBaseURL(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		addr string
		ip   netip.Addr
		want string
		err  string
	}{
		{":8080", ip, "http://10.0.0.1:8080/", ""},
		{":80", ip, "http://10.0.0.1/", ""},
		{"0.0.0.0:8080", ip, "http://10.0.0.1:8080/", ""},
		{"127.0.0.1:8080", ip, "http://127.0.0.1:8080/", ""},
		{"[fd00::1]:80", ip, "http://[fd00::1]/", ""},
		{"[fd00::1]:8080", ip, "http://[fd00::1]:8080/", ""},
		{"8080", ip, "", "8080"},
		{":8080", netip.Addr{}, "", "no address"},
	} {
		got, err := BaseURL(tc.addr, tc.ip)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.addr)
			continue
		}
		require.NoError(t, err, tc.addr)
		assert.Equal(t, tc.want, got, tc.addr)
	}
}
