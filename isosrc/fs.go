package isosrc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// Interface checks: what http.FileServerFS, TFTP servers and fstest need.
var (
	_ fs.FS         = (*Image)(nil)
	_ fs.ReadDirFS  = (*Image)(nil)
	_ fs.ReadFileFS = (*Image)(nil)
	_ fs.StatFS     = (*Image)(nil)
	_ fs.ReadLinkFS = (*Image)(nil)
	_ io.ReaderAt   = (*File)(nil)
	_ io.Seeker     = (*File)(nil)
)

// resolve walks name through the index. Symbolic links in the middle of the
// path are always followed; the last element is followed when followLast is
// set. Absolute link targets are taken relative to the image root.
func (img *Image) resolve(op, name string, followLast bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	cur := img.root
	var parts []string
	if name != "." {
		parts = strings.Split(name, "/")
	}
	hops := 0
	for len(parts) > 0 {
		el := parts[0]
		parts = parts[1:]
		switch el {
		case "", ".":
			continue
		case "..":
			cur = cur.parent
			continue
		}
		if !cur.mode.IsDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		next := cur.lookup(el)
		if next == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if next.mode&fs.ModeSymlink != 0 && (len(parts) > 0 || followLast) {
			hops++
			if hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: op, Path: name, Err: ErrSymlinkLoop}
			}
			target := next.link
			if strings.HasPrefix(target, "/") {
				cur = img.root
			}
			parts = append(strings.Split(target, "/"), parts...)
			continue
		}
		cur = next
	}
	return cur, nil
}

// Open opens the named file, following symbolic links. Regular files come
// back as *File (io.ReaderAt, io.Seeker); directories as fs.ReadDirFile.
func (img *Image) Open(name string) (fs.File, error) {
	n, err := img.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: n.err}
	}
	base := path.Base(name)
	if n.mode.IsDir() {
		return &dirFile{info: fileInfo{name: base, n: n}, n: n}, nil
	}
	f := &File{info: fileInfo{name: base, n: n}}
	f.sr = io.NewSectionReader(extentReader{img: img, n: n}, 0, n.size)
	return f, nil
}

// OpenFile is Open returning the concrete *File, for callers that want
// io.ReaderAt without a type assertion. It fails for directories.
func (img *Image) OpenFile(name string) (*File, error) {
	f, err := img.Open(name)
	if err != nil {
		return nil, err
	}
	rf, ok := f.(*File)
	if !ok {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	return rf, nil
}

// Stat returns the FileInfo of the named file, following symbolic links.
func (img *Image) Stat(name string) (fs.FileInfo, error) {
	n, err := img.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), n: n}, nil
}

// Lstat returns the FileInfo of the named file without following a final
// symbolic link.
func (img *Image) Lstat(name string) (fs.FileInfo, error) {
	n, err := img.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), n: n}, nil
}

// ReadLink returns the target of the named symbolic link as stored in the
// image (Rock Ridge SL).
func (img *Image) ReadLink(name string) (string, error) {
	n, err := img.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.link, nil
}

// ReadDir returns the named directory's entries sorted by name. Symbolic
// links are listed as links (fs.ModeSymlink), as os.ReadDir does.
func (img *Image) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := img.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	out := make([]fs.DirEntry, len(n.children))
	for i, c := range n.children {
		out[i] = dirEntry{c}
	}
	return out, nil
}

// maxReadFile bounds ReadFile, which holds a whole file in memory; use Open
// for anything bigger.
const maxReadFile = 256 << 20

// ReadFile reads the whole named file. Files over 256 MiB are refused: read
// those through Open.
func (img *Image) ReadFile(name string) ([]byte, error) {
	f, err := img.OpenFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size() > maxReadFile {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fmt.Errorf("%d bytes is more than ReadFile's %d-byte limit; use Open", f.Size(), maxReadFile)}
	}
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return b, nil
}

// File is an open regular file of an Image. ReadAt may be called from many
// goroutines at once; Read and Seek share one offset, like *os.File.
type File struct {
	info   fileInfo
	sr     *io.SectionReader
	closed atomic.Bool
}

