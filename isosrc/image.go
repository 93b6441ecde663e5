package isosrc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// Sentinel errors. Every error returned for a bad image wraps ErrBadImage
// (and sometimes also ErrLimit), so callers can tell "this ISO is damaged or
// hostile" from I/O errors with errors.Is.
var (
	// ErrBadImage means the bytes are not a readable ISO 9660 image.
	ErrBadImage = errors.New("isosrc: not a readable ISO 9660 image")
	// ErrLimit means the image exceeds a bound of Limits; it also wraps
	// ErrBadImage.
	ErrLimit = errors.New("isosrc: image exceeds a safety limit")
	// ErrIncompleteFile means a file's extents are damaged (a multi-extent
	// chain that does not end, or an extent beyond the end of the image);
	// opening such a file fails instead of returning a cut copy.
	ErrIncompleteFile = errors.New("isosrc: file extents are incomplete")
	// ErrSymlinkLoop means symbolic links did not resolve within
	// maxSymlinkHops steps.
	ErrSymlinkLoop = errors.New("isosrc: too many levels of symbolic links")
	// ErrTruncated means the file is shorter than the volume its primary
	// volume descriptor declares, as after an interrupted download; it
	// also wraps ErrBadImage.
	ErrTruncated = errors.New("isosrc: image is truncated")
	// ErrFileType means a path given to Open or OpenNetboot names a file
	// of a type that cannot hold an image (a named pipe, a socket, a
	// character device, a directory where a file is needed). The error is
	// an *fs.PathError naming the type found.
	ErrFileType = errors.New("isosrc: wrong type of file")
)

const maxSymlinkHops = 40

// Limits bounds the work and memory spent indexing an untrusted image.
// The zero value means the defaults, which are far above any distribution
// DVD (a RHEL 9 DVD has about 12,000 entries and 3 MB of directories).
// The same bounds apply, separately, to the UEFI boot image's FAT file
// system (Image.EFIFS).
type Limits struct {
	// MaxEntries is the most files, directories and links indexed.
	// Default 200,000 (about 40 MB of index).
	MaxEntries int
	// MaxDirBytes is the most directory-record bytes read in total.
	// Default 64 MiB.
	MaxDirBytes int64
	// MaxDepth is the deepest directory nesting accepted. Default 64.
	MaxDepth int
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = 200_000
	}
	if l.MaxDirBytes <= 0 {
		l.MaxDirBytes = 64 << 20
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	return l
}

// extent is one contiguous byte range of a file inside the image.
type extent struct {
	off, size int64
}

// node is one entry of the index. Nodes are immutable once Open returns,
// which is what makes an Image safe for concurrent use.
type node struct {
	name     string
	mode     fs.FileMode
	size     int64
	mtime    time.Time
	ext      []extent
	link     string
	parent   *node
	children []*node // sorted by name; directories only
	err      error   // set when the file must not be read (ErrIncompleteFile)
}

func (n *node) lookup(name string) *node {
	i, ok := slices.BinarySearchFunc(n.children, name, func(c *node, s string) int { return strings.Compare(c.name, s) })
	if !ok {
		return nil
	}
	return n.children[i]
}

// Image is an opened ISO 9660 image. It is an fs.FS (also ReadDirFS,
// ReadFileFS, StatFS and ReadLinkFS) whose files implement io.ReaderAt and
// io.Seeker. An Image is safe for concurrent use by many goroutines: the
// index is built once by Open and never changes, and every read is a
// positioned read of the underlying file.
type Image struct {
	r      io.ReaderAt
	closer io.Closer
	file   *os.File // set by Open; lets Handler use sendfile
	size   int64
	lim    Limits // with defaults applied; also bounds EFIFS

	root     *node
	label    string
	names    string // "rockridge", "joliet" or "iso9660"
	boot     []BootImage
	bootErr  error
	warnings []string
	byOffset map[int64]*located // extent start -> file, for boot images
}

// Open opens the ISO image file at path read-only and indexes it within
// lim (the zero Limits gives the defaults; see OpenReader). It needs no
// privileges beyond read permission on the file. Only a regular file or a
// block device (an ISO can be /dev/sr0) is accepted; anything else gives an
// error wrapping ErrFileType, and opening never blocks, even on a named
// pipe.
func Open(path string, lim Limits) (*Image, error) {
	f, st, err := openNonblock(path, func(m fs.FileMode) bool { return m.IsRegular() || isBlockDevice(m) }, "a regular file or block device")
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if isBlockDevice(st.Mode()) {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, err
		}
	}
	img, err := OpenReader(f, size, lim)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	img.closer, img.file = f, f
	return img, nil
}

