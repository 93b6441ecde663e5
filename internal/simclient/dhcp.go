package simclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"
)

// DHCP is one client-side DHCP socket shared by any number of simulated
// machines, as the machines of a rack share one segment: replies are handed
// to the exchange waiting for their transaction ID. Create it with
// ListenDHCP or NewDHCP; safe for concurrent use.
type DHCP struct {
	conn    *net.UDPConn
	dst     *net.UDPAddr
	mu      sync.Mutex
	waiting map[uint32]chan *dhcpv4.DHCPv4
	done    chan struct{}
}

// ListenDHCP opens the client port 68 on iface (SO_BINDTODEVICE, so that the
// limited broadcast leaves by that interface even without a default route)
// and sends to the broadcast address's port 67. It needs CAP_NET_RAW and
// CAP_NET_BIND_SERVICE, in practice root in a network namespace.
func ListenDHCP(ctx context.Context, iface string) (*DHCP, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, o := range [][2]int{{unix.SO_BROADCAST, 1}, {unix.SO_REUSEADDR, 1}, {unix.SO_RCVBUF, 4 << 20}} {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], o[1]); serr != nil {
					return
				}
			}
			serr = unix.BindToDevice(int(fd), iface)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", "0.0.0.0:68")
	if err != nil {
		return nil, err
	}
	return NewDHCP(pc.(*net.UDPConn), netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 67)), nil
}

// NewDHCP uses conn, which it owns from now on (Close closes it), and sends
// every request to server: a test's server on loopback, say, or a relay's
// unicast destination.
func NewDHCP(conn *net.UDPConn, server netip.AddrPort) *DHCP {
	d := &DHCP{conn: conn, dst: net.UDPAddrFromAddrPort(server), waiting: map[uint32]chan *dhcpv4.DHCPv4{}, done: make(chan struct{})}
	go d.read()
	return d
}

func (d *DHCP) read() {
	defer close(d.done)
	buf := make([]byte, 4096)
	for {
		n, _, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		d.mu.Lock()
		ch := d.waiting[binary.BigEndian.Uint32(m.TransactionID[:])]
		d.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	}
}

// Close closes the socket and waits for its reader to stop.
func (d *DHCP) Close() error {
	err := d.conn.Close()
	<-d.done
	return err
}

// edk2Schedule is how long EDK2 waits for a reply before sending again, and
// how often.
func edk2Schedule() []time.Duration {
	return []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}
}

// Exchange sends req until a reply of type want for the same client
// hardware address arrives, waiting after each send the next duration of
// schedule (nil: EDK2's 4, 8, 16 and 32 seconds); a NAK ends it with an error. rx and tx, when
// set, count the bytes sent and those of the replies for this client.
func (d *DHCP) Exchange(ctx context.Context, req *dhcpv4.DHCPv4, want dhcpv4.MessageType, schedule []time.Duration, rx, tx *atomic.Int64) (*dhcpv4.DHCPv4, error) {
	if schedule == nil {
		schedule = edk2Schedule()
	}
	xid := binary.BigEndian.Uint32(req.TransactionID[:])
	ch := make(chan *dhcpv4.DHCPv4, 8)
	d.mu.Lock()
	d.waiting[xid] = ch
	d.mu.Unlock()
	defer func() { d.mu.Lock(); delete(d.waiting, xid); d.mu.Unlock() }()
	b := req.ToBytes()
	for _, wait := range schedule {
		if _, err := d.conn.WriteToUDP(b, d.dst); err != nil {
			return nil, err
		}
		if tx != nil {
			tx.Add(int64(len(b)))
		}
		t := time.NewTimer(wait)
	await:
		for {
			select {
			case m := <-ch:
				if !bytes.Equal(m.ClientHWAddr, req.ClientHWAddr) {
					continue
				}
				if rx != nil {
					rx.Add(int64(len(m.ToBytes())))
				}
				if m.MessageType() == dhcpv4.MessageTypeNak {
					t.Stop()
					return nil, fmt.Errorf("NAK: %s", m.Message())
				}
				if m.MessageType() == want {
					t.Stop()
					return m, nil
				}
			case <-t.C:
				break await
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
	}
	return nil, fmt.Errorf("no %s after %d tries", want, len(schedule))
}

// UEFIRequest is the message a UEFI x64 PXE client (EDK2) broadcasts:
// vendor class PXEClient:Arch:00007, client architecture 7, its UNDI
// version, a maximum message size of 1472, a client GUID derived from mac,
// the broadcast flag (its stack takes no unicast before it has an
// address), and no relay agent. xid is the transaction ID.
func UEFIRequest(mac net.HardwareAddr, xid uint32, typ dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet, ClientHWAddr: mac,
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero,
		GatewayIPAddr: net.IPv4zero, Options: dhcpv4.Options{}}
	binary.BigEndian.PutUint32(m.TransactionID[:], xid)
	m.SetBroadcast()
	m.Options.Update(dhcpv4.OptMessageType(typ))
	m.Options[55] = []byte{1, 3, 6, 15, 51, 54, 66, 67}
	m.Options[57] = []byte{0x05, 0xc0} // 1472, as EDK2 sends
	m.Options[60] = []byte("PXEClient:Arch:00007:UNDI:003016")
	m.Options[93] = []byte{0, 7}
	m.Options[94] = []byte{1, 3, 16}
	guid := append([]byte{0}, make([]byte, 16)...)
	copy(guid[11:], mac)
	m.Options[97] = guid
	return m
}

// Lease is what a UEFI client learned from its DHCP exchange.
type Lease struct {
	// IP is the address the ACK gave.
	IP netip.Addr
	// NextServer is the ACK's siaddr (the TFTP server); invalid when zero.
	NextServer netip.Addr
	// BootFile is the boot file name (option 67, else the file field).
	BootFile string
	// ACK is the reply itself.
	ACK *dhcpv4.DHCPv4
}

// DORA leases an address as a UEFI PXE client does (UEFIRequest's DISCOVER,
// then a REQUEST for the OFFER's address from its server) on EDK2's
// schedule. rx and tx are as for Exchange. An ACK without an address is an
// error; one without a boot file is not (a proxyDHCP network).
func (d *DHCP) DORA(ctx context.Context, mac net.HardwareAddr, xid uint32, rx, tx *atomic.Int64) (Lease, error) {
	offer, err := d.Exchange(ctx, UEFIRequest(mac, xid, dhcpv4.MessageTypeDiscover), dhcpv4.MessageTypeOffer, nil, rx, tx)
	if err != nil {
		return Lease{}, fmt.Errorf("DISCOVER: %w", err)
	}
	req := UEFIRequest(mac, xid, dhcpv4.MessageTypeRequest)
	req.Options.Update(dhcpv4.OptServerIdentifier(offer.ServerIdentifier()))
	req.Options.Update(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))
	ack, err := d.Exchange(ctx, req, dhcpv4.MessageTypeAck, nil, rx, tx)
	if err != nil {
		return Lease{}, fmt.Errorf("REQUEST: %w", err)
	}
	l := Lease{ACK: ack}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return Lease{}, errors.New("ACK without an address")
	}
	l.IP = ip
	if next, ok := netip.AddrFromSlice(ack.ServerIPAddr.To4()); ok && !next.IsUnspecified() {
		l.NextServer = next
	}
	l.BootFile = ack.BootFileNameOption()
	if l.BootFile == "" {
		l.BootFile = strings.TrimRight(ack.BootFileName, "\x00")
	}
	return l, nil
}
