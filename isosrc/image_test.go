package isosrc

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// richTree is the Rock Ridge + Joliet image most tests read: dot files,
// Debian-style symlinks, a deep tree, long and Unicode names.
func richTree() tree {
	long := strings.Repeat("x", 100) + ".rpm"
	files := map[string]string{
		".treeinfo":                      "[general]\nname = test\n",
		".discinfo":                      "1600000000.0\n7.9\nx86_64\n",
		".disk/info":                     "Debian GNU/Linux 12.2.0 \"Bookworm\" - Official amd64 NETINST 20231007-10:28",
		"images/pxeboot/vmlinuz":         strings.Repeat("kernel", 5000),
		"images/pxeboot/initrd.img":      strings.Repeat("initrd", 20000),
		"dists/bookworm/Release":         "Codename: bookworm\n",
		"BaseOS/Packages/" + long:        "rpm",
		"a/b/c/d/e/f/g/h/i/j/k/deep.txt": "deep",
		"Mixed/CaseName.TXT":             "case",
		"unicode/日本語.txt":                "utf8",
		"empty":                          "",
	}
	for i := range 300 {
		files[fmt.Sprintf("BaseOS/Packages/pkg-%04d-1.0-1.el9.x86_64.rpm", i)] = fmt.Sprint(i)
	}
	return tree{
		files: files,
		modes: map[string]os.FileMode{".discinfo": 0o600},
		links: map[string]string{
			"dists/stable": "bookworm",
			"debian":       ".",
			"vmlinuz-link": "images/pxeboot/vmlinuz",
			"abs-link":     "/images/pxeboot/initrd.img",
			"BaseOS/up":    "../images",
			"loop1":        "loop2",
			"loop2":        "loop1",
			"dangling":     "nowhere",
		},
		bios: true,
		efi:  map[string]string{"EFI/BOOT/BOOTX64.EFI": "shim-in-fat", "EFI/BOOT/grubx64.efi": "grub-in-fat"},
	}
}

func TestOpenRockRidge(t *testing.T) {
	tr := richTree()
	img := openRich(t)
	assert.Equal(t, "rockridge", img.NameSource())
	assert.Equal(t, "PXEKIT_TEST", img.Label())

	for p, want := range tr.files {
		got, err := img.ReadFile(p)
		require.NoError(t, err, p)
		assert.Equal(t, want, string(got), p)
	}
	fi, err := img.Stat(".discinfo")
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode())

	ents, err := img.ReadDir(".")
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Contains(t, names, ".treeinfo")
	assert.Contains(t, names, ".discinfo")
	assert.NotContains(t, names, "rr_moved", "Rock Ridge relocation directory hidden")
	assert.NotContains(t, names, ".rr_moved")
	assert.IsIncreasing(t, names)
	t.Log(names)
}

func TestSymlinks(t *testing.T) {
	img := openRich(t)
	for _, p := range []string{"dists/stable/Release", "debian/dists/stable/Release", "debian/debian/.disk/info"} {
		_, err := img.ReadFile(p)
		assert.NoError(t, err, p)
	}
	k, err := img.ReadFile("vmlinuz-link")
	require.NoError(t, err)
	assert.Equal(t, 30000, len(k))
	_, err = img.ReadFile("abs-link")
	assert.NoError(t, err)
	_, err = img.ReadFile("BaseOS/up/pxeboot/vmlinuz")
	assert.NoError(t, err)

	target, err := img.ReadLink("dists/stable")
	require.NoError(t, err)
	assert.Equal(t, "bookworm", target)
	li, err := img.Lstat("debian")
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, li.Mode().Type())
	si, err := img.Stat("dists/stable")
	require.NoError(t, err)
	assert.True(t, si.IsDir())

	_, err = img.Open("loop1")
	assert.ErrorIs(t, err, ErrSymlinkLoop)
	_, err = img.Open("dangling")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = img.Open("/abs")
	assert.ErrorIs(t, err, fs.ErrInvalid)
}

func TestFSTest(t *testing.T) {
	tr := richTree()
	delete(tr.links, "loop1")
	delete(tr.links, "loop2")
	delete(tr.links, "dangling")
	tr.efi = nil // a 1.44 MB image read byte by byte by fstest is slow
	for p := range tr.files {
		if strings.HasPrefix(p, "BaseOS/Packages/pkg-0") && !strings.HasPrefix(p, "BaseOS/Packages/pkg-000") {
			delete(tr.files, p) // keep fstest's repeated reads short
		} else if len(tr.files[p]) > 512 {
			tr.files[p] = tr.files[p][:512] // fstest reads byte by byte
		}
	}
	img := openISO(t, tr)
	require.NoError(t, fstest.TestFS(img, ".treeinfo", "images/pxeboot/vmlinuz", "dists/stable", "a/b/c/d/e/f/g/h/i/j/k/deep.txt"))
}

