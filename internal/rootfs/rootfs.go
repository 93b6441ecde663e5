// Package rootfs is what tftpsrv and isosrc share for serving a directory
// from disk: a read-only fs.FS confined to the directory with os.Root that
// opens regular files only and never blocks on opening one.
//
// Each caller keeps its own errors: it names them in Errors, and rootfs
// makes every refusal also match fs.ErrNotExist, so that a file server
// (net/http's FileServerFS, a TFTP handler) answers "not found" instead of
// listing a directory or failing with an internal error.
package rootfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Errors are a caller's own errors for the two things FS refuses besides
// what the system reports. FS wraps each in an error that also matches
// fs.ErrNotExist and puts it in an *fs.PathError that names the fs name
// only (never the directory on disk).
type Errors struct {
	// NotRegular describes a name that exists but whose file has mode m,
	// not a regular file (a directory, FIFO, socket or device).
	NotRegular func(m fs.FileMode) error
	// Outside describes the root's refusal err of a name that leads out
	// of the directory through a symbolic link (or through an absolute
	// one, even when it points inside).
	Outside func(err error) error
}

// FS is a read-only, regular-files-only view of one directory. Its methods
// are safe for concurrent use.
type FS struct {
	root *os.Root
	errs Errors
}

var (
	_ fs.StatFS = (*FS)(nil)
	_ io.Closer = (*FS)(nil)
)

// OpenDir opens the directory dir as an FS whose refusals are described by
// errs; both functions of errs must be set. The directory stays open until
// Close, and the FS keeps serving the directory it opened even if dir is
// later renamed or replaced. An error opening dir is returned as os.OpenRoot
// gives it.
func OpenDir(dir string, errs Errors) (*FS, error) {
	if errs.NotRegular == nil || errs.Outside == nil {
		return nil, errors.New("rootfs: Errors.NotRegular and Errors.Outside must be set")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &FS{root: root, errs: errs}, nil
}

// Open opens the named regular file for reading; the fs.File is an
// *os.File, which net/http sends with sendfile(2). It never blocks on the
// kind of file: the name is checked with a stat before it is opened (so
// opening a device node, which may have side effects, is not attempted),
// the file is opened non-blocking and without becoming a controlling
// terminal, and the opened file is checked again, closing the race with
// the tree changing in between. O_NONBLOCK does not change reads of
// regular files; it is only there so that a FIFO swapped in after the stat
// cannot hang the open.
func (d *FS) Open(name string) (fs.File, error) {
	if _, err := d.stat("open", name); err != nil {
		return nil, err
	}
	return d.openRegular(name)
}

// openRegular opens name, which was a regular file when stat'ed, and makes
// sure it still is.
func (d *FS) openRegular(name string) (fs.File, error) {
	f, err := d.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, d.pathError("open", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, d.pathError("open", name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, d.notRegular("open", name, st.Mode())
	}
	return f, nil
}

// Stat describes the named regular file, following symbolic links that
// stay inside the directory. It refuses what Open refuses, with the same
// errors, so that the two agree on what exists.
func (d *FS) Stat(name string) (fs.FileInfo, error) {
	return d.stat("stat", name)
}

// Close releases the directory. Files already open stay usable; Open and
// Stat fail afterwards with fs.ErrClosed.
func (d *FS) Close() error { return d.root.Close() }

// stat describes name, refusing an invalid fs name and anything but a
// regular file, with errors for operation op.
func (d *FS) stat(op, name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	st, err := d.root.Stat(name)
	if err != nil {
		return nil, d.pathError(op, name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, d.notRegular(op, name, st.Mode())
	}
	return st, nil
}

func (d *FS) notRegular(op, name string, m fs.FileMode) error {
	return &fs.PathError{Op: op, Path: name, Err: notExist{d.errs.NotRegular(m)}}
}

// pathError reports err against the fs name rather than whatever os.Root
// put in its error, and turns the root's refusal of a name that leads out
// of the directory into the caller's Outside error, which is "not found":
// what a server confined with chroot answers for a link whose target is
// missing inside, and what keeps a web server from answering 500.
func (d *FS) pathError(op, name string, err error) error {
	inner := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		inner = pe.Err
	}
	var errno syscall.Errno
	if !errors.As(inner, &errno) && !errors.Is(inner, fs.ErrClosed) && !errors.Is(inner, fs.ErrInvalid) {
		// os.Root reports escapes with an unexported error; every other
		// failure it has is an errno or one of the checks above.
		inner = notExist{d.errs.Outside(inner)}
	}
	return &fs.PathError{Op: op, Path: name, Err: inner}
}

// notExist is a caller's error that also matches fs.ErrNotExist, with the
// caller's text unchanged.
type notExist struct{ err error }

func (e notExist) Error() string { return e.err.Error() }

func (e notExist) Unwrap() error { return e.err }

func (e notExist) Is(target error) bool { return target == fs.ErrNotExist }
