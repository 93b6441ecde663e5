package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pxekit/pxekit/answerfile"
)

// Action is what a machine's network boot leads to.
type Action string

// The actions.
const (
	ActInstall Action = "install" // its own menu and answer file: the installer runs
	ActLocal   Action = "local"   // a menu that boots the local disk at once
	ActMenu    Action = "menu"    // every profile, local disk by default (unknown MACs)
	ActIgnore  Action = "ignore"  // no boot answer, no menu, no answer file
)

// Decision is the gate's answer for one MAC.
type Decision struct {
	Action Action
	// Host is the inventory entry; nil for an unknown MAC.
	Host *Host
	// Why says it in words, for logs, refusals and the status page.
	Why string
}

// decide is the install-once policy, a pure function of what the
// inventory says about a MAC and what the state file remembers of it.
func decide(h *Host, rec Record, seen bool, unknown string) Decision {
	if seen && (rec.State == Installed || rec.State == Booted || rec.State == Failed) {
		why := fmt.Sprintf("installed (%s, reported %s); re-arm with reinstall", rec.State, rec.Changed.Format(time.RFC3339))
		return Decision{Action: ActLocal, Host: h, Why: why}
	}
	if h != nil {
		if seen && rec.State == Installing {
			return Decision{Action: ActInstall, Host: h, Why: "installing since " + rec.Changed.Format(time.RFC3339)}
		}
		return Decision{Action: ActInstall, Host: h, Why: "listed, not installed yet"}
	}
	switch unknown {
	case UnknownMenu:
		return Decision{Action: ActMenu, Why: "unknown MAC: menu for a person at the console"}
	case UnknownIgnore:
		return Decision{Action: ActIgnore, Why: "unknown MAC: ignored"}
	}
	return Decision{Action: ActLocal, Why: "unknown MAC: local boot"}
}

// DefaultBootTimeout is how long after the installer's report a host may
// take to send its first-boot report before the status page flags it.
const DefaultBootTimeout = 30 * time.Minute

// MaxUnlisted bounds the state records of MACs that are not in the
// inventory (machines installed from the menu): past it, their reports
// are refused until some are re-armed or the inventory lists them.
const MaxUnlisted = 1024

// maxPins bounds the addresses remembered for MACs not in the inventory.
const maxPins = 4096

// Gate is the one place that decides, per MAC, what a network boot gets;
// DHCP, TFTP and HTTP all ask it, so a host cannot get an install menu from
// one route and be refused its answer file by another. It also keeps the
// install-once state: an answer file served marks the host installing, the
// installer's report marks it installed (or failed), the installed
// system's first-boot report booted (or failed), Reinstall re-arms it.
//
// Every install carries a token (see Token): answer files and reports are
// accepted only with it.
type Gate struct {
	inv   *Inventory
	store *Store
	log   *slog.Logger
	now   func() time.Time
	// BootTimeout is how long an installed host may take to report its
	// first boot before Overdue says so. Zero or less: DefaultBootTimeout.
	BootTimeout time.Duration

	secret []byte // derives tokens of MACs without a record

	mu        sync.Mutex
	ephemeral map[string]string     // tokens the store could not save (read-only: -check)
	pins      map[string]netip.Addr // MAC -> address DHCP saw it use

	// failSeq numbers the state changes that failed; failed holds the
	// latest failure per subject (a MAC, or api/hosts/NAME), so that the
	// HTTP layer can tell that the request it just served failed to record
	// its change (see guardState).
	failSeq uint64
	failed  map[string]stateFailure
}

// stateFailure is a state change that could not be made.
type stateFailure struct {
	seq uint64
	err error
}

// maxFailures bounds the failures remembered for guardState.
const maxFailures = 4096

// noteFailure remembers that the change of subject failed with err.
func (g *Gate) noteFailure(subject string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed == nil || len(g.failed) >= maxFailures {
		g.failed = map[string]stateFailure{}
	}
	g.failSeq++
	g.failed[subject] = stateFailure{seq: g.failSeq, err: err}
}

// noteSuccess forgets a failure of subject.
func (g *Gate) noteSuccess(subject string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.failed, subject)
}

// failureMark returns the number of the latest failure, to compare with
// failedSince after a request.
func (g *Gate) failureMark() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failSeq
}

// failedSince returns the error of subject's change if it failed after
// mark.
func (g *Gate) failedSince(subject string, mark uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.failed[subject]; ok && f.seq > mark {
		return f.err
	}
	return nil
}

