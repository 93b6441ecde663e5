package isosrc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"testing/fstest"

	"github.com/pxekit/pxekit/isosrc"
)

// Serve an ISO over HTTP without mounting it: range requests work, and
// every request reads the image directly.
func ExampleOpen() {
	img, err := isosrc.Open("rocky-9.0-x86_64-dvd.iso", isosrc.Limits{})
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
func ExampleDistro_WithNetboot() {
	img, err := isosrc.Open("debian-12.7.0-amd64-DVD-1.iso", isosrc.Limits{})
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
	defer nb.(io.Closer).Close()
	if d, err = d.WithNetboot(nb); err != nil {
		log.Fatal(err)
	}
	kernel, _ := fs.ReadFile(nb, d.NetbootKernel)
	fmt.Println(len(kernel) > 0)
	out, _ := json.Marshal(d)
	fmt.Println(string(out))
}

// A Debian netboot tree alone (here the one the
// debian-installer-12-netboot-arm64 package installs) says which
// architecture it boots.
func ExampleNetbootDistro() {
	nb, err := isosrc.OpenNetboot("/usr/lib/debian-installer/images/12/arm64/text")
	if err != nil {
		log.Fatal(err)
	}
	defer nb.(io.Closer).Close()
	d, err := isosrc.NetbootDistro("debian-12", nb)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Arch, d.NetbootKernel, d.NetbootInitrd)
}

// Detect names the installer, Loaders says where the image's own shim and
// GRUB are and whether Secure Boot needs them, and RepoURL where the
// installer takes its packages from. testdata/rocky-9.0-mini.iso is a
// small stand-in for a Rocky Linux 9.0 DVD.
func ExampleDistro_Loaders() {
	img, err := isosrc.Open("testdata/rocky-9.0-mini.iso", isosrc.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	d, err := isosrc.Detect(img)
	if err != nil {
		log.Fatal(err)
	}
	l, err := d.Loaders(img)
	if err != nil {
		log.Fatal(err)
	}
	shim, err := fs.ReadFile(l.FS, l.Shim)
	if err != nil {
		log.Fatal(err)
	}
	m := isosrc.Media{ISO: img, ISOFile: "testdata/rocky-9.0-mini.iso"}
	repo, err := m.RepoURL("http://10.0.0.1:8080/", d.Family, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.OSID, d.Family, d.Kernel)
	fmt.Printf("shim %s (%q), grub %s, vendor pair needed: %v\n", l.Shim, shim, l.GRUB, l.Vendor)
	fmt.Println("repo", repo)
	// Output:
	// rocky-9.0 anaconda images/pxeboot/vmlinuz
	// shim EFI/BOOT/BOOTX64.EFI ("shim\n"), grub EFI/BOOT/grubx64.efi, vendor pair needed: true
	// repo http://10.0.0.1:8080/iso/
}

// One HTTP namespace for several installs: each Media serves its ISO's
// tree, the ISO file and its boot tree below its own prefix.
func ExampleMedia_Handler() {
	img, err := isosrc.Open("testdata/rocky-9.0-mini.iso", isosrc.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	rocky := isosrc.Media{Prefix: "profiles/rocky9/", ISO: img, ISOFile: "testdata/rocky-9.0-mini.iso"}
	debian := isosrc.Media{Prefix: "profiles/debian12/", Netboot: fstest.MapFS{
		"debian-installer/amd64/linux": {Data: []byte("netboot kernel\n")},
	}}
	mux := http.NewServeMux()
	mux.Handle("/"+rocky.Prefix, rocky.Handler())
	mux.Handle("/"+debian.Prefix, debian.Handler())

	get := func(target, rng string) {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Printf("%s %d %q\n", target, w.Code, w.Body.String())
	}
	get("/profiles/rocky9/boot/images/pxeboot/vmlinuz", "")
	get("/profiles/rocky9/iso/EFI/BOOT/grubx64.efi", "")
	get("/profiles/rocky9/image.iso", "bytes=32769-32773") // "CD001" of the volume descriptor
	get("/profiles/rocky9/iso/EFI/BOOT/", "")              // no listings
	get("/profiles/debian12/boot/debian-installer/amd64/linux", "")
	get("/profiles/debian12/image.iso", "")
	// Output:
	// /profiles/rocky9/boot/images/pxeboot/vmlinuz 200 "kernel\n"
	// /profiles/rocky9/iso/EFI/BOOT/grubx64.efi 200 "grub\n"
	// /profiles/rocky9/image.iso 206 "CD001"
	// /profiles/rocky9/iso/EFI/BOOT/ 404 "404 page not found\n"
	// /profiles/debian12/boot/debian-installer/amd64/linux 200 "netboot kernel\n"
	// /profiles/debian12/image.iso 404 "404 page not found\n"
}

// Shim and GRUB from the El Torito UEFI image, for images whose tree has no
// EFI directory.
func ExampleImage_EFIFS() {
	img, err := isosrc.Open("kylin-server-v10-sp3.iso", isosrc.Limits{})
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
