package isosrc_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing/fstest"
	"time"

	"github.com/pxekit/pxekit/isosrc"
)

// Serve a tree to boot clients: FileServer for the files (no listings),
// ContentOnly for the methods and paths, NewHTTPServer for the timeouts and
// progress deadlines, LimitListener for the connection cap. On a real
// server the tree is an *isosrc.Image or a directory, whose files then go
// out with sendfile(2).
func ExampleNewHTTPServer() {
	tree := fstest.MapFS{"ks.cfg": {Data: []byte("text\nreboot\n")}}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // ":80" in production
	if err != nil {
		log.Fatal(err)
	}
	srv := isosrc.NewHTTPServer(isosrc.ContentOnly(isosrc.FileServer(tree)), isosrc.HTTPLimits{})
	go func() { _ = srv.Serve(isosrc.LimitListener(ln, isosrc.HTTPLimits{})) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/ks.cfg")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%s %q\n", resp.Status, body)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	// Output:
	// 200 OK "text\nreboot\n"
}

// Log each file a boot client received, once it has it whole: the step log
// of a boot server, as tftpsrv.Server's OnEvent gives it for TFTP.
func ExampleObserve() {
	tree := fstest.MapFS{"boot/linux": {Data: []byte("kernel")}}
	h := isosrc.Observe(isosrc.ContentOnly(isosrc.FileServer(tree)), func(ev isosrc.HTTPEvent) {
		fmt.Printf("%s %s: %d, %d bytes, served=%v\n", ev.Request.Method, ev.Name, ev.Status, ev.Bytes, ev.Served())
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, name := range []string{"/boot/linux", "/boot/initrd"} {
		resp, err := http.Get(srv.URL + name)
		if err != nil {
			log.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// Output:
	// GET boot/linux: 200, 6 bytes, served=true
	// GET boot/initrd: 404, 19 bytes, served=false
}
