package dhcpsrv

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
)

// BootAnswer is what a network-boot client is told: where to fetch its first
// program. The server writes File into both the BOOTP `file` field and option
// 67, and ServerIP into siaddr, so the two places firmware reads never
// disagree.
type BootAnswer struct {
	// File is the boot file: a path relative to the TFTP root, or an absolute
	// http:// URL for UEFI HTTP boot and iPXE. At most 127 bytes (the size of
	// the BOOTP `file` field); longer names are an error, never cut.
	File string
	// ServerIP is the TFTP server (siaddr, "next-server"). Zero means the
	// server's own address.
	ServerIP netip.Addr
	// ServerName is sent as option 66; empty means ServerIP in dotted form.
	ServerName string
	// VendorClass is echoed in option 60: "PXEClient" or "HTTPClient". UEFI
	// HTTP boot ignores an offer without "HTTPClient". A ModeFull OFFER or
	// ACK leaves "PXEClient" out, as a classic DHCP server's answer does:
	// with an address and a boot file the client needs no boot-server
	// discovery, which "PXEClient" would announce.
	VendorClass string
}

// BootPolicy decides the boot answer for one client, as an http.Handler
// answers one request. Decide runs for every DISCOVER and REQUEST of a
// network-boot client, so it must be quick. An error (for example
// ErrNoBootFile) makes the server send no boot information; in proxy mode
// it sends nothing at all. A policy that answers per host (by c.MAC) may
// call a BootTable for everything else.
type BootPolicy interface {
	Decide(c Client) (BootAnswer, error)
}

// BootFunc adapts a function to BootPolicy, as http.HandlerFunc does.
type BootFunc func(Client) (BootAnswer, error)

// Decide calls f(c).
func (f BootFunc) Decide(c Client) (BootAnswer, error) { return f(c) }

// ErrNoBootFile reports a client architecture the boot table has no file
// for. Answering with a file of the wrong architecture would only make the
// firmware fail later and less clearly.
var ErrNoBootFile = errors.New("dhcpsrv: no boot file for this client")

// defaultProxyUEFI is the file BootTable gives x86-64 UEFI PXE clients in
// proxy mode unless ProxyUEFI says otherwise.
const defaultProxyUEFI = "ipxe/snponly.efi"

// BootTable is the default BootPolicy: one file per architecture, an iPXE
// script for iPXE clients and URLs for HTTP-boot clients. Its zero value
// gives the common layout (pxelinux.0, shimx64.efi or grubx64.efi,
// shimaa64.efi or grubaa64.efi, ipxe/snponly.efi for UEFI PXE clients in
// proxy mode) with the server's own address as TFTP server; set any field,
// or replace the table with your own BootPolicy. A table must not be
// changed while a server uses it.
type BootTable struct {
	// ServerIP is the TFTP server sent as siaddr. Zero means the
	// server's own address (Config.ServerIP).
	ServerIP netip.Addr
	// HTTPBase is the base URL for HTTP-boot clients and the iPXE script,
	// e.g. "http://10.77.0.1:8080". Empty means iPXE fetches its script
	// over TFTP and HTTP-boot clients get ErrNoBootFile.
	HTTPBase string
	// Files is the TFTP root as served, checked for optional files
	// (shimx64.efi, shimaa64.efi, ProxyUEFI), with Prefix. Nil means
	// "shims absent, ProxyUEFI present".
	Files fs.FS
	// Prefix is a directory prepended to every TFTP file name the table
	// answers (ByArch, defaults, ProxyUEFI, the iPXE script when HTTPBase
	// is empty), e.g. "profiles/rocky9/" for loaders kept per profile;
	// Files are looked up with it. It is not applied to HTTP-boot answers
	// or absolute URLs. Default: none.
	Prefix string
	// ByArch overrides the file for an architecture (TFTP clients: a path;
	// HTTP-boot architectures: a path below HTTPBase or an absolute URL).
	// An entry for ArchEFIX64 or ArchEFIBC also wins over ProxyUEFI.
	ByArch map[Arch]string
	// IPXEScript is the iPXE script path below HTTPBase. Default "boot.ipxe".
	// Giving iPXE a script instead of an iPXE binary is what prevents the
	// chainload loop.
	IPXEScript string
	// IgnoreIPXE treats iPXE clients as the PXE or HTTP-boot clients they
	// also are: they get a boot file, not the script. Default false.
	IgnoreIPXE bool
	// ProxyUEFI is the file for x86-64 UEFI PXE clients (not iPXE, not
	// HTTP boot) that get their address from another server (Client.Proxy).
	// Default "ipxe/snponly.efi". GRUB takes its TFTP server from the address
	// server's ACK, which names none, and stops at its prompt; iPXE
	// understands proxyDHCP and then fetches the script at HTTPBase. iPXE
	// does not boot under Secure Boot: when the network's DHCP server points
	// next-server here, set ProxyUEFI to the shim or GRUB name to keep it.
	// When Files is not nil and lacks ProxyUEFI, such clients get the usual
	// UEFI answer. ARM64 clients are not affected (no iPXE to chainload).
	ProxyUEFI string
}