func isBlockDevice(m fs.FileMode) bool {
	return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
}

// fileKind names a file type for errors.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	}
	return "irregular file"
}

// fileTypeError is the error for a path of the wrong type; errors.Is
// matches ErrFileType.
type fileTypeError struct{ kind, want string }

func (e *fileTypeError) Error() string { return "is a " + e.kind + ", not " + e.want }

func (e *fileTypeError) Is(target error) bool { return target == ErrFileType }

// openNonblock opens name read-only for a caller that accepts only the file
// types ok allows (want names them, for errors). The path is stat'ed first,
// so that nothing else is even opened (opening some devices has side
// effects), and then opened with O_NONBLOCK, so that a named pipe swapped
// in meanwhile cannot block the open; the descriptor's own type is then
// checked again. O_NONBLOCK is cleared before returning: reads of regular
// files and block devices block as usual.
func openNonblock(name string, ok func(fs.FileMode) bool, want string) (*os.File, fs.FileInfo, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, nil, err
	}
	if !ok(st.Mode()) {
		return nil, nil, &fs.PathError{Op: "open", Path: name, Err: &fileTypeError{kind: fileKind(st.Mode()), want: want}}
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fst, err := f.Stat()
	switch {
	case err != nil:
	case !ok(fst.Mode()):
		err = &fs.PathError{Op: "open", Path: name, Err: &fileTypeError{kind: fileKind(fst.Mode()), want: want}}
	case !os.SameFile(st, fst):
		err = &fs.PathError{Op: "open", Path: name, Err: errors.New("replaced by another file while being opened")}
	}
	if err == nil {
		var rc syscall.RawConn
		if rc, err = f.SyscallConn(); err == nil {
			cerr := rc.Control(func(fd uintptr) { err = syscall.SetNonblock(int(fd), false) })
			err = errors.Join(err, cerr)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fst, nil
}

// OpenReader indexes an image held by r (size bytes long) with the given
// limits. The caller keeps ownership of r; Close does not close it.
func OpenReader(r io.ReaderAt, size int64, lim Limits) (img *Image, err error) {
	defer func() {
		// Last line of defence: the readers below bound every slice, but
		// a fault in the library must still come back as an error.
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("%w: internal fault while reading: %v", ErrBadImage, p)
		}
	}()
	lim = lim.withDefaults()
	img = &Image{r: r, size: size, lim: lim, byOffset: map[int64]*located{}}
	vol, err := readVolumes(r, size)
	if err != nil {
		return nil, err
	}
	if want := int64(vol.blocks) * sectorSize; want > size {
		return nil, fmt.Errorf("%w: %w: the primary volume descriptor declares %d bytes (%d blocks of %d) but the image has only %d bytes", ErrBadImage, ErrTruncated, want, vol.blocks, sectorSize, size)
	}
	img.label = vol.label
	if err := img.index(vol, lim); err != nil {
		return nil, err
	}
	if err := img.checkWithDiskfs(vol.diskfsRoot); err != nil {
		return nil, err
	}
	img.boot, img.bootErr = readBootCatalog(r, size, vol.bootCatalog, vol.hasBootRecord)
	for i := range img.boot {
		if l := img.byOffset[img.boot[i].Offset]; l != nil {
			img.boot[i].Path, img.boot[i].Size = l.path, l.n.size
		}
	}
	img.byOffset = nil
	if img.bootErr != nil {
		img.warnings = append(img.warnings, "El Torito boot catalog ignored: "+img.bootErr.Error())
	}
	return img, nil
}

// Close releases the file opened by Open. Files opened from the image fail
// after Close.
func (img *Image) Close() error {
	if img.closer == nil {
		return nil
	}
	return img.closer.Close()
}

// Label returns the volume identifier ("Rocky-9-0-x86_64-dvd").
func (img *Image) Label() string { return img.label }

// Size returns the size of the image in bytes.
func (img *Image) Size() int64 { return img.size }

// NameSource tells which names the index uses: "rockridge", "joliet" (no
// Rock Ridge but a Joliet tree) or "iso9660" (plain 8.3-style names).
func (img *Image) NameSource() string { return img.names }

// Warnings lists what was skipped or repaired while indexing (invalid or
// duplicate names, unreadable boot catalog).
func (img *Image) Warnings() []string { return slices.Clone(img.warnings) }

// volumes is what the volume descriptors say.
type volumes struct {
	label         string
	root          []byte // primary root directory record (34 bytes)
	jolietRoot    []byte // Joliet root record, nil without Joliet
	bootCatalog   uint32
	hasBootRecord bool
	blocks        uint32 // volume space size, in logical blocks
	diskfsRoot    []byte // root record of the last primary descriptor, the one go-diskfs uses
}

const maxDescriptors = 64

// readVolumes reads the volume descriptor set starting at sector 16.
func readVolumes(r io.ReaderAt, size int64) (volumes, error) {
	var v volumes
	if size < 17*sectorSize {
		return v, fmt.Errorf("%w: %d bytes is too small for an ISO 9660 volume", ErrBadImage, size)
	}
	var pvd bool
	buf := make([]byte, sectorSize)
	for i := int64(0); ; i++ {
		if i >= maxDescriptors {
			return v, fmt.Errorf("%w: no volume descriptor set terminator in %d sectors", ErrBadImage, maxDescriptors)
		}
		off := (16 + i) * sectorSize
		if off+sectorSize > size {
			return v, fmt.Errorf("%w: volume descriptors run past the end of the image", ErrBadImage)
		}
		if _, err := r.ReadAt(buf, off); err != nil {
			return v, fmt.Errorf("%w: reading volume descriptor: %v", ErrBadImage, err)
		}
		if string(buf[1:6]) != "CD001" {
			if i == 0 {
				return v, fmt.Errorf("%w: no CD001 signature at sector 16", ErrBadImage)
			}
			return v, fmt.Errorf("%w: volume descriptor %d has no CD001 signature", ErrBadImage, i)
		}
		switch buf[0] {
		case 0: // boot record
			if strings.HasPrefix(string(buf[7:39]), "EL TORITO SPECIFICATION") {
				v.hasBootRecord = true
				v.bootCatalog = binary.LittleEndian.Uint32(buf[71:75])
			}
		case 1:
			// go-diskfs reads the path table of every primary and
			// supplementary descriptor (the last one wins), so each
			// size is bounded, not only the one used here.
			if pts := binary.LittleEndian.Uint32(buf[132:136]); int64(pts) > 16<<20 || int64(pts) > size {
				return v, fmt.Errorf("%w: path table of %d bytes", ErrBadImage, pts)
			}
			v.diskfsRoot = bytes.Clone(buf[156:190])
			if pvd {
				continue
			}
			pvd = true
			if bs := binary.LittleEndian.Uint16(buf[128:130]); bs != sectorSize {
				return v, fmt.Errorf("%w: logical block size %d, only 2048 is supported", ErrBadImage, bs)
			}
			v.blocks = binary.LittleEndian.Uint32(buf[80:84])
			v.label = strings.TrimRight(string(buf[40:72]), " \x00")
			v.root = bytes.Clone(buf[156:190])
		case 2:
			if pts := binary.LittleEndian.Uint32(buf[132:136]); int64(pts) > 16<<20 || int64(pts) > size {
				return v, fmt.Errorf("%w: supplementary path table of %d bytes", ErrBadImage, pts)
			}
			esc := buf[88:91]
			if esc[0] == '%' && esc[1] == '/' && (esc[2] == '@' || esc[2] == 'C' || esc[2] == 'E') {
				v.jolietRoot = bytes.Clone(buf[156:190])
			}
		case 255:
			if !pvd {
				return v, fmt.Errorf("%w: no primary volume descriptor", ErrBadImage)
			}
			return v, nil
		}
	}
}

// indexer builds the node tree breadth-first with every bound checked.
type indexer struct {
	img      *Image
	lim      Limits
	mode     nameMode
	susp     bool
	skip     int
	entries  int
	dirBytes int64
	visited  map[uint32]bool
}

type pending struct {
	n     *node
	lba   uint32
	size  uint32
	depth int
	path  string
}

// index chooses the name source (Rock Ridge, else Joliet, else plain) and
// walks the tree.
func (img *Image) index(v volumes, lim Limits) error {
	ix := &indexer{img: img, lim: lim, visited: map[uint32]bool{}}
	root, _, err := parseRecord(v.root, namesPlain, false, 0, nil)
	if err != nil {
		return fmt.Errorf("%w: root directory record: %v", ErrBadImage, err)
	}
	if err := ix.checkDirExtent(root.lba, root.size); err != nil {
		return err
	}
	// The root's "." record carries SUSP SP and the Rock Ridge ER.
	first := make([]byte, 255)
	n, _ := img.r.ReadAt(first, int64(root.lba)*sectorSize)
	dot, _, err := parseRecord(first[:n], namesRockRidge, true, 0, ix.continuation)
	if err == nil && dot.dot && dot.hasSP && dot.hasRR {
		ix.mode, ix.susp, ix.skip = namesRockRidge, true, dot.spSkip
		img.names = "rockridge"
	} else if v.jolietRoot != nil {
		jr, _, err := parseRecord(v.jolietRoot, namesPlain, false, 0, nil)
		if err != nil {
			return fmt.Errorf("%w: Joliet root directory record: %v", ErrBadImage, err)
		}
		if err := ix.checkDirExtent(jr.lba, jr.size); err != nil {
			return err
		}
		root = jr
		ix.mode = namesJoliet
		img.names = "joliet"
	} else {
		img.names = "iso9660"
	}
	img.root = &node{mode: fs.ModeDir | 0o555, mtime: root.mtime}
	img.root.parent = img.root
	queue := []pending{{n: img.root, lba: root.lba, size: root.size, path: ""}}
	ix.visited[root.lba] = true
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		subs, err := ix.readDir(p)
		if err != nil {
			return err
		}
		queue = append(queue, subs...)
	}
	return nil
}