// NewGate returns a gate over inv and store; log may be nil. Listed hosts
// without a token get one now, saved in one write.
func NewGate(inv *Inventory, store *Store, log *slog.Logger) *Gate {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gate{inv: inv, store: store, log: log, now: time.Now, BootTimeout: DefaultBootTimeout,
		ephemeral: map[string]string{}, pins: map[string]netip.Addr{}}
	var err error
	if g.secret, err = store.Secret(); err != nil && !store.readOnly {
		log.Error("state: secret not saved; unknown MACs' tokens change at restart", "error", err)
	}
	var missing []string
	for _, h := range inv.Hosts {
		if h == nil || h.mac == nil {
			continue
		}
		if rec, _ := store.Get(h.mac.String()); rec.Token == "" {
			missing = append(missing, h.mac.String())
		}
	}
	if len(missing) > 0 {
		tokens := map[string]string{}
		for _, m := range missing {
			tokens[m] = newToken()
		}
		err := store.UpdateMany(missing, func(r *Record) {
			if r.Token == "" { // another server sharing the store may have drawn one first
				r.Token = tokens[r.MAC]
			}
			if h := inv.host(macOf(r.MAC)); h != nil && r.Hostname == "" {
				r.Hostname = h.Hostname
			}
		})
		if err != nil {
			if !store.readOnly {
				log.Error("state: tokens not saved; they change at restart", "error", err)
			}
			g.ephemeral = tokens
		}
	}
	return g
}

func macOf(s string) net.HardwareAddr {
	hw, _ := parseMAC(s)
	return hw
}

// newToken draws a token: 128 random bits in hex (safe in every boot
// loader's syntax and in a URL path).
func newToken() string { return randomHex(16) }

// Token returns the token of mac's current install: its record's, else
// (a MAC the state does not know, installing from the menu) one derived
// from the server's secret, so that nothing is stored per unknown MAC.
func (g *Gate) Token(mac net.HardwareAddr) string {
	key := mac.String()
	if rec, ok := g.store.Get(key); ok && rec.Token != "" {
		return rec.Token
	}
	g.mu.Lock()
	t, ok := g.ephemeral[key]
	g.mu.Unlock()
	if ok {
		return t
	}
	m := hmac.New(sha256.New, g.secret)
	m.Write([]byte("pxekit unknown-MAC token\x00" + key))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// TokenOK says, in constant time, whether tok is mac's token.
func (g *Gate) TokenOK(mac net.HardwareAddr, tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(g.Token(mac))) == 1
}

// Pin records the address DHCP saw mac use: from then on its install
// menus and answer files go to that address only.
func (g *Gate) Pin(mac net.HardwareAddr, ip netip.Addr) {
	if len(mac) != 6 || !ip.IsValid() || ip.IsUnspecified() {
		return
	}
	key := mac.String()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.pins[key]; !ok && len(g.pins) >= maxPins && g.inv.host(mac) == nil {
		return // a flood of made-up MACs pins nothing more
	}
	g.pins[key] = ip.Unmap()
}

// AddrOK says whether a request from ip may have mac's secrets: yes when
// no address is known for mac, else only from that address.
func (g *Gate) AddrOK(mac net.HardwareAddr, ip netip.Addr) (ok bool, pinned netip.Addr) {
	g.mu.Lock()
	pinned, known := g.pins[mac.String()]
	g.mu.Unlock()
	return !known || pinned == ip.Unmap(), pinned
}

// Decide returns what mac's network boot gets now.
func (g *Gate) Decide(mac net.HardwareAddr) Decision {
	rec, seen := g.store.Get(mac.String())
	return decide(g.inv.host(mac), rec, seen, g.inv.Unknown)
}

// ErrNotAllowed means the gate refuses a request; the error text says why.
var ErrNotAllowed = errors.New("not allowed by the install-once gate")

// ErrReplay means the stage was reported already for this install.
var ErrReplay = errors.New("stage already reported for this install")

// ErrFull means the state holds MaxUnlisted machines that are not listed.
var ErrFull = errors.New("too many unlisted machines in the state")

// AnswerServed records that mac fetched its answer file: the install has
// started. Only the first fetch of an install is written, and only for a
// listed host: an unknown MAC gets a record when it reports. A failure is
// logged and remembered for guardState, which then answers the request
// with an error instead of the answer file (see StartInstall).
func (g *Gate) AnswerServed(mac net.HardwareAddr, hostname string) {
	if err := g.StartInstall(mac, hostname); err != nil {
		g.noteFailure(mac.String(), err)
		if !errors.Is(err, ErrStateUnavailable) { // that one the store logs, once a minute
			g.log.Error("state", "mac", mac.String(), "error", err)
		}
		return
	}
	g.noteSuccess(mac.String())
}

// errStarted ends a StartInstall that finds the install started already.
var errStarted = errors.New("install started already")

