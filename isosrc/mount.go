package isosrc

import (
	"io/fs"
	"strings"
)

// Mount returns a file system that serves fsys below dir, the inverse of
// fs.Sub: the name dir+"/"+rel is rel in fsys, dir itself is fsys's ".",
// and every name outside dir does not exist. A site that serves several
// trees at places of its own namespace (each profile's media and boot
// loaders below "profiles/NAME/") mounts each and puts them in one Union.
// dir is slash-separated; a trailing slash is ignored, and an empty dir or
// "." serves fsys as it is. The directories above dir do not exist: there
// are no listings, as in Union.
//
// Open and Stat pass fsys's files, errors and fs.Stat through unchanged,
// so an *os.File still reaches sendfile(2); error paths name fsys's names.
// Mount is as safe for concurrent use as fsys.
func Mount(dir string, fsys fs.FS) fs.FS {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || dir == "." {
		return fsys
	}
	return mount{dir: dir, fsys: fsys}
}

type mount struct {
	dir  string
	fsys fs.FS
}

// rel is name inside the mounted tree, or the error op reports for it:
// fs.ErrInvalid for a name that is not a valid path, fs.ErrNotExist for
// one outside dir.
func (m mount) rel(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == m.dir {
		return ".", nil
	}
	if rest, ok := strings.CutPrefix(name, m.dir+"/"); ok && rest != "" {
		return rest, nil
	}
	return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

func (m mount) Open(name string) (fs.File, error) {
	rel, err := m.rel("open", name)
	if err != nil {
		return nil, err
	}
	return m.fsys.Open(rel)
}

func (m mount) Stat(name string) (fs.FileInfo, error) {
	rel, err := m.rel("stat", name)
	if err != nil {
		return nil, err
	}
	return fs.Stat(m.fsys, rel)
}
