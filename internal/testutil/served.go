package testutil

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// ServedDir builds a directory to serve, next to an "outside" one standing
// in for /etc (holding "shadow", "secret"), with symbolic links of every
// kind between them, for tests of confinement. The served directory holds:
//
//	hello.txt          "hello"
//	boot/grub.cfg      "menu"
//	alias/grub.cfg     -> ../boot/grub.cfg (stays inside)
//	bootdir            -> boot (a directory inside)
//	hello-link.txt     -> hello.txt
//	boot/inner-climb   -> ../hello.txt (climbs, but stays inside)
//	boot/self-abs      -> <served>/hello.txt (absolute, though inside)
//	etc                -> <outside> (absolute)
//	rel-etc            -> ../etc
//	shadow             -> <outside>/shadow (absolute)
//	boot/up            -> ../../etc/shadow (climbs out)
//	dangling           -> nothing-here
//	loop               -> loop
//	fifo               a named pipe with no writer
//	sock               a listening Unix socket, when the path is short
//	                   enough for one (no test may depend on it)
func ServedDir(tb testing.TB) (served, outside string) {
	tb.Helper()
	base := tb.TempDir()
	served = filepath.Join(base, "srv")
	outside = filepath.Join(base, "etc")
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	for name, data := range map[string]string{
		"srv/boot/grub.cfg": "menu",
		"srv/hello.txt":     "hello",
		"etc/shadow":        "secret",
	} {
		p := filepath.Join(base, filepath.FromSlash(name))
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(data), 0o644))
	}
	must(os.MkdirAll(filepath.Join(served, "alias"), 0o755))
	for name, target := range map[string]string{
		"etc":              outside,
		"rel-etc":          "../etc",
		"shadow":           outside + "/shadow",
		"boot/up":          "../../etc/shadow",
		"alias/grub.cfg":   "../boot/grub.cfg",
		"bootdir":          "boot",
		"hello-link.txt":   "hello.txt",
		"dangling":         "nothing-here",
		"loop":             "loop",
		"boot/self-abs":    served + "/hello.txt",
		"boot/inner-climb": "../hello.txt",
	} {
		must(os.Symlink(target, filepath.Join(served, filepath.FromSlash(name))))
	}
	must(syscall.Mkfifo(filepath.Join(served, "fifo"), 0o644))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(served, "sock"), Net: "unix"})
	if err == nil {
		tb.Cleanup(func() { ln.Close() })
	}
	return served, outside
}
