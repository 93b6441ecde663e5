package isosrc

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// The UEFI boot image is read by isosrc's own FAT reader rather than
// go-diskfs's: go-diskfs follows cluster chains without a bound, so one
// looping chain in a crafted image made it allocate gigabytes. This reader
// indexes the whole FAT tree once, in the same node form as the ISO index,
// and every walk is bounded:
//   - a cluster may belong to one chain only (a bitset over all clusters),
//     which refuses loops and cross-linked chains and bounds the total walk
//     by the cluster count;
//   - a file's chain is followed for exactly the clusters its size needs;
//   - a directory is at most maxFATDirBytes, all directories together at
//     most Limits.MaxDirBytes, entries and depth as Limits say;
//   - the table itself is at most maxFATClusters entries.

const (
	// maxFATClusters bounds the FAT held in memory (16 MiB as FAT32). A
	// UEFI boot image is a few MB; 4 Mi clusters is 2 GiB at 512 bytes.
	maxFATClusters = 1 << 22
	// maxFATDirBytes bounds one directory: 65,536 entries of 32 bytes,
	// the most the FAT specification allows.
	maxFATDirBytes = 65536 * 32
)

// fatVolume is a FAT12, FAT16 or FAT32 file system at offset base of r,
// its geometry checked against the space it lives in.
type fatVolume struct {
	r           io.ReaderAt
	base        int64  // image offset of the boot sector
	bits        int    // 12, 16 or 32
	table       []byte // the first FAT
	clusters    uint32 // data clusters; valid numbers are 2 .. clusters+1
	clusterSize int64
	dataOff     int64  // offset of cluster 2 from base
	rootOff     int64  // FAT12/16 fixed root directory, from base
	rootSize    int64  // its size in bytes
	rootCluster uint32 // FAT32 root directory chain
	used        []uint64
	lim         Limits
	entries     int
	dirBytes    int64
}

// fatError says what is wrong in a FAT image. It wraps ErrBadImage (and
// ErrLimit for a bound of Limits) without repeating their text, which
// speaks of ISO 9660.
type fatError struct {
	msg   string
	limit bool
}

func (e *fatError) Error() string { return "FAT: " + e.msg }

func (e *fatError) Unwrap() []error {
	if e.limit {
		return []error{ErrBadImage, ErrLimit}
	}
	return []error{ErrBadImage}
}

func fatErr(format string, args ...any) error {
	return &fatError{msg: fmt.Sprintf(format, args...)}
}

func fatLimit(format string, args ...any) error {
	return &fatError{msg: fmt.Sprintf(format, args...), limit: true}
}

