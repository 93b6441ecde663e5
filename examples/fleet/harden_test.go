package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
)

// These tests are the attacks of the hardening review on fleet's side.

func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrInventory), err.Error())
	var ie *InventoryError
	require.True(t, errors.As(err, &ie))
	return ie.Problems
}

func TestInventoryAliasBombRefused(t *testing.T) {
	// Each level holds ten aliases of the one before: about 200 bytes
	// that expand to 10^9 nodes.
	var b strings.Builder
	b.WriteString("profiles: {p: {os: debian-12, netboot: nb}}\ndefaults:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	start := time.Now()
	_, err := ParseInventory([]byte(b.String()), ".")
	p := problemsOf(t, err)
	require.Len(t, p, 1)
	assert.Contains(t, p[0], "aliases are expanded")
	assert.Less(t, time.Since(start), 2*time.Second)

	// A few aliases, as people use them, are fine.
	ok := "profiles:\n  a: &p {os: debian-12, netboot: nb, spec: {root: {ssh_keys: [k]}}}\n  b: *p\n"
	_, err = ParseInventory([]byte(ok), ".")
	require.NoError(t, err)
}

func TestInventoryFileSizeBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(p)
	require.NoError(t, err)
	_, err = f.WriteString("profiles: {p: {os: debian-12, netboot: nb}}\n")
	require.NoError(t, err)
	line := "# " + strings.Repeat("padding ", 16) + "\n"
	for n := 0; n <= MaxInventoryBytes; n += len(line) {
		_, err = f.WriteString(line)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	_, err = LoadInventory(p)
	problems := problemsOf(t, err)
	assert.Contains(t, problems[0], "over 4 MiB")
	assert.Contains(t, err.Error(), p, "the file is named")

	require.NoError(t, os.Mkdir(filepath.Join(t.TempDir(), "d"), 0o755))
	_, err = LoadInventory(t.TempDir())
	assert.ErrorContains(t, err, "not a regular file")
}

func TestInventoryRefusesGroupAndZeroMACs(t *testing.T) {
	inv := `defaults: {disk: {wipe: true}, root: {ssh_keys: ["ssh-ed25519 AAAA test"]}}
profiles: {p: {os: debian-12, netboot: nb}}
hosts:
  - {mac: "ff:ff:ff:ff:ff:ff", hostname: bcast, profile: p}
  - {mac: "01:00:5e:00:00:fb", hostname: mcast, profile: p}
  - {mac: "33-33-00-00-00-01", hostname: v6mcast, profile: p}
  - {mac: "00:00:00:00:00:00", hostname: zero, profile: p}
  - {mac: "52:54:00:00:00:01", hostname: fine, profile: p}
  - {mac: "02:00:00:00:00:01", hostname: local-admin, profile: p}
`
	_, err := ParseInventory([]byte(inv), ".")
	p := problemsOf(t, err)
	assert.Equal(t, []string{
		"hosts[0] (bcast): mac ff:ff:ff:ff:ff:ff: the broadcast address, not a machine's address",
		"hosts[1] (mcast): mac 01:00:5e:00:00:fb: a multicast address, not a machine's address",
		"hosts[2] (v6mcast): mac 33:33:00:00:00:01: a multicast address, not a machine's address",
		"hosts[3] (zero): mac 00:00:00:00:00:00: all zeros, not a machine's address",
	}, p)
}

func TestInventoryCredentialRule(t *testing.T) {
	demoHash := answerfile.DemoSpec("").Root.Password.Hash
	// The hash fleet.example.yaml used to carry: another salt, the same
	// public password.
	otherDemo, err := answerfile.SHA512Crypt(answerfile.DemoPassword, "$6$pxekitdemo")
	require.NoError(t, err)
	own, err := answerfile.SHA512Crypt("operator-secret", "$6$opsalt")
	require.NoError(t, err)
	const hosts = `
profiles:
  p: {os: debian-12, netboot: nb}
  q: {os: debian-12, netboot: nb, spec: {root: {password: {hash: %q}}}}
hosts:
  - {mac: "52:54:00:00:00:01", hostname: h1, profile: p}
  - {mac: "52:54:00:00:00:02", hostname: h2, profile: p}
  - {mac: "52:54:00:00:00:03", hostname: h3, profile: q}
`
	for _, tc := range []struct {
		name, inv string
		problems  []string
		warn      []string
	}{
		{"no credential", "defaults: {disk: {wipe: true}}\n" + fmt.Sprintf(hosts, own),
			[]string{"profile p (all 2 hosts): no password and no SSH key set", "demo_password: true"}, nil},
		{"no credential, opted in", "demo_password: true\ndefaults: {disk: {wipe: true}}\n" + fmt.Sprintf(hosts, own),
			nil, []string{"profile p: ", "account(s) root, ops"}},
		{"demo hash written out needs the opt-in", fmt.Sprintf("defaults: {disk: {wipe: true}, root: {password: {hash: %q}}}\n", otherDemo) + fmt.Sprintf(hosts, own),
			[]string{"profile p (all 2 hosts): no password and no SSH key set"}, nil},
		{"demo user next to the operator's root", fmt.Sprintf("defaults: {disk: {wipe: true}, users: [{name: ops, password: {hash: %q}}]}\n", demoHash) + fmt.Sprintf(hosts, own),
			[]string{"hosts[2] (h3): the public demo password is still on an account: ops"}, nil},
		{"opt-in does not allow mixing", fmt.Sprintf("demo_password: true\ndefaults: {disk: {wipe: true}, users: [{name: ops, password: {plain: %s}}]}\n", answerfile.DemoPassword) + fmt.Sprintf(hosts, own),
			[]string{"hosts[2] (h3): the public demo password is still on an account: ops"}, []string{"profile p: "}},
		{"menu installs follow the rule too", "unknown: menu\ndefaults: {disk: {wipe: true}}\nprofiles: {p: {os: debian-12, netboot: nb}}\n",
			[]string{"profile p (menu installs of unknown MACs): no password and no SSH key set"}, nil},
	} {
		inv, err := ParseInventory([]byte(tc.inv), ".")
		if tc.problems == nil {
			require.NoError(t, err, tc.name)
		} else {
			all := strings.Join(problemsOf(t, err), "\n")
			for _, p := range tc.problems {
				assert.Contains(t, all, p, tc.name)
			}
		}
		warn := strings.Join(inv.DemoWarnings(), "\n")
		if tc.warn == nil {
			assert.Empty(t, warn, tc.name)
		}
		for _, w := range tc.warn {
			assert.Contains(t, warn, w, tc.name)
		}
	}

	// Opted in, the hosts without credentials render the demo accounts.
	inv, err := ParseInventory([]byte("demo_password: true\ndefaults: {disk: {wipe: true}}\n"+fmt.Sprintf(hosts, own)), ".")
	require.NoError(t, err)
	h1 := inv.hostByName("h1")
	assert.Equal(t, demoHash, h1.spec.Root.Password.Hash)
	require.Len(t, h1.spec.Users, 1)
	assert.Equal(t, "ops", h1.spec.Users[0].Name)
	h3 := inv.hostByName("h3")
	assert.Equal(t, own, h3.spec.Root.Password.Hash, "a host with its own password gets no demo account")
	assert.Empty(t, h3.spec.Users)
}

func TestFleetContentMethodsAndPaths(t *testing.T) {
	s := startServer(t, writeInventory(t, UnknownLocal))
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "boot.ipxe", http.StatusMethodNotAllowed},
		{http.MethodPut, "status", http.StatusMethodNotAllowed},
		{http.MethodDelete, "hosts/52-54-00-f1-00-01/preseed.cfg", http.StatusMethodNotAllowed},
		{http.MethodGet, "%00", http.StatusBadRequest},
		{http.MethodGet, "hosts/%ff/boot.ipxe", http.StatusBadRequest},
		{http.MethodGet, strings.Repeat("a", 5000), http.StatusNotFound},
		{http.MethodGet, "api/report/52-54-00-f1-00-01", http.StatusMethodNotAllowed},
		{http.MethodPost, "api/report/%00", http.StatusBadRequest},
		// The API's POST routes keep working: this one wants a report.
		{http.MethodPost, "api/report/52-54-00-f1-00-01", http.StatusBadRequest},
	} {
		req, err := http.NewRequest(tc.method, s.http+tc.path, strings.NewReader("x"))
		require.NoError(t, err)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, resp.StatusCode, "%s %.40s", tc.method, tc.path)
		if tc.want == http.StatusMethodNotAllowed && !strings.HasPrefix(tc.path, "api/") {
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
		}
	}
}

