package main

import (
	"bytes"
	"context"
	"errors"
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

// lookup finds what a served name is: generated content, or a file of the
// media, the boot loaders or -root.
func (s *site) lookup(name string) (data []byte, fsys fs.FS, rel string, ok bool) {
	if b, ok := s.files[name]; ok {
		return b, nil, "", true
	}
	if b, ok := s.menus.Lookup(name); ok {
		return b, nil, "", true
	}
	if fsys, rel, ok := s.media.Lookup(name); ok {
		return nil, fsys, rel, true
	}
	if s.loaders.Has(name) {
		return nil, s.loaders, name, true
	}
	return nil, s.extra, name, s.extra != nil
}

// step logs a client's step when name marks one: stage=NAME mac=MAC.
func (s *site) step(ctx context.Context, ip netip.Addr, name, proto string, attrs ...slog.Attr) {
	st, ok := s.stages[name]
	if _, menu := bootmenu.MenuKind(name); menu {
		st, ok = "menu", true
	} else if !ok && s.loaders.Has(name) && !strings.HasSuffix(name, ".c32") {
		st, ok = "bootloader", true
	}
	if ok {
		s.logStep(ctx, st, ip, name, append(attrs, slog.String("proto", proto))...)
	}
}

// logStep logs one client step; the MAC is the one DHCP (or the
// neighbour table) ties to ip, unless the caller knows it (hw).
func (s *site) logStep(ctx context.Context, stage string, ip netip.Addr, detail string, attrs ...slog.Attr) {
	hw, _ := s.binds.MAC(ip)
	s.logMAC(ctx, stage, hw, ip, detail, attrs...)
}

func (s *site) logMAC(ctx context.Context, stage string, hw net.HardwareAddr, ip netip.Addr, detail string, attrs ...slog.Attr) {
	mac := "unknown"
	if hw != nil {
		mac = hw.String()
	}
	all := append([]slog.Attr{slog.String("stage", stage), slog.String("mac", mac), slog.String("ip", ip.String())}, attrs...)
	s.log.LogAttrs(ctx, slog.LevelInfo, "client step", append(all, slog.String("detail", detail))...)
}

func (s *site) serveTFTP(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
	data, fsys, rel, ok := s.lookup(r.Name)
	switch {
	case !ok:
		w.Error(fs.ErrNotExist)
	case fsys == nil:
		w.ServeContent(bytes.NewReader(data), int64(len(data)))
	default:
		if r, err := r.WithName(rel); err == nil {
			tftpsrv.FileServer(fsys).ServeTFTP(w, r)
		} else {
			w.Error(err)
		}
	}
}

func (s *site) tftpEvent(ev tftpsrv.Event) {
	if ev.Kind != tftpsrv.TransferEnd || ev.Probe {
		return
	}
	if ev.Err != nil {
		s.step(context.Background(), ev.RemoteAddr.Addr(), ev.Name, "tftp", slog.String("error", ev.Err.Error()))
		return
	}
	s.step(context.Background(), ev.RemoteAddr.Addr(), ev.Name, "tftp", slog.Int64("bytes", ev.Bytes), slog.Duration("took", ev.Duration))
}

// serveHTTP serves content only (GET and HEAD, files, never a listing).
func (s *site) serveHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && r.Method == http.MethodGet {
		s.step(r.Context(), ap.Addr().Unmap(), name, "http")
	}
	if _, _, ok := s.media.Lookup(name); ok || name == "image.iso" {
		s.media.Handler().ServeHTTP(w, r)
		return
	}
	data, fsys, rel, ok := s.lookup(name)
	switch {
	case !ok:
		http.NotFound(w, r)
	case fsys == nil:
		http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(data))
	default:
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rel
		isosrc.FileServer(fsys).ServeHTTP(w, r2)
	}
}

// report logs the installer's completion report and the installed
// system's first-boot report: stage=done or stage=failed.
func (s *site) report(r *http.Request, rep *answerfile.Report) error {
	ip := netip.Addr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().Unmap()
	}
	// A MAC in the path counts only when the boot made it known: nobody
	// can invent hosts.
	if p := r.PathValue("mac"); p != "" {
		hw, err := net.ParseMAC(strings.ReplaceAll(p, "-", ":"))
		if err != nil || len(hw) != 6 {
			return errors.New("not a MAC address")
		}
		if known, ok := s.binds.IP(hw); ok {
			ip = known
		}
	}
	if e := rep.Event; e != nil {
		s.logStep(r.Context(), "installing", ip, strings.TrimSpace(e.Type+" "+e.Name+" "+e.Result), slog.String("proto", "report"))
		return nil
	}
	stage := "done"
	if rep.Status != answerfile.StatusOK {
		stage = "failed"
	}
	s.logStep(r.Context(), stage, ip, strings.Join(rep.Failed(), ", "), slog.String("proto", "report"),
		slog.String("report", rep.Stage), slog.String("status", rep.Status), slog.String("hostname", rep.Hostname),
		slog.String("os", rep.OS), slog.Int("checks", len(rep.Checks)), slog.Int("failed_checks", len(rep.Failed())))
	return nil
}

// maxReport bounds a report body: answerfile.MaxReportChecks checks fit.
const maxReport = 256 << 10

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
	} else if s.loaders.Has(bootmenu.LoaderGRUBAA64) {
		s.log.Warn("proxy mode: ARM64 UEFI clients get shim and GRUB, which take their TFTP server from the address server's ACK: point the network DHCP server's next-server here, or use -dhcp full")
	}
	return dhcpsrv.New(cfg)
}

// dhcpEvent learns who is behind an address and logs offers and ACKs.
func (s *site) dhcpEvent(ev dhcpsrv.Event) {
	s.binds.Observe(ev)
	if ev.Type == dhcpsrv.EventOffer || ev.Type == dhcpsrv.EventAck {
		s.logMAC(context.Background(), "dhcp", ev.Client.MAC, ev.IP, ev.BootFile,
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
	hl, err := net.Listen("tcp", c.http)
	if err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	if dhcp != nil {
		if err := dhcp.Listen(); err != nil {
			hl.Close()
			return err
		}
	}
	mux := http.NewServeMux()
	rep := answerfile.ReportHandler(maxReport, s.report)
	mux.Handle("POST /api/report", rep)
	mux.Handle("POST /api/report/{mac}", rep)
	mux.Handle("/", isosrc.ContentOnly(http.HandlerFunc(s.serveHTTP)))
	hs := isosrc.NewHTTPServer(mux, c.httpLimits)
	ts := &tftpsrv.Server{Handler: tftpsrv.HandlerFunc(s.serveTFTP), Logger: s.log, OnEvent: s.tftpEvent}
	// Serve until ctx ends or one server fails; then stop them all.
	errc := make(chan error, 3)
	stops := []func(context.Context) error{hs.Shutdown, ts.Shutdown}
	go func() { errc <- ts.Serve(tl) }()
	go func() { errc <- hs.Serve(isosrc.LimitListener(hl, c.httpLimits)) }()
	if dhcp != nil {
		go func() { errc <- dhcp.Serve(ctx) }()
		stops = append([]func(context.Context) error{dhcp.Shutdown}, stops...) // first: send nobody here any more
	}
	ready()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, stop := range stops {
		_ = stop(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, dhcpsrv.ErrServerClosed) {
		err = nil
	}
	return err
}
