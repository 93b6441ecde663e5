package power

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		state PowerState
		check bool
		want  Action
	}{
		{StateOff, false, ActionOn},
		{StateOn, false, ActionCycle},
		{StatePoweringOn, false, ActionCycle},
		{StatePoweringOff, false, ActionWait},
		{StateUnknown, false, ActionWait},
		{"", false, ActionWait},
		{StateOff, true, ActionNone},
		{StateOn, true, ActionNone},
		{StateUnknown, true, ActionNone},
	} {
		t.Run(fmt.Sprintf("%s/check=%v", tc.state, tc.check), func(t *testing.T) {
			assert.Equal(t, tc.want, Decide(tc.state, tc.check))
		})
	}
}

// fakeCtl is a scripted Controller recording its calls.
type fakeCtl struct {
	mu       sync.Mutex
	state    PowerState
	stateErr []error // returned by successive PowerState calls, then nil
	bootErr  error
	bootMode BootMode // what SetNextBoot reports; default the mode asked
	powerErr error
	delay    time.Duration
	calls    []string
	inflight *atomic.Int32
	peak     *atomic.Int32
}

func (f *fakeCtl) enter(ctx context.Context, call string) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	if f.inflight != nil {
		n := f.inflight.Add(1)
		defer f.inflight.Add(-1)
		for {
			p := f.peak.Load()
			if n <= p || f.peak.CompareAndSwap(p, n) {
				break
			}
		}
	}
	select {
	case <-time.After(f.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeCtl) PowerState(ctx context.Context) (PowerState, error) {
	if err := f.enter(ctx, "state"); err != nil {
		return StateUnknown, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stateErr) > 0 {
		err := f.stateErr[0]
		f.stateErr = f.stateErr[1:]
		return StateUnknown, err
	}
	return f.state, nil
}

func (f *fakeCtl) PowerOn(ctx context.Context) error {
	if err := f.enter(ctx, "on"); err != nil {
		return err
	}
	return f.powerErr
}

func (f *fakeCtl) PowerCycle(ctx context.Context) error {
	if err := f.enter(ctx, "cycle"); err != nil {
		return err
	}
	return f.powerErr
}

func (f *fakeCtl) SetNextBoot(ctx context.Context, mode BootMode) (BootMode, error) {
	if err := f.enter(ctx, "boot "+string(mode)); err != nil {
		return BootAnyMode, err
	}
	if f.bootErr != nil {
		return BootAnyMode, f.bootErr
	}
	if f.bootMode != "" {
		return f.bootMode, nil
	}
	return mode, nil
}

func (f *fakeCtl) Close(context.Context) error { return nil }

func TestSchedulerRun(t *testing.T) {
	ctx := context.Background()
	unreachable := fmt.Errorf("%w: ipmi 10.0.0.1:623: no answer", ErrUnreachable)
	off := &fakeCtl{state: StateOff}
	on := &fakeCtl{state: StateOn}
	flaky := &fakeCtl{state: StateOff, stateErr: []error{unreachable}}
	dead := &fakeCtl{state: StateOff, stateErr: []error{unreachable, unreachable, unreachable}}
	badpw := &fakeCtl{state: StateOff, stateErr: []error{fmt.Errorf("%w: redfish x: HTTP 401", ErrAuth)}}
	refuses := &fakeCtl{state: StateOn, bootErr: fmt.Errorf("%w: ipmi x: completion code 0xcc", ErrBootOverride)}
	cycleLost := &fakeCtl{state: StateOn, powerErr: unreachable}
	poweringOff := &fakeCtl{state: StatePoweringOff}

	s := Scheduler{Backoff: Backoff{Attempts: 3, Initial: time.Millisecond}}
	rs := s.Run(ctx, []Target{
		{Name: "off", Controller: off},
		{Name: "on", Controller: on, Mode: BootLegacy},
		{Name: "flaky", Controller: flaky},
		{Name: "dead", Controller: dead},
		{Name: "badpw", Controller: badpw},
		{Name: "refuses", Controller: refuses},
		{Name: "nobmc"},
		{Name: "cycle-lost", Controller: cycleLost},
		{Name: "powering-off", Controller: poweringOff},
		{Name: "legacy-only", Controller: &fakeCtl{state: StateOff, bootMode: BootLegacy}},
	})
	require.Len(t, rs, 10)
	byName := map[string]Result{}
	for i, r := range rs {
		byName[r.Name] = r
		assert.Equal(t, []string{"off", "on", "flaky", "dead", "badpw", "refuses", "nobmc", "cycle-lost", "powering-off", "legacy-only"}[i], r.Name, "targets' order")
	}

	r := byName["off"]
	require.NoError(t, r.Err)
	assert.Equal(t, Result{Name: "off", State: StateOff, Action: ActionOn, Done: true, Boot: BootUEFI, Took: r.Took}, r)
	assert.Equal(t, []string{"state", "boot uefi", "on"}, off.calls)

	r = byName["on"]
	require.NoError(t, r.Err)
	assert.Equal(t, ActionCycle, r.Action)
	assert.Equal(t, BootLegacy, r.Boot)
	assert.Equal(t, []string{"state", "boot legacy", "cycle"}, on.calls)

	assert.NoError(t, byName["flaky"].Err)
	assert.Equal(t, []string{"state", "state", "boot uefi", "on"}, flaky.calls, "a transient failure is retried")

	require.ErrorIs(t, byName["dead"].Err, ErrUnreachable)
	assert.Contains(t, byName["dead"].Err.Error(), "after 3 attempts")
	assert.Equal(t, []string{"state", "state", "state"}, dead.calls, "bounded")

	require.ErrorIs(t, byName["badpw"].Err, ErrAuth)
	assert.Equal(t, []string{"state"}, badpw.calls, "credentials are not retried")

	require.ErrorIs(t, byName["refuses"].Err, ErrBootOverride)
	assert.Equal(t, []string{"state", "boot uefi"}, refuses.calls, "no power action without the override")
	assert.False(t, byName["refuses"].Done)

	require.ErrorIs(t, byName["nobmc"].Err, ErrConfig)

	require.ErrorIs(t, byName["cycle-lost"].Err, ErrUnreachable)
	assert.Equal(t, []string{"state", "boot uefi", "cycle"}, cycleLost.calls, "a power cycle is never retried")

	require.ErrorIs(t, byName["powering-off"].Err, ErrBusy)
	assert.Equal(t, ActionWait, byName["powering-off"].Action)
	assert.Equal(t, []string{"state"}, poweringOff.calls)

	r = byName["legacy-only"]
	require.NoError(t, r.Err)
	assert.Equal(t, BootLegacy, r.Boot)
	assert.Contains(t, r.Note, "refused the uefi boot mode flag")

	done, failed, permanent := Summary(rs)
	assert.Equal(t, 4, done)
	assert.Equal(t, 6, failed)
	assert.Equal(t, 3, permanent) // badpw, refuses, nobmc
}

func TestSchedulerCheckOnly(t *testing.T) {
	cs := []*fakeCtl{{state: StateOn}, {state: StateOff}, {state: StatePoweringOn}}
	var ts []Target
	for i, c := range cs {
		ts = append(ts, Target{Name: fmt.Sprint(i), Controller: c})
	}
	rs := (&Scheduler{CheckOnly: true}).Run(context.Background(), ts)
	for i, r := range rs {
		require.NoError(t, r.Err)
		assert.Equal(t, cs[i].state, r.State)
		assert.Equal(t, ActionNone, r.Action)
		assert.Equal(t, []string{"state"}, cs[i].calls, "nothing but the state is asked")
	}
}

func TestSchedulerParallelBound(t *testing.T) {
	var inflight, peak atomic.Int32
	var ts []Target
	for i := range 25 {
		ts = append(ts, Target{Name: fmt.Sprint(i), Controller: &fakeCtl{state: StateOff, delay: 5 * time.Millisecond, inflight: &inflight, peak: &peak}})
	}
	rs := (&Scheduler{Parallel: 4}).Run(context.Background(), ts)
	for _, r := range rs {
		require.NoError(t, r.Err)
	}
	assert.LessOrEqual(t, peak.Load(), int32(4))
	assert.GreaterOrEqual(t, peak.Load(), int32(2), "hosts do run in parallel")

	// Default: 10.
	peak.Store(0)
	rs = (&Scheduler{}).Run(context.Background(), ts)
	assert.Len(t, rs, 25)
	assert.LessOrEqual(t, peak.Load(), int32(10))
}

func TestSchedulerBounded(t *testing.T) {
	// A host that never answers ends at HostTimeout; the run's context
	// ends what has not started.
	hang := &fakeCtl{state: StateOff, delay: time.Hour}
	start := time.Now()
	rs := (&Scheduler{HostTimeout: 50 * time.Millisecond, Parallel: 1}).Run(context.Background(), []Target{{Name: "hang", Controller: hang}})
	require.ErrorIs(t, rs[0].Err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rs = (&Scheduler{Parallel: 1}).Run(ctx, []Target{{Name: "a", Controller: &fakeCtl{state: StateOff, delay: time.Hour}}, {Name: "b", Controller: &fakeCtl{state: StateOff}}})
	require.Error(t, rs[0].Err)
	require.ErrorIs(t, rs[1].Err, context.DeadlineExceeded)
	assert.Contains(t, rs[1].Err.Error(), "not started")
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	transient := fmt.Errorf("%w: x", ErrBusy)
	for _, tc := range []struct {
		name  string
		errs  []error
		calls int
		err   error
	}{
		{"success", nil, 1, nil},
		{"transient then success", []error{transient, transient}, 3, nil},
		{"transient to the end", []error{transient, transient, transient, transient}, 3, ErrBusy},
		{"auth not retried", []error{ErrAuth}, 1, ErrAuth},
		{"boot override not retried", []error{ErrBootOverride}, 1, ErrBootOverride},
		{"canceled not retried", []error{context.Canceled}, 1, context.Canceled},
		{"unknown not retried", []error{errors.New("x")}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := Retry(ctx, Backoff{Attempts: 3, Initial: time.Millisecond}, func(context.Context) error {
				n++
				if n <= len(tc.errs) {
					return tc.errs[n-1]
				}
				return nil
			})
			assert.Equal(t, tc.calls, n)
			switch {
			case tc.err != nil:
				require.ErrorIs(t, err, tc.err)
			case tc.name == "unknown not retried":
				require.Error(t, err)
			default:
				require.NoError(t, err)
			}
		})
	}

	// The context ends the waits.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Retry(cctx, Backoff{Attempts: 100, Initial: time.Hour}, func(context.Context) error { return transient })
	require.ErrorIs(t, err, ErrBusy)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 60: 5 * time.Second} {
		assert.Equal(t, want, b.Delay(n), n)
	}
	assert.Equal(t, time.Second, Backoff{}.Delay(1))
	assert.Equal(t, 10*time.Second, Backoff{}.Delay(10))
}

