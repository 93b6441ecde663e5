package tftpsrv_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing/fstest"
	"time"

	"github.com/pxekit/pxekit/tftpsrv"
)

// Serve a directory on the TFTP port until interrupted.
func ExampleFileServer() {
	files, err := tftpsrv.Dir(os.TempDir())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer files.Close()
	srv := &tftpsrv.Server{
		Handler: tftpsrv.FileServer(files),
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	go func() {
		if err := srv.ListenAndServe("127.0.0.1:6969"); err != nil && !errors.Is(err, tftpsrv.ErrServerClosed) {
			fmt.Println(err)
		}
	}()
	// ... on SIGINT or SIGTERM:
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// Generate a GRUB menu per client, chosen by the client's IP address, and
// fall back to files for everything else.
func ExampleServeMux() {
	macByIP := map[netip.Addr]string{netip.MustParseAddr("10.0.0.23"): "52:54:00:12:34:56"}
	tree := fstest.MapFS{"grubx64.efi": {Data: []byte("...")}}

	mux := tftpsrv.NewServeMux()
	_ = mux.HandleFunc("grub/grub.cfg", func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
		mac, ok := macByIP[r.RemoteAddr.Addr()]
		if !ok {
			w.Error(&tftpsrv.Error{Code: tftpsrv.ErrCodeFileNotFound, Message: "unknown host"})
			return
		}
		fmt.Fprintf(w, "set timeout=1\nmenuentry 'install %s' { linux /vmlinuz auto=true }\n", mac)
	})
	_ = mux.Handle("pxelinux.cfg/01-*", tftpsrv.HandlerFunc(func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
		fmt.Fprintf(w, "default install\n")
	}))
	_ = mux.Handle("/", tftpsrv.FileServer(tree))

	for _, name := range []string{"grub/grub.cfg", "pxelinux.cfg/01-52-54-00-12-34-56", "grubx64.efi", "ldlinux.c32"} {
		_, pattern := mux.Handler(name)
		fmt.Printf("%s → %q\n", name, pattern)
	}
	// Output:
	// grub/grub.cfg → "grub/grub.cfg"
	// pxelinux.cfg/01-52-54-00-12-34-56 → "pxelinux.cfg/01-*"
	// grubx64.efi → "/"
	// ldlinux.c32 → "/"
}

// Report progress per host from transfer events.
func ExampleServer_OnEvent() {
	srv := &tftpsrv.Server{
		Handler: tftpsrv.FileServer(os.DirFS(os.TempDir())),
		OnEvent: func(e tftpsrv.Event) {
			switch {
			case e.Kind == tftpsrv.TransferStart:
				fmt.Printf("%s fetching %s (%d bytes)\n", e.RemoteAddr.Addr(), e.Name, e.Size)
			case e.Served():
				fmt.Printf("%s got %s in %v\n", e.RemoteAddr.Addr(), e.Name, e.Duration)
			case e.Err != nil:
				fmt.Printf("%s failed %s: %v\n", e.RemoteAddr.Addr(), e.Name, e.Err)
			default:
				// The UEFI size probe: the real download follows.
			}
		},
	}
	_ = srv
}

func ExampleCleanName() {
	for _, raw := range []string{"/grub/grub.cfg", `\boot\wdsnbp.com`, "bios/../pxelinux.0", "../../etc/shadow"} {
		name, err := tftpsrv.CleanName(raw)
		fmt.Printf("%q → %q %v\n", raw, name, err)
	}
	// Output:
	// "/grub/grub.cfg" → "grub/grub.cfg" <nil>
	// "\\boot\\wdsnbp.com" → "boot/wdsnbp.com" <nil>
	// "bios/../pxelinux.0" → "pxelinux.0" <nil>
	// "../../etc/shadow" → "" tftpsrv: invalid file name: leaves the served tree
}

// Take the TFTP port before telling anyone about the server, so that a
// port held by another TFTP server stops the program with a clear message
// instead of sending clients to it.
func ExampleListen() {
	conn, err := tftpsrv.Listen("127.0.0.1:0") // ":69" in production
	if err != nil {
		fmt.Println(err) // says what holds the port or which privilege is missing
		return
	}
	srv := &tftpsrv.Server{Handler: tftpsrv.FileServer(fstest.MapFS{
		"grub/grub.cfg": {Data: []byte("menuentry ...\n")},
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn) }()
	fmt.Println("TFTP ready:", conn.LocalAddr().(*net.UDPAddr).IP)

	// A second server on the same address is refused, and says why.
	if _, err := tftpsrv.Listen(conn.LocalAddr().String()); errors.Is(err, syscall.EADDRINUSE) {
		fmt.Println("second Listen: address in use")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	fmt.Println(errors.Is(<-done, tftpsrv.ErrServerClosed))
	// Output:
	// TFTP ready: 127.0.0.1
	// second Listen: address in use
	// true
}
