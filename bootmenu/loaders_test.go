package bootmenu

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeHost makes a host root under t.TempDir holding files, each with the
// content "host:" + its path.
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

var (
	hostX64  = []string{"usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"}
	hostBIOS = []string{"usr/lib/PXELINUX/pxelinux.0", "usr/lib/syslinux/modules/bios/ldlinux.c32"}
)

func TestVendorPairWinsOverHost(t *testing.T) {
	host := fakeHost(t, append(append([]string{"usr/lib/ipxe/snponly.efi"}, hostX64...), hostBIOS...)...)
	iso := fstest.MapFS{
		"EFI/BOOT/BOOTX64.EFI": {Data: []byte("iso shim")},
		"EFI/BOOT/grubx64.efi": {Data: []byte("iso grub")},
	}
	l, err := FindLoaders(LoaderSource{FS: iso, Vendor: true}, host)
	require.NoError(t, err)
	assert.Equal(t, "iso shim", read(t, l, LoaderShim))
	assert.Equal(t, "iso grub", read(t, l, LoaderGRUB))
	assert.True(t, l.FromDistro(LoaderGRUB))
	assert.Equal(t, "host:usr/lib/PXELINUX/pxelinux.0", read(t, l, LoaderPXELinux))
	assert.Equal(t, "host:usr/lib/ipxe/snponly.efi", read(t, l, LoaderIPXESNP))
	assert.False(t, l.FromDistro(LoaderPXELinux))
	assert.Empty(t, l.Missing())
	assert.Contains(t, l.Origins(), LoaderGRUB+" <- iso:EFI/BOOT/grubx64.efi")
	require.NoError(t, fstest.TestFS(l, LoaderShim, LoaderGRUB, LoaderPXELinux, "ldlinux.c32", LoaderIPXESNP))
}

func TestHostShimOnlyWithHostGRUB(t *testing.T) {
	// A distribution with only a shim must not be paired with the host's GRUB.
	host := fakeHost(t, hostX64...)
	iso := fstest.MapFS{"EFI/BOOT/BOOTX64.EFI": {Data: []byte("iso shim")}}
	l, err := FindLoaders(LoaderSource{FS: iso, Vendor: true}, host)
	require.NoError(t, err)
	assert.Equal(t, "host:usr/lib/shim/shimx64.efi.signed", read(t, l, LoaderShim))
	assert.Equal(t, "host:usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", read(t, l, LoaderGRUB))
	assert.False(t, l.FromDistro(LoaderGRUB))
	assert.Len(t, l.Missing(), 2, "BIOS loader and iPXE are missing")
}

func TestNamedVendorPair(t *testing.T) {
	// Detection's paths are used as given, and only those.
	iso := fstest.MapFS{
		"EFI/BOOT/BOOTX64.EFI": {Data: []byte("usual shim")},
		"EFI/BOOT/grubx64.efi": {Data: []byte("usual grub")},
		"efi/x/shim.efi":       {Data: []byte("named shim")},
		"efi/x/grub.efi":       {Data: []byte("named grub")},
	}
	l, err := FindLoaders(LoaderSource{FS: iso, Shim: "efi/x/shim.efi", GRUB: "efi/x/grub.efi", Vendor: true}, t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, "named shim", read(t, l, LoaderShim))
	assert.Equal(t, "named grub", read(t, l, LoaderGRUB))
}

func TestNothingFoundNamesPackages(t *testing.T) {
	_, err := FindLoaders(LoaderSource{}, t.TempDir())
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNoLoader))
	assert.Contains(t, err.Error(), "grub-efi-amd64-signed")
}

func TestOpenHidesHostPaths(t *testing.T) {
	host := fakeHost(t, "usr/lib/PXELINUX/pxelinux.0")
	l, err := FindLoaders(LoaderSource{}, host)
	require.NoError(t, err)
	_, err = l.Open("nope.efi")
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotContains(t, err.Error(), host)
	_, err = l.Open("../etc/passwd")
	require.Error(t, err)
}

