package isosrc

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// multiExtentISO builds an image whose file "partaa" is made of two extents
// (5000 + 3000 bytes) by patching a two-file image: the second record is
// renamed onto the first and the first gets the multi-extent flag. This is
// the record layout xorriso writes for files over 4 GiB, at 8 KB.
func multiExtentISO(t *testing.T, flagLast bool) []byte {
	a := strings.Repeat("A", 5000)
	b := strings.Repeat("B", 3000)
	p := buildISO(t, tree{files: map[string]string{"d/partaa": a, "d/partab": b}, noJoliet: true})
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	first := bytes.Index(raw, []byte("PARTAA.;1"))
	require.Positive(t, first)
	if flagLast {
		second := bytes.Index(raw, []byte("PARTAB.;1"))
		raw[second-33+25] |= flagMultiExtnt
		return raw
	}
	raw = bytes.ReplaceAll(raw, []byte("PARTAB.;1"), []byte("PARTAA.;1"))
	raw = bytes.ReplaceAll(raw, []byte("partab"), []byte("partaa"))
	raw[first-33+25] |= flagMultiExtnt
	return raw
}

func TestMultiExtent(t *testing.T) {
	raw := multiExtentISO(t, false)
	img, err := OpenReader(bytes.NewReader(raw), int64(len(raw)), Limits{})
	require.NoError(t, err)
	ents, err := img.ReadDir("d")
	require.NoError(t, err)
	require.Len(t, ents, 1, "extents merged into one entry")
	got, err := img.ReadFile("d/partaa")
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("A", 5000)+strings.Repeat("B", 3000), string(got))
	f, err := img.OpenFile("d/partaa")
	require.NoError(t, err)
	buf := make([]byte, 10)
	n, err := f.ReadAt(buf, 4995)
	require.NoError(t, err)
	assert.Equal(t, "AAAAABBBBB", string(buf[:n]))
	end, err := f.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	assert.Equal(t, int64(8000), end)

	// A chain whose last record still says "more follows" is refused.
	raw = multiExtentISO(t, true)
	img, err = OpenReader(bytes.NewReader(raw), int64(len(raw)), Limits{})
	require.NoError(t, err)
	_, err = img.Open("d/partab")
	assert.ErrorIs(t, err, ErrIncompleteFile)
	_, err = img.Open("d/partaa")
	assert.NoError(t, err)
}

// TestTruncatedFile: a file whose data lies past the end of the image is
// refused at Open rather than read short. A cut image is refused as a whole
// (TestTruncatedImage), so this one also has its declared volume size cut,
// as a broken writer could leave it.
func TestTruncatedFile(t *testing.T) {
	p := buildISO(t, tree{files: map[string]string{"small": "x", "zlast": strings.Repeat("z", 100000)}})
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	off := bytes.LastIndex(raw, []byte(strings.Repeat("z", 2048)))
	cut := bytes.Clone(raw[:off-off%sectorSize])
	_, err = OpenReader(bytes.NewReader(cut), int64(len(cut)), Limits{})
	require.ErrorIs(t, err, ErrTruncated)
	blocks := uint32(len(cut) / sectorSize)
	binary.LittleEndian.PutUint32(cut[16*sectorSize+80:], blocks)
	binary.BigEndian.PutUint32(cut[16*sectorSize+84:], blocks)
	img, err := OpenReader(bytes.NewReader(cut), int64(len(cut)), Limits{})
	require.NoError(t, err)
	_, err = img.Open("zlast")
	assert.ErrorIs(t, err, ErrIncompleteFile)
	_, err = img.ReadFile("small")
	assert.NoError(t, err)
}

