package isosrc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// tree describes files to put into a test ISO.
type tree struct {
	files    map[string]string // path -> content
	links    map[string]string // path -> symlink target
	modes    map[string]os.FileMode
	efi      map[string]string // files inside a FAT12 EFI boot image (images/efiboot.img)
	efiKB    int               // size of that image; default 1440
	efiRaw   []byte            // instead of efi: these bytes are images/efiboot.img
	bios     bool              // add isolinux/isolinux.bin as El Torito BIOS entry
	noRR     bool              // no Rock Ridge
	noJoliet bool
	args     []string // extra xorriso -as mkisofs arguments
}

func needTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed (Debian package %s)", n, map[string]string{
				"xorriso": "xorriso", "mkfs.vfat": "dosfstools", "mcopy": "mtools", "mmd": "mtools",
			}[n])
		}
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
}

// writeTree writes tr's files and links under dir.
func writeTree(t testing.TB, dir string, tr tree) {
	t.Helper()
	for p, c := range tr.files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		mode := os.FileMode(0o644)
		if m, ok := tr.modes[p]; ok {
			mode = m
		}
		require.NoError(t, os.WriteFile(full, []byte(c), mode))
		require.NoError(t, os.Chmod(full, mode))
	}
	for p, target := range tr.links {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.Symlink(target, full))
	}
}

// buildISO builds an ISO from tr with xorriso and returns its path.
func buildISO(t testing.TB, tr tree) string {
	t.Helper()
	needTool(t, "xorriso")
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	require.NoError(t, os.MkdirAll(root, 0o755))
	writeTree(t, root, tr)
	args := []string{"-as", "mkisofs", "-quiet", "-V", "PXEKIT_TEST", "-o", filepath.Join(tmp, "test.iso")}
	if tr.noRR {
		args = append(args, "--norock")
	} else {
		args = append(args, "-R")
	}
	if !tr.noJoliet {
		args = append(args, "-J", "-joliet-long")
	}
	if tr.bios {
		full := filepath.Join(root, "isolinux", "isolinux.bin")
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, make([]byte, 4096), 0o644))
		args = append(args, "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
			"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table")
	}
	if tr.efiRaw != nil {
		img := filepath.Join(root, "images", "efiboot.img")
		require.NoError(t, os.MkdirAll(filepath.Dir(img), 0o755))
		require.NoError(t, os.WriteFile(img, tr.efiRaw, 0o644))
		if tr.bios {
			args = append(args, "-eltorito-alt-boot")
		}
		args = append(args, "-e", "images/efiboot.img", "-no-emul-boot")
	}
	if tr.efi != nil {
		needTool(t, "mkfs.vfat", "mcopy", "mmd")
		img := filepath.Join(root, "images", "efiboot.img")
		require.NoError(t, os.MkdirAll(filepath.Dir(img), 0o755))
		kb := tr.efiKB
		if kb == 0 {
			kb = 1440
		}
		run(t, "mkfs.vfat", "-C", "-n", "EFIBOOT", img, fmt.Sprint(kb))
		src := filepath.Join(tmp, "efisrc")
		made := map[string]bool{}
		for p, c := range tr.efi {
			dir := ""
			for _, el := range strings.Split(filepath.Dir(p), "/") {
				dir += "/" + el
				if !made[dir] {
					run(t, "mmd", "-i", img, "::"+dir)
					made[dir] = true
				}
			}
			f := filepath.Join(src, filepath.FromSlash(p))
			require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
			require.NoError(t, os.WriteFile(f, []byte(c), 0o644))
			run(t, "mcopy", "-i", img, f, "::/"+p)
		}
		if tr.bios {
			args = append(args, "-eltorito-alt-boot")
		}
		args = append(args, "-e", "images/efiboot.img", "-no-emul-boot")
	}
	args = append(args, tr.args...)
	args = append(args, root)
	run(t, "xorriso", args...)
	return filepath.Join(tmp, "test.iso")
}

// openISO builds and opens tr, closing the image at test end.
func openISO(t testing.TB, tr tree) *Image {
	t.Helper()
	img, err := Open(buildISO(t, tr), Limits{})
	require.NoError(t, err)
	t.Cleanup(func() { img.Close() })
	return img
}

// The rich image is built once per test binary: xorriso and mkfs take most
// of the suite's time otherwise.
var (
	richOnce sync.Once
	richPath string
	richErr  error
	richDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if richDir != "" {
		os.RemoveAll(richDir)
	}
	os.Exit(code)
}

// richISO returns the path of the shared richTree image.
func richISO(t testing.TB) string {
	t.Helper()
	needTool(t, "xorriso", "mkfs.vfat", "mcopy")
	richOnce.Do(func() {
		richDir, richErr = os.MkdirTemp("", "isosrc-rich-")
		if richErr != nil {
			return
		}
		sub := &onceTB{TB: t, dir: richDir}
		func() {
			defer func() {
				if p := recover(); p != nil {
					richErr = fmt.Errorf("building rich ISO: %v", p)
				}
			}()
			richPath = buildISO(sub, richTree())
		}()
	})
	require.NoError(t, richErr)
	return richPath
}

// onceTB lends buildISO a temp dir that outlives the first test.
type onceTB struct {
	testing.TB
	dir string
	n   int
}

func (o *onceTB) TempDir() string {
	o.n++
	d := filepath.Join(o.dir, fmt.Sprint(o.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		panic(err)
	}
	return d
}

func openRich(t testing.TB) *Image {
	t.Helper()
	img, err := Open(richISO(t), Limits{})
	require.NoError(t, err)
	t.Cleanup(func() { img.Close() })
	return img
}