// Read reads from the current offset.
func (f *File) Read(p []byte) (int, error) {
	if f.closed.Load() {
		return 0, fs.ErrClosed
	}
	return f.sr.Read(p)
}

// ReadAt reads len(p) bytes at off; it is safe for concurrent use.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, fs.ErrClosed
	}
	return f.sr.ReadAt(p, off)
}

// Seek sets the offset for the next Read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if f.closed.Load() {
		return 0, fs.ErrClosed
	}
	return f.sr.Seek(offset, whence)
}

// Size returns the file's length in bytes (all extents).
func (f *File) Size() int64 { return f.info.n.size }

// Stat describes the file.
func (f *File) Stat() (fs.FileInfo, error) { return f.info, nil }

// Close marks the file closed; the image stays open.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return fs.ErrClosed
	}
	return nil
}

// extentReader maps file offsets onto the file's extents in the image.
type extentReader struct {
	img *Image
	n   *node
}

func (e extentReader) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for _, x := range e.n.ext {
		if len(p) == 0 {
			break
		}
		if off >= x.size {
			off -= x.size
			continue
		}
		want := min(int64(len(p)), x.size-off)
		n, err := e.img.r.ReadAt(p[:want], x.off+off)
		total += n
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == want) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the extent was checked to lie inside the image
			}
			return total, err
		}
		p = p[n:]
		off = 0
	}
	if len(p) > 0 {
		return total, io.EOF
	}
	return total, nil
}

// dirFile is an open directory.
type dirFile struct {
	info   fileInfo
	n      *node
	pos    int
	closed bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error {
	if d.closed {
		return fs.ErrClosed
	}
	d.closed = true
	return nil
}

// ReadDir returns the next n entries in name order (all remaining for n <= 0).
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.n.children[d.pos:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.pos += len(rest)
	out := make([]fs.DirEntry, len(rest))
	for i, c := range rest {
		out[i] = dirEntry{c}
	}
	return out, nil
}

type fileInfo struct {
	name string
	n    *node
}

func (fi fileInfo) Name() string {
	if fi.name == "" || fi.name == "." {
		if fi.n.parent == fi.n {
			return "."
		}
		return fi.n.name
	}
	return fi.name
}
func (fi fileInfo) Size() int64        { return fi.n.size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.n.mode }
func (fi fileInfo) ModTime() time.Time { return fi.n.mtime }
func (fi fileInfo) IsDir() bool        { return fi.n.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }

type dirEntry struct{ n *node }

func (d dirEntry) Name() string               { return d.n.name }
func (d dirEntry) IsDir() bool                { return d.n.mode.IsDir() }
func (d dirEntry) Type() fs.FileMode          { return d.n.mode.Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return fileInfo{name: d.n.name, n: d.n}, nil }
func (d dirEntry) String() string             { return fs.FormatDirEntry(d) }

// storage adapts an io.ReaderAt to go-diskfs's backend.Storage, read-only.
type storage struct {
	*io.SectionReader
}

func newStorage(r io.ReaderAt, size int64) storage {
	return storage{io.NewSectionReader(r, 0, size)}
}

func (s storage) Stat() (fs.FileInfo, error) { return storageInfo{size: s.Size()}, nil }
func (s storage) Close() error               { return nil }
func (s storage) Sys() (*os.File, error)     { return nil, backend.ErrNotSuitable }
func (s storage) Writable() (backend.WritableFile, error) {
	return nil, backend.ErrIncorrectOpenMode
}
func (s storage) Path() string { return "" }

type storageInfo struct{ size int64 }

func (s storageInfo) Name() string       { return "image" }
func (s storageInfo) Size() int64        { return s.size }
func (s storageInfo) Mode() fs.FileMode  { return 0o444 }
func (s storageInfo) ModTime() time.Time { return time.Time{} }
func (s storageInfo) IsDir() bool        { return false }
func (s storageInfo) Sys() any           { return nil }
