package bootmenu

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The search orders measured with real firmware (GRUB 2.06 built upstream,
// PXELINUX 6.04 behind iPXE) for MAC 52:54:00:e2:e0:01 and IP 10.77.0.141.
func TestConfigNamesOrder(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:E2:E0:01")
	ip := netip.MustParseAddr("10.77.0.141")
	assert.Equal(t, []string{
		"grub.cfg-01-52-54-00-e2-e0-01",
		"grub.cfg-0A4D008D", "grub.cfg-0A4D008", "grub.cfg-0A4D00", "grub.cfg-0A4D0",
		"grub.cfg-0A4D", "grub.cfg-0A4", "grub.cfg-0A", "grub.cfg-0",
		"grub.cfg",
	}, GRUBConfigNames(mac, ip))
	assert.Equal(t, []string{
		"pxelinux.cfg/01-52-54-00-e2-e0-01",
		"pxelinux.cfg/0A4D008D", "pxelinux.cfg/0A4D008", "pxelinux.cfg/0A4D00", "pxelinux.cfg/0A4D0",
		"pxelinux.cfg/0A4D", "pxelinux.cfg/0A4", "pxelinux.cfg/0A", "pxelinux.cfg/0",
		"pxelinux.cfg/default",
	}, PXELinuxConfigNames(mac, ip))
	assert.Equal(t, []string{"grub.cfg"}, GRUBConfigNames(nil, netip.Addr{}))
	assert.Equal(t, []string{"pxelinux.cfg/default"}, PXELinuxConfigNames(nil, netip.MustParseAddr("fd77::1")))
	assert.Equal(t, "grub.cfg-0A4D008D", GRUBConfigNames(nil, netip.MustParseAddr("::ffff:10.77.0.141"))[0])
}

func TestParseConfigName(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:e2:e0:01")
	tests := []struct {
		name string
		want ConfigRequest
	}{
		{"/grub/grub.cfg", ConfigRequest{Kind: GRUB, Default: true}},
		{"grub.cfg", ConfigRequest{Kind: GRUB, Default: true}},
		{"/grub/grub.cfg-01-52-54-00-e2-e0-01", ConfigRequest{Kind: GRUB, MAC: mac}},
		{"/boot/grub2/grub.cfg-0A4D008D", ConfigRequest{Kind: GRUB, Prefix: netip.MustParsePrefix("10.77.0.141/32")}},
		{"grub.cfg-0A4D008", ConfigRequest{Kind: GRUB, Prefix: netip.MustParsePrefix("10.77.0.128/28")}},
		{"grub.cfg-0", ConfigRequest{Kind: GRUB, Prefix: netip.MustParsePrefix("0.0.0.0/4")}},
		{"pxelinux.cfg/default", ConfigRequest{Kind: PXELinux, Default: true}},
		{"/bios/pxelinux.cfg/01-52-54-00-e2-e0-01", ConfigRequest{Kind: PXELinux, MAC: mac}},
		{"pxelinux.cfg/0A4D", ConfigRequest{Kind: PXELinux, Prefix: netip.MustParsePrefix("10.77.0.0/16")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfigName(tt.name)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{
		"", "ldlinux.c32", "/grub/x86_64-efi/command.lst", "pxelinux.cfg/0a4d", "pxelinux.cfg/0A4D008D0",
		"pxelinux.cfg/44454c4c-3000-1046-8033-b7c04f4d4d31", "grub.cfg-01-zz-54-00-e2-e0-01", "grub.cfg-",
		"default", "grub.cfg-+A",
	} {
		_, err := ParseConfigName(bad)
		assert.ErrorIs(t, err, ErrInvalid, bad)
	}
}

func TestConfigRequestMatches(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:e2:e0:01")
	other, _ := net.ParseMAC("52:54:00:e2:e0:02")
	ip := netip.MustParseAddr("10.77.0.141")
	for _, name := range GRUBConfigNames(mac, ip) {
		r, err := ParseConfigName(name)
		require.NoError(t, err, name)
		assert.True(t, r.Matches(mac, ip), name)
	}
	r, _ := ParseConfigName("grub.cfg-01-52-54-00-e2-e0-01")
	assert.False(t, r.Matches(other, ip))
	r, _ = ParseConfigName("pxelinux.cfg/0A4D008D")
	assert.False(t, r.Matches(mac, netip.MustParseAddr("10.77.0.142")))
	assert.False(t, r.Matches(mac, netip.Addr{}))
	assert.False(t, ConfigRequest{}.Matches(mac, ip))
}

func TestGRUBPerHostSnippet(t *testing.T) {
	s, err := GRUBPerHostSnippet("")
	require.NoError(t, err)
	assert.Contains(t, s, `"$net_default_mac"`)
	assert.Contains(t, s, `configfile "$prefix/grub.cfg-01-${host_mac_1}-`)
	s, err = GRUBPerHostSnippet("/grub")
	require.NoError(t, err)
	assert.Contains(t, s, `"/grub/grub.cfg-01-`)
	_, err = GRUBPerHostSnippet(`/grub"; reboot; "`)
	assert.ErrorIs(t, err, ErrInvalid)
}