// openFATVolume reads and checks the boot sector and the FAT of the file
// system at base, which has avail bytes of image after it.
func openFATVolume(r io.ReaderAt, base, avail int64, lim Limits) (*fatVolume, error) {
	if avail < 512 {
		return nil, fatErr("image of %d bytes is too small", avail)
	}
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, base); err != nil {
		return nil, fatErr("reading the boot sector: %v", err)
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:13]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:16]))
	nfats := int64(bs[16])
	rootEntries := int64(binary.LittleEndian.Uint16(bs[17:19]))
	total := int64(binary.LittleEndian.Uint16(bs[19:21]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[32:36]))
	}
	fatSectors := int64(binary.LittleEndian.Uint16(bs[22:24]))
	fat32 := fatSectors == 0
	if fat32 {
		fatSectors = int64(binary.LittleEndian.Uint32(bs[36:40]))
	}
	switch {
	case bps != 512 && bps != 1024 && bps != 2048 && bps != 4096:
		return nil, fatErr("%d bytes per sector (want 512, 1024, 2048 or 4096)", bps)
	case spc == 0 || spc&(spc-1) != 0:
		return nil, fatErr("%d sectors per cluster (want a power of two)", spc)
	case reserved == 0:
		return nil, fatErr("no reserved sectors")
	case nfats == 0:
		return nil, fatErr("no file allocation table")
	case fatSectors == 0:
		return nil, fatErr("file allocation table of 0 sectors")
	case fat32 && rootEntries != 0:
		return nil, fatErr("FAT32 boot sector with %d fixed root entries", rootEntries)
	case !fat32 && rootEntries == 0:
		return nil, fatErr("FAT12/16 boot sector without root directory entries")
	}
	if total*bps > avail {
		return nil, fatErr("volume declares %d bytes (%d sectors of %d) but only %d bytes of image follow", total*bps, total, bps, avail)
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	fatStart := reserved
	rootStart := fatStart + nfats*fatSectors
	dataStart := rootStart + rootSectors
	if dataStart+spc > total {
		return nil, fatErr("reserved sectors, tables and root directory (%d sectors) leave no data cluster in %d sectors", dataStart, total)
	}
	clusters := (total - dataStart) / spc
	v := &fatVolume{
		r: r, base: base, lim: lim,
		clusterSize: spc * bps,
		dataOff:     dataStart * bps,
		rootOff:     rootStart * bps,
		rootSize:    rootSectors * bps,
	}
	switch {
	case fat32:
		v.bits = 32
	case clusters < 4085:
		v.bits = 12
	default:
		v.bits = 16
	}
	if v.bits == 16 && clusters >= 65525 {
		return nil, fatErr("FAT16 geometry with %d clusters (at most 65,524)", clusters)
	}
	// A table too short for the clusters caps them, as Linux does: the
	// clusters it cannot describe cannot be in any chain.
	tableBytes := fatSectors * bps
	if fit := tableBytes*8/int64(v.bits) - 2; fit < clusters {
		clusters = fit
	}
	if clusters < 1 {
		return nil, fatErr("file allocation table of %d bytes describes no cluster", tableBytes)
	}
	if clusters > maxFATClusters {
		return nil, fatLimit("%d clusters, more than %d", clusters, maxFATClusters)
	}
	v.clusters = uint32(clusters)
	need := (clusters + 2) * int64(v.bits) / 8
	if v.bits == 12 {
		need++ // the last 12-bit entry is read as a 16-bit word
	}
	v.table = make([]byte, min(need, tableBytes))
	if _, err := r.ReadAt(v.table, base+fatStart*bps); err != nil {
		return nil, fatErr("reading the file allocation table: %v", err)
	}
	if fat32 {
		v.rootCluster = binary.LittleEndian.Uint32(bs[44:48]) & 0x0FFFFFFF
		if !v.valid(v.rootCluster) {
			return nil, fatErr("FAT32 root directory at cluster %d, outside 2..%d", v.rootCluster, clusters+1)
		}
	}
	v.used = make([]uint64, (clusters+2+63)/64)
	return v, nil
}

func (v *fatVolume) valid(c uint32) bool { return c >= 2 && c <= v.clusters+1 }

// next returns the table entry of cluster c (which must be valid).
func (v *fatVolume) next(c uint32) uint32 {
	switch v.bits {
	case 12:
		off := int(c) + int(c)/2
		if off+1 >= len(v.table) {
			return 0
		}
		w := uint32(binary.LittleEndian.Uint16(v.table[off:]))
		if c&1 == 1 {
			return w >> 4
		}
		return w & 0xFFF
	case 16:
		off := int(c) * 2
		if off+1 >= len(v.table) {
			return 0
		}
		return uint32(binary.LittleEndian.Uint16(v.table[off:]))
	default:
		off := int(c) * 4
		if off+3 >= len(v.table) {
			return 0
		}
		return binary.LittleEndian.Uint32(v.table[off:]) & 0x0FFFFFFF
	}
}

// endMarks returns the smallest end-of-chain value and the bad-cluster
// value for the volume's FAT width.
func (v *fatVolume) endMarks() (eoc, bad uint32) {
	switch v.bits {
	case 12:
		return 0xFF8, 0xFF7
	case 16:
		return 0xFFF8, 0xFFF7
	}
	return 0x0FFFFFF8, 0x0FFFFFF7
}

