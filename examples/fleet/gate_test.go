package main

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
)

func TestDecide(t *testing.T) {
	h := &Host{Hostname: "web01", Profile: "debian12"}
	at := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	rec := func(s InstallState) Record { return Record{State: s, Changed: at} }
	for _, tc := range []struct {
		name    string
		host    *Host
		rec     Record
		seen    bool
		unknown string
		want    Action
		why     string
	}{
		{"listed, never seen", h, Record{}, false, UnknownLocal, ActInstall, "listed, not installed yet"},
		{"listed, re-armed", h, rec(Pending), true, UnknownIgnore, ActInstall, "listed, not installed yet"},
		{"listed, installing: a reboot mid-install installs again", h, rec(Installing), true, UnknownLocal, ActInstall, "installing since 2026-05-04T03:02:01Z"},
		{"listed, installed", h, rec(Installed), true, UnknownMenu, ActLocal, "installed (installed, reported 2026-05-04T03:02:01Z); re-arm with reinstall"},
		{"listed, booted", h, rec(Booted), true, UnknownLocal, ActLocal, "installed (booted, reported 2026-05-04T03:02:01Z)"},
		{"listed, failed: kept for a person, not wiped again", h, rec(Failed), true, UnknownLocal, ActLocal, "installed (failed, reported 2026-05-04T03:02:01Z)"},
		{"unknown under local", nil, Record{}, false, UnknownLocal, ActLocal, "unknown MAC: local boot"},
		{"unknown under an empty policy is local", nil, Record{}, false, "", ActLocal, "unknown MAC: local boot"},
		{"unknown under menu", nil, Record{}, false, UnknownMenu, ActMenu, "unknown MAC: menu"},
		{"unknown under ignore", nil, Record{}, false, UnknownIgnore, ActIgnore, "unknown MAC: ignored"},
		{"unknown installing from the menu keeps its menu", nil, rec(Installing), true, UnknownMenu, ActMenu, "unknown MAC: menu"},
		{"unknown that reported boots its disk under menu", nil, rec(Installed), true, UnknownMenu, ActLocal, "installed (installed"},
		{"unknown that reported boots its disk under ignore", nil, rec(Failed), true, UnknownIgnore, ActLocal, "installed (failed"},
		{"unknown re-armed gets its policy again", nil, rec(Pending), true, UnknownMenu, ActMenu, "unknown MAC: menu"},
		{"a record not seen is ignored", h, rec(Installed), false, UnknownLocal, ActInstall, "listed, not installed yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(tc.host, tc.rec, tc.seen, tc.unknown)
			assert.Equal(t, tc.want, d.Action)
			assert.Contains(t, d.Why, tc.why)
			assert.Same(t, tc.host, d.Host)
		})
	}
}

