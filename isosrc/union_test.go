package isosrc

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refusing is a tree that refuses every name with err.
type refusing struct{ err error }

func (r refusing) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: r.err}
}

// requireServes checks that fsys's Open and fs.Stat agree on name: both
// fail with wantErr, or both succeed and the file holds want.
func requireServes(t *testing.T, fsys fs.FS, name, want string, wantErr error) {
	t.Helper()
	f, err := fsys.Open(name)
	_, serr := fs.Stat(fsys, name)
	if wantErr != nil {
		require.ErrorIs(t, err, wantErr)
		require.ErrorIs(t, serr, wantErr)
		return
	}
	require.NoError(t, err)
	require.NoError(t, serr)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, want, string(b))
}

func TestUnion(t *testing.T) {
	gen := fstest.MapFS{"answer/ks.cfg": {Data: []byte("generated")}, "both": {Data: []byte("first")}}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "both"), []byte("second"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "extra.txt"), []byte("extra"), 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	u := Union(nil, gen, nil, os.DirFS(dir), refusing{fs.ErrPermission})
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"answer/ks.cfg", "generated", nil},
		{"both", "first", nil},
		{"extra.txt", "extra", nil},
		{"missing", "", fs.ErrPermission}, // the last tree's refusal stands
		{"../etc/passwd", "", fs.ErrInvalid},
		{"/both", "", fs.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) { requireServes(t, u, tc.name, tc.want, tc.err) })
	}

	// Not there at all, and a refusal that hides what follows.
	_, err := Union(gen).Open("nope")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = Union(refusing{fs.ErrPermission}, gen).Open("both")
	assert.ErrorIs(t, err, fs.ErrPermission)
	_, err = Union().Open("x")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// Stat finds a FIFO's type without opening it, so FileServer refuses
	// it at once rather than waiting for a writer.
	st, err := fs.Stat(u, "fifo")
	require.NoError(t, err)
	assert.Equal(t, fs.ModeNamedPipe, st.Mode().Type())
	rec := httptest.NewRecorder()
	FileServer(u).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/fifo", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	rec = httptest.NewRecorder()
	FileServer(u).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/answer/ks.cfg", nil))
	assert.Equal(t, "generated", rec.Body.String())
}

func TestMediaOpen(t *testing.T) {
	iso := fstest.MapFS{"casper/vmlinuz": {Data: []byte("iso kernel")}, "README": {Data: []byte("readme")}}
	nb := fstest.MapFS{"linux": {Data: []byte("netboot kernel")}}
	for _, tc := range []struct {
		name  string
		m     Media
		path  string
		want  string
		error error
	}{
		{"iso tree", Media{ISO: iso}, "iso/README", "readme", nil},
		{"boot from the iso", Media{ISO: iso}, "boot/casper/vmlinuz", "iso kernel", nil},
		{"boot from netboot", Media{ISO: iso, Netboot: nb}, "boot/linux", "netboot kernel", nil},
		{"netboot is not the iso", Media{ISO: iso, Netboot: nb}, "iso/linux", "", fs.ErrNotExist},
		{"no iso", Media{Netboot: nb}, "iso/README", "", fs.ErrNotExist},
		{"image.iso is HTTP's", Media{ISO: iso, ISOFile: "/x.iso"}, "image.iso", "", fs.ErrNotExist},
		{"the prefix itself", Media{ISO: iso}, "boot/", "", fs.ErrInvalid},
		{"bare directory", Media{ISO: iso}, "boot", "", fs.ErrNotExist},
		{"outside", Media{ISO: iso}, "README", "", fs.ErrNotExist},
		{"not a path", Media{ISO: iso}, "iso/../README", "", fs.ErrInvalid},
		{"zero media", Media{}, "boot/linux", "", fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.m.Open(tc.path)
			if tc.error != nil {
				require.ErrorIs(t, err, tc.error)
				return
			}
			require.NoError(t, err)
			defer f.Close()
			b, err := io.ReadAll(f)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
}

func TestListen(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", HTTPLimits{MaxConns: 1})
	require.NoError(t, err)
	defer ln.Close()
	_, err = Listen(ln.Addr().String(), HTTPLimits{})
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.ErrorContains(t, err, "another program holds TCP port")
	assert.ErrorContains(t, err, "address already in use")

	_, err = Listen("256.0.0.1:80", HTTPLimits{})
	require.Error(t, err)
	assert.ErrorContains(t, err, "HTTP: ")

	// EACCES is explained too; root binds low ports, so the error is made.
	err = listenError(":80", &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)})
	assert.True(t, errors.Is(err, syscall.EACCES))
	assert.ErrorContains(t, err, "port 80 needs root or the CAP_NET_BIND_SERVICE capability")
}

// FuzzUnionOpen: names come from the network; whatever they are, Open
// and Stat answer without panicking, refuse what is not a valid path, and
// find nothing outside the trees.
func FuzzUnionOpen(f *testing.F) {
	for _, s := range []string{"answer/ks.cfg", "boot/linux", "../x", "/x", "", ".", "boot/", "iso/a/../b", "a\x00b"} {
		f.Add(s)
	}
	dir := f.TempDir()
	require.NoError(f, os.WriteFile(filepath.Join(dir, "extra"), []byte("x"), 0o644))
	u := Union(fstest.MapFS{"answer/ks.cfg": {Data: []byte("ks")}},
		Media{Netboot: fstest.MapFS{"linux": {Data: []byte("k")}}}, os.DirFS(dir))
	f.Fuzz(func(t *testing.T, name string) {
		file, err := u.Open(name)
		_, serr := fs.Stat(u, name)
		if !fs.ValidPath(name) {
			require.ErrorIs(t, err, fs.ErrInvalid)
			require.ErrorIs(t, serr, fs.ErrInvalid)
			return
		}
		if err == nil {
			file.Close()
			switch name {
			case ".", "answer", "answer/ks.cfg", "boot/linux", "extra":
			default:
				t.Fatalf("opened %q", name)
			}
		}
	})
}
