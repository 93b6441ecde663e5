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
	"strings"
	"testing/fstest"
	"time"

	"github.com/pxekit/pxekit/internal/rootfs"
)

// Bounds for unpacking a netboot tarball into memory. Debian 12's
// netboot.tar.gz unpacks to about 80 MB in 600 entries.
const (
	maxNetbootBytes   = 512 << 20
	maxNetbootEntries = 10_000
)

// OpenNetboot opens a companion netboot source for Debian: either a
// directory (an unpacked netboot.tar.gz, or /usr/lib/debian-installer/
// images/12/amd64/text from the debian-installer-12-netboot-amd64 package)
// or the netboot.tar.gz file itself, which is unpacked into memory once.
// Pass the result to Distro.WithNetboot or NetbootDistro and serve kernel
// and initrd from it.
//
// A directory is served the way a TFTP server confined to it would: names
// are resolved inside it with os.Root, so neither ".." nor a symbolic link
// leads out (links that stay inside work), and only regular files can be
// opened or stat'ed. A directory, FIFO, socket or device inside gives an
// error matching both ErrFileType and fs.ErrNotExist, so the tree cannot be
// listed (HTTP servers answer 404), and opening never blocks on a named
// pipe. The files it opens are *os.File, which net/http sends with
// sendfile(2). The directory stays open until the result is closed.
//
// The result always implements io.Closer; closing an unpacked tarball only
// drops it. Any other kind of path (a named pipe, a device) gives an error
// wrapping ErrFileType, without blocking.
func OpenNetboot(p string) (fs.FS, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		dir, err := rootfs.OpenDir(p, rootfs.Errors{
			NotRegular: func(m fs.FileMode) error {
				return &fileTypeError{kind: fileKind(m), want: "a regular file"}
			},
			Outside: func(err error) error {
				return fmt.Errorf("leads outside the netboot directory (%v): %w", err, fs.ErrNotExist)
			},
		})
		if err != nil {
			return nil, err // not a nil *rootfs.FS in a non-nil fs.FS
		}
		return dir, nil
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
	return netbootTar{fsys}, nil
}

// netbootTar is an unpacked netboot tarball; Close makes it an io.Closer
// like a netboot directory, so callers close whatever OpenNetboot returned.
type netbootTar struct{ fstest.MapFS }

// Close does nothing: the tree is in memory and freed with the last
// reference.
func (netbootTar) Close() error { return nil }

// readNetbootTar unpacks a gzip-compressed tar (plain tar also accepted)
// into an in-memory file system, keeping symlinks.
func readNetbootTar(r io.Reader) (fstest.MapFS, error) {
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
