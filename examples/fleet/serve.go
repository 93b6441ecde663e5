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
	"github.com/pxekit/pxekit/examples/internal/chain"
	"github.com/pxekit/pxekit/internal/progress"
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
	iface, serverIP, err := chain.PickInterface(c.iface, c.serverIP, c.dhcpMode != "off")
	if err != nil {
		return err
	}
	httpBase, err := chain.HTTPBase(serverIP, c.httpAddr)
	if err != nil {
		return err
	}
	dns, err := chain.Nameservers(c.dns, serverIP)
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
		Log: log, Tracker: progress.New(log), Store: store, HostRoot: c.hostRoot, Syslog: syslogTo,
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

	srv := &chain.Servers{
		Log:        log,
		TFTP:       &tftpsrv.Server{Handler: f.TFTPHandler(), Logger: log, OnEvent: f.TFTPEvent},
		TFTPAddr:   c.tftpAddr,
		HTTP:       chain.NewHTTPServer(guardContent(f.guardState(f.HTTPHandler())), c.httpLimits),
		HTTPAddr:   c.httpAddr,
		HTTPLimits: c.httpLimits,
	}
	if c.syslogAddr != "" {
		srv.Packet = map[string]func(context.Context, net.PacketConn) error{c.syslogAddr: f.serveSyslog}
	}
	if c.dhcpMode != "off" {
		srv.DHCP = func() (*dhcpsrv.Server, error) { return newDHCP(c, f, iface, leases) }
		srv.DHCPWhere = iface + ":67"
	}
	tctx, stopTable := context.WithCancel(ctx)
	tableDone := make(chan struct{})
	table := false
	err = srv.Run(ctx, func() {
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

// newDHCP composes the DHCP server; leases, when not nil, is the shared
// lease store of -store.
func newDHCP(c *config, f *fleet, iface string, leases dhcpsrv.LeaseStore) (*dhcpsrv.Server, error) {
	mode, err := dhcpsrv.ParseMode(c.dhcpMode)
	if err != nil {
		return nil, err
	}
	cfg := dhcpsrv.Config{
		Interface: iface, Mode: mode, ServerIP: f.serverIP, HTTPBase: f.httpBase,
		Boot: f.boot, LeaseFile: c.leaseFile, Logger: f.log, OnEvent: f.DHCPEvent,
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
		return nil, chain.PortError("DHCP", iface+":67", err)
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
// can have refused with 400 or 404, see chain.ContentOnly) to everything
// but the /api/ routes, which take POST; their paths are checked too.
func guardContent(h http.Handler) http.Handler {
	content := chain.ContentOnly(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			if chain.GoodPath(w, r) {
				h.ServeHTTP(w, r)
			}
			return
		}
		content.ServeHTTP(w, r)
	})
}
