package isosrc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fatBuilder writes a FAT12 image by hand, so the reader's tests and fuzz
// seeds need no tools and can damage exactly one table entry. Layout: 128
// sectors of 512 bytes, 1 reserved, two 1-sector FATs, a 16-entry root
// directory, then 124 one-sector clusters from sector 4.
type fatBuilder struct{ img []byte }

const (
	hbRoot = 3 * 512 // offset of the root directory
	hbData = 4 * 512 // offset of cluster 2
)

func newFATBuilder() *fatBuilder {
	b := &fatBuilder{img: make([]byte, 128*512)}
	bs := b.img
	copy(bs, []byte{0xEB, 0x3C, 0x90})
	copy(bs[3:11], "PXEKIT  ")
	binary.LittleEndian.PutUint16(bs[11:], 512) // bytes per sector
	bs[13] = 1                                  // sectors per cluster
	binary.LittleEndian.PutUint16(bs[14:], 1)   // reserved sectors
	bs[16] = 2                                  // FATs
	binary.LittleEndian.PutUint16(bs[17:], 16)  // root entries
	binary.LittleEndian.PutUint16(bs[19:], 128) // total sectors
	bs[21] = 0xF8
	binary.LittleEndian.PutUint16(bs[22:], 1) // sectors per FAT
	bs[38] = 0x29                             // extended boot signature
	copy(bs[43:], "PXEKIT TESTFAT12   ")      // label and file system type
	bs[510], bs[511] = 0x55, 0xAA
	b.setFAT(0, 0xFF8)
	b.setFAT(1, 0xFFF)
	return b
}

// setFAT sets cluster c's entry to v in both FATs.
func (b *fatBuilder) setFAT(c, v uint32) {
	for _, fat := range []int{512, 1024} {
		off := fat + int(c) + int(c)/2
		w := binary.LittleEndian.Uint16(b.img[off:])
		if c&1 == 1 {
			w = w&0x000F | uint16(v)<<4
		} else {
			w = w&0xF000 | uint16(v)&0x0FFF
		}
		binary.LittleEndian.PutUint16(b.img[off:], w)
	}
}

func clusterOff(c int) int { return hbData + (c-2)*512 }

// ent is one 32-byte short directory entry; name is the 11-byte 8.3 form.
func ent(name string, attr byte, cluster uint16, size uint32) []byte {
	e := make([]byte, 32)
	copy(e, fmt.Sprintf("%-11s", name))
	e[11] = attr
	binary.LittleEndian.PutUint16(e[22:], 0x6000)       // 12:00:00
	binary.LittleEndian.PutUint16(e[24:], 44<<9|3<<5|1) // 2024-03-01
	binary.LittleEndian.PutUint16(e[26:], cluster)
	binary.LittleEndian.PutUint32(e[28:], size)
	return e
}

// lfn returns the long-name entries for long, in on-disk order, followed by
// the short entry sn they belong to.
func lfn(long string, sn []byte) [][]byte {
	var sum byte
	for _, c := range sn[:11] {
		sum = bits.RotateLeft8(sum, -1) + c
	}
	u := utf16.Encode([]rune(long))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
	}
	for len(u) < n*13 {
		u = append(u, 0xFFFF)
	}
	var out [][]byte
	for seq := n; seq >= 1; seq-- {
		e := make([]byte, 32)
		e[0] = byte(seq)
		if seq == n {
			e[0] |= 0x40
		}
		e[11], e[13] = 0x0F, sum
		for i, at := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			binary.LittleEndian.PutUint16(e[at:], u[(seq-1)*13+i])
		}
		out = append(out, e)
	}
	return append(out, sn)
}

func (b *fatBuilder) dir(off int, entries ...[]byte) {
	for _, e := range entries {
		copy(b.img[off:], e)
		off += 32
	}
}

const (
	hbShim = "shim!" // BOOTX64.EFI repeats it to 700 bytes, over two clusters
	hbGrub = "grub"
)

