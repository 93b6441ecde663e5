package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/examples/fleet/power"
)

// fakeBMC is a power.Controller that records what it is asked.
type fakeBMC struct {
	mu         sync.Mutex
	state      power.PowerState
	stateErr   error // PowerState fails with it
	refuseBoot bool  // SetNextBoot fails with ErrBootOverride
	dropMode   bool  // SetNextBoot takes PXE but not the mode flag
	calls      []string
	closed     bool

	// hold, when set, blocks PowerState until it is closed; active and
	// peak count the hosts being worked on at once.
	hold         chan struct{}
	active, peak *atomic.Int32
}

func (b *fakeBMC) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, s)
}

func (b *fakeBMC) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *fakeBMC) PowerState(ctx context.Context) (power.PowerState, error) {
	b.record("state")
	if b.active != nil {
		n := b.active.Add(1)
		defer b.active.Add(-1)
		for {
			p := b.peak.Load()
			if n <= p || b.peak.CompareAndSwap(p, n) {
				break
			}
		}
	}
	if b.hold != nil {
		select {
		case <-b.hold:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.stateErr
}

func (b *fakeBMC) PowerOn(ctx context.Context) error {
	b.record("on")
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state = power.StateOn
	return nil
}

func (b *fakeBMC) PowerCycle(ctx context.Context) error {
	b.record("cycle")
	return nil
}

func (b *fakeBMC) SetNextBoot(ctx context.Context, mode power.BootMode) (power.BootMode, error) {
	b.record("pxe " + string(mode))
	switch {
	case b.refuseBoot:
		return "", fmt.Errorf("%w: bmc: Set System Boot Options: Invalid data field in request", power.ErrBootOverride)
	case b.dropMode:
		return power.BootAnyMode, nil
	}
	return mode, nil
}

func (b *fakeBMC) Close(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// fakeBMCs opens the fake of each BMC address.
func fakeBMCs(bmcs map[string]*fakeBMC) func(power.BMC, power.Options) (power.Controller, error) {
	return func(b power.BMC, _ power.Options) (power.Controller, error) {
		if f := bmcs[b.Address]; f != nil {
			return f, nil
		}
		return nil, fmt.Errorf("%w: bmc.password_env: environment variable %s is not set or empty", power.ErrConfig, b.PasswordEnv)
	}
}

func testBMC(addr string) *power.BMC {
	return &power.BMC{Type: power.IPMI, Address: addr, User: "pxekit", PasswordEnv: "BMC_TEST"}
}

// powerFleet is the test fleet with BMCs on web01 and db01 (app01 has
// none), and a power controller over fakes.
func powerFleet(t *testing.T, parallel int, fakes map[string]*fakeBMC) (*fleet, *Store, *powerCtl, *syncBuffer) {
	t.Helper()
	f, store := newTestFleet(t, UnknownLocal, false)
	f.inv.hostByName("web01").BMC = testBMC("10.0.1.1")
	f.inv.hostByName("db01").BMC = testBMC("10.0.1.2")
	logs := &syncBuffer{}
	p := newPowerCtl(f, parallel, slog.New(slog.NewTextHandler(logs, nil)))
	p.open = fakeBMCs(fakes)
	p.backoff = power.Backoff{Attempts: 1}
	p.hostTimeout = 10 * time.Second
	f.power = p
	t.Cleanup(p.stop)
	return f, store, p, logs
}

func TestPowerTarget(t *testing.T) {
	withBMC := &Host{Hostname: "web01", BMC: testBMC("10.0.1.1")}
	without := &Host{Hostname: "app01"}
	for _, tc := range []struct {
		name string
		h    *Host
		rec  Record
		seen bool
		want bool
		why  string
	}{
		{"never seen: armed", withBMC, Record{}, false, true, "armed"},
		{"re-armed", withBMC, Record{State: Pending}, true, true, "armed"},
		{"installing: left alone", withBMC, Record{State: Installing}, true, false, "installing: not interrupted"},
		{"installed: never cycled", withBMC, Record{State: Installed}, true, false, "installed: re-arm it to reinstall"},
		{"booted: never cycled", withBMC, Record{State: Booted}, true, false, "booted: re-arm it to reinstall"},
		{"failed: never cycled", withBMC, Record{State: Failed}, true, false, "failed: re-arm it to reinstall"},
		{"no bmc", without, Record{}, false, false, "no bmc"},
		{"not listed", nil, Record{}, false, false, "not in the inventory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := powerTarget(tc.h, tc.rec, tc.seen)
			assert.Equal(t, tc.want, ok)
			assert.Equal(t, tc.why, why)
		})
	}
}

// waitPower waits until the status of mac satisfies cond.
func waitPower(t *testing.T, p *powerCtl, mac string, cond func(*PowerStatus) bool) *PowerStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s := p.get(mac); s != nil && cond(s) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("power status of %s: %+v", mac, p.get(mac))
	return nil
}

func settled(s *PowerStatus) bool {
	return s.Error != "" || s.State == power.StateOn && s.Action != "running" && s.Action != "queued" || strings.HasPrefix(s.Action, "skipped")
}

// At start only armed hosts with a BMC are powered: network boot first,
// then on (or cycle when on); installed hosts are not touched.
func TestPowerStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		web, db   *fakeBMC
		dbState   InstallState // "" leaves db01 armed
		webCalls  []string
		dbCalls   []string
		webAction string
		webNote   string
	}{
		{
			name: "off hosts: pxe then on", web: &fakeBMC{state: power.StateOff}, db: &fakeBMC{state: power.StateOff},
			webCalls: []string{"state", "pxe uefi", "on"}, dbCalls: []string{"state", "pxe uefi", "on"}, webAction: "power-on",
		},
		{
			name: "on host: pxe then cycle", web: &fakeBMC{state: power.StateOn}, db: &fakeBMC{state: power.StateOff},
			webCalls: []string{"state", "pxe uefi", "cycle"}, dbCalls: []string{"state", "pxe uefi", "on"}, webAction: "power-cycle",
		},
		{
			name: "installed host untouched", web: &fakeBMC{state: power.StateOff}, db: &fakeBMC{state: power.StateOn},
			dbState: Installed, webCalls: []string{"state", "pxe uefi", "on"}, webAction: "power-on",
		},
		{
			name: "booted host untouched", web: &fakeBMC{state: power.StateOn}, db: &fakeBMC{state: power.StateOn},
			dbState: Booted, webCalls: []string{"state", "pxe uefi", "cycle"}, webAction: "power-cycle",
		},
		{
			name: "override refused: powered anyway", web: &fakeBMC{state: power.StateOff, refuseBoot: true}, db: &fakeBMC{state: power.StateOff},
			webCalls: []string{"state", "pxe uefi", "on"}, dbCalls: []string{"state", "pxe uefi", "on"}, webAction: "power-on",
			webNote: "the BMC refused the network boot override; powered anyway (the firmware's boot order decides)",
		},
		{
			name: "uefi flag dropped", web: &fakeBMC{state: power.StateOff, dropMode: true}, db: &fakeBMC{state: power.StateOff},
			webCalls: []string{"state", "pxe uefi", "on"}, dbCalls: []string{"state", "pxe uefi", "on"}, webAction: "power-on",
			webNote: "the BMC refused the uefi flag; network boot set without it",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, store, p, logs := powerFleet(t, 10, map[string]*fakeBMC{"10.0.1.1": tc.web, "10.0.1.2": tc.db})
			if tc.dbState != "" {
				_, err := store.Update(macDB, func(r *Record) { r.State = tc.dbState })
				require.NoError(t, err)
			}
			p.start(context.Background())
			ws := waitPower(t, p, macWeb, settled)
			ds := waitPower(t, p, macDB, settled)
			p.stop()
			assert.Equal(t, tc.webCalls, tc.web.Calls())
			assert.Equal(t, tc.dbCalls, tc.db.Calls())
			assert.Empty(t, ws.Error)
			assert.Equal(t, tc.webAction, ws.Action)
			assert.Equal(t, power.StateOn, ws.State)
			assert.Equal(t, tc.webNote, ws.Note)
			assert.True(t, tc.web.closed, "controller not closed")
			if tc.dbState != "" {
				assert.Equal(t, "skipped: "+string(tc.dbState)+": re-arm it to reinstall", ds.Action)
			}
			if tc.web.refuseBoot {
				assert.Equal(t, 1, strings.Count(logs.String(), "boot override refused"), logs.String())
			}
			assert.Nil(t, p.get(macApp), "app01 has no bmc")
			// The status page carries it.
			for _, h := range f.status().Hosts {
				if h.MAC == macWeb {
					require.NotNil(t, h.Power)
					assert.Equal(t, "10.0.1.1", h.Power.BMC)
				}
			}
		})
	}
}