func TestCheckCredentialsAlias(t *testing.T) {
	// answerfile's rule is the one fleet applies: a spot check that it is wired.
	inv, err := ParseInventory([]byte("profiles: {p: {os: debian-12, netboot: nb}}\nhosts: [{mac: \"52:54:00:00:00:01\", hostname: x, profile: p}]"), t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), answerfile.ErrNoCredentials.Error())
	assert.NotNil(t, inv)
}

func TestFleetNetbootTreeConfined(t *testing.T) {
	inventory := writeInventory(t, UnknownLocal)
	dir := filepath.Dir(inventory)
	outside := filepath.Join(t.TempDir(), "shadow")
	require.NoError(t, os.WriteFile(outside, []byte("SECRET"), 0o644))
	nb := filepath.Join(dir, "nb")
	require.NoError(t, os.Symlink(outside, filepath.Join(nb, "leak")))
	require.NoError(t, os.Symlink(filepath.Dir(outside), filepath.Join(nb, "outdir")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(nb, "fifo"), 0o644))
	s := startServer(t, inventory)

	for _, name := range []string{"leak", "outdir/shadow", "fifo", "", "debian-installer/", "debian-installer"} {
		code, body := httpGet(t, s.http+"profiles/debian12/boot/"+name)
		assert.Equal(t, http.StatusNotFound, code, "HTTP %q", name)
		assert.NotContains(t, body, "SECRET", name)
		assert.NotContains(t, body, "amd64", "no listing: %q", name)
		if name != "" && !strings.HasSuffix(name, "/") {
			out, err := tftpGet(t, s, "profiles/debian12/boot/"+name)
			assert.Error(t, err, "TFTP %q", name)
			assert.NotContains(t, out, "SECRET", name)
		}
	}
	code, body := httpGet(t, s.http+"profiles/debian12/boot/debian-installer/amd64/linux")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "fake kernel", body)
}

