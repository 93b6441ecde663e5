package dhcpsrv

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBootTableDecide(t *testing.T) {
	srv := netip.MustParseAddr("10.77.0.1")
	withShim := fstest.MapFS{"shimx64.efi": {Data: []byte("x")}}
	tests := []struct {
		name   string
		table  BootTable
		client Client
		file   string
		vc     string
		err    error
	}{
		{"bios", BootTable{}, Client{PXE: true, Arch: ArchBIOS}, "pxelinux.0", "PXEClient", nil},
		{"bios-no-arch", BootTable{}, Client{PXE: true}, "pxelinux.0", "PXEClient", nil},
		{"efi-x64-no-shim", BootTable{}, Client{PXE: true, Arch: ArchEFIX64}, "grubx64.efi", "PXEClient", nil},
		{"efi-x64-shim", BootTable{Files: withShim}, Client{PXE: true, Arch: ArchEFIX64}, "shimx64.efi", "PXEClient", nil},
		{"efi-bc-as-x64", BootTable{Files: withShim}, Client{PXE: true, Arch: ArchEFIBC}, "shimx64.efi", "PXEClient", nil},
		{"efi-ia32", BootTable{}, Client{PXE: true, Arch: ArchEFIIA32}, "grubia32.efi", "PXEClient", nil},
		{"arm32", BootTable{}, Client{PXE: true, Arch: ArchEFIARM32}, "grubarm.efi", "PXEClient", nil},
		{"arm64", BootTable{}, Client{PXE: true, Arch: ArchEFIARM64}, "grubaa64.efi", "PXEClient", nil},
		{"loongarch64", BootTable{}, Client{PXE: true, Arch: ArchEFILoong64}, "grubloongarch64.efi", "PXEClient", nil},
		{"http-x64", BootTable{HTTPBase: "http://10.77.0.1:8080/"}, Client{HTTPClient: true, Arch: ArchEFIX64HTTP}, "http://10.77.0.1:8080/ipxe/snponly.efi", "HTTPClient", nil},
		{"http-x86", BootTable{HTTPBase: "http://h"}, Client{HTTPClient: true, Arch: ArchEFIIA32HTTP}, "http://h/grubia32.efi", "HTTPClient", nil},
		{"http-arm32", BootTable{HTTPBase: "http://h"}, Client{HTTPClient: true, Arch: ArchEFIARM32HTTP}, "http://h/grubarm.efi", "HTTPClient", nil},
		{"http-arm64", BootTable{HTTPBase: "http://h"}, Client{HTTPClient: true, Arch: ArchEFIARM64HTTP}, "http://h/grubaa64.efi", "HTTPClient", nil},
		{"http-loong64", BootTable{HTTPBase: "http://h"}, Client{HTTPClient: true, Arch: ArchEFILoong64HTTP}, "http://h/grubloongarch64.efi", "HTTPClient", nil},
		{"http-no-base", BootTable{}, Client{HTTPClient: true, Arch: ArchEFIX64HTTP}, "", "", ErrNoBootFile},
		{"http-absolute-override", BootTable{ByArch: map[Arch]string{ArchEFIX64HTTP: "https://x/y.efi"}}, Client{HTTPClient: true, Arch: ArchEFIX64HTTP}, "https://x/y.efi", "HTTPClient", nil},
		{"ipxe-script-http", BootTable{HTTPBase: "http://10.77.0.1:8080"}, Client{PXE: true, IPXE: true, Arch: ArchEFIX64}, "http://10.77.0.1:8080/boot.ipxe", "PXEClient", nil},
		{"ipxe-script-tftp", BootTable{}, Client{PXE: true, IPXE: true, Arch: ArchBIOS}, "boot.ipxe", "PXEClient", nil},
		{"ipxe-custom-script", BootTable{HTTPBase: "http://h", IPXEScript: "/menu/x.ipxe"}, Client{IPXE: true}, "http://h/menu/x.ipxe", "PXEClient", nil},
		{"unknown-arch", BootTable{}, Client{PXE: true, Arch: 2}, "", "", ErrNoBootFile},
		{"by-arch", BootTable{ByArch: map[Arch]string{ArchBIOS: "undionly.kpxe"}}, Client{PXE: true}, "undionly.kpxe", "PXEClient", nil},
		{"by-mac", BootTable{ByMAC: map[string]BootAnswer{"52-54-00-AA-BB-CC": {File: "special.efi"}}},
			Client{PXE: true, MAC: mustMAC("52:54:00:aa:bb:cc"), Arch: ArchEFIX64}, "special.efi", "PXEClient", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.table.ServerIP = srv
			got, err := tt.table.Decide(tt.client)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.file, got.File)
			assert.Equal(t, tt.vc, got.VendorClass)
			assert.Equal(t, srv, got.ServerIP)
		})
	}
}

func TestArchString(t *testing.T) {
	assert.Equal(t, "EFI x86-64", ArchEFIX64.String())
	assert.Equal(t, "EFI LoongArch64", ArchEFILoong64.String())
	assert.Equal(t, "arch-200", Arch(200).String())
	assert.True(t, ArchEFIX64HTTP.IsHTTP())
	assert.False(t, ArchEFIX64.IsHTTP())
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestDefaultBootFileContract(t *testing.T) {
	assert.Equal(t, "pxelinux.0", DefaultBootFile(ArchBIOS, nil))
	assert.Equal(t, "grubx64.efi", DefaultBootFile(ArchEFIX64, nil))
	assert.Equal(t, "shimx64.efi", DefaultBootFile(ArchEFIX64, fstest.MapFS{"shimx64.efi": {}}))
	assert.Equal(t, "grubaa64.efi", DefaultBootFile(ArchEFIARM64, nil))
	assert.Equal(t, "shimaa64.efi", DefaultBootFile(ArchEFIARM64, fstest.MapFS{"shimaa64.efi": {}}))
	assert.Equal(t, "grubaa64.efi", DefaultBootFile(ArchEFIARM64HTTP, fstest.MapFS{"shimaa64.efi": {}}))
	assert.True(t, strings.HasSuffix(DefaultBootFile(ArchEFIX64HTTP, nil), ".efi"))
}
