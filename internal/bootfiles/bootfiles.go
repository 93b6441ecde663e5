// Package bootfiles finds the network boot loaders the examples serve over
// TFTP — shim and GRUB for UEFI, pxelinux for BIOS, iPXE — first in the
// distribution's ISO, then in the host's Debian/Ubuntu packages, and presents
// them as one flat fs.FS.
//
// Shim and GRUB are always taken as a pair from one vendor: under Secure Boot
// a shim trusts only its own vendor's GRUB, and that GRUB only its vendor's
// kernel, so mixing an ISO's GRUB with the host's shim fails at boot.
package bootfiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"testing/fstest"
)

// The names the loaders are served under, at the TFTP root. They match the
// default boot-file table of dhcpsrv.
const (
	Shim     = "shimx64.efi"
	GRUB     = "grubx64.efi"
	PXELinux = "pxelinux.0"
	// ShimAA64 and GRUBAA64 boot AArch64 UEFI clients (DHCP option 93 =
	// 11).
	ShimAA64 = "shimaa64.efi"
	GRUBAA64 = "grubaa64.efi"
)

// netbootAA64 are the signed shim and network GRUB in a Debian arm64
// netboot tree (debian-installer-N-netboot-arm64, netboot.tar.gz). An amd64
// host cannot install grub-efi-arm64-signed, so these are how it serves
// AArch64 clients.
var netbootAA64 = [2]string{"debian-installer/arm64/bootnetaa64.efi", "debian-installer/arm64/grubaa64.efi"}

// ErrNoLoader means no UEFI and no BIOS loader could be found.
var ErrNoLoader = errors.New("no network boot loader found")

// HostPackages names the Debian packages that provide each host candidate,
// for the message that tells an operator what to install.
const HostPackages = "grub-efi-amd64-signed shim-signed pxelinux syslinux-common ipxe"

// pairs of (shim, grub) in order of preference within one source.
var isoPairs = [][2]string{
	{"EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/grubx64.efi"},
	{"EFI/BOOT/bootx64.efi", "EFI/BOOT/grubx64.efi"},
	{"EFI/boot/bootx64.efi", "EFI/boot/grubx64.efi"},
}

func hostCandidates(root string) map[string][]string {
	p := func(s string) string { return path.Join(root, s) }
	return map[string][]string{
		Shim:                 {p("usr/lib/shim/shimx64.efi.signed"), p("usr/lib/shim/shimx64.efi")},
		GRUB:                 {p("usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")},
		PXELinux:             {p("usr/lib/PXELINUX/pxelinux.0")},
		"ldlinux.c32":        {p("usr/lib/syslinux/modules/bios/ldlinux.c32")},
		"menu.c32":           {p("usr/lib/syslinux/modules/bios/menu.c32")},
		"libutil.c32":        {p("usr/lib/syslinux/modules/bios/libutil.c32")},
		"libcom32.c32":       {p("usr/lib/syslinux/modules/bios/libcom32.c32")},
		"ipxe/undionly.kpxe": {p("usr/lib/ipxe/undionly.kpxe")},
		"ipxe/ipxe.efi":      {p("usr/lib/ipxe/ipxe.efi")},
		"ipxe/snponly.efi":   {p("usr/lib/ipxe/snponly.efi")},
		GRUBAA64:             {p("usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed")},
		ShimAA64:             {p("usr/lib/shim/shimaa64.efi.signed")},
		"lpxelinux.0":        {p("usr/lib/PXELINUX/lpxelinux.0")},
		"vesamenu.c32":       {p("usr/lib/syslinux/modules/bios/vesamenu.c32")},
	}
}

// Set is a read-only file system of boot loaders, read into memory once
// (a few megabytes) so that a loader missing or unreadable is found at
// start-up, not when the first machine boots.
type Set struct {
	files  fstest.MapFS
	origin map[string]string
}

// Source is where a distribution's own shim and GRUB are: the ISO tree, or
// the El Torito EFI image when the tree lacks them (paths from detection).
type Source struct {
	FS         fs.FS  // nil: no distribution loaders
	Shim, GRUB string // paths within FS; empty: the usual EFI/BOOT names
	// PreferHost takes the host's network GRUB first. Debian and Ubuntu ISOs
	// carry a CD-ROM GRUB that does not look for its menu on the network,
	// while the host's signed network image (same vendor family) does.
	PreferHost bool
	// Netboot is a Debian netboot tree (nil: none). Its AArch64 shim and
	// GRUB serve ARM64 clients when the host has no grub-efi-arm64-signed.
	Netboot fs.FS
}