// A BMC error is shown, and the host is not powered.
func TestPowerErrorShown(t *testing.T) {
	web := &fakeBMC{stateErr: fmt.Errorf("%w: bmc 10.0.1.1: no answer in 20s", power.ErrUnreachable)}
	_, _, p, logs := powerFleet(t, 10, map[string]*fakeBMC{"10.0.1.1": web})
	p.start(context.Background())
	ws := waitPower(t, p, macWeb, settled)
	ds := waitPower(t, p, macDB, settled) // no fake: its password is "not set"
	assert.Contains(t, ws.Error, "no answer")
	assert.Equal(t, []string{"state"}, web.Calls())
	assert.Contains(t, ds.Error, "BMC_TEST is not set")
	assert.Contains(t, logs.String(), "power: failed")
}

// At most -power-parallel hosts are worked on at once.
func TestPowerParallel(t *testing.T) {
	var active, peak atomic.Int32
	hold := make(chan struct{})
	web := &fakeBMC{state: power.StateOff, hold: hold, active: &active, peak: &peak}
	db := &fakeBMC{state: power.StateOff, hold: hold, active: &active, peak: &peak}
	_, _, p, _ := powerFleet(t, 1, map[string]*fakeBMC{"10.0.1.1": web, "10.0.1.2": db})
	p.start(context.Background())
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(1), active.Load(), "both BMCs driven at once with -power-parallel 1")
	close(hold)
	waitPower(t, p, macWeb, settled)
	waitPower(t, p, macDB, settled)
	assert.Equal(t, int32(1), peak.Load())
}

