package bootmenu

import (
	"io"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMenusOpen(t *testing.T) {
	m := Menus{GRUB: []byte("set timeout=0\n"), PXELinux: []byte("DEFAULT x\n"), IPXE: []byte("#!ipxe\n")}
	for _, tc := range []struct {
		name string
		want string // "" = not there
		err  error
	}{
		{"grub/grub.cfg", "set timeout=0\n", nil},
		{"grub.cfg", "set timeout=0\n", nil},
		{"grub/grub.cfg-01-52-54-00-12-34-56", "set timeout=0\n", nil},
		{"pxelinux.cfg/default", "DEFAULT x\n", nil},
		{"boot.ipxe", "#!ipxe\n", nil},
		{"shimx64.efi", "", fs.ErrNotExist},
		{"grub", "", fs.ErrNotExist},
		{".", "", fs.ErrNotExist},
		{"../grub.cfg", "", fs.ErrInvalid},
		{"/grub.cfg", "", fs.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := m.Open(tc.name)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			defer f.Close()
			st, err := f.Stat()
			require.NoError(t, err)
			assert.True(t, st.Mode().IsRegular())
			assert.Equal(t, int64(len(tc.want)), st.Size())
			b, err := io.ReadAll(f)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
	// A kind without a menu is not there.
	_, err := Menus{GRUB: []byte("x")}.Open("boot.ipxe")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