// Find collects the loaders. hostRoot is "/" normally (a test passes a fake
// root).
func Find(src Source, hostRoot string) (*Set, error) {
	s := &Set{files: fstest.MapFS{}, origin: map[string]string{}}
	host := hostCandidates(hostRoot)
	hostPair := func() error {
		if err := s.addHost(GRUB, host[GRUB]); err != nil || !s.Has(GRUB) {
			return err
		}
		return s.addHost(Shim, host[Shim])
	}
	if src.PreferHost {
		if err := hostPair(); err != nil {
			return nil, err
		}
	}
	if !s.Has(GRUB) && src.FS != nil {
		pairs := isoPairs
		if src.Shim != "" && src.GRUB != "" {
			pairs = [][2]string{{src.Shim, src.GRUB}}
		}
		for _, pr := range pairs {
			shim, err1 := fs.ReadFile(src.FS, pr[0])
			grub, err2 := fs.ReadFile(src.FS, pr[1])
			if err1 == nil && err2 == nil {
				s.add(Shim, shim, "iso:"+pr[0])
				s.add(GRUB, grub, "iso:"+pr[1])
				break
			}
		}
	}
	// The host's shim and GRUB only as a pair, and only when the ISO gave none.
	if !s.Has(GRUB) {
		if err := hostPair(); err != nil {
			return nil, err
		}
	}
	for name, paths := range host {
		if name == Shim || name == GRUB || name == ShimAA64 || name == GRUBAA64 {
			continue
		}
		if err := s.addHost(name, paths); err != nil {
			return nil, err
		}
	}
	// AArch64: the host's signed pair, else the netboot tree's; a shim
	// only with the GRUB of its own source.
	if err := s.addHost(GRUBAA64, host[GRUBAA64]); err != nil {
		return nil, err
	}
	if s.Has(GRUBAA64) {
		if err := s.addHost(ShimAA64, host[ShimAA64]); err != nil {
			return nil, err
		}
	} else if src.Netboot != nil {
		if grub, err := fs.ReadFile(src.Netboot, netbootAA64[1]); err == nil {
			s.add(GRUBAA64, grub, "netboot:"+netbootAA64[1])
			if shim, err := fs.ReadFile(src.Netboot, netbootAA64[0]); err == nil {
				s.add(ShimAA64, shim, "netboot:"+netbootAA64[0])
			}
		}
	}
	if !s.Has(GRUB) && !s.Has(PXELinux) && !s.Has(GRUBAA64) {
		return nil, fmt.Errorf("%w: the ISO has no EFI/BOOT/grubx64.efi and the host has none of the usual paths; install the Debian packages %s", ErrNoLoader, HostPackages)
	}
	return s, nil
}

func (s *Set) add(name string, data []byte, origin string) {
	s.files[name] = &fstest.MapFile{Data: data, Mode: 0o444}
	s.origin[name] = origin
}

// addHost adds the first existing path; a file that exists but cannot be
// read is an error, because serving it would fail for every client.
func (s *Set) addHost(name string, paths []string) error {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("boot loader %s: %w", name, err)
		}
		s.add(name, data, p)
		return nil
	}
	return nil
}

// Has reports whether name is served.
func (s *Set) Has(name string) bool {
	_, ok := s.files[name]
	return ok
}

// FromISO reports whether name came from the ISO rather than the host.
func (s *Set) FromISO(name string) bool {
	return strings.HasPrefix(s.origin[name], "iso:")
}

// Origins returns "name <- source" lines, sorted, for the start-up banner.
func (s *Set) Origins() []string {
	out := make([]string, 0, len(s.origin))
	for n, o := range s.origin {
		out = append(out, n+" <- "+o)
	}
	sort.Strings(out)
	return out
}

// Missing returns what a BIOS or UEFI client would lack, as advice.
func (s *Set) Missing() []string {
	var out []string
	if !s.Has(GRUB) {
		out = append(out, "no UEFI loader (grubx64.efi): UEFI clients cannot boot; install grub-efi-amd64-signed and shim-signed")
	}
	if !s.Has(PXELinux) || !s.Has("ldlinux.c32") {
		out = append(out, "no BIOS loader (pxelinux.0 + ldlinux.c32): BIOS clients cannot boot; install pxelinux and syslinux-common")
	}
	return out
}

// Open implements fs.FS.
func (s *Set) Open(name string) (fs.File, error) { return s.files.Open(name) }
