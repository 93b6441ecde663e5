package isosrc

import (
	"io"
	"testing"
)

// BenchmarkOpenDetect: index the shared test image and detect its distro.
func BenchmarkOpenDetect(b *testing.B) {
	p := richISO(b)
	b.ReportAllocs()
	for b.Loop() {
		img, err := Open(p, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = Detect(img)
		img.Close()
	}
}

// BenchmarkOpenFile: path lookup in a 300-entry directory.
func BenchmarkOpenFile(b *testing.B) {
	img := openRich(b)
	b.ReportAllocs()
	for b.Loop() {
		f, err := img.Open("BaseOS/Packages/pkg-0150-1.0-1.el9.x86_64.rpm")
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkReadAt1468: TFTP-sized positioned reads (blksize 1468).
func BenchmarkReadAt1468(b *testing.B) {
	img := openRich(b)
	f, err := img.OpenFile("images/pxeboot/initrd.img")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1468)
	size := f.Size()
	b.SetBytes(int64(len(buf)))
	var off int64
	for b.Loop() {
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		off += int64(len(buf))
		if off >= size {
			off = 0
		}
	}
}
