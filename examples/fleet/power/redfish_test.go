package power

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fingerprint(ts *httptest.Server) string {
	sum := sha256.Sum256(ts.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

// openFake returns a Redfish controller for ts, trusting it by its
// fingerprint unless over says otherwise.
func openFake(t *testing.T, ts *httptest.Server, f *fakeBMC, over BMC) Controller {
	t.Helper()
	t.Setenv("PXEKIT_TEST_RF_PW", f.pass)
	b := BMC{Type: Redfish, Address: strings.TrimPrefix(ts.URL, "https://"), User: f.user,
		PasswordEnv: "PXEKIT_TEST_RF_PW", SystemID: over.SystemID, TLSCAFile: over.TLSCAFile, TLSFingerprint: over.TLSFingerprint}
	if over.PasswordEnv != "" {
		b.PasswordEnv = over.PasswordEnv
	}
	if b.TLSCAFile == "" && b.TLSFingerprint == "" && over.User != "system-roots" {
		b.TLSFingerprint = fingerprint(ts)
	}
	c, err := Open(b, Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

const sys = "/redfish/v1/Systems/437XR1138R2"

func TestRedfishSessionFlow(t *testing.T) {
	f := newFakeBMC()
	f.requireIfMatch = true
	ts := startFake(t, f)
	c := openFake(t, ts, f, BMC{})
	ctx := context.Background()

	st, err := c.PowerState(ctx)
	require.NoError(t, err)
	assert.Equal(t, StateOff, st)
	assert.Equal(t, []string{
		"GET /redfish/v1/",
		`POST /redfish/v1/SessionService/Sessions {"Password":"fake-bmc-pw","UserName":"admin"}`,
		"GET /redfish/v1/Systems",
		"GET " + sys,
	}, f.requests())

	mode, err := c.SetNextBoot(ctx, BootUEFI)
	require.NoError(t, err)
	assert.Equal(t, BootUEFI, mode)
	assert.Equal(t, []string{
		"GET " + sys,
		"PATCH " + sys + ` {"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI","BootSourceOverrideTarget":"Pxe"}}`,
		"GET " + sys, // read back
	}, f.requests())
	_, boot, _ := f.state("437XR1138R2")
	assert.Equal(t, map[string]string{"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI"}, boot)

	require.NoError(t, c.PowerOn(ctx))
	assert.Equal(t, []string{
		"GET " + sys,
		"POST " + sys + `/Actions/ComputerSystem.Reset {"ResetType":"On"}`,
	}, f.requests())
	power, boot, last := f.state("437XR1138R2")
	assert.Equal(t, "On", power)
	assert.Equal(t, "Pxe/UEFI", last, "the system booted from the network, in UEFI mode")
	assert.Equal(t, "Disabled", boot["BootSourceOverrideEnabled"], "a Once override is consumed by the boot")

	require.NoError(t, c.PowerCycle(ctx))
	assert.Equal(t, []string{
		"GET " + sys,
		"POST " + sys + `/Actions/ComputerSystem.Reset {"ResetType":"ForceRestart"}`,
	}, f.requests())
	_, _, last = f.state("437XR1138R2")
	assert.Equal(t, "Hdd", last)

	require.NoError(t, c.Close(ctx))
	assert.Equal(t, []string{"DELETE /redfish/v1/SessionService/Sessions/1"}, f.requests())
	assert.Empty(t, f.tokens, "logged out")

	// Headers: the token on every authenticated request, never basic
	// auth; If-Match with the ETag on the PATCH.
	for _, h := range f.headers() {
		assert.Empty(t, h.Get("Authorization"))
		assert.Equal(t, "application/json", h.Get("Accept"))
	}
	hs := f.headers()
	assert.Empty(t, hs[0].Get("X-Auth-Token"), "service root without credentials")
	assert.Empty(t, hs[1].Get("X-Auth-Token"))
	assert.Equal(t, "tok-1-1eef", hs[2].Get("X-Auth-Token"))
	assert.Equal(t, `W/"0"`, hs[5].Get("If-Match"))
	assert.Equal(t, "application/json", hs[5].Get("Content-Type"))

	_, err = c.PowerState(ctx)
	require.Error(t, err, "calls after Close fail")
}

func TestRedfishWrongPassword(t *testing.T) {
	f := newFakeBMC()
	ts := startFake(t, f)
	t.Setenv("PXEKIT_TEST_RF_WRONG", "wrong-password-123")
	c := openFake(t, ts, f, BMC{PasswordEnv: "PXEKIT_TEST_RF_WRONG"})
	_, err := c.PowerState(context.Background())
	require.ErrorIs(t, err, ErrAuth)
	t.Logf("wrong password: %v", err)
	assert.False(t, IsTransient(err))
	assert.NotContains(t, err.Error(), "wrong-password-123")
	assert.Contains(t, err.Error(), "HTTP 401")
	assert.Equal(t, []string{
		"GET /redfish/v1/",
		`POST /redfish/v1/SessionService/Sessions {"Password":"wrong-password-123","UserName":"admin"}`,
	}, f.requests(), "one login attempt, then stop")

	// Basic authentication: the 401 comes from the first resource.
	f.noSessionService = true
	c = openFake(t, ts, f, BMC{PasswordEnv: "PXEKIT_TEST_RF_WRONG"})
	_, err = c.PowerState(context.Background())
	require.ErrorIs(t, err, ErrAuth)
	assert.NotContains(t, err.Error(), "wrong-password-123")
}

func TestRedfishBasicAuthFallback(t *testing.T) {
	f := newFakeBMC()
	f.noSessionService = true
	ts := startFake(t, f)
	c := openFake(t, ts, f, BMC{})
	ctx := context.Background()
	require.NoError(t, c.PowerOn(ctx))
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, []string{
		"GET /redfish/v1/",
		"GET /redfish/v1/Systems",
		"GET " + sys,
		"POST " + sys + `/Actions/ComputerSystem.Reset {"ResetType":"On"}`,
	}, f.requests(), "no session, no logout")
	hs := f.headers()
	assert.Empty(t, hs[0].Get("Authorization"))
	for _, h := range hs[1:] {
		assert.True(t, strings.HasPrefix(h.Get("Authorization"), "Basic "))
	}
}

func TestRedfishBootOverrideRefusals(t *testing.T) {
	ctx := context.Background()

	t.Run("mode refused, retried without it", func(t *testing.T) {
		f := newFakeBMC()
		f.rejectMode = true
		c := openFake(t, startFake(t, f), f, BMC{})
		_, _ = c.PowerState(ctx)
		f.requests()
		mode, err := c.SetNextBoot(ctx, BootUEFI)
		require.NoError(t, err)
		assert.Equal(t, BootAnyMode, mode, "reported: the mode was not applied")
		assert.Equal(t, []string{
			"GET " + sys,
			"PATCH " + sys + ` {"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI","BootSourceOverrideTarget":"Pxe"}}`,
			"PATCH " + sys + ` {"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe"}}`,
			"GET " + sys,
		}, f.requests())
	})

	t.Run("refused outright", func(t *testing.T) {
		f := newFakeBMC()
		f.rejectBoot = true
		c := openFake(t, startFake(t, f), f, BMC{})
		_, err := c.SetNextBoot(ctx, BootLegacy)
		require.ErrorIs(t, err, ErrBootOverride)
		t.Logf("refused: %v", err)
		assert.Contains(t, err.Error(), "read only property")
		assert.False(t, IsTransient(err))
	})

	t.Run("accepted but dropped", func(t *testing.T) {
		f := newFakeBMC()
		f.ignoreBoot = true
		c := openFake(t, startFake(t, f), f, BMC{})
		_, err := c.SetNextBoot(ctx, BootUEFI)
		require.ErrorIs(t, err, ErrBootOverride)
		assert.Contains(t, err.Error(), `reports target "None", enabled "Disabled"`)
	})
}

func TestRedfishResetTypes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		allowed    []string
		actionInfo bool
		cycle      string // ResetType sent by PowerCycle, or "" for ErrUnsupported
		on         string
	}{
		{name: "ForceRestart preferred", allowed: []string{"On", "ForceOff", "ForceRestart", "PowerCycle"}, cycle: "ForceRestart", on: "On"},
		{name: "PowerCycle only", allowed: []string{"ForceOn", "ForceOff", "PowerCycle"}, cycle: "PowerCycle", on: "ForceOn"},
		{name: "through ActionInfo", allowed: []string{"On", "PowerCycle"}, actionInfo: true, cycle: "PowerCycle", on: "On"},
		{name: "nothing usable", allowed: []string{"GracefulShutdown", "Nmi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeBMC()
			f.resetAllowed, f.actionInfo = tc.allowed, tc.actionInfo
			c := openFake(t, startFake(t, f), f, BMC{})
			err := c.PowerOn(ctx)
			if tc.on == "" {
				require.ErrorIs(t, err, ErrUnsupported)
				assert.Contains(t, err.Error(), "GracefulShutdown, Nmi")
				err = c.PowerCycle(ctx)
				require.ErrorIs(t, err, ErrUnsupported)
				return
			}
			require.NoError(t, err)
			require.NoError(t, c.PowerCycle(ctx))
			reqs := f.requests()
			assert.Contains(t, reqs, "POST "+sys+`/Actions/ComputerSystem.Reset {"ResetType":"`+tc.on+`"}`)
			assert.Contains(t, reqs, "POST "+sys+`/Actions/ComputerSystem.Reset {"ResetType":"`+tc.cycle+`"}`)
			if tc.actionInfo {
				assert.Contains(t, reqs, "GET "+sys+"/ResetActionInfo")
			}
		})
	}
}

func TestRedfishTLS(t *testing.T) {
	f := newFakeBMC()
	ts := startFake(t, f)
	ctx := context.Background()

	// httptest's certificate is signed by no CA this machine trusts.
	c := openFake(t, ts, f, BMC{User: "system-roots"})
	_, err := c.PowerState(ctx)
	require.ErrorIs(t, err, ErrTLS)
	t.Logf("unknown CA: %v", err)
	assert.Contains(t, err.Error(), "tls_ca_file")
	assert.Empty(t, f.requests(), "nothing sent before the certificate is trusted")

	// Its certificate as the CA file.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600))
	c = openFake(t, ts, f, BMC{TLSCAFile: ca})
	_, err = c.PowerState(ctx)
	require.NoError(t, err)

	// Pinned by fingerprint, colon-separated upper case as openssl prints it.
	fp := strings.ToUpper(fingerprint(ts))
	var pairs []string
	for i := 0; i < len(fp); i += 2 {
		pairs = append(pairs, fp[i:i+2])
	}
	c = openFake(t, ts, f, BMC{TLSFingerprint: strings.Join(pairs, ":")})
	_, err = c.PowerState(ctx)
	require.NoError(t, err)

	// Another pin fails.
	f.requests()
	c = openFake(t, ts, f, BMC{TLSFingerprint: strings.Repeat("ab", 32)})
	_, err = c.PowerState(ctx)
	require.ErrorIs(t, err, ErrTLS)
	assert.Empty(t, f.requests())

	// A CA file holding no certificate is a configuration error at Open.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not pem"), 0o600))
	t.Setenv("PXEKIT_TEST_RF_PW", "x")
	_, err = Open(BMC{Type: Redfish, Address: "127.0.0.1", User: "u", PasswordEnv: "PXEKIT_TEST_RF_PW", TLSCAFile: bad}, Options{})
	require.ErrorIs(t, err, ErrConfig)
}

func TestRedfishSystems(t *testing.T) {
	ctx := context.Background()
	f := newFakeBMC()
	f.systems = []string{"node1", "node2"}
	ts := startFake(t, f)
	c := openFake(t, ts, f, BMC{})
	_, err := c.PowerState(ctx)
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "2 systems (node1, node2): set bmc.system_id")
	assert.Contains(t, f.requests(), "DELETE /redfish/v1/SessionService/Sessions/1", "the session is not left behind")

	c = openFake(t, ts, f, BMC{SystemID: "node2"})
	require.NoError(t, c.PowerOn(ctx))
	power, _, _ := f.state("node2")
	assert.Equal(t, "On", power)
	power, _, _ = f.state("node1")
	assert.Equal(t, "", power, "node1 untouched")

	c = openFake(t, ts, f, BMC{SystemID: "node3"})
	_, err = c.PowerState(ctx)
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), `no system "node3"`)
}

