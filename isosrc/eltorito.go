package isosrc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
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
// (a FAT12, FAT16 or FAT32 image such as images/efiboot.img), read with
// go-diskfs. Lookups are case-insensitive, as on FAT. It gives
// ErrNoBootImage when the image has no UEFI entry.
func (img *Image) EFIFS() (fs.FS, error) {
	for _, b := range img.boot {
		if b.Platform != PlatformEFI {
			continue
		}
		size := fatSize(img.r, b.Offset, img.size)
		if size < b.Size || size == 0 {
			size = max(size, b.Size)
		}
		if size < 512 {
			return nil, fmt.Errorf("%w: UEFI boot image at sector %d is empty", ErrBadImage, b.LoadRBA)
		}
		return openFAT(io.NewSectionReader(img.r, b.Offset, size), size)
	}
	return nil, ErrNoBootImage
}

// fatSize reads the size a FAT file system declares in its boot sector, 0 if
// it does not look like one. Catalog sector counts are often 0 or 1 for
// UEFI images, so the FAT header is the better source.
func fatSize(r io.ReaderAt, off, imageSize int64) int64 {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, off); err != nil {
		return 0
	}
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return 0
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:13]))
	total := int64(binary.LittleEndian.Uint16(bs[19:21]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[32:36]))
	}
	if bps != 512 && bps != 1024 && bps != 2048 && bps != 4096 {
		return 0
	}
	return min(total*bps, imageSize-off)
}

// openFAT opens a FAT image with go-diskfs, trying FAT12, FAT16 and FAT32.
func openFAT(r *io.SectionReader, size int64) (fsys fs.FS, err error) {
	defer func() {
		if p := recover(); p != nil {
			fsys, err = nil, fmt.Errorf("%w: FAT reader fault: %v", ErrBadImage, p)
		}
	}()
	st := storage{r}
	var errs []error
	if f, err := fat12.Read(st, size, 0, 0); err == nil {
		return &fatFS{fsys: f, size: size}, nil
	} else {
		errs = append(errs, err)
	}
	if f, err := fat16.Read(st, size, 0, 0); err == nil {
		return &fatFS{fsys: f, size: size}, nil
	} else {
		errs = append(errs, err)
	}
	if f, err := fat32.Read(st, size, 0, 0); err == nil {
		return &fatFS{fsys: f, size: size}, nil
	} else {
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: UEFI boot image is not a readable FAT file system: %w", ErrBadImage, errors.Join(errs...))
}

// fatFS puts case-insensitive lookups and a recover around go-diskfs's FAT
// reader, which is written for trusted disks. It also refuses files that
// claim to be larger than the FAT image holding them, since fs.ReadFile
// allocates what Stat claims.
type fatFS struct {
	fsys interface {
		fs.FS
		ReadDir(string) ([]fs.DirEntry, error)
	}
	size int64
	// mu serialises every call into go-diskfs's FAT reader, which keeps
	// per-file-system state and is not documented as safe for concurrent
	// use; boot loaders are a few MB, so this costs little.
	mu sync.Mutex
}

func (f *fatFS) guard(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: FAT reader fault: %v", ErrBadImage, p)
	}
}

// canonical maps name onto the stored spelling, component by component.
func (f *fatFS) canonical(name string) (out string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.guard(&err)
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return ".", nil
	}
	dir := "."
	for _, el := range strings.Split(name, "/") {
		ents, err := f.fsys.ReadDir(dir)
		if err != nil {
			return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		found := ""
		for _, e := range ents {
			if e.Name() == el {
				found = el
				break
			}
			if found == "" && strings.EqualFold(e.Name(), el) {
				found = e.Name()
			}
		}
		if found == "" {
			return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		dir = path.Join(dir, found)
	}
	return dir, nil
}

func (f *fatFS) Open(name string) (file fs.File, err error) {
	c, err := f.canonical(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.guard(&err)
	if c == "." {
		c = "/"
	}
	file, err = f.fsys.Open(c)
	if err != nil {
		return nil, err
	}
	if fi, err := file.Stat(); err != nil || fi.Size() > f.size || fi.Size() < 0 {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: size larger than the FAT image", ErrBadImage)}
	}
	return &fatFile{File: file, fsys: f}, nil
}

// fatFile keeps the lock and the recover around reads of go-diskfs FAT
// files.
type fatFile struct {
	fs.File
	fsys *fatFS
}

func (f *fatFile) Read(p []byte) (n int, err error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	defer f.fsys.guard(&err)
	return f.File.Read(p)
}

// Seek passes through to go-diskfs's file, which supports it.
func (f *fatFile) Seek(offset int64, whence int) (n int64, err error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	defer f.fsys.guard(&err)
	s, ok := f.File.(io.Seeker)
	if !ok {
		return 0, errors.New("seek not supported")
	}
	return s.Seek(offset, whence)
}

// ReadDir passes directory reads through when the file is a directory.
func (f *fatFile) ReadDir(n int) (ents []fs.DirEntry, err error) {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	defer f.fsys.guard(&err)
	d, ok := f.File.(fs.ReadDirFile)
	if !ok {
		return nil, errors.New("not a directory")
	}
	return d.ReadDir(n)
}

func (f *fatFS) ReadDir(name string) (ents []fs.DirEntry, err error) {
	c, err := f.canonical(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.guard(&err)
	return f.fsys.ReadDir(c)
}
