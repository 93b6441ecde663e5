package dhcpsrv

import (
	"encoding/binary"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files and recorded packets under testdata/")

// recordedClient describes a DISCOVER as real firmware sends it (measured
// with QEMU: OVMF, SeaBIOS + iPXE ROM, iPXE EFI, the Debian installer's
// udhcpc). The packets in testdata/packets are built from these facts.
type recordedClient struct {
	name      string
	mac       string
	vendor    string // option 60
	arch      int    // option 93, -1 absent
	ndi       []byte // option 94
	ipxe      bool   // options 77 (bare "iPXE") and 175
	clientID  bool   // option 61 = 01+MAC
	guid      bool   // option 97 = 00+UUID (SMBIOS byte order)
	broadcast bool
	giaddr    string
}

var recordedClients = []recordedClient{
	{name: "ovmf-pxe", mac: "52:54:00:12:34:56", vendor: "PXEClient:Arch:00007:UNDI:003000", arch: 7, ndi: []byte{1, 3, 0}, guid: true, broadcast: true},
	{name: "ovmf-http", mac: "52:54:00:12:34:57", vendor: "HTTPClient:Arch:00016:UNDI:003000", arch: 16, ndi: []byte{1, 3, 0}, guid: true, broadcast: true},
	{name: "ipxe-efi", mac: "52:54:00:12:34:58", vendor: "PXEClient:Arch:00007:UNDI:003010", arch: 7, ndi: []byte{1, 3, 10}, ipxe: true, clientID: true, guid: true},
	{name: "ipxe-bios", mac: "52:54:00:12:34:59", vendor: "PXEClient:Arch:00000:UNDI:002001", arch: 0, ndi: []byte{1, 2, 1}, ipxe: true, clientID: true, guid: true},
	{name: "d-i-udhcpc", mac: "52:54:00:12:34:5a", vendor: "d-i", arch: -1, clientID: true},
	{name: "arm64-no-opt93", mac: "52:54:00:12:34:5b", vendor: "PXEClient:Arch:00011:UNDI:003000", arch: -1, ndi: []byte{1, 3, 0}},
	{name: "relayed-bios", mac: "52:54:00:12:34:5c", vendor: "PXEClient:Arch:00000:UNDI:002001", arch: 0, ndi: []byte{1, 2, 1}, giaddr: "10.78.0.1"},
}

// testGUID is the SMBIOS UUID 8c4e2a10-3c55-4f1e-9a7b-0123456789ab as option
// 97 carries it (first three fields little-endian).
var testGUID = []byte{0x10, 0x2a, 0x4e, 0x8c, 0x55, 0x3c, 0x1e, 0x4f, 0x9a, 0x7b, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab}

func buildDiscover(t testing.TB, rc recordedClient) *dhcpv4.DHCPv4 {
	t.Helper()
	mac, err := net.ParseMAC(rc.mac)
	require.NoError(t, err)
	m := &dhcpv4.DHCPv4{
		OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet, ClientHWAddr: mac,
		TransactionID: dhcpv4.TransactionID{0x12, 0x34, 0x56, 0x78},
		ClientIPAddr:  net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero, GatewayIPAddr: net.IPv4zero,
		Options: dhcpv4.Options{},
	}
	if rc.broadcast {
		m.SetBroadcast()
	}
	if rc.giaddr != "" {
		m.GatewayIPAddr = net.ParseIP(rc.giaddr).To4()
		m.HopCount = 1
		m.Options.Update(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("eth0/1"))))
	}
	m.Options.Update(dhcpv4.OptMessageType(dhcpv4.MessageTypeDiscover))
	m.Options.Update(dhcpv4.OptMaxMessageSize(1472))
	m.Options[optVendorClass] = []byte(rc.vendor)
	if rc.arch >= 0 {
		m.Options[93] = binary.BigEndian.AppendUint16(nil, uint16(rc.arch))
	}
	if rc.ndi != nil {
		m.Options[optClientNDI] = rc.ndi
	}
	if rc.ipxe {
		m.Options[optUserClass] = []byte("iPXE")
		m.Options[optEtherboot] = []byte{0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e, 0x13, 0x01, 0x01, 0x18, 0x01, 0x01}
	}
	if rc.clientID {
		m.Options[61] = append([]byte{1}, mac...)
	}
	if rc.guid {
		m.Options[optClientGUID] = append([]byte{0}, testGUID...)
	}
	m.Options[55] = []byte{1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135, 175}
	return m
}

// recordedPacket returns the testdata bytes for a recorded client,
// regenerating them with -update.
func recordedPacket(t testing.TB, rc recordedClient) []byte {
	t.Helper()
	path := filepath.Join("testdata", "packets", rc.name+".bin")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, buildDiscover(t, rc).ToBytes(), 0o644))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run TestClassifyRecorded -update to create it")
	return b
}

func netipAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