func TestBootFlagsEncoding(t *testing.T) {
	// Set System Boot Options parameter 5 (IPMI 2.0 table 28-14): byte 1
	// bit 7 valid, bit 6 persistent (0: next boot only), bit 5 EFI;
	// byte 2 bits 5:2 device selector, 0001b force PXE.
	assert.Equal(t, []byte{0xa0, 0x04, 0, 0, 0}, bootFlags(true).Pack())
	assert.Equal(t, []byte{0x80, 0x04, 0, 0, 0}, bootFlags(false).Pack())
	sel, _, _ := bootFlags(true).BootOptionParameter()
	assert.Equal(t, types.BootOptionParamSelector(5), sel)
}

func TestCipherRefusedAndStatus(t *testing.T) {
	code, ok := rmcpStatus(errors.New("connect20 failed, errs: cmd: rakp1 failed: RMCP+ status 0xd: unauthorized name"))
	require.True(t, ok)
	assert.Equal(t, types.RmcpStatusCodeUnauthorizedName, code)
	_, ok = rmcpStatus(errors.New("i/o timeout"))
	assert.False(t, ok)
	assert.True(t, cipherRefused(types.NewRmcpStatusError(types.RmcpStatusCodeInvalidAuthAlg)))
	assert.False(t, cipherRefused(types.NewRmcpStatusError(types.RmcpStatusCodeUnauthorizedName)))
}
