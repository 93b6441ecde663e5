package dhcpsrv

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeInterface(t *testing.T) {
	errNone := errors.New("no interface is up")
	up := func() (string, netip.Addr, error) { return "eth0", netip.MustParseAddr("10.0.0.5"), nil }
	down := func() (string, netip.Addr, error) { return "", netip.Addr{}, errNone }
	named := func(n string) (netip.Prefix, error) {
		if n == "br0" {
			return netip.MustParsePrefix("10.77.0.1/24"), nil
		}
		return netip.Prefix{}, errors.New(`dhcpsrv: interface "` + n + `": no such network interface`)
	}
	for _, tc := range []struct {
		name     string
		iface    string
		loopback bool
		def      func() (string, netip.Addr, error)
		want     string // "name addr", or the error
	}{
		{"default", "", false, up, "eth0 10.0.0.5"},
		{"named wins", "br0", false, up, "br0 10.77.0.1"},
		{"named without a default", "br0", false, down, "br0 10.77.0.1"},
		{"named missing", "nope0", true, up, `interface "nope0"`},
		{"no default", "", false, down, "no interface is up"},
		{"no default, loopback will do", "", true, down, "lo 127.0.0.1"},
		{"default beats loopback", "", true, up, "eth0 10.0.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, a, err := serveInterface(tc.iface, tc.loopback, tc.def, named)
			if err != nil {
				assert.ErrorContains(t, err, tc.want)
				return
			}
			assert.Equal(t, tc.want, n+" "+a.String())
		})
	}
}

// TestServeInterfaceLoopback runs the real look-ups on the loopback
// interface, which every test machine has.
func TestServeInterfaceLoopback(t *testing.T) {
	n, a, err := ServeInterface("lo", false)
	require.NoError(t, err)
	assert.Equal(t, "lo", n)
	assert.True(t, a.IsLoopback(), a)
	_, _, err = ServeInterface("pxekit-none0", true)
	assert.ErrorContains(t, err, "pxekit-none0")
}

func TestDefaultNameservers(t *testing.T) {
	dir := t.TempDir()
	server := netip.MustParseAddr("10.77.0.1")
	for _, tc := range []struct {
		name, conf string
		want       []netip.Addr
	}{
		{"the host's", "nameserver 10.0.0.53\nnameserver 127.0.0.53\n", []netip.Addr{netip.MustParseAddr("10.0.0.53")}},
		{"stub only", "nameserver 127.0.0.53\n", []netip.Addr{server}},
		{"none", "", []netip.Addr{server}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			require.NoError(t, os.WriteFile(p, []byte(tc.conf), 0o644))
			assert.Equal(t, tc.want, defaultNameservers(p, server))
		})
	}
	assert.Equal(t, []netip.Addr{server}, defaultNameservers(filepath.Join(dir, "missing"), server))
	assert.NotEmpty(t, DefaultNameservers(server))
}
