package chain

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/tftpsrv"
)

func TestCheckCredentials(t *testing.T) {
	demo := answerfile.DemoSpec("").Root.Password
	otherSalt, err := answerfile.SHA512Crypt(answerfile.DemoPassword, "$6$rounds=5000$othersalt")
	require.NoError(t, err)
	own, err := answerfile.SHA512Crypt("operator-secret", "$6$opsalt")
	require.NoError(t, err)
	slow := "$6$rounds=999999999$salt$" + strings.Repeat("x", 86)
	key := []string{"ssh-ed25519 AAAA op@lab"}
	for _, tc := range []struct {
		name      string
		spec      answerfile.Spec
		allowDemo bool
		err       error
		demo      []string
	}{
		{"nothing", answerfile.Spec{}, false, ErrNoCredentials, nil},
		{"nothing, demo allowed", answerfile.Spec{}, true, nil, []string{"root", "ops"}},
		{"demo spec", *answerfile.DemoSpec(""), false, ErrNoCredentials, nil},
		{"demo spec allowed", *answerfile.DemoSpec(""), true, nil, []string{"root", "ops"}},
		{"demo plaintext", answerfile.Spec{Root: answerfile.Root{Password: answerfile.Password{Plain: answerfile.DemoPassword}}}, false, ErrNoCredentials, nil},
		{"demo hash, other salt", answerfile.Spec{Root: answerfile.Root{Password: answerfile.Password{Hash: otherSalt}}}, false, ErrNoCredentials, nil},
		{"own hash", answerfile.Spec{Root: answerfile.Root{Password: answerfile.Password{Hash: own}}}, false, nil, nil},
		{"own key", answerfile.Spec{Root: answerfile.Root{SSHKeys: key}}, false, nil, nil},
		{"user key", answerfile.Spec{Users: []answerfile.User{{Name: "u", SSHKeys: key}}}, false, nil, nil},
		{"slow hash is taken as own", answerfile.Spec{Root: answerfile.Root{Password: answerfile.Password{Hash: slow}}}, false, nil, nil},
		{"own root, demo user", answerfile.Spec{Root: answerfile.Root{Password: answerfile.Password{Hash: own}},
			Users: []answerfile.User{{Name: "ops", Password: demo}}}, true, ErrDemoMixed, nil},
		{"key, demo root", answerfile.Spec{Root: answerfile.Root{Password: demo},
			Users: []answerfile.User{{Name: "ops", SSHKeys: key}}}, false, ErrDemoMixed, nil},
		{"demo allowed fills users without password", answerfile.Spec{Users: []answerfile.User{{Name: "a"}, {Name: "b"}}}, true, nil, []string{"root", "a", "b"}},
	} {
		s := tc.spec
		start := time.Now()
		got, err := CheckCredentials(&s, tc.allowDemo)
		assert.Less(t, time.Since(start), time.Second, tc.name)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.demo, got, tc.name)
		if tc.demo != nil {
			assert.Equal(t, tc.demo, CredentialsOf(&s).Demo, "the spec now carries them: %s", tc.name)
		}
	}
	assert.Contains(t, DemoWarning([]string{"root", "ops"}), `"pxekit-demo" on account(s) root, ops`)
}

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

func TestDefaultMaxConns(t *testing.T) {
	for soft, want := range map[uint64]int{0: 16, 256: 16, 300: 22, 1024: 384, 65536: 4096, 1 << 40: 4096} {
		assert.Equal(t, want, DefaultMaxConns(soft), "soft %d", soft)
	}
	soft, err := RaiseFileLimit()
	require.NoError(t, err)
	assert.Positive(t, soft)
}

func TestNewHTTPServerLimits(t *testing.T) {
	srv := NewHTTPServer(http.NotFoundHandler(), HTTPLimits{})
	assert.Equal(t, DefaultReadHeaderTimeout, srv.ReadHeaderTimeout)
	assert.Equal(t, DefaultReadTimeout, srv.ReadTimeout)
	assert.Equal(t, DefaultIdleTimeout, srv.IdleTimeout)
	assert.Equal(t, DefaultWriteTimeout, srv.WriteTimeout)
	assert.Equal(t, DefaultMaxHeaderBytes, srv.MaxHeaderBytes)

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
	// sendfile(2) is used by net/http only for an *os.File, or a single
	// *io.LimitedReader around one: each chunk must keep that shape.
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

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b.txt", "/a\x00", "/\xff", "/" + strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		code := CheckPath(p)
		switch code {
		case 0:
			if len(p) > maxPathBytes || strings.ContainsRune(p, 0) || !utf8ValidNoControl(p) {
				t.Fatalf("%q passed", p)
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

func TestRunAnnouncesOnlyOnceDHCPIsBound(t *testing.T) {
	// Two UDP ports free a moment ago stand for 67 and 4011, on loopback.
	var ports [2]int
	for i := range ports {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		ports[i] = pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
	}
	cfg := dhcpsrv.Config{Interface: "lo", Mode: dhcpsrv.ModeProxy, ServerIP: netip.MustParseAddr("127.0.0.1"),
		HTTPBase: "http://127.0.0.1:1/", Port: ports[0], ProxyPort: ports[1]}
	first, err := dhcpsrv.New(cfg)
	require.NoError(t, err)
	if err := first.Listen(); err != nil {
		t.Skipf("cannot bind a DHCP socket to lo here (needs CAP_NET_RAW for SO_BINDTODEVICE): %v", err)
	}
	defer first.Shutdown(context.Background())

	announced := false
	s := &Servers{
		TFTP:     &tftpsrv.Server{Handler: tftpsrv.HandlerFunc(func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {})},
		TFTPAddr: "127.0.0.1:0",
		HTTP:     NewHTTPServer(http.NotFoundHandler(), HTTPLimits{}),
		HTTPAddr: "127.0.0.1:0",
		DHCP:     func() (*dhcpsrv.Server, error) { return dhcpsrv.New(cfg) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Run(ctx, func() { announced = true })
	require.ErrorIs(t, err, dhcpsrv.ErrAlreadyServing)
	assert.Contains(t, err.Error(), "another server")
	assert.False(t, announced, "no banner for a server that cannot serve")
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
