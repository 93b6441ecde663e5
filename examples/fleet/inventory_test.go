package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/examples/fleet/power"
)

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	hw, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	require.NoError(t, err)
	return hw
}

func TestParseInventory(t *testing.T) {
	inv, err := ParseInventory([]byte(testInventory("nb", UnknownMenu)), "/srv/fleet")
	require.NoError(t, err)
	assert.Equal(t, UnknownMenu, inv.Unknown)
	assert.Equal(t, []string{"debian11", "debian12"}, inv.profileNames())
	require.Len(t, inv.Hosts, 3)

	// db01's MAC is written upper-case with dashes: every form finds it.
	for _, s := range []string{macDB, "52-54-00-F1-00-02", "52:54:00:F1:00:02"} {
		h := inv.host(mustMAC(t, s))
		require.NotNil(t, h, s)
		assert.Equal(t, "db01", h.Hostname)
	}
	assert.Nil(t, inv.host(mustMAC(t, macNew)))
	for name, want := range map[string]string{"WEB01": "web01", "db01": "db01", "52-54-00-f1-00-03": "app01", "nope": ""} {
		h := inv.hostByName(name)
		if want == "" {
			assert.Nil(t, h, name)
			continue
		}
		require.NotNil(t, h, name)
		assert.Equal(t, want, h.Hostname, name)
	}
	assert.Equal(t, "10.77.0.21/24", inv.host(mustMAC(t, macDB)).prefix.String())
	assert.Equal(t, filepath.Join("/srv/fleet", "nb"), inv.path("nb"))
	assert.Equal(t, "/abs/nb", inv.path("/abs/nb"))

	// The policy for unknown MACs defaults to the safe one.
	inv, err = ParseInventory([]byte("profiles: {p: {os: debian-12, netboot: nb}}\n"), ".")
	require.NoError(t, err)
	assert.Equal(t, UnknownLocal, inv.Unknown)
}

// badInventory has one of each mistake an operator makes; the point is that
// a single run names all of them.
const badInventory = `unknown: sometimes
defaults: {disk: {wipe: true}, root: {ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxekitTestKeyOnlyNotARealKey00000000000000 test"]}}
profiles:
  good: {os: debian-12, netboot: nb}
  winders: {os: windows-11, netboot: nb}
  empty-media: {os: debian-12}
  Bad_Name: {os: debian-12, netboot: nb}
  ftp: {os: debian-12, netboot: nb, mirror: "ftp://mirror.example/debian"}
hosts:
  - {mac: "52:54:00:00:00:01", hostname: web01, profile: good}
  - {mac: "52-54-00-00-00-01", hostname: web02, profile: good}
  - {mac: "52:54:00:00:00:03", hostname: WEB01, profile: good}
  - {mac: "52:54:00:00:00:04", hostname: h4, profile: nope}
  - {mac: "52:54:00:zz:00:05", hostname: h5, profile: good}
  - {mac: "00:00:00:00:fe:80:00:06", hostname: h6, profile: good}
  - {mac: "52:54:00:00:00:07", hostname: h7, profile: good, layout: zfs}
  - {mac: "52:54:00:00:00:08", hostname: h8, profile: good, address: 10.0.0.300/24}
  - {mac: "52:54:00:00:00:09", hostname: h9, profile: good, address: "fd00::9/64"}
  - {mac: "52:54:00:00:00:0a", hostname: h10, profile: good, gateway: 10.0.0.1}
  - {mac: "52:54:00:00:00:0b", hostname: h11, profile: good, hostnmae: typo}
  - {mac: "52:54:00:00:00:0c", hostname: h12, profile: good, overrides: {disk: {wipe: maybe}}}
  - {mac: "52:54:00:00:00:0d", hostname: h13, profile: good, overrides: {pakages: {names: [vim]}}}
  - {mac: "52:54:00:00:00:0e", hostname: h14, profile: good, address: 10.0.0.14/24}
  - {mac: "52:54:00:00:00:0f", hostname: h15, profile: good, address: 10.0.0.14/24}
  - {hostname: h16}
`