// handFAT builds EFI/BOOT/BOOTX64.EFI (700 bytes in clusters 4 and 8, so
// two extents), EFI/BOOT/grubx64.efi (a long name) and README.TXT.
func handFAT() *fatBuilder {
	b := newFATBuilder()
	b.dir(hbRoot,
		ent("EFI", 0x10, 2, 0),
		ent("README  TXT", 0x20, 6, 5),
	)
	b.dir(clusterOff(2), ent(".", 0x10, 2, 0), ent("..", 0x10, 0, 0), ent("BOOT", 0x10, 3, 0))
	entries := [][]byte{ent(".", 0x10, 3, 0), ent("..", 0x10, 2, 0), ent("BOOTX64 EFI", 0x20, 4, 700)}
	entries = append(entries, lfn("grubx64.efi", ent("GRUBX64 EFI", 0x20, 7, uint32(len(hbGrub))))...)
	b.dir(clusterOff(3), entries...)
	copy(b.img[clusterOff(4):], strings.Repeat(hbShim, 140)[:512])
	copy(b.img[clusterOff(8):], strings.Repeat(hbShim, 140)[512:])
	copy(b.img[clusterOff(6):], "hello")
	copy(b.img[clusterOff(7):], hbGrub)
	for c, v := range map[uint32]uint32{2: 0xFFF, 3: 0xFFF, 4: 8, 8: 0xFFF, 6: 0xFFF, 7: 0xFFF} {
		b.setFAT(c, v)
	}
	return b
}

func openFATBytes(t testing.TB, raw []byte, lim Limits) (fs.FS, error) {
	t.Helper()
	root, err := readFAT(bytes.NewReader(raw), 0, int64(len(raw)), lim)
	if err != nil {
		return nil, err
	}
	return &fatFS{img: &Image{r: bytes.NewReader(raw), size: int64(len(raw)), root: root}}, nil
}

func TestFATHandBuilt(t *testing.T) {
	fsys, err := openFATBytes(t, handFAT().img, Limits{})
	require.NoError(t, err)
	for name, want := range map[string]string{
		"EFI/BOOT/BOOTX64.EFI": strings.Repeat(hbShim, 140),
		"efi/boot/bootx64.efi": strings.Repeat(hbShim, 140),
		"EFI/BOOT/grubx64.efi": hbGrub,
		"EFI/BOOT/GRUBX64.EFI": hbGrub,
		"README.TXT":           "hello",
	} {
		got, err := fs.ReadFile(fsys, name)
		require.NoError(t, err, name)
		assert.Equal(t, want, string(got), name)
	}
	ents, err := fs.ReadDir(fsys, "efi/BOOT")
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"BOOTX64.EFI", "grubx64.efi"}, names, "stored spelling, long name preferred")
	fi, err := fs.Stat(fsys, "efi")
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.Equal(t, "EFI", fi.Name())
	assert.Equal(t, time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), fi.ModTime())
	_, err = fs.ReadFile(fsys, "EFI/BOOT/missing.efi")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = fsys.Open("/EFI")
	assert.ErrorIs(t, err, fs.ErrInvalid)
	f, err := fsys.Open("EFI/BOOT/BOOTX64.EFI")
	require.NoError(t, err)
	ra, ok := f.(io.ReaderAt)
	require.True(t, ok, "regular files are *File")
	buf := make([]byte, 10)
	_, err = ra.ReadAt(buf, 510) // across the two extents
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat(hbShim, 140)[510:520], string(buf))
	require.NoError(t, f.Close())
	require.NoError(t, fstest.TestFS(fsys, "EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/grubx64.efi", "README.TXT"))
}

