package dhcpsrv

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// ICMPProbe returns a ProbeFunc that sends one ICMP echo request to the
// address and reports it in use if any echo reply from it arrives within
// timeout (default 500 ms). It needs root or CAP_NET_RAW. A probe only
// catches hosts that answer ping; it exists for the common case of a
// statically configured machine sitting inside the pool.
func ICMPProbe(timeout time.Duration) ProbeFunc {
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	return func(ctx context.Context, ip netip.Addr) (bool, error) {
		c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return false, fmt.Errorf("dhcpsrv: icmp probe: %w", err)
		}
		defer c.Close()
		deadline := time.Now().Add(timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.SetDeadline(deadline)
		id := uint16(os.Getpid())
		seq := uint16(time.Now().UnixNano())
		if _, err := c.WriteTo(echoRequest(id, seq), &net.IPAddr{IP: ip.AsSlice()}); err != nil {
			return false, fmt.Errorf("dhcpsrv: icmp probe: %w", err)
		}
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return false, nil // timeout: nobody answered
			}
			a, ok := from.(*net.IPAddr)
			if !ok || !a.IP.Equal(ip.AsSlice()) || n < 8 {
				continue
			}
			if buf[0] == 0 && binary.BigEndian.Uint16(buf[4:]) == id && binary.BigEndian.Uint16(buf[6:]) == seq {
				return true, nil
			}
		}
	}
}

func echoRequest(id, seq uint16) []byte {
	b := []byte{8, 0, 0, 0, 0, 0, 0, 0, 'p', 'x', 'e', 'k', 'i', 't'}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[2:], ^uint16(sum))
	return b
}