// StartInstall moves mac from armed to installing, once: of several
// servers sharing the store, exactly one makes the move (a compare-and-swap
// on the record) and the others find it made. On a shared store the record
// is read from the backend first, not from this server's copy, so a server
// that missed another's report (cut off from etcd) does not install the
// host again: ErrNotAllowed then, or an error wrapping ErrStateUnavailable
// when the backend does not answer. The answer file must not be served
// after an error: the install would not be recorded, and could happen
// twice.
func (g *Gate) StartInstall(mac net.HardwareAddr, hostname string) error {
	key := mac.String()
	rec, seen := g.store.Get(key)
	if g.store.Shared() {
		var err error
		if rec, seen, err = g.store.Sync(key); err != nil {
			return err
		}
		if seen && finished(rec.State) {
			return fmt.Errorf("%w: %s: %s, reported on another server", ErrNotAllowed, key, rec.State)
		}
	}
	if g.inv.host(mac) == nil {
		return nil
	}
	if seen && rec.State == Installing {
		return nil
	}
	_, err := g.store.UpdateIf(key, func(r *Record) error {
		switch {
		case r.State == Installing:
			return errStarted
		case finished(r.State) && g.store.Shared():
			return fmt.Errorf("%w: %s: %s, reported on another server", ErrNotAllowed, key, r.State)
		}
		r.Hostname, r.State, r.Changed, r.Report, r.Boot = hostname, Installing, g.now(), nil, nil
		return nil
	})
	if errors.Is(err, errStarted) {
		return nil
	}
	return err
}

// finished says whether st ends an install.
func finished(st InstallState) bool { return st == Installed || st == Booted || st == Failed }

// Expecting says whether a report from mac makes sense: it is listed, it
// may install from the menu, or the state knows it.
func (g *Gate) Expecting(mac net.HardwareAddr) bool {
	if g.inv.host(mac) != nil || g.inv.Unknown == UnknownMenu {
		return true
	}
	_, seen := g.store.Get(mac.String())
	return seen
}

// Reported records a report for mac (the caller has checked its token).
// It returns only once the new state is on disk: the caller answers the
// reporter after that, so a report that was acknowledged is never lost.
// Each stage is taken once per install (ErrReplay after that).
func (g *Gate) Reported(mac net.HardwareAddr, rep Report) (Record, error) {
	if rep.Stage == "" {
		rep.Stage = answerfile.StageInstalled
	}
	h := g.inv.host(mac)
	hostname := rep.Hostname
	if h != nil {
		hostname = h.Hostname
	}
	if h == nil {
		if _, seen := g.store.Get(mac.String()); !seen && g.unlisted() >= MaxUnlisted {
			return Record{}, ErrFull
		}
	}
	token := g.Token(mac)
	rec, err := g.store.UpdateIf(mac.String(), func(r *Record) error {
		now := g.now()
		rep.At = now
		kept := rep
		// A failure stays a failure until the host is re-armed: a later
		// report cannot hide it.
		failed := r.State == Failed || rep.Status == answerfile.StatusFailed
		switch rep.Stage {
		case answerfile.StageBooted:
			if r.Boot != nil {
				return ErrReplay
			}
			r.Boot = &kept
			r.State = Booted
		default:
			if r.Report != nil {
				return ErrReplay
			}
			r.Report = &kept
			if r.State != Booted {
				// (The first boot may have reported first, if the
				// installer's report was lost and retried.)
				r.State = Installed
			}
		}
		if failed {
			r.State = Failed
		}
		if r.Token == "" {
			r.Token = token // an unknown MAC keeps the token it installed with
		}
		r.Hostname, r.Changed = hostname, now
		return nil
	})
	if errors.Is(err, ErrStateUnavailable) {
		g.noteFailure(mac.String(), err)
	}
	return rec, err
}

// unlisted counts the records of MACs the inventory does not list.
func (g *Gate) unlisted() int {
	n := 0
	for _, r := range g.store.All() {
		if g.inv.host(macOf(r.MAC)) == nil {
			n++
		}
	}
	return n
}

// Overdue says whether rec installed longer than BootTimeout ago and its
// first boot has not reported.
func (g *Gate) Overdue(rec Record) bool {
	timeout := g.BootTimeout
	if timeout <= 0 {
		timeout = DefaultBootTimeout
	}
	return rec.State == Installed && rec.Boot == nil && g.now().Sub(rec.Changed) > timeout
}

// Reinstall re-arms a host, by hostname or MAC: its next network boot
// installs it again, with a new token (the old install's URLs stop
// working). Unknown MACs that installed from the menu can be re-armed by
// MAC.
func (g *Gate) Reinstall(name string) (Record, error) {
	var mac string
	hostname := ""
	if h := g.inv.hostByName(name); h != nil {
		mac, hostname = h.mac.String(), h.Hostname
	} else if hw, ok := parseMAC(name); ok {
		if _, seen := g.store.Get(hw.String()); !seen {
			return Record{}, fmt.Errorf("reinstall %s: no such host in the inventory or the state", name)
		}
		mac = hw.String()
	} else {
		return Record{}, fmt.Errorf("reinstall %s: no such host in the inventory", name)
	}
	rec, err := g.store.Update(mac, func(r *Record) {
		if hostname != "" {
			r.Hostname = hostname
		}
		r.State, r.Changed, r.Report, r.Boot, r.Token = Pending, g.now(), nil, nil, newToken()
	})
	if err == nil {
		g.log.Info("re-armed", "host", rec.Hostname, "mac", mac)
	}
	if errors.Is(err, ErrStateUnavailable) {
		g.noteFailure("api/hosts/"+name, err)
	}
	return rec, err
}
