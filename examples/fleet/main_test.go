package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-inventory", "rack.yaml"}, ""},
		{[]string{"-inventory", "rack.yaml", "-dhcp", "off", "-progress", "table"}, ""},
		{[]string{"-inventory", "rack.yaml", "-dhcp", "full", "-pool", "10.0.0.100-10.0.0.200"}, ""},
		{[]string{}, "give -inventory FILE"},
		{[]string{"-dhcp", "off"}, "give -inventory FILE"},
		{[]string{"-inventory", "rack.yaml", "-dhcp", "server"}, `-dhcp "server": want proxy, full or off`},
		{[]string{"-inventory", "rack.yaml", "-dhcp", "full"}, "-dhcp full needs -pool"},
		{[]string{"-inventory", "rack.yaml", "-progress", "fancy"}, `-progress "fancy"`},
		{[]string{"-inventory", "rack.yaml", "extra"}, `unexpected argument "extra"`},
		{[]string{"-inventory"}, "flag needs an argument"},
		{[]string{"-bogus"}, "flag provided but not defined"},
	} {
		c, err := parseFlags(tc.args, &syncBuffer{})
		if tc.err == "" {
			require.NoError(t, err, "%v", tc.args)
			assert.Equal(t, "/", c.hostRoot, "the real packages unless a test says otherwise")
			continue
		}
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.err, "%v", tc.args)
	}

	c, err := parseFlags([]string{"-inventory", "/etc/pxekit/rack.yaml"}, &syncBuffer{})
	require.NoError(t, err)
	assert.Equal(t, "/etc/pxekit/rack.state.json", c.state, "the state lives next to its inventory")
	assert.Equal(t, "proxy", c.dhcpMode, "safe by default: no addresses handed out")
	c, err = parseFlags([]string{"-inventory", "rack.yaml", "-state", "/var/lib/x.json"}, &syncBuffer{})
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/x.json", c.state)
}

// runFleet runs the program to its end, bounded.
func runFleet(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	code = run(ctx, args, &out, &errb)
	require.NoError(t, ctx.Err(), "run did not return by itself")
	return code, out.String(), errb.String()
}

func TestRunFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "fleet: give -inventory FILE"},
		{[]string{"-inventory", "x.yaml", "-dhcp", "dhcpd"}, `fleet: -dhcp "dhcpd": want proxy, full or off`},
		{[]string{"-inventory", "x.yaml", "-dhcp", "full"}, "fleet: -dhcp full needs -pool FIRST-LAST"},
		{[]string{"-inventory", "x.yaml", "-check", "-reinstall", "web01"}, "fleet: -check changes nothing"},
	} {
		code, _, stderr := runFleet(t, tc.args...)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
	}
	code, _, stderr := runFleet(t, "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "-inventory", "help lists the flags")
}

func TestRunCheck(t *testing.T) {
	needHostLoaders(t)
	inventory := writeInventory(t, UnknownMenu)
	state := strings.TrimSuffix(inventory, ".yaml") + ".state.json"

	code, stdout, stderr := runFleet(t, "-inventory", inventory, "-dhcp", "off", "-check")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, inventory+": 2 profile(s), 3 host(s), unknown MACs: menu — OK\n")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 5, stdout)
	assert.Regexp(t, `^HOST +MAC +PROFILE +IP +STAGE +SINCE +STATE +NEXT BOOT +DETAIL$`, lines[1])
	for i, want := range []string{
		`^web01 +52:54:00:f1:00:01 +debian12 +waiting +pending +install`,
		`^db01 +52:54:00:f1:00:02 +debian12 +waiting +pending +install`,
		`^app01 +52:54:00:f1:00:03 +debian11 +waiting +pending +install`,
	} {
		assert.Regexp(t, want, lines[2+i])
	}

	// A finished host shows as such.
	s, err := OpenStore(state)
	require.NoError(t, err)
	_, err = s.Update(macWeb, func(r *Record) { r.Hostname, r.State, r.Changed = "web01", Done, time.Now() })
	require.NoError(t, err)
	require.NoError(t, s.Close())
	code, stdout, stderr = runFleet(t, "-inventory", inventory, "-dhcp", "off", "-check")
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `(?m)^web01 +52:54:00:f1:00:01 +debian12 +(done|installed) +\d+s ago +(done|installed) +local`, stdout)

	// Checking an edited inventory while its server runs: -check only
	// looks, so the server's lock does not stop it.
	srv := startServer(t, inventory)
	code, stdout, stderr = runFleet(t, "-inventory", inventory, "-dhcp", "off", "-check")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "— OK")
	assert.Equal(t, ActLocal, statusJSON(t, srv)[macWeb].Next)

	code, _, stderr = runFleet(t, "-inventory", inventory, "-dhcp", "off", "-check", "-reinstall", "web01")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "-check changes nothing")
}

