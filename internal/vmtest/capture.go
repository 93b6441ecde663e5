package vmtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// maxCaptured bounds a [Capture]: an installer boot sends a few thousand
// IPv4 packets at most before it reaches its package mirror; a runaway VM
// must not grow the test's memory without bound.
const maxCaptured = 100_000

// maxPayload is how much of a UDP payload a [Packet] keeps: enough for a
// DHCP request's options or a DNS query's name.
const maxPayload = 1500

// Packet is one IPv4 packet a VM sent into the lab, as seen on the tap.
type Packet struct {
	// At is when the capture read it.
	At time.Time
	// SrcMAC is the Ethernet source address (the VM's NIC).
	SrcMAC net.HardwareAddr
	// Src and Dst are the IPv4 addresses.
	Src, Dst netip.Addr
	// Proto is the IP protocol number (6 TCP, 17 UDP, 1 ICMP).
	Proto uint8
	// SrcPort and DstPort are the TCP or UDP ports (0 for other protocols).
	SrcPort, DstPort uint16
	// TCPFlags are the flags byte of a TCP segment (0x02 SYN).
	TCPFlags uint8
	// Payload is the start of a UDP datagram's payload (at most 1500 bytes).
	Payload []byte
}

// DHCPType is the DHCP message type (option 53: 1 DISCOVER, 3 REQUEST, ...)
// of a BOOTREQUEST sent to the DHCP server port, or 0 for any other packet.
func (p Packet) DHCPType() uint8 {
	if p.Proto != 17 || p.DstPort != 67 || len(p.Payload) < 240 || p.Payload[0] != 1 {
		return 0
	}
	// The options start after the fixed BOOTP header and the magic cookie.
	if binary.BigEndian.Uint32(p.Payload[236:240]) != 0x63825363 {
		return 0
	}
	opts := p.Payload[240:]
	for len(opts) > 0 {
		code := opts[0]
		if code == 0 { // pad
			opts = opts[1:]
			continue
		}
		if code == 255 || len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return 0
		}
		if code == 53 && opts[1] == 1 {
			return opts[2]
		}
		opts = opts[2+int(opts[1]):]
	}
	return 0
}

// Capture records the IPv4 packets that arrive at the lab's tap from its VMs
// (not those the namespace sends to them), without tcpdump: a packet socket
// opened inside the namespace. Create it with [Lab.Capture].
type Capture struct {
	fd   int // immutable; closed by stop after the reader has exited
	quit atomic.Bool
	done chan struct{}
	mu   sync.Mutex
	pkts []Packet
	lost int
}

// Capture starts recording the packets VMs send on the lab's tap, until the
// test ends. Start it before [Lab.Boot] so that nothing is missed.
func (l *Lab) Capture(t testing.TB) *Capture {
	t.Helper()
	c, err := l.capture()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return c
}

func (l *Lab) capture() (*Capture, error) {
	proto := htons(unix.ETH_P_IP)
	fd := -1
	err := l.Do(func() error {
		ifi, err := net.InterfaceByName(l.iface)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			fd = -1
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vmtest: packet capture on %s: %w", l.iface, err)
	}
	// A receive timeout lets the reader notice stop without closing the
	// descriptor under a blocked read. Kernel timestamps give the arrival
	// time even when the reader lags behind a burst (a TFTP transfer's
	// acknowledgements), and a large buffer keeps such a burst whole.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vmtest: packet capture options: %w", err)
	}
	// Best effort: the kernel caps it at net.core.rmem_max without
	// CAP_NET_ADMIN, and the test runs as root anyway.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	c := &Capture{fd: fd, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read runs until stop; a blocked read returns at the receive timeout.
func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if c.quit.Load() {
			return
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return // broken: the packets so far stay readable
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // sent by the namespace, not by a VM
		}
		if p, ok := parseFrame(buf[:n]); ok {
			if at, ok := kernelTime(oob[:oobn]); ok {
				p.At = at
			}
			c.add(p)
		}
	}
}

func (c *Capture) add(p Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pkts) >= maxCaptured {
		c.lost++
		return
	}
	c.pkts = append(c.pkts, p)
}

// kernelTime returns the SO_TIMESTAMPNS time in a packet's control data.
func kernelTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS {
			continue
		}
		// struct timespec: two native longs.
		switch len(m.Data) {
		case 16:
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec), true
		case 8:
			sec := int64(int32(binary.NativeEndian.Uint32(m.Data[0:4])))
			nsec := int64(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
			return time.Unix(sec, nsec), true
		}
	}
	return time.Time{}, false
}

// dropped asks the kernel how many packets it dropped since the last call
// because the socket buffer was full.
func (c *Capture) dropped() int {
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0
	}
	return int(st.Drops)
}

// stop ends the capture; safe to call more than once.
func (c *Capture) stop() {
	if c.quit.Swap(true) {
		return
	}
	<-c.done
	c.mu.Lock() // Packets may be asking the socket for its drops
	defer c.mu.Unlock()
	unix.Close(c.fd)
}

// Packets returns a copy of the packets recorded so far, in arrival order,
// and how many were lost: dropped by the kernel while the reader lagged, or
// left out because the capture was full. A test that proves the absence of
// a packet must check that none was lost.
func (c *Capture) Packets() ([]Packet, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.quit.Load() {
		c.lost += c.dropped()
	}
	return append([]Packet(nil), c.pkts...), c.lost
}

// parseFrame decodes an Ethernet frame carrying IPv4 (the socket filters
// by EtherType). Frames come from the guest, so every length is checked.
func parseFrame(b []byte) (Packet, bool) {
	if len(b) < 14+20 || binary.BigEndian.Uint16(b[12:14]) != 0x0800 {
		return Packet{}, false
	}
	p := Packet{At: time.Now(), SrcMAC: net.HardwareAddr(append([]byte(nil), b[6:12]...))}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl {
		return Packet{}, false
	}
	if total := int(binary.BigEndian.Uint16(ip[2:4])); total >= ihl && total <= len(ip) {
		ip = ip[:total] // drop Ethernet padding
	}
	p.Proto = ip[9]
	p.Src = netip.AddrFrom4([4]byte(ip[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
	// Only the first fragment has the transport header.
	if binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return p, true
	}
	l4 := ip[ihl:]
	switch p.Proto {
	case 6:
		if len(l4) >= 14 {
			p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
			p.DstPort = binary.BigEndian.Uint16(l4[2:4])
			p.TCPFlags = l4[13]
		}
	case 17:
		if len(l4) >= 8 {
			p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
			p.DstPort = binary.BigEndian.Uint16(l4[2:4])
			payload := l4[8:]
			if len(payload) > maxPayload {
				payload = payload[:maxPayload]
			}
			p.Payload = append([]byte(nil), payload...)
		}
	}
	return p, true
}
