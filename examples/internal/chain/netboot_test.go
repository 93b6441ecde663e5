package chain

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNetbootDistro(t *testing.T) {
	tree := func(arches ...string) fstest.MapFS {
		m := fstest.MapFS{}
		for _, a := range arches {
			m["debian-installer/"+a+"/linux"] = &fstest.MapFile{Data: []byte("k")}
			m["debian-installer/"+a+"/initrd.gz"] = &fstest.MapFile{Data: []byte("i")}
		}
		return m
	}
	tests := []struct {
		name, osID     string
		nb             fstest.MapFS
		kernel, initrd string // "" = nil Distro (the default amd64 paths)
	}{
		{"arm64 tree", "debian-12", tree("arm64"), "debian-installer/arm64/linux", "debian-installer/arm64/initrd.gz"},
		{"amd64 tree keeps the defaults", "debian-12", tree("amd64"), "", ""},
		{"both: amd64 as before", "debian-12", tree("amd64", "arm64"), "", ""},
		{"neither: Prepare names the missing kernel", "debian-12", tree("i386"), "", ""},
		{"not a Debian installer", "rocky-9.0", tree("arm64"), "", ""},
		{"unknown OS", "", tree("arm64"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NetbootDistro(tt.osID, tt.nb)
			if tt.kernel == "" {
				assert.Nil(t, d)
				return
			}
			require.NotNil(t, d)
			assert.Equal(t, tt.kernel, d.NetbootKernel)
			assert.Equal(t, tt.initrd, d.NetbootInitrd)
			assert.Equal(t, tt.osID, d.OSID)
		})
	}
	assert.Nil(t, NetbootDistro("debian-12", nil))
}