func TestParseInventoryListsEveryProblem(t *testing.T) {
	_, err := ParseInventory([]byte(badInventory), ".")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInventory))
	var ie *InventoryError
	require.True(t, errors.As(err, &ie))

	want := []string{
		`unknown: "sometimes": want local, menu or ignore`,
		`profile winders: os "windows-11": unknown`,
		`profile empty-media: give iso or netboot`,
		`profile "Bad_Name": name must be lower-case`,
		`profile ftp: mirror "ftp://mirror.example/debian": want an http:// or https:// URL`,
		`hosts[1] (web02): mac 52:54:00:00:00:01 already belongs to hosts[0] (web01)`,
		`hosts[2] (WEB01): hostname WEB01 already used by hosts[0]`,
		`hosts[3] (h4): profile "nope" is not defined`,
		`hosts[4] (h5): mac "52:54:00:zz:00:05": not a 48-bit MAC address`,
		`hosts[5] (h6): mac "00:00:00:00:fe:80:00:06": not a 48-bit MAC address`,
		`hosts[6] (h7): layout "zfs": want plain or lvm`,
		`hosts[7] (h8): address "10.0.0.300/24": want IPv4 in CIDR form`,
		`hosts[8] (h9): address "fd00::9/64": want IPv4 in CIDR form`,
		`hosts[9] (h10): gateway and dns need a static address`,
		`line 20: field hostnmae not found in type main.Host`,
		`hosts[11] (h12): spec: answerfile: parsing spec:`,
		`hosts[12] (h13): spec: answerfile: parsing spec:`,
		`hosts[14] (h15): address 10.0.0.14 already belongs to hosts[13]`,
		`hosts[15] (h16): mac missing`,
		`hosts[15] (h16): profile missing`,
	}
	assertOneProblemEach(t, ie.Problems, want, err)
	assert.Len(t, ie.Problems, len(want), "one line per problem, no more:\n%s", err)
	assert.Contains(t, err.Error(), "into bool", "the bad spec value's problem is named")
	assert.Contains(t, err.Error(), "pakages", "the misspelt spec key is named")
	assert.True(t, strings.HasPrefix(err.Error(), "inventory: 20 problem(s):\n  - "), err.Error())
}

func TestLoadInventoryNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rack.yaml")
	require.NoError(t, os.WriteFile(p, []byte("profiles: [\n"), 0o644))
	_, err := LoadInventory(p)
	require.ErrorIs(t, err, ErrInventory)
	assert.True(t, strings.HasPrefix(err.Error(), p+": 1 problem(s):"), err.Error())

	_, err = LoadInventory(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.NotErrorIs(t, err, ErrInventory)
}

