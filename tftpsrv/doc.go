// Package tftpsrv is a read-only TFTP server for network boot, shaped like
// net/http: a Server with documented defaults, a Handler interface and
// HandlerFunc, a ServeMux that mixes generated files with a file tree, and
// FileServer for any io/fs.FS (a directory, an embed.FS, an ISO image).
//
// The usual setup serves a directory:
//
//	srv := &tftpsrv.Server{Handler: tftpsrv.FileServer(os.DirFS(dir)), Logger: logger}
//	go srv.ListenAndServe(":69")
//	...
//	srv.Shutdown(ctx)
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
//     Timeout (default 1 s), giving up after Timeout × (Retries+1) without
//     progress; limits on concurrent transfers overall and per client
//     address.
//   - Shutdown(ctx) returns by ctx's deadline even with stalled clients.
//   - OnEvent reports the start and end of every transfer with bytes,
//     duration and negotiated sizes, for progress and metrics.
//
// os.DirFS follows symbolic links out of the directory; when the tree is not
// fully trusted, serve root.FS() of an os.OpenRoot(dir) instead.
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