const maxWarnings = 100

// warn records an indexing problem; a hostile image could produce millions,
// so only the first maxWarnings are kept.
func (ix *indexer) warn(format string, args ...any) {
	switch n := len(ix.img.warnings); {
	case n < maxWarnings:
		ix.img.warnings = append(ix.img.warnings, fmt.Sprintf(format, args...))
	case n == maxWarnings:
		ix.img.warnings = append(ix.img.warnings, "more problems not listed")
	}
}

func (ix *indexer) checkDirExtent(lba, size uint32) error {
	end := (int64(lba) + 1) * sectorSize
	if int64(size) > sectorSize {
		end = int64(lba)*sectorSize + int64(size)
	}
	if lba < 16 || end > ix.img.size {
		return fmt.Errorf("%w: directory extent at sector %d (%d bytes) lies outside the image", ErrBadImage, lba, size)
	}
	return nil
}

// continuation reads a SUSP continuation area, bounded to one sector and
// to the image.
func (ix *indexer) continuation(lba, off, length uint32) ([]byte, error) {
	if length > sectorSize || off >= sectorSize || int64(off)+int64(length) > sectorSize {
		return nil, fmt.Errorf("%w: rock ridge continuation area of %d bytes at offset %d", ErrBadImage, length, off)
	}
	at := int64(lba)*sectorSize + int64(off)
	if at+int64(length) > ix.img.size {
		return nil, fmt.Errorf("%w: rock ridge continuation area beyond the end of the image", ErrBadImage)
	}
	ix.dirBytes += int64(length)
	if ix.dirBytes > ix.lim.MaxDirBytes {
		return nil, fmt.Errorf("%w: %w: more than %d bytes of directory records", ErrBadImage, ErrLimit, ix.lim.MaxDirBytes)
	}
	b := make([]byte, length)
	if _, err := ix.img.r.ReadAt(b, at); err != nil {
		return nil, fmt.Errorf("%w: reading continuation area: %v", ErrBadImage, err)
	}
	return b, nil
}

