package dhcpsrv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Arch is a client system architecture as sent in DHCP option 93 (RFC 4578,
// IANA "Processor Architecture Types"). It is a plain number so that values
// the IANA table gained after a library was written (LoongArch) still work.
type Arch uint16

// Architecture codes met in practice. Firmware sending 9 (EFI byte code) is
// almost always x86-64 UEFI, so the default boot table treats 7 and 9 alike.
const (
	ArchBIOS           Arch = 0  // legacy x86 PC BIOS
	ArchEFIIA32        Arch = 6  // 32-bit x86 UEFI
	ArchEFIX64         Arch = 7  // x86-64 UEFI
	ArchEFIBC          Arch = 9  // "EFI byte code"; x86-64 UEFI in practice
	ArchEFIARM32       Arch = 10 // 32-bit ARM UEFI
	ArchEFIARM64       Arch = 11 // AArch64 UEFI
	ArchEFIIA32HTTP    Arch = 15 // 32-bit x86 UEFI HTTP boot
	ArchEFIX64HTTP     Arch = 16 // x86-64 UEFI HTTP boot
	ArchEFIARM32HTTP   Arch = 18 // 32-bit ARM UEFI HTTP boot
	ArchEFIARM64HTTP   Arch = 19 // AArch64 UEFI HTTP boot
	ArchEFIRISCV64     Arch = 27 // RISC-V 64 UEFI
	ArchEFIRISCV64HTTP Arch = 28 // RISC-V 64 UEFI HTTP boot
	ArchEFILoong32     Arch = 37 // LoongArch32 UEFI
	ArchEFILoong64     Arch = 38 // LoongArch64 UEFI
	ArchEFILoong32HTTP Arch = 39 // LoongArch32 UEFI HTTP boot
	ArchEFILoong64HTTP Arch = 40 // LoongArch64 UEFI HTTP boot
)

// String names the architecture; unknown codes print as "arch-N" so logs
// stay useful for codes newer than this table.
func (a Arch) String() string {
	switch a {
	case ArchEFILoong32:
		return "EFI LoongArch32"
	case ArchEFILoong64:
		return "EFI LoongArch64"
	case ArchEFILoong32HTTP:
		return "EFI LoongArch32 HTTP"
	case ArchEFILoong64HTTP:
		return "EFI LoongArch64 HTTP"
	}
	if s := iana.Arch(a).String(); s != "" && !strings.HasPrefix(s, "unknown") {
		return s
	}
	return "arch-" + strconv.Itoa(int(a))
}

// IsHTTP reports whether the code is one of the UEFI "boot from HTTP"
// variants, whose boot file must be an absolute URL.
func (a Arch) IsHTTP() bool {
	switch a {
	case ArchEFIIA32HTTP, ArchEFIX64HTTP, 17, ArchEFIARM32HTTP, ArchEFIARM64HTTP, 20, 23, 24, 26, ArchEFIRISCV64HTTP, 30,
		ArchEFILoong32HTTP, ArchEFILoong64HTTP:
		return true
	}
	return false
}

// Relay describes the relay agent a request came through (RFC 2131 giaddr and
// RFC 3046 option 82). Replies go back to the relay, never to the client.
type Relay struct {
	GatewayIP netip.Addr // giaddr
	CircuitID []byte     // option 82 sub-option 1, nil if absent
	RemoteID  []byte     // option 82 sub-option 2, nil if absent
}

// Client is what the server knows about the sender of one request: the facts
// every decision (boot file, lease, logging) is made from. It is built by
// Classify and holds no reference to the packet.
type Client struct {
	MAC         net.HardwareAddr
	Type        dhcpv4.MessageType
	Arch        Arch // ArchBIOS when the client sent none (see ArchSent)
	ArchSent    bool // option 93 or an "Arch:" field in option 60 was present
	GUID        string
	VendorClass string   // option 60 verbatim
	UserClasses []string // option 77, bare or RFC 3004 encoded
	PXE         bool     // option 60 begins with "PXEClient"
	HTTPClient  bool     // option 60 begins with "HTTPClient"
	IPXE        bool     // option 77 "iPXE" or option 175 present
	UNDI        string   // "003016" from option 60, or major.minor of option 94
	Hostname    string   // option 12
	ClientIP    netip.Addr
	RequestedIP netip.Addr // option 50
	ServerID    netip.Addr // option 54
	MaxMessage  int        // option 57, 0 when absent or invalid
	Relay       *Relay     // nil unless giaddr is set
	// Proxy is set by the server in ModeProxy, where it hands out no
	// address: the client's address and the ACK its loader reads come from
	// another server. A request to the PXE port 4011 in ModeFull follows
	// this server's own ACK and is not Proxy. Classify leaves it false.
	Proxy bool
}

// Booting reports whether the client is a network-boot client (PXE ROM,
// UEFI HTTP boot or iPXE), the only kind a proxy server answers.
func (c Client) Booting() bool { return c.PXE || c.HTTPClient || c.IPXE }

// ErrMalformed is wrapped by every classification error: the packet is not a
// usable DHCP client request and is dropped.
var ErrMalformed = errors.New("dhcpsrv: malformed request")

// DHCP option codes without a typed constant in the codec.
const (
	optBootFile    = 67
	optTFTPServer  = 66
	optPXEVendor   = 43
	optClientGUID  = 97
	optClientNDI   = 94
	optEtherboot   = 175
	optUserClass   = 77
	optVendorClass = 60
	optMaxMsgSize  = 57
)

// Classify extracts the Client from a decoded request. It tolerates what real
// firmware omits (option 93, option 97) and rejects only packets no reply can
// be built for: replies, non-Ethernet hardware, a missing message type.
func Classify(m *dhcpv4.DHCPv4) (Client, error) {
	var c Client
	if m == nil {
		return c, fmt.Errorf("%w: nil packet", ErrMalformed)
	}
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return c, fmt.Errorf("%w: op %d is not BOOTREQUEST", ErrMalformed, m.OpCode)
	}
	if m.HWType != iana.HWTypeEthernet || len(m.ClientHWAddr) != 6 {
		return c, fmt.Errorf("%w: hardware type %d length %d, want Ethernet/6", ErrMalformed, m.HWType, len(m.ClientHWAddr))
	}
	if v := m.Options.Get(dhcpv4.OptionDHCPMessageType); len(v) != 1 || v[0] < 1 || v[0] > 18 {
		return c, fmt.Errorf("%w: missing or invalid option 53", ErrMalformed)
	}
	c.Type = messageType(m)
	c.MAC = append(net.HardwareAddr(nil), m.ClientHWAddr...)

	c.VendorClass = string(m.Options[optVendorClass])
	c.PXE = strings.HasPrefix(c.VendorClass, "PXEClient")
	c.HTTPClient = strings.HasPrefix(c.VendorClass, "HTTPClient")
	vcArch, vcArchOK, undi := parseVendorClass(c.VendorClass)
	c.UNDI = undi

	if v := m.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(v) >= 2 {
		c.Arch, c.ArchSent = Arch(uint16(v[0])<<8|uint16(v[1])), true
	} else if vcArchOK {
		c.Arch, c.ArchSent = vcArch, true
	}
	if c.UNDI == "" {
		if v := m.Options[optClientNDI]; len(v) == 3 && v[0] == 1 {
			c.UNDI = fmt.Sprintf("%03d%03d", v[1], v[2])
		}
	}

	if v := m.Options[optClientGUID]; len(v) == 17 && v[0] == 0 {
		c.GUID = formatSMBIOSGUID(v[1:])
	}
	c.UserClasses = parseUserClass(m.Options[optUserClass])
	for _, u := range c.UserClasses {
		if u == "iPXE" {
			c.IPXE = true
		}
	}
	if hasKey(m.Options, optEtherboot) {
		c.IPXE = true
	}
	c.Hostname = string(m.Options.Get(dhcpv4.OptionHostName))
	c.ClientIP = addrOf(m.ClientIPAddr)
	c.RequestedIP = addrOf(net.IP(m.Options.Get(dhcpv4.OptionRequestedIPAddress)))
	c.ServerID = addrOf(net.IP(m.Options.Get(dhcpv4.OptionServerIdentifier)))
	if v := m.Options[optMaxMsgSize]; len(v) == 2 {
		if n := int(v[0])<<8 | int(v[1]); n >= 576 {
			c.MaxMessage = n
		}
	}
	if gw := addrOf(m.GatewayIPAddr); gw.IsValid() {
		c.Relay = &Relay{GatewayIP: gw}
		if ri := m.RelayAgentInfo(); ri != nil {
			c.Relay.CircuitID = ri.Get(dhcpv4.GenericOptionCode(1))
			c.Relay.RemoteID = ri.Get(dhcpv4.GenericOptionCode(2))
		}
	}
	return c, nil
}

