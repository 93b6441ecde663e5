package tftpsrv

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/testutil"
)

// TestDirOpen checks the errors Dir promises, one name for each outcome.
// The mechanism (confinement, regular files only, never blocking, Close,
// renames) is tested, name by name, in internal/rootfs.
func TestDirOpen(t *testing.T) {
	served, _ := testutil.ServedDir(t)
	d, err := Dir(served)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })

	b, err := fs.ReadFile(d, "alias/grub.cfg")
	require.NoError(t, err)
	assert.Equal(t, "menu", string(b))
	st, err := d.Stat("hello-link.txt")
	require.NoError(t, err)
	assert.Equal(t, int64(len("hello")), st.Size())

	for name, want := range map[string]error{
		"bootdir":        ErrNotRegular,
		"fifo":           ErrNotRegular,
		"rel-etc/shadow": ErrInvalidName,
		"boot/self-abs":  ErrInvalidName,
		"../etc/shadow":  fs.ErrInvalid,
		"dangling":       fs.ErrNotExist,
	} {
		_, err := d.Open(name)
		_, serr := d.Stat(name)
		for _, e := range []error{err, serr} {
			var pe *fs.PathError
			require.ErrorAs(t, e, &pe, name)
			assert.Equal(t, name, pe.Path, "errors name the fs name only")
			assert.NotContains(t, e.Error(), served, "errors never show the server path")
			assert.ErrorIs(t, e, want, name)
			assert.Equal(t, want == ErrNotRegular, errors.Is(e, ErrNotRegular), "ErrNotRegular: %v", e)
			assert.Equal(t, want == ErrInvalidName, errors.Is(e, ErrInvalidName), "ErrInvalidName: %v", e)
			if want != fs.ErrInvalid {
				assert.ErrorIs(t, e, fs.ErrNotExist, "%s: servers answer not found", name)
			}
		}
	}
	require.NoError(t, d.Close())
	_, err = d.Open("hello.txt")
	assert.ErrorIs(t, err, fs.ErrClosed)
	_, err = Dir(filepath.Join(served, "missing"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestDirHTTP checks what the brief for Dir promises net/http users: files
// are served, directories are 404 and never listed, and nothing outside is
// reachable.
func TestDirHTTP(t *testing.T) {
	served, _ := testutil.ServedDir(t)
	d, err := Dir(served)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	hs := httptest.NewServer(http.FileServerFS(d))
	t.Cleanup(hs.Close)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/hello.txt", 200, "hello"},
		{"/alias/grub.cfg", 200, "menu"},
		{"/", 404, ""},
		{"/boot/", 404, ""},
		{"/boot", 404, ""},
		{"/fifo", 404, ""},
		{"/etc/shadow", 404, ""},
		{"/shadow", 404, ""},
		{"/boot/up", 404, ""},
		{"/../etc/shadow", 404, ""},
		{"/missing", 404, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			req, err := http.NewRequest("GET", hs.URL+tc.path, nil)
			require.NoError(t, err)
			req.URL.Opaque = tc.path // keep "..", which the client would clean
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tc.code, resp.StatusCode)
			if tc.body != "" {
				assert.Equal(t, tc.body, string(b))
			}
			assert.NotContains(t, string(b), "secret")
			assert.NotContains(t, string(b), "grub.cfg", "no directory listing")
		})
	}
}

var _ fs.StatFS = (*DirFS)(nil)
