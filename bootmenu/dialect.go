package bootmenu

import (
	"fmt"

	"github.com/pxekit/pxekit/internal/osid"
)

// GRUBDialect describes what one GRUB build accepts. A grub.cfg is read by
// the GRUB that shim loaded, which (under Secure Boot) comes from the same
// vendor as the kernel; so the dialect follows where the loader came from,
// not what is being installed.
type GRUBDialect struct {
	// Name is a label written into the generated file's header.
	Name string
	// LinuxEFI selects linuxefi/initrdefi instead of linux/initrd. Red
	// Hat's GRUB 2.02 (EL7, EL8) needs linuxefi to boot a kernel under
	// shim; upstream GRUB 2.06+ and Debian's/Ubuntu's builds handle shim in
	// plain linux, and some dropped linuxefi altogether.
	LinuxEFI bool
	// HTTP says the image contains the http module, so kernels can be
	// loaded from (http,host)/path.
	HTTP bool
	// HTTPPort says the device name may carry a port, (http,host:port), and
	// a bracketed IPv6 address. When false, an HTTP base on a port other
	// than 80 falls back to TFTP for this GRUB.
	HTTPPort bool
	// HTTPInsmod says the image lacks the http module but may load it at
	// boot (from $prefix/x86_64-efi/http.mod over TFTP), which Debian's
	// GRUB does only with Secure Boot off: under Secure Boot it refuses
	// to load any module. A menu for such a GRUB checks once whether an
	// (http,...) device can be opened, which loads the module, and then
	// loads kernels over HTTP, or over TFTP when it cannot, so one menu
	// serves both kinds of machine. The module must come from the same
	// GRUB build as the image (see LoaderGRUBHTTPMod); Loaders.Dialect
	// clears the flag when the loaders have none. Ignored when HTTP is
	// set.
	//
	// GRUB 2.06 opens its TCP connections from the same source ports in
	// every boot and boots a kernel without acknowledging the server's
	// last FIN. An HTTP server that keeps that connection in LAST_ACK
	// (any server closing gracefully) refuses the same machine's next
	// boot for up to two minutes: its initrd fails with "connection
	// timeout" and the kernel panics. isosrc.Listen resets such
	// connections instead; behind another web server, a reboot soon after
	// a boot over GRUB's HTTP can fail this way. On emulated firmware
	// (OVMF under QEMU TCG) this GRUB's HTTP was also no faster than its
	// TFTP (536-byte TCP segments). Clear the flag to keep kernels on TFTP.
	HTTPInsmod bool
}

// Known GRUB builds. See DialectFor for the per-OS table.
var (
	// GRUBDebian is Debian's (and Ubuntu's) signed network image
	// grubnetx64.efi: plain linux/initrd, and no http module built in —
	// Debian 12's 2.06-13+deb12u2 image contains tftp but not http. With
	// Secure Boot off it loads the module from $prefix (HTTPInsmod) and
	// then kernels over HTTP; with Secure Boot on, or without the module
	// on the server, kernels come over TFTP. Debian patches GRUB to take a
	// port in (http,host:port). It reads only $prefix/grub.cfg; see
	// GRUBPerHostSnippet.
	GRUBDebian = GRUBDialect{Name: "debian", HTTPPort: true, HTTPInsmod: true}
	// GRUBEL7 is the GRUB 2.02 of RHEL/CentOS 7 and its rebuilds.
	GRUBEL7 = GRUBDialect{Name: "el7", LinuxEFI: true}
	// GRUBEL8 is the GRUB 2.02 of RHEL 8 and its rebuilds: the ISO's own
	// grub.cfg uses linuxefi; it has the http module and Red Hat's
	// host:port parsing.
	GRUBEL8 = GRUBDialect{Name: "el8", LinuxEFI: true, HTTP: true, HTTPPort: true}
	// GRUBEL9 is the Fedora-derived GRUB 2.06 of RHEL 9 and its rebuilds
	// and of openEuler 22.03: plain linux/initrd (linuxefi survives only
	// as an alias there), http module, host:port parsing.
	GRUBEL9 = GRUBDialect{Name: "el9", HTTP: true, HTTPPort: true}
	// GRUBKylinUOS is the Fedora-derived GRUB 2.04 of Kylin V10 and UOS 20:
	// linuxefi is still its shim-aware command.
	GRUBKylinUOS = GRUBDialect{Name: "kylin-uos", LinuxEFI: true, HTTP: true, HTTPPort: true}
	// GRUBUpstream is a GRUB 2.06 built with grub-mkimage from upstream
	// sources with the http module: plain linux, no port in device names.
	GRUBUpstream = GRUBDialect{Name: "upstream", HTTP: true}
)

// DialectFor returns the dialect of the GRUB shipped on the installation
// media of osID, for when shim and GRUB are served from that OS's ISO.
//
//	EL7 (centos/rhel/anolis 7.9)        linuxefi  TFTP
//	EL8 (alma/rocky 8.5)                linuxefi  HTTP, host:port
//	EL9 (rocky 9.0), openEuler 22.03    linux     HTTP, host:port
//	Kylin V10, UOS 20 (GRUB 2.04)       linuxefi  HTTP, host:port
//	Ubuntu, Debian (signed net image)   linux     HTTP via module, host:port;
//	                                              TFTP under Secure Boot
func DialectFor(osID string) (GRUBDialect, error) {
	info, ok := osid.Lookup(osID)
	if !ok {
		return GRUBDialect{}, fmt.Errorf("%w: %q", ErrUnknownOS, osID)
	}
	switch {
	case info.Family != osid.Anaconda:
		return GRUBDebian, nil
	case info.Distro == "kylin" || info.Distro == "uos":
		return GRUBKylinUOS, nil
	case info.ELMajor == 7:
		return GRUBEL7, nil
	case info.ELMajor == 8:
		return GRUBEL8, nil
	default:
		return GRUBEL9, nil
	}
}
