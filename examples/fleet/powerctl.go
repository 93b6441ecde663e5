package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pxekit/pxekit/examples/fleet/power"
)

// DefaultPowerParallel is how many BMCs -power drives at once by default:
// a rack powering on all at once draws an inrush current its circuits
// may not be sized for.
const DefaultPowerParallel = 10

// PowerStatus is what fleet knows of a host's power, for the status page.
type PowerStatus struct {
	// BMC is the BMC's address (never its credentials).
	BMC string `json:"bmc"`
	// State is the power state last read from the BMC.
	State power.PowerState `json:"state,omitempty"`
	// Action is the last action: queued, running, or what power.Decide
	// chose (power-on, power-cycle, none, wait), or skipped.
	Action string `json:"action,omitempty"`
	// At is when Action was last set.
	At *time.Time `json:"at,omitempty"`
	// Note explains a partial success, e.g. a refused boot override.
	Note string `json:"note,omitempty"`
	// Error is the last BMC error ("" after a success).
	Error string `json:"error,omitempty"`
}

// powerTarget says whether fleet may network-boot host through its BMC
// now, and why not: the whole "which hosts get powered" policy, pure. A
// host is powered only when it has a BMC and is armed (pending: its next
// network boot installs). An installed, booted or failed host is never
// touched (it boots its disk until re-armed), nor one installing (a power
// cycle would interrupt its installer).
func powerTarget(h *Host, rec Record, seen bool) (bool, string) {
	switch {
	case h == nil:
		return false, "not in the inventory"
	case h.BMC == nil:
		return false, "no bmc"
	case !seen || rec.State == Pending:
		return true, "armed"
	case rec.State == Installing:
		return false, "installing: not interrupted"
	}
	return false, string(rec.State) + ": re-arm it to reinstall"
}

// powerCtl drives hosts' BMCs for -power: "network boot once, then power
// on (or power-cycle when on)", a bounded number of hosts at a time.
type powerCtl struct {
	f        *fleet
	log      *slog.Logger
	parallel int
	opts     power.Options
	backoff  power.Backoff
	// open makes a host's Controller; power.Open, tests use fakes.
	open func(power.BMC, power.Options) (power.Controller, error)
	// hostTimeout bounds the work on one host.
	hostTimeout time.Duration

	sem chan struct{}
	wg  sync.WaitGroup

	mu     sync.Mutex
	ctx    context.Context // set by start; nil before
	cancel context.CancelFunc
	status map[string]*PowerStatus
	busy   map[string]bool // queued or running, by MAC
}

func newPowerCtl(f *fleet, parallel int, log *slog.Logger) *powerCtl {
	if parallel <= 0 {
		parallel = DefaultPowerParallel
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &powerCtl{
		f: f, log: log, parallel: parallel, open: power.Open, hostTimeout: 3 * time.Minute,
		sem: make(chan struct{}, parallel), status: map[string]*PowerStatus{}, busy: map[string]bool{},
	}
}

// start powers every armed host with a BMC, and from then on lets queue
// work; the work stops when ctx ends. Call it once the servers are up:
// a host must find them when it boots.
func (p *powerCtl) start(ctx context.Context) {
	p.mu.Lock()
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.mu.Unlock()
	for _, h := range p.f.inv.Hosts {
		if h == nil || h.BMC == nil {
			continue
		}
		rec, seen := p.f.gate.store.Get(h.mac.String())
		if ok, why := powerTarget(h, rec, seen); !ok {
			p.set(h, func(s *PowerStatus) { s.Action = "skipped: " + why })
			p.log.Info("power: not touched", "host", h.Hostname, "why", why)
			continue
		}
		p.queue(h)
	}
}

// stop ends the work (a BMC request under way is abandoned) and waits for
// it.
func (p *powerCtl) stop() {
	p.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// queue schedules host h; it says "queued", or why not.
func (p *powerCtl) queue(h *Host) string {
	if h == nil || h.BMC == nil {
		return "no bmc"
	}
	key := h.mac.String()
	p.mu.Lock()
	ctx := p.ctx
	if ctx == nil || ctx.Err() != nil {
		p.mu.Unlock()
		return "not started"
	}
	if p.busy[key] {
		p.mu.Unlock()
		return "already queued"
	}
	p.busy[key] = true
	p.wg.Add(1)
	p.mu.Unlock()
	p.set(h, func(s *PowerStatus) { s.Action = "queued" })
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.busy, key)
			p.mu.Unlock()
		}()
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			p.set(h, func(s *PowerStatus) { s.Action, s.Error = "not started", ctx.Err().Error() })
			return
		}
		defer func() { <-p.sem }()
		p.run(ctx, h)
	}()
	return "queued"
}