// TestAgreesWithDiskfs cross-checks the index with go-diskfs's own walk on
// everything go-diskfs gets right (non-dot names, no links).
func TestAgreesWithDiskfs(t *testing.T) {
	path := richISO(t)
	img, err := Open(path, Limits{})
	require.NoError(t, err)
	defer img.Close()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	dfs, err := iso9660.Read(newStorage(f, st.Size()), st.Size(), 0, 0)
	require.NoError(t, err)
	checked := 0
	err = fs.WalkDir(dfs, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if strings.HasPrefix(p, "BaseOS/Packages/pkg-") && !strings.HasSuffix(p, "0-1.0-1.el9.x86_64.rpm") {
			return nil // go-diskfs re-reads the directory per open: sample
		}
		if _, err := img.Stat(dotted(p)); err == nil {
			return nil // go-diskfs strips the leading dot (".treeinfo" -> "treeinfo")
		}
		want, err := fs.ReadFile(dfs, p)
		if err != nil {
			return nil
		}
		got, err := img.ReadFile(p)
		if assert.NoError(t, err, p) {
			assert.Equal(t, sha256.Sum256(want), sha256.Sum256(got), p)
		}
		checked++
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, checked, 10)
}

func TestJolietOnlyAndPlain(t *testing.T) {
	files := map[string]string{
		"boot/grub/grub.cfg":          "menuentry",
		"EFI/boot/bootx64.efi":        "shim",
		"EFI/boot/grubx64.efi":        "grub",
		"dists/noble/Release":         "Codename: noble",
		"pool/main/a/b.deb":           "deb",
		"A/SUB/x.txt":                 "a",
		"B/SUB/x.txt":                 "b",
		"casper/vmlinuz":              "k",
		"a-rather-long-file-name.txt": "long",
	}
	t.Run("joliet", func(t *testing.T) {
		img := openISO(t, tree{files: files, noRR: true})
		assert.Equal(t, "joliet", img.NameSource())
		ents, err := img.ReadDir("boot/grub")
		require.NoError(t, err)
		require.Len(t, ents, 1)
		assert.Equal(t, "grub.cfg", ents[0].Name())
		for p, want := range files {
			got, err := img.ReadFile(p)
			require.NoError(t, err, p)
			assert.Equal(t, want, string(got), p)
		}
		require.NoError(t, fstest.TestFS(img, "boot/grub/grub.cfg"))
	})
	t.Run("plain", func(t *testing.T) {
		img := openISO(t, tree{files: map[string]string{"A/SUB/X.TXT": "a", "B/SUB/X.TXT": "b"}, noRR: true, noJoliet: true})
		assert.Equal(t, "iso9660", img.NameSource())
		a, err := img.ReadFile("A/SUB/X.TXT")
		require.NoError(t, err)
		b, err := img.ReadFile("B/SUB/X.TXT")
		require.NoError(t, err)
		assert.Equal(t, "a", string(a))
		assert.Equal(t, "b", string(b))
	})
}

func TestConcurrentReaders(t *testing.T) {
	img := openRich(t)
	want, err := img.ReadFile("images/pxeboot/initrd.img")
	require.NoError(t, err)
	shared, err := img.OpenFile("images/pxeboot/initrd.img")
	require.NoError(t, err)
	defer shared.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			buf := make([]byte, len(want))
			if i%2 == 0 { // shared handle, positioned reads
				for off := 0; off < len(want); off += 1468 {
					end := min(off+1468, len(want))
					if _, err := shared.ReadAt(buf[off:end], int64(off)); err != nil {
						errs <- err
						return
					}
				}
			} else { // own handle, sequential reads
				f, err := img.Open("images/pxeboot/initrd.img")
				if err != nil {
					errs <- err
					return
				}
				defer f.Close()
				if _, err := io.ReadFull(f, buf); err != nil {
					errs <- err
					return
				}
			}
			if !bytes.Equal(buf, want) {
				errs <- errors.New("content mismatch")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHTTPRanges(t *testing.T) {
	img := openRich(t)
	srv := httptest.NewServer(http.FileServerFS(img))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/images/pxeboot/vmlinuz", nil)
	req.Header.Set("Range", "bytes=6-17")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "kernelkernel", string(body))

	resp2, err := http.Get(srv.URL + "/.treeinfo")
	require.NoError(t, err)
	defer resp2.Body.Close()
	assert.Equal(t, http.StatusOK, resp2.StatusCode)
}

// TestHandler: the sendfile handler serves exact bytes and ranges, never
// bytes of the image beyond the file, and hands directories to FileServer.
func TestHandler(t *testing.T) {
	img := openRich(t)
	srv := httptest.NewServer(img.Handler())
	defer srv.Close()
	want, err := img.ReadFile("images/pxeboot/initrd.img")
	require.NoError(t, err)
	get := func(p, rng string) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body), resp.Header
	}
	code, body, _ := get("/images/pxeboot/initrd.img", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, string(want), body)
	code, body, _ = get("/images/pxeboot/initrd.img", "bytes=100-1099")
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, string(want[100:1100]), body)
	code, body, _ = get("/images/pxeboot/initrd.img", fmt.Sprintf("bytes=%d-", len(want)-10))
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, string(want[len(want)-10:]), body, "nothing past the file's end")
	code, body, h := get("/images/pxeboot/initrd.img", "bytes=0-9,20-29")
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Contains(t, h.Get("Content-Type"), "multipart/byteranges")
	assert.Contains(t, body, string(want[20:30]))
	code, body, _ = get("/.treeinfo", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "[general]\nname = test\n", body)
	code, body, _ = get("/dists/stable/Release", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "Codename: bookworm\n", body)
	code, body, _ = get("/images/", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "pxeboot/")
	code, _, _ = get("/missing", "")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestClosed(t *testing.T) {
	img := openRich(t)
	f, err := img.OpenFile("images/pxeboot/vmlinuz")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = f.Read(make([]byte, 1))
	assert.ErrorIs(t, err, fs.ErrClosed)
	_, err = img.OpenFile("images")
	assert.Error(t, err)
}

