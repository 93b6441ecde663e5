package tftpsrv

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// FileHandler serves files from an fs.FS: a directory (Dir, which keeps
// requests inside it and refuses FIFOs and devices), an embed.FS, or an ISO
// image's file system. Each request opens its own fs.File; files
// offering io.ReaderAt are read through a private offset, so transfers of
// one file share no mutable state.
type FileHandler struct {
	// FS is the tree served.
	FS fs.FS
	// FoldCase, when set, retries a missing name matching each path
	// element case-insensitively, for clients (and Windows-made trees)
	// that disagree on case: "/EFI/BOOT/BOOTX64.EFI" finds
	// "efi/boot/bootx64.efi". Default false: exact names only.
	FoldCase bool
}

// FileServer returns a handler serving fsys by exact names. It is the usual
// Server.Handler, or the "/" fallback of a ServeMux:
//
//	srv := &tftpsrv.Server{Handler: tftpsrv.FileServer(files)} // files from Dir(dir)
func FileServer(fsys fs.FS) *FileHandler {
	return &FileHandler{FS: fsys}
}

// ServeTFTP answers with the named regular file; directories and missing
// names are "file not found".
func (h *FileHandler) ServeTFTP(w ResponseWriter, r *Request) {
	if h.FS == nil {
		w.Error(errors.New("FileHandler.FS is nil"))
		return
	}
	f, err := h.FS.Open(r.Name)
	if errors.Is(err, fs.ErrNotExist) && h.FoldCase {
		if name, ferr := foldName(h.FS, r.Name); ferr == nil {
			f, err = h.FS.Open(name)
		}
	}
	if err != nil {
		w.Error(err)
		return
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		w.Error(err)
		return
	}
	if st.IsDir() {
		f.Close()
		w.Error(fmt.Errorf("%s is a directory: %w", r.Name, fs.ErrNotExist))
		return
	}
	w.ServeContent(f, st.Size())
}

// foldName finds the real spelling of name, matching each element
// case-insensitively. Where several spellings match (a tree holding both
// "EFI" and "efi"), exact ones are tried first and the search backtracks.
func foldName(fsys fs.FS, name string) (string, error) {
	budget := 64 // directories read at most, so a hostile tree cannot make this slow
	var walk func(dir string, elems []string) (string, bool)
	walk = func(dir string, elems []string) (string, bool) {
		if len(elems) == 0 {
			return dir, true
		}
		if budget--; budget < 0 {
			return "", false
		}
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return "", false
		}
		var cands []string
		for _, e := range entries {
			switch {
			case e.Name() == elems[0]:
				cands = append([]string{e.Name()}, cands...)
			case strings.EqualFold(e.Name(), elems[0]):
				cands = append(cands, e.Name())
			}
		}
		for _, c := range cands {
			next := c
			if dir != "." {
				next = dir + "/" + c
			}
			if found, ok := walk(next, elems[1:]); ok {
				return found, true
			}
		}
		return "", false
	}
	if found, ok := walk(".", strings.Split(name, "/")); ok {
		return found, nil
	}
	return "", fs.ErrNotExist
}
