package isosrc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// ErrNoBootImage means the image has no El Torito boot image of the kind
// asked for.
var ErrNoBootImage = errors.New("isosrc: no such El Torito boot image")

// Platform identifiers of El Torito boot catalog entries, as BootImage.Platform
// spells them.
const (
	PlatformBIOS = "bios" // 0x00, x86 BIOS
	PlatformEFI  = "efi"  // 0xEF, UEFI
	PlatformPPC  = "ppc"  // 0x01
	PlatformMac  = "mac"  // 0x02
)

// BootImage is one entry of the El Torito boot catalog: what firmware boots
// when the ISO is used as a CD. The EFI entry is a FAT image holding
// EFI/BOOT/BOOTX64.EFI, which is where shim and GRUB live on images whose
// tree lacks an EFI directory.
type BootImage struct {
	Platform  string `json:"platform"`       // PlatformBIOS, PlatformEFI, ... or "0xNN"
	Bootable  bool   `json:"bootable"`       // the entry's boot indicator
	Emulation string `json:"emulation"`      // "none", "floppy" or "hdd"
	LoadRBA   uint32 `json:"load_rba"`       // first 2048-byte sector
	Offset    int64  `json:"offset"`         // LoadRBA * 2048
	Size      int64  `json:"size"`           // bytes; from the tree file, the FAT header or the catalog
	Path      string `json:"path,omitempty"` // file in the tree with the same extent, if any
}

// BootImages returns the El Torito boot catalog entries, initial entry
// first; empty for an image that is not bootable as a CD. A damaged catalog
// gives an empty list and a warning (see Warnings), not an Open error,
// because the files are still readable.
func (img *Image) BootImages() []BootImage {
	return append([]BootImage(nil), img.boot...)
}

// OpenBootImage returns a reader over the bytes of b.
func (img *Image) OpenBootImage(b BootImage) *io.SectionReader {
	return io.NewSectionReader(img.r, b.Offset, b.Size)
}

const maxCatalogEntries = 64 * sectorSize / 32

func platformName(p byte) string {
	switch p {
	case 0x00:
		return PlatformBIOS
	case 0xEF:
		return PlatformEFI
	case 0x01:
		return PlatformPPC
	case 0x02:
		return PlatformMac
	}
	return fmt.Sprintf("0x%02x", p)
}

// readBootCatalog parses the catalog at sector lba.
func readBootCatalog(r io.ReaderAt, size int64, lba uint32, present bool) ([]BootImage, error) {
	if !present {
		return nil, nil
	}
	off := int64(lba) * sectorSize
	if lba < 17 || off+sectorSize > size {
		return nil, fmt.Errorf("boot catalog at sector %d lies outside the image", lba)
	}
	// The catalog is usually one sector; read up to four.
	n := min(int64(4*sectorSize), size-off)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading boot catalog: %v", err)
	}
	return parseBootCatalog(buf, size)
}

// parseBootCatalog decodes a boot catalog; imageSize bounds the entries.
func parseBootCatalog(buf []byte, imageSize int64) ([]BootImage, error) {
	if len(buf) < 64 {
		return nil, errors.New("boot catalog too short")
	}
	v := buf[:32]
	if v[0] != 0x01 || v[30] != 0x55 || v[31] != 0xAA {
		return nil, errors.New("boot catalog validation entry is missing")
	}
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(v[i:])
	}
	if sum != 0 {
		return nil, errors.New("boot catalog validation entry checksum mismatch")
	}
	platform := v[1]
	var out []BootImage
	entry := func(e []byte, plat byte) {
		b := BootImage{
			Platform: platformName(plat),
			Bootable: e[0] == 0x88,
			LoadRBA:  binary.LittleEndian.Uint32(e[8:12]),
		}
		switch e[1] & 0x0F {
		case 0:
			b.Emulation = "none"
		case 1, 2, 3:
			b.Emulation = "floppy"
		case 4:
			b.Emulation = "hdd"
		default:
			b.Emulation = fmt.Sprintf("0x%02x", e[1]&0x0F)
		}
		b.Offset = int64(b.LoadRBA) * sectorSize
		b.Size = int64(binary.LittleEndian.Uint16(e[6:8])) * 512
		if b.Offset >= imageSize || b.LoadRBA == 0 {
			return
		}
		b.Size = min(b.Size, imageSize-b.Offset)
		out = append(out, b)
	}
	entry(buf[32:64], platform)
	for i := 2; i < min(len(buf)/32, maxCatalogEntries); {
		h := buf[i*32 : i*32+32]
		if h[0] != 0x90 && h[0] != 0x91 {
			break
		}
		count := int(binary.LittleEndian.Uint16(h[2:4]))
		plat := h[1]
		i++
		for k := 0; k < count && i < len(buf)/32; i++ {
			e := buf[i*32 : i*32+32]
			if e[0] == 0x44 { // selection criteria extension
				continue
			}
			entry(e, plat)
			k++
		}
		if h[0] == 0x91 {
			break
		}
	}
	return out, nil
}

// EFIFS returns the file system inside the first UEFI El Torito boot image
// (a FAT12, FAT16 or FAT32 image such as images/efiboot.img). It is read by
// isosrc's own bounded FAT reader and indexed on each call; the result is
// safe for concurrent use, and its regular files are *File. Lookups are
// case-insensitive, as on FAT. It gives ErrNoBootImage when the image has
// no UEFI entry, and an error wrapping ErrBadImage (and ErrLimit for a
// bound of the Limits given to Open) naming what is wrong when the FAT
// image is damaged: a looping or cross-linked cluster chain, a cluster out
// of range, a geometry that does not fit the ISO, an oversize directory.
func (img *Image) EFIFS() (fs.FS, error) {
	for _, b := range img.boot {
		if b.Platform != PlatformEFI {
			continue
		}
		root, err := readFAT(img.r, b.Offset, img.size-b.Offset, img.lim)
		if err != nil {
			return nil, fmt.Errorf("isosrc: UEFI boot image at sector %d: %w", b.LoadRBA, err)
		}
		return &fatFS{img: &Image{r: img.r, size: img.size, root: root, lim: img.lim}}, nil
	}
	return nil, ErrNoBootImage
}
