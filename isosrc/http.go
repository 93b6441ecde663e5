package isosrc

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"
)

// Handler returns an HTTP handler that serves the image as
// http.FileServerFS(img) does (directory listings, ranges, conditional
// requests), but sends regular files with sendfile(2): each request gets
// its own descriptor of the image file, positioned on the file's extent and
// handed only to http.ServeContent, which always bounds the copy to the
// file's size. Images not opened by Open from a path, multi-extent files and
// directories are served by http.FileServerFS(img).
func (img *Image) Handler() http.Handler {
	return &handler{img: img, fallback: http.FileServerFS(img)}
}

type handler struct {
	img      *Image
	fallback http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") {
		upath = "/" + upath
	}
	name := strings.TrimPrefix(path.Clean(upath), "/")
	// FileServer's redirects (".../index.html", directories) stay its own.
	if h.img.file == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) ||
		name == "" || strings.HasSuffix(upath, "/") || strings.HasSuffix(upath, "/index.html") {
		h.fallback.ServeHTTP(w, r)
		return
	}
	n, err := h.img.resolve("open", name, true)
	if err != nil || !n.mode.IsRegular() || n.err != nil || len(n.ext) != 1 {
		h.fallback.ServeHTTP(w, r)
		return
	}
	sr, err := h.img.sendfileReader(n)
	if err != nil {
		h.fallback.ServeHTTP(w, r)
		return
	}
	defer sr.f.Close()
	http.ServeContent(w, r, path.Base(name), n.mtime, sr)
}

// sendfileReader opens a new open-file description of the image (so that
// its offset is private) via /proc/self/fd: the same inode even if the path
// was replaced since Open.
func (img *Image) sendfileReader(n *node) (*boundedFile, error) {
	raw, err := img.file.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd uintptr
	if err := raw.Control(func(f uintptr) { fd = f }); err != nil {
		return nil, err
	}
	f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, err
	}
	b := &boundedFile{f: f, base: n.ext[0].off, size: n.size}
	if _, err := f.Seek(b.base, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// boundedFile is one file of the image as a ReadSeeker over a private
// descriptor. It offers SyscallConn so net/http can use sendfile; that is
// only safe because the value never leaves ServeHTTP, where every copy is
// an io.CopyN bounded by the size Seek reports.
type boundedFile struct {
	f          *os.File
	base, size int64
	pos        int64
}

func (b *boundedFile) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if rest := b.size - b.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.f.Read(p)
	b.pos += int64(n)
	if errors.Is(err, io.EOF) && b.pos < b.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *boundedFile) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.pos + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("isosrc: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("isosrc: negative position")
	}
	if _, err := b.f.Seek(b.base+min(abs, b.size), io.SeekStart); err != nil {
		return 0, err
	}
	b.pos = abs
	return abs, nil
}

// SyscallConn exposes the descriptor to net's sendfile path.
func (b *boundedFile) SyscallConn() (syscall.RawConn, error) { return b.f.SyscallConn() }
