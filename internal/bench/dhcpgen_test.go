package main

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTemplatesPatched checks that a patched template is the request the
// codec builds for the same client.
func TestTemplatesPatched(t *testing.T) {
	for _, pxe := range []bool{false, true} {
		tm, err := newTemplates(pxe)
		require.NoError(t, err)
		mac := net.HardwareAddr{0x02, 7, 0, 1, 2, 3}
		b := append([]byte(nil), tm.request...)
		binary.BigEndian.PutUint32(b[4:8], 0x07020607)
		copy(b[28:34], mac)
		copy(b[tm.optReqIP:], []byte{10, 232, 1, 9})
		copy(b[tm.optSrv:], []byte{10, 232, 0, 1})
		m, err := dhcpv4.FromBytes(b)
		require.NoError(t, err)
		assert.Equal(t, dhcpv4.MessageTypeRequest, m.MessageType())
		assert.Equal(t, mac, m.ClientHWAddr)
		assert.Equal(t, dhcpv4.TransactionID{7, 2, 6, 7}, m.TransactionID)
		assert.Equal(t, "10.232.1.9", m.RequestedIPAddress().String())
		assert.Equal(t, "10.232.0.1", m.ServerIdentifier().String())
		assert.Equal(t, "10.232.0.2", m.GatewayIPAddr.String(), "relayed")
		assert.Equal(t, pxe, m.Options.Has(dhcpv4.OptionClientSystemArchitectureType))

		d, err := dhcpv4.FromBytes(tm.discover)
		require.NoError(t, err)
		assert.Equal(t, dhcpv4.MessageTypeDiscover, d.MessageType())
	}
}

func TestReplyFacts(t *testing.T) {
	m, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithReply(&dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest}),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}), dhcpv4.WithYourIP(net.IPv4(10, 232, 4, 5)),
		dhcpv4.WithServerIP(net.IPv4(10, 232, 0, 1)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 232, 0, 1))))
	require.NoError(t, err)
	xid, typ, yi, srv, ok := replyFacts(m.ToBytes())
	require.True(t, ok)
	assert.Equal(t, uint32(0x01020304), xid)
	assert.Equal(t, dhcpv4.MessageTypeOffer, typ)
	assert.Equal(t, [4]byte{10, 232, 4, 5}, yi)
	assert.Equal(t, [4]byte{10, 232, 0, 1}, srv)

	_, _, _, _, ok = replyFacts(m.ToBytes()[:239])
	assert.False(t, ok, "short")
	req, err := newTemplates(false)
	require.NoError(t, err)
	_, _, _, _, ok = replyFacts(req.discover)
	assert.False(t, ok, "a request is no reply")
}

// FuzzReplyFacts walks arbitrary bytes as the generator walks replies:
// never a panic, and a type only from an option 53 inside the packet.
func FuzzReplyFacts(f *testing.F) {
	tm, err := newTemplates(true)
	require.NoError(f, err)
	f.Add(tm.discover)
	f.Add(tm.request)
	f.Add(append(append([]byte{2}, tm.request[1:240]...), 53, 1, 2, 54, 4, 1, 2, 3, 4, 255))
	f.Add(append(append([]byte{2}, tm.request[1:240]...), 53, 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, typ, _, _, ok := replyFacts(b)
		if ok {
			i := optionOffset(b, 53)
			require.GreaterOrEqual(t, i, 242)
			require.Equal(t, byte(typ), b[i])
		}
		if e := optionsEnd(b); e >= 0 {
			require.Equal(t, byte(255), b[e])
		}
	})
}

// TestLoadGenLoopback runs the generator against the null responder on
// loopback: every client completes its DORA, and in DISCOVER-only mode
// its DISCOVER->OFFER.
func TestLoadGenLoopback(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	srv, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- serveNull(srv, lo) }()
	defer func() { srv.Close(); <-done }()
	dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()

	for _, discoverOnly := range []bool{false, true} {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r := loadGen(ctx, c, dst, discoverOnly, discoverOnly, 3)
		cancel()
		c.Close()
		assert.Zero(t, r.failed, "discoverOnly %v", discoverOnly)
		assert.Positive(t, r.perSec)
		assert.Positive(t, r.p50)
		assert.GreaterOrEqual(t, r.p99, r.p50)
	}
}