// TestFATDamaged: every kind of broken table or geometry is refused with
// an error naming it, at EFIFS time, before any file is read.
func TestFATDamaged(t *testing.T) {
	le16 := func(off int, v uint16) func(*fatBuilder) {
		return func(b *fatBuilder) { binary.LittleEndian.PutUint16(b.img[off:], v) }
	}
	for _, c := range []struct {
		name   string
		damage func(*fatBuilder)
		lim    Limits
		want   string
		limit  bool
	}{
		{name: "directory chain loops on itself", damage: func(b *fatBuilder) { b.setFAT(3, 3) }, want: "cluster 3 is used twice"},
		{name: "directory chain loops over two clusters", damage: func(b *fatBuilder) { b.setFAT(3, 9); b.setFAT(9, 3) }, want: "cluster 3 is used twice"},
		{name: "directory is an ancestor", damage: func(b *fatBuilder) { b.dir(clusterOff(3)+64, ent("UP", 0x10, 2, 0)) }, want: "cluster 2 is used twice"},
		{name: "cross-linked files", damage: func(b *fatBuilder) { b.dir(hbRoot+64, ent("OTHER", 0x20, 8, 10)) }, want: "cluster 8 is used twice"},
		{name: "file chain loops", damage: func(b *fatBuilder) {
			b.setFAT(8, 4)
			binary.LittleEndian.PutUint32(b.img[clusterOff(3)+64+28:], 1200) // needs three clusters
		}, want: "cluster 4 is used twice"},
		{name: "cluster out of range", damage: func(b *fatBuilder) { b.setFAT(4, 0xF00) }, want: "outside 2..125"},
		{name: "free cluster in chain", damage: func(b *fatBuilder) { b.setFAT(4, 0) }, want: "reaches a free cluster"},
		{name: "bad cluster in chain", damage: func(b *fatBuilder) { b.setFAT(4, 0xFF7) }, want: "marked bad"},
		{name: "file longer than its chain", damage: func(b *fatBuilder) { binary.LittleEndian.PutUint32(b.img[clusterOff(3)+64+28:], 5000) }, want: "ends after 2 of the 10 clusters"},
		{name: "file larger than the volume", damage: func(b *fatBuilder) { binary.LittleEndian.PutUint32(b.img[clusterOff(3)+64+28:], 1<<30) }, want: "larger than the volume"},
		{name: "subdirectory at cluster 0", damage: func(b *fatBuilder) { b.dir(hbRoot, ent("EFI", 0x10, 0, 0)) }, want: "reaches cluster 0"},
		{name: "volume larger than the image", damage: le16(19, 4096), want: "volume declares 2097152 bytes"},
		{name: "sector size", damage: le16(11, 513), want: "513 bytes per sector"},
		{name: "cluster size", damage: func(b *fatBuilder) { b.img[13] = 3 }, want: "3 sectors per cluster"},
		{name: "no FAT", damage: func(b *fatBuilder) { b.img[16] = 0 }, want: "no file allocation table"},
		{name: "tables fill the volume", damage: le16(22, 200), want: "leave no data cluster"},
		{name: "FAT12 without root", damage: le16(17, 0), want: "without root directory entries"},
		{name: "directory bytes", lim: Limits{MaxDirBytes: 1024}, want: "more than 1024 bytes of directories", limit: true},
		{name: "entries", lim: Limits{MaxEntries: 3}, want: "more than 3 entries", limit: true},
		{name: "depth", lim: Limits{MaxDepth: 1}, want: "deeper than 1", limit: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := handFAT()
			if c.damage != nil {
				c.damage(b)
			}
			_, err := openFATBytes(t, b.img, c.lim)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadImage)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, c.limit, errors.Is(err, ErrLimit), "ErrLimit")
		})
	}
}

// TestFATStrayLongName: a long-name entry with sequence number 0 after a
// complete long name voids it; the short name is used.
func TestFATStrayLongName(t *testing.T) {
	b := handFAT()
	e := make([]byte, 32)
	e[0] = 0x20                                     // sequence number 0 (0x00 would end the directory)
	e[11], e[13] = 0x0F, b.img[clusterOff(3)+96+13] // same checksum
	copy(b.img[clusterOff(3)+128:], e)
	copy(b.img[clusterOff(3)+160:], ent("GRUBX64 EFI", 0x20, 7, uint32(len(hbGrub))))
	fsys, err := openFATBytes(t, b.img, Limits{})
	require.NoError(t, err)
	got, err := fs.ReadFile(fsys, "EFI/BOOT/GRUBX64.EFI")
	require.NoError(t, err)
	assert.Equal(t, hbGrub, string(got))
	ents, err := fs.ReadDir(fsys, "EFI/BOOT")
	require.NoError(t, err)
	require.Len(t, ents, 2)
	assert.Equal(t, "GRUBX64.EFI", ents[1].Name())
}

// mkfat makes a FAT image with mkfs.vfat and fills it with mtools.
func mkfat(t testing.TB, kb int, mkfsArgs []string, files map[string]string, dirs []string) []byte {
	t.Helper()
	needTool(t, "mkfs.vfat", "mcopy", "mmd")
	dir := t.TempDir()
	img := filepath.Join(dir, "fat.img")
	run(t, "mkfs.vfat", append(append([]string{"-C"}, mkfsArgs...), img, fmt.Sprint(kb))...)
	for _, d := range dirs {
		run(t, "mmd", "-i", img, "::/"+d)
	}
	for p, c := range files {
		src := filepath.Join(dir, "src")
		require.NoError(t, os.WriteFile(src, []byte(c), 0o644))
		run(t, "mcopy", "-o", "-i", img, src, "::/"+p)
	}
	raw, err := os.ReadFile(img)
	require.NoError(t, err)
	return raw
}

