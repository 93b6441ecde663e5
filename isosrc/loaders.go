package isosrc

import (
	"errors"
	"fmt"
	"io/fs"
)

// Loaders says where an image's own UEFI boot loaders are: the shim that
// firmware checks against Microsoft's key and the GRUB that shim checks
// against the distribution's. It is what a boot-loader search (bootmenu's)
// takes from an ISO.
type Loaders struct {
	// FS holds Shim and GRUB: the image's tree, or its El Torito UEFI FAT
	// image when the tree has no EFI directory (Distro.EFISource).
	FS fs.FS
	// Shim and GRUB are paths in FS; empty when the image has none.
	Shim, GRUB string
	// Vendor says the image's own pair must be used under Secure Boot: a
	// shim trusts only its vendor's GRUB and that GRUB only its vendor's
	// kernels, so Canonical's kernel would be refused by a Debian-signed
	// GRUB. It is false only for the Debian installer, whose vendor also
	// signs the host's network GRUB, which unlike the ISO's CD-ROM GRUB is
	// built to read its menu over TFTP.
	Vendor bool
	// Netboot is the Media's netboot tree (nil: none), whose AArch64 shim
	// and GRUB serve ARM64 clients when the host has none. The fields are
	// those of bootmenu.LoaderSource, in its order, so that one converts
	// to the other.
	Netboot fs.FS
}

// Loaders returns where img's shim and GRUB are, for a d that Detect or
// DetectAs returned for img. An image whose loaders are in its El Torito
// UEFI image gives the error of Image.EFIFS when that image cannot be
// read; callers then fall back to the host's loaders.
func (d *Distro) Loaders(img *Image) (Loaders, error) {
	if img == nil {
		return Loaders{}, errors.New("isosrc: Loaders: no image")
	}
	l := Loaders{FS: img, Shim: d.Shim, GRUB: d.GRUB, Vendor: d.Family != FamilyDebianInstaller}
	if d.EFISource == EFIFromElTorito {
		efi, err := img.EFIFS()
		if err != nil {
			return Loaders{}, fmt.Errorf("isosrc: the boot loaders are in the UEFI boot image: %w", err)
		}
		l.FS = efi
	}
	return l, nil
}
