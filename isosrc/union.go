package isosrc

import (
	"errors"
	"io/fs"
)

// Union returns a file system that serves each name from the first of
// trees that has it: a site's generated files before its media, boot
// loaders and a directory of extras, served alike by FileServer over HTTP
// and by a TFTP server. Nil trees are skipped. A tree's "does not exist"
// passes the name on to the next one; any other error (fs.ErrInvalid for a
// name that is not a valid path, a permission error) is returned as it is,
// so a tree that refuses a name is not bypassed by a later one.
//
// Open returns the tree's own file, so an *os.File still reaches
// sendfile(2). Stat asks the trees in the same order through fs.Stat, so
// FileServer checks a file's type without opening it (a FIFO in an
// os.DirFS tree is refused, not waited on). There are no directory
// listings: ReadDir is not merged, and a directory opened is the first
// tree's. Union is as safe for concurrent use as its trees.
func Union(trees ...fs.FS) fs.FS {
	u := make(union, 0, len(trees))
	for _, t := range trees {
		if t != nil {
			u = append(u, t)
		}
	}
	return u
}

type union []fs.FS

func (u union) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	for _, t := range u {
		f, err := t.Open(name)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (u union) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	for _, t := range u {
		fi, err := fs.Stat(t, name)
		if !errors.Is(err, fs.ErrNotExist) {
			return fi, err
		}
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// Open makes the media a file system of Prefix-relative names, as Lookup
// resolves them: "boot/..." in BootTree, "iso/..." in the ISO's tree. It
// has no image.iso (Handler serves that over HTTP) and nothing else. It
// lets a site's TFTP side serve the media through Union; over HTTP,
// Handler serves them with the ISO's sendfile path.
func (m Media) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	fsys, rel, ok := m.Lookup(name)
	if !ok || rel == "" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return fsys.Open(rel)
}
