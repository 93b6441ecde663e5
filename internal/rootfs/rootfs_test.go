package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/testutil"
)

// The caller's errors of the tests, as tftpsrv and isosrc have their own.
var (
	errNotReg  = errors.New("test: not a regular file")
	errOutside = errors.New("test: outside")
)

var testErrors = Errors{
	NotRegular: func(m fs.FileMode) error { return fmt.Errorf("%w (%v)", errNotReg, m.Type()) },
	Outside:    func(err error) error { return fmt.Errorf("%w (%v)", errOutside, err) },
}

// fixture is testutil.ServedDir's served directory.
func fixture(tb testing.TB) string {
	tb.Helper()
	served, _ := testutil.ServedDir(tb)
	return served
}

func TestFS(t *testing.T) {
	served := fixture(t)
	d, err := OpenDir(served, testErrors)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })

	for _, tc := range []struct {
		name     string
		want     string // content when it opens
		notReg   bool   // refused by Errors.NotRegular
		outside  bool   // refused by Errors.Outside
		invalid  bool   // not an fs name: fs.ErrInvalid
		notExist bool   // errors.Is fs.ErrNotExist
	}{
		{name: "hello.txt", want: "hello"},
		{name: "boot/grub.cfg", want: "menu"},
		{name: "alias/grub.cfg", want: "menu"},
		{name: "hello-link.txt", want: "hello"},
		{name: "bootdir/grub.cfg", want: "menu"},
		{name: "boot/inner-climb", want: "hello"},
		{name: ".", notReg: true, notExist: true},
		{name: "boot", notReg: true, notExist: true},
		{name: "bootdir", notReg: true, notExist: true},
		{name: "fifo", notReg: true, notExist: true},
		{name: "etc", outside: true, notExist: true},
		{name: "etc/shadow", outside: true, notExist: true},
		{name: "rel-etc/shadow", outside: true, notExist: true},
		{name: "shadow", outside: true, notExist: true},
		{name: "boot/up", outside: true, notExist: true},
		{name: "boot/self-abs", outside: true, notExist: true}, // under a chroot it would resolve elsewhere
		{name: "missing", notExist: true},
		{name: "dangling", notExist: true},
		{name: "loop"}, // ELOOP: neither refusal, and not "not found"
		{name: "../etc/shadow", invalid: true},
		{name: "boot/../../etc/shadow", invalid: true},
		{name: "/etc/shadow", invalid: true},
		{name: "boot/./grub.cfg", invalid: true},
		{name: "boot//grub.cfg", invalid: true},
		{name: "boot/", invalid: true},
		{name: "", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := d.Open(tc.name)
			st, serr := d.Stat(tc.name)
			if tc.want != "" {
				require.NoError(t, err)
				defer f.Close()
				assert.IsType(t, &os.File{}, f, "an *os.File reaches sendfile")
				b, err := io.ReadAll(f)
				require.NoError(t, err)
				assert.Equal(t, tc.want, string(b))
				require.NoError(t, serr)
				assert.True(t, st.Mode().IsRegular())
				assert.Equal(t, int64(len(tc.want)), st.Size())
				return
			}
			require.Error(t, err)
			assert.Nil(t, f)
			require.Error(t, serr)
			for op, e := range map[string]error{"open": err, "stat": serr} {
				var pe *fs.PathError
				require.ErrorAs(t, e, &pe)
				assert.Equal(t, op, pe.Op)
				assert.Equal(t, tc.name, pe.Path, "errors name the fs name only")
				assert.NotContains(t, e.Error(), served, "errors never show the path on disk")
				assert.Equal(t, tc.notReg, errors.Is(e, errNotReg), "NotRegular: %v", e)
				assert.Equal(t, tc.outside, errors.Is(e, errOutside), "Outside: %v", e)
				assert.Equal(t, tc.invalid, errors.Is(e, fs.ErrInvalid), "fs.ErrInvalid: %v", e)
				assert.Equal(t, tc.notExist, errors.Is(e, fs.ErrNotExist), "fs.ErrNotExist: %v", e)
			}
		})
	}
}