func TestMergeMaps(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dst, src map[string]any
		want     map[string]any
	}{
		{"both nil", nil, nil, map[string]any{}},
		{"scalar replaced", map[string]any{"a": 1, "b": 2}, map[string]any{"a": 3}, map[string]any{"a": 3, "b": 2}},
		{"maps merge key by key",
			map[string]any{"n": map[string]any{"x": 1, "y": 2}},
			map[string]any{"n": map[string]any{"y": 3, "z": 4}},
			map[string]any{"n": map[string]any{"x": 1, "y": 3, "z": 4}}},
		{"lists are replaced, not appended",
			map[string]any{"l": []any{"a", "b"}}, map[string]any{"l": []any{"c"}}, map[string]any{"l": []any{"c"}}},
		{"map over scalar", map[string]any{"k": "s"}, map[string]any{"k": map[string]any{"x": 1}}, map[string]any{"k": map[string]any{"x": 1}}},
		{"scalar over map", map[string]any{"k": map[string]any{"x": 1}}, map[string]any{"k": "s"}, map[string]any{"k": "s"}},
		{"deep", map[string]any{"a": map[string]any{"b": map[string]any{"c": 1, "d": 2}}},
			map[string]any{"a": map[string]any{"b": map[string]any{"d": 3}}},
			map[string]any{"a": map[string]any{"b": map[string]any{"c": 1, "d": 3}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]any{"dst": deepCopy(tc.dst), "src": deepCopy(tc.src)}
			got := mergeMaps(tc.dst, tc.src)
			assert.Equal(t, tc.want, got)
			// Profiles share defaults and hosts share profiles: a merge must
			// not leak one host's keys into the next.
			assert.Equal(t, before, map[string]any{"dst": deepCopy(tc.dst), "src": deepCopy(tc.src)})
			for k, v := range got {
				if m, ok := v.(map[string]any); ok {
					m["leak"] = true
					if sm, ok := tc.src[k].(map[string]any); ok {
						assert.NotContains(t, sm, "leak")
					}
					if dm, ok := tc.dst[k].(map[string]any); ok {
						assert.NotContains(t, dm, "leak")
					}
				}
			}
		})
	}
}

func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := map[string]any{}
	for k, v := range m {
		if sm, ok := v.(map[string]any); ok {
			v = deepCopy(sm)
		}
		out[k] = v
	}
	return out
}

func TestSpecForPrecedence(t *testing.T) {
	// Each key is set at a different set of levels so that every pair of
	// levels is ordered by one assertion.
	const inv = `defaults:
  timezone: UTC
  locale: en_GB.UTF-8
  keyboard: us
  disk: {wipe: true, device: sda}
  packages: {names: [from-defaults]}
  network: {domain: example.net}
  root: {ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxekitTestKeyOnlyNotARealKey00000000000000 test"]}
profiles:
  p:
    os: debian-12
    netboot: nb
    spec:
      timezone: Europe/Berlin
      keyboard: fr
      packages: {names: [from-profile]}
      layout: {scheme: plain, lvm: {vg: data}}
hosts:
  - mac: "52:54:00:00:00:01"
    hostname: h1
    profile: p
    layout: lvm
    address: 10.0.0.1/24
    gateway: 10.0.0.254
    overrides:
      keyboard: de
      disk: {device: nvme0n1}
      network: {gateway: 10.0.0.253}
  - mac: "52:54:00:00:00:02"
    hostname: h2
    profile: p
    overrides: {hostname: renamed, packages: {names: [from-host]}}
`
	parsed, err := ParseInventory([]byte(inv), ".")
	require.NoError(t, err)
	h1, err := parsed.specFor(parsed.Hosts[0])
	require.NoError(t, err)
	h2, err := parsed.specFor(parsed.Hosts[1])
	require.NoError(t, err)

	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"defaults only", h1.Locale, "en_GB.UTF-8"},
		{"profile over defaults", h1.Timezone, "Europe/Berlin"},
		{"profile list replaces the defaults' list", h1.Packages.Names, []string{"from-profile"}},
		{"host field over profile", h1.Layout.Scheme, "lvm"},
		{"host field merges into the profile's map", h1.Layout.LVM.VG, "data"},
		{"host field hostname", h1.Hostname, "h1"},
		{"host address makes the network static", h1.Network.Mode, "static"},
		{"host address", h1.Network.Address, "10.0.0.1/24"},
		{"static network names the host's MAC", h1.Network.MAC, "52:54:00:00:00:01"},
		{"defaults' network keys survive the host's", h1.Network.Domain, "example.net"},
		{"override over host field", h1.Network.Gateway, "10.0.0.253"},
		{"override over profile and defaults", h1.Keyboard, "de"},
		{"override merges into the defaults' map", h1.Disk.Wipe, true},
		{"override key in that map", h1.Disk.Device, "nvme0n1"},
		{"override over host hostname", h2.Hostname, "renamed"},
		{"override list over profile list", h2.Packages.Names, []string{"from-host"}},
		{"no host layout keeps the profile's", h2.Layout.Scheme, "plain"},
		{"no address keeps DHCP", h2.Network.Mode, ""},
	} {
		assert.Equal(t, tc.want, tc.got, tc.what)
	}
	// One host's spec must not change what the next one gets.
	again, err := parsed.specFor(parsed.Hosts[1])
	require.NoError(t, err)
	assert.Equal(t, h2, again)
	assert.Equal(t, []any{"from-profile"}, parsed.Profiles["p"].Spec["packages"].(map[string]any)["names"])
}

