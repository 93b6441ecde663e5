package isosrc

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOSTable(t *testing.T) {
	os := OSes()
	require.NotEmpty(t, os)
	for _, o := range os {
		got, ok := LookupOS(" " + strings.ToUpper(o.ID) + " ")
		require.True(t, ok, o.ID)
		assert.Equal(t, o, got)
		assert.Contains(t, []Family{FamilyAnaconda, FamilySubiquity, FamilyDebianInstaller}, o.Family, o.ID)
	}
	_, ok := LookupOS("plan9-4")
	assert.False(t, ok)
	os[0].ID = "changed" // the caller's copy
	assert.NotEqual(t, "changed", OSes()[0].ID)
}

// debianTree is a netboot tree holding the installer of each arch.
func debianTree(arches ...string) fstest.MapFS {
	m := fstest.MapFS{"version.info": {Data: []byte("Debian version:  12 (bookworm)\n")}}
	for _, a := range arches {
		m["debian-installer/"+a+"/linux"] = &fstest.MapFile{Data: []byte("k-" + a)}
		m["debian-installer/"+a+"/initrd.gz"] = &fstest.MapFile{Data: []byte("i-" + a)}
	}
	return m
}

func TestWithNetboot(t *testing.T) {
	detected := func() *Distro {
		return &Distro{
			Family: FamilyDebianInstaller, OSID: "debian-12", Arch: "amd64", Codename: "bookworm",
			Kernel: "install.amd/vmlinuz", Initrd: "install.amd/initrd.gz",
			Warnings: []string{"first", debianCDInitrd, "last"}, Sources: []string{".disk/info"}, Repos: []string{"main"},
		}
	}
	withPXE := debianTree("amd64")
	withPXE["pxelinux.0"] = &fstest.MapFile{Data: []byte("pxe")}
	bullseye := debianTree("amd64")
	bullseye["version.info"] = &fstest.MapFile{Data: []byte("Debian version:  11 (bullseye)\n")}
	tests := []struct {
		name     string
		arch     string
		nb       fs.FS
		kernel   string
		pxelinux string
		warning  string // a warning the copy must have
		err      string
	}{
		{name: "amd64", arch: "amd64", nb: debianTree("amd64"), kernel: "debian-installer/amd64/linux"},
		{name: "x86_64 spelling", arch: "x86_64", nb: debianTree("amd64"), kernel: "debian-installer/amd64/linux"},
		{name: "arm64", arch: "aarch64", nb: debianTree("arm64", "amd64"), kernel: "debian-installer/arm64/linux"},
		{name: "pxelinux", arch: "amd64", nb: withPXE, kernel: "debian-installer/amd64/linux", pxelinux: "pxelinux.0"},
		{name: "other release", arch: "amd64", nb: bullseye, kernel: "debian-installer/amd64/linux", warning: "not for bookworm"},
		{name: "wrong arch", arch: "arm64", nb: debianTree("amd64"), err: "no debian-installer/arm64/linux and debian-installer/arm64/initrd.gz"},
		{name: "empty", arch: "amd64", nb: fstest.MapFS{}, err: "no debian-installer/amd64/linux"},
		{name: "nil", arch: "amd64", nb: nil, err: "no netboot source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := detected()
			d.Arch = tt.arch
			before := detected()
			before.Arch = tt.arch
			got, err := d.WithNetboot(tt.nb)
			assert.Equal(t, before, d, "the receiver must not change")
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.kernel, got.NetbootKernel)
			assert.Equal(t, strings.TrimSuffix(tt.kernel, "linux")+"initrd.gz", got.NetbootInitrd)
			assert.Equal(t, tt.pxelinux, got.Pxelinux)
			assert.NotContains(t, got.Warnings, debianCDInitrd)
			assert.Equal(t, "first", got.Warnings[0])
			if tt.warning != "" {
				assert.Contains(t, strings.Join(got.Warnings, "\n"), tt.warning)
			}
			// The rest is d's, in slices of the copy's own.
			assert.Equal(t, d.Kernel, got.Kernel)
			assert.Equal(t, d.Sources, got.Sources)
			got.Sources[0], got.Repos[0] = "x", "x"
			assert.Equal(t, before, d)
		})
	}
}

