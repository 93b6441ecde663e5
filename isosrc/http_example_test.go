package isosrc_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
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
