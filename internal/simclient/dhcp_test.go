package simclient

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeServer answers DISCOVER with an OFFER and REQUEST with an ACK (or a
// NAK for MACs ending in 0xff) on loopback, the address being .100 plus
// the MAC's last byte. It ignores the first packet of each transaction
// when lossy, so that the client must resend.
func fakeServer(t *testing.T, lossy bool) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	seen := map[[4]byte]bool{}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req, err := dhcpv4.FromBytes(buf[:n])
			if err != nil {
				continue
			}
			if lossy && !seen[req.TransactionID] {
				seen[req.TransactionID] = true
				continue
			}
			typ := dhcpv4.MessageTypeOffer
			if req.MessageType() == dhcpv4.MessageTypeRequest {
				typ = dhcpv4.MessageTypeAck
				if req.ClientHWAddr[5] == 0xff {
					typ = dhcpv4.MessageTypeNak
				}
			}
			rep, err := dhcpv4.NewReplyFromRequest(req,
				dhcpv4.WithMessageType(typ),
				dhcpv4.WithYourIP(net.IPv4(10, 0, 0, 100+req.ClientHWAddr[5]%100)),
				dhcpv4.WithServerIP(net.IPv4(10, 0, 0, 1)),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1))),
				dhcpv4.WithOption(dhcpv4.OptBootFileName("shimx64.efi")))
			if err != nil {
				continue
			}
			_, _ = conn.WriteToUDP(rep.ToBytes(), from)
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func newClient(t *testing.T, server netip.AddrPort) *DHCP {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	d := NewDHCP(conn, server)
	t.Cleanup(func() { d.Close() })
	return d
}

// TestDHCPDORA runs many simulated machines on one socket at once: each
// gets its own reply.
func TestDHCPDORA(t *testing.T) {
	d := newClient(t, fakeServer(t, false))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rx, tx atomic.Int64
	var wg sync.WaitGroup
	leases := make([]Lease, 20)
	errs := make([]error, len(leases))
	for i := range leases {
		wg.Go(func() {
			mac := net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}
			leases[i], errs[i] = d.DORA(ctx, mac, 0x1000+uint32(i), &rx, &tx)
		})
	}
	wg.Wait()
	for i, l := range leases {
		require.NoError(t, errs[i])
		assert.Equal(t, netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + i)}), l.IP)
		assert.Equal(t, netip.MustParseAddr("10.0.0.1"), l.NextServer)
		assert.Equal(t, "shimx64.efi", l.BootFile)
	}
	assert.Positive(t, rx.Load())
	assert.Positive(t, tx.Load())

	_, err := d.DORA(ctx, net.HardwareAddr{2, 0, 0, 0, 0, 0xff}, 0x2000, nil, nil)
	assert.ErrorContains(t, err, "NAK")
}

// TestDHCPExchangeResends: a lost request is sent again on the schedule,
// and a server that never answers ends the exchange after it.
func TestDHCPExchangeResends(t *testing.T) {
	d := newClient(t, fakeServer(t, true))
	ctx := context.Background()
	req := UEFIRequest(net.HardwareAddr{2, 0, 0, 0, 0, 1}, 7, dhcpv4.MessageTypeDiscover)
	m, err := d.Exchange(ctx, req, dhcpv4.MessageTypeOffer, []time.Duration{50 * time.Millisecond, 5 * time.Second}, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, dhcpv4.MessageTypeOffer, m.MessageType())

	mute, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer mute.Close()
	d2 := newClient(t, mute.LocalAddr().(*net.UDPAddr).AddrPort())
	_, err = d2.Exchange(ctx, req, dhcpv4.MessageTypeOffer, []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}, nil, nil)
	assert.ErrorContains(t, err, "after 2 tries")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = d2.Exchange(cctx, req, dhcpv4.MessageTypeOffer, nil, nil, nil)
	assert.ErrorIs(t, err, context.Canceled)
}

// UEFIRequest looks like EDK2's to a server's classifier.
func TestUEFIRequest(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	m := UEFIRequest(mac, 42, dhcpv4.MessageTypeRequest)
	assert.Equal(t, dhcpv4.MessageTypeRequest, m.MessageType())
	assert.Equal(t, "PXEClient:Arch:00007:UNDI:003016", m.ClassIdentifier())
	assert.True(t, m.IsBroadcast())
	assert.Equal(t, []byte{0, 7}, m.Options[93])
	assert.Equal(t, mac, net.HardwareAddr(m.Options[97][11:]))
}