// TestFATTools reads FAT12, FAT16 and FAT32 images made by mkfs.vfat and
// mtools: long and lower-case names, nested directories, files over many
// clusters, a file fragmented around a deleted one.
func TestFATTools(t *testing.T) {
	files := map[string]string{
		"EFI/BOOT/BOOTX64.EFI":            strings.Repeat("shim", 30000),
		"EFI/BOOT/grubx64.efi":            "grub",
		"EFI/BOOT/A Long Name, Mixed.cfg": "cfg",
		"EFI/deep/er/still/file.txt":      "deep",
		"empty":                           "",
	}
	dirs := []string{"EFI", "EFI/BOOT", "EFI/deep", "EFI/deep/er", "EFI/deep/er/still"}
	for _, c := range []struct {
		name string
		kb   int
		args []string
		bits int
	}{
		{"fat12", 1440, nil, 12},
		{"fat16", 16 << 10, []string{"-F", "16"}, 16},
		{"fat32", 40 << 10, []string{"-F", "32", "-S", "512", "-s", "1"}, 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := mkfat(t, c.kb, c.args, files, dirs)
			v, err := openFATVolume(bytes.NewReader(raw), 0, int64(len(raw)), Limits{}.withDefaults())
			require.NoError(t, err)
			assert.Equal(t, c.bits, v.bits)
			fsys, err := openFATBytes(t, raw, Limits{})
			require.NoError(t, err)
			for p, want := range files {
				got, err := fs.ReadFile(fsys, p)
				require.NoError(t, err, p)
				assert.Equal(t, want, string(got), p)
			}
			ents, err := fs.ReadDir(fsys, "EFI/BOOT")
			require.NoError(t, err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			assert.Equal(t, []string{"A Long Name, Mixed.cfg", "BOOTX64.EFI", "grubx64.efi"}, names)
			require.NoError(t, fstest.TestFS(fsys, "EFI/BOOT/grubx64.efi", "EFI/deep/er/still/file.txt"))
		})
	}

	t.Run("fragmented", func(t *testing.T) {
		raw := mkfat(t, 1440, nil, map[string]string{"a": strings.Repeat("a", 3000), "b": "b"}, nil)
		dir := t.TempDir()
		img := filepath.Join(dir, "fat.img")
		require.NoError(t, os.WriteFile(img, raw, 0o644))
		run(t, "mdel", "-i", img, "::/a")
		big := strings.Repeat("0123456789", 1000)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "c"), []byte(big), 0o644))
		run(t, "mcopy", "-i", img, filepath.Join(dir, "c"), "::/c")
		raw, err := os.ReadFile(img)
		require.NoError(t, err)
		root, err := readFAT(bytes.NewReader(raw), 0, int64(len(raw)), Limits{})
		require.NoError(t, err)
		c := root.lookup("c")
		require.NotNil(t, c)
		t.Logf("c has %d extents", len(c.ext))
		fsys := &fatFS{img: &Image{r: bytes.NewReader(raw), size: int64(len(raw)), root: root}}
		got, err := fs.ReadFile(fsys, "c")
		require.NoError(t, err)
		assert.Equal(t, big, string(got))
	})
}

// TestLoopingEFIChain reproduces the report: an ISO whose El Torito UEFI
// image has a directory cluster chain that loops (EFI/BOOT points to
// itself). Detection must finish quickly with bounded memory, tell what is
// wrong in a warning, and EFIFS must refuse the image.
func TestLoopingEFIChain(t *testing.T) {
	for _, damage := range []func(*fatBuilder){
		func(b *fatBuilder) { b.setFAT(3, 3) },                 // EFI/BOOT loops on itself
		func(b *fatBuilder) { b.setFAT(2, 9); b.setFAT(9, 2) }, // EFI loops over two clusters
		func(b *fatBuilder) { b.setFAT(4, 4) },                 // BOOTX64.EFI's chain loops
	} {
		b := handFAT()
		damage(b)
		p := buildISO(t, tree{files: map[string]string{".discinfo": "1.0\n9.0\nx86_64\n", "images/pxeboot/vmlinuz": "k", "images/pxeboot/initrd.img": "i"}, efiRaw: b.img})

		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		img, err := Open(p, Limits{})
		require.NoError(t, err, "the ISO itself is fine")
		d, derr := Detect(img)
		_, efiErr := img.EFIFS()
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		img.Close()

		require.NoError(t, derr)
		assert.Empty(t, d.Shim)
		require.Error(t, efiErr)
		assert.ErrorIs(t, efiErr, ErrBadImage)
		assert.Contains(t, efiErr.Error(), "UEFI boot image at sector")
		assert.Contains(t, strings.Join(d.Warnings, "\n"), strings.TrimPrefix(efiErr.Error(), "isosrc: "), "the warning says why")
		assert.Less(t, took, 5*time.Second)
		// Everything allocated by open, detection and EFIFS together.
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20))
		t.Logf("%v in %v, %d KB allocated", efiErr, took, (after.TotalAlloc-before.TotalAlloc)>>10)
	}
}

