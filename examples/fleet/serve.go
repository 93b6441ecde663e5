package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// serve loads the inventory, composes the servers and runs until ctx ends.
func serve(ctx context.Context, c *config, log *slog.Logger, out io.Writer) error {
	inv, invErr := LoadInventory(c.inventory)
	if inv == nil {
		return invErr
	}
	if c.powerCheck {
		return runPowerCheck(ctx, c, inv, invErr, out)
	}
	iface, serverIP, err := pickInterface(c.iface, c.serverIP, c.dhcpMode != "off")
	if err != nil {
		return err
	}
	httpBase, err := isosrc.BaseURL(c.httpAddr, serverIP)
	if err != nil {
		return fmt.Errorf("-http-addr: %w", err)
	}
	dns, err := nameservers(c.dns, serverIP)
	if err != nil {
		return err
	}
	var syslogTo netip.AddrPort
	if c.syslogAddr != "" {
		_, port, err := net.SplitHostPort(c.syslogAddr)
		if err != nil {
			return fmt.Errorf("-syslog-addr %q: %w", c.syslogAddr, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return fmt.Errorf("-syslog-addr %q: bad port", c.syslogAddr)
		}
		syslogTo = netip.AddrPortFrom(serverIP, uint16(p))
	}
	var store *Store
	var leases dhcpsrv.LeaseStore // nil: -lease-file or memory
	if c.store != "" {
		// Several servers, one truth: see etcdstate.go.
		data, err := os.ReadFile(c.inventory)
		if err != nil {
			return err
		}
		sh, err := openSharedStores(ctx, c.store, data, c.dhcpMode == "full", c.check, log)
		if err != nil {
			return err
		}
		defer sh.Close()
		store = sh.state
		if sh.leases != nil {
			leases = sh.leases
		}
	} else {
		open := OpenStore
		if c.check {
			open = ReadStore // look, change nothing, lock nothing
		}
		if store, err = open(c.state); err != nil {
			return err
		}
		defer store.Close()
	}
	f, err := buildFleet(inv, buildOptions{
		HTTPBase: httpBase, ServerIP: serverIP, Proxy: c.dhcpMode == "proxy", DNS: dns,
		Log: log, Store: store, HostRoot: c.hostRoot, Syslog: syslogTo, GRUBTFTPOnly: !c.grubHTTP,
	})
	if err = joinInventoryErrors(c.inventory, invErr, err); err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	defer f.Close()
	for _, w := range inv.DemoWarnings() {
		log.Warn("demo_password: " + w)
	}
	f.apiToken = c.apiToken
	if c.power {
		f.power = newPowerCtl(f, c.powerParallel, log)
		defer f.power.stop()
	}
	f.gate.BootTimeout = c.bootTimeout
	if c.reinstall != "" {
		for _, name := range strings.Split(c.reinstall, ",") {
			if _, err := f.gate.Reinstall(strings.TrimSpace(name)); err != nil {
				return fmt.Errorf("-reinstall: %w", err)
			}
		}
	}
	if c.check {
		fmt.Fprintf(out, "%s: %d profile(s), %d host(s), unknown MACs: %s — OK\n", c.inventory, len(f.profiles), len(inv.Hosts), inv.Unknown)
		writeTable(out, f.status())
		return nil
	}

	dhcp, err := newDHCP(c, f, iface, leases) // with -dhcp off, one that answers nothing
	if err != nil {
		return err
	}
	tctx, stopTable := context.WithCancel(ctx)
	tableDone := make(chan struct{})
	table := false
	err = runServers(ctx, c, f, dhcp, func() {
		fmt.Fprintf(out, "pxekit fleet on %s (%s): DHCP %s, TFTP %s, HTTP %s; %d host(s), %d profile(s); unknown MACs: %s\n",
			iface, serverIP, c.dhcpMode, c.tftpAddr, c.httpAddr, len(inv.Hosts), len(f.profiles), inv.Unknown)
		if f.power != nil {
			f.power.start(ctx)
		}
		fmt.Fprintf(out, "  status:    %sstatus (and status.json)\n  reinstall: curl -X POST -H '%s: 1' %sapi/hosts/HOST/reinstall\n", httpBase, ReinstallHeader, httpBase)
		if c.progress == "table" || (c.progress == "auto" && isTerminal(out)) {
			table = true
			go func() {
				defer close(tableDone)
				drawTable(tctx, out, f)
			}()
		}
	})
	stopTable()
	if table {
		<-tableDone
	}
	return err
}

// runServers opens every socket (DHCP's last: a client that gets an offer
// must find the files served), calls ready, and serves until ctx ends or
// a server fails; then it shuts everything down (5 s at most).
func runServers(ctx context.Context, c *config, f *fleet, dhcp *dhcpsrv.Server, ready func()) error {
	// The HTTP connection cap is sized from this limit, leaving
	// descriptors for TFTP.
	if _, err := isosrc.RaiseFileLimit(); err != nil {
		f.log.Warn("cannot raise the open-file limit", "error", err)
	}
	tl, err := tftpsrv.Listen(c.tftpAddr)
	if err != nil {
		return err
	}
	defer tl.Close()
	hl, err := isosrc.Listen(c.httpAddr, c.httpLimits)
	if err != nil {
		return err
	}
	defer hl.Close()
	var sl net.PacketConn
	if c.syslogAddr != "" {
		if sl, err = net.ListenPacket("udp", c.syslogAddr); err != nil {
			return fmt.Errorf("syslog on %s: %w", c.syslogAddr, err)
		}
		defer sl.Close()
	}
	if err := dhcp.Listen(); err != nil {
		_ = dhcp.Shutdown(context.Background())
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tftp := &tftpsrv.Server{Handler: f.TFTPHandler(), Logger: f.log, OnEvent: f.TFTPEvent}
	web := isosrc.NewHTTPServer(guardContent(f.HTTPHandler()), c.httpLimits)
	peers := []dhcpsrv.Peer{
		{Serve: func() error { return tftp.Serve(tl) }, Shutdown: tftp.Shutdown},
		{Serve: func() error { return web.Serve(hl) }, Shutdown: web.Shutdown},
	}
	if sl != nil {
		peers = append(peers, dhcpsrv.Peer{
			Serve:    func() error { return f.serveSyslog(ctx, sl) },
			Shutdown: func(context.Context) error { cancel(); return nil },
		})
	}
	ready()
	// The sockets are bound: clients wait in their queues until each
	// server serves, DHCP last; it stops first, sending nobody here any more.
	return dhcp.ServeWith(ctx, 5*time.Second, peers...)
}

// pickInterface returns the interface to serve (-iface, else the default
// one, else loopback when no DHCP needs an interface) and the server
// address (-server-ip, else the interface's).
func pickInterface(name, serverIP string, needIface bool) (string, netip.Addr, error) {
	var ip netip.Addr
	if serverIP != "" {
		var err error
		if ip, err = netip.ParseAddr(serverIP); err != nil || !ip.Is4() {
			return "", netip.Addr{}, fmt.Errorf("-server-ip %q: not an IPv4 address", serverIP)
		}
	}
	name, addr, err := dhcpsrv.ServeInterface(name, !needIface)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("-iface: %w", err)
	}
	if !ip.IsValid() {
		ip = addr
	}
	return name, ip, nil
}

// nameservers parses -dns; empty means dhcpsrv.DefaultNameservers.
func nameservers(list string, serverIP netip.Addr) ([]netip.Addr, error) {
	if list == "" {
		return dhcpsrv.DefaultNameservers(serverIP), nil
	}
	var out []netip.Addr
	for _, s := range strings.Split(list, ",") {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-dns %q: %w", s, err)
		}
		out = append(out, ip)
	}
	return out, nil
}

