package bootmenu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	LoaderShim     = "shimx64.efi"
	LoaderGRUB     = "grubx64.efi"
	LoaderPXELinux = "pxelinux.0"
	// LoaderShimAA64 and LoaderGRUBAA64 boot AArch64 UEFI clients (DHCP
	// option 93 = 11).
	LoaderShimAA64 = "shimaa64.efi"
	LoaderGRUBAA64 = "grubaa64.efi"
	// LoaderIPXESNP is iPXE for UEFI using the firmware's network driver:
	// what a UEFI client gets from a proxyDHCP server, because iPXE, unlike
	// GRUB, understands proxyDHCP.
	LoaderIPXESNP = "ipxe/snponly.efi"
	// LoaderGRUBHTTPMod is GRUB's http module where the host's signed
	// network GRUB (grubnetx64.efi, $prefix /grub on the TFTP server)
	// looks for it when a menu opens an (http,...) device: see
	// GRUBDialect.HTTPInsmod. It is not a boot loader (IsLoader).
	LoaderGRUBHTTPMod = "grub/x86_64-efi/http.mod"
)

// HostLoaderPackages names the Debian packages that provide the host's
// loaders, for the message that tells an operator what to install.
// grub-efi-amd64-bin provides GRUB's http module, which Debian's signed
// GRUB loads with Secure Boot off.
const HostLoaderPackages = "grub-efi-amd64-signed grub-efi-amd64-bin shim-signed pxelinux syslinux-common ipxe"

// ErrNoLoader means no UEFI and no BIOS loader could be found.
var ErrNoLoader = errors.New("bootmenu: no network boot loader found")

// maxLoaderSize bounds what FindLoaders reads into memory per file. Signed
// GRUB images are about 4 MB and shims about 1 MB; an installation image
// that claims a larger loader is damaged or hostile.
const maxLoaderSize = 64 << 20

// netbootAA64 are the signed shim and network GRUB in a Debian arm64
// netboot tree (debian-installer-N-netboot-arm64, netboot.tar.gz). An amd64
// host cannot install grub-efi-arm64-signed, so these are how it serves
// AArch64 clients.
var netbootAA64 = [2]string{"debian-installer/arm64/bootnetaa64.efi", "debian-installer/arm64/grubaa64.efi"}

// distroPairs are (shim, GRUB) paths in an installation tree, in order of
// preference, for when LoaderSource names none.
var distroPairs = [][2]string{
	{"EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/grubx64.efi"},
	{"EFI/BOOT/bootx64.efi", "EFI/BOOT/grubx64.efi"},
	{"EFI/boot/bootx64.efi", "EFI/boot/grubx64.efi"},
}

// hostModules is where the host's GRUB modules for x86_64 EFI are
// (grub-efi-amd64-bin), below the host root; its modinfo.sh names the
// package version they were built as.
const hostModules = "usr/lib/grub/x86_64-efi"

// maxModinfo bounds what FindLoaders reads of modinfo.sh (about 1 KiB).
const maxModinfo = 64 << 10

// hostCandidates maps each served name to the paths of the Debian packages
// that ship it, first found wins.
func hostCandidates(root string) map[string][]string {
	p := func(s string) string { return path.Join(root, s) }
	return map[string][]string{
		LoaderShim:           {p("usr/lib/shim/shimx64.efi.signed"), p("usr/lib/shim/shimx64.efi")},
		LoaderGRUB:           {p("usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")},
		LoaderPXELinux:       {p("usr/lib/PXELINUX/pxelinux.0")},
		"ldlinux.c32":        {p("usr/lib/syslinux/modules/bios/ldlinux.c32")},
		"menu.c32":           {p("usr/lib/syslinux/modules/bios/menu.c32")},
		"libutil.c32":        {p("usr/lib/syslinux/modules/bios/libutil.c32")},
		"libcom32.c32":       {p("usr/lib/syslinux/modules/bios/libcom32.c32")},
		"ipxe/undionly.kpxe": {p("usr/lib/ipxe/undionly.kpxe")},
		"ipxe/ipxe.efi":      {p("usr/lib/ipxe/ipxe.efi")},
		LoaderIPXESNP:        {p("usr/lib/ipxe/snponly.efi")},
		LoaderGRUBAA64:       {p("usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed")},
		LoaderShimAA64:       {p("usr/lib/shim/shimaa64.efi.signed")},
		"lpxelinux.0":        {p("usr/lib/PXELINUX/lpxelinux.0")},
		"vesamenu.c32":       {p("usr/lib/syslinux/modules/bios/vesamenu.c32")},
	}
}

