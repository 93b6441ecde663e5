package dhcpsrv

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// bootpFixed is the size of the fixed BOOTP header plus the magic cookie.
const bootpFixed = 236 + 4

var errShortPacket = errors.New("malformed DHCP packet: shorter than the BOOTP header")

// decode is dhcpv4.FromBytes for the receive path: the same message (field
// for field, the same nil and empty values, an error for every packet
// FromBytes refuses), built from one private copy of b instead of one
// allocation per address, MAC and option. The addresses, the MAC and
// the value of every option that appears once are slices of that copy, so
// the message must be treated as read-only, as the server does with
// requests. FuzzDecodeMatchesCodec holds it to FromBytes.
func decode(b []byte) (*dhcpv4.DHCPv4, error) {
	if len(b) < bootpFixed {
		return nil, errShortPacket
	}
	if [4]byte(b[236:240]) != [4]byte{99, 130, 83, 99} {
		return nil, fmt.Errorf("malformed DHCP packet: got magic cookie %v, want [99 130 83 99]", b[236:240])
	}
	// One allocation for the message, one for its bytes, one or two for
	// the option map.
	raw := append([]byte(nil), b...)
	p := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeType(raw[0]),
		HWType:        iana.HWType(raw[1]),
		HopCount:      raw[3],
		TransactionID: dhcpv4.TransactionID(raw[4:8]),
		NumSeconds:    uint16(raw[8])<<8 | uint16(raw[9]),
		Flags:         uint16(raw[10])<<8 | uint16(raw[11]),
		ClientIPAddr:  net.IP(raw[12:16:16]),
		YourIPAddr:    net.IP(raw[16:20:20]),
		ServerIPAddr:  net.IP(raw[20:24:24]),
		GatewayIPAddr: net.IP(raw[24:28:28]),
	}
	hlen := min(int(raw[2]), 16)
	p.ClientHWAddr = net.HardwareAddr(raw[28 : 28+hlen : 28+hlen])
	p.ServerHostName = cString(raw[44:108])
	p.BootFileName = cString(raw[108:236])

	opts := raw[bootpFixed:]
	// Count first, so that the map is allocated once at its final size.
	n := 0
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == 0 {
			i++
			continue
		}
		if code == 255 || i+1 >= len(opts) {
			break
		}
		n++
		i += 2 + int(opts[i+1])
	}
	p.Options = make(dhcpv4.Options, n)
	end := false
	for i := 0; i < len(opts); {
		code := opts[i]
		i++
		if code == 0 {
			continue
		}
		if code == 255 {
			end = true
			break
		}
		if i >= len(opts) {
			// A code without its length byte.
			return nil, io.ErrUnexpectedEOF
		}
		l := int(opts[i])
		i++
		if i+l > len(opts) {
			return nil, fmt.Errorf("error collecting options: option %d: %w", code, io.ErrUnexpectedEOF)
		}
		v := opts[i : i+l : i+l]
		i += l
		if prev, ok := p.Options[code]; ok {
			// RFC 3396: repeated options are concatenated. prev has no
			// spare capacity when it is a slice of raw, so append copies.
			p.Options[code] = append(prev, v...)
			continue
		}
		if l == 0 {
			v = nil // as FromBytes stores an empty option
		}
		p.Options[code] = v
	}
	if !end && len(opts) > 0 {
		// FromBytes accepts a packet that ends right after the cookie.
		return nil, io.ErrUnexpectedEOF
	}
	return p, nil
}

// cString is the text of a NUL-terminated fixed-size BOOTP field.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