// bmcInventory is a two-host inventory whose hosts carry the given "bmc:"
// values (YAML flow style; "" leaves it out).
func bmcInventory(web, db string) string {
	host := func(mac, name, bmc string) string {
		s := "  - {mac: \"" + mac + "\", hostname: " + name + ", profile: p"
		if bmc != "" {
			s += ", bmc: " + bmc
		}
		return s + "}\n"
	}
	return `defaults: {disk: {wipe: true}, root: {password: {hash: "` + testHash + `"}}}
profiles:
  p: {os: debian-12, netboot: nb}
hosts:
` + host(macWeb, "web01", web) + host(macDB, "db01", db)
}

func TestInventoryBMC(t *testing.T) {
	inv, err := ParseInventory([]byte(bmcInventory(
		`{type: ipmi, address: "10.0.1.1", user: pxekit, password_env: BMC_WEB01}`,
		`{type: redfish, address: "bmc-db01.example:8443", user: admin, password_file: /etc/pxekit/bmc/db01, boot_mode: legacy, tls_fingerprint: "`+strings.Repeat("ab:", 31)+`ab"}`)), ".")
	require.NoError(t, err)
	web, db := inv.hostByName("web01").BMC, inv.hostByName("db01").BMC
	require.NotNil(t, web)
	require.NotNil(t, db)
	assert.Equal(t, power.BMC{Type: power.IPMI, Address: "10.0.1.1", User: "pxekit", PasswordEnv: "BMC_WEB01"}, *web)
	assert.Equal(t, power.BootUEFI, web.ModeOf(), "UEFI unless the bmc says legacy")
	assert.Equal(t, power.BootLegacy, db.ModeOf())
	assert.Equal(t, "/etc/pxekit/bmc/db01", db.PasswordFile)

	// No bmc: no BMC.
	inv, err = ParseInventory([]byte(bmcInventory("", "")), ".")
	require.NoError(t, err)
	assert.Nil(t, inv.hostByName("web01").BMC)
}