// chain follows the cluster chain starting at first and returns it as
// extents of the image. With want > 0 it follows exactly want clusters (a
// file); with want == 0 it follows the chain to its end but at most max
// clusters (a directory). Every cluster is claimed in v.used, so a chain
// that loops, or runs into another chain, is refused.
func (v *fatVolume) chain(first uint32, want, max int64, what string) ([]extent, error) {
	eoc, bad := v.endMarks()
	var out []extent
	c := first
	for n := int64(0); ; n++ {
		if !v.valid(c) {
			return nil, fatErr("%s: cluster chain reaches cluster %d, outside 2..%d", what, c, v.clusters+1)
		}
		if v.used[c/64]&(1<<(c%64)) != 0 {
			return nil, fatErr("%s: cluster %d is used twice (a looping or cross-linked cluster chain)", what, c)
		}
		v.used[c/64] |= 1 << (c % 64)
		off := v.base + v.dataOff + int64(c-2)*v.clusterSize
		if k := len(out) - 1; k >= 0 && out[k].off+out[k].size == off {
			out[k].size += v.clusterSize
		} else {
			out = append(out, extent{off: off, size: v.clusterSize})
		}
		if want > 0 && n+1 == want {
			return out, nil
		}
		if want == 0 && n+1 > max {
			return nil, fatLimit("%s: directory larger than %d bytes", what, max*v.clusterSize)
		}
		nx := v.next(c)
		switch {
		case nx >= eoc:
			if want > 0 {
				return nil, fatErr("%s: cluster chain ends after %d of the %d clusters its size needs", what, n+1, want)
			}
			return out, nil
		case nx == bad:
			return nil, fatErr("%s: cluster chain reaches a cluster marked bad after cluster %d", what, c)
		case nx < 2:
			return nil, fatErr("%s: cluster chain reaches a free cluster after cluster %d", what, c)
		}
		c = nx
	}
}

// readFAT indexes the FAT file system at base (avail bytes of image after
// it) into a node tree.
func readFAT(r io.ReaderAt, base, avail int64, lim Limits) (root *node, err error) {
	defer func() {
		// Last line of defence, as in OpenReader: every index above is
		// checked, but a slip must still come back as an error.
		if p := recover(); p != nil {
			root, err = nil, fatErr("internal fault while reading: %v", p)
		}
	}()
	v, err := openFATVolume(r, base, avail, lim.withDefaults())
	if err != nil {
		return nil, err
	}
	root = &node{mode: fs.ModeDir | 0o555}
	root.parent = root
	var rootExt []extent
	if v.bits == 32 {
		if rootExt, err = v.chain(v.rootCluster, 0, v.maxDirClusters(), "root directory"); err != nil {
			return nil, err
		}
	} else {
		rootExt = []extent{{off: base + v.rootOff, size: v.rootSize}}
	}
	type pending struct {
		n     *node
		ext   []extent
		depth int
		path  string
	}
	queue := []pending{{n: root, ext: rootExt}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p.depth > v.lim.MaxDepth {
			return nil, fatLimit("directories nested deeper than %d at %q", v.lim.MaxDepth, p.path)
		}
		kids, subs, err := v.readDir(p.n, p.ext, p.path)
		if err != nil {
			return nil, err
		}
		p.n.children = kids
		for _, s := range subs {
			queue = append(queue, pending{n: s.n, ext: s.ext, depth: p.depth + 1, path: join(p.path, s.n.name)})
		}
	}
	return root, nil
}

func (v *fatVolume) maxDirClusters() int64 { return max(1, maxFATDirBytes/v.clusterSize) }

type fatSubdir struct {
	n   *node
	ext []extent
}

