package isosrc

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// readTxtar reads one of testdata/distros (format: [testutil.ReadTxtar]).
func readTxtar(t testing.TB, p string) tree {
	t.Helper()
	ar := testutil.ReadTxtar(t, p)
	tr := tree{files: make(map[string]string, len(ar.Files)), links: ar.Links}
	for name, data := range ar.Files {
		tr.files[name] = string(data)
	}
	return tr
}

// TestDetectTargets builds one ISO per supported release from its
// reconstructed metadata and compares Detect's answer with a golden file.
func TestDetectTargets(t *testing.T) {
	cases, err := filepath.Glob("testdata/distros/*.txtar")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(cases), 20)
	wantOSID := map[string]string{
		"rocky-9.3-near": "rocky-9.0",
	}
	for _, c := range cases {
		name := strings.TrimSuffix(filepath.Base(c), ".txtar")
		t.Run(name, func(t *testing.T) {
			tr := readTxtar(t, c)
			hasEFI := false
			for p := range tr.files {
				hasEFI = hasEFI || strings.HasPrefix(strings.ToUpper(p), "EFI/")
			}
			if !hasEFI { // shim and GRUB only inside the El Torito image
				tr.efi = map[string]string{"EFI/BOOT/BOOTX64.EFI": "shim", "EFI/BOOT/grubx64.efi": "grub"}
			}
			img := openISO(t, tr)
			d, err := Detect(img)
			require.NoError(t, err)

			id := strings.TrimSuffix(strings.TrimSuffix(name, "-dvd"), "-netinst")
			if w, ok := wantOSID[name]; ok {
				id = w
			}
			assert.Equal(t, id, d.OSID)
			assert.NotEmpty(t, d.Kernel)
			assert.NotEmpty(t, d.Initrd)
			assert.NotEmpty(t, d.Shim)
			assert.NotEmpty(t, d.GRUB)
			for _, p := range []string{d.Kernel, d.Initrd, d.Stage2} {
				if p != "" {
					_, err := img.Stat(p)
					assert.NoError(t, err, p)
				}
			}
			got, err := json.MarshalIndent(d, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := strings.TrimSuffix(c, ".txtar") + ".golden.json"
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create %s", golden)
			assert.Equal(t, string(want), string(got))
		})
	}
}

func TestDetectUnknown(t *testing.T) {
	img := openISO(t, tree{files: map[string]string{"README": "x", "tools/a.exe": "y"}})
	_, err := Detect(img)
	require.ErrorIs(t, err, ErrUnknownDistro)
	var ue *UnknownDistroError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, []string{"README", "tools/"}, ue.Found)
	assert.Contains(t, err.Error(), "README")

	// An Ubuntu-looking .disk/info without casper is not Debian.
	_, err = Detect(fstest.MapFS{".disk/info": {Data: []byte(`Linux Mint 21 "Vanessa" - Release amd64 20220726`)}})
	assert.ErrorIs(t, err, ErrUnknownDistro)
}

func TestDetectAs(t *testing.T) {
	tr := readTxtar(t, "testdata/distros/rocky-9.0.txtar")
	delete(tr.files, ".treeinfo")
	delete(tr.files, ".discinfo")
	delete(tr.files, "media.repo")
	fsys := fstest.MapFS{}
	for p, c := range tr.files {
		fsys[p] = &fstest.MapFile{Data: []byte(c)}
	}
	d, err := DetectAs(fsys, "alma-8.5")
	require.NoError(t, err)
	assert.Equal(t, "alma-8.5", d.OSID)
	assert.Equal(t, FamilyAnaconda, d.Family)
	assert.Equal(t, "images/pxeboot/vmlinuz", d.Kernel)
	assert.Equal(t, "images/install.img", d.Stage2)
	_, err = DetectAs(fsys, "windows-11")
	assert.ErrorContains(t, err, "unknown OS identifier")
}

func TestMatchOSID(t *testing.T) {
	for _, c := range []struct{ key, version, id, how string }{
		{"rocky", "9.0", "rocky-9.0", "exact"},
		{"rocky", "9.3", "rocky-9.0", "same-major"},
		{"rocky", "8.10", "rocky-8.5", "same-major"},
		{"rocky", "8.4", "rocky-8.5", "same-major"},
		{"centos", "7", "centos-7.9", "same-major"},
		{"centos", "7.9.2009", "centos-7.9", "exact"},
		{"openeuler", "22.03-LTS", "openeuler-22.03", "exact"},
		{"openeuler", "22.03-LTS-SP1", "openeuler-22.03", "exact"},
		{"kylin", "V10", "kylin-v10", "exact"},
		{"uos", "20", "uos-20", "exact"},
		{"ubuntu", "22.04.4", "ubuntu-22.04", "exact"},
		{"ubuntu", "23.10", "", ""},
		{"debian", "12.7.0", "debian-12", "exact"},
		{"debian", "8.11.0", "", ""},
		{"fedora", "39", "", ""},
		{"", "9.0", "", ""},
	} {
		id, how := matchOSIDFor(c.key, c.version)
		assert.Equal(t, c.id, id, "%s %s", c.key, c.version)
		assert.Equal(t, c.how, how, "%s %s", c.key, c.version)
	}
}

