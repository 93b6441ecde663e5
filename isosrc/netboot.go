package isosrc

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"
)

// Bounds for unpacking a netboot tarball into memory. Debian 12's
// netboot.tar.gz unpacks to about 80 MB in 600 entries.
const (
	maxNetbootBytes   = 512 << 20
	maxNetbootEntries = 10_000
)

// OpenNetboot opens a companion netboot source for Debian images: either a
// directory (an unpacked netboot.tar.gz, or /usr/lib/debian-installer/
// images/12/amd64/text from the debian-installer-12-netboot-amd64 package)
// or the netboot.tar.gz file itself, which is unpacked into memory once.
// Pass the result to Distro.UseNetboot and serve kernel and initrd from it.
// Any other kind of path (a named pipe, a device) gives an error wrapping
// ErrFileType, without blocking; so does opening such a file inside the
// directory.
func OpenNetboot(p string) (fs.FS, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return netbootDir{dir: p, fsys: os.DirFS(p)}, nil
	}
	f, _, err := openNonblock(p, fs.FileMode.IsRegular, "a directory or a regular file")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fsys, err := readNetbootTar(f)
	if err != nil {
		return nil, fmt.Errorf("isosrc: %s: %w", p, err)
	}
	return fsys, nil
}

// readNetbootTar unpacks a gzip-compressed tar (plain tar also accepted)
// into an in-memory file system, keeping symlinks.
func readNetbootTar(r io.Reader) (fs.FS, error) {
	br := &peekReader{r: r}
	var src io.Reader = br
	if hdr, _ := br.peek(2); len(hdr) == 2 && hdr[0] == 0x1f && hdr[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	out := fstest.MapFS{}
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading netboot tar: %w", err)
		}
		if n >= maxNetbootEntries {
			return nil, fmt.Errorf("netboot tar has more than %d entries", maxNetbootEntries)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || !fs.ValidPath(name) {
			continue
		}
		mt := h.ModTime
		if mt.IsZero() {
			mt = time.Time{}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			out[name] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: mt}
		case tar.TypeSymlink:
			out[name] = &fstest.MapFile{Data: []byte(h.Linkname), Mode: fs.ModeSymlink | 0o777, ModTime: mt}
		case tar.TypeReg:
			total += h.Size
			if h.Size < 0 || total > maxNetbootBytes {
				return nil, fmt.Errorf("netboot tar unpacks to more than %d bytes", maxNetbootBytes)
			}
			b, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				return nil, fmt.Errorf("reading %s from netboot tar: %w", name, err)
			}
			out[name] = &fstest.MapFile{Data: b, Mode: 0o644, ModTime: mt}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("netboot tar is empty")
	}
	return out, nil
}

// peekReader lets readNetbootTar look at the magic bytes first.
type peekReader struct {
	r   io.Reader
	buf []byte
}

func (p *peekReader) peek(n int) ([]byte, error) {
	for len(p.buf) < n {
		b := make([]byte, n-len(p.buf))
		m, err := p.r.Read(b)
		p.buf = append(p.buf, b[:m]...)
		if err != nil {
			return p.buf, err
		}
	}
	return p.buf[:n], nil
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// netbootDir is os.DirFS(dir) except that opening never blocks: only
// regular files and directories are opened, with O_NONBLOCK, so that a
// named pipe in the tree cannot hang a server that reads it.
type netbootDir struct {
	dir  string
	fsys fs.FS // os.DirFS(dir), for the calls that open nothing
}

var (
	_ fs.StatFS     = netbootDir{}
	_ fs.ReadLinkFS = netbootDir{}
)

// Open opens a regular file or a directory of the tree.
func (d netbootDir) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, _, err := openNonblock(filepath.Join(d.dir, filepath.FromSlash(name)),
		func(m fs.FileMode) bool { return m.IsRegular() || m.IsDir() }, "a regular file or directory")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = name // the fs.FS name, as os.DirFS reports it
		}
		return nil, err
	}
	return f, nil
}

// Stat describes a file of the tree, following symbolic links.
func (d netbootDir) Stat(name string) (fs.FileInfo, error) { return fs.Stat(d.fsys, name) }

// Lstat describes a file of the tree without following a final link.
func (d netbootDir) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(d.fsys, name) }

// ReadLink returns a symbolic link's target.
func (d netbootDir) ReadLink(name string) (string, error) { return fs.ReadLink(d.fsys, name) }
