package chain

import (
	"io/fs"
	"os"

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