func TestNetbootDistro(t *testing.T) {
	tests := []struct {
		name, osID string
		nb         fs.FS
		arch       string // "" = error
		err        string
	}{
		{name: "amd64 tree", osID: "debian-12", nb: debianTree("amd64"), arch: "amd64"},
		{name: "arm64 tree", osID: "debian-12", nb: debianTree("arm64"), arch: "arm64"},
		{name: "both: amd64 first", osID: "debian-12", nb: debianTree("arm64", "amd64"), arch: "amd64"},
		{name: "case and space", osID: " Debian-11 ", nb: debianTree("amd64"), arch: "amd64"},
		{name: "no installer", osID: "debian-12", nb: debianTree("i386"), err: "the netboot tree for debian-12 holds no installer: no debian-installer/{amd64,arm64}/linux"},
		{name: "kernel without initrd", osID: "debian-12", nb: fstest.MapFS{"debian-installer/amd64/linux": {}}, err: "holds no installer"},
		{name: "not the Debian installer", osID: "rocky-9.0", nb: debianTree("amd64"), err: "rocky-9.0 uses the anaconda installer, which boots from its ISO: a netboot tree is for debian-installer releases"},
		{name: "ubuntu", osID: "ubuntu-22.04", nb: debianTree("amd64"), err: "uses the subiquity installer"},
		{name: "unknown OS", osID: "debian-99", nb: debianTree("amd64"), err: `unknown OS identifier "debian-99"`},
		{name: "empty OS", osID: "", nb: debianTree("amd64"), err: `unknown OS identifier ""`},
		{name: "nil tree", osID: "debian-12", nb: nil, err: "debian-12: no netboot source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NetbootDistro(tt.osID, tt.nb)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assert.Nil(t, d)
				return
			}
			require.NoError(t, err)
			in, _ := LookupOS(tt.osID)
			assert.Equal(t, tt.arch, d.Arch)
			assert.Equal(t, "debian-installer/"+tt.arch+"/linux", d.NetbootKernel)
			assert.Equal(t, "debian-installer/"+tt.arch+"/initrd.gz", d.NetbootInitrd)
			assert.Equal(t, in.ID, d.OSID)
			assert.Equal(t, FamilyDebianInstaller, d.Family)
			assert.Equal(t, in.Codename, d.Codename)
			assert.Equal(t, AnswerPreseed, d.AnswerFile)
			assert.Equal(t, BootArgsDebianInstaller, d.BootArgs)
			assert.Empty(t, d.Kernel, "no ISO, no ISO kernel")
			if in.Codename != "bookworm" {
				assert.Contains(t, strings.Join(d.Warnings, "\n"), "not for "+in.Codename)
			} else {
				assert.Empty(t, d.Warnings)
			}
		})
	}
}