// LoaderSource is where a distribution's own shim and GRUB are, for
// FindLoaders. isosrc's Distro.Loaders fills in FS, Shim, GRUB and Vendor
// from a detected image.
type LoaderSource struct {
	// FS holds the distribution's pair: the installation tree, or the El
	// Torito EFI image when the tree lacks them. Nil: no distribution
	// loaders, the host's only.
	FS fs.FS
	// Shim and GRUB are the pair's paths within FS. When either is empty
	// the usual EFI/BOOT (and EFI/boot) names are tried.
	Shim, GRUB string
	// Vendor says the distribution's own pair must boot its kernels: under
	// Secure Boot a shim trusts only its vendor's GRUB, and that GRUB only
	// its vendor's kernels, so an EL clone or Ubuntu booted through the
	// host's Debian-signed GRUB is refused. Then the pair in FS is taken
	// first, and the host's only when FS has none.
	//
	// False (the default, right for Debian): the host's signed network GRUB
	// first, the pair in FS only when the host has none. Debian's ISO
	// carries a CD-ROM GRUB that does not look for its menu on the network,
	// while the host's grubnetx64.efi, signed by the same vendor, does.
	Vendor bool
	// Netboot is a Debian netboot tree (nil: none). Its AArch64 shim and
	// GRUB serve ARM64 clients when the host has no grub-efi-arm64-signed.
	Netboot fs.FS
}

// Loaders is a read-only file system of network boot loaders, read into
// memory once (a few megabytes) so that a loader missing or unreadable is
// found at start-up, not when the first machine boots. Serve it at the
// TFTP root. A nil *Loaders serves nothing: Has reports false and Open
// fs.ErrNotExist.
type Loaders struct {
	files  fstest.MapFS
	origin map[string]string
}

// FindLoaders collects the loaders the boot chain needs — shim and GRUB for
// UEFI x64 and AArch64, pxelinux and its modules for BIOS, iPXE — from
// src and from the host's Debian/Ubuntu packages under hostRoot ("" or
// "/" normally; a test passes a fake root).
//
// Shim and GRUB are always taken as a pair from one source (see
// LoaderSource.Vendor for which is tried first): mixing a distribution's
// GRUB with the host's shim fails at boot under Secure Boot. The AArch64
// pair is the host's (grub-efi-arm64-signed), else src.Netboot's. The
// BIOS and iPXE files are always the host's.
//
// The error wraps ErrNoLoader when neither a UEFI nor a BIOS loader was
// found; it names the packages to install.
func FindLoaders(src LoaderSource, hostRoot string) (*Loaders, error) {
	if hostRoot == "" {
		hostRoot = "/"
	}
	l := &Loaders{files: fstest.MapFS{}, origin: map[string]string{}}
	host := hostCandidates(hostRoot)
	hostPair := func() error {
		if err := l.addHost(LoaderGRUB, host[LoaderGRUB]); err != nil || !l.Has(LoaderGRUB) {
			return err
		}
		return l.addHost(LoaderShim, host[LoaderShim])
	}
	if !src.Vendor {
		if err := hostPair(); err != nil {
			return nil, err
		}
	}
	if !l.Has(LoaderGRUB) && src.FS != nil {
		pairs := distroPairs
		if src.Shim != "" && src.GRUB != "" {
			pairs = [][2]string{{src.Shim, src.GRUB}}
		}
		for _, pr := range pairs {
			shim, err := readLoader(src.FS, pr[0])
			if err != nil {
				return nil, err
			}
			grub, err := readLoader(src.FS, pr[1])
			if err != nil {
				return nil, err
			}
			if shim != nil && grub != nil {
				l.add(LoaderShim, shim, "iso:"+pr[0])
				l.add(LoaderGRUB, grub, "iso:"+pr[1])
				break
			}
		}
	}
	// The host's shim and GRUB only as a pair, and only when the
	// distribution gave none.
	if !l.Has(LoaderGRUB) {
		if err := hostPair(); err != nil {
			return nil, err
		}
	}
	for name, paths := range host {
		if name == LoaderShim || name == LoaderGRUB || name == LoaderShimAA64 || name == LoaderGRUBAA64 {
			continue
		}
		if err := l.addHost(name, paths); err != nil {
			return nil, err
		}
	}
	// AArch64: the host's signed pair, else the netboot tree's; a shim
	// only with the GRUB of its own source.
	if err := l.addHost(LoaderGRUBAA64, host[LoaderGRUBAA64]); err != nil {
		return nil, err
	}
	if l.Has(LoaderGRUBAA64) {
		if err := l.addHost(LoaderShimAA64, host[LoaderShimAA64]); err != nil {
			return nil, err
		}
	} else if src.Netboot != nil {
		grub, err := readLoader(src.Netboot, netbootAA64[1])
		if err != nil {
			return nil, err
		}
		if grub != nil {
			shim, err := readLoader(src.Netboot, netbootAA64[0])
			if err != nil {
				return nil, err
			}
			l.add(LoaderGRUBAA64, grub, "netboot:"+netbootAA64[1])
			if shim != nil {
				l.add(LoaderShimAA64, shim, "netboot:"+netbootAA64[0])
			}
		}
	}
	if err := l.addHostHTTPMod(hostRoot, host[LoaderGRUB]); err != nil {
		return nil, err
	}
	if !l.Has(LoaderGRUB) && !l.Has(LoaderPXELinux) && !l.Has(LoaderGRUBAA64) {
		return nil, fmt.Errorf("%w: the installation media have no EFI/BOOT/grubx64.efi and the host has none of the usual paths under %s; install the Debian packages %s", ErrNoLoader, hostRoot, HostLoaderPackages)
	}
	return l, nil
}

