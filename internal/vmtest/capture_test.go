package vmtest

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frame builds an Ethernet frame with an IPv4/UDP datagram from the given
// MAC and addresses.
func frame(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 14+20+8+len(payload))
	copy(b[6:12], []byte{0x52, 0x54, 0, 0xe2, 0xe0, 0x50})
	binary.BigEndian.PutUint16(b[12:14], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(20+8+len(payload)))
	ip[9] = 17
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:2], sport)
	binary.BigEndian.PutUint16(udp[2:4], dport)
	binary.BigEndian.PutUint16(udp[4:6], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return b
}

func dhcpPayload(opts ...byte) []byte {
	p := make([]byte, 240)
	p[0] = 1 // BOOTREQUEST
	binary.BigEndian.PutUint32(p[236:240], 0x63825363)
	return append(p, opts...)
}

func TestParseFrame(t *testing.T) {
	zero, bcast := netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255")
	tests := []struct {
		name     string
		frame    []byte
		ok       bool
		dhcpType uint8
	}{
		{"discover", frame(zero, bcast, 68, 67, dhcpPayload(53, 1, 1, 255)), true, 1},
		{"request after pad", frame(zero, bcast, 68, 67, dhcpPayload(0, 0, 12, 1, 'x', 53, 1, 3, 255)), true, 3},
		{"no message type", frame(zero, bcast, 68, 67, dhcpPayload(12, 1, 'x', 255)), true, 0},
		{"option runs past the end", frame(zero, bcast, 68, 67, dhcpPayload(12, 200, 'x')), true, 0},
		{"reply, not request", frame(zero, bcast, 67, 68, dhcpPayload(53, 1, 2, 255)), true, 0},
		{"dns", frame(netip.MustParseAddr("10.77.0.50"), netip.MustParseAddr("10.77.0.1"), 40000, 53, []byte{1, 2}), true, 0},
		{"short", []byte{1, 2, 3}, false, 0},
		{"not IPv4", append(make([]byte, 12), 0x86, 0xdd, 0x60), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := parseFrame(tt.frame)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, "52:54:00:e2:e0:50", p.SrcMAC.String())
			assert.Equal(t, uint8(17), p.Proto)
			assert.Equal(t, tt.dhcpType, p.DHCPType())
		})
	}
}

// FuzzParseFrame: frames come from the guest; no input may panic or keep
// more than maxPayload bytes.
func FuzzParseFrame(f *testing.F) {
	f.Add(frame(netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255"), 68, 67, dhcpPayload(53, 1, 1, 255)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := parseFrame(b)
		if !ok {
			return
		}
		if len(p.Payload) > maxPayload {
			t.Fatalf("payload of %d bytes kept", len(p.Payload))
		}
		_ = p.DHCPType()
	})
}

func TestUSKey(t *testing.T) {
	for r, want := range map[rune][]string{
		'a': {"a"}, 'Z': {"shift", "z"}, '7': {"7"}, '$': {"shift", "4"},
		'>': {"shift", "dot"}, '/': {"slash"}, '\n': {"ret"}, ' ': {"spc"},
	} {
		got, ok := usKey(r)
		require.True(t, ok, "%q", r)
		assert.Equal(t, want, got, "%q", r)
	}
	_, ok := usKey('é')
	assert.False(t, ok)
}
