package main

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/dhcpsrv"
)

// DHCP from made-up MACs (anyone on the segment can send it) costs a
// bounded step log, and never pushes out the fleet's own hosts.
func TestStepsBoundedForUnknownMACs(t *testing.T) {
	f, _ := newTestFleet(t, UnknownLocal, false)
	web := mustMAC(t, macWeb)
	f.DHCPEvent(dhcpsrv.Event{Type: dhcpsrv.EventAck, IP: netip.MustParseAddr("10.0.0.11"), Client: dhcpsrv.Client{MAC: web}})
	for i := range 3 * maxRecent {
		mac := net.HardwareAddr{0x52, 0x54, 0, 0x77, byte(i >> 8), byte(i)}
		f.DHCPEvent(dhcpsrv.Event{Type: dhcpsrv.EventOffer, IP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Client: dhcpsrv.Client{MAC: mac}})
	}
	all := f.steps.all()
	assert.Len(t, all, maxRecent+1, "the listed host and the most recent unknown MACs")
	require.Contains(t, all, macWeb)
	assert.Equal(t, StageDHCP, all[macWeb].Last().Stage)
	assert.Equal(t, "10.0.0.11", all[macWeb].IP.String(), "the ACK's address")
	n := 3*maxRecent - 1
	last := net.HardwareAddr{0x52, 0x54, 0, 0x77, byte(n >> 8), byte(n)}
	assert.Contains(t, all, last.String(), "the latest unknown MAC is kept")

	// A host's steps are its stages, not every request.
	for range 100 {
		f.DHCPEvent(dhcpsrv.Event{Type: dhcpsrv.EventAck, IP: netip.MustParseAddr("10.0.0.11"), Client: dhcpsrv.Client{MAC: web}})
	}
	assert.Len(t, f.steps.all()[macWeb].Steps, 1)
	// And DHCP tells which MAC is behind an address, for TFTP and HTTP.
	mac, ok := f.bindings.MAC(netip.MustParseAddr("10.0.0.11"))
	require.True(t, ok)
	assert.Equal(t, web, mac)
}
