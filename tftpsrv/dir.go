package tftpsrv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular reports a name that exists but is not a regular file (a
// directory, FIFO, socket or device). DirFS joins it with fs.ErrNotExist, so
// servers answer "not found" and a client cannot tell the two apart, while
// callers can with errors.Is.
var ErrNotRegular = errors.New("tftpsrv: not a regular file")

// DirFS is a read-only, files-only view of one directory; see Dir.
type DirFS struct {
	root *os.Root
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
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &DirFS{root: root}, nil
}

// Open opens the named regular file for reading. It never blocks on the
// kind of file: the name is checked with a stat before it is opened (so
// opening a device node, which may have side effects, is not attempted),
// the file is opened non-blocking and without becoming a controlling
// terminal, and the opened file is checked again, closing any race with
// the tree changing in between.
func (d *DirFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	st, err := d.root.Stat(name)
	if err != nil {
		return nil, cleanPathError("open", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular("open", name, st)
	}
	f, err := d.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, cleanPathError("open", name, err)
	}
	st, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, cleanPathError("open", name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notRegular("open", name, st)
	}
	// O_NONBLOCK has no effect on reads of regular files; it was only there
	// so that opening a FIFO swapped in after the stat cannot hang.
	return f, nil
}

// Stat describes the named regular file, following symbolic links inside
// the directory. It refuses what Open refuses, with the same errors, so
// that Stat and Open agree on what exists.
func (d *DirFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	st, err := d.root.Stat(name)
	if err != nil {
		return nil, cleanPathError("stat", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular("stat", name, st)
	}
	return st, nil
}

// Close releases the directory. Files already open stay usable; Open and
// Stat fail afterwards.
func (d *DirFS) Close() error {
	return d.root.Close()
}

func notRegular(op, name string, st fs.FileInfo) error {
	return &fs.PathError{Op: op, Path: name,
		Err: fmt.Errorf("%w (%s): %w", ErrNotRegular, kindOf(st.Mode()), fs.ErrNotExist)}
}

// cleanPathError reports err against the fs name rather than whatever
// os.Root put in its error, and turns the root's refusal of a path that
// leads out of the directory (through a symbolic link) into "not found",
// which is what tftpd-hpa -s answers for a link whose target is missing
// inside its chroot, and what keeps a web server from answering 500.
func cleanPathError(op, name string, err error) error {
	inner := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		inner = pe.Err
	}
	var errno syscall.Errno
	if !errors.As(inner, &errno) && !errors.Is(inner, fs.ErrClosed) && !errors.Is(inner, fs.ErrInvalid) {
		// os.Root reports escapes with an unexported error; every other
		// failure it has is an errno or one of the checks above.
		inner = fmt.Errorf("%w (%v): %w", ErrInvalidName, inner, fs.ErrNotExist)
	}
	return &fs.PathError{Op: op, Path: name, Err: inner}
}

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
