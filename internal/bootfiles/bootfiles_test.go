package bootfiles

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fakeHost(t *testing.T, files ...string) string {
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("host:"+f), 0o644))
	}
	return root
}

func read(t *testing.T, fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	require.NoError(t, err, name)
	return string(b)
}

func TestISOPairWinsOverHost(t *testing.T) {
	host := fakeHost(t, "usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
		"usr/lib/PXELINUX/pxelinux.0", "usr/lib/syslinux/modules/bios/ldlinux.c32")
	iso := fstest.MapFS{
		"EFI/BOOT/BOOTX64.EFI": {Data: []byte("iso shim")},
		"EFI/BOOT/grubx64.efi": {Data: []byte("iso grub")},
	}
	s, err := Find(Source{FS: iso}, host)
	require.NoError(t, err)
	assert.Equal(t, "iso shim", read(t, s, Shim))
	assert.Equal(t, "iso grub", read(t, s, GRUB))
	assert.Equal(t, "host:usr/lib/PXELINUX/pxelinux.0", read(t, s, PXELinux))
	assert.Empty(t, s.Missing())
	require.NoError(t, fstest.TestFS(s, Shim, GRUB, PXELinux, "ldlinux.c32"))
}

func TestHostShimOnlyWithHostGRUB(t *testing.T) {
	// An ISO with only a shim must not be paired with the host's GRUB.
	host := fakeHost(t, "usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")
	iso := fstest.MapFS{"EFI/BOOT/BOOTX64.EFI": {Data: []byte("iso shim")}}
	s, err := Find(Source{FS: iso}, host)
	require.NoError(t, err)
	assert.Equal(t, "host:usr/lib/shim/shimx64.efi.signed", read(t, s, Shim))
	assert.Equal(t, "host:usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", read(t, s, GRUB))
	assert.Len(t, s.Missing(), 1, "BIOS loader is missing")
}

func TestNothingFoundNamesPackages(t *testing.T) {
	_, err := Find(Source{}, t.TempDir())
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNoLoader))
	assert.Contains(t, err.Error(), "grub-efi-amd64-signed")
}

func TestOpenHidesHostPaths(t *testing.T) {
	host := fakeHost(t, "usr/lib/PXELINUX/pxelinux.0")
	s, err := Find(Source{}, host)
	require.NoError(t, err)
	_, err = s.Open("nope.efi")
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotContains(t, err.Error(), host)
	_, err = s.Open("../etc/passwd")
	require.Error(t, err)
}

func TestPreferHostForDebianFamily(t *testing.T) {
	host := fakeHost(t, "usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")
	iso := fstest.MapFS{
		"EFI/boot/bootx64.efi": {Data: []byte("iso shim")},
		"EFI/boot/grubx64.efi": {Data: []byte("iso cd grub")},
	}
	s, err := Find(Source{FS: iso, Shim: "EFI/boot/bootx64.efi", GRUB: "EFI/boot/grubx64.efi", PreferHost: true}, host)
	require.NoError(t, err)
	assert.False(t, s.FromISO(GRUB))
	s, err = Find(Source{FS: iso, Shim: "EFI/boot/bootx64.efi", GRUB: "EFI/boot/grubx64.efi", PreferHost: true}, t.TempDir())
	require.NoError(t, err)
	assert.True(t, s.FromISO(GRUB), "falls back to the ISO pair")
	assert.Equal(t, "iso cd grub", read(t, s, GRUB))
}
