package tftpsrv

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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirFixture builds a served directory next to an "outside" directory that
// stands in for /etc, with links of every kind between them.
func dirFixture(t *testing.T) (served, outside string) {
	t.Helper()
	base := t.TempDir()
	served = filepath.Join(base, "srv")
	outside = filepath.Join(base, "etc")
	for name, data := range map[string]string{
		"srv/boot/grub.cfg": "menu",
		"srv/hello.txt":     "hello",
		"etc/shadow":        "secret",
	} {
		p := filepath.Join(base, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	links := map[string]string{
		"etc":              outside,             // absolute, to a directory outside
		"rel-etc":          "../etc",            // relative, to the same
		"shadow":           outside + "/shadow", // absolute, to a file outside
		"boot/up":          "../../etc/shadow",  // climbs out from a subdirectory
		"alias/grub.cfg":   "../boot/grub.cfg",  // stays inside
		"bootdir":          "boot",              // a directory inside
		"hello-link.txt":   "hello.txt",
		"dangling":         "nothing-here",
		"loop":             "loop",
		"boot/self-abs":    served + "/hello.txt", // absolute but inside: os.Root refuses it too
		"boot/inner-climb": "../hello.txt",
	}
	require.NoError(t, os.MkdirAll(filepath.Join(served, "alias"), 0o755))
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(served, filepath.FromSlash(name))))
	}
	require.NoError(t, syscall.Mkfifo(filepath.Join(served, "fifo"), 0o644))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(served, "sock"), Net: "unix"})
	if err == nil { // socket paths have a length limit; the test does not depend on it
		t.Cleanup(func() { ln.Close() })
	}
	return served, outside
}

func TestDirOpen(t *testing.T) {
	served, _ := dirFixture(t)
	d, err := Dir(served)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })

	for _, tc := range []struct {
		name    string
		want    string // content when it opens
		notReg  bool   // refused as not a regular file
		invalid bool   // refused as not an fs name
		outside bool   // refused as leading outside
	}{
		{name: "hello.txt", want: "hello"},
		{name: "boot/grub.cfg", want: "menu"},
		{name: "alias/grub.cfg", want: "menu"},
		{name: "hello-link.txt", want: "hello"},
		{name: "bootdir/grub.cfg", want: "menu"},
		{name: "boot/inner-climb", want: "hello"},
		{name: ".", notReg: true},
		{name: "boot", notReg: true},
		{name: "bootdir", notReg: true},
		{name: "fifo", notReg: true},
		{name: "etc", outside: true},
		{name: "etc/shadow", outside: true},
		{name: "rel-etc/shadow", outside: true},
		{name: "shadow", outside: true},
		{name: "boot/up", outside: true},
		{name: "boot/self-abs", outside: true},
		{name: "../etc/shadow", invalid: true},
		{name: "boot/../../etc/shadow", invalid: true},
		{name: "/etc/shadow", invalid: true},
		{name: "boot/./grub.cfg", invalid: true},
		{name: "boot//grub.cfg", invalid: true},
		{name: "", invalid: true},
		{name: "missing"},
		{name: "dangling"},
		{name: "loop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := d.Open(tc.name)
			st, serr := d.Stat(tc.name)
			if tc.want != "" {
				require.NoError(t, err)
				defer f.Close()
				b, err := io.ReadAll(f)
				require.NoError(t, err)
				assert.Equal(t, tc.want, string(b))
				require.NoError(t, serr)
				assert.Equal(t, int64(len(tc.want)), st.Size())
				return
			}
			require.Error(t, err)
			assert.Nil(t, f)
			require.Error(t, serr)
			for _, e := range []error{err, serr} {
				var pe *fs.PathError
				require.ErrorAs(t, e, &pe)
				assert.Equal(t, tc.name, pe.Path, "errors name the fs name only")
				assert.NotContains(t, e.Error(), served, "errors never show the server path")
				assert.Equal(t, tc.notReg, errors.Is(e, ErrNotRegular), "ErrNotRegular: %v", e)
				assert.Equal(t, tc.invalid, errors.Is(e, fs.ErrInvalid), "fs.ErrInvalid: %v", e)
				assert.Equal(t, tc.outside, errors.Is(e, ErrInvalidName), "ErrInvalidName: %v", e)
				if tc.name != "loop" && !tc.invalid {
					assert.ErrorIs(t, e, fs.ErrNotExist)
				}
			}
		})
	}
}