// parseVendorClass reads "PXEClient:Arch:00007:UNDI:003016" (PXE 2.1 spec
// section 2.2.5). Fields are decimal; anything after the prefix may be absent
// or truncated, so every field is optional.
func parseVendorClass(s string) (arch Arch, ok bool, undi string) {
	// Every pair of adjacent fields after the first ("PXEClient") is a
	// candidate key and value; walked without splitting, which would
	// allocate on every request.
	var prev string
	for i, rest := 0, s; ; i++ {
		f, r, more := strings.Cut(rest, ":")
		if i >= 2 {
			switch prev {
			case "Arch":
				if n, err := strconv.ParseUint(f, 10, 16); err == nil {
					arch, ok = Arch(n), true
				}
			case "UNDI":
				if len(f) == 6 && isDigits(f) {
					undi = f
				}
			}
		}
		if !more {
			return arch, ok, undi
		}
		prev, rest = f, r
	}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// parseUserClass accepts both encodings seen in the field: RFC 3004
// length-prefixed strings, and the bare bytes iPXE sends ("iPXE"). The
// length-prefixed reading is used only when it consumes the value exactly
// and yields printable text, which avoids the codec's ambiguity with bare
// values whose first byte happens to look like a length.
func parseUserClass(v []byte) []string {
	if len(v) == 0 {
		return nil
	}
	var out []string
	rest := v
	for len(rest) > 0 {
		n := int(rest[0])
		if n == 0 || n+1 > len(rest) || !printable(rest[1:1+n]) {
			out = nil
			break
		}
		out = append(out, string(rest[1:1+n]))
		rest = rest[1+n:]
	}
	if out != nil && printable(v[:1]) && printable(v) {
		// Both readings are plausible; a bare printable value wins because
		// RFC 3004 lengths are control characters for short strings.
		out = nil
	}
	if out == nil {
		out = []string{string(bytes.TrimRight(v, "\x00"))}
	}
	return out
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// formatSMBIOSGUID prints a 16-byte option-97 GUID the way dmidecode and
// BMCs show the SMBIOS UUID: firmware sends the first three fields
// little-endian.
func formatSMBIOSGUID(b []byte) string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
}

// addrOf converts a codec IP to netip, returning the zero Addr for nil and
// 0.0.0.0 so that IsValid means "set".
func addrOf(ip net.IP) netip.Addr {
	ip4 := ip.To4()
	if ip4 == nil {
		return netip.Addr{}
	}
	a := netip.AddrFrom4([4]byte(ip4))
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func hasKey(o dhcpv4.Options, code uint8) bool { _, ok := o[code]; return ok }

// messageType is m.MessageType() without the codec's decoding buffer (an
// allocation per call on the receive path): option 53 must be exactly one
// byte, else MessageTypeNone.
func messageType(m *dhcpv4.DHCPv4) dhcpv4.MessageType {
	if v := m.Options[uint8(dhcpv4.OptionDHCPMessageType)]; len(v) == 1 {
		return dhcpv4.MessageType(v[0])
	}
	return dhcpv4.MessageTypeNone
}
