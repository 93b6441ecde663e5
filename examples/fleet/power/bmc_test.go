package power

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParseBMC(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		in   map[string]any
		want BMC
		err  string // substring; "" for success
	}{
		{name: "ipmi minimal",
			in:   map[string]any{"type": "ipmi", "address": "10.0.1.21", "user": "admin", "password_env": "BMC_PW"},
			want: BMC{Type: IPMI, Address: "10.0.1.21", User: "admin", PasswordEnv: "BMC_PW"}},
		{name: "ipmi full",
			in: map[string]any{"type": "IPMI", "address": "bmc-web01.example:6230", "user": "root", "password_file": "/etc/pxekit/bmc/web01",
				"cipher_suite": 3, "boot_mode": "legacy"},
			want: BMC{Type: IPMI, Address: "bmc-web01.example:6230", User: "root", PasswordFile: "/etc/pxekit/bmc/web01", CipherSuite: 3, BootMode: BootLegacy}},
		{name: "cipher as string", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password_env": "P", "cipher_suite": "17"},
			want: BMC{Type: IPMI, Address: "h", User: "u", PasswordEnv: "P", CipherSuite: 17}},
		{name: "redfish full",
			in: map[string]any{"type": "redfish", "address": "[fd00::21]:8443", "user": "admin", "password_env": "BMC_PW",
				"system_id": "System.Embedded.1", "tls_fingerprint": fp, "boot_mode": "uefi"},
			want: BMC{Type: Redfish, Address: "[fd00::21]:8443", User: "admin", PasswordEnv: "BMC_PW", SystemID: "System.Embedded.1", TLSFingerprint: fp, BootMode: BootUEFI}},
		{name: "ipv6 without port", in: map[string]any{"type": "redfish", "address": "fd00::21", "user": "u", "password_env": "P", "tls_ca_file": "/ca.pem"},
			want: BMC{Type: Redfish, Address: "fd00::21", User: "u", PasswordEnv: "P", TLSCAFile: "/ca.pem"}},

		{name: "inline password", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password": "hunter2"}, err: "not accepted inline"},
		{name: "unknown key", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password_env": "P", "pasword_file": "x"}, err: `unknown key "pasword_file"`},
		{name: "no type", in: map[string]any{"address": "h", "user": "u", "password_env": "P"}, err: "type: required"},
		{name: "bad type", in: map[string]any{"type": "amt", "address": "h", "user": "u", "password_env": "P"}, err: "neither ipmi nor redfish"},
		{name: "no address", in: map[string]any{"type": "ipmi", "user": "u", "password_env": "P"}, err: "address: required"},
		{name: "bad port", in: map[string]any{"type": "ipmi", "address": "h:99999", "user": "u", "password_env": "P"}, err: "not 1-65535"},
		{name: "bad host", in: map[string]any{"type": "ipmi", "address": "bmc web01", "user": "u", "password_env": "P"}, err: "not a host name"},
		{name: "no user", in: map[string]any{"type": "ipmi", "address": "h", "password_env": "P"}, err: "user: required"},
		{name: "long ipmi user", in: map[string]any{"type": "ipmi", "address": "h", "user": strings.Repeat("u", 17), "password_env": "P"}, err: "at most 16"},
		{name: "no password", in: map[string]any{"type": "ipmi", "address": "h", "user": "u"}, err: "one is required"},
		{name: "both passwords", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password_env": "P", "password_file": "/f"}, err: "not both"},
		{name: "bad env name", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password_env": "1-X"}, err: "not an environment variable name"},
		{name: "cipher 1", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password_env": "P", "cipher_suite": 1}, err: "1 is not supported"},
		{name: "cipher on redfish", in: map[string]any{"type": "redfish", "address": "h", "user": "u", "password_env": "P", "cipher_suite": 17}, err: "only for type ipmi"},
		{name: "tls on ipmi", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password_env": "P", "tls_ca_file": "/ca"}, err: "only for type redfish"},
		{name: "ca and pin", in: map[string]any{"type": "redfish", "address": "h", "user": "u", "password_env": "P", "tls_ca_file": "/ca", "tls_fingerprint": fp}, err: "not both"},
		{name: "short pin", in: map[string]any{"type": "redfish", "address": "h", "user": "u", "password_env": "P", "tls_fingerprint": "abcd"}, err: "64 hex digits"},
		{name: "bad mode", in: map[string]any{"type": "ipmi", "address": "h", "user": "u", "password_env": "P", "boot_mode": "efi"}, err: "neither uefi nor legacy"},
		{name: "bad system id", in: map[string]any{"type": "redfish", "address": "h", "user": "u", "password_env": "P", "system_id": "../x"}, err: "not a Redfish resource Id"},
		{name: "wrong type", in: map[string]any{"type": "ipmi", "address": 623, "user": "u", "password_env": "P"}, err: "want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBMC(tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrConfig)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBMCYAML(t *testing.T) {
	var inv struct {
		Hosts []struct {
			Hostname string `yaml:"hostname"`
			BMC      *BMC   `yaml:"bmc"`
		} `yaml:"hosts"`
	}
	src := `
hosts:
  - hostname: web01
    bmc: {type: ipmi, address: 10.0.1.21, user: admin, password_env: BMC_WEB01}
  - hostname: web02
  - hostname: db01
    bmc:
      type: redfish
      address: 10.0.1.31
      user: admin
      password_file: /etc/pxekit/bmc/db01
      tls_fingerprint: "` + strings.Repeat("AB:", 31) + `AB"
`
	require.NoError(t, yaml.Unmarshal([]byte(src), &inv))
	require.Len(t, inv.Hosts, 3)
	assert.Equal(t, &BMC{Type: IPMI, Address: "10.0.1.21", User: "admin", PasswordEnv: "BMC_WEB01"}, inv.Hosts[0].BMC)
	assert.Nil(t, inv.Hosts[1].BMC)
	assert.Equal(t, Redfish, inv.Hosts[2].BMC.Type)

	err := yaml.Unmarshal([]byte("bmc: {type: ipmi, address: h, user: u, password: s3cret}\n"), &struct {
		BMC BMC `yaml:"bmc"`
	}{})
	require.ErrorIs(t, err, ErrConfig)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Contains(t, err.Error(), "line 1")

	err = yaml.Unmarshal([]byte("bmc: [1, 2]\n"), &struct {
		BMC BMC `yaml:"bmc"`
	}{})
	require.ErrorIs(t, err, ErrConfig)
}

func TestPasswordReference(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	t.Setenv("PXEKIT_TEST_PW_SET", "from-env")
	for _, tc := range []struct {
		name string
		b    BMC
		want string
		err  string
	}{
		{name: "env", b: BMC{PasswordEnv: "PXEKIT_TEST_PW_SET"}, want: "from-env"},
		{name: "env unset", b: BMC{PasswordEnv: "PXEKIT_TEST_PW_UNSET_XYZ"}, err: "PXEKIT_TEST_PW_UNSET_XYZ is not set"},
		{name: "file newline", b: BMC{PasswordFile: write("a", "from-file\n")}, want: "from-file"},
		{name: "file crlf", b: BMC{PasswordFile: write("b", "from-file\r\n")}, want: "from-file"},
		{name: "file no newline", b: BMC{PasswordFile: write("c", "pw with spaces ")}, want: "pw with spaces "},
		{name: "file empty", b: BMC{PasswordFile: write("d", "\n")}, err: "is empty"},
		{name: "file two lines", b: BMC{PasswordFile: write("e", "secret-one\nsecret-two\n")}, err: "more than one line"},
		{name: "file huge", b: BMC{PasswordFile: write("f", strings.Repeat("x", maxSecretBytes+1))}, err: "over 4096 bytes"},
		{name: "file missing", b: BMC{PasswordFile: filepath.Join(dir, "missing")}, err: "no such file"},
		{name: "directory", b: BMC{PasswordFile: dir}, err: "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.b.password()
			if tc.err != "" {
				require.ErrorIs(t, err, ErrConfig)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "secret-one")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	// Open resolves it, and fails clearly when it cannot.
	_, err := Open(BMC{Type: IPMI, Address: "127.0.0.1", User: "u", PasswordEnv: "PXEKIT_TEST_PW_UNSET_XYZ"}, Options{})
	require.ErrorIs(t, err, ErrConfig)
}

func FuzzParseBMC(f *testing.F) {
	f.Add("bmc: {type: ipmi, address: 10.0.1.21, user: admin, password_env: BMC_PW, cipher_suite: 17}")
	f.Add("bmc: {type: redfish, address: '[fd00::1]:443', user: a, password_file: /x, system_id: '1', tls_fingerprint: " + strings.Repeat("ab", 32) + "}")
	f.Add("bmc: {type: redfish, address: h, user: u, password: p}")
	f.Add("bmc: {type: ipmi, address: h, user: u, password_env: P, cipher_suite: 99999999999999999999}")
	f.Add("bmc: &a {type: ipmi, address: *a}")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		var doc struct {
			BMC *BMC `yaml:"bmc"`
		}
		done := make(chan error, 1)
		go func() { done <- yaml.Unmarshal([]byte(src), &doc) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("SLOW %q", src)
		}
		if err != nil || doc.BMC == nil {
			return
		}
		// Whatever parsed is valid, and parses the same way again from
		// its own fields.
		b := *doc.BMC
		require.NoError(t, b.Validate())
		m := map[string]any{}
		for k, v := range map[string]string{keyType: string(b.Type), keyAddress: b.Address, keyUser: b.User,
			keyPasswordEnv: b.PasswordEnv, keyPasswordFile: b.PasswordFile, keyBootMode: string(b.BootMode),
			keySystemID: b.SystemID, keyTLSCAFile: b.TLSCAFile, keyTLSFingerprint: b.TLSFingerprint} {
			if v != "" {
				m[k] = v
			}
		}
		if b.CipherSuite != 0 {
			m[keyCipherSuite] = b.CipherSuite
		}
		again, err := ParseBMC(m)
		require.NoError(t, err)
		require.Equal(t, b, again)
	})
}