func TestHostFirstWithoutVendor(t *testing.T) {
	// Debian: the host's signed network GRUB first, the CD-ROM GRUB of the
	// ISO only when the host has none.
	host := fakeHost(t, hostX64...)
	iso := fstest.MapFS{
		"EFI/boot/bootx64.efi": {Data: []byte("iso shim")},
		"EFI/boot/grubx64.efi": {Data: []byte("iso cd grub")},
	}
	src := LoaderSource{FS: iso, Shim: "EFI/boot/bootx64.efi", GRUB: "EFI/boot/grubx64.efi"}
	l, err := FindLoaders(src, host)
	require.NoError(t, err)
	assert.False(t, l.FromDistro(LoaderGRUB))
	l, err = FindLoaders(src, t.TempDir())
	require.NoError(t, err)
	assert.True(t, l.FromDistro(LoaderGRUB), "falls back to the ISO pair")
	assert.Equal(t, "iso cd grub", read(t, l, LoaderGRUB))
	assert.Equal(t, "iso shim", read(t, l, LoaderShim))
}

func TestNilLoaders(t *testing.T) {
	var l *Loaders
	assert.False(t, l.Has(LoaderGRUB))
	assert.False(t, l.FromDistro(LoaderGRUB))
	assert.Empty(t, l.Origins())
	assert.Len(t, l.Missing(), 3)
	_, err := l.Open(LoaderGRUB)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = fs.ReadFile(l, LoaderGRUB)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	d, err := l.Dialect("rocky-9.0")
	require.NoError(t, err)
	assert.Equal(t, GRUBDebian, d, "the host's loaders are served by another Loaders")
}

// arm64Netboot is the layout of debian-installer-12-netboot-arm64.
func arm64Netboot() fstest.MapFS {
	return fstest.MapFS{
		"debian-installer/arm64/bootnetaa64.efi": {Data: []byte("netboot shim")},
		"debian-installer/arm64/grubaa64.efi":    {Data: []byte("netboot grub")},
		"debian-installer/arm64/linux":           {Data: []byte("kernel")},
	}
}

func TestARM64Loaders(t *testing.T) {
	tests := []struct {
		name       string
		host       []string
		netboot    fstest.MapFS
		shim, grub string // "" = not served
	}{
		{"netboot pair on an amd64 host", hostX64, arm64Netboot(), "netboot shim", "netboot grub"},
		{"host pair wins", append(append([]string{}, hostX64...), "usr/lib/shim/shimaa64.efi.signed", "usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed"),
			arm64Netboot(), "host:usr/lib/shim/shimaa64.efi.signed", "host:usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed"},
		{"host shim never with the netboot GRUB", append(append([]string{}, hostX64...), "usr/lib/shim/shimaa64.efi.signed"),
			arm64Netboot(), "netboot shim", "netboot grub"},
		{"netboot GRUB without shim", hostX64, fstest.MapFS{"debian-installer/arm64/grubaa64.efi": {Data: []byte("netboot grub")}}, "", "netboot grub"},
		{"netboot shim without GRUB", hostX64, fstest.MapFS{"debian-installer/arm64/bootnetaa64.efi": {Data: []byte("netboot shim")}}, "", ""},
		{"no netboot tree", hostX64, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := LoaderSource{}
			if tt.netboot != nil {
				src.Netboot = tt.netboot
			}
			l, err := FindLoaders(src, fakeHost(t, tt.host...))
			require.NoError(t, err)
			for name, want := range map[string]string{LoaderShimAA64: tt.shim, LoaderGRUBAA64: tt.grub} {
				if want == "" {
					assert.False(t, l.Has(name), name)
					continue
				}
				assert.Equal(t, want, read(t, l, name))
				assert.False(t, l.FromDistro(name), "an arm64 loader is never the distribution's")
			}
		})
	}
}

func TestARM64OnlyIsALoader(t *testing.T) {
	l, err := FindLoaders(LoaderSource{Netboot: arm64Netboot()}, t.TempDir())
	require.NoError(t, err, "a server for ARM64 clients only")
	assert.True(t, l.Has(LoaderGRUBAA64))
}