// newDHCP composes the DHCP server; leases, when not nil, is the shared
// lease store of -store.
func newDHCP(c *config, f *fleet, iface string, leases dhcpsrv.LeaseStore) (*dhcpsrv.Server, error) {
	mode := dhcpsrv.Mode(c.dhcpMode) // checked with the flags; New rejects others
	var err error
	cfg := dhcpsrv.Config{
		Interface: iface, Mode: mode, ServerIP: f.serverIP,
		Boot: dhcpsrv.BootFunc(f.boot), LeaseFile: c.leaseFile, Logger: f.log, OnEvent: f.DHCPEvent,
	}
	if leases != nil {
		cfg.Leases, cfg.LeaseFile = leases, ""
	}
	if mode == dhcpsrv.ModeFull {
		if cfg.Subnet, err = dhcpsrv.SubnetFromInterface(iface, c.pool); err != nil {
			return nil, fmt.Errorf("-pool: %w", err)
		}
		cfg.Subnet.DNS = f.dns
		res, outside := f.reservations(cfg.Subnet.Prefix)
		cfg.Subnet.Reservations = res
		for _, o := range outside {
			f.log.Warn("static address outside the served subnet: not reserved", "host", o, "subnet", cfg.Subnet.Prefix)
		}
		cfg.Probe = dhcpsrv.ICMPProbe(300 * time.Millisecond)
	}
	srv, err := dhcpsrv.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("DHCP on %s: %w", iface, err)
	}
	return srv, nil
}

// isTerminal says whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// drawTable redraws the status table every two seconds until ctx ends.
func drawTable(ctx context.Context, out io.Writer, f *fleet) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		fmt.Fprint(out, "\033[H\033[2J")
		fmt.Fprintf(out, "pxekit fleet — %s — %sstatus\n\n", time.Now().Format("15:04:05"), f.httpBase)
		writeTable(out, f.status())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// joinInventoryErrors merges the problems of the file check and of the
// media and answer-file check into one list.
func joinInventoryErrors(file string, errs ...error) error {
	all := &InventoryError{File: file}
	for _, err := range errs {
		var ie *InventoryError
		switch {
		case err == nil:
		case errors.As(err, &ie):
			all.Problems = append(all.Problems, ie.Problems...)
		default:
			return err
		}
	}
	if len(all.Problems) == 0 {
		return nil
	}
	return all
}

// guardContent applies the content rule (GET and HEAD only, paths no file
// can have refused with 400 or 404, see isosrc.ContentOnly) to everything
// but the /api/ routes, which take POST; their paths are checked too.
func guardContent(h http.Handler) http.Handler {
	content := isosrc.ContentOnly(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			if isosrc.GoodPath(w, r) {
				h.ServeHTTP(w, r)
			}
			return
		}
		content.ServeHTTP(w, r)
	})
}
