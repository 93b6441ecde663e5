// Package isosrc reads distribution ISO images directly, with no loop mount
// and no privileges, and serves them as an io/fs.FS: the install tree, the
// kernel and initrd, and the boot loaders can be served over HTTP and TFTP
// straight out of the ISO file. It also detects which distribution an image
// holds.
//
// Sketch:
//
//	img, err := isosrc.Open("Rocky-9.0-x86_64-dvd.iso")
//	if err != nil { ... }
//	defer img.Close()
//	http.Handle("/rocky9/", http.StripPrefix("/rocky9/", http.FileServerFS(img)))
//
// The package is built on github.com/diskfs/go-diskfs.
package isosrc
