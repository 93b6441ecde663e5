package tftpsrv

import (
	"context"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStripPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix, name string
		want         string // name the inner handler sees; "" when it must not run
	}{
		{"ubuntu/", "ubuntu/casper/vmlinuz", "casper/vmlinuz"},
		{"/ubuntu/", "ubuntu/casper/vmlinuz", "casper/vmlinuz"},
		{"ubuntu", "ubuntu/casper/vmlinuz", "casper/vmlinuz"},
		{"ubuntu", "ubuntu2/x", "2/x"}, // a string prefix, as in net/http
		{"ubuntu/", "debian/linux", ""},
		{"ubuntu/", "ubuntu/", ""},
		{"ubuntu", "ubuntu", ""},
		{"a", "a./x", ""}, // "./x" is no valid name
		{"", "pxelinux.0", "pxelinux.0"},
		{"/", "pxelinux.0", "pxelinux.0"},
	} {
		t.Run(tc.prefix+"|"+tc.name, func(t *testing.T) {
			var seen *Request
			inner := HandlerFunc(func(w ResponseWriter, r *Request) {
				seen = r
				_, _ = w.Write([]byte("ok"))
			})
			r := &Request{Name: tc.name, RawName: "/" + tc.name, Options: map[string]string{"tsize": "0"}}
			w := &response{size: -1}
			StripPrefix(tc.prefix, inner).ServeTFTP(w, r)
			if tc.want == "" {
				assert.Nil(t, seen, "inner handler ran")
				assert.ErrorIs(t, w.err, fs.ErrNotExist)
				code, _ := wireError(w.err)
				assert.Equal(t, ErrCodeFileNotFound, code)
				return
			}
			require.NotNil(t, seen)
			assert.NoError(t, w.err)
			assert.Equal(t, tc.want, seen.Name)
			assert.Equal(t, "/"+tc.name, seen.RawName, "RawName is kept")
			assert.Equal(t, r.Options, seen.Options)
			assert.Equal(t, tc.name, r.Name, "the caller's request is not modified")
		})
	}
}

func TestRequestWithContext(t *testing.T) {
	type key struct{}
	r := &Request{Name: "f"}
	assert.Equal(t, context.Background(), r.Context())
	ctx := context.WithValue(context.Background(), key{}, 1)
	r2 := r.WithContext(ctx)
	assert.Equal(t, ctx, r2.Context())
	assert.Equal(t, "f", r2.Name)
	assert.Equal(t, context.Background(), r.Context(), "the original keeps its context")
	assert.Panics(t, func() {
		//lint:ignore SA1012 a nil context is what is tested
		r.WithContext(nil)
	})
}

// TestStripPrefixServes runs StripPrefix behind a ServeMux against a real
// server, so the end-to-end name mapping is covered too.
func TestStripPrefixServes(t *testing.T) {
	data := randomBytes(t, 3000)
	dir := testTree(t, map[string][]byte{"casper/vmlinuz": data})
	mux := NewServeMux()
	require.NoError(t, mux.Handle("ubuntu/", StripPrefix("ubuntu/", FileServer(os.DirFS(dir)))))
	addr := startServer(t, &Server{Handler: mux}, "udp4")
	c := newRawClient(t, addr)
	got, _ := c.download("/ubuntu/casper/vmlinuz", "blksize", "1024")
	assert.Equal(t, data, got)

	c2 := newRawClient(t, addr)
	c2.request(opRRQ, "casper/vmlinuz")
	p := c2.recv(3 * time.Second)
	require.Equal(t, opERROR, opOf(p))
	code, _ := errOf(p)
	assert.Equal(t, ErrCodeFileNotFound, code)
}

func TestRequestWithName(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	r := (&Request{Name: "grub/grub.cfg", RawName: "/grub/grub.cfg", Options: map[string]string{"tsize": "0"}}).WithContext(ctx)

	r2, err := r.WithName(`\hosts\..\hosts/10.0.0.23.cfg`)
	require.NoError(t, err)
	assert.Equal(t, "hosts/10.0.0.23.cfg", r2.Name)
	assert.Equal(t, "/grub/grub.cfg", r2.RawName, "RawName stays what the client sent")
	assert.Equal(t, "v", r2.Context().Value(key{}), "the context is kept")
	r2.Options["blksize"] = "1468"
	assert.Equal(t, map[string]string{"tsize": "0"}, r.Options, "Options is a copy")
	assert.Equal(t, "grub/grub.cfg", r.Name, "r is unchanged")

	for _, bad := range []string{"", "/", "../etc/passwd", "a\x00b"} {
		_, err := r.WithName(bad)
		assert.ErrorIs(t, err, ErrInvalidName, "%q", bad)
	}
}