func TestRunReinstallFlag(t *testing.T) {
	inventory := writeInventory(t, UnknownLocal)
	s, err := OpenStore(strings.TrimSuffix(inventory, ".yaml") + ".state.json")
	require.NoError(t, err)
	for _, mac := range []string{macWeb, macDB, macApp} {
		_, err = s.Update(mac, func(r *Record) { r.State, r.Changed = Done, time.Now() })
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	srv := startServer(t, inventory, "-reinstall", "web01, 52-54-00-f1-00-02")
	st := statusJSON(t, srv)
	assert.Equal(t, ActInstall, st[macWeb].Next)
	assert.Equal(t, ActInstall, st[macDB].Next)
	assert.Equal(t, ActLocal, st[macApp].Next, "only the named hosts")

	code, _, stderr := runFleet(t, "-inventory", writeInventory(t, UnknownLocal), "-dhcp", "off", "-reinstall", "nosuch",
		"-tftp-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "fleet: -reinstall: reinstall nosuch: no such host")
}

func TestRunBadInventory(t *testing.T) {
	dir := t.TempDir()
	parse := filepath.Join(dir, "parse.yaml")
	require.NoError(t, os.WriteFile(parse, []byte(badInventory), 0o644))
	code, stdout, stderr := runFleet(t, "-inventory", parse, "-dhcp", "off", "-check")
	assert.Equal(t, 2, code, stderr)
	assert.Empty(t, stdout)
	assert.Regexp(t, `^fleet: `+regexp.QuoteMeta(parse)+`: \d+ problem\(s\):\n  - `, stderr)
	for _, w := range []string{`unknown: "sometimes"`, "hosts[1] (web02): mac", "hosts[2] (WEB01): hostname", `hosts[3] (h4): profile "nope"`,
		"hosts[6] (h7): layout", "hosts[7] (h8): address", "hosts[9] (h10): gateway", "field hostnmae", "into bool", "pakages", "hosts[15] (h16): profile missing"} {
		assert.Contains(t, stderr, w)
	}

	// Problems only the media show are listed with the file's name too.
	fakeNetboot(t, filepath.Join(dir, "nb"))
	media := filepath.Join(dir, "media.yaml")
	require.NoError(t, os.WriteFile(media, []byte(fmt.Sprintf(`defaults: {disk: {wipe: true}, root: {password: {hash: %q}}}
profiles:
  good: {os: debian-12, netboot: nb}
  noiso: {os: rocky-9.0, iso: missing.iso}
  nokernel: {os: debian-12, netboot: .}
hosts:
  - {mac: "52:54:00:00:00:01", hostname: h1, profile: good, overrides: {disk: {wipe: false}}}
  - {mac: "52:54:00:00:00:02", hostname: h2, profile: good, layout: zfs}
`, testHash)), 0o644))
	code, _, stderr = runFleet(t, "-inventory", media, "-dhcp", "off", "-check")
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "fleet: "+media+": ")
	// One run names the file's mistakes and the media's together.
	for _, w := range []string{"profile noiso: ", "missing.iso", "profile nokernel: netboot ", "holds no installer",
		"hosts[0] (h1): spec: disk.wipe", `hosts[1] (h2): layout "zfs"`} {
		assert.Contains(t, stderr, w)
	}

	// A corrupt state file stops even -check: it would show every host
	// as about to install.
	good := writeInventory(t, UnknownLocal)
	require.NoError(t, os.WriteFile(strings.TrimSuffix(good, ".yaml")+".state.json", []byte(`{"version":1,"hos`), 0o600))
	for _, args := range [][]string{{"-check"}, {"-tftp-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}} {
		code, _, stderr = runFleet(t, append([]string{"-inventory", good, "-dhcp", "off"}, args...)...)
		assert.Equal(t, 1, code, "%v", args)
		assert.Contains(t, stderr, "corrupt", "%v", args)
	}

	code, _, stderr = runFleet(t, "-inventory", filepath.Join(dir, "absent.yaml"), "-dhcp", "off")
	assert.Equal(t, 1, code, "not an inventory problem: the file is not there")
	assert.Contains(t, stderr, "no such file")
}

func TestRunSecondServerRefused(t *testing.T) {
	inventory := writeInventory(t, UnknownLocal)
	s := startServer(t, inventory)
	code, _, stderr := runFleet(t, "-inventory", inventory, "-dhcp", "off", "-tftp-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "state file in use by another fleet server")
	assert.Len(t, statusJSON(t, s), 3, "the first one serves on")
}
