package bootmenu

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// macWord is the loaders' spelling of a MAC: ARP hardware type 01
// (Ethernet), then the bytes in lower-case hex, dash-separated.
func macWord(mac net.HardwareAddr) (string, error) {
	if len(mac) != 6 {
		return "", fmt.Errorf("%w: MAC %q is not a 6-byte Ethernet address", ErrInvalid, mac)
	}
	return "01-" + strings.ReplaceAll(mac.String(), ":", "-"), nil
}

// hexIPNames returns the upper-case hex spelling of ip and its prefixes,
// longest first ("0A4D008D", "0A4D008", ..., "0").
func hexIPNames(ip netip.Addr) []string {
	if !ip.IsValid() || !ip.Unmap().Is4() {
		return nil
	}
	a := ip.Unmap().As4()
	full := fmt.Sprintf("%02X%02X%02X%02X", a[0], a[1], a[2], a[3])
	out := make([]string, 0, len(full))
	for n := len(full); n > 0; n-- {
		out = append(out, full[:n])
	}
	return out
}

// MenuKind reports which generated menu a loader asks for by the name it
// requests (a TFTP or HTTP path below the boot server root): GRUB asks for
// grub.cfg, or a per-host grub.cfg-01-MAC or grub.cfg-HEXIP, in whatever
// directory its prefix names; pxelinux for pxelinux.cfg/NAME; iPXE for the
// boot.ipxe script the DHCP answer named. Any other name is false: a file
// to serve from a tree. ParseConfigName says which client a per-host name
// is for.
func MenuKind(name string) (Kind, bool) {
	base := path.Base(name)
	switch {
	case base == "grub.cfg" || strings.HasPrefix(base, "grub.cfg-"):
		return GRUB, true
	case path.Base(path.Dir(name)) == "pxelinux.cfg" && base != "pxelinux.cfg":
		return PXELinux, true
	case base == "boot.ipxe":
		return IPXE, true
	}
	return "", false
}

// GRUBConfigNames returns the names GRUB's network boot tries, in order,
// relative to its prefix directory (e.g. "/grub/"): grub.cfg-01-<mac>,
// grub.cfg-<hex IP> shortened one digit at a time, then grub.cfg. An
// invalid ip or a nil mac leaves those names out. Note that Debian's
// signed grubnetx64.efi asks only for grub.cfg; see GRUBPerHostSnippet.
func GRUBConfigNames(mac net.HardwareAddr, ip netip.Addr) []string {
	var out []string
	if w, err := macWord(mac); err == nil {
		out = append(out, "grub.cfg-"+w)
	}
	for _, h := range hexIPNames(ip) {
		out = append(out, "grub.cfg-"+h)
	}
	return append(out, "grub.cfg")
}

// PXELinuxConfigNames returns the names pxelinux tries, in order, relative
// to the directory of pxelinux.0: pxelinux.cfg/01-<mac>, the hex IP
// prefixes, then pxelinux.cfg/default. (pxelinux also tries the SMBIOS
// UUID first when the firmware gives one; it is left out here.)
func PXELinuxConfigNames(mac net.HardwareAddr, ip netip.Addr) []string {
	var out []string
	if w, err := macWord(mac); err == nil {
		out = append(out, "pxelinux.cfg/"+w)
	}
	for _, h := range hexIPNames(ip) {
		out = append(out, "pxelinux.cfg/"+h)
	}
	return append(out, "pxelinux.cfg/default")
}

// ConfigRequest is what a requested configuration file name says about the
// client asking for it.
type ConfigRequest struct {
	Kind Kind // GRUB or PXELinux
	// MAC is set for a per-MAC name (grub.cfg-01-..., pxelinux.cfg/01-...).
	MAC net.HardwareAddr
	// Prefix is set for a hex-IP name: "0A4D008D" is 10.77.0.141/32,
	// "0A4D008" is 10.77.0.128/28.
	Prefix netip.Prefix
	// Default is true for grub.cfg and pxelinux.cfg/default.
	Default bool
}