func TestElTorito(t *testing.T) {
	img := openRich(t)
	boot := img.BootImages()
	require.Len(t, boot, 2)
	assert.Equal(t, PlatformBIOS, boot[0].Platform)
	assert.Equal(t, "isolinux/isolinux.bin", boot[0].Path)
	assert.Equal(t, PlatformEFI, boot[1].Platform)
	assert.Equal(t, "images/efiboot.img", boot[1].Path)
	assert.Equal(t, int64(1440*1024), boot[1].Size)

	efi, err := img.EFIFS()
	require.NoError(t, err)
	for p, want := range map[string]string{"EFI/BOOT/BOOTX64.EFI": "shim-in-fat", "efi/boot/grubx64.efi": "grub-in-fat"} {
		got, err := fs.ReadFile(efi, p)
		require.NoError(t, err, p)
		assert.Equal(t, want, string(got))
	}
	_, err = fs.ReadFile(efi, "EFI/BOOT/missing.efi")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// TFTP and HTTP may fetch shim from the FAT image at once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := fs.ReadFile(efi, "EFI/BOOT/BOOTX64.EFI")
			assert.NoError(t, err)
			assert.Equal(t, "shim-in-fat", string(got))
		})
	}
	wg.Wait()

	plain := openISO(t, tree{files: map[string]string{"x": "y"}})
	assert.Empty(t, plain.BootImages())
	_, err = plain.EFIFS()
	assert.ErrorIs(t, err, ErrNoBootImage)
}

func TestNotAnISO(t *testing.T) {
	p := t.TempDir() + "/x.iso"
	require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{0}, 64<<10), 0o644))
	_, err := Open(p, Limits{})
	assert.ErrorIs(t, err, ErrBadImage)
	_, err = Open(t.TempDir()+"/missing.iso", Limits{})
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func dotted(p string) string {
	i := strings.LastIndex(p, "/") + 1
	return p[:i] + "." + p[i:]
}

// TestRockRidgeRelocation: genisoimage moves directories deeper than eight
// levels into rr_moved and leaves a Rock Ridge CL link in their place; the
// index must show them where they belong, and rr_moved empty.
func TestRockRidgeRelocation(t *testing.T) {
	needTool(t, "genisoimage")
	dir := t.TempDir()
	root := dir + "/root"
	writeTree(t, root, tree{files: map[string]string{
		"a/b/c/d/e/f/g/h/i/j/k/deep.txt":                   "deep",
		"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/deeper.txt": "deeper",
		"top.txt": "top",
	}})
	iso := dir + "/g.iso"
	run(t, "genisoimage", "-quiet", "-R", "-o", iso, root)
	img, err := Open(iso, Limits{})
	require.NoError(t, err)
	defer img.Close()
	for p, want := range map[string]string{
		"a/b/c/d/e/f/g/h/i/j/k/deep.txt":                   "deep",
		"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/deeper.txt": "deeper",
		"top.txt": "top",
	} {
		got, err := img.ReadFile(p)
		require.NoError(t, err, p)
		assert.Equal(t, want, string(got))
	}
	ents, err := img.ReadDir(".")
	require.NoError(t, err)
	for _, e := range ents {
		if e.Name() == "rr_moved" { // visible, as under a Linux mount, but empty
			moved, err := img.ReadDir("rr_moved")
			require.NoError(t, err)
			assert.Empty(t, moved)
		}
	}
	require.NoError(t, fstest.TestFS(img, "top.txt", "a/b/c/d/e/f/g/h/i/j/k/deep.txt"))
}
