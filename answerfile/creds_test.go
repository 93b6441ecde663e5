package answerfile

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequireCredentials(t *testing.T) {
	demo := DemoSpec("").Root.Password
	otherSalt, err := SHA512Crypt(DemoPassword, "$6$rounds=5000$othersalt")
	require.NoError(t, err)
	defaultRounds, err := SHA512Crypt(DemoPassword, "$6$anothersalt")
	require.NoError(t, err)
	own, err := SHA512Crypt("operator-secret", "$6$opsalt")
	require.NoError(t, err)
	slow := "$6$rounds=999999999$salt$" + strings.Repeat("x", 86)
	key := []string{"ssh-ed25519 AAAA op@lab"}
	for _, tc := range []struct {
		name      string
		spec      Spec
		allowDemo bool
		err       error
		demo      []string
	}{
		{"nothing", Spec{}, false, ErrNoCredentials, nil},
		{"nothing, demo allowed adds ops", Spec{}, true, nil, []string{"root", "ops"}},
		{"demo spec", *DemoSpec(""), false, ErrNoCredentials, nil},
		{"demo spec allowed", *DemoSpec(""), true, nil, []string{"root", "ops"}},
		{"demo plaintext", Spec{Root: Root{Password: Password{Plain: DemoPassword}}}, false, ErrNoCredentials, nil},
		{"demo plaintext allowed", Spec{Root: Root{Password: Password{Plain: DemoPassword}}}, true, nil, []string{"root", "ops"}},
		{"demo hash, other salt", Spec{Root: Root{Password: Password{Hash: otherSalt}}}, false, ErrNoCredentials, nil},
		{"demo hash, default rounds", Spec{Root: Root{Password: Password{Hash: defaultRounds}}}, false, ErrNoCredentials, nil},
		{"own hash", Spec{Root: Root{Password: Password{Hash: own}}}, false, nil, nil},
		{"own plaintext", Spec{Root: Root{Password: Password{Plain: "operator-secret"}}}, false, nil, nil},
		{"own key", Spec{Root: Root{SSHKeys: key}}, false, nil, nil},
		{"user key", Spec{Users: []User{{Name: "u", SSHKeys: key}}}, false, nil, nil},
		{"slow hash is taken as own", Spec{Root: Root{Password: Password{Hash: slow}}}, false, nil, nil},
		{"own root, demo user", Spec{Root: Root{Password: Password{Hash: own}},
			Users: []User{{Name: "ops", Password: demo}}}, true, ErrDemoMixed, nil},
		{"key, demo root", Spec{Root: Root{Password: demo},
			Users: []User{{Name: "ops", SSHKeys: key}}}, false, ErrDemoMixed, nil},
		{"own plaintext, demo plaintext user", Spec{Root: Root{Password: Password{Plain: "operator-secret"}},
			Users: []User{{Name: "ops", Password: Password{Plain: DemoPassword}}}}, false, ErrDemoMixed, nil},
		{"demo allowed fills users without password", Spec{Users: []User{{Name: "a"}, {Name: "b"}}}, true, nil, []string{"root", "a", "b"}},
	} {
		s := tc.spec
		start := time.Now()
		got, err := s.RequireCredentials(tc.allowDemo)
		assert.Less(t, time.Since(start), time.Second, tc.name)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.demo, got, tc.name)
		if tc.demo != nil {
			assert.Equal(t, tc.demo, s.Credentials().Demo, "the spec now carries them: %s", tc.name)
			assert.False(t, s.Credentials().Own, tc.name)
		}
	}
}

func TestRequireCredentialsErrorNamesAccountsNotSecrets(t *testing.T) {
	s := Spec{Root: Root{Password: Password{Plain: "operator-secret"}},
		Users: []User{{Name: "ops", Password: Password{Plain: DemoPassword}}}}
	_, err := s.RequireCredentials(true)
	require.ErrorIs(t, err, ErrDemoMixed)
	assert.Contains(t, err.Error(), "ops")
	assert.NotContains(t, err.Error(), "operator-secret")
}

func TestDemoWarning(t *testing.T) {
	assert.Contains(t, DemoWarning([]string{"root", "ops"}), `"pxekit-demo" on account(s) root, ops`)
}