// gateFor returns a gate over the test inventory and a state file, with a
// clock the test moves.
func gateFor(t *testing.T, unknown string) (*Gate, *Store, *time.Time) {
	t.Helper()
	inv, err := ParseInventory([]byte(testInventory("nb", unknown)), ".")
	require.NoError(t, err)
	store, err := OpenStore(filepath.Join(t.TempDir(), "state.json"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	g := NewGate(inv, store, nil)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	g.now = func() time.Time { return now }
	return g, store, &now
}

func TestGateInstallOnce(t *testing.T) {
	g, store, now := gateFor(t, UnknownLocal)
	web, db := mustMAC(t, macWeb), mustMAC(t, macDB)

	require.Equal(t, ActInstall, g.Decide(web).Action)
	g.AnswerServed(web, "web01")
	r, _ := store.Get(macWeb)
	assert.Equal(t, Installing, r.State)
	started := r.Changed

	// The installer fetches the file again (a retry, a second stage): the
	// start of the install stays when it first happened.
	*now = now.Add(time.Minute)
	g.AnswerServed(web, "web01")
	r, _ = store.Get(macWeb)
	assert.Equal(t, started, r.Changed)
	assert.Equal(t, ActInstall, g.Decide(web).Action, "a reboot mid-install installs again")

	*now = now.Add(time.Hour)
	r, err := g.Reported(web, Report{Report: answerfile.Report{Hostname: "whatever-the-installer-says", OS: "debian-12", Status: "ok",
		Checks: []Check{{Name: "user ops", OK: true}}}})
	require.NoError(t, err)
	assert.Equal(t, Installed, r.State)
	assert.Equal(t, "web01", r.Hostname, "the inventory names a listed host, not the report")
	require.NotNil(t, r.Report)
	assert.Equal(t, *now, r.Report.At)
	d := g.Decide(web)
	assert.Equal(t, ActLocal, d.Action)
	assert.Contains(t, d.Why, "installed (installed")

	// A failed install is not retried: that would wipe the evidence, and
	// fail again, forever.
	g.AnswerServed(db, "db01")
	r, err = g.Reported(db, Report{Report: answerfile.Report{Status: "failed", Checks: []Check{{Name: "service nginx"}}}})
	require.NoError(t, err)
	assert.Equal(t, Failed, r.State)
	assert.Equal(t, ActLocal, g.Decide(db).Action)
	for _, status := range []string{"unknown", "ok"} {
		_, err = g.Reported(db, Report{Report: answerfile.Report{Status: status}})
		require.ErrorIs(t, err, ErrReplay, "each stage is taken once")
		assert.Equal(t, ActLocal, g.Decide(db).Action, "a second report (%s) does not re-arm", status)
	}
	r, err = g.Reported(db, Report{Report: answerfile.Report{Stage: answerfile.StageBooted, Status: "ok"}})
	require.NoError(t, err)
	assert.Equal(t, Failed, r.State, "a first boot that went well does not hide the failed install")

	// Re-arming, by hostname in any case and by MAC in any form.
	for _, name := range []string{"WEB01", "52-54-00-F1-00-02"} {
		r, err = g.Reinstall(name)
		require.NoError(t, err, name)
		assert.Equal(t, Pending, r.State, name)
		assert.Nil(t, r.Report, "the old report does not describe the next install")
	}
	assert.Equal(t, ActInstall, g.Decide(web).Action)
	assert.Equal(t, ActInstall, g.Decide(db).Action)
	r, _ = store.Get(macDB)
	assert.Equal(t, "db01", r.Hostname)

	_, err = g.Reinstall("nosuchhost")
	assert.ErrorContains(t, err, "no such host")
	_, err = g.Reinstall(macNew)
	assert.ErrorContains(t, err, "no such host in the inventory or the state", "an unknown MAC never seen has nothing to re-arm")
	_, seen := store.Get(macNew)
	assert.False(t, seen, "a refused reinstall records nothing")
}

func TestGateUnknownMAC(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   Action
	}{
		{UnknownLocal, ActLocal},
		{UnknownMenu, ActMenu},
		{UnknownIgnore, ActIgnore},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			g, store, _ := gateFor(t, tc.policy)
			mac := mustMAC(t, macNew)
			assert.Equal(t, tc.want, g.Decide(mac).Action)
			assert.Nil(t, g.Decide(mac).Host)
			assert.Equal(t, ActInstall, g.Decide(mustMAC(t, macWeb)).Action, "the policy is for unlisted MACs only")
			for _, r := range store.All() {
				assert.NotEqual(t, macNew, r.MAC, "deciding writes nothing")
				assert.Equal(t, Pending, r.State, "listed hosts have a record for their token only")
			}
		})
	}

	// A person picked a profile from the menu: the machine installs, reports
	// and from then on boots its disk, like a listed host.
	g, store, _ := gateFor(t, UnknownMenu)
	mac := mustMAC(t, macNew)
	g.AnswerServed(mac, "pxe-525400990009")
	_, seen := store.Get(macNew)
	assert.False(t, seen, "an unknown MAC gets a record only when it reports")
	assert.Equal(t, ActMenu, g.Decide(mac).Action, "installing: the menu still comes up on a reboot")
	tok := g.Token(mac)
	r, err := g.Reported(mac, Report{Report: answerfile.Report{Hostname: "pxe-525400990009", Status: "ok"}})
	require.NoError(t, err)
	assert.Equal(t, "pxe-525400990009", r.Hostname, "an unlisted host is named by its report")
	assert.Equal(t, ActLocal, g.Decide(mac).Action)
	assert.Equal(t, tok, r.Token, "it keeps the token it installed with")
	r, err = g.Reinstall(mac.String())
	require.NoError(t, err, "an unknown MAC in the state is re-armed by MAC")
	assert.Equal(t, Pending, r.State)
	assert.NotEqual(t, tok, g.Token(mac))
	assert.Equal(t, ActMenu, g.Decide(mac).Action)
	assert.Len(t, store.All(), 4, "the three listed hosts and it")
}

func TestGateTokens(t *testing.T) {
	g, store, _ := gateFor(t, UnknownMenu)
	web, db, unknown := mustMAC(t, macWeb), mustMAC(t, macDB), mustMAC(t, macNew)
	tokens := map[string]bool{}
	for _, mac := range []net.HardwareAddr{web, db, unknown} {
		tok := g.Token(mac)
		assert.Regexp(t, `^[0-9a-f]{32}$`, tok, "128 bits in hex")
		assert.Equal(t, tok, g.Token(mac), "stable")
		assert.True(t, g.TokenOK(mac, tok))
		assert.False(t, g.TokenOK(mac, ""))
		assert.False(t, g.TokenOK(mac, tok[:31]))
		tokens[tok] = true
	}
	assert.Len(t, tokens, 3, "one per host")
	r, _ := store.Get(macWeb)
	assert.Equal(t, g.Token(web), r.Token, "a listed host's token is in the state")
	_, seen := store.Get(macNew)
	assert.False(t, seen, "an unknown MAC's token is derived, not stored")

	// A second gate over the same state (a restart) gives the same tokens.
	g2 := NewGate(g.inv, store, nil)
	assert.Equal(t, g.Token(web), g2.Token(web))
	assert.Equal(t, g.Token(unknown), g2.Token(unknown))

	old := g.Token(web)
	_, err := g.Reinstall("web01")
	require.NoError(t, err)
	assert.NotEqual(t, old, g.Token(web), "re-arming rotates the token")
	assert.False(t, g.TokenOK(web, old))
}