// readLoader reads name from fsys; nil without error when it is absent or
// not a regular file. Other failures are errors: a damaged image would
// otherwise fall back silently to a loader of another vendor.
func readLoader(fsys fs.FS, name string) ([]byte, error) {
	return readLimited(fsys, name, maxLoaderSize)
}

// readLimited is readLoader with the size limit as a parameter, for tests.
func readLimited(fsys fs.FS, name string, limit int64) ([]byte, error) {
	st, err := fs.Stat(fsys, name)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !st.Mode().IsRegular()) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("boot loader %s: %w", name, err)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("boot loader %s: %d bytes is more than the %d a loader may have", name, st.Size(), limit)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("boot loader %s: %w", name, err)
	}
	defer f.Close()
	// The limit holds even when the file system's Stat understates the size.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("boot loader %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("boot loader %s: more than the %d bytes a loader may have", name, limit)
	}
	return data, nil
}

func (l *Loaders) add(name string, data []byte, origin string) {
	l.files[name] = &fstest.MapFile{Data: data, Mode: 0o444}
	l.origin[name] = origin
}

// addHost adds the first existing path; a file that exists but cannot be
// read is an error, because serving it would fail for every client.
func (l *Loaders) addHost(name string, paths []string) error {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if st.Size() > maxLoaderSize {
			return fmt.Errorf("boot loader %s: %s has %d bytes, more than the %d a loader may have", name, p, st.Size(), maxLoaderSize)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("boot loader %s: %w", name, err)
		}
		l.add(name, data, p)
		return nil
	}
	return nil
}

// addHostHTTPMod adds the host's http module when the served GRUB is the
// host's and both come from one GRUB build: a module from another build
// can crash GRUB, where a missing one only leaves kernels on TFTP. The
// build is the package version in modinfo.sh, which the signed image names
// in its SBAT section (",grub2,2.06-13+deb12u2,").
func (l *Loaders) addHostHTTPMod(hostRoot string, grubPaths []string) error {
	if len(grubPaths) == 0 || l.origin[LoaderGRUB] != grubPaths[0] {
		return nil
	}
	mods := os.DirFS(path.Join(hostRoot, hostModules))
	info, err := readLimited(mods, "modinfo.sh", maxModinfo)
	if err != nil || info == nil {
		return err
	}
	v := modinfoVersion(info)
	if v == "" || !bytes.Contains(l.files[LoaderGRUB].Data, []byte(",grub2,"+v+",")) {
		return nil
	}
	mod, err := readLoader(mods, "http.mod")
	if err != nil || mod == nil {
		return err
	}
	l.add(LoaderGRUBHTTPMod, mod, path.Join(hostRoot, hostModules, "http.mod"))
	return nil
}