func TestInventorySpecPartsBounded(t *testing.T) {
	// Under the document's bound, but defaults would be copied, expanded,
	// into every host's spec.
	var b strings.Builder
	b.WriteString("profiles: {p: {os: debian-12, netboot: nb}}\nanchors:\n  big: &big {")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "k%d: v, ", i)
	}
	b.WriteString("}\ndefaults: {files: [*big, *big, *big]}\n")
	start := time.Now()
	_, err := ParseInventory([]byte(b.String()), ".")
	p := problemsOf(t, err)
	require.Len(t, p, 1)
	assert.Regexp(t, `^defaults: 120\d\d YAML nodes once its aliases are expanded, at most 8192`, p[0])
	assert.Less(t, time.Since(start), 2*time.Second)

	for _, tc := range []struct{ inv, want string }{
		{"profiles: {p: {os: debian-12, netboot: nb, spec: {x: [*big, *big, *big]}}}\n", "profile p: spec: "},
		{"profiles: {p: {os: debian-12, netboot: nb}}\nhosts: [{mac: '52:54:00:00:00:01', hostname: h, profile: p, overrides: {x: [*big, *big, *big]}}]\n", "hosts[0]: overrides: "},
	} {
		var big strings.Builder
		big.WriteString("x: &big [")
		for i := 0; i < 3000; i++ {
			big.WriteString("v, ")
		}
		big.WriteString("]\n")
		_, err := ParseInventory([]byte(big.String()+tc.inv), ".")
		p := problemsOf(t, err)
		require.Len(t, p, 1, tc.want)
		assert.Contains(t, p[0], tc.want)
	}
}
