package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// step logs a client's step when name marks one: stage=NAME mac=MAC.
func (s *site) step(ctx context.Context, ip netip.Addr, name, proto string, attrs ...slog.Attr) {
	st, ok := bootmenu.StepOf(name, s.loaders, s.entry)
	if _, answer := s.files[name]; !ok && answer && strings.HasPrefix(name, "answer/") {
		st, ok = "answer", true
	}
	if ok {
		s.logStep(ctx, string(st), nil, ip, name, append(attrs, slog.String("proto", proto))...)
	}
}

// logStep logs one client step; the MAC is hw when the caller knows it,
// else the one DHCP (or the neighbour table) ties to ip.
func (s *site) logStep(ctx context.Context, stage string, hw net.HardwareAddr, ip netip.Addr, detail string, attrs ...slog.Attr) {
	if hw == nil {
		hw, _ = s.binds.MAC(ip)
	}
	mac := "unknown"
	if hw != nil {
		mac = hw.String()
	}
	all := append([]slog.Attr{slog.String("stage", stage), slog.String("mac", mac), slog.String("ip", ip.String())}, attrs...)
	s.log.LogAttrs(ctx, slog.LevelInfo, "client step", append(all, slog.String("detail", detail))...)
}

// tftpEvent logs the files a client received whole as its steps (the
// TFTP server logs failures).
func (s *site) tftpEvent(ev tftpsrv.Event) {
	if ev.Served() {
		s.step(context.Background(), ev.RemoteAddr.Addr(), ev.Name, "tftp", slog.Int64("bytes", ev.Bytes), slog.Duration("took", ev.Duration))
	}
}

// httpHandler serves the report endpoint and, for the rest, content only
// (GET and HEAD, files, never a listing): the media through their own
// handler (image.iso, the ISO's sendfile path), everything else from tree.
func (s *site) httpHandler(tree fs.FS) http.Handler {
	mux := http.NewServeMux()
	rep := answerfile.ReportHandler(maxReport, s.report)
	mux.Handle("POST /api/report", rep)
	mux.Handle("POST /api/report/{mac}", rep)
	media, files := s.media.Handler(), isosrc.FileServer(tree)
	mux.Handle("/", isosrc.Observe(isosrc.ContentOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if _, _, ok := s.media.Lookup(name); ok || name == "image.iso" {
			media.ServeHTTP(w, r)
		} else {
			files.ServeHTTP(w, r)
		}
	})), s.httpEvent))
	return mux
}

// httpEvent logs the files a client received whole as its steps, and
// what it did not get as the TFTP server logs its refusals.
func (s *site) httpEvent(ev isosrc.HTTPEvent) {
	if ev.Served() {
		s.step(ev.Request.Context(), ev.RemoteAddr.Addr(), ev.Name, "http", slog.Int64("bytes", ev.Bytes), slog.Duration("took", ev.Duration))
	} else if ev.Status >= 400 || ev.Err != nil {
		s.log.Info("http request not served", "client", ev.RemoteAddr.String(), "file", ev.Name, "status", ev.Status, "bytes", ev.Bytes, "err", fmt.Sprint(ev.Err))
	}
}

// report logs the installer's completion report and the installed
// system's first-boot report: stage=done or stage=failed.
func (s *site) report(r *http.Request, rep *answerfile.Report) error {
	ip, hw, err := answerfile.ReportSender(r)
	if err != nil {
		return err // names the path element that is not a MAC address
	}
	// A MAC in the path counts only when the boot made it known: nobody
	// can invent hosts.
	if known, ok := s.binds.IP(hw); hw != nil && ok {
		ip = known
	}
	if e := rep.Event; e != nil {
		s.logStep(r.Context(), "installing", nil, ip, e.String(), slog.String("proto", "report"))
		return nil
	}
	stage := "done"
	if rep.Status != answerfile.StatusOK {
		stage = "failed"
	}
	s.logStep(r.Context(), stage, nil, ip, strings.Join(rep.Failed(), ", "), slog.String("proto", "report"),
		slog.String("report", rep.Stage), slog.String("status", rep.Status), slog.String("hostname", rep.Hostname),
		slog.String("os", rep.OS), slog.Int("checks", len(rep.Checks)), slog.Int("failed_checks", len(rep.Failed())))
	return nil
}