// modinfoVersion returns grub_package_version from the text of GRUB's
// modinfo.sh ("" when absent or odd).
func modinfoVersion(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "grub_package_version=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		if v == "" || strings.IndexFunc(v, func(r rune) bool { return !isIDChar(r) && r != '+' && r != '~' && r != ':' }) >= 0 {
			return ""
		}
		return v
	}
	return ""
}

// Has reports whether name is served.
func (l *Loaders) Has(name string) bool {
	if l == nil {
		return false
	}
	_, ok := l.files[name]
	return ok
}

// IsLoader reports whether name is served and is a boot loader proper — a
// program the firmware or a loader hands control to (shim, GRUB,
// pxelinux.0, an iPXE image) — rather than a file a loader reads for
// itself (pxelinux's .c32 modules, GRUB's http module). A server uses it
// to tell which request marks a client's boot-loader step.
func (l *Loaders) IsLoader(name string) bool {
	if !l.Has(name) {
		return false
	}
	switch name {
	case LoaderShim, LoaderGRUB, LoaderShimAA64, LoaderGRUBAA64, LoaderPXELinux, "lpxelinux.0",
		LoaderIPXESNP, "ipxe/ipxe.efi", "ipxe/undionly.kpxe":
		return true
	}
	return false
}

// FromDistro reports whether name came from the LoaderSource (the
// distribution's installation media) rather than the host or a netboot
// tree. The GRUB that reads the menu decides its dialect: see Dialect.
func (l *Loaders) FromDistro(name string) bool {
	return l != nil && strings.HasPrefix(l.origin[name], "iso:")
}

// Origins returns "name <- source" lines, sorted, for a start-up banner:
// the source is a host path, "iso:PATH" or "netboot:PATH".
func (l *Loaders) Origins() []string {
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l.origin))
	for n, o := range l.origin {
		out = append(out, n+" <- "+o)
	}
	sort.Strings(out)
	return out
}

// Missing returns what a BIOS or UEFI x64 client would lack, as advice
// naming the packages to install. Empty when both can boot.
func (l *Loaders) Missing() []string {
	var out []string
	if !l.Has(LoaderGRUB) {
		out = append(out, "no UEFI loader ("+LoaderGRUB+"): UEFI clients cannot boot; install grub-efi-amd64-signed and shim-signed")
	}
	if !l.Has(LoaderPXELinux) || !l.Has("ldlinux.c32") {
		out = append(out, "no BIOS loader ("+LoaderPXELinux+" + ldlinux.c32): BIOS clients cannot boot; install pxelinux and syslinux-common")
	}
	if !l.Has(LoaderIPXESNP) {
		out = append(out, "no iPXE ("+LoaderIPXESNP+"): under proxyDHCP, UEFI clients get GRUB, which takes its TFTP server from the address server's ACK and stops at its prompt; install ipxe")
	}
	return out
}

// Open implements fs.FS. Names are the served ones ("grubx64.efi",
// "ipxe/snponly.efi"); host paths never appear in errors.
func (l *Loaders) Open(name string) (fs.File, error) {
	if l == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return l.files.Open(name)
}

// Dialect returns the GRUB dialect of menus read by the GRUB these loaders
// serve for osID's install: the distribution's own (DialectFor) when its
// GRUB came from the installation media, else Debian's signed network
// image (GRUBDebian), which is what the host packages provide. HTTPInsmod
// is cleared unless the loaders include that GRUB's own http module
// (LoaderGRUBHTTPMod), so that the menu does not ask for a module nobody
// serves. A nil *Loaders gives GRUBDebian as it is, for a caller that
// serves the host's loaders from another Loaders (without the module
// there, GRUB's attempt to load it fails and kernels come over TFTP). The
// error wraps ErrUnknownOS.
func (l *Loaders) Dialect(osID string) (GRUBDialect, error) {
	d, err := DialectFor(osID)
	if err != nil {
		return GRUBDialect{}, err
	}
	if l == nil {
		return GRUBDebian, nil
	}
	if !l.FromDistro(LoaderGRUB) {
		d = GRUBDebian
	}
	d.HTTPInsmod = d.HTTPInsmod && l.Has(LoaderGRUBHTTPMod)
	return d, nil
}