// Default boot files, relative to the TFTP root (or HTTPBase for HTTP boot).
// The x86-64 UEFI entry is resolved at decision time: shimx64.efi when the
// table's Files contain it (Secure Boot works), else grubx64.efi.
var defaultBootFiles = map[Arch]string{
	ArchBIOS:           "pxelinux.0",
	ArchEFIIA32:        "grubia32.efi",
	ArchEFIARM32:       "grubarm.efi",
	ArchEFIARM64:       "grubaa64.efi",
	ArchEFIRISCV64:     "grubriscv64.efi",
	ArchEFILoong64:     "grubloongarch64.efi",
	ArchEFIIA32HTTP:    "grubia32.efi",
	ArchEFIX64HTTP:     "ipxe/snponly.efi",
	ArchEFIARM32HTTP:   "grubarm.efi",
	ArchEFIARM64HTTP:   "grubaa64.efi",
	ArchEFIRISCV64HTTP: "grubriscv64.efi",
	ArchEFILoong64HTTP: "grubloongarch64.efi",
}

// DefaultBootFile returns the default file name for arch ("" when there is
// none), consulting files for shimx64.efi and shimaa64.efi (Secure Boot
// needs the shim first; it loads grubx64.efi or grubaa64.efi from the same
// directory). It is exported so that callers laying out a TFTP root can put
// files where the table expects them.
func DefaultBootFile(arch Arch, files fs.FS) string {
	return defaultBootFile(arch, files, "")
}

// defaultBootFile is DefaultBootFile with files looked up below dir ("" or
// a directory ending in "/").
func defaultBootFile(arch Arch, files fs.FS, dir string) string {
	switch {
	case arch == ArchEFIX64 || arch == ArchEFIBC:
		if hasFile(files, dir+"shimx64.efi") {
			return "shimx64.efi"
		}
		return "grubx64.efi"
	case arch == ArchEFIARM64 && hasFile(files, dir+"shimaa64.efi"):
		return "shimaa64.efi"
	}
	return defaultBootFiles[arch]
}

// Decide implements BootPolicy.
func (t *BootTable) Decide(c Client) (BootAnswer, error) {
	ans := BootAnswer{ServerIP: t.ServerIP, VendorClass: "PXEClient"}
	base := strings.TrimRight(t.HTTPBase, "/")
	ipxe := c.IPXE && !t.IgnoreIPXE
	switch {
	case ipxe:
		script := t.IPXEScript
		if script == "" {
			script = "boot.ipxe"
		}
		if base == "" {
			ans.File = t.tftpName(strings.TrimLeft(script, "/"))
		} else {
			ans.File = joinURL(base, script)
		}
		if c.HTTPClient {
			ans.VendorClass = "HTTPClient"
		}
		return ans, nil
	case c.HTTPClient || c.Arch.IsHTTP():
		name := t.ByArch[c.Arch]
		if name == "" {
			name = defaultBootFile(c.Arch, t.Files, "")
		}
		if name == "" {
			return BootAnswer{}, fmt.Errorf("%w: HTTP boot arch %v", ErrNoBootFile, c.Arch)
		}
		if !isURL(name) {
			if base == "" {
				return BootAnswer{}, fmt.Errorf("%w: HTTP boot needs HTTPBase", ErrNoBootFile)
			}
			name = joinURL(base, name)
		}
		ans.File, ans.VendorClass = name, "HTTPClient"
		return ans, nil
	}
	name := t.ByArch[c.Arch]
	if name == "" && c.Proxy && (c.Arch == ArchEFIX64 || c.Arch == ArchEFIBC) {
		p := t.ProxyUEFI
		if p == "" {
			p = defaultProxyUEFI
		}
		if t.Files == nil || isURL(p) || t.has(p) {
			name = p
		}
	}
	if name == "" {
		name = defaultBootFile(c.Arch, t.Files, t.prefix())
	}
	if name == "" {
		return BootAnswer{}, fmt.Errorf("%w: arch %v", ErrNoBootFile, c.Arch)
	}
	ans.File = t.tftpName(name)
	return ans, nil
}

// prefix is Prefix as a relative directory ending in "/", or "".
func (t *BootTable) prefix() string {
	p := strings.Trim(t.Prefix, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// tftpName applies Prefix to a TFTP file name.
func (t *BootTable) tftpName(name string) string {
	if isURL(name) {
		return name
	}
	return t.prefix() + strings.TrimLeft(name, "/")
}

// has reports whether Files holds name below Prefix.
func (t *BootTable) has(name string) bool {
	return hasFile(t.Files, t.prefix()+strings.TrimLeft(name, "/"))
}

func hasFile(files fs.FS, name string) bool {
	if files == nil {
		return false
	}
	_, err := fs.Stat(files, name)
	return err == nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func joinURL(base, p string) string {
	if isURL(p) {
		return p
	}
	return base + "/" + strings.TrimLeft(p, "/")
}