// Matches reports whether a client with this MAC and IP would get the
// requested file, so a TFTP handler can decide whether to render a
// per-host menu or answer "file not found" and let the loader move on.
func (r ConfigRequest) Matches(mac net.HardwareAddr, ip netip.Addr) bool {
	switch {
	case r.Default:
		return true
	case r.MAC != nil:
		return mac.String() == r.MAC.String()
	case r.Prefix.IsValid():
		return ip.IsValid() && r.Prefix.Contains(ip.Unmap())
	}
	return false
}

// ParseConfigName reads a name requested over TFTP ("/grub/grub.cfg-01-52-
// 54-00-e2-e0-01", "pxelinux.cfg/0A4D008D", ...) back into the client it
// was meant for. The directory part is ignored for GRUB (its prefix
// varies); pxelinux names must be in pxelinux.cfg/. A name that is neither
// wraps ErrInvalid.
func ParseConfigName(name string) (ConfigRequest, error) {
	clean := path.Clean("/" + name)
	dir, base := path.Split(clean)
	var r ConfigRequest
	var rest string
	switch {
	case base == "grub.cfg":
		return ConfigRequest{Kind: GRUB, Default: true}, nil
	case strings.HasPrefix(base, "grub.cfg-"):
		r.Kind, rest = GRUB, strings.TrimPrefix(base, "grub.cfg-")
	case path.Base(dir) == "pxelinux.cfg":
		if base == "default" {
			return ConfigRequest{Kind: PXELinux, Default: true}, nil
		}
		r.Kind, rest = PXELinux, base
	default:
		return ConfigRequest{}, fmt.Errorf("%w: %q is not a GRUB or pxelinux configuration name", ErrInvalid, name)
	}
	if strings.HasPrefix(rest, "01-") && len(rest) == len("01-aa-bb-cc-dd-ee-ff") {
		mac, err := net.ParseMAC(rest[3:])
		if err != nil {
			return ConfigRequest{}, fmt.Errorf("%w: %q: bad MAC: %v", ErrInvalid, name, err)
		}
		r.MAC = mac
		return r, nil
	}
	if len(rest) >= 1 && len(rest) <= 8 {
		v, err := strconv.ParseUint(rest+strings.Repeat("0", 8-len(rest)), 16, 32)
		if err == nil && strings.ToUpper(rest) == rest {
			ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			r.Prefix = netip.PrefixFrom(ip, 4*len(rest))
			return r, nil
		}
	}
	return ConfigRequest{}, fmt.Errorf("%w: %q names neither a MAC (01-aa-bb-cc-dd-ee-ff) nor an upper-case hex IP prefix", ErrInvalid, name)
}

// GRUBPerHostSnippet returns grub.cfg lines that hand over to a per-MAC
// file (dir/grub.cfg-01-aa-bb-cc-dd-ee-ff) when the server has one; when
// it has none, GRUB prints "file not found" and reads on. Debian's signed
// grubnetx64.efi reads only $prefix/grub.cfg and never searches per-host
// names itself; put this snippet first in that grub.cfg (before the
// generic menu) to get per-host menus anyway. dir is a GRUB path such as
// "$prefix" (the default when empty) or "/grub"; it is written inside
// double quotes so that $prefix expands.
func GRUBPerHostSnippet(dir string) (string, error) {
	if dir == "" {
		dir = "$prefix"
	}
	if dir != "$prefix" {
		if err := checkPath("GRUB directory", dir); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	b.WriteString("# Per-host menu: GRUB spells $net_default_mac with colons, the file name uses dashes.\n")
	b.WriteString("if regexp")
	for i := 1; i <= grubBootIFVars; i++ {
		fmt.Fprintf(&b, " --set=%d:host_mac_%d", i, i)
	}
	b.WriteString(" '^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})$' \"$net_default_mac\"; then\n")
	// No [ -f ] test first: GRUB answers it by listing the directory, which
	// TFTP cannot do, so it is always false. A missing file makes
	// configfile print "file not found" and the script goes on.
	fmt.Fprintf(&b, "\tconfigfile \"%s/grub.cfg-01-${host_mac_1}-${host_mac_2}-${host_mac_3}-${host_mac_4}-${host_mac_5}-${host_mac_6}\"\n", dir)
	b.WriteString("fi\n")
	return b.String(), nil
}
