package isosrc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"testing/fstest"

	"github.com/pxekit/pxekit/isosrc"
)

// Serve an ISO over HTTP without mounting it: range requests work, and
// every request reads the image directly.
func ExampleOpen() {
	img, err := isosrc.Open("rocky-9.0-x86_64-dvd.iso")
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	// http.FileServerFS(img) works too; Handler adds sendfile.
	http.Handle("/rocky/", http.StripPrefix("/rocky", img.Handler()))
}

// Detect works on any fs.FS; here a tree with Rocky Linux 9.0's metadata.
func ExampleDetect() {
	tree := fstest.MapFS{
		".treeinfo": {Data: []byte(`[header]
type = productmd.treeinfo
version = 1.2
[release]
name = Rocky Linux
short = Rocky
version = 9.0
[tree]
arch = x86_64
variants = BaseOS
[images-x86_64]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img
[stage2]
mainimage = images/install.img
`)},
		"images/pxeboot/vmlinuz":    {Data: []byte("kernel")},
		"images/pxeboot/initrd.img": {Data: []byte("initrd")},
		"images/install.img":        {Data: []byte("stage2")},
		"EFI/BOOT/BOOTX64.EFI":      {Data: []byte("shim")},
		"EFI/BOOT/grubx64.efi":      {Data: []byte("grub")},
		"repodata/repomd.xml":       {Data: []byte("<repomd/>")},
	}
	d, err := isosrc.Detect(tree)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.OSID, d.Family, d.Arch)
	fmt.Println(d.Kernel, d.Initrd)
	fmt.Println(d.Shim, d.GRUB)
	// Output:
	// rocky-9.0 anaconda x86_64
	// images/pxeboot/vmlinuz images/pxeboot/initrd.img
	// EFI/BOOT/BOOTX64.EFI EFI/BOOT/grubx64.efi
}

// An image that is no installer gives ErrUnknownDistro with what it holds.
func ExampleDetect_unknown() {
	_, err := isosrc.Detect(fstest.MapFS{"README.TXT": {}, "tools/x.exe": {}})
	fmt.Println(errors.Is(err, isosrc.ErrUnknownDistro))
	fmt.Println(err)
	// Output:
	// true
	// isosrc: unknown distribution: found only README.TXT, tools/
}

// Debian's ISO initrd cannot install over the network: take kernel and
// initrd from Debian's netboot.tar.gz and the packages from the ISO.
func ExampleDistro_UseNetboot() {
	img, err := isosrc.Open("debian-12.7.0-amd64-DVD-1.iso")
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	d, err := isosrc.Detect(img)
	if err != nil {
		log.Fatal(err)
	}
	nb, err := isosrc.OpenNetboot("netboot.tar.gz")
	if err != nil {
		log.Fatal(err)
	}
	if err := d.UseNetboot(nb); err != nil {
		log.Fatal(err)
	}
	kernel, _ := fs.ReadFile(nb, d.NetbootKernel)
	fmt.Println(len(kernel) > 0)
	out, _ := json.Marshal(d)
	fmt.Println(string(out))
}

// Shim and GRUB from the El Torito UEFI image, for images whose tree has no
// EFI directory.
func ExampleImage_EFIFS() {
	img, err := isosrc.Open("kylin-server-v10-sp3.iso")
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	efi, err := img.EFIFS()
	if err != nil {
		log.Fatal(err)
	}
	shim, err := fs.ReadFile(efi, "EFI/BOOT/BOOTX64.EFI")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(shim))
}
