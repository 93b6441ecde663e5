package main

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseGRUBMenu covers what parseGRUBMenu adds to
// simclient.ParseGRUBMenu (tested there): the fleet client needs an
// answer file on the kernel line.
func TestParseGRUBMenu(t *testing.T) {
	kernel, initrds, answer, err := parseGRUBMenu("menuentry 'x' {\n linux /k url=http://s/a.cfg\n initrd /i\n}\n")
	require.NoError(t, err)
	assert.Equal(t, "/k", kernel)
	assert.Equal(t, []string{"/i"}, initrds)
	assert.Equal(t, "http://s/a.cfg", answer)

	_, _, _, err = parseGRUBMenu("menuentry 'x' {\n linux /k quiet\n}\n")
	assert.ErrorContains(t, err, "no answer file")
	_, _, _, err = parseGRUBMenu("set default=local\nmenuentry 'x' --id local {\n\texit\n}\n")
	assert.Error(t, err, "a menu without an install entry")
}

func TestFleetMenuURL(t *testing.T) {
	c := &fleetClient{server: netip.MustParseAddr("10.232.0.1")}
	u, name, err := c.menuURL("/profiles/p/boot/linux")
	require.NoError(t, err)
	assert.Equal(t, "http://10.232.0.1:8080/profiles/p/boot/linux", u)
	assert.Equal(t, "profiles/p/boot/linux", name)
	u, _, err = c.menuURL("(http,10.232.0.1:8080)/profiles/p/boot/linux")
	require.NoError(t, err)
	assert.Equal(t, "http://10.232.0.1:8080/profiles/p/boot/linux", u)
	_, _, err = c.menuURL("(http,192.0.2.1)/linux")
	assert.Error(t, err, "another server")
}
