package tftpsrv

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func named(s string) Handler {
	return HandlerFunc(func(w ResponseWriter, r *Request) { fmt.Fprint(w, s) })
}

func TestServeMuxRouting(t *testing.T) {
	m := NewServeMux()
	require.NoError(t, m.Handle("/grub/grub.cfg", named("exact")))
	require.NoError(t, m.Handle("grub/grub.cfg-01-*", named("glob")))
	require.NoError(t, m.Handle("pxelinux.cfg/", named("prefix")))
	require.NoError(t, m.Handle("pxelinux.cfg/deep/", named("longer prefix")))
	require.NoError(t, m.Handle("pxelinux.cfg/default", named("exact beats prefix")))
	require.NoError(t, m.Handle("/", named("fallback")))
	for name, want := range map[string]string{
		"grub/grub.cfg":                      "/grub/grub.cfg",
		"grub/grub.cfg-01-52-54-00-12-34-56": "grub/grub.cfg-01-*",
		"pxelinux.cfg/01-52-54-00-12-34-56":  "pxelinux.cfg/",
		"pxelinux.cfg/deep/x":                "pxelinux.cfg/deep/",
		"pxelinux.cfg/default":               "pxelinux.cfg/default",
		"grub/x86_64-efi/command.lst":        "/",
		"grub/grub.cfg-01-a/b":               "/", // '*' does not cross '/'
	} {
		_, got := m.Handler(name)
		assert.Equal(t, want[len(want)-len(stripSlash(want)):], got, name)
	}

	empty := NewServeMux()
	h, p := empty.Handler("x")
	assert.Nil(t, h)
	assert.Empty(t, p)
}

func stripSlash(s string) string {
	if len(s) > 1 && s[0] == '/' {
		return s[1:]
	}
	return s
}

func TestServeMuxBadPatterns(t *testing.T) {
	m := NewServeMux()
	require.NoError(t, m.Handle("a", named("a")))
	for _, p := range []string{"a", "/a", "x[", "../x", "a/../b", "dir/../", "a\x01"} {
		assert.ErrorIs(t, m.Handle(p, named("x")), ErrBadPattern, "%q", p)
	}
	assert.ErrorIs(t, m.Handle("b", nil), ErrBadPattern)
	assert.ErrorIs(t, m.HandleFunc("b", nil), ErrBadPattern)
}

// TestGeneratedPerHostContent is what the examples do: a menu generated from
// the client's address, beside files, with tsize known.
func TestGeneratedPerHostContent(t *testing.T) {
	dir := testTree(t, map[string][]byte{"grubx64.efi": []byte("EFI binary")})
	m := NewServeMux()
	require.NoError(t, m.HandleFunc("grub/grub.cfg", func(w ResponseWriter, r *Request) {
		fmt.Fprintf(w, "menuentry for %s (name %s, port set %v)\n", r.RemoteAddr.Addr(), r.Name, r.RemoteAddr.Port() != 0)
	}))
	require.NoError(t, m.HandleFunc("secret", func(w ResponseWriter, r *Request) {
		w.Error(&Error{Code: ErrCodeAccessViolation, Message: "not for you"})
	}))
	require.NoError(t, m.HandleFunc("panics", func(w ResponseWriter, r *Request) { panic("boom") }))
	require.NoError(t, m.HandleFunc("silent", func(w ResponseWriter, r *Request) {}))
	require.NoError(t, m.Handle("/", FileServer(os.DirFS(dir))))
	var logs logBuffer
	addr := startServer(t, &Server{Handler: m, Logger: logs.logger()}, "udp4")

	want := "menuentry for 127.0.0.1 (name grub/grub.cfg, port set true)\n"
	got, oack := newRawClient(t, addr).download("/grub/grub.cfg", "tsize", "0", "blksize", "1024")
	assert.Equal(t, want, string(got))
	assert.Equal(t, fmt.Sprint(len(want)), oack["tsize"])
	got, _ = newRawClient(t, addr).download("grubx64.efi")
	assert.Equal(t, "EFI binary", string(got))

	for name, code := range map[string]ErrorCode{"secret": ErrCodeAccessViolation, "panics": ErrCodeNotDefined, "silent": ErrCodeFileNotFound} {
		c := newRawClient(t, addr)
		c.request(opRRQ, name)
		p := c.recv(3e9)
		require.Equal(t, opERROR, opOf(p), name)
		gotCode, msg := errOf(p)
		assert.Equal(t, code, gotCode, name)
		assert.NotContains(t, msg, "boom")
	}
	assert.Contains(t, logs.String(), "tftp handler panicked")
}

func TestFileServerFoldCase(t *testing.T) {
	fsys := fstest.MapFS{"EFI/BOOT/BOOTX64.EFI": {Data: []byte("shim")}, "efi/boot/x": {Data: []byte("x")}}
	for _, tc := range []struct {
		fold bool
		name string
		want string
	}{
		{false, "EFI/BOOT/BOOTX64.EFI", "shim"},
		{false, "efi/boot/bootx64.efi", ""},
		{true, "efi/boot/bootx64.efi", "shim"},
		{true, "Efi/Boot/X", "x"},
		{true, "efi/boot/missing", ""},
		{true, "EFI", ""}, // a directory
	} {
		w := &response{size: -1}
		(&FileHandler{FS: fsys, FoldCase: tc.fold}).ServeTFTP(w, &Request{Name: tc.name})
		if tc.want == "" {
			assert.Error(t, w.err, tc.name)
			continue
		}
		require.NoError(t, w.err, tc.name)
		b, _ := io.ReadAll(w.content)
		assert.Equal(t, tc.want, string(b))
		closeContent(w.content)
	}
}

// sharedFile is one ReaderAt handed to every transfer, like a file inside a
// shared ISO image; a Read through it would corrupt concurrent transfers.
type sharedFile struct{ r *bytes.Reader }

func (f sharedFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f sharedFile) Read([]byte) (int, error)                { panic("shared file read through its offset") }

func TestSharedReaderAt(t *testing.T) {
	data := randomBytes(t, 150_000)
	shared := sharedFile{bytes.NewReader(data)}
	addr := startServer(t, &Server{Handler: HandlerFunc(func(w ResponseWriter, r *Request) {
		w.ServeContent(shared, int64(len(data)))
	}), MaxTransfersPerClient: 12}, "udp4") // every client here is 127.0.0.1
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := engines[i%2].opts
			got, _ := newRawClient(t, addr).download("any", opts...)
			assert.True(t, bytes.Equal(data, got))
		}()
	}
	wg.Wait()
}
