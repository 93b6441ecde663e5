package isosrc

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

// Media is where one OS's installer and packages come from, served below
// Prefix of a site's HTTP namespace:
//
//	Prefix+"iso/..."    the ISO's tree: the install repository
//	Prefix+"image.iso"  the ISO file itself, which Ubuntu's live initrd downloads
//	Prefix+"boot/..."   the tree holding kernel and initrd (BootTree)
//
// A site installing one OS uses the empty prefix; one serving several
// gives each its own ("profiles/rocky9/"). The zero Media serves nothing.
type Media struct {
	Prefix  string // "" or a slash-separated directory with a trailing slash: "profiles/rocky9/"
	ISO     fs.FS  // the ISO's tree (an *Image); nil when there is none
	ISOFile string // the ISO's path on disk, served as image.iso; "" when there is none
	Netboot fs.FS  // a netboot tree (OpenNetboot); nil when there is none
	// Distro describes the OS the media install (OpenMedia fills it in);
	// nil when unknown.
	Distro *Distro
}

// BootTree returns the tree that holds the installer kernel and initrd:
// the netboot tree when given (Debian's ISO initrd cannot install over the
// network), else the ISO.
func (m Media) BootTree() fs.FS {
	if m.Netboot != nil {
		return m.Netboot
	}
	return m.ISO
}

// Lookup resolves a name relative to Prefix ("boot/linux", "iso/x") to the
// tree holding it and the name inside that tree. image.iso is not in a
// tree: Handler serves ISOFile for it.
func (m Media) Lookup(rel string) (fsys fs.FS, name string, ok bool) {
	if rest, ok := strings.CutPrefix(rel, "boot/"); ok && m.BootTree() != nil {
		return m.BootTree(), rest, true
	}
	if rest, ok := strings.CutPrefix(rel, "iso/"); ok && m.ISO != nil {
		return m.ISO, rest, true
	}
	return nil, "", false
}

// RepoURL returns the install source the kernel line names for an
// installer of family f, for media served at base ("http://10.0.0.1:8080/",
// with its trailing slash) + Prefix:
//
//   - FamilyAnaconda installs from the ISO's tree, base+Prefix+"iso/"; it
//     is an error when there is no ISO.
//   - FamilySubiquity downloads the whole ISO, base+Prefix+"image.iso"; it
//     is an error when there is no ISOFile.
//   - FamilyDebianInstaller takes packages from mirror when it is not
//     empty, else from the ISO's tree; with neither, RepoURL returns "" and
//     no error: the installer then uses the mirror its answer file names.
func (m Media) RepoURL(base string, f Family, mirror string) (string, error) {
	switch f {
	case FamilyAnaconda:
		if m.ISO == nil {
			return "", fmt.Errorf("isosrc: the %s installer installs from the ISO's tree: give an ISO", f)
		}
		return base + m.Prefix + "iso/", nil
	case FamilySubiquity:
		if m.ISOFile == "" {
			return "", fmt.Errorf("isosrc: the %s live installer downloads its ISO: give an ISO file", f)
		}
		return base + m.Prefix + "image.iso", nil
	case FamilyDebianInstaller:
		switch {
		case mirror != "":
			return mirror, nil
		case m.ISO != nil:
			return base + m.Prefix + "iso/", nil
		}
		return "", nil
	}
	return "", fmt.Errorf("isosrc: unknown installer family %q", f)
}

// Handler serves the media over HTTP. It expects whole request paths,
// "/"+Prefix+"iso/...", "/"+Prefix+"image.iso" and "/"+Prefix+"boot/...",
// so that it can be registered at "/"+Prefix on an http.ServeMux, or serve
// a whole site when Prefix is empty. It serves content only: GET and HEAD
// (405 otherwise), the regular files of the trees through FileServer
// (ranges, conditional requests), ISOFile as image.iso with ranges, and
// 404 for everything else: directories (no listings), paths that are not
// clean (".." or "." elements, doubled or trailing slashes) and names
// outside the three.
//
// image.iso is opened on each request, so an ISO replaced on disk is
// served whole; a named pipe put in its place is refused without blocking.
func (m Media) Handler() http.Handler {
	h := &mediaHandler{m: m}
	if m.ISO != nil {
		h.iso = FileServer(m.ISO)
	}
	if m.Netboot != nil {
		h.boot = FileServer(m.Netboot)
	} else {
		h.boot = h.iso
	}
	return h
}

type mediaHandler struct {
	m         Media
	iso, boot http.Handler // nil when the tree is missing
}

func (h *mediaHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, "/"+h.m.Prefix)
	if !ok || !fs.ValidPath(rel) || rel == "." {
		http.NotFound(w, r)
		return
	}
	if rel == "image.iso" {
		h.serveISOFile(w, r)
		return
	}
	_, name, ok := h.m.Lookup(rel)
	if !ok {
		http.NotFound(w, r)
		return
	}
	next := h.iso
	if strings.HasPrefix(rel, "boot/") {
		next = h.boot
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(url.URL)
	*r2.URL = *r.URL
	r2.URL.Path, r2.URL.RawPath = "/"+name, ""
	next.ServeHTTP(w, r2)
}

// serveISOFile serves ISOFile with ranges, as http.ServeFile would but
// without its directory listings and redirects.
func (h *mediaHandler) serveISOFile(w http.ResponseWriter, r *http.Request) {
	if h.m.ISOFile == "" {
		http.NotFound(w, r)
		return
	}
	f, st, err := openNonblock(h.m.ISOFile, func(m fs.FileMode) bool { return m.IsRegular() || isBlockDevice(m) }, "a regular file or block device")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.NotFound(w, r)
		return
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, "403 Forbidden", http.StatusForbidden)
		return
	case err != nil:
		// The ISO's path is the server's business, not the client's.
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	// ServeContent takes the size from Seek, which a block device needs,
	// and bounds its copy to it; handing it the *os.File lets net/http use
	// sendfile(2).
	http.ServeContent(w, r, "image.iso", st.ModTime(), f)
}
