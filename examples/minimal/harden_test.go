package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/testutil"
	"github.com/pxekit/pxekit/isosrc"
)

// These tests are the attacks of the hardening review, run against the
// real server on loopback ports with DHCP off.

// mini is minimal running in-process.
type mini struct {
	http, tftp     string // "http://127.0.0.1:P", "127.0.0.1:P"
	stdout, stderr *testutil.Buffer
}

// startMinimal runs minimal with args (plus DHCP off and free loopback
// ports) and lim, until the test ends.
func startMinimal(t *testing.T, lim isosrc.HTTPLimits, args ...string) *mini {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		hp := l.Addr().(*net.TCPAddr).Port
		l.Close()
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		tp := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()

		m := &mini{http: fmt.Sprintf("http://127.0.0.1:%d", hp), tftp: fmt.Sprintf("127.0.0.1:%d", tp),
			stdout: &testutil.Buffer{}, stderr: &testutil.Buffer{}}
		all := append([]string{"-dhcp", "off", "-http-addr", "127.0.0.1:" + strconv.Itoa(hp),
			"-tftp-addr", "127.0.0.1:" + strconv.Itoa(tp)}, args...)
		cfg, err := parseFlags(all, m.stderr)
		require.NoError(t, err)
		cfg.httpLimits = lim
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(m.stderr, nil)), m.stdout) }()
		if waitHTTP(m.http, done) {
			t.Cleanup(func() {
				cancel()
				select {
				case err := <-done:
					assert.NoError(t, err)
				case <-time.After(10 * time.Second):
					t.Error("minimal did not stop within 10 s")
				}
			})
			return m
		}
		cancel()
		if !strings.Contains(m.stderr.String()+m.stdout.String(), "address already in use") {
			t.Fatalf("minimal did not start: %s", m.stderr.String())
		}
	}
	t.Fatal("no free ports after 3 attempts")
	return nil
}

// waitHTTP polls base until it answers (any status), serve returns, or
// 10 s pass.
func waitHTTP(base string, done <-chan error) bool {
	// No keep-alive: the poll must not hold one of the server's
	// connection slots afterwards.
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-done:
			_ = err
			return false
		default:
		}
		if resp, err := c.Get(base + "/ping"); err == nil {
			resp.Body.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func tftpGet(addr, name string) (string, error) {
	c, err := tftp.NewClient(addr)
	if err != nil {
		return "", err
	}
	c.SetTimeout(time.Second)
	c.SetRetries(2)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	_, err = wt.WriteTo(&b)
	return b.String(), err
}

// lab makes a -root with a file, a sub-directory, symbolic links to an
// "outside" directory holding a secret, and returns its path.
func lab(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, outside := filepath.Join(dir, "root"), filepath.Join(dir, "outside")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "shadow"), []byte("SECRET"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hi"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "sub", "inner.txt"), []byte("inner"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(outside, "shadow"), filepath.Join(root, "leak")))
	require.NoError(t, os.Symlink("../outside/shadow", filepath.Join(root, "relleak")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "outdir")))
	require.NoError(t, os.Symlink("hello.txt", filepath.Join(root, "inlink")))
	return root
}

func TestRootSymlinkOutsideRefused(t *testing.T) {
	root := lab(t)
	m := startMinimal(t, isosrc.HTTPLimits{}, "-root", root)

	for _, name := range []string{"leak", "relleak", "outdir/shadow"} {
		code, body := get(t, m.http+"/"+name)
		assert.Equal(t, http.StatusNotFound, code, "HTTP %s", name)
		assert.NotContains(t, body, "SECRET", "HTTP %s", name)
		out, err := tftpGet(m.tftp, name)
		assert.Error(t, err, "TFTP %s", name)
		assert.NotContains(t, out, "SECRET", "TFTP %s", name)
	}
	// No listing of the root, a sub-directory or the outside.
	for _, name := range []string{"/", "/sub/", "/sub", "/outdir/"} {
		code, body := get(t, m.http+name)
		assert.Equal(t, http.StatusNotFound, code, "HTTP %s", name)
		assert.NotContains(t, body, "inner.txt", "HTTP %s", name)
		assert.NotContains(t, body, "shadow", "HTTP %s", name)
	}
	// What is inside is served, a link staying inside included.
	for name, want := range map[string]string{"hello.txt": "hi", "sub/inner.txt": "inner", "inlink": "hi"} {
		code, body := get(t, m.http+"/"+name)
		assert.Equal(t, http.StatusOK, code, "HTTP %s", name)
		assert.Equal(t, want, body, "HTTP %s", name)
		out, err := tftpGet(m.tftp, name)
		require.NoError(t, err, "TFTP %s", name)
		assert.Equal(t, want, out, "TFTP %s", name)
	}
}