// readDir reads one directory extent, fills p.n.children and returns the
// subdirectories still to read.
func (ix *indexer) readDir(p pending) ([]pending, error) {
	if p.depth > ix.lim.MaxDepth {
		return nil, fmt.Errorf("%w: %w: directories nested deeper than %d at %q", ErrBadImage, ErrLimit, ix.lim.MaxDepth, p.path)
	}
	if err := ix.checkDirExtent(p.lba, p.size); err != nil {
		return nil, err
	}
	ix.dirBytes += int64(p.size)
	if ix.dirBytes > ix.lim.MaxDirBytes {
		return nil, fmt.Errorf("%w: %w: more than %d bytes of directory records", ErrBadImage, ErrLimit, ix.lim.MaxDirBytes)
	}
	data := make([]byte, p.size)
	if _, err := ix.img.r.ReadAt(data, int64(p.lba)*sectorSize); err != nil {
		return nil, fmt.Errorf("%w: reading directory %q: %v", ErrBadImage, p.path, err)
	}
	var (
		kids []*node
		subs []pending
		prev *node // last file, for multi-extent chains
		open bool  // prev has the multi-extent flag and expects more
	)
	finishChain := func() {
		if open && prev != nil {
			prev.err = fmt.Errorf("%w: %q: multi-extent chain does not end", ErrIncompleteFile, join(p.path, prev.name))
		}
		open = false
	}
	for off := 0; off < len(data); {
		if data[off] == 0 { // records never cross sectors; zero pads to the next
			off = (off/sectorSize + 1) * sectorSize
			continue
		}
		rec, n, err := parseRecord(data[off:min(len(data), (off/sectorSize+1)*sectorSize)], ix.mode, ix.susp, ix.skip, ix.continuation)
		if err != nil {
			return nil, fmt.Errorf("%w: directory %q: %v", ErrBadImage, p.path, err)
		}
		off += n
		if rec.dot || rec.dotdot || rec.relocted || rec.flags&flagAssociated != 0 {
			continue // associated files are resource forks, never the file itself
		}
		name := rec.name
		if !validName(name) {
			ix.warn("skipped entry with invalid name %q in %q", name, "/"+p.path)
			finishChain()
			continue
		}
		// A continuation of a multi-extent file: same name as the
		// previous record, which had the multi-extent flag.
		if open && prev != nil && prev.name == name && rec.flags&flagDirectory == 0 {
			if err := ix.addExtent(prev, rec, p.path); err != nil {
				return nil, err
			}
			open = rec.flags&flagMultiExtnt != 0
			continue
		}
		finishChain()
		ix.entries++
		if ix.entries > ix.lim.MaxEntries {
			return nil, fmt.Errorf("%w: %w: more than %d entries", ErrBadImage, ErrLimit, ix.lim.MaxEntries)
		}
		nd := &node{name: name, mtime: rec.mtime, parent: p.n}
		isDir := rec.flags&flagDirectory != 0 || rec.hasCL
		switch {
		case rec.isLink && rec.link != "":
			nd.mode = fs.ModeSymlink | 0o777
			nd.link = rec.link
			nd.size = int64(len(rec.link))
		case isDir:
			nd.mode = fs.ModeDir | 0o555
			if rec.hasMode {
				nd.mode = fs.ModeDir | rec.mode.Perm()
			}
			lba, size := rec.lba, rec.size
			if rec.hasCL {
				lba, size = rec.childLBA, sectorSize // the real size is in its "." record
				if s, err := ix.dotSize(lba); err == nil {
					size = s
				}
			}
			if ix.visited[lba] {
				ix.warn("skipped directory %q that repeats another", join(p.path, name))
				continue
			}
			ix.visited[lba] = true
			subs = append(subs, pending{n: nd, lba: lba, size: size, depth: p.depth + 1, path: join(p.path, name)})
		default:
			nd.mode = 0o444
			if rec.hasMode && rec.mode.Type() == 0 {
				nd.mode = rec.mode.Perm()
			}
			if err := ix.addExtent(nd, rec, p.path); err != nil {
				return nil, err
			}
			prev, open = nd, rec.flags&flagMultiExtnt != 0
		}
		kids = append(kids, nd)
	}
	finishChain()
	slices.SortStableFunc(kids, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	// Keep the first of duplicate names: an fs.FS cannot show two.
	out := kids[:0]
	for i, k := range kids {
		if i > 0 && k.name == kids[i-1].name {
			ix.warn("skipped duplicate name %q", join(p.path, k.name))
			if k.mode.IsDir() {
				subs = slices.DeleteFunc(subs, func(s pending) bool { return s.n == k })
			}
			continue
		}
		out = append(out, k)
	}
	p.n.children = slices.Clip(out)
	return subs, nil
}

// dotSize reads the size of a directory from its own "." record (used for
// Rock Ridge relocated directories, whose CL entry gives only a location).
func (ix *indexer) dotSize(lba uint32) (uint32, error) {
	if err := ix.checkDirExtent(lba, 0); err != nil {
		return 0, err
	}
	b := make([]byte, 34)
	if _, err := ix.img.r.ReadAt(b, int64(lba)*sectorSize); err != nil {
		return 0, err
	}
	rec, _, err := parseRecord(b, namesPlain, false, 0, nil)
	if err != nil {
		return 0, err
	}
	return rec.size, nil
}

// addExtent appends one record's extent to a file, refusing extents that lie
// outside the image (which would otherwise read as a silently cut file).
func (ix *indexer) addExtent(n *node, rec dirRecord, dir string) error {
	off := int64(rec.lba) * sectorSize
	size := int64(rec.size)
	if size > 0 && off+size > ix.img.size {
		n.err = fmt.Errorf("%w: %q: extent at sector %d (%d bytes) runs past the end of the image", ErrIncompleteFile, join(dir, n.name), rec.lba, size)
	}
	if len(n.ext) >= 4096 {
		return fmt.Errorf("%w: %w: %q has more than 4096 extents", ErrBadImage, ErrLimit, join(dir, n.name))
	}
	n.ext = append(n.ext, extent{off: off, size: size})
	n.size += size
	if size > 0 {
		if _, ok := ix.img.byOffset[off]; !ok {
			ix.img.byOffset[off] = &located{path: join(dir, n.name), n: n}
		}
	}
	return nil
}

// located is a file found by its first extent.
type located struct {
	path string
	n    *node
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// checkWithDiskfs has go-diskfs, the reader of record, read the volume
// too: an image it cannot read is refused even if our own index succeeded.
// What go-diskfs reads there is bounded first: the volume descriptors and
// path table sizes by readVolumes, the root's SUSP continuation chain by
// checkDiskfsSUSP.
func (img *Image) checkWithDiskfs(diskfsRoot []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: ISO 9660 reader fault: %v", ErrBadImage, p)
		}
	}()
	if err := checkDiskfsSUSP(img.r, img.size, diskfsRoot); err != nil {
		return err
	}
	st := newStorage(img.r, img.size)
	if _, err := iso9660.Read(st, img.size, 0, 0); err != nil {
		return fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	return nil
}

// checkDiskfsSUSP bounds what go-diskfs's iso9660.Read does with the first
// record of the root directory: it parses its system use area and, while
// the last entry is a CE, reads the continuation area (allocating the
// length the CE gives) and appends its entries, with no bound; a CE that
// points at itself made it spin forever. This follows the same chain the
// same way, at most maxCEHops areas of at most one sector inside the image.
func checkDiskfsSUSP(r io.ReaderAt, size int64, rootRec []byte) error {
	if len(rootRec) < 34 {
		return nil
	}
	lba := int64(binary.LittleEndian.Uint32(rootRec[2:6]))
	if lba*sectorSize+sectorSize > size {
		return nil // go-diskfs fails to read it
	}
	rec := make([]byte, 255)
	n, _ := r.ReadAt(rec, lba*sectorSize)
	rec = rec[:n]
	if len(rec) == 0 || int(rec[0]) < 34 || int(rec[0]) > len(rec) {
		return nil // go-diskfs refuses or faults (recovered) before any CE
	}
	rec = rec[:rec[0]]
	nameLen := int(rec[32])
	if nameLen > 1 && nameLen%2 == 0 {
		nameLen++
	}
	if 33+nameLen >= len(rec) {
		return nil // no system use area
	}
	// entry is one system use entry as go-diskfs lists it: only CEs
	// matter, and only whether the last of the list is one.
	type entry struct {
		ce               bool
		lba, off, length uint32
	}
	parse := func(b []byte, out []entry) []entry {
		for i := 0; i+3 < len(b); {
			sz := int(b[i+2])
			if sz < 4 || i+sz > len(b) {
				break // go-diskfs stops too (or faults, recovered)
			}
			e := entry{ce: string(b[i:i+2]) == "CE" && sz == 28}
			if e.ce {
				e.lba, e.off, e.length = binary.LittleEndian.Uint32(b[i+4:]), binary.LittleEndian.Uint32(b[i+12:]), binary.LittleEndian.Uint32(b[i+20:])
			}
			out = append(out, e)
			i += sz
		}
		return out
	}
	list := parse(rec[33+nameLen:], nil)
	for hops := 0; len(list) > 0 && list[len(list)-1].ce; hops++ {
		if hops >= maxCEHops {
			return fmt.Errorf("%w: root directory: system use continuation areas do not end after %d (a loop?)", ErrBadImage, maxCEHops)
		}
		c := list[len(list)-1]
		list = list[:len(list)-1]
		at := int64(c.lba)*sectorSize + int64(c.off)
		if c.length > sectorSize || at+int64(c.length) > size {
			return fmt.Errorf("%w: root directory: continuation area of %d bytes at sector %d offset %d does not fit the image", ErrBadImage, c.length, c.lba, c.off)
		}
		area := make([]byte, c.length)
		if _, err := r.ReadAt(area, at); err != nil {
			return fmt.Errorf("%w: reading root directory continuation area: %v", ErrBadImage, err)
		}
		list = parse(area, list)
	}
	return nil
}
