package bootmenu

import (
	"io/fs"
	"testing/fstest"
)

// Open makes the menus a file system: every name Lookup answers is a
// read-only regular file holding that menu, whatever directory the loader
// asks in, so that one site serves them over TFTP and HTTP alike (for
// instance first in an isosrc.Union). It lists nothing and holds no
// directories; every other name does not exist.
func (m Menus) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	b, ok := m.Lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return fstest.MapFS{name: {Data: b, Mode: 0o444}}.Open(name)
}