// walkFS reads everything reachable in fsys, as a boot file server would.
func walkFS(fsys fs.FS) {
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			_, _ = fs.ReadFile(fsys, p)
		}
		return nil
	})
}

// FuzzFAT feeds crafted FAT images to the FAT reader and walks the result.
// Seeds: the hand-built image, damaged copies of it, and (with dosfstools
// and mtools) a small FAT12 image made by mkfs.vfat.
func FuzzFAT(f *testing.F) {
	f.Add(handFAT().img)
	for _, damage := range []func(*fatBuilder){
		func(b *fatBuilder) { b.setFAT(3, 3) },
		func(b *fatBuilder) { b.setFAT(4, 0xF00) },
		func(b *fatBuilder) { binary.LittleEndian.PutUint16(b.img[22:], 0) }, // FAT32-shaped
	} {
		b := handFAT()
		damage(b)
		f.Add(b.img)
	}
	if hasTools("mkfs.vfat", "mcopy", "mmd") {
		files := map[string]string{"EFI/BOOT/BOOTX64.EFI": strings.Repeat("s", 3000), "EFI/BOOT/grubx64.efi": "g"}
		f.Add(mkfat(f, 64, nil, files, []string{"EFI", "EFI/BOOT"}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := openFATBytes(t, data, Limits{MaxEntries: 10_000, MaxDirBytes: 4 << 20})
		if err != nil {
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("error does not wrap ErrBadImage: %v", err)
			}
			return
		}
		walkFS(fsys)
	})
}

func hasTools(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return false
		}
	}
	return true
}

// FuzzElTorito feeds crafted El Torito boot catalogs and UEFI FAT images
// through the public path (OpenReader, BootImages, EFIFS, walk). The input
// is the catalog sector followed by the FAT image; both are written over a
// small template ISO built with xorriso at test time.
func FuzzElTorito(f *testing.F) {
	tmpl := buildISO(f, tree{files: map[string]string{"k": "v"}, efiRaw: handFAT().img})
	raw, err := os.ReadFile(tmpl)
	require.NoError(f, err)
	vol, err := readVolumes(bytes.NewReader(raw), int64(len(raw)))
	require.NoError(f, err)
	catOff := int(vol.bootCatalog) * sectorSize
	img, err := OpenReader(bytes.NewReader(raw), int64(len(raw)), Limits{})
	require.NoError(f, err)
	boot := img.BootImages()
	require.Len(f, boot, 1)
	fatOff, fatLen := int(boot[0].Offset), len(handFAT().img)

	seed := func(fat []byte) []byte {
		return append(bytes.Clone(raw[catOff:catOff+sectorSize]), fat...)
	}
	f.Add(seed(handFAT().img))
	b := handFAT()
	b.setFAT(3, 3)
	f.Add(seed(b.img))
	if hasTools("mkfs.vfat", "mcopy", "mmd") {
		f.Add(seed(mkfat(f, 64, nil, map[string]string{"EFI/BOOT/BOOTX64.EFI": "s"}, []string{"EFI", "EFI/BOOT"})))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		iso := bytes.Clone(raw)
		copy(iso[catOff:catOff+sectorSize], data)
		if len(data) > sectorSize {
			copy(iso[fatOff:fatOff+fatLen], data[sectorSize:])
		}
		img, err := OpenReader(bytes.NewReader(iso), int64(len(iso)), Limits{MaxEntries: 10_000, MaxDirBytes: 4 << 20})
		if err != nil {
			return
		}
		_ = img.BootImages()
		if efi, err := img.EFIFS(); err == nil {
			walkFS(efi)
		}
		_, _ = Detect(img)
	})
}