// Every BMC problem is listed at once, with the others, naming the host;
// an inline password is refused and never repeated.
func TestInventoryBMCProblems(t *testing.T) {
	const secret = "hunter2-Sup3rSecret"
	for _, tc := range []struct {
		name    string
		web, db string
		want    []string
	}{
		{"inline password", `{type: ipmi, address: 10.0.1.1, user: u, password: ` + secret + `}`, "",
			[]string{"hosts[0] (web01): bmc: a password key: passwords are not accepted inline; use password_env (an environment variable) or password_file"}},
		{"inline password, no space", `{type: ipmi, address: 10.0.1.1, user: u, password:` + secret + `}`, "",
			[]string{"hosts[0] (web01): bmc: a password key: passwords are not accepted inline"}},
		{"missing user and a bad type", `{type: ipmi, address: 10.0.1.1, password_env: X}`, `{type: telnet, address: 10.0.1.2, user: u, password_env: X}`,
			[]string{"hosts[0] (web01): bmc.user: required", `hosts[1] (db01): bmc.type: "telnet" is neither ipmi nor redfish`}},
		{"not a mapping", `ipmi://10.0.1.1`, `[1, 2]`,
			[]string{"hosts[0] (web01): bmc: want a mapping", "hosts[1] (db01): bmc: want a mapping"}},
		{"unknown key", `{type: ipmi, address: 10.0.1.1, user: u, password_env: X, bootmode: legacy}`, "",
			[]string{`hosts[0] (web01): bmc: unknown key "bootmode"`}},
		{"no password reference", `{type: ipmi, address: 10.0.1.1, user: u}`, "",
			[]string{"hosts[0] (web01): bmc.password_env or password_file: one is required"}},
		{"bad boot mode", `{type: ipmi, address: 10.0.1.1, user: u, password_env: X, boot_mode: bios}`, "",
			[]string{`hosts[0] (web01): bmc.boot_mode: "bios" is neither uefi nor legacy`}},
		{"one BMC for two hosts", `{type: ipmi, address: 10.0.1.1, user: u, password_env: X}`, `{type: ipmi, address: "10.0.1.1:623", user: u, password_env: Y}`,
			[]string{"hosts[1] (db01): bmc 10.0.1.1:623 already belongs to hosts[0] (web01)"}},
		{"bad address", `{type: redfish, address: "bmc db01", user: u, password_env: X}`, "",
			[]string{`hosts[0] (web01): bmc.address: "bmc db01" is not a host name or IP address`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A profile problem too: the BMC problems come with the others.
			data := bmcInventory(tc.web, tc.db) + "unknown: sometimes\n"
			_, err := ParseInventory([]byte(data), ".")
			var ie *InventoryError
			require.ErrorAs(t, err, &ie)
			require.ErrorIs(t, err, ErrInventory)
			assert.Contains(t, ie.Problems, `unknown: "sometimes": want local, menu or ignore`)
			for _, w := range tc.want {
				found := false
				for _, p := range ie.Problems {
					found = found || strings.HasPrefix(p, w)
				}
				assert.True(t, found, "no problem %q in:\n%s", w, err)
			}
			assert.Len(t, ie.Problems, len(tc.want)+1, err.Error())
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

// FuzzInventoryBMC feeds hostile "bmc:" values through the inventory
// check: never a panic, a problem rather than a half-parsed BMC, and an
// inline password never echoed.
func FuzzInventoryBMC(f *testing.F) {
	for _, s := range []string{
		`{type: ipmi, address: 10.0.1.1, user: u, password_env: X}`,
		`{type: redfish, address: "[fe80::1]:443", user: u, password_file: /x, system_id: "1", tls_ca_file: /ca.pem}`,
		`{type: ipmi, address: 10.0.1.1, user: u, password_env: X, cipher_suite: 17}`,
		`{type: ipmi, address: 10.0.1.1, user: u, password_env: X, cipher_suite: "3"}`,
		`{type: ipmi, address: 10.0.1.1, user: u, password: SECRETPW}`,
		`{type: ipmi, address: 10.0.1.1, user: u, password_env: X, password_file: /y}`,
		`{type: ipmi, address: 10.0.1.1, user: [a], password_env: X}`,
		`&a {type: ipmi, address: *a}`,
		`{<<: {type: ipmi}, address: 10.0.1.1, user: u, password_env: X}`,
		`{type: ipmi, address: "10.0.1.1:99999", user: u, password_env: X}`,
		`null`, `""`, `7`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, bmc string) {
		if strings.ContainsAny(bmc, "\n\r") {
			return // one flow value: a newline would change the document's shape
		}
		data := bmcInventory(bmc, "")
		inv, err := ParseInventory([]byte(data), ".")
		if err != nil {
			if strings.Contains(bmc, "SECRETPW") && strings.Contains(bmc, "password:") {
				assert.NotContains(t, err.Error(), "SECRETPW")
			}
			return
		}
		if h := inv.hostByName("web01"); h != nil && h.BMC != nil {
			require.NoError(t, h.BMC.Validate(), "a BMC that passed the check does not validate")
		}
	})
}