func TestRootFIFONeverBlocks(t *testing.T) {
	root := lab(t)
	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	m := startMinimal(t, isosrc.HTTPLimits{}, "-root", root)

	start := time.Now()
	const n = 200
	codes := make(chan int, n)
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 50}}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(m.http + "/fifo")
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusNotFound, code)
	}
	assert.Less(t, time.Since(start), 5*time.Second, "200 requests for a FIFO")
	_, err := tftpGet(m.tftp, "fifo")
	assert.Error(t, err)
	code, body := get(t, m.http+"/hello.txt")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hi", body)
	out, err := tftpGet(m.tftp, "hello.txt")
	require.NoError(t, err)
	assert.Equal(t, "hi", out)
}

// closedWithin reads from conn until it is closed by the server, and
// says how long that took; it fails the test after limit.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(start.Add(limit)))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
	return time.Since(start)
}

var shortLimits = isosrc.HTTPLimits{
	ReadHeaderTimeout: 500 * time.Millisecond,
	ReadTimeout:       time.Second,
	IdleTimeout:       time.Second,
	WriteTimeout:      time.Second,
}

func TestSlowClientsAreClosed(t *testing.T) {
	root := lab(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644))
	m := startMinimal(t, shortLimits, "-root", root)
	addr := strings.TrimPrefix(m.http, "http://")

	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		fmt.Fprintf(conn, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		took := closedWithin(t, conn, 5*time.Second)
		assert.GreaterOrEqual(t, took, 800*time.Millisecond, "closed by IdleTimeout, not before")
	})
	t.Run("header a byte at a time", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		start := time.Now()
		go func() {
			for _, b := range []byte("GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa") {
				if _, err := conn.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
		closedWithin(t, conn, 5*time.Second)
		assert.Less(t, time.Since(start), 3*time.Second)
	})
	t.Run("body a byte every 300 ms", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "POST /api/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
		go func() {
			for i := 0; i < 100; i++ {
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		}()
		closedWithin(t, conn, 6*time.Second)
		assert.Less(t, time.Since(start), 4*time.Second, "ReadTimeout is 1 s")
	})
	t.Run("download that stops reading", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(64<<10))
		fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(3 * time.Second) // WriteTimeout is 1 s
		n, _ := io.Copy(io.Discard, io.LimitReader(conn, int64(len(big))+1<<20))
		assert.Less(t, n, int64(len(big)), "the server gave up on a client that stopped reading")
	})
	t.Run("slow steady download outlives WriteTimeout", func(t *testing.T) {
		resp, err := http.Get(m.http + "/big.bin")
		require.NoError(t, err)
		defer resp.Body.Close()
		start := time.Now()
		var n int64
		buf := make([]byte, 256<<10)
		for {
			k, err := io.ReadFull(resp.Body, buf)
			n += int64(k)
			if err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond) // ~12 MiB/s: 16 MiB in about 1.3 s
		}
		assert.Equal(t, int64(len(big)), n)
		assert.Greater(t, time.Since(start), shortLimits.WriteTimeout, "the download took longer than WriteTimeout")
	})
}