// readDir decodes one directory's entries (long names included) and
// follows the chains of its files and subdirectories.
func (v *fatVolume) readDir(dir *node, ext []extent, dirPath string) ([]*node, []fatSubdir, error) {
	var size int64
	for _, x := range ext {
		size += x.size
	}
	v.dirBytes += size
	if v.dirBytes > v.lim.MaxDirBytes {
		return nil, nil, fatLimit("more than %d bytes of directories", v.lim.MaxDirBytes)
	}
	data := make([]byte, 0, size)
	for _, x := range ext {
		b := make([]byte, x.size)
		if _, err := v.r.ReadAt(b, x.off); err != nil {
			return nil, nil, fatErr("reading directory %q: %v", "/"+dirPath, err)
		}
		data = append(data, b...)
	}
	var (
		kids []*node
		subs []fatSubdir
		lfn  longName
	)
	for off := 0; off+32 <= len(data); off += 32 {
		e := data[off : off+32]
		if e[0] == 0x00 {
			break // end of directory
		}
		if e[0] == 0xE5 {
			lfn.reset()
			continue // deleted
		}
		attr := e[11]
		if attr&0x3F == 0x0F {
			lfn.add(e)
			continue
		}
		long := lfn.take(e[0:11])
		if attr&0x08 != 0 || e[0] == '.' {
			continue // volume label, "." and ".."
		}
		name := long
		if name == "" {
			name = shortName(e)
		}
		if !validName(name) {
			continue
		}
		full := join(dirPath, name)
		v.entries++
		if v.entries > v.lim.MaxEntries {
			return nil, nil, fatLimit("more than %d entries", v.lim.MaxEntries)
		}
		first := uint32(binary.LittleEndian.Uint16(e[26:28]))
		if v.bits == 32 {
			first |= uint32(binary.LittleEndian.Uint16(e[20:22])) << 16
		}
		nd := &node{name: name, parent: dir, mtime: dosTime(binary.LittleEndian.Uint16(e[24:26]), binary.LittleEndian.Uint16(e[22:24]))}
		if attr&0x10 != 0 {
			nd.mode = fs.ModeDir | 0o555
			x, err := v.chain(first, 0, v.maxDirClusters(), fmt.Sprintf("directory %q", full))
			if err != nil {
				return nil, nil, err
			}
			subs = append(subs, fatSubdir{n: nd, ext: x})
		} else {
			nd.mode = 0o444
			nd.size = int64(binary.LittleEndian.Uint32(e[28:32]))
			if nd.size > 0 {
				want := (nd.size + v.clusterSize - 1) / v.clusterSize
				if want > int64(v.clusters) {
					return nil, nil, fatErr("file %q of %d bytes is larger than the volume", full, nd.size)
				}
				x, err := v.chain(first, want, 0, fmt.Sprintf("file %q", full))
				if err != nil {
					return nil, nil, err
				}
				x[len(x)-1].size -= want*v.clusterSize - nd.size
				nd.ext = x
			}
		}
		kids = append(kids, nd)
	}
	slices.SortStableFunc(kids, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	// Keep the first of duplicate names: an fs.FS cannot show two.
	dropped := map[*node]bool{}
	out := kids[:0]
	for _, k := range kids {
		if len(out) > 0 && k.name == out[len(out)-1].name {
			dropped[k] = true
			continue
		}
		out = append(out, k)
	}
	if len(dropped) > 0 {
		subs = slices.DeleteFunc(subs, func(s fatSubdir) bool { return dropped[s.n] })
	}
	return slices.Clip(out), subs, nil
}

// longName collects the VFAT long-name entries that precede a short entry.
type longName struct {
	units [20 * 13]uint16
	count int  // entries announced by the first (highest) one
	next  int  // sequence number expected next; 0 when complete
	sum   byte // checksum of the short name they belong to
	ok    bool
}

func (l *longName) reset() { l.ok = false }

func (l *longName) add(e []byte) {
	seq := int(e[0] & 0x1F)
	if e[0]&0x40 != 0 {
		l.ok, l.count, l.next, l.sum = seq >= 1 && seq <= 20, seq, seq, e[13]
	}
	if !l.ok || seq < 1 || seq != l.next || e[13] != l.sum {
		l.ok = false
		return
	}
	u := l.units[(seq-1)*13:]
	for i, at := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
		u[i] = binary.LittleEndian.Uint16(e[at:])
	}
	l.next--
}