func TestGateReportStages(t *testing.T) {
	g, store, now := gateFor(t, UnknownMenu)
	g.BootTimeout = 20 * time.Minute
	web := mustMAC(t, macWeb)
	g.AnswerServed(web, "web01")
	r, err := g.Reported(web, Report{Report: answerfile.Report{Status: "ok"}})
	require.NoError(t, err)
	assert.Equal(t, Installed, r.State)
	assert.Equal(t, answerfile.StageInstalled, r.Report.Stage, "no stage is the installer's")
	assert.False(t, g.Overdue(r))
	*now = now.Add(21 * time.Minute)
	r, _ = store.Get(macWeb)
	assert.True(t, g.Overdue(r), "installed, no booted report within the timeout")
	assert.Equal(t, ActLocal, g.Decide(web).Action, "an overdue host still boots its disk")

	r, err = g.Reported(web, Report{Report: answerfile.Report{Stage: answerfile.StageBooted, Status: "ok", Checks: []Check{{Name: "sshd listening", OK: true}}}})
	require.NoError(t, err)
	assert.Equal(t, Booted, r.State)
	assert.False(t, g.Overdue(r))
	require.NotNil(t, r.Boot)
	assert.Equal(t, *now, r.Boot.At)
	_, err = g.Reported(web, Report{Report: answerfile.Report{Stage: answerfile.StageBooted, Status: "failed"}})
	assert.ErrorIs(t, err, ErrReplay)
	r, _ = store.Get(macWeb)
	assert.Equal(t, Booted, r.State, "a replay changes nothing")

	// A failed first boot names the check; the host still boots its disk.
	db := mustMAC(t, macDB)
	_, err = g.Reported(db, Report{Report: answerfile.Report{Status: "ok"}})
	require.NoError(t, err)
	r, err = g.Reported(db, Report{Report: answerfile.Report{Stage: answerfile.StageBooted, Status: "failed", Checks: []Check{{Name: "sshd listening"}}}})
	require.NoError(t, err)
	assert.Equal(t, Failed, r.State)
	assert.Equal(t, ActLocal, g.Decide(db).Action)

	// The booted report may come without the installer's (lost).
	app := mustMAC(t, macApp)
	r, err = g.Reported(app, Report{Report: answerfile.Report{Stage: answerfile.StageBooted, Status: "ok"}})
	require.NoError(t, err)
	assert.Equal(t, Booted, r.State)
	r, err = g.Reported(app, Report{Report: answerfile.Report{Status: "ok"}})
	require.NoError(t, err, "the installer's report, late")
	assert.Equal(t, Booted, r.State, "does not move it back")
}

func TestGateBoundsUnlisted(t *testing.T) {
	g, store, _ := gateFor(t, UnknownMenu)
	// The state holds MaxUnlisted machines from the menu already.
	macs := make([]string, MaxUnlisted)
	for i := range macs {
		macs[i] = net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)}.String()
	}
	require.NoError(t, store.UpdateMany(macs, func(r *Record) { r.State = Installed }))
	_, err := g.Reported(mustMAC(t, macNew), Report{Report: answerfile.Report{Status: "ok"}})
	assert.ErrorIs(t, err, ErrFull)
	_, seen := store.Get(macNew)
	assert.False(t, seen)
	_, err = g.Reported(mustMAC(t, macWeb), Report{Report: answerfile.Report{Status: "ok"}})
	assert.NoError(t, err, "listed hosts are not counted")

	// Pins: listed hosts always, made-up MACs up to a bound.
	for i := 0; i < maxPins+100; i++ {
		g.Pin(net.HardwareAddr{0x02, 1, 0, 0, byte(i >> 8), byte(i)}, netip.MustParseAddr("10.9.0.1"))
	}
	g.Pin(mustMAC(t, macWeb), netip.MustParseAddr("10.0.0.11"))
	assert.LessOrEqual(t, len(g.pins), maxPins+len(g.inv.Hosts))
	ok, pinned := g.AddrOK(mustMAC(t, macWeb), netip.MustParseAddr("10.0.0.12"))
	assert.False(t, ok)
	assert.Equal(t, "10.0.0.11", pinned.String())
	ok, _ = g.AddrOK(mustMAC(t, macWeb), netip.MustParseAddr("::ffff:10.0.0.11"))
	assert.True(t, ok)
	ok, _ = g.AddrOK(mustMAC(t, macDB), netip.MustParseAddr("10.0.0.99"))
	assert.True(t, ok, "no address known: the token alone")
}
