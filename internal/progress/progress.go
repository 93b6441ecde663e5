// Package progress follows each client through the boot chain for the
// examples: it learns which MAC address stands behind an IP address (from
// DHCP, else from the kernel's neighbour table), and logs one line per step
// with stage=NAME mac=MAC, so that an operator can follow any host through
// DHCP, boot loader, menu, kernel, initrd and answer file.
package progress

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Stage names one step of the boot chain.
type Stage string

// The stages, in the order a host normally passes them.
const (
	DHCP       Stage = "dhcp"
	Bootloader Stage = "bootloader"
	Menu       Stage = "menu"
	Kernel     Stage = "kernel"
	Initrd     Stage = "initrd"
	Answer     Stage = "answer"
	Installing Stage = "installing"
	Done       Stage = "done"
	Failed     Stage = "failed"
)

// Unknown is the MAC reported for a client whose address could not be
// tied to a MAC.
const Unknown = "unknown"

// Step is one observation of a host.
type Step struct {
	Stage  Stage
	At     time.Time
	Detail string
}

// Host is what is known about one MAC address.
type Host struct {
	MAC   string
	IP    netip.Addr
	Steps []Step
}

// Last returns the latest step, or a zero Step.
func (h Host) Last() Step {
	if len(h.Steps) == 0 {
		return Step{}
	}
	return h.Steps[len(h.Steps)-1]
}

// Tracker records steps per host. Its zero value is not usable; call New.
type Tracker struct {
	log *slog.Logger
	// neighbours reads the kernel's IPv4 neighbour table; replaced in tests.
	neighbours func() io.ReadCloser
	now        func() time.Time

	mu    sync.Mutex
	byIP  map[netip.Addr]string
	hosts map[string]*Host
}

// New returns a Tracker that logs to log (nil: silent).
func New(log *slog.Logger) *Tracker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{
		log: log,
		neighbours: func() io.ReadCloser {
			f, err := os.Open("/proc/net/arp")
			if err != nil {
				return io.NopCloser(strings.NewReader(""))
			}
			return f
		},
		now:   time.Now,
		byIP:  map[netip.Addr]string{},
		hosts: map[string]*Host{},
	}
}

// NormalizeMAC returns mac in lower-case colon form, or "" when it is not a
// 48-bit MAC address.
func NormalizeMAC(mac string) string {
	hw, err := net.ParseMAC(strings.ReplaceAll(mac, "-", ":"))
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

// Bind records that mac uses ip; DHCP is the authority for that.
func (t *Tracker) Bind(mac string, ip netip.Addr) {
	mac = NormalizeMAC(mac)
	if mac == "" || !ip.IsValid() || ip.IsUnspecified() {
		return
	}
	ip = ip.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byIP[ip] = mac
	t.host(mac).IP = ip
}

// MAC returns the MAC address behind ip: the one DHCP bound, else the
// kernel's neighbour entry (a TFTP or HTTP client has just talked to us, so
// the kernel has resolved it), else Unknown.
func (t *Tracker) MAC(ip netip.Addr) string {
	ip = ip.Unmap()
	t.mu.Lock()
	mac, ok := t.byIP[ip]
	t.mu.Unlock()
	if ok {
		return mac
	}
	if mac := lookupNeighbour(t.neighbours(), ip); mac != "" {
		t.Bind(mac, ip)
		return mac
	}
	return Unknown
}

// lookupNeighbour reads a /proc/net/arp table for ip.
func lookupNeighbour(rc io.ReadCloser, ip netip.Addr) string {
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != ip.String() {
			continue
		}
		if mac := NormalizeMAC(f[3]); mac != "" && mac != "00:00:00:00:00:00" {
			return mac
		}
	}
	return ""
}

// Observe records that mac reached stage and logs it. detail is free text
// such as a file name; attrs are added to the log line.
func (t *Tracker) Observe(ctx context.Context, mac string, stage Stage, detail string, attrs ...slog.Attr) {
	if n := NormalizeMAC(mac); n != "" {
		mac = n
	} else {
		mac = Unknown
	}
	now := t.now()
	t.mu.Lock()
	h := t.host(mac)
	h.Steps = append(h.Steps, Step{Stage: stage, At: now, Detail: detail})
	t.mu.Unlock()
	all := append([]slog.Attr{slog.String("stage", string(stage)), slog.String("mac", mac)}, attrs...)
	if detail != "" {
		all = append(all, slog.String("detail", detail))
	}
	t.log.LogAttrs(ctx, slog.LevelInfo, "client step", all...)
}

// ObserveIP is Observe for a client known only by its address.
func (t *Tracker) ObserveIP(ctx context.Context, ip netip.Addr, stage Stage, detail string, attrs ...slog.Attr) {
	t.Observe(ctx, t.MAC(ip), stage, detail, append(attrs, slog.String("ip", ip.Unmap().String()))...)
}

// Last returns the latest step of mac (any form NormalizeMAC accepts).
func (t *Tracker) Last(mac string) (Step, bool) {
	if n := NormalizeMAC(mac); n != "" {
		mac = n
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.hosts[mac]
	if !ok || len(h.Steps) == 0 {
		return Step{}, false
	}
	return h.Steps[len(h.Steps)-1], true
}

// Hosts returns a copy of every host seen, sorted by MAC.
func (t *Tracker) Hosts() []Host {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Host, 0, len(t.hosts))
	for _, h := range t.hosts {
		c := *h
		c.Steps = append([]Step(nil), h.Steps...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out
}

// host returns the record for mac, creating it. t.mu must be held.
func (t *Tracker) host(mac string) *Host {
	h, ok := t.hosts[mac]
	if !ok {
		h = &Host{MAC: mac}
		t.hosts[mac] = h
	}
	return h
}
