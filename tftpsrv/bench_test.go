package tftpsrv

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkDownload measures loopback throughput per engine and block size
// with the in-process test client (which costs about as much CPU as the
// server). Peer comparisons live in the repository's bench command.
func BenchmarkDownload(b *testing.B) {
	const size = 4 << 20
	dir := testTree(b, map[string][]byte{"f": randomBytes(b, size)})
	addr := startServer(b, &Server{Handler: FileServer(os.DirFS(dir)), MaxBlockSize: 65464}, "udp4")
	for _, bs := range []string{"512", "1468", "8192"} {
		for _, eng := range []struct {
			name string
			opts []string
		}{
			{"lock-step", nil},
			{"own-lock-step", []string{"timeout", "1"}},
			{"window16", []string{"windowsize", "16"}},
		} {
			b.Run(fmt.Sprintf("blksize=%s/%s", bs, eng.name), func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					c := openRawClient(b, addr)
					got, _ := c.download("f", append([]string{"blksize", bs}, eng.opts...)...)
					c.conn.Close()
					if len(got) != size {
						b.Fatalf("got %d bytes", len(got))
					}
				}
			})
		}
	}
}