func TestParseDiskInfo(t *testing.T) {
	for _, c := range []struct {
		in                            string
		version, codename, arch, kind string
	}{
		{`Ubuntu-Server 22.04.4 LTS "Jammy Jellyfish" - Release amd64 (20240220)`, "22.04.4", "Jammy Jellyfish", "amd64", "Release"},
		{`Ubuntu 24.04 LTS "Noble Numbat" - Release amd64 (20240424)`, "24.04", "Noble Numbat", "amd64", "Release"},
		{`Debian GNU/Linux 12.7.0 "Bookworm" - Official amd64 NETINST with firmware 20240831-10:40`, "12.7.0", "Bookworm", "amd64", "Official"},
		{`Debian GNU/Linux 9.13.0 "Stretch" - Official arm64 DVD Binary-1 20200718-11:07`, "9.13.0", "Stretch", "arm64", "Official"},
	} {
		di, ok := parseDiskInfo(c.in)
		require.True(t, ok, c.in)
		assert.Equal(t, c.version, di.version)
		assert.Equal(t, c.codename, di.codename)
		assert.Equal(t, c.arch, di.arch)
		assert.Equal(t, c.kind, di.kind)
	}
	_, ok := parseDiskInfo("garbage")
	assert.False(t, ok)
}

func TestParseINI(t *testing.T) {
	c := parseINI("top = 1\n[General]\n; comment\nName = x = y\n# c\n[stage2]\nmainimage=images/install.img\nbroken line\n")
	assert.Equal(t, "1", c.get("", "top"))
	assert.Equal(t, "x = y", c.get("general", "name"))
	assert.Equal(t, "images/install.img", c.get("stage2", "mainimage"))
}

// FuzzDetect: metadata files are untrusted too.
func FuzzDetect(f *testing.F) {
	for _, name := range []string{"rocky-9.0", "centos-7.9", "ubuntu-22.04", "debian-12-netinst"} {
		tr := readTxtar(f, "testdata/distros/"+name+".txtar")
		f.Add(tr.files[".treeinfo"], tr.files[".discinfo"], tr.files[".disk/info"], tr.files["dists/bookworm/Release"])
	}
	f.Fuzz(func(t *testing.T, treeinfo, discinfo, diskinfo, release string) {
		fsys := fstest.MapFS{
			"images/pxeboot/vmlinuz": {Data: []byte("k")},
			"casper/vmlinuz":         {Data: []byte("k")},
			"dists/x/Release":        {Data: []byte(release)},
		}
		if treeinfo != "" {
			fsys[".treeinfo"] = &fstest.MapFile{Data: []byte(treeinfo)}
			fsys[".discinfo"] = &fstest.MapFile{Data: []byte(discinfo)}
		}
		if diskinfo != "" {
			fsys[".disk/info"] = &fstest.MapFile{Data: []byte(diskinfo)}
		}
		d, err := Detect(fsys)
		if err == nil {
			_, err = json.Marshal(d)
			require.NoError(t, err)
		}
	})
}

// netbootTarGz packs Debian's netboot kernel and initrd layout.
func netbootTarGz(t *testing.T, files map[string]string, links map[string]string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}))
	for p, c := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: "./" + p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))}))
		_, err := tw.Write([]byte(c))
		require.NoError(t, err)
	}
	for p, target := range links {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: "./" + p, Typeflag: tar.TypeSymlink, Linkname: target}))
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	p := filepath.Join(t.TempDir(), "netboot.tar.gz")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

func TestDebianNetboot(t *testing.T) {
	img := openISO(t, readTxtar(t, "testdata/distros/debian-12-netinst.txtar"))
	d, err := Detect(img)
	require.NoError(t, err)
	assert.Contains(t, d.Warnings, debianCDInitrd)

	p := netbootTarGz(t, map[string]string{
		"debian-installer/amd64/linux":     "netboot-kernel",
		"debian-installer/amd64/initrd.gz": "netboot-initrd",
		"version.info":                     "Debian version:  12 (bookworm)\nInstaller build: 20230607+deb12u5\n",
	}, map[string]string{"pxelinux.0": "debian-installer/amd64/pxelinux.0"})
	nb, err := OpenNetboot(p)
	require.NoError(t, err)
	d, err = d.WithNetboot(nb)
	require.NoError(t, err)
	assert.Equal(t, "debian-installer/amd64/linux", d.NetbootKernel)
	assert.Equal(t, "debian-installer/amd64/initrd.gz", d.NetbootInitrd)
	assert.NotContains(t, d.Warnings, debianCDInitrd)
	k, err := fs.ReadFile(nb, d.NetbootKernel)
	require.NoError(t, err)
	assert.Equal(t, "netboot-kernel", string(k))

	// A netboot source of another release is accepted with a warning.
	d11, err := Detect(openISO(t, readTxtar(t, "testdata/distros/debian-11-dvd.txtar")))
	require.NoError(t, err)
	d11, err = d11.WithNetboot(nb)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(d11.Warnings, "\n"), "not for bullseye")

	_, err = OpenNetboot(filepath.Join(t.TempDir(), "missing.tar.gz"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
	bad := filepath.Join(t.TempDir(), "bad.tar.gz")
	require.NoError(t, os.WriteFile(bad, []byte("\x1f\x8bnot gzip"), 0o644))
	_, err = OpenNetboot(bad)
	assert.Error(t, err)
	_, err = d.WithNetboot(fstest.MapFS{"x": {}})
	require.Error(t, err)
}