func TestConnectionCap(t *testing.T) {
	lim := shortLimits
	lim.MaxConns = 3
	lim.ReadHeaderTimeout = 3 * time.Second
	m := startMinimal(t, lim, "-root", lab(t))
	addr := strings.TrimPrefix(m.http, "http://")

	var held []net.Conn
	for i := 0; i < 3; i++ {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		held = append(held, conn)
	}
	c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	time.Sleep(100 * time.Millisecond)
	_, err := c.Get(m.http + "/hello.txt")
	require.Error(t, err, "a fourth connection waits while three are held")
	held[0].Close()
	c.Timeout = 5 * time.Second
	resp, err := c.Get(m.http + "/hello.txt")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// fakeNetboot writes a Debian netboot tree with the kernel and initrd
// the boot entry names.
func fakeNetboot(t *testing.T) string {
	t.Helper()
	if _, err := bootmenu.FindLoaders(bootmenu.LoaderSource{}, "/"); err != nil {
		t.Skipf("minimal serves the host's boot loaders and there are none (%v): apt-get install %s", err, bootmenu.HostLoaderPackages)
	}
	return testutil.FakeNetboot(t, t.TempDir())
}

func TestContentMethodsAndBadPaths(t *testing.T) {
	m := startMinimal(t, isosrc.HTTPLimits{}, "-os", "debian-12", "-netboot", fakeNetboot(t), "-root", lab(t), "-demo-password")
	c := &http.Client{Timeout: 10 * time.Second}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, "PROPFIND"} {
		for _, p := range []string{"/answer/preseed.cfg", "/hello.txt", "/boot/debian-installer/amd64/linux"} {
			req, err := http.NewRequest(method, m.http+p, strings.NewReader("x"))
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, p)
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), "%s %s", method, p)
		}
	}
	resp, err := c.Head(m.http + "/answer/preseed.cfg")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/%00", http.StatusBadRequest},
		{"/answer/preseed.cfg%00", http.StatusBadRequest},
		{"/boot/%00/linux", http.StatusBadRequest},
		{"/%ff%fe", http.StatusBadRequest},
		{"/boot/%c3%28", http.StatusBadRequest},
		{"/a%0ab", http.StatusBadRequest},
		{"/" + strings.Repeat("a", 5000), http.StatusNotFound},
		{"/boot/" + strings.Repeat("b", 300), http.StatusNotFound},
		{"/" + strings.Repeat("c/", 600), http.StatusNotFound},
		{"/iso/../../../../etc/passwd", http.StatusNotFound},
	} {
		code, _ := get(t, m.http+tc.path)
		assert.Equal(t, tc.want, code, "%.60s", tc.path)
	}
}

func TestDemoPasswordNeedsTheFlag(t *testing.T) {
	nb := fakeNetboot(t)
	dir := t.TempDir()
	cfg, err := parseFlags([]string{"-dhcp", "off", "-os", "debian-12", "-netboot", nb,
		"-http-addr", "127.0.0.1:0", "-tftp-addr", "127.0.0.1:0"}, io.Discard)
	require.NoError(t, err)
	err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	require.ErrorIs(t, err, answerfile.ErrNoCredentials)
	assert.Contains(t, err.Error(), "-demo-password")
	assert.Contains(t, err.Error(), "-root-password-hash")

	// A spec keeping the demo password next to a password of its own.
	spec := answerfile.DemoSpec("")
	spec.Root.Password = answerfile.Password{Hash: "$6$saltsalt$" + strings.Repeat("x", 86)}
	specFile := filepath.Join(dir, "spec.yaml")
	require.NoError(t, os.WriteFile(specFile, []byte(fmt.Sprintf(`hostname: s
disk: {wipe: true}
root: {password: {hash: %q}}
users: [{name: ops, sudo: true, password: {hash: %q}}]
`, spec.Root.Password.Hash, answerfile.DemoSpec("").Users[0].Password.Hash)), 0o644))
	cfg.specFile = specFile
	err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	require.ErrorIs(t, err, answerfile.ErrDemoMixed)
	assert.Contains(t, err.Error(), "ops")

	m := startMinimal(t, isosrc.HTTPLimits{}, "-os", "debian-12", "-netboot", nb, "-demo-password")
	logs := m.stderr.String()
	assert.Contains(t, logs, "account(s) root, ops", logs)
	assert.Contains(t, logs, answerfile.DemoPassword)
	assert.Contains(t, logs, "anyone on this network segment can read it")
}