// take returns the long name for the short name sn, or "" when the
// collected entries are incomplete or belong to another entry.
func (l *longName) take(sn []byte) string {
	defer l.reset()
	if !l.ok || l.next != 0 {
		return ""
	}
	var sum byte
	for _, c := range sn {
		sum = bits.RotateLeft8(sum, -1) + c
	}
	if sum != l.sum {
		return ""
	}
	u := l.units[:l.count*13]
	if i := slices.Index(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(utf16.Decode(u))
}

// shortName decodes an 8.3 name, applying the lower-case flags Windows NT
// and mtools set instead of writing a long name.
func shortName(e []byte) string {
	dec := func(b []byte, lower bool) string {
		var sb strings.Builder
		for i, c := range b {
			if i == 0 && c == 0x05 { // 0xE5 stored as 0x05
				c = 0xE5
			}
			r := rune(c) // OEM code page unknown: read as Latin-1
			if lower && c >= 'A' && c <= 'Z' {
				r += 'a' - 'A'
			}
			sb.WriteRune(r)
		}
		return strings.TrimRight(sb.String(), " ")
	}
	base, ext := dec(e[0:8], e[12]&0x08 != 0), dec(e[8:11], e[12]&0x10 != 0)
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// dosTime decodes a FAT date and time (local time of the writer; read as UTC).
func dosTime(d, t uint16) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Date(1980+int(d>>9), time.Month(d>>5&0x0F), int(d&0x1F), int(t>>11), int(t>>5&0x3F), int(t&0x1F)*2, 0, time.UTC)
}

// fatFS is the UEFI boot image's file system: the FAT tree indexed by
// readFAT, served by the same code as the ISO tree, with case-insensitive
// lookups as on FAT.
type fatFS struct {
	img *Image
}

var (
	_ fs.ReadDirFS  = (*fatFS)(nil)
	_ fs.ReadFileFS = (*fatFS)(nil)
	_ fs.StatFS     = (*fatFS)(nil)
)

// canonical maps name onto the stored spelling, element by element: an
// exact match first, else the first that differs only in case.
func (f *fatFS) canonical(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return name, nil
	}
	cur := f.img.root
	out := make([]string, 0, strings.Count(name, "/")+1)
	for _, el := range strings.Split(name, "/") {
		next := cur.lookup(el)
		if next == nil {
			for _, c := range cur.children {
				if strings.EqualFold(c.name, el) {
					next = c
					break
				}
			}
		}
		if next == nil {
			return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		out = append(out, next.name)
		cur = next
	}
	return strings.Join(out, "/"), nil
}

// Open opens the named file; regular files are *File (io.ReaderAt,
// io.Seeker).
func (f *fatFS) Open(name string) (fs.File, error) {
	c, err := f.canonical("open", name)
	if err != nil {
		return nil, err
	}
	return f.img.Open(c)
}

// ReadDir lists the named directory in name order.
func (f *fatFS) ReadDir(name string) ([]fs.DirEntry, error) {
	c, err := f.canonical("readdir", name)
	if err != nil {
		return nil, err
	}
	return f.img.ReadDir(c)
}

// ReadFile reads the whole named file.
func (f *fatFS) ReadFile(name string) ([]byte, error) {
	c, err := f.canonical("readfile", name)
	if err != nil {
		return nil, err
	}
	return f.img.ReadFile(c)
}

// Stat describes the named file.
func (f *fatFS) Stat(name string) (fs.FileInfo, error) {
	c, err := f.canonical("stat", name)
	if err != nil {
		return nil, err
	}
	return f.img.Stat(c)
}
