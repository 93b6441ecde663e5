package bootfiles

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// arm64Netboot is the layout of debian-installer-12-netboot-arm64.
func arm64Netboot() fstest.MapFS {
	return fstest.MapFS{
		"debian-installer/arm64/bootnetaa64.efi": {Data: []byte("netboot shim")},
		"debian-installer/arm64/grubaa64.efi":    {Data: []byte("netboot grub")},
		"debian-installer/arm64/linux":           {Data: []byte("kernel")},
	}
}

func TestARM64Loaders(t *testing.T) {
	x64 := []string{"usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"}
	tests := []struct {
		name       string
		host       []string
		netboot    fstest.MapFS
		shim, grub string // "" = not served
	}{
		{"netboot pair on an amd64 host", x64, arm64Netboot(), "netboot shim", "netboot grub"},
		{"host pair wins", append(x64, "usr/lib/shim/shimaa64.efi.signed", "usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed"),
			arm64Netboot(), "host:usr/lib/shim/shimaa64.efi.signed", "host:usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed"},
		{"host shim never with the netboot GRUB", append(x64, "usr/lib/shim/shimaa64.efi.signed"),
			arm64Netboot(), "netboot shim", "netboot grub"},
		{"netboot GRUB without shim", x64, fstest.MapFS{"debian-installer/arm64/grubaa64.efi": {Data: []byte("netboot grub")}}, "", "netboot grub"},
		{"netboot shim without GRUB", x64, fstest.MapFS{"debian-installer/arm64/bootnetaa64.efi": {Data: []byte("netboot shim")}}, "", ""},
		{"no netboot tree", x64, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Source{}
			if tt.netboot != nil {
				src.Netboot = tt.netboot
			}
			s, err := Find(src, fakeHost(t, tt.host...))
			require.NoError(t, err)
			for name, want := range map[string]string{ShimAA64: tt.shim, GRUBAA64: tt.grub} {
				if want == "" {
					assert.False(t, s.Has(name), name)
					continue
				}
				assert.Equal(t, want, read(t, s, name))
				assert.False(t, s.FromISO(name), "an arm64 loader is never the ISO's")
			}
		})
	}
}

func TestARM64OnlyIsALoader(t *testing.T) {
	s, err := Find(Source{Netboot: arm64Netboot()}, t.TempDir())
	require.NoError(t, err, "a server for ARM64 clients only")
	assert.True(t, s.Has(GRUBAA64))
}