// The reinstall API re-arms and, with -power, queues the host's network
// boot; the answer says so.
func TestReinstallPowers(t *testing.T) {
	db := &fakeBMC{state: power.StateOn}
	f, store, p, _ := powerFleet(t, 10, map[string]*fakeBMC{"10.0.1.2": db})
	_, err := store.Update(macDB, func(r *Record) { r.State = Booted })
	require.NoError(t, err)
	_, err = store.Update(macWeb, func(r *Record) { r.State = Booted })
	require.NoError(t, err)
	p.start(context.Background())
	waitPower(t, p, macDB, settled)
	require.Empty(t, db.Calls(), "a booted host was touched")

	w := call{method: "POST", target: "/api/hosts/db01/reinstall", from: "127.0.0.1:1000",
		header: map[string]string{ReinstallHeader: "1"}}.do(f.HTTPHandler())
	require.Equal(t, 200, w.Code, w.Body.String())
	var resp map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	assert.Equal(t, "queued", resp["power"])
	assert.Equal(t, "pending", resp["state"])
	s := waitPower(t, p, macDB, func(s *PowerStatus) bool { return s.Action == "power-cycle" && s.State == power.StateOn })
	assert.Empty(t, s.Error)
	assert.Equal(t, []string{"state", "pxe uefi", "cycle"}, db.Calls())

	// app01 has no BMC: re-armed, not powered.
	w = call{method: "POST", target: "/api/hosts/app01/reinstall", from: "127.0.0.1:1000",
		header: map[string]string{ReinstallHeader: "1"}}.do(f.HTTPHandler())
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), `"power":"no bmc"`)
}

// Without -power the reinstall answer is what it was.
func TestReinstallWithoutPower(t *testing.T) {
	f, _ := newTestFleet(t, UnknownLocal, false)
	w := call{method: "POST", target: "/api/hosts/db01/reinstall", from: "127.0.0.1:1000",
		header: map[string]string{ReinstallHeader: "1"}}.do(f.HTTPHandler())
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.NotContains(t, w.Body.String(), `"power"`)
}

