package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// FakeNetboot lays out in dir what Debian's netboot tree holds for the
// installer entry, the amd64 kernel and initrd (holding "fake kernel" and
// "fake initrd"), so that no test needs debian-installer-12-netboot-amd64.
// It returns dir.
func FakeNetboot(tb testing.TB, dir string) string {
	tb.Helper()
	for name, data := range map[string]string{
		"debian-installer/amd64/linux":     "fake kernel",
		"debian-installer/amd64/initrd.gz": "fake initrd",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