// maxReport bounds a report body: answerfile.MaxReportChecks checks fit.
const maxReport = 256 << 10

// newDHCP makes the DHCP server; with -dhcp off it answers nothing.
func (s *site) newDHCP(c *config, iface string, serverIP netip.Addr, base string, dns []netip.Addr) (*dhcpsrv.Server, error) {
	table := &dhcpsrv.BootTable{HTTPBase: base, IgnoreIPXE: !c.ipxe}
	if s.loaders != nil {
		table.Files = s.loaders
	}
	cfg := dhcpsrv.Config{Interface: iface, Mode: dhcpsrv.Mode(c.dhcpMode), ServerIP: serverIP, Boot: table,
		LeaseFile: c.lease, Logger: s.log, OnEvent: s.dhcpEvent}
	if c.dhcpMode == "full" {
		var err error
		if cfg.Subnet, err = dhcpsrv.SubnetFromInterface(iface, c.pool); err != nil {
			return nil, fmt.Errorf("-pool: %w", err)
		}
		cfg.Subnet.DNS, cfg.Probe = dns, dhcpsrv.ICMPProbe(300*time.Millisecond)
	} else if c.dhcpMode == "proxy" && s.loaders.Has(bootmenu.LoaderGRUBAA64) {
		s.log.Warn("proxy mode: ARM64 UEFI clients get shim and GRUB, which take their TFTP server from the address server's ACK: point the network DHCP server's next-server here, or use -dhcp full")
	}
	return dhcpsrv.New(cfg)
}

// dhcpEvent learns who is behind an address and logs offers and ACKs.
func (s *site) dhcpEvent(ev dhcpsrv.Event) {
	s.binds.Observe(ev)
	if ev.Type == dhcpsrv.EventOffer || ev.Type == dhcpsrv.EventAck {
		s.logStep(context.Background(), "dhcp", ev.Client.MAC, ev.IP, ev.BootFile,
			slog.String("msg", string(ev.Type)), slog.String("arch", ev.Client.Arch.String()))
	}
}

// run listens on every socket, calls ready, serves until ctx ends or a
// server fails, then shuts everything down (5 s at most). DHCP starts last:
// a client that gets an offer must find the files served.
func (s *site) run(ctx context.Context, c *config, dhcp *dhcpsrv.Server, ready func()) error {
	if _, err := isosrc.RaiseFileLimit(); err != nil {
		s.log.Warn("cannot raise the open-file limit", "error", err)
	}
	tl, err := tftpsrv.Listen(c.tftp)
	if err != nil {
		return err
	}
	defer tl.Close()
	hl, err := isosrc.Listen(c.http, c.httpLimits)
	if err != nil {
		return err
	}
	defer hl.Close()
	if err := dhcp.Listen(); err != nil {
		return err
	}
	tree := isosrc.Union(s.files, s.menus, s.media, s.loaders, s.extra) // the first that has a name serves it
	ts := &tftpsrv.Server{Handler: tftpsrv.FileServer(tree), Logger: s.log, OnEvent: s.tftpEvent}
	hs := isosrc.NewHTTPServer(s.httpHandler(tree), c.httpLimits)
	ready()
	// The sockets are bound: clients wait in their queues until each
	// server serves, DHCP last; it stops first, sending nobody here any more.
	return dhcp.ServeWith(ctx, 5*time.Second,
		dhcpsrv.Peer{Serve: func() error { return ts.Serve(tl) }, Shutdown: ts.Shutdown},
		dhcpsrv.Peer{Serve: func() error { return hs.Serve(hl) }, Shutdown: hs.Shutdown})
}
