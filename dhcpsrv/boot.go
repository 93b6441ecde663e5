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
	// HTTP boot ignores an offer without "HTTPClient".
	VendorClass string
}

// BootFunc decides the boot answer for one client. It must be a pure,
// fast function: it runs for every DISCOVER and REQUEST. An error (for
// example ErrNoBootFile) makes the server send no boot information; in proxy
// mode it sends nothing at all.
type BootFunc func(Client) (BootAnswer, error)

// ErrNoBootFile reports a client architecture the boot table has no file
// for. Answering with a file of the wrong architecture would only make the
// firmware fail later and less clearly.
var ErrNoBootFile = errors.New("dhcpsrv: no boot file for this client")

// BootTable is the default BootFunc: one file per architecture, an iPXE
// script for iPXE clients, URLs for HTTP-boot clients and per-MAC overrides.
// Its zero value plus ServerIP gives the common layout (pxelinux.0,
// shimx64.efi or grubx64.efi, shimaa64.efi or grubaa64.efi); replace any
// field, or the whole table with your own BootFunc.
type BootTable struct {
	// ServerIP is the TFTP server sent as siaddr. Required.
	ServerIP netip.Addr
	// HTTPBase is the base URL for HTTP-boot clients and the iPXE script,
	// e.g. "http://10.77.0.1:8080". Empty means iPXE fetches its script
	// over TFTP and HTTP-boot clients get ErrNoBootFile.
	HTTPBase string
	// Files are checked for optional files (shimx64.efi, shimaa64.efi).
	// Nil means "assume absent".
	Files fs.FS
	// ByArch overrides the file for an architecture (TFTP clients: a path;
	// HTTP-boot architectures: a path below HTTPBase or an absolute URL).
	ByArch map[Arch]string
	// IPXEScript is the iPXE script path below HTTPBase. Default "boot.ipxe".
	// Giving iPXE a script instead of an iPXE binary is what prevents the
	// chainload loop.
	IPXEScript string
	// ByMAC overrides the whole answer for one machine; keys are MAC
	// addresses in any form net.ParseMAC accepts, matched case-insensitively.
	ByMAC map[string]BootAnswer
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
	hasShim := func(name string) bool {
		if files == nil {
			return false
		}
		_, err := fs.Stat(files, name)
		return err == nil
	}
	switch {
	case arch == ArchEFIX64 || arch == ArchEFIBC:
		if hasShim("shimx64.efi") {
			return "shimx64.efi"
		}
		return "grubx64.efi"
	case arch == ArchEFIARM64 && hasShim("shimaa64.efi"):
		return "shimaa64.efi"
	}
	return defaultBootFiles[arch]
}

// Decide is the BootFunc of the table.
func (t *BootTable) Decide(c Client) (BootAnswer, error) {
	if a, ok := t.byMAC(c); ok {
		return a, nil
	}
	ans := BootAnswer{ServerIP: t.ServerIP, VendorClass: "PXEClient"}
	base := strings.TrimRight(t.HTTPBase, "/")
	switch {
	case c.IPXE:
		script := t.IPXEScript
		if script == "" {
			script = "boot.ipxe"
		}
		if base == "" {
			ans.File = strings.TrimLeft(script, "/")
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
			name = DefaultBootFile(c.Arch, t.Files)
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
	if name == "" {
		name = DefaultBootFile(c.Arch, t.Files)
	}
	if name == "" {
		return BootAnswer{}, fmt.Errorf("%w: arch %v", ErrNoBootFile, c.Arch)
	}
	ans.File = name
	return ans, nil
}

func (t *BootTable) byMAC(c Client) (BootAnswer, bool) {
	if len(t.ByMAC) == 0 {
		return BootAnswer{}, false
	}
	want := c.MAC.String()
	for k, a := range t.ByMAC {
		if strings.EqualFold(normMAC(k), want) {
			if !a.ServerIP.IsValid() {
				a.ServerIP = t.ServerIP
			}
			if a.VendorClass == "" {
				a.VendorClass = "PXEClient"
				if c.HTTPClient {
					a.VendorClass = "HTTPClient"
				}
			}
			return a, true
		}
	}
	return BootAnswer{}, false
}

func normMAC(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "-", ":"))
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