func TestRedfishHostileService(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		hostile string
		want    string
	}{
		{"member-host", "not under /redfish/v1 of this service"},
		{"huge", "answer over"},
		{"redirect", "HTTP 302"},
	} {
		t.Run(tc.hostile, func(t *testing.T) {
			f := newFakeBMC()
			f.hostile = tc.hostile
			c := openFake(t, startFake(t, f), f, BMC{})
			_, err := c.PowerState(ctx)
			require.ErrorIs(t, err, ErrProtocol)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRedfishBusyAndExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFakeBMC()
	f.busy = 2
	ts := startFake(t, f)
	c := openFake(t, ts, f, BMC{})
	_, err := c.PowerState(ctx)
	require.ErrorIs(t, err, ErrBusy)
	assert.True(t, IsTransient(err))
	var st PowerState
	err = Retry(ctx, Backoff{Attempts: 3, Initial: time.Millisecond}, func(ctx context.Context) error {
		var err error
		st, err = c.PowerState(ctx)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, StateOff, st)

	// The service forgets the session: one new login, then success.
	f.requests()
	f.mu.Lock()
	f.expireSessions = true
	f.mu.Unlock()
	_, err = c.PowerState(ctx) // consumed by the expiry itself
	require.NoError(t, err)
	_, err = c.PowerState(ctx)
	require.NoError(t, err)
	reqs := f.requests()
	assert.Equal(t, 1, strings.Count(strings.Join(reqs, "\n"), "POST /redfish/v1/SessionService/Sessions"), reqs)
}

func TestRedfishUnreachable(t *testing.T) {
	ts := httptest.NewTLSServer(nil)
	addr := strings.TrimPrefix(ts.URL, "https://")
	ts.Close()
	t.Setenv("PXEKIT_TEST_RF_PW", "x")
	c, err := Open(BMC{Type: Redfish, Address: addr, User: "u", PasswordEnv: "PXEKIT_TEST_RF_PW"}, Options{Timeout: time.Second})
	require.NoError(t, err)
	_, err = c.PowerState(context.Background())
	require.ErrorIs(t, err, ErrUnreachable)
	assert.True(t, IsTransient(err))
}
