package isosrc

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/testutil"
)

func TestOpenMedia(t *testing.T) {
	const iso = "testdata/rocky-9.0-mini.iso"
	nb := testutil.FakeNetboot(t, t.TempDir())
	for _, tc := range []struct {
		name, iso, netboot, osID string
		wantOS, wantKernel, err  string
	}{
		{name: "iso detected", iso: iso, wantOS: "rocky-9.0", wantKernel: "images/pxeboot/vmlinuz"},
		{name: "iso named", iso: iso, osID: "alma-8.5", wantOS: "alma-8.5", wantKernel: "images/pxeboot/vmlinuz"},
		{name: "netboot alone", netboot: nb, osID: "debian-12", wantOS: "debian-12", wantKernel: "debian-installer/amd64/linux"},
		{name: "empty"},
		{name: "missing iso", iso: "testdata/nope.iso", err: "nope.iso"},
		{name: "netboot for anaconda", netboot: nb, osID: "rocky-9.0", err: "netboot " + nb},
		{name: "netboot without os", netboot: nb, err: "unknown OS"},
		{name: "missing netboot", netboot: filepath.Join(nb, "nope"), osID: "debian-12", err: "netboot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := OpenMedia(tc.iso, tc.netboot, tc.osID, Limits{})
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				assert.Nil(t, m)
				return
			}
			require.NoError(t, err)
			defer m.Close()
			if tc.wantOS == "" {
				assert.Nil(t, m.Distro)
				assert.Nil(t, m.BootTree())
				return
			}
			assert.Equal(t, tc.wantOS, m.Distro.OSID)
			k, i := m.Distro.BootFiles()
			assert.Equal(t, tc.wantKernel, k)
			require.Len(t, i, 1)
			_, err = m.BootTree().Open(k)
			assert.NoError(t, err, "the kernel is in the boot tree")
		})
	}
}

func TestMediaLoaders(t *testing.T) {
	m, err := OpenMedia("testdata/rocky-9.0-mini.iso", "", "", Limits{})
	require.NoError(t, err)
	defer m.Close()
	l, err := m.Loaders()
	require.NoError(t, err)
	assert.True(t, l.Vendor)
	assert.Equal(t, "EFI/BOOT/grubx64.efi", l.GRUB)

	nb, err := OpenMedia("", testutil.FakeNetboot(t, t.TempDir()), "debian-12", Limits{})
	require.NoError(t, err)
	defer nb.Close()
	l, err = nb.Loaders()
	require.NoError(t, err)
	assert.Equal(t, Loaders{Netboot: nb.Netboot}, l, "no ISO: the host's loaders decide")
}
