package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Action is what the scheduler does to one host.
type Action string

// The actions.
const (
	// ActionNone: nothing was changed (check-only mode).
	ActionNone Action = "none"
	// ActionOn: next boot set to PXE, then powered on (the host was off).
	ActionOn Action = "power-on"
	// ActionCycle: next boot set to PXE, then power-cycled (the host was
	// on, or powering on: a boot already under way may have passed the
	// point where firmware reads the override).
	ActionCycle Action = "power-cycle"
	// ActionWait: the host is between states (powering off, or a state
	// the BMC did not name); nothing is done now, try again later.
	ActionWait Action = "wait"
)

// Decide is the action for a host in state: the whole policy, kept pure
// so that it is table-tested.
func Decide(state PowerState, checkOnly bool) Action {
	if checkOnly {
		return ActionNone
	}
	switch state {
	case StateOff:
		return ActionOn
	case StateOn, StatePoweringOn:
		return ActionCycle
	}
	return ActionWait
}

// Target is one host for the scheduler. The scheduler does not close
// Controller; its owner does.
type Target struct {
	// Name identifies the host in results and logs (e.g. its hostname).
	Name string
	// Controller drives its BMC.
	Controller Controller
	// Mode is the network boot's firmware mode; default BootUEFI.
	Mode BootMode
}

// Result is what happened to one host.
type Result struct {
	Name string
	// State is the power state read before acting ("" if it could not
	// be read).
	State PowerState
	// Action is what was decided; Done says whether it was carried out.
	Action Action
	Done   bool
	// Boot is the boot mode the BMC took for the PXE override
	// (BootAnyMode when it refused the mode flag); empty when no
	// override was set.
	Boot BootMode
	// Note explains a partial success, e.g. a dropped UEFI flag.
	Note string
	// Err is the last error; nil on success.
	Err error
	// Took is the time spent on the host.
	Took time.Duration
}

// Scheduler applies "next boot PXE once, then power on (or power-cycle
// when on)" to many hosts, a bounded number at a time.
type Scheduler struct {
	// Parallel is the most hosts handled at once; default 10.
	Parallel int
	// CheckOnly reads power states and changes nothing.
	CheckOnly bool
	// Backoff bounds retries of transient failures (see IsTransient) of
	// the idempotent steps: reading the state, setting the override,
	// powering on. A power cycle is never retried: one whose answer was
	// lost may have happened.
	Backoff Backoff
	// HostTimeout bounds all the work on one host; default 2 minutes.
	HostTimeout time.Duration
	// Logger receives one line per host; nil is silent.
	Logger *slog.Logger
}

// Run handles every target and returns one Result per target, in the
// targets' order. It returns when all are done or ctx ends (hosts not
// started by then get ctx's error).
func (s *Scheduler) Run(ctx context.Context, targets []Target) []Result {
	n := s.Parallel
	if n <= 0 {
		n = 10
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	results := make([]Result, len(targets))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, t := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = Result{Name: t.Name, Err: fmt.Errorf("not started: %w", ctx.Err())}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = s.one(ctx, t)
			r := results[i]
			attrs := []any{"host", r.Name, "state", string(r.State), "action", string(r.Action), "done", r.Done, "took", r.Took.Round(time.Millisecond)}
			if r.Note != "" {
				attrs = append(attrs, "note", r.Note)
			}
			if r.Err != nil {
				log.Warn("power", append(attrs, "err", r.Err)...)
			} else {
				log.Info("power", attrs...)
			}
		}()
	}
	wg.Wait()
	return results
}

func (s *Scheduler) one(ctx context.Context, t Target) (r Result) {
	start := time.Now()
	r.Name = t.Name
	defer func() {
		if p := recover(); p != nil {
			r.Err = fmt.Errorf("power: %s: internal error: %v", t.Name, p)
		}
		r.Took = time.Since(start)
	}()
	if t.Controller == nil {
		r.Err = fmt.Errorf("%w: %s: no BMC", ErrConfig, t.Name)
		return r
	}
	to := s.HostTimeout
	if to <= 0 {
		to = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	c := t.Controller

	err := Retry(ctx, s.Backoff, func(ctx context.Context) error {
		st, err := c.PowerState(ctx)
		if err == nil {
			r.State = st
		}
		return err
	})
	if err != nil {
		r.Err = err
		return r
	}
	r.Action = Decide(r.State, s.CheckOnly)
	switch r.Action {
	case ActionNone:
		r.Done = true
		return r
	case ActionWait:
		r.Err = fmt.Errorf("%w: %s: power state %q: not acting now, try again later", ErrBusy, t.Name, r.State)
		return r
	}
	mode := t.Mode
	if mode == "" {
		mode = BootUEFI
	}
	err = Retry(ctx, s.Backoff, func(ctx context.Context) error {
		applied, err := c.SetNextBoot(ctx, mode)
		if err == nil {
			r.Boot = applied
		}
		return err
	})
	if err != nil {
		r.Err = err
		return r
	}
	if r.Boot != mode {
		r.Note = fmt.Sprintf("the BMC refused the %s boot mode flag; PXE set without it", mode)
	}
	switch r.Action {
	case ActionOn:
		err = Retry(ctx, s.Backoff, c.PowerOn)
	case ActionCycle:
		err = c.PowerCycle(ctx)
	}
	if err != nil {
		r.Err = err
		return r
	}
	r.Done = true
	return r
}

// Summary counts results: done, failed, and those failed for a reason
// that asks a person to act (credentials, configuration, refusals).
func Summary(rs []Result) (done, failed, permanent int) {
	for _, r := range rs {
		switch {
		case r.Err == nil:
			done++
		default:
			failed++
			if !IsTransient(r.Err) && !errors.Is(r.Err, context.DeadlineExceeded) && !errors.Is(r.Err, context.Canceled) {
				permanent++
			}
		}
	}
	return done, failed, permanent
}