// run network-boots one host. A BMC refusing the boot override does not
// stop it: the host is powered on (or cycled) anyway, because its
// firmware's own boot order may well put the network first (ipmi_sim
// refuses the override; some real BMCs ignore the UEFI flag); the refusal
// is logged once and shown in the status.
func (p *powerCtl) run(ctx context.Context, h *Host) {
	ctx, cancel := context.WithTimeout(ctx, p.hostTimeout)
	defer cancel()
	start := time.Now()
	name := h.Hostname
	fail := func(err error) {
		p.set(h, func(s *PowerStatus) { s.Error = err.Error() })
		p.log.Warn("power: failed", "host", name, "bmc", h.BMC.Address, "err", err, "took", time.Since(start).Round(time.Millisecond))
	}
	// The host may have been installed since it was queued.
	rec, seen := p.f.gate.store.Get(h.mac.String())
	if ok, why := powerTarget(h, rec, seen); !ok {
		p.set(h, func(s *PowerStatus) { s.Action = "skipped: " + why })
		return
	}
	p.set(h, func(s *PowerStatus) { s.Action, s.Note, s.Error = "running", "", "" })
	c, err := p.open(*h.BMC, p.opts)
	if err != nil {
		fail(err)
		return
	}
	defer c.Close(context.WithoutCancel(ctx))

	var state power.PowerState
	err = power.Retry(ctx, p.backoff, func(ctx context.Context) error {
		var err error
		state, err = c.PowerState(ctx)
		return err
	})
	if err != nil {
		fail(err)
		return
	}
	act := power.Decide(state, false)
	p.set(h, func(s *PowerStatus) { s.State, s.Action = state, string(act) })
	if act == power.ActionWait {
		fail(fmt.Errorf("%w: power state %q: not acting now", power.ErrBusy, state))
		return
	}
	mode := h.BMC.ModeOf()
	note := ""
	var applied power.BootMode
	err = power.Retry(ctx, p.backoff, func(ctx context.Context) error {
		var err error
		applied, err = c.SetNextBoot(ctx, mode)
		return err
	})
	switch {
	case errors.Is(err, power.ErrBootOverride):
		note = "the BMC refused the network boot override; powered anyway (the firmware's boot order decides)"
		p.log.Warn("power: boot override refused, powering anyway", "host", name, "bmc", h.BMC.Address, "err", err)
	case err != nil:
		fail(err)
		return
	case applied != mode:
		note = fmt.Sprintf("the BMC refused the %s flag; network boot set without it", mode)
		p.log.Warn("power: boot mode flag refused", "host", name, "bmc", h.BMC.Address, "mode", mode)
	}
	p.set(h, func(s *PowerStatus) { s.Note = note })
	switch act {
	case power.ActionOn:
		err = power.Retry(ctx, p.backoff, c.PowerOn)
	case power.ActionCycle:
		// Never retried: a cycle whose answer was lost may have happened.
		err = c.PowerCycle(ctx)
	}
	if err != nil {
		fail(err)
		return
	}
	p.set(h, func(s *PowerStatus) { s.State = power.StateOn })
	p.log.Info("power: done", "host", name, "bmc", h.BMC.Address, "was", state, "action", act, "took", time.Since(start).Round(time.Millisecond))
}

// set changes h's status under the lock.
func (p *powerCtl) set(h *Host, fn func(*PowerStatus)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := h.mac.String()
	s := p.status[key]
	if s == nil {
		s = &PowerStatus{BMC: h.BMC.Address}
		p.status[key] = s
	}
	before := s.Action
	fn(s)
	if s.Action != before || s.At == nil {
		now := time.Now()
		s.At = &now
	}
}

// get returns a copy of the status of mac, or nil.
func (p *powerCtl) get(mac string) *PowerStatus {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status[mac]
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// errPowerCheck is -power-check's error when a BMC failed.
var errPowerCheck = errors.New("power check failed")

// powerCheck asks every host's BMC for its power state, changing nothing,
// and prints a table; the error counts the BMCs that failed.
func powerCheck(ctx context.Context, inv *Inventory, parallel int, open func(power.BMC, power.Options) (power.Controller, error), opts power.Options, out io.Writer) error {
	if open == nil {
		open = power.Open
	}
	var hosts []*Host
	var targets []power.Target
	var openErrs []error
	for _, h := range inv.Hosts {
		if h == nil || h.BMC == nil {
			continue
		}
		c, err := open(*h.BMC, opts)
		hosts = append(hosts, h)
		targets = append(targets, power.Target{Name: h.Hostname, Controller: c})
		openErrs = append(openErrs, err)
	}
	defer func() {
		for _, t := range targets {
			if t.Controller != nil {
				t.Controller.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	// Hosts whose BMC could not even be opened get no controller: the
	// scheduler reports them; their own error replaces its.
	sch := &power.Scheduler{Parallel: parallel, CheckOnly: true, Backoff: power.Backoff{Attempts: 2}}
	results := sch.Run(ctx, targets)
	for i := range results {
		if openErrs[i] != nil {
			results[i].Err = openErrs[i]
		}
	}
	writePowerCheck(out, hosts, results)
	if _, failed, _ := power.Summary(results); failed > 0 {
		return fmt.Errorf("%w: %d of %d BMC(s) failed", errPowerCheck, failed, len(results))
	}
	if len(results) == 0 {
		fmt.Fprintln(out, "no host has a bmc")
	}
	return nil
}

// writePowerCheck prints -power-check's table.
func writePowerCheck(w io.Writer, hosts []*Host, rs []power.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tBMC\tTYPE\tPOWER\tERROR")
	for i, r := range rs {
		h := hosts[i]
		state := string(r.State)
		if state == "" {
			state = "-"
		}
		msg := ""
		if r.Err != nil {
			msg = printable(oneLine(r.Err.Error()))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(h.Hostname), h.BMC.Address, h.BMC.Type, state, msg)
	}
	tw.Flush()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// runPowerCheck is -power-check: the inventory must be sound (its BMC
// descriptions above all), then every BMC is asked for its power state.
func runPowerCheck(ctx context.Context, c *config, inv *Inventory, invErr error, out io.Writer) error {
	if invErr != nil {
		return invErr
	}
	return powerCheck(ctx, inv, c.powerParallel, nil, power.Options{}, out)
}
