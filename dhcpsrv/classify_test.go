package dhcpsrv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassifyRecorded(t *testing.T) {
	got := map[string]Client{}
	for _, rc := range recordedClients {
		m, err := dhcpv4.FromBytes(recordedPacket(t, rc))
		require.NoError(t, err, rc.name)
		c, err := Classify(m)
		require.NoError(t, err, rc.name)
		got[rc.name] = c
	}
	b, err := json.MarshalIndent(got, "", "  ")
	require.NoError(t, err)
	golden := filepath.Join("testdata", "classify.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, b, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(b))

	// The facts that drive decisions, stated explicitly.
	tests := []struct {
		name                   string
		arch                   Arch
		archSent, pxe, http, i bool
		guid                   string
	}{
		{"ovmf-pxe", ArchEFIX64, true, true, false, false, "8c4e2a10-3c55-4f1e-9a7b-0123456789ab"},
		{"ovmf-http", ArchEFIX64HTTP, true, false, true, false, "8c4e2a10-3c55-4f1e-9a7b-0123456789ab"},
		{"ipxe-efi", ArchEFIX64, true, true, false, true, "8c4e2a10-3c55-4f1e-9a7b-0123456789ab"},
		{"ipxe-bios", ArchBIOS, true, true, false, true, "8c4e2a10-3c55-4f1e-9a7b-0123456789ab"},
		{"d-i-udhcpc", ArchBIOS, false, false, false, false, ""},
		{"arm64-no-opt93", ArchEFIARM64, true, true, false, false, ""},
	}
	for _, tt := range tests {
		c := got[tt.name]
		assert.Equal(t, tt.arch, c.Arch, tt.name)
		assert.Equal(t, tt.archSent, c.ArchSent, tt.name)
		assert.Equal(t, tt.pxe, c.PXE, tt.name)
		assert.Equal(t, tt.http, c.HTTPClient, tt.name)
		assert.Equal(t, tt.i, c.IPXE, tt.name)
		assert.Equal(t, tt.guid, c.GUID, tt.name)
		assert.Equal(t, tt.pxe || tt.http || tt.i, c.Booting(), tt.name)
	}
	r := got["relayed-bios"].Relay
	require.NotNil(t, r)
	assert.Equal(t, "10.78.0.1", r.GatewayIP.String())
	assert.Equal(t, []byte("eth0/1"), r.CircuitID)
	assert.Equal(t, "d-i", got["d-i-udhcpc"].VendorClass)
}

func TestClassifyErrors(t *testing.T) {
	_, err := Classify(nil)
	assert.ErrorIs(t, err, ErrMalformed)

	m := buildDiscover(t, recordedClients[0])
	m.OpCode = dhcpv4.OpcodeBootReply
	_, err = Classify(m)
	assert.ErrorIs(t, err, ErrMalformed)

	m = buildDiscover(t, recordedClients[0])
	delete(m.Options, 53)
	_, err = Classify(m)
	assert.ErrorContains(t, err, "option 53")

	m = buildDiscover(t, recordedClients[0])
	m.ClientHWAddr = m.ClientHWAddr[:4]
	_, err = Classify(m)
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestParseUserClass(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"iPXE", []string{"iPXE"}},
		{"\x04iPXE", []string{"iPXE"}},
		{"\x04iPXE\x03abc", []string{"iPXE", "abc"}},
		{"\x03abc", []string{"abc"}},
		{"\x09ab", []string{"\x09ab"}},
		{"", nil},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, parseUserClass([]byte(tt.in)), "%q", tt.in)
	}
}

func TestParseVendorClass(t *testing.T) {
	tests := []struct {
		in   string
		arch Arch
		ok   bool
		undi string
	}{
		{"PXEClient:Arch:00007:UNDI:003016", 7, true, "003016"},
		{"PXEClient:Arch:00011:UNDI:003000", 11, true, "003000"},
		{"HTTPClient:Arch:00016", 16, true, ""},
		{"PXEClient", 0, false, ""},
		{"PXEClient:Arch:", 0, false, ""},
		{"PXEClient:Arch:x7:UNDI:1", 0, false, ""},
		{"PXEClient:Arch:00038:UNDI:003016", ArchEFILoong64, true, "003016"},
	}
	for _, tt := range tests {
		a, ok, undi := parseVendorClass(tt.in)
		assert.Equal(t, tt.arch, a, tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.undi, undi, tt.in)
	}
}

func FuzzClassify(f *testing.F) {
	for _, rc := range recordedClients {
		f.Add(buildDiscover(f, rc).ToBytes())
	}
	f.Add([]byte{1, 1, 6, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		c, err := Classify(m)
		if err != nil {
			return
		}
		_ = c.Arch.String()
		var tb BootTable
		_, _ = tb.Decide(c)
	})
}