func TestOperatorCredentialsReplaceTheDemoPassword(t *testing.T) {
	nb := fakeNetboot(t)
	demoHash := answerfile.DemoSpec("").Root.Password.Hash
	hash, err := answerfile.SHA512Crypt("operator-secret", "$6$opsalt")
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keyFile, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxekitTestKeyOnlyNotARealKey00000000000000 op@lab\n"), 0o644))

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"hash", []string{"-root-password-hash", hash}},
		{"key", []string{"-ssh-key", keyFile}},
		{"both", []string{"-root-password-hash", hash, "-ssh-key", keyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := startMinimal(t, isosrc.HTTPLimits{}, append([]string{"-os", "debian-12", "-netboot", nb}, tc.args...)...)
			code, preseed := get(t, m.http+"/answer/preseed.cfg")
			require.Equal(t, http.StatusOK, code)
			assert.NotContains(t, preseed, demoHash)
			assert.NotContains(t, preseed, answerfile.DemoPassword)
			assert.Contains(t, preseed, "passwd/username string ops")
			if tc.args[0] == "-root-password-hash" {
				assert.Contains(t, preseed, "passwd/user-password-crypted password "+hash)
			}
			assert.NotContains(t, m.stderr.String(), "demo password")
		})
	}
}

func TestReportEndpoint(t *testing.T) {
	m := startMinimal(t, isosrc.HTTPLimits{}, "-os", "debian-12", "-netboot", fakeNetboot(t), "-demo-password")
	_, preseed := get(t, m.http+"/answer/preseed.cfg")
	assert.Contains(t, preseed, m.http+"/api/report", "the preseed reports to the server")

	c := &http.Client{Timeout: 10 * time.Second}
	post := func(path, body string) int {
		resp, err := c.Post(m.http+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNoContent, post("/api/report", `{"hostname":"demo","os":"debian-12","status":"ok","checks":[{"name":"user ops","ok":true}]}`))
	assert.Equal(t, http.StatusNoContent, post("/api/report/52-54-00-12-34-56", `{"hostname":"demo","status":"failed","checks":[{"name":"package x","ok":false}]}`))
	assert.Equal(t, http.StatusBadRequest, post("/api/report", `not json`))
	assert.Equal(t, http.StatusBadRequest, post("/api/report", `{"status":"maybe"}`))
	assert.Equal(t, http.StatusBadRequest, post("/api/report/not-a-mac", `{"status":"ok"}`))
	assert.Equal(t, http.StatusBadRequest, post("/api/report", `{"status":"ok","hostname":"`+strings.Repeat("a", maxReport)+`"}`))
	assert.Equal(t, http.StatusNoContent, post("/api/report", `{"stage":"booted","status":"ok","checks":[]}`))
	resp, err := c.Get(m.http + "/api/report")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	logs := m.stderr.String()
	assert.Regexp(t, `stage=done mac=\S+ .*report=installed status=ok`, logs)
	assert.Regexp(t, `stage=done mac=\S+ .*report=booted status=ok`, logs)
	assert.Regexp(t, `stage=failed mac=\S+ .*status=failed .*failed_checks=1`, logs)
	assert.NotContains(t, logs, "52:54:00:12:34:56", "a MAC the server never saw is not taken from the path")
}

func FuzzReport(f *testing.F) {
	f.Add("/api/report", `{"status":"ok","checks":[{"name":"a","ok":true}]}`)
	f.Add("/api/report/52:54:00:00:00:01", `{"event_type":"start"}`)
	f.Add("/api/report/x", `{`)
	s := &site{log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, mac, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/report", strings.NewReader(body))
		req.SetPathValue("mac", mac)
		w := httptest.NewRecorder()
		answerfile.ReportHandler(maxReport, s.report).ServeHTTP(w, req)
		if w.Code != http.StatusNoContent && w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
	})
}