func TestRepoURL(t *testing.T) {
	const base = "http://10.0.0.1:8080/"
	iso := fstest.MapFS{"x": {}}
	tests := []struct {
		name   string
		m      Media
		f      Family
		mirror string
		want   string
		err    string
	}{
		{"anaconda", Media{ISO: iso}, FamilyAnaconda, "", base + "iso/", ""},
		{"anaconda prefix", Media{Prefix: "profiles/rocky9/", ISO: iso}, FamilyAnaconda, "http://mirror/", base + "profiles/rocky9/iso/", ""},
		{"anaconda without ISO", Media{ISOFile: "x.iso"}, FamilyAnaconda, "", "", "the anaconda installer installs from the ISO's tree: give an ISO"},
		{"subiquity", Media{ISO: iso, ISOFile: "/srv/u.iso"}, FamilySubiquity, "", base + "image.iso", ""},
		{"subiquity prefix", Media{Prefix: "p/u/", ISOFile: "/srv/u.iso"}, FamilySubiquity, "", base + "p/u/image.iso", ""},
		{"subiquity without ISO file", Media{ISO: iso}, FamilySubiquity, "", "", "the subiquity live installer downloads its ISO: give an ISO file"},
		{"debian mirror", Media{ISO: iso}, FamilyDebianInstaller, "http://deb.debian.org/debian", "http://deb.debian.org/debian", ""},
		{"debian ISO", Media{Prefix: "p/d/", ISO: iso}, FamilyDebianInstaller, "", base + "p/d/iso/", ""},
		{"debian netboot only", Media{Netboot: iso}, FamilyDebianInstaller, "", "", ""},
		{"unknown family", Media{ISO: iso}, Family("yast"), "", "", `unknown installer family "yast"`},
		{"empty family", Media{ISO: iso}, "", "", "", `unknown installer family ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.m.RepoURL(base, tt.f, tt.mirror)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMediaLookup(t *testing.T) {
	iso, nb := fstest.MapFS{"a": {}}, fstest.MapFS{"b": {}}
	m := Media{ISO: iso}
	assert.Equal(t, fs.FS(iso), m.BootTree())
	fsys, name, ok := m.Lookup("boot/images/x")
	require.True(t, ok)
	assert.Equal(t, fs.FS(iso), fsys)
	assert.Equal(t, "images/x", name)
	m.Netboot = nb
	assert.Equal(t, fs.FS(nb), m.BootTree())
	fsys, _, _ = m.Lookup("boot/linux")
	assert.Equal(t, fs.FS(nb), fsys)
	fsys, name, _ = m.Lookup("iso/a")
	assert.Equal(t, fs.FS(iso), fsys)
	assert.Equal(t, "a", name)
	for _, rel := range []string{"image.iso", "answer/ks.cfg", "isolinux/x", ""} {
		_, _, ok := m.Lookup(rel)
		assert.False(t, ok, rel)
	}
	_, _, ok = Media{}.Lookup("boot/linux")
	assert.False(t, ok)
	assert.Nil(t, Media{}.BootTree())
}

func TestMediaHandler(t *testing.T) {
	img := openISO(t, tree{
		files: map[string]string{"images/pxeboot/vmlinuz": "iso-kernel", "EFI/BOOT/grubx64.efi": "grub", "index.html": "page"},
		links: map[string]string{"latest": "images/pxeboot/vmlinuz"},
	})
	dir := t.TempDir()
	isoFile := filepath.Join(dir, "disk.iso")
	require.NoError(t, os.WriteFile(isoFile, []byte("0123456789"), 0o644))
	fifo := filepath.Join(dir, "fifo.iso")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	nbDir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(nbDir, "debian-installer/amd64"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(nbDir, "debian-installer/amd64/linux"), []byte("nb-kernel"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("secret"), 0o644))
	require.NoError(t, os.Symlink("../"+filepath.Base(dir)+"/secret", filepath.Join(nbDir, "escape")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "secret"), filepath.Join(nbDir, "absolute")))
	require.NoError(t, os.Symlink("debian-installer/amd64/linux", filepath.Join(nbDir, "linux")))
	nb, err := OpenNetboot(nbDir)
	require.NoError(t, err)
	t.Cleanup(func() { nb.(io.Closer).Close() })

	iso := Media{ISO: img, ISOFile: isoFile}
	full := Media{Prefix: "profiles/deb/", ISO: img, ISOFile: isoFile, Netboot: nb}
	tests := []struct {
		name   string
		m      Media
		method string
		target string
		rng    string
		code   int
		body   string
	}{
		{"iso file", iso, "GET", "/iso/images/pxeboot/vmlinuz", "", 200, "iso-kernel"},
		{"iso link", iso, "GET", "/iso/latest", "", 200, "iso-kernel"},
		{"iso index.html", iso, "GET", "/iso/index.html", "", 200, "page"},
		{"boot is the ISO without netboot", iso, "GET", "/boot/images/pxeboot/vmlinuz", "", 200, "iso-kernel"},
		{"range in the tree", iso, "GET", "/iso/EFI/BOOT/grubx64.efi", "bytes=1-2", 206, "ru"},
		{"head", iso, "HEAD", "/iso/EFI/BOOT/grubx64.efi", "", 200, ""},
		{"image.iso", iso, "GET", "/image.iso", "", 200, "0123456789"},
		{"image.iso range", iso, "GET", "/image.iso", "bytes=3-5", 206, "345"},
		{"image.iso suffix range", iso, "GET", "/image.iso", "bytes=-2", 206, "89"},
		{"image.iso range outside", iso, "GET", "/image.iso", "bytes=20-30", 416, ""},
		{"directory", iso, "GET", "/iso/EFI/BOOT", "", 404, ""},
		{"directory slash", iso, "GET", "/iso/EFI/BOOT/", "", 404, ""},
		{"tree root", iso, "GET", "/iso/", "", 404, ""},
		{"site root", iso, "GET", "/", "", 404, ""},
		{"no tree named", iso, "GET", "/iso", "", 404, ""},
		{"dot-dot", iso, "GET", "/iso/../image.iso", "", 404, ""},
		{"dot-dot out", iso, "GET", "/iso/../../etc/passwd", "", 404, ""},
		{"dot", iso, "GET", "/iso/./images/pxeboot/vmlinuz", "", 404, ""},
		{"double slash", iso, "GET", "/iso//images/pxeboot/vmlinuz", "", 404, ""},
		{"missing", iso, "GET", "/iso/nothing", "", 404, ""},
		{"outside the three", iso, "GET", "/answer/ks.cfg", "", 404, ""},
		{"post", iso, "POST", "/iso/images/pxeboot/vmlinuz", "", 405, ""},
		{"put image.iso", iso, "PUT", "/image.iso", "", 405, ""},
		{"no ISO file", Media{ISO: img}, "GET", "/image.iso", "", 404, ""},
		{"ISO file gone", Media{ISOFile: filepath.Join(dir, "gone.iso")}, "GET", "/image.iso", "", 404, ""},
		{"ISO file a FIFO", Media{ISOFile: fifo}, "GET", "/image.iso", "", 500, ""},
		{"ISO file a directory", Media{ISOFile: dir}, "GET", "/image.iso", "", 500, ""},
		{"no ISO, no tree", Media{Netboot: nb}, "GET", "/iso/images/pxeboot/vmlinuz", "", 404, ""},
		{"prefix: boot from netboot", full, "GET", "/profiles/deb/boot/debian-installer/amd64/linux", "", 200, "nb-kernel"},
		{"prefix: link inside netboot", full, "GET", "/profiles/deb/boot/linux", "", 200, "nb-kernel"},
		{"prefix: link out of netboot", full, "GET", "/profiles/deb/boot/escape", "", 404, ""},
		{"prefix: absolute link", full, "GET", "/profiles/deb/boot/absolute", "", 404, ""},
		{"prefix: netboot directory", full, "GET", "/profiles/deb/boot/debian-installer", "", 404, ""},
		{"prefix: iso", full, "GET", "/profiles/deb/iso/images/pxeboot/vmlinuz", "", 200, "iso-kernel"},
		{"prefix: image.iso", full, "GET", "/profiles/deb/image.iso", "bytes=0-0", 206, "0"},
		{"prefix: not under it", full, "GET", "/iso/images/pxeboot/vmlinuz", "", 404, ""},
		{"prefix: dot-dot out", full, "GET", "/profiles/deb/../deb/image.iso", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.rng != "" {
				r.Header.Set("Range", tt.rng)
			}
			w := httptest.NewRecorder()
			_, _ = within(t, 5*time.Second, func() (struct{}, error) {
				tt.m.Handler().ServeHTTP(w, r)
				return struct{}{}, nil
			})
			assert.Equal(t, tt.code, w.Code, w.Body.String())
			if tt.code < 300 {
				assert.Equal(t, tt.body, w.Body.String())
			}
			assert.NotContains(t, w.Body.String(), dir, "no path on disk in answers")
			assert.NotContains(t, w.Body.String(), "secret")
			assert.NotContains(t, w.Body.String(), "<a href", "no listings")
			if tt.code == 405 {
				assert.Equal(t, "GET, HEAD", w.Header().Get("Allow"))
			}
		})
	}
}

// TestMediaHandlerISOFileOverHTTP: image.iso through a real server, where
// the file goes out with sendfile(2), with ranges.
func TestMediaHandlerISOFileOverHTTP(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.iso")
	data := []byte(strings.Repeat("0123456789abcdef", 64<<10)) // 1 MiB
	require.NoError(t, os.WriteFile(p, data, 0o644))
	srv := httptest.NewServer(Media{ISOFile: p}.Handler())
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/image.iso", nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "bytes 1000-1999/1048576", resp.Header.Get("Content-Range"))
	assert.Equal(t, data[1000:2000], body)

	resp, err = srv.Client().Get(srv.URL + "/image.iso")
	require.NoError(t, err)
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, data, body)
}

// TestOpenNetbootDir: a netboot directory is confined to itself, serves
// regular files only and never blocks.
func TestOpenNetbootDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "nb")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "debian-installer/amd64"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "debian-installer/amd64/linux"), []byte("k"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "debian-installer/amd64/initrd.gz"), []byte("i"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(parent, "outside"), []byte("outside"), 0o644))
	require.NoError(t, os.Symlink("../outside", filepath.Join(dir, "up")))
	require.NoError(t, os.Symlink(filepath.Join(parent, "outside"), filepath.Join(dir, "abs")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "debian-installer/amd64/linux"), filepath.Join(dir, "abs-inside")))
	require.NoError(t, os.Symlink("debian-installer/amd64/linux", filepath.Join(dir, "linux")))
	require.NoError(t, os.Symlink("../../up", filepath.Join(dir, "debian-installer/amd64/chain")))
	require.NoError(t, os.Symlink("debian-installer", filepath.Join(dir, "di")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	nb, err := OpenNetboot(dir)
	require.NoError(t, err)

	tests := []struct {
		name     string
		data     string // "" = refused
		notExist bool   // errors.Is fs.ErrNotExist
		fileType bool   // errors.Is ErrFileType
		invalid  bool   // errors.Is fs.ErrInvalid
	}{
		{name: "debian-installer/amd64/linux", data: "k"},
		{name: "linux", data: "k"},
		{name: "di/amd64/linux", data: "k"},
		{name: "up", notExist: true},
		{name: "abs", notExist: true},
		{name: "abs-inside", notExist: true},
		{name: "debian-installer/amd64/chain", notExist: true},
		{name: "missing", notExist: true},
		{name: "fifo", notExist: true, fileType: true},
		{name: ".", notExist: true, fileType: true},
		{name: "debian-installer", notExist: true, fileType: true},
		{name: "di", notExist: true, fileType: true},
		{name: "../nb/linux", invalid: true},
		{name: "/etc/passwd", invalid: true},
		{name: "linux/", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := within(t, 5*time.Second, func() (fs.File, error) { return nb.Open(tt.name) })
			st, serr := fs.Stat(nb, tt.name)
			if tt.data != "" {
				require.NoError(t, err)
				defer f.Close()
				assert.IsType(t, &os.File{}, f, "an *os.File reaches sendfile")
				b, err := io.ReadAll(f)
				require.NoError(t, err)
				assert.Equal(t, tt.data, string(b))
				require.NoError(t, serr)
				assert.True(t, st.Mode().IsRegular())
				return
			}
			require.Error(t, err)
			assert.Nil(t, f)
			for _, e := range []error{err, serr} {
				assert.Equal(t, tt.notExist, errors.Is(e, fs.ErrNotExist), "ErrNotExist: %v", e)
				assert.Equal(t, tt.fileType, errors.Is(e, ErrFileType), "ErrFileType: %v", e)
				assert.Equal(t, tt.invalid, errors.Is(e, fs.ErrInvalid), "ErrInvalid: %v", e)
				assert.NotContains(t, e.Error(), parent, "the fs name, not the path on disk")
				var pe *fs.PathError
				require.ErrorAs(t, e, &pe)
				assert.Equal(t, tt.name, pe.Path)
			}
			assert.Contains(t, err.Error(), "open "+tt.name)
		})
	}

	_, err = fs.ReadDir(nb, ".")
	assert.ErrorIs(t, err, ErrFileType, "no listing")
	_, err = fs.ReadDir(nb, "debian-installer")
	assert.Error(t, err)
	_, err = fs.Glob(nb, "*")
	assert.NoError(t, err) // Glob without a listing finds nothing
	matches, _ := fs.Glob(nb, "*")
	assert.Empty(t, matches)

	d, err := NetbootDistro("debian-12", nb)
	require.NoError(t, err)
	assert.Equal(t, "debian-installer/amd64/linux", d.NetbootKernel)

	c, ok := nb.(io.Closer)
	require.True(t, ok)
	require.NoError(t, c.Close())
	_, err = nb.Open("linux")
	assert.Error(t, err, "closed")
}

func TestDistroLoaders(t *testing.T) {
	treeISO := openISO(t, tree{files: map[string]string{"EFI/BOOT/BOOTX64.EFI": "tree-shim", "EFI/BOOT/grubx64.efi": "tree-grub"}})
	elTorito := openISO(t, tree{files: map[string]string{"a": "b"}, efiRaw: handFAT().img})
	tests := []struct {
		name       string
		img        *Image
		d          Distro
		shim, grub string // contents read from Loaders.FS; "" = not read
		vendor     bool
		err        error
		errText    string
	}{
		{name: "tree", img: treeISO, d: Distro{Family: FamilyAnaconda, Shim: "EFI/BOOT/BOOTX64.EFI", GRUB: "EFI/BOOT/grubx64.efi", EFISource: EFIFromTree},
			shim: "tree-shim", grub: "tree-grub", vendor: true},
		{name: "ubuntu: vendor pair", img: treeISO, d: Distro{Family: FamilySubiquity, Shim: "EFI/BOOT/BOOTX64.EFI", GRUB: "EFI/BOOT/grubx64.efi", EFISource: EFIFromTree},
			shim: "tree-shim", grub: "tree-grub", vendor: true},
		{name: "debian: the host's pair will do", img: treeISO, d: Distro{Family: FamilyDebianInstaller, Shim: "EFI/BOOT/BOOTX64.EFI", GRUB: "EFI/BOOT/grubx64.efi", EFISource: EFIFromTree},
			shim: "tree-shim", grub: "tree-grub", vendor: false},
		{name: "El Torito image", img: elTorito, d: Distro{Family: FamilyAnaconda, Shim: "EFI/BOOT/BOOTX64.EFI", GRUB: "EFI/BOOT/grubx64.efi", EFISource: EFIFromElTorito},
			shim: strings.Repeat(hbShim, 140)[:700], grub: hbGrub, vendor: true},
		{name: "no loaders", img: treeISO, d: Distro{Family: FamilyAnaconda}, vendor: true},
		{name: "El Torito image missing", img: treeISO, d: Distro{Family: FamilyAnaconda, Shim: "EFI/BOOT/BOOTX64.EFI", EFISource: EFIFromElTorito},
			err: ErrNoBootImage, errText: "the boot loaders are in the UEFI boot image"},
		{name: "no image", img: nil, d: Distro{Family: FamilyAnaconda}, errText: "no image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := tt.d.Loaders(tt.img)
			if tt.errText != "" {
				require.ErrorContains(t, err, tt.errText)
				if tt.err != nil {
					assert.ErrorIs(t, err, tt.err)
				}
				assert.Equal(t, Loaders{}, l)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, l.FS)
			assert.Equal(t, tt.d.Shim, l.Shim)
			assert.Equal(t, tt.d.GRUB, l.GRUB)
			assert.Equal(t, tt.vendor, l.Vendor)
			if tt.shim != "" {
				b, err := fs.ReadFile(l.FS, l.Shim)
				require.NoError(t, err)
				assert.Equal(t, tt.shim, string(b))
				b, err = fs.ReadFile(l.FS, l.GRUB)
				require.NoError(t, err)
				assert.Equal(t, tt.grub, string(b))
			}
		})
	}

	// With Detect: Kylin-like images keep shim and GRUB in El Torito only.
	d, err := Detect(elTorito)
	if err == nil { // the bare tree is not an installer; DetectAs names it
		t.Fatalf("detected %+v", d)
	}
	d, err = DetectAs(elTorito, "kylin-v10")
	require.NoError(t, err)
	require.Equal(t, EFIFromElTorito, d.EFISource)
	l, err := d.Loaders(elTorito)
	require.NoError(t, err)
	b, err := fs.ReadFile(l.FS, l.GRUB)
	require.NoError(t, err)
	assert.Equal(t, hbGrub, string(b))
	assert.True(t, l.Vendor)
}

// FuzzMediaHandler: whatever path a client sends, Media.Handler answers
// without panicking, serves only the files the trees hold (never a
// listing), and only for clean paths.
func FuzzMediaHandler(f *testing.F) {
	isoFile := filepath.Join(f.TempDir(), "disk.iso")
	require.NoError(f, os.WriteFile(isoFile, []byte("iso-bytes"), 0o644))
	iso := fstest.MapFS{"images/vmlinuz": {Data: []byte("iso-kernel")}, "dir/index.html": {Data: []byte("page")}}
	nb := fstest.MapFS{"debian-installer/amd64/linux": {Data: []byte("nb-kernel")}}
	h := Media{Prefix: "p/", ISO: iso, ISOFile: isoFile, Netboot: nb}.Handler()
	contents := map[string]bool{"iso-bytes": true, "iso-kernel": true, "page": true, "nb-kernel": true}
	for _, s := range []string{"/p/iso/images/vmlinuz", "/p/boot/debian-installer/amd64/linux", "/p/image.iso",
		"/p/iso/dir/", "/p/iso/../image.iso", "/p//iso/images/vmlinuz", "/p/iso/dir/index.html", "/p/iso/%2e%2e/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = p
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code/100 == 2 {
			rel := strings.TrimPrefix(p, "/p/")
			if !strings.HasPrefix(p, "/p/") || !fs.ValidPath(rel) {
				t.Fatalf("%q: %d for an unclean path", p, w.Code)
			}
			if !contents[w.Body.String()] {
				t.Fatalf("%q: served %q", p, w.Body.String())
			}
		}
	})
}
