package isosrc

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// within runs f and fails the test if it has not returned after d: the
// guard against an open that blocks.
func within[T any](t *testing.T, d time.Duration, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(d):
		t.Fatalf("still blocked after %v", d)
		panic("unreachable")
	}
}

// TestOpenFileTypes: Open and OpenNetboot take regular files (and block
// devices for Open), refuse anything else with ErrFileType and never block,
// not even on a named pipe with no writer.
func TestOpenFileTypes(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.iso")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "link.iso")
	require.NoError(t, os.Symlink(fifo, link))

	for _, c := range []struct {
		path, kind string
	}{
		{fifo, "named pipe"},
		{link, "named pipe"},
		{dir, "directory"},
		{"/dev/null", "character device"},
	} {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			_, err := within(t, 5*time.Second, func() (*Image, error) { return Open(c.path, Limits{}) })
			require.ErrorIs(t, err, ErrFileType)
			assert.Contains(t, err.Error(), c.kind)
			assert.Contains(t, err.Error(), c.path)
			if c.path != dir { // a directory is a valid netboot source
				_, err = within(t, 5*time.Second, func() (fs.FS, error) { return OpenNetboot(c.path) })
				require.ErrorIs(t, err, ErrFileType)
			}
		})
	}

	// A block device is accepted as a type (an unattached loop device then
	// fails as an image, not as a type).
	if st, err := os.Stat("/dev/loop0"); err == nil && isBlockDevice(st.Mode()) {
		_, err := within(t, 5*time.Second, func() (*Image, error) { return Open("/dev/loop0", Limits{}) })
		assert.NotErrorIs(t, err, ErrFileType)
	}

	img := openISO(t, tree{files: map[string]string{"a": "b"}})
	got, err := img.ReadFile("a")
	require.NoError(t, err)
	assert.Equal(t, "b", string(got))
}

// TestTruncatedImage: an image shorter than its primary volume descriptor
// says (an interrupted download) is refused at open with both sizes; extra
// bytes after the volume are fine.
func TestTruncatedImage(t *testing.T) {
	p := buildISO(t, tree{files: map[string]string{"a": "b", "big": string(bytes.Repeat([]byte("x"), 200<<10))}})
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	want := int64(len(raw))
	for _, cut := range []int{len(raw) - 1, len(raw) - sectorSize, len(raw) / 2, 40 * sectorSize} {
		short := raw[:cut]
		_, err := OpenReader(bytes.NewReader(short), int64(cut), Limits{})
		require.ErrorIs(t, err, ErrTruncated, "cut at %d", cut)
		assert.ErrorIs(t, err, ErrBadImage)
		assert.Contains(t, err.Error(), fmt.Sprintf("declares %d bytes", want))
		assert.Contains(t, err.Error(), fmt.Sprintf("only %d bytes", cut))

		f := filepath.Join(t.TempDir(), "short.iso")
		require.NoError(t, os.WriteFile(f, short, 0o644))
		_, err = Open(f, Limits{})
		require.ErrorIs(t, err, ErrTruncated)
	}
	long := append(bytes.Clone(raw), make([]byte, 3*sectorSize)...)
	_, err = OpenReader(bytes.NewReader(long), int64(len(long)), Limits{})
	assert.NoError(t, err)
}

func TestOpen(t *testing.T) {
	p := richISO(t)
	_, err := Open(p, Limits{MaxEntries: 10})
	assert.ErrorIs(t, err, ErrLimit)
	img, err := Open(p, Limits{})
	require.NoError(t, err)
	require.NoError(t, img.Close())

	// The limits also bound the UEFI image: EFI/BOOT is at depth 2 there.
	p = buildISO(t, tree{files: map[string]string{"a": "b"}, efiRaw: handFAT().img})
	img, err = Open(p, Limits{MaxDepth: 1})
	require.NoError(t, err)
	defer img.Close()
	_, err = img.EFIFS()
	assert.ErrorIs(t, err, ErrLimit)
}

// TestNetbootDirFIFO: a named pipe inside a netboot directory is refused
// when opened, instead of hanging the reader.
func TestNetbootDirFIFO(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "debian-installer/amd64"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "debian-installer/amd64/linux"), []byte("k"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "debian-installer/amd64/initrd.gz"), []byte("i"), 0o644))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "version.info"), 0o600))
	nb, err := OpenNetboot(dir)
	require.NoError(t, err)
	_, err = within(t, 5*time.Second, func() ([]byte, error) { return fs.ReadFile(nb, "version.info") })
	require.ErrorIs(t, err, ErrFileType)
	assert.Contains(t, err.Error(), "open version.info: is a named pipe")
	d := &Distro{Arch: "amd64", Codename: "bookworm"}
	d, err = within(t, 5*time.Second, func() (*Distro, error) { return d.WithNetboot(nb) })
	require.NoError(t, err)
	assert.Equal(t, "debian-installer/amd64/linux", d.NetbootKernel)
	// Regular files only: the tree opens its files but lists nothing.
	require.NoError(t, os.Remove(filepath.Join(dir, "version.info")))
	for _, name := range []string{"debian-installer/amd64/linux", "debian-installer/amd64/initrd.gz"} {
		_, err := fs.ReadFile(nb, name)
		assert.NoError(t, err)
	}
	_, err = fs.ReadDir(nb, ".")
	assert.ErrorIs(t, err, ErrFileType)
}