// TestBigFile reads a real >4 GiB multi-extent file. Writing such an ISO
// takes a minute of disk I/O, so it runs only when PXEKIT_BIG_ISO names an
// image made with
//
//	truncate -s 4300M root/huge.img && xorriso -as mkisofs -iso-level 3 -R -o big.iso root
func TestBigFile(t *testing.T) {
	p := os.Getenv("PXEKIT_BIG_ISO")
	if p == "" {
		t.Skip("PXEKIT_BIG_ISO not set (see the comment for how to make one)")
	}
	img, err := Open(p, Limits{})
	require.NoError(t, err)
	defer img.Close()
	fi, err := img.Stat("huge.img")
	require.NoError(t, err)
	assert.Equal(t, int64(4300<<20), fi.Size())
	f, err := img.OpenFile("huge.img")
	require.NoError(t, err)
	buf := make([]byte, 4096)
	n, err := f.ReadAt(buf, fi.Size()-4096)
	require.NoError(t, err)
	assert.Equal(t, 4096, n)
	_, err = f.ReadAt(buf, fi.Size())
	assert.ErrorIs(t, err, io.EOF)
}

// corrupt flips a few bytes of raw's metadata sectors (16 up to the first
// file data), as a damaged download or a hostile upload would.
func corrupt(raw []byte, r *rand.Rand, lo, hi int) []byte {
	out := bytes.Clone(raw)
	for range 1 + r.IntN(8) {
		i := lo + r.IntN(hi-lo)
		switch r.IntN(3) {
		case 0:
			out[i] = byte(r.IntN(256))
		case 1:
			out[i] = 0xFF
		default:
			out[i] = 0
		}
	}
	return out
}

// walkAll opens and reads everything reachable, as a server would.
func walkAll(img *Image) {
	_ = fs.WalkDir(img, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if f, err := img.OpenFile(p); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(f, 1<<20))
				f.Close()
			}
		}
		_, _ = img.Stat(p)
		return nil
	})
	if efi, err := img.EFIFS(); err == nil {
		_ = fs.WalkDir(efi, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				_, _ = fs.ReadFile(efi, p)
			}
			return nil
		})
	}
	_ = img.BootImages()
}

// TestCorruptedImages: thousands of damaged images, each must give an image
// or an error quickly, never a panic and never a memory blow-up.
func TestCorruptedImages(t *testing.T) {
	raw, err := os.ReadFile(richISO(t))
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	iterations := 200
	if testing.Short() {
		iterations = 50
	}
	var slowest time.Duration
	good, err := OpenReader(bytes.NewReader(raw), int64(len(raw)), Limits{})
	require.NoError(t, err)
	efi := good.BootImages()[1]
	var ms runtime.MemStats
	for i := range iterations {
		lo, hi := 16*sectorSize, min(len(raw), 64*sectorSize)
		if i%2 == 1 { // the FAT header, tables and root directory of the EFI image
			lo, hi = int(efi.Offset), int(efi.Offset)+16<<10
		}
		img := corrupt(raw, r, lo, hi)
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		if im, err := OpenReader(bytes.NewReader(img), int64(len(img)), Limits{}); err == nil {
			walkAll(im)
		}
		d := time.Since(start)
		slowest = max(slowest, d)
		runtime.ReadMemStats(&ms)
		// Everything allocated by one open+walk, an upper bound of its peak.
		if got := ms.TotalAlloc - before.TotalAlloc; got > 100<<20 {
			t.Fatalf("iteration %d allocated %d MB", i, got>>20)
		}
		// A guard against a hang or an unbounded walk, not a speed
		// figure: generous for -race on a loaded 2-core machine.
		if d > 20*time.Second {
			t.Fatalf("iteration %d took %v", i, d)
		}
	}
	t.Logf("slowest open+walk of a damaged image: %v", slowest)
	runtime.ReadMemStats(&ms)
	assert.Less(t, ms.HeapAlloc, uint64(100<<20))
}