// TestFSErrorText: the caller's errors keep their own text; rootfs only
// adds the operation and the fs name.
func TestFSErrorText(t *testing.T) {
	d, err := OpenDir(fixture(t), testErrors)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	_, err = d.Open("fifo")
	assert.EqualError(t, err, "open fifo: test: not a regular file (p---------)")
	_, err = d.Stat("boot")
	assert.EqualError(t, err, "stat boot: test: not a regular file (d---------)")
	_, err = d.Stat("boot/up")
	assert.ErrorContains(t, err, "stat boot/up: test: outside (")
}

// TestFSSpecial: a socket and a device node are refused like a FIFO, and
// the device is never opened.
func TestFSSpecial(t *testing.T) {
	served := fixture(t)
	d, err := OpenDir(served, testErrors)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	if _, err := os.Lstat(filepath.Join(served, "sock")); err == nil {
		_, err := d.Open("sock")
		assert.ErrorIs(t, err, errNotReg)
		assert.ErrorIs(t, err, fs.ErrNotExist)
	}
	if err := syscall.Mknod(filepath.Join(served, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("mknod needs privileges: %v", err)
	}
	_, err = d.Open("null")
	assert.ErrorIs(t, err, errNotReg)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestFSNeverBlocks opens a FIFO with no writer, which a plain open(2)
// would wait on forever: first through Open, then through the open after
// the stat alone, as when a FIFO is swapped in for a regular file between
// the two.
func TestFSNeverBlocks(t *testing.T) {
	d, err := OpenDir(fixture(t), testErrors)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	for what, open := range map[string]func(string) (fs.File, error){
		"Open":                  d.Open,
		"the open after a stat": d.openRegular,
	} {
		done := make(chan error, 1)
		go func() {
			f, err := open("fifo")
			if f != nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, errNotReg, what)
			assert.ErrorIs(t, err, fs.ErrNotExist, what)
			var pe *fs.PathError
			require.ErrorAs(t, err, &pe, what)
			assert.Equal(t, "open", pe.Op, what)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s of a FIFO blocked", what)
		}
	}
}

// TestFSClosed: files opened before Close stay usable; the FS does not.
func TestFSClosed(t *testing.T) {
	served := fixture(t)
	d, err := OpenDir(served, testErrors)
	require.NoError(t, err)
	f, err := d.Open("hello.txt")
	require.NoError(t, err)
	require.NoError(t, d.Close())
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	f.Close()
	_, err = d.Open("hello.txt")
	assert.ErrorIs(t, err, fs.ErrClosed)
	_, err = d.Stat("hello.txt")
	assert.ErrorIs(t, err, fs.ErrClosed)
}

// TestFSRenamed: an FS holds the directory it opened, not its path.
func TestFSRenamed(t *testing.T) {
	served := fixture(t)
	d, err := OpenDir(served, testErrors)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	require.NoError(t, os.Rename(served, served+".old"))
	require.NoError(t, os.MkdirAll(served, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(served, "hello.txt"), []byte("impostor"), 0o644))
	b, err := fs.ReadFile(d, "hello.txt")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
}

func TestOpenDirErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenDir(dir, Errors{NotRegular: testErrors.NotRegular})
	assert.Error(t, err, "Outside unset")
	_, err = OpenDir(dir, Errors{Outside: testErrors.Outside})
	assert.Error(t, err, "NotRegular unset")
	_, err = OpenDir(filepath.Join(dir, "missing"), testErrors)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// FuzzOpen: whatever the name, an FS opens nothing but the regular files
// inside its directory, Open and Stat agree, and neither blocks or panics.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{"hello.txt", "etc/shadow", "../etc/shadow", "rel-etc/shadow", "boot/up",
		"alias/grub.cfg", "hello-link.txt", "boot/inner-climb", "fifo", ".", "", "boot/../hello.txt",
		"bootdir/../../etc/shadow", "sock", "loop/x", "boot/self-abs"} {
		f.Add(s)
	}
	d, err := OpenDir(fixture(f), testErrors)
	require.NoError(f, err)
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, name string) {
		file, err := d.Open(name)
		_, serr := d.Stat(name)
		assert.Equal(t, err == nil, serr == nil, "Open and Stat agree on %q: %v / %v", name, err, serr)
		if err != nil {
			var pe *fs.PathError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, name, pe.Path)
			return
		}
		defer file.Close()
		require.True(t, fs.ValidPath(name))
		b, err := io.ReadAll(io.LimitReader(file, 100))
		require.NoError(t, err)
		assert.Contains(t, []string{"hello", "menu"}, string(b), "opened %q", name)
	})
}
