package bootmenu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sbat is what Debian 12's signed GRUB images carry in their SBAT section.
const sbat = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n" +
	"grub,5,Free Software Foundation,grub,2.06,https://www.gnu.org/software/grub/\n" +
	"grub.debian,5,Debian,grub2,2.06-13+deb12u2,https://tracker.debian.org/pkg/grub2\n"

// modHost makes a host root with the signed x64 pair, a GRUB image whose
// SBAT names grubVer, and grub-efi-amd64-bin's modinfo.sh naming binVer
// (no modinfo.sh when binVer is "") and http.mod.
func modHost(t *testing.T, grubVer, binVer string) string {
	root := fakeHost(t, hostX64[0])
	write := func(rel, data string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	write(hostX64[1], "MZ grub image\x00grub.debian,5,Debian,grub2,"+grubVer+",https://tracker.debian.org/pkg/grub2\n")
	write(hostModules+"/http.mod", "\x7fELF http module")
	if binVer != "" {
		write(hostModules+"/modinfo.sh", "#!/bin/sh\n\n# User-controlled variables\ngrub_target_cc_version='gcc-12'\n# Version\ngrub_version=\"2.06\"\ngrub_package_version=\""+binVer+"\"\n")
	}
	return root
}

func TestGRUBHTTPModulePairsWithItsGRUB(t *testing.T) {
	iso := fstest.MapFS{
		"EFI/BOOT/BOOTX64.EFI": {Data: []byte("iso shim")},
		"EFI/BOOT/grubx64.efi": {Data: []byte("iso grub\x00" + sbat)},
	}
	tests := []struct {
		name           string
		src            LoaderSource
		grubVer, binVe string
		want           bool
	}{
		{"same build", LoaderSource{}, "2.06-13+deb12u2", "2.06-13+deb12u2", true},
		{"host GRUB although media are given", LoaderSource{FS: iso}, "2.06-13+deb12u2", "2.06-13+deb12u2", true},
		{"modules of another build", LoaderSource{}, "2.06-13+deb12u2", "2.06-13+deb12u1", false},
		{"a version that only starts alike", LoaderSource{}, "2.06-13+deb12u2", "2.06-13", false},
		{"no modinfo.sh", LoaderSource{}, "2.06-13+deb12u2", "", false},
		{"odd version", LoaderSource{}, "2.06-13+deb12u2", "2.06\"; rm -rf /", false},
		// The distribution's GRUB is served: the host's module is not its own.
		{"vendor GRUB", LoaderSource{FS: iso, Vendor: true}, "2.06-13+deb12u2", "2.06-13+deb12u2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := modHost(t, tt.grubVer, tt.binVe)
			l, err := FindLoaders(tt.src, root)
			require.NoError(t, err)
			assert.Equal(t, tt.want, l.Has(LoaderGRUBHTTPMod))
			d, err := l.Dialect("debian-12")
			require.NoError(t, err)
			assert.Equal(t, tt.want, d.HTTPInsmod, "the menu asks for the module only when it is served")
			assert.False(t, l.IsLoader(LoaderGRUBHTTPMod))
			if tt.want {
				assert.Equal(t, "\x7fELF http module", read(t, l, LoaderGRUBHTTPMod))
				assert.Contains(t, l.Origins(), LoaderGRUBHTTPMod+" <- "+filepath.Join(root, hostModules, "http.mod"))
				require.NoError(t, fstest.TestFS(l, LoaderShim, LoaderGRUB, LoaderGRUBHTTPMod))
			}
		})
	}
}

func TestModinfoVersion(t *testing.T) {
	tests := map[string]string{
		"grub_package_version=\"2.06-13+deb12u2\"\n":   "2.06-13+deb12u2",
		"x=1\n  grub_package_version='1:2.12~rc1-1'\n": "1:2.12~rc1-1",
		"grub_package_version=\"\"\n":                  "",
		"grub_package_version=\"2.06 x\"\n":            "",
		"grub_version=\"2.06\"\n":                      "",
		"":                                             "",
	}
	for in, want := range tests {
		assert.Equal(t, want, modinfoVersion([]byte(in)), "%q", in)
	}
}

func TestIsLoader(t *testing.T) {
	root := modHost(t, "2.06-13+deb12u2", "2.06-13+deb12u2")
	for _, f := range []string{"usr/lib/PXELINUX/pxelinux.0", "usr/lib/syslinux/modules/bios/ldlinux.c32",
		"usr/lib/syslinux/modules/bios/menu.c32", "usr/lib/ipxe/snponly.efi", "usr/lib/ipxe/undionly.kpxe", "usr/lib/ipxe/ipxe.efi"} {
		p := filepath.Join(root, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	}
	l, err := FindLoaders(LoaderSource{}, root)
	require.NoError(t, err)
	for name, want := range map[string]bool{
		LoaderShim: true, LoaderGRUB: true, LoaderPXELinux: true, LoaderIPXESNP: true,
		"ipxe/undionly.kpxe": true, "ipxe/ipxe.efi": true,
		"ldlinux.c32": false, "menu.c32": false, LoaderGRUBHTTPMod: false,
		LoaderGRUBAA64:  false, // a loader, but not served here
		"grub/grub.cfg": false,
	} {
		assert.Equal(t, want, l.IsLoader(name), name)
	}
	assert.True(t, l.Has(LoaderGRUBHTTPMod))
	assert.False(t, (*Loaders)(nil).IsLoader(LoaderGRUB))
}

// TestHostGRUBHTTPModule: on a Debian host with grub-efi-amd64-signed and
// grub-efi-amd64-bin of one version, the module is served with the GRUB.
func TestHostGRUBHTTPModule(t *testing.T) {
	for _, p := range []string{"/" + hostX64[1], "/" + hostModules + "/http.mod", "/" + hostModules + "/modinfo.sh"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s: %v (Debian packages grub-efi-amd64-signed and grub-efi-amd64-bin)", p, err)
		}
	}
	l, err := FindLoaders(LoaderSource{}, "/")
	require.NoError(t, err)
	require.True(t, l.Has(LoaderGRUBHTTPMod), "grub-efi-amd64-signed and grub-efi-amd64-bin differ in version? %v", l.Origins())
	d, err := l.Dialect("debian-12")
	require.NoError(t, err)
	assert.True(t, d.HTTPInsmod)
}

// FuzzModinfoVersion: whatever modinfo.sh holds, the version is empty or
// made only of the characters Debian versions use, so it cannot widen the
// SBAT match.
func FuzzModinfoVersion(f *testing.F) {
	f.Add("grub_package_version=\"2.06-13+deb12u2\"\n")
	f.Add("grub_package_version='\n")
	f.Fuzz(func(t *testing.T, s string) {
		v := modinfoVersion([]byte(s))
		for _, r := range v {
			if !isIDChar(r) && !strings.ContainsRune("+~:", r) {
				t.Fatalf("version %q from %q", v, s)
			}
		}
	})
}
