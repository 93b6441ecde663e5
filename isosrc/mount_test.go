package isosrc

import (
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMount(t *testing.T) {
	tree := fstest.MapFS{
		"boot/linux":  {Data: []byte("kernel")},
		"shimx64.efi": {Data: []byte("shim")},
	}
	for _, dir := range []string{"profiles/r9", "profiles/r9/"} {
		m := Mount(dir, tree)
		for _, tc := range []struct {
			name, want string
			err        error
		}{
			{"profiles/r9/boot/linux", "kernel", nil},
			{"profiles/r9/shimx64.efi", "shim", nil},
			{"shimx64.efi", "", fs.ErrNotExist},              // outside dir
			{"profiles/r9x/shimx64.efi", "", fs.ErrNotExist}, // a sibling that shares the prefix
			{"profiles/r9/missing", "", fs.ErrNotExist},
			{"profiles", "", fs.ErrNotExist}, // no directories above dir
			{"profiles/r9/../r9/shimx64.efi", "", fs.ErrInvalid},
			{"/profiles/r9/shimx64.efi", "", fs.ErrInvalid},
		} {
			t.Run(dir+" "+tc.name, func(t *testing.T) { requireServes(t, m, tc.name, tc.want, tc.err) })
		}
		fi, err := fs.Stat(m, "profiles/r9")
		require.NoError(t, err)
		assert.True(t, fi.IsDir(), "dir itself is the tree's root")
	}
	// No dir: the tree itself.
	for _, dir := range []string{"", ".", "/"} {
		requireServes(t, Mount(dir, tree), "shimx64.efi", "shim", nil)
	}
	// A tree's own refusal passes through.
	_, err := Mount("p", refusing{fs.ErrPermission}).Open("p/x")
	assert.ErrorIs(t, err, fs.ErrPermission)
}
