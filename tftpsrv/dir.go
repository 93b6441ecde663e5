package tftpsrv

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/pxekit/pxekit/internal/rootfs"
)

// ErrNotRegular reports a name that exists but is not a regular file (a
// directory, FIFO, socket or device). DirFS joins it with fs.ErrNotExist, so
// servers answer "not found" and a client cannot tell the two apart, while
// callers can with errors.Is.
var ErrNotRegular = errors.New("tftpsrv: not a regular file")

// DirFS is a read-only, files-only view of one directory; see Dir.
type DirFS struct {
	fsys *rootfs.FS
}

// Dir returns an fs.FS confined to the directory dir the way tftpd-hpa -s is,
// without a chroot: names are resolved inside dir with os.Root, so neither
// ".." nor a symbolic link can reach anything outside it, while relative
// links that stay inside work. Absolute links are refused even when they
// point inside (under tftpd-hpa's chroot they would resolve against the new
// root). A name that leads outside matches ErrInvalidName and
// fs.ErrNotExist.
//
// Only regular files can be opened: a directory, FIFO, socket or device is
// refused with an error matching both ErrNotRegular and fs.ErrNotExist, so
// that net/http's FileServerFS answers 404 instead of listing a directory,
// and a FIFO can never block a server. Names are io/fs names
// (fs.ValidPath); others fail with fs.ErrInvalid.
//
// Because directories cannot be opened, fs.ReadDir and fs.WalkDir do not
// work on a DirFS, and neither does FileHandler.FoldCase.
//
// The directory stays open until Close, and a DirFS keeps serving the
// directory it opened even if dir is later renamed or replaced.
func Dir(dir string) (*DirFS, error) {
	fsys, err := rootfs.OpenDir(dir, rootfs.Errors{
		NotRegular: func(m fs.FileMode) error {
			return fmt.Errorf("%w (%s): %w", ErrNotRegular, kindOf(m), fs.ErrNotExist)
		},
		// What tftpd-hpa -s answers for a link whose target is missing
		// inside its chroot.
		Outside: func(err error) error {
			return fmt.Errorf("%w (%v): %w", ErrInvalidName, err, fs.ErrNotExist)
		},
	})
	if err != nil {
		return nil, err
	}
	return &DirFS{fsys: fsys}, nil
}

// Open opens the named regular file for reading. It never blocks on the
// kind of file: the name is checked with a stat before it is opened (so
// opening a device node, which may have side effects, is not attempted),
// the file is opened non-blocking and without becoming a controlling
// terminal, and the opened file is checked again, closing any race with
// the tree changing in between.
func (d *DirFS) Open(name string) (fs.File, error) { return d.fsys.Open(name) }

// Stat describes the named regular file, following symbolic links inside
// the directory. It refuses what Open refuses, with the same errors, so
// that Stat and Open agree on what exists.
func (d *DirFS) Stat(name string) (fs.FileInfo, error) { return d.fsys.Stat(name) }

// Close releases the directory. Files already open stay usable; Open and
// Stat fail afterwards.
func (d *DirFS) Close() error { return d.fsys.Close() }

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	default:
		return "irregular file"
	}
}
