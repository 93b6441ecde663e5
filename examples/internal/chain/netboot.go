package chain

import (
	"io/fs"
	"os"

	"github.com/pxekit/pxekit/internal/osid"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// OpenNetboot opens a netboot source for serving. A directory is served
// through tftpsrv.Dir: confined to it (no symbolic link leads out), regular
// files only (no listing, no FIFO to block on); close it (io.Closer) when
// done. A netboot.tar.gz is read into memory by isosrc.OpenNetboot.
func OpenNetboot(p string) (fs.FS, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return tftpsrv.Dir(p)
	}
	return isosrc.OpenNetboot(p)
}

// debianNetbootArches are the Debian architectures a netboot tree may be
// for, the default (amd64, what bootmenu.BootFiles names) first.
var debianNetbootArches = []string{"amd64", "arm64"}

// NetbootDistro describes a Debian netboot tree given without an ISO, so
// that the menus boot the kernel of the architecture the tree is for:
// debian-installer-12-netboot-arm64 holds debian-installer/arm64/, not the
// amd64 path the menus name by default. It returns nil (the default
// paths, checked by Prepare) when osID is not a Debian installer, or when
// the tree holds the amd64 installer or none it knows.
func NetbootDistro(osID string, nb fs.FS) *isosrc.Distro {
	info, ok := osid.Lookup(osID)
	if !ok || info.Family != osid.DebianDI || nb == nil {
		return nil
	}
	for i, arch := range debianNetbootArches {
		d := &isosrc.Distro{Family: string(info.Family), OSID: info.ID, Arch: arch}
		if d.UseNetboot(nb) != nil {
			continue
		}
		if i == 0 {
			return nil
		}
		return d
	}
	return nil
}
