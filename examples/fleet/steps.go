package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Stage names one step of a machine's way through the boot chain, as the
// status page shows it.
type Stage string

// The stages, in the order a host normally passes them.
const (
	StageDHCP       Stage = "dhcp"
	StageBootloader Stage = "bootloader"
	StageMenu       Stage = "menu"
	StageKernel     Stage = "kernel"
	StageInitrd     Stage = "initrd"
	StageAnswer     Stage = "answer"
	StageInstalling Stage = "installing"
	StageInstalled        = Stage(Installed) // from the installer's report
	StageBooted           = Stage(Booted)    // from the installed system's report
	StageFailed     Stage = "failed"
)

// Step is one stage a machine reached.
type Step struct {
	Stage  Stage
	At     time.Time
	Detail string
}

// hostSteps are the latest step of each stage one MAC reached, oldest
// first: the stages, not every request, so a host costs a few lines.
type hostSteps struct {
	MAC   string
	IP    netip.Addr
	Steps []Step
}

// Last returns the latest step, or a zero Step.
func (h hostSteps) Last() Step {
	if len(h.Steps) == 0 {
		return Step{}
	}
	return h.Steps[len(h.Steps)-1]
}

// maxRecent bounds the MACs the status page follows that are neither
// listed nor in the state: anyone can make up MACs.
const maxRecent = 256

// stepLog keeps every machine's steps for the status page and logs each
// one. MACs that keep says are the fleet's are always kept; of the others
// only the maxRecent most recently seen, so memory stays bounded whatever
// the network sends.
type stepLog struct {
	log  *slog.Logger
	keep func(mac string) bool
	now  func() time.Time

	mu    sync.Mutex
	hosts map[string]*hostSteps
}

// add records that mac (nil: a client whose MAC is unknown, logged only)
// reached st, and logs it with attrs.
func (s *stepLog) add(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, st Stage, detail string, attrs ...slog.Attr) {
	key := "unknown"
	if mac != nil {
		key = mac.String()
	}
	all := append([]slog.Attr{slog.String("stage", string(st)), slog.String("mac", key)}, attrs...)
	if detail != "" {
		all = append(all, slog.String("detail", detail))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "client step", all...)
	if mac == nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hosts == nil {
		s.hosts = map[string]*hostSteps{}
	}
	h := s.hosts[key]
	if h == nil {
		if !s.keep(key) {
			s.evict()
		}
		h = &hostSteps{MAC: key}
		s.hosts[key] = h
	}
	if ip.IsValid() && !ip.IsUnspecified() {
		h.IP = ip.Unmap()
	}
	h.Steps = append(slices.DeleteFunc(h.Steps, func(o Step) bool { return o.Stage == st }), Step{Stage: st, At: now, Detail: detail})
}

// evict makes room for one more MAC that is not the fleet's, dropping the
// one seen longest ago when maxRecent are kept; s.mu is held.
func (s *stepLog) evict() {
	n, oldest := 0, ""
	for mac, h := range s.hosts {
		if s.keep(mac) {
			continue
		}
		n++
		if oldest == "" || h.Last().At.Before(s.hosts[oldest].Last().At) {
			oldest = mac
		}
	}
	if n >= maxRecent {
		delete(s.hosts, oldest)
	}
}

// last returns mac's latest step.
func (s *stepLog) last(mac string) (Step, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hosts[mac]
	if !ok || len(h.Steps) == 0 {
		return Step{}, false
	}
	return h.Last(), true
}

// all returns a copy of every MAC's steps, by MAC.
func (s *stepLog) all() map[string]hostSteps {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]hostSteps, len(s.hosts))
	for mac, h := range s.hosts {
		c := *h
		c.Steps = slices.Clone(h.Steps)
		out[mac] = c
	}
	return out
}
