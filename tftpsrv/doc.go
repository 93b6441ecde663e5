// Package tftpsrv is a read-only TFTP server for network boot, shaped like
// net/http: a Server with documented defaults, a Handler interface and
// HandlerFunc, a ServeMux that mixes generated files with a file tree, and
// FileServer for any io/fs.FS (a directory, an embed.FS, an ISO image).
//
// The usual setup serves a directory:
//
//	files, err := tftpsrv.Dir(dir)
//	...
//	conn, err := tftpsrv.Listen(":69")
//	...
//	srv := &tftpsrv.Server{Handler: tftpsrv.FileServer(files), Logger: logger}
//	go srv.Serve(conn)
//	...
//	srv.Shutdown(ctx)
//
// Listen opens the port before the program announces the server (a banner,
// DHCP answers naming it), so that a port it cannot have stops the program
// first, with an error that says why: port 69 needs root or
// CAP_NET_BIND_SERVICE, or another program (tftpd-hpa, dnsmasq, a second
// pxekit) holds it. ListenAndServe(":69") does both steps at once.
//
// Per-host content (a GRUB menu chosen by the client's address) is a
// handler on a ServeMux, in front of the same tree as the "/" fallback; a
// handler sees the client's address and port and the cleaned name.
//
// What the server takes care of, because boot firmware depends on it:
//
//   - Names: leading "/", backslashes, "./" and doubled slashes are accepted;
//     anything leaving the tree, control characters and over-long names are
//     refused with TFTP error 2 (see CleanName). Missing files are error 1.
//     Error messages are fixed texts, never server paths.
//   - Write requests are refused at once with error 2; no socket is kept.
//   - Options, case-insensitive: blksize (8–65464, capped by MaxBlockSize
//     and the interface MTU), tsize (files and generated content), timeout
//     (RFC 2349) and windowsize (RFC 7440, which UEFI firmware and shim ask
//     for). The UEFI size probe (OACK, then client ERROR 8) is normal and is
//     not logged as a failure.
//   - Retransmission after a few measured round-trip times, at most
//     Timeout (default 1 s), giving up a silent client after Timeout ×
//     (Retries+1) (5 s by default).
//   - Limits, because a boot server answers anyone on its segment: at most
//     MaxTransfers (default 1024) transfers at once and
//     MaxTransfersPerClient (8) per client address; a client's RFC 2349
//     timeout is granted up to MaxClientTimeout (6 s) and declined above;
//     and whatever was negotiated, a transfer that makes no progress for
//     StallTimeout (15 s) loses its slot, whether its client stopped
//     acknowledging or a handler or a content Read does not return. (In
//     the latter case the client is sent an ERROR, and the goroutine stuck
//     in the call stays until the call returns; the server only stops
//     counting it.)
//   - Shutdown(ctx) returns by ctx's deadline even with stalled clients.
//   - OnEvent reports the start and end of every transfer with bytes,
//     duration and negotiated sizes, for progress and metrics.
//
// Serve directories with Dir: like tftpd-hpa -s, it reaches nothing outside
// the directory, symbolic links included, and opens regular files only, so
// a FIFO or a device node in the tree can neither block nor be touched.
// os.DirFS, by contrast, follows symbolic links out of the directory, and
// opening a FIFO through it (or through os.Root.FS) blocks until a writer
// appears.
//
// The protocol engine for netascii transfers is github.com/pin/tftp/v3.
// Its request intake is not safe to expose (see the comment in
// engine_pin.go), so this package reads and vets requests itself, answers
// refusals with the right codes, and hands admitted netascii requests to
// pin/tftp, which converts line ends. Octet transfers, which is what boot
// firmware asks for, run on this package's own sender (lock-step, or RFC
// 7440 windows), which is faster and recovers from loss in round-trip
// times rather than in whole timeouts.
package tftpsrv