// badFS serves one file whose Stat reports size and whose reads return
// zeros for ever, or fail with readErr.
type badFS struct {
	name    string
	size    int64
	readErr error
}

func (b badFS) Open(name string) (fs.File, error) {
	if name != b.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return badFile(b), nil
}

type badFile badFS

func (f badFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f badFile) Close() error               { return nil }
func (f badFile) Read(p []byte) (int, error) {
	if f.readErr != nil {
		return 0, f.readErr
	}
	clear(p)
	return len(p), nil
}
func (f badFile) Name() string       { return filepath.Base(f.name) }
func (f badFile) Size() int64        { return f.size }
func (f badFile) Mode() fs.FileMode  { return 0o444 }
func (f badFile) ModTime() time.Time { return time.Time{} }
func (f badFile) IsDir() bool        { return false }
func (f badFile) Sys() any           { return nil }

func TestDamagedMediaIsAnError(t *testing.T) {
	// A vendor's pair that is there but unreadable must not quietly give
	// way to the host's GRUB, which would refuse the vendor's kernel.
	host := fakeHost(t, hostX64...)
	grub := "EFI/BOOT/grubx64.efi"
	for name, fsys := range map[string]badFS{
		"read error": {name: grub, size: 10, readErr: io.ErrUnexpectedEOF},
		"too big":    {name: grub, size: maxLoaderSize + 1},
	} {
		t.Run(name, func(t *testing.T) {
			src := LoaderSource{FS: fsys, Shim: grub, GRUB: grub, Vendor: true}
			_, err := FindLoaders(src, host)
			require.Error(t, err)
			assert.Contains(t, err.Error(), grub)
			src.Netboot, src.FS = badFS{name: netbootAA64[1], size: fsys.size, readErr: fsys.readErr}, nil
			_, err = FindLoaders(src, host)
			require.Error(t, err, "netboot tree")
		})
	}
}

func TestReadLimitHoldsWhenStatLies(t *testing.T) {
	_, err := readLimited(badFS{name: "x.efi", size: 10}, "x.efi", 1<<10)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than the 1024 bytes")
}

func TestDialectFollowsGRUBOrigin(t *testing.T) {
	iso := fstest.MapFS{
		"EFI/BOOT/BOOTX64.EFI": {Data: []byte("iso shim")},
		"EFI/BOOT/grubx64.efi": {Data: []byte("iso grub")},
	}
	noInsmod := GRUBDebian
	noInsmod.HTTPInsmod = false
	vendor, err := FindLoaders(LoaderSource{FS: iso, Vendor: true}, fakeHost(t, hostX64...))
	require.NoError(t, err)
	host, err := FindLoaders(LoaderSource{FS: iso}, fakeHost(t, hostX64...))
	require.NoError(t, err)
	tests := []struct {
		loaders *Loaders
		os      string
		want    GRUBDialect
	}{
		{vendor, "centos-7.9", GRUBEL7},
		{vendor, "rocky-8.5", GRUBEL8},
		{vendor, "rocky-9.0", GRUBEL9},
		{vendor, "kylin-v10", GRUBKylinUOS},
		// No http module served with these GRUBs: no insmod in the menu.
		{vendor, "ubuntu-24.04", noInsmod},
		{host, "rocky-9.0", noInsmod},
		{host, "debian-12", noInsmod},
		// nil: the caller serves the host's loaders otherwise.
		{nil, "centos-7.9", GRUBDebian},
	}
	for _, tt := range tests {
		got, err := tt.loaders.Dialect(tt.os)
		require.NoError(t, err, tt.os)
		assert.Equal(t, tt.want, got, "%s, GRUB from the distribution: %v", tt.os, tt.loaders.FromDistro(LoaderGRUB))
	}
	_, err = vendor.Dialect("windows-11")
	assert.ErrorIs(t, err, ErrUnknownOS)
	_, err = (*Loaders)(nil).Dialect("windows-11")
	assert.ErrorIs(t, err, ErrUnknownOS)
}