// A host queued while armed but installed before its turn is not cycled.
func TestPowerRechecksBeforeActing(t *testing.T) {
	hold := make(chan struct{})
	var active, peak atomic.Int32
	web := &fakeBMC{state: power.StateOff, hold: hold, active: &active, peak: &peak}
	db := &fakeBMC{state: power.StateOn}
	f, store, p, _ := powerFleet(t, 1, map[string]*fakeBMC{"10.0.1.1": web, "10.0.1.2": db})
	dbHost := f.inv.hostByName("db01")
	dbBMC := dbHost.BMC
	dbHost.BMC = nil
	p.start(context.Background()) // web01 takes the one slot...
	require.Eventually(t, func() bool { return active.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	dbHost.BMC = dbBMC
	require.Equal(t, "queued", p.queue(dbHost)) // ...db01 waits for it, armed
	time.Sleep(50 * time.Millisecond)
	_, err := store.Update(macDB, func(r *Record) { r.State = Installed })
	require.NoError(t, err)
	close(hold)
	s := waitPower(t, p, macDB, func(s *PowerStatus) bool { return strings.HasPrefix(s.Action, "skipped") })
	assert.Equal(t, "skipped: installed: re-arm it to reinstall", s.Action)
	assert.Empty(t, db.Calls())
}

func TestPowerCheck(t *testing.T) {
	f, _ := newTestFleet(t, UnknownLocal, false)
	f.inv.hostByName("web01").BMC = testBMC("10.0.1.1")
	f.inv.hostByName("db01").BMC = &power.BMC{Type: power.Redfish, Address: "bmc-db01.example", User: "pxekit", PasswordEnv: "BMC_DB01"}
	f.inv.hostByName("app01").BMC = testBMC("10.0.1.3")
	web := &fakeBMC{state: power.StateOn}
	app := &fakeBMC{stateErr: fmt.Errorf("%w: bmc 10.0.1.3: login refused", power.ErrAuth)}
	var out bytes.Buffer
	err := powerCheck(context.Background(), f.inv, 2, fakeBMCs(map[string]*fakeBMC{"10.0.1.1": web, "10.0.1.3": app}), power.Options{}, &out)
	require.ErrorIs(t, err, errPowerCheck)
	assert.Contains(t, err.Error(), "2 of 3")
	want := `HOST   BMC               TYPE     POWER  ERROR
web01  10.0.1.1          ipmi     on     
db01   bmc-db01.example  redfish  -      power: invalid BMC configuration: bmc.password_env: environment variable BMC_DB01 is not set or empty
app01  10.0.1.3          ipmi     -      power: BMC rejected the credentials: bmc 10.0.1.3: login refused
`
	assert.Equal(t, want, out.String())
	// Nothing changed: only states were read.
	assert.Equal(t, []string{"state"}, web.Calls())
	assert.True(t, web.closed)

	out.Reset()
	f.inv.hostByName("db01").BMC = nil
	f.inv.hostByName("app01").BMC = nil
	require.NoError(t, powerCheck(context.Background(), f.inv, 2, fakeBMCs(map[string]*fakeBMC{"10.0.1.1": web}), power.Options{}, &out))
	assert.Equal(t, "HOST   BMC       TYPE  POWER  ERROR\nweb01  10.0.1.1  ipmi  on     \n", out.String())
}

func TestPowerFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-inventory", "x.yaml", "-power", "-power-parallel", "0"}, "-power-parallel 0"},
		{[]string{"-inventory", "x.yaml", "-power-check", "-power"}, "-power-check changes nothing"},
		{[]string{"-inventory", "x.yaml", "-power-check", "-reinstall", "web01"}, "-power-check changes nothing"},
		{[]string{"-inventory", "x.yaml", "-power", "-power-parallel", "3"}, ""},
	} {
		c, err := parseFlags(tc.args, &bytes.Buffer{})
		if tc.err != "" {
			require.Error(t, err, tc.args)
			assert.Contains(t, err.Error(), tc.err)
			continue
		}
		require.NoError(t, err)
		assert.True(t, c.power)
		assert.Equal(t, 3, c.powerParallel)
	}
	c, err := parseFlags([]string{"-inventory", "x.yaml"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.False(t, c.power, "-power is off by default")
	assert.Equal(t, DefaultPowerParallel, c.powerParallel)
}
