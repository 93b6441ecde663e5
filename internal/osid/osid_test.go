package osid

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		id     string
		family Family
		el     int
	}{
		{"centos-7.9", Anaconda, 7},
		{" Rocky-9.0 ", Anaconda, 9},
		{"openeuler-22.03", Anaconda, 9},
		{"ubuntu-24.04", Subiquity, 0},
		{"debian-12", DebianDI, 0},
	} {
		in, ok := Lookup(tc.id)
		require.True(t, ok, tc.id)
		assert.Equal(t, tc.family, in.Family, tc.id)
		assert.Equal(t, tc.el, in.ELMajor, tc.id)
	}
	_, ok := Lookup("windows-11")
	assert.False(t, ok)
}

func TestTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, in := range All() {
		assert.False(t, seen[in.ID], "duplicate %s", in.ID)
		seen[in.ID] = true
		assert.NotEmpty(t, in.Name, in.ID)
		assert.NotZero(t, in.Major, in.ID)
		if in.Family == Anaconda {
			assert.Contains(t, []int{7, 8, 9}, in.ELMajor, in.ID)
		} else {
			assert.NotEmpty(t, in.Codename, in.ID)
		}
	}
	assert.Len(t, IDs(), 16)
}
