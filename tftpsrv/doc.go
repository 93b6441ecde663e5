// Package tftpsrv is a read-only TFTP server for network boot: it carries the
// first bytes a bare server loads (shim, GRUB, pxelinux, sometimes the kernel
// and initrd). It serves any io/fs.FS — a directory, an ISO image, an
// embed.FS — plus files generated per request, such as per-host menus.
//
// Its API follows net/http: a Server with a Handler, a ServeMux that routes
// names and patterns to handlers, and FileServer for plain files.
//
// Sketch:
//
//	srv := &tftpsrv.Server{Handler: tftpsrv.FileServer(os.DirFS("/srv/tftp"))}
//	go srv.ListenAndServe(":69")
//	defer srv.Shutdown(ctx)
//
// Writes are always refused. The package is built on github.com/pin/tftp/v3.
package tftpsrv