// FuzzOpen feeds arbitrary images to the open-and-walk path. The seed
// corpus is tiny images built with xorriso at test time (one per reader:
// Rock Ridge with links, Joliet only, plain, El Torito with FAT), so no
// binary images are committed.
func FuzzOpen(f *testing.F) {
	f.Add(make([]byte, 40*sectorSize))
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := OpenReader(bytes.NewReader(data), int64(len(data)), Limits{MaxEntries: 10_000, MaxDirBytes: 4 << 20})
		if err != nil {
			return
		}
		walkAll(img)
	})
}

// fuzzSeeds builds tiny images covering each reader: Rock Ridge with links,
// Joliet only, plain, El Torito with a FAT image.
func fuzzSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, tr := range []tree{
		{files: map[string]string{".treeinfo": "[general]", "a/b": "c"}, links: map[string]string{"l": "a/b", "self": "."}},
		{files: map[string]string{"x/y.txt": "z"}, noRR: true},
		{files: map[string]string{"X.TXT": "z"}, noRR: true, noJoliet: true},
		{files: map[string]string{"k": "v"}, efi: map[string]string{"EFI/BOOT/BOOTX64.EFI": "s"}, efiKB: 64},
	} {
		p := buildISO(f, tr)
		raw, err := os.ReadFile(p)
		require.NoError(f, err)
		out = append(out, raw)
	}
	return out
}

func TestLimits(t *testing.T) {
	raw, err := os.ReadFile(richISO(t))
	require.NoError(t, err)
	for _, lim := range []Limits{{MaxEntries: 100}, {MaxDepth: 5}, {MaxDirBytes: 8 << 10}} {
		_, err := OpenReader(bytes.NewReader(raw), int64(len(raw)), lim)
		assert.ErrorIs(t, err, ErrLimit, "%+v", lim)
		assert.ErrorIs(t, err, ErrBadImage, "%+v", lim)
	}
	_, err = OpenReader(bytes.NewReader(raw), int64(len(raw)), Limits{})
	assert.NoError(t, err)
}

// rootCEISO builds a Rock Ridge image and ends the system use area of the
// root directory's "." record with a CE entry of the given length that
// points at itself (a PD padding entry fills the bytes before it).
func rootCEISO(t *testing.T, length uint32) []byte {
	raw, err := os.ReadFile(buildISO(t, tree{files: map[string]string{"a": "b"}}))
	require.NoError(t, err)
	lba := binary.LittleEndian.Uint32(raw[16*sectorSize+156+2:])
	rec := raw[int(lba)*sectorSize:]
	l := int(rec[0])
	require.Equal(t, "SP", string(rec[34:36]))
	pad := l - 28 - 41 // after the 7-byte SP entry
	require.GreaterOrEqual(t, pad, 4)
	copy(rec[41:], []byte{'P', 'D', byte(pad), 1})
	ce := rec[l-28 : l]
	copy(ce, []byte{'C', 'E', 28, 1})
	for i, v := range []uint32{lba, uint32(l - 28), length} {
		binary.LittleEndian.PutUint32(ce[4+8*i:], v)
		binary.BigEndian.PutUint32(ce[8+8*i:], v)
	}
	return raw
}

// TestRootContinuationLoop: go-diskfs follows the root's SUSP continuation
// chain without a bound (a CE pointing at itself spun forever) and
// allocates whatever length a CE gives; both are refused before it runs.
func TestRootContinuationLoop(t *testing.T) {
	for _, c := range []struct {
		length uint32
		want   string
	}{
		{28, "continuation areas do not end"},
		{0xFFFFFFF0, "does not fit the image"},
	} {
		raw := rootCEISO(t, c.length)
		done := make(chan error, 1)
		go func() {
			_, err := OpenReader(bytes.NewReader(raw), int64(len(raw)), Limits{})
			done <- err
		}()
		select {
		case err := <-done:
			require.ErrorIs(t, err, ErrBadImage)
			assert.Contains(t, err.Error(), c.want)
		case <-time.After(10 * time.Second):
			t.Fatal("OpenReader still running after 10 s")
		}
	}
}
