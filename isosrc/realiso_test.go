package isosrc

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Real images shipped by Debian packages.
const (
	ipxeISO      = "/usr/lib/ipxe/ipxe.iso"                         // package ipxe
	grubRescue   = "/usr/lib/grub-rescue/grub-rescue-cdrom.iso"     // package grub-rescue-pc
	debNetboot12 = "/usr/lib/debian-installer/images/12/amd64/text" // package debian-installer-12-netboot-amd64
)

func needFile(t *testing.T, p, pkg string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s missing (Debian package %s)", p, pkg)
	}
}

// walkSums reads every file of fsys and returns path -> sha256.
func walkSums(t *testing.T, fsys fs.FS) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err, p)
		if d.Type().IsRegular() {
			b, err := fs.ReadFile(fsys, p)
			require.NoError(t, err, p)
			out[p] = sha256.Sum256(b)
		}
		return nil
	}))
	return out
}

// xorrisoExtract copies one file out of an ISO with xorriso, the reference
// reader.
func xorrisoExtract(t *testing.T, iso, p string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/"+p, dst)
	b, err := os.ReadFile(dst)
	require.NoError(t, err)
	return b
}

func TestRealIPXE(t *testing.T) {
	needFile(t, ipxeISO, "ipxe")
	needTool(t, "xorriso")
	img, err := Open(ipxeISO, Limits{})
	require.NoError(t, err)
	defer img.Close()
	sums := walkSums(t, img)
	assert.Contains(t, sums, "ipxe.krn")
	for p, s := range sums {
		assert.Equal(t, sha256.Sum256(xorrisoExtract(t, ipxeISO, p)), s, p)
	}
	boot := img.BootImages()
	require.Len(t, boot, 2)
	assert.Equal(t, PlatformBIOS, boot[0].Platform)
	assert.Equal(t, "isolinux.bin", boot[0].Path)
	assert.Equal(t, PlatformEFI, boot[1].Platform)
	assert.Equal(t, "efi.img", boot[1].Path)
	efi, err := img.EFIFS()
	require.NoError(t, err)
	shim, err := fs.ReadFile(efi, "EFI/BOOT/BOOTX64.EFI")
	require.NoError(t, err)
	assert.Equal(t, "MZ", string(shim[:2]), "a PE/COFF binary")

	_, err = Detect(img)
	assert.ErrorIs(t, err, ErrUnknownDistro, "iPXE is not an installer")
}

func TestRealGRUBRescue(t *testing.T) {
	needFile(t, grubRescue, "grub-rescue-pc")
	needTool(t, "xorriso")
	img, err := Open(grubRescue, Limits{})
	require.NoError(t, err)
	defer img.Close()
	sums := walkSums(t, img)
	assert.Greater(t, len(sums), 200)
	for _, p := range []string{"boot/grub/i386-pc/eltorito.img", "boot/grub/grub.cfg", "boot/grub/i386-pc/normal.mod"} {
		if s, ok := sums[p]; assert.True(t, ok, p) {
			assert.Equal(t, sha256.Sum256(xorrisoExtract(t, grubRescue, p)), s, p)
		}
	}
	boot := img.BootImages()
	require.Len(t, boot, 1)
	assert.Equal(t, "boot/grub/i386-pc/eltorito.img", boot[0].Path)
	_, err = img.EFIFS()
	assert.ErrorIs(t, err, ErrNoBootImage)
}

// TestRealDebianNetboot packs Debian 12's real netboot kernel and initrd
// into a Debian-shaped ISO and serves them back byte for byte, then uses
// the netboot directory as the companion source.
func TestRealDebianNetboot(t *testing.T) {
	needFile(t, debNetboot12, "debian-installer-12-netboot-amd64")
	kernel, err := os.ReadFile(filepath.Join(debNetboot12, "debian-installer/amd64/linux"))
	require.NoError(t, err)
	initrd, err := os.ReadFile(filepath.Join(debNetboot12, "debian-installer/amd64/initrd.gz"))
	require.NoError(t, err)
	tr := readTxtar(t, "testdata/distros/debian-12-netinst.txtar")
	tr.files["install.amd/vmlinuz"] = string(kernel)
	tr.files["install.amd/initrd.gz"] = string(initrd)
	img := openISO(t, tr)
	d, err := Detect(img)
	require.NoError(t, err)
	assert.Equal(t, "debian-12", d.OSID)

	f, err := img.OpenFile(d.Initrd)
	require.NoError(t, err)
	defer f.Close()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, f)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(initrd), sha256.Sum256(buf.Bytes()))

	nb, err := OpenNetboot(debNetboot12)
	require.NoError(t, err)
	d, err = d.WithNetboot(nb)
	require.NoError(t, err)
	assert.Equal(t, "debian-installer/amd64/linux", d.NetbootKernel)
	assert.Equal(t, "pxelinux.0", d.Pxelinux)
	for _, w := range d.Warnings {
		assert.NotContains(t, w, "not for bookworm")
	}
}

// TestRealNetbootDistro: the netboot directories Debian's
// debian-installer-12-netboot-{amd64,arm64} packages install, given without
// an ISO, name their architecture, and serve their real kernels.
func TestRealNetbootDistro(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			dir := "/usr/lib/debian-installer/images/12/" + arch + "/text"
			needFile(t, dir, "debian-installer-12-netboot-"+arch)
			nb, err := OpenNetboot(dir)
			require.NoError(t, err)
			defer nb.(io.Closer).Close()
			d, err := NetbootDistro("debian-12", nb)
			require.NoError(t, err)
			assert.Equal(t, arch, d.Arch)
			assert.Empty(t, d.Warnings, "the package is bookworm's")
			want, err := os.ReadFile(filepath.Join(dir, d.NetbootKernel))
			require.NoError(t, err)
			got, err := fs.ReadFile(nb, d.NetbootKernel)
			require.NoError(t, err)
			assert.Equal(t, sha256.Sum256(want), sha256.Sum256(got))
		})
	}
}
