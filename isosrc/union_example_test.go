package isosrc_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing/fstest"

	"github.com/pxekit/pxekit/isosrc"
)

// A site's generated files come first, then the media (its boot/ and iso/
// names), then a directory of extras: one tree that FileServer serves
// over HTTP and a TFTP server's FileServer over TFTP.
func ExampleUnion() {
	generated := fstest.MapFS{"answer/ks.cfg": {Data: []byte("text\n")}}
	media := &isosrc.Media{Netboot: fstest.MapFS{"linux": {Data: []byte("kernel")}}}
	extras := fstest.MapFS{"answer/ks.cfg": {Data: []byte("shadowed")}, "motd": {Data: []byte("hello")}}
	site := isosrc.Union(generated, media, extras)

	for _, p := range []string{"/answer/ks.cfg", "/boot/linux", "/motd", "/nothing"} {
		rec := httptest.NewRecorder()
		isosrc.FileServer(site).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		body, _ := io.ReadAll(rec.Body)
		fmt.Printf("%s %d %q\n", p, rec.Code, body)
	}
	// Output:
	// /answer/ks.cfg 200 "text\n"
	// /boot/linux 200 "kernel"
	// /motd 200 "hello"
	// /nothing 404 "404 page not found\n"
}
