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

// TestBootTableProxy covers the answers that depend on Client.Proxy,
// IgnoreIPXE and Prefix.
func TestBootTableProxy(t *testing.T) {
	const base = "http://10.77.0.1:8080"
	snp := fstest.MapFS{"ipxe/snponly.efi": {}, "shimx64.efi": {}, "grubx64.efi": {}}
	shimOnly := fstest.MapFS{"shimx64.efi": {}, "grubx64.efi": {}}
	prefixed := fstest.MapFS{"profiles/rocky9/shimx64.efi": {}, "profiles/rocky9/ipxe/snponly.efi": {}, "profiles/rocky9/shimaa64.efi": {}}
	uefi := Client{PXE: true, Arch: ArchEFIX64, ArchSent: true, Proxy: true}
	with := func(c Client, f func(*Client)) Client { f(&c); return c }
	tests := []struct {
		name   string
		table  BootTable
		client Client
		file   string
		vc     string
	}{
		{"uefi proxy: iPXE", BootTable{HTTPBase: base}, uefi, "ipxe/snponly.efi", "PXEClient"},
		{"uefi proxy, Files has it", BootTable{Files: snp}, uefi, "ipxe/snponly.efi", "PXEClient"},
		{"uefi proxy, Files lack it: shim", BootTable{Files: shimOnly}, uefi, "shimx64.efi", "PXEClient"},
		{"uefi proxy, Files lack it: grub", BootTable{Files: fstest.MapFS{}}, uefi, "grubx64.efi", "PXEClient"},
		{"efi-bc proxy", BootTable{}, with(uefi, func(c *Client) { c.Arch = ArchEFIBC }), "ipxe/snponly.efi", "PXEClient"},
		{"uefi full mode keeps shim", BootTable{Files: snp}, with(uefi, func(c *Client) { c.Proxy = false }), "shimx64.efi", "PXEClient"},
		{"ProxyUEFI shim for Secure Boot", BootTable{Files: snp, ProxyUEFI: "shimx64.efi"}, uefi, "shimx64.efi", "PXEClient"},
		{"ByArch wins over ProxyUEFI", BootTable{ByArch: map[Arch]string{ArchEFIX64: "custom.efi"}}, uefi, "custom.efi", "PXEClient"},
		{"iPXE in proxy: script", BootTable{HTTPBase: base}, with(uefi, func(c *Client) { c.IPXE = true }), base + "/boot.ipxe", "PXEClient"},
		{"HTTP boot in proxy: URL", BootTable{HTTPBase: base},
			Client{HTTPClient: true, Arch: ArchEFIX64HTTP, Proxy: true}, base + "/ipxe/snponly.efi", "HTTPClient"},
		{"arm64 proxy unchanged", BootTable{Files: snp}, with(uefi, func(c *Client) { c.Arch = ArchEFIARM64 }), "grubaa64.efi", "PXEClient"},
		{"bios proxy unchanged", BootTable{}, with(uefi, func(c *Client) { c.Arch = ArchBIOS }), "pxelinux.0", "PXEClient"},
		{"IgnoreIPXE: iPXE as PXE", BootTable{HTTPBase: base, IgnoreIPXE: true, Files: shimOnly},
			with(uefi, func(c *Client) { c.IPXE, c.Proxy = true, false }), "shimx64.efi", "PXEClient"},
		{"IgnoreIPXE in proxy: snponly", BootTable{HTTPBase: base, IgnoreIPXE: true},
			with(uefi, func(c *Client) { c.IPXE = true }), "ipxe/snponly.efi", "PXEClient"},
		{"IgnoreIPXE, iPXE HTTP client: URL", BootTable{HTTPBase: base, IgnoreIPXE: true},
			Client{HTTPClient: true, IPXE: true, Arch: ArchEFIX64HTTP}, base + "/ipxe/snponly.efi", "HTTPClient"},
		{"Prefix: proxy file", BootTable{Files: prefixed, Prefix: "profiles/rocky9/"}, uefi, "profiles/rocky9/ipxe/snponly.efi", "PXEClient"},
		{"Prefix: Files looked up with it", BootTable{Files: prefixed, Prefix: "/profiles/rocky9"},
			with(uefi, func(c *Client) { c.Proxy = false }), "profiles/rocky9/shimx64.efi", "PXEClient"},
		{"Prefix: arm64 shim", BootTable{Files: prefixed, Prefix: "profiles/rocky9/"},
			with(uefi, func(c *Client) { c.Arch = ArchEFIARM64 }), "profiles/rocky9/shimaa64.efi", "PXEClient"},
		{"Prefix: absent under it", BootTable{Files: shimOnly, Prefix: "profiles/rocky9/"}, uefi, "profiles/rocky9/grubx64.efi", "PXEClient"},
		{"Prefix: ByArch", BootTable{Prefix: "p/", ByArch: map[Arch]string{ArchBIOS: "/undionly.kpxe"}},
			Client{PXE: true}, "p/undionly.kpxe", "PXEClient"},
		{"Prefix: not on absolute URLs", BootTable{Prefix: "p/", ProxyUEFI: "http://x/ipxe.efi"}, uefi, "http://x/ipxe.efi", "PXEClient"},
		{"Prefix: not on HTTP boot", BootTable{Prefix: "p/", HTTPBase: base},
			Client{HTTPClient: true, Arch: ArchEFIX64HTTP}, base + "/ipxe/snponly.efi", "HTTPClient"},
		{"Prefix: not on the script URL", BootTable{Prefix: "p/", HTTPBase: base}, with(uefi, func(c *Client) { c.IPXE = true }), base + "/boot.ipxe", "PXEClient"},
		{"Prefix: script over TFTP", BootTable{Prefix: "p/"}, with(uefi, func(c *Client) { c.IPXE = true }), "p/boot.ipxe", "PXEClient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.table.Decide(tt.client)
			require.NoError(t, err)
			assert.Equal(t, tt.file, got.File)
			assert.Equal(t, tt.vc, got.VendorClass)
			assert.False(t, got.ServerIP.IsValid(), "zero ServerIP: the server's own address")
		})
	}
}

func TestBootFunc(t *testing.T) {
	var p BootPolicy = BootFunc(func(c Client) (BootAnswer, error) {
		if c.Proxy {
			return BootAnswer{}, ErrNoBootFile
		}
		return BootAnswer{File: "x.efi"}, nil
	})
	a, err := p.Decide(Client{})
	require.NoError(t, err)
	assert.Equal(t, "x.efi", a.File)
	_, err = p.Decide(Client{Proxy: true})
	assert.ErrorIs(t, err, ErrNoBootFile)
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
