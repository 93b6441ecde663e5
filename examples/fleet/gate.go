package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
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
	if seen && (rec.State == Done || rec.State == Failed) {
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

// Gate is the one place that decides, per MAC, what a network boot gets;
// DHCP, TFTP and HTTP all ask it, so a host cannot get an install menu from
// one route and be refused its answer file by another. It also keeps the
// install-once state: an answer file served marks the host installing, the
// installer's report marks it done (or failed), Reinstall re-arms it.
type Gate struct {
	inv   *Inventory
	store *Store
	log   *slog.Logger
	now   func() time.Time
}

// NewGate returns a gate over inv and store; log may be nil.
func NewGate(inv *Inventory, store *Store, log *slog.Logger) *Gate {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gate{inv: inv, store: store, log: log, now: time.Now}
}

// Decide returns what mac's network boot gets now.
func (g *Gate) Decide(mac net.HardwareAddr) Decision {
	rec, seen := g.store.Get(mac.String())
	return decide(g.inv.host(mac), rec, seen, g.inv.Unknown)
}

// ErrNotAllowed means the gate refuses a request; the error text says why.
var ErrNotAllowed = errors.New("not allowed by the install-once gate")

// AnswerServed records that mac fetched its answer file: the install has
// started. Only the first fetch of an install is written.
func (g *Gate) AnswerServed(mac net.HardwareAddr, hostname string) {
	rec, seen := g.store.Get(mac.String())
	if seen && rec.State == Installing {
		return
	}
	_, err := g.store.Update(mac.String(), func(r *Record) {
		r.Hostname, r.State, r.Changed, r.Report = hostname, Installing, g.now(), nil
	})
	if err != nil {
		g.log.Error("state", "mac", mac.String(), "error", err)
	}
}

// Expecting says whether a report from mac makes sense: it is listed, or
// it fetched an answer file from the menu.
func (g *Gate) Expecting(mac net.HardwareAddr) bool {
	if g.inv.host(mac) != nil {
		return true
	}
	rec, seen := g.store.Get(mac.String())
	return seen && rec.State == Installing
}

// Reported records the installer's completion report for mac. It returns
// only once the new state is on disk: the caller answers the installer
// after that, so a report that was acknowledged is never lost.
func (g *Gate) Reported(mac net.HardwareAddr, rep Report) (Record, error) {
	state := Done
	if rep.Status == "failed" {
		state = Failed
	}
	hostname := rep.Hostname
	if h := g.inv.host(mac); h != nil {
		hostname = h.Hostname
	}
	return g.store.Update(mac.String(), func(r *Record) {
		r.Hostname, r.State, r.Changed = hostname, state, g.now()
		rep.At = r.Changed
		r.Report = &rep
	})
}

// Reinstall re-arms a host, by hostname or MAC: its next network boot
// installs it again. Unknown MACs that installed from the menu can be
// re-armed by MAC.
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
		r.State, r.Changed, r.Report = Pending, g.now(), nil
	})
	if err == nil {
		g.log.Info("re-armed", "host", rec.Hostname, "mac", mac)
	}
	return rec, err
}