func TestDirSocketAndDevice(t *testing.T) {
	served, _ := dirFixture(t)
	d, err := Dir(served)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	if _, err := os.Lstat(filepath.Join(served, "sock")); err == nil {
		_, err := d.Open("sock")
		assert.ErrorIs(t, err, ErrNotRegular)
		assert.ErrorIs(t, err, fs.ErrNotExist)
	}
	// A device node: a link to /dev/null would be refused as leading
	// outside, so make one inside when allowed (root), else skip.
	if err := syscall.Mknod(filepath.Join(served, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("mknod needs privileges: %v", err)
	}
	_, err = d.Open("null")
	assert.ErrorIs(t, err, ErrNotRegular)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestDirFIFONeverBlocks opens a FIFO with no writer, which a plain open(2)
// would wait on forever, and also a FIFO swapped in for a regular file
// after Stat (simulated by opening directly through the root's rules).
func TestDirFIFONeverBlocks(t *testing.T) {
	served, _ := dirFixture(t)
	d, err := Dir(served)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	done := make(chan error, 1)
	go func() {
		f, err := d.Open("fifo")
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrNotRegular)
		assert.ErrorIs(t, err, fs.ErrNotExist)
	case <-time.After(5 * time.Second):
		t.Fatal("Open of a FIFO blocked")
	}
	// The second check, after the open, must hold on its own too.
	f, err := d.root.OpenFile("fifo", os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	require.NoError(t, err, "a non-blocking open of a FIFO returns at once")
	st, err := f.Stat()
	require.NoError(t, err)
	assert.False(t, st.Mode().IsRegular())
	f.Close()
}

func TestDirClosed(t *testing.T) {
	served, _ := dirFixture(t)
	d, err := Dir(served)
	require.NoError(t, err)
	f, err := d.Open("hello.txt")
	require.NoError(t, err)
	require.NoError(t, d.Close())
	b, err := io.ReadAll(f)
	require.NoError(t, err, "files opened before Close stay usable")
	assert.Equal(t, "hello", string(b))
	f.Close()
	_, err = d.Open("hello.txt")
	assert.ErrorIs(t, err, fs.ErrClosed)

	_, err = Dir(filepath.Join(served, "missing"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestDirHTTP checks what the brief for Dir promises net/http users: files
// are served, directories are 404 and never listed, and nothing outside is
// reachable.
func TestDirHTTP(t *testing.T) {
	served, _ := dirFixture(t)
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

// FuzzDirOpen: whatever the name, Dir opens nothing but the regular files
// inside its directory, and never blocks or panics.
func FuzzDirOpen(f *testing.F) {
	for _, s := range []string{"hello.txt", "etc/shadow", "../etc/shadow", "rel-etc/shadow", "boot/up",
		"alias/grub.cfg", "fifo", ".", "", "boot/../hello.txt", "bootdir/../../etc/shadow", "sock", "loop/x"} {
		f.Add(s)
	}
	base := f.TempDir()
	served := filepath.Join(base, "srv")
	outside := filepath.Join(base, "etc")
	require.NoError(f, os.MkdirAll(filepath.Join(served, "boot"), 0o755))
	require.NoError(f, os.MkdirAll(filepath.Join(served, "alias"), 0o755))
	require.NoError(f, os.MkdirAll(outside, 0o755))
	require.NoError(f, os.WriteFile(filepath.Join(outside, "shadow"), []byte("secret"), 0o644))
	require.NoError(f, os.WriteFile(filepath.Join(served, "hello.txt"), []byte("hello"), 0o644))
	require.NoError(f, os.WriteFile(filepath.Join(served, "boot", "grub.cfg"), []byte("menu"), 0o644))
	for name, target := range map[string]string{
		"etc": outside, "rel-etc": "../etc", "boot/up": "../../etc/shadow", "alias/grub.cfg": "../boot/grub.cfg",
		"bootdir": "boot", "loop": "loop",
	} {
		require.NoError(f, os.Symlink(target, filepath.Join(served, filepath.FromSlash(name))))
	}
	require.NoError(f, syscall.Mkfifo(filepath.Join(served, "fifo"), 0o644))
	d, err := Dir(served)
	require.NoError(f, err)
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, name string) {
		file, err := d.Open(name)
		_, serr := d.Stat(name)
		assert.Equal(t, err == nil, serr == nil, "Open and Stat agree on %q: %v / %v", name, err, serr)
		if err != nil {
			return
		}
		defer file.Close()
		require.True(t, fs.ValidPath(name))
		b, err := io.ReadAll(io.LimitReader(file, 100))
		require.NoError(t, err)
		assert.Contains(t, []string{"hello", "menu"}, string(b), "opened %q", name)
	})
}

// TestDirRenamed: a DirFS holds the directory it opened, not its path.
func TestDirRenamed(t *testing.T) {
	served, _ := dirFixture(t)
	d, err := Dir(served)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	require.NoError(t, os.Rename(served, served+".old"))
	require.NoError(t, os.MkdirAll(served, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(served, "hello.txt"), []byte("impostor"), 0o644))
	f, err := d.Open("hello.txt")
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
}
