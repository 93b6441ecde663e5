// Command fleet installs a rack: each MAC of an inventory file gets its own
// hostname, OS profile, disk layout, boot menu and answer file, installs
// once, and then boots its disk; an operator follows every machine on a
// live status page.
//
//	sudo go run ./examples/fleet -inventory fleet.yaml
//	sudo go run ./examples/fleet -inventory fleet.yaml -dhcp full -pool 10.0.0.100-10.0.0.200
//	go run ./examples/fleet -inventory fleet.yaml -check
//
// One gate decides, per MAC, what every route gives: DHCP (boot file),
// TFTP and HTTP (menus) and HTTP (answer files). A listed host that has not
// reported installs; when its installer posts the completion report (added
// to every answer file), its next network boot gets a menu that boots the
// local disk at once, even after a restart of this server. Re-arm a host
// with
//
//	curl -X POST -H 'X-Pxekit-Request: 1' http://SERVER:8080/api/hosts/web01/reinstall
//
// or -reinstall web01 at start. Progress: http://SERVER:8080/status (and
// /status.json), and a table on the terminal.
//
// Safe by default, as examples/minimal: proxyDHCP (no addresses handed
// out), read-only TFTP, passwords never logged, bounded HTTP clients, no
// default credential (a host whose spec sets no password and no SSH key is
// an inventory problem unless the inventory says demo_password: true), and
// MACs that are not in the inventory boot their disk unless the inventory
// says otherwise.
//
// Memory: fleet runs the garbage collector with GOGC=50 unless the
// environment sets GOGC (see gcPercent).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pxekit/pxekit/isosrc"
)

// config is everything the flags say.
type config struct {
	inventory, state, reinstall string
	store                       string // -store: "" (the state file) or etcd://...
	dhcpMode, iface, pool       string
	leaseFile, serverIP, dns    string
	tftpAddr, httpAddr          string
	syslogAddr, apiToken        string
	progress                    string
	check, grubHTTP             bool
	power, powerCheck           bool // -power, -power-check
	powerParallel               int
	bootTimeout                 time.Duration
	hostRoot                    string // boot loader packages; "/" (tests use a fake root)

	// httpLimits bound HTTP clients (zero: isosrc's defaults); tests
	// shorten them.
	httpLimits isosrc.HTTPLimits
}

// gcPercent is fleet's GOGC when the environment sets none. The Go default,
// 100, lets the heap grow to twice what was live at the last collection,
// and fleet allocates so little while it serves (TFTP sends from reused
// buffers) that the heap stays near that goal for minutes: with 200
// clients at once, 19 MB live held about 40 MB of heap. At 50 the heap is
// held to 1.5 times what is live. Measured with 200 simulated UEFI clients
// at once over loopback (the rack benchmark's TFTP and HTTP steps, kernel
// and initrd cut to 3 MB each; before answer files were packed): peak
// VmHWM 64 MB at 100, 55 MB at 50, 51 MB at 25, for 0.03 s, 0.08 s and
// 0.14 s of collector CPU time out of the server's 13 to 16 s. So 50
// halves the headroom for well under 1 % of CPU; a host short of memory can
// set GOGC lower, or GOMEMLIMIT.
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "fleet:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, cfg, log, stdout); err != nil {
		fmt.Fprintln(stderr, "fleet:", err)
		if errors.Is(err, ErrInventory) {
			return 2
		}
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{hostRoot: "/"}
	fl := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&c.inventory, "inventory", "", "inventory file (YAML): profiles, hosts by MAC, policy for unknown MACs (required)")
	fl.StringVar(&c.state, "state", "", "install-once state file, kept across restarts and crashes (default: the inventory's name with .state.json)")
	fl.StringVar(&c.store, "store", "", "shared state for several servers: etcd://HOST:PORT[,HOST:PORT...]/PREFIX keeps the install state and the DHCP leases in etcd instead of -state and -lease-file (default: the local files)")
	fl.StringVar(&c.reinstall, "reinstall", "", "comma-separated hosts (names or MACs) to re-arm before serving: their next network boot installs again")
	fl.DurationVar(&c.bootTimeout, "boot-timeout", DefaultBootTimeout, "how long after its installer's report a host may take to report its first boot before the status page flags it")
	fl.BoolVar(&c.grubHTTP, "grub-http", true, "let Debian's signed GRUB load its http module when Secure Boot is off and read kernel and initrd over HTTP; false keeps them on TFTP")
	fl.BoolVar(&c.check, "check", false, "check the inventory (media, specs, answer files) and exit")
	fl.BoolVar(&c.power, "power", false, "lights-out: once the servers are up, set every armed host with a bmc to network-boot once and power it on (or power-cycle it when on); the reinstall API does the same for its host")
	fl.IntVar(&c.powerParallel, "power-parallel", DefaultPowerParallel, "most BMCs driven at once by -power and -power-check (power-on inrush)")
	fl.BoolVar(&c.powerCheck, "power-check", false, "ask every host's BMC for its power state, print a table, change nothing, and exit (non-zero if any BMC failed)")
	fl.StringVar(&c.dhcpMode, "dhcp", "proxy", "DHCP mode: proxy (answers PXE clients only, hands out no address), full (also leases addresses from -pool; hosts with an address get it reserved), or off")
	fl.StringVar(&c.iface, "iface", "", "network interface to serve (default: the first up, non-loopback IPv4 interface)")
	fl.StringVar(&c.pool, "pool", "", "full DHCP mode: addresses to lease, FIRST-LAST, inside the interface's subnet")
	fl.StringVar(&c.leaseFile, "lease-file", "", "full DHCP mode: lease database (default: leases in memory)")
	fl.StringVar(&c.serverIP, "server-ip", "", "address clients reach this server at (default: the interface's first IPv4 address)")
	fl.StringVar(&c.dns, "dns", "", "comma-separated DNS servers for clients (default: the host's non-loopback resolvers, else this server)")
	fl.StringVar(&c.tftpAddr, "tftp-addr", ":69", "TFTP listen address")
	fl.StringVar(&c.httpAddr, "http-addr", ":8080", "HTTP listen address (files, answers, reports, API, status page)")
	fl.StringVar(&c.syslogAddr, "syslog-addr", ":5514", "UDP address receiving installer logs (anaconda inst.syslog, d-i log_host) for live progress; empty disables")
	fl.StringVar(&c.apiToken, "api-token", os.Getenv("PXEKIT_API_TOKEN"), "token that lets the reinstall API be used from other machines (Authorization: Bearer TOKEN); without it only this machine may re-arm hosts (default: $PXEKIT_API_TOKEN)")
	fl.StringVar(&c.progress, "progress", "auto", "progress on stdout: table (redrawn every 2 s), log (one line per step on stderr only), auto (table on a terminal)")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags come first: -inventory FILE)", fl.Arg(0))
	}
	if c.inventory == "" {
		return nil, errors.New("give -inventory FILE (see the package documentation for its format)")
	}
	switch c.dhcpMode {
	case "proxy", "full", "off":
	default:
		return nil, fmt.Errorf("-dhcp %q: want proxy, full or off", c.dhcpMode)
	}
	if c.dhcpMode == "full" && c.pool == "" {
		return nil, errors.New("-dhcp full needs -pool FIRST-LAST: the addresses it may lease")
	}
	switch c.progress {
	case "auto", "table", "log":
	default:
		return nil, fmt.Errorf("-progress %q: want auto, table or log", c.progress)
	}
	if c.powerParallel < 1 {
		return nil, fmt.Errorf("-power-parallel %d: want at least 1", c.powerParallel)
	}
	if c.powerCheck && (c.check || c.power || c.reinstall != "") {
		return nil, errors.New("-power-check changes nothing: leave out -check, -power and -reinstall")
	}
	if c.store != "" {
		if _, _, err := ParseStoreURL(c.store); err != nil {
			return nil, err
		}
		if c.leaseFile != "" {
			return nil, errors.New("-store keeps the DHCP leases in etcd: leave out -lease-file")
		}
	}
	if c.check && c.reinstall != "" {
		return nil, errors.New("-check changes nothing: leave out -reinstall")
	}
	if c.state == "" {
		c.state = strings.TrimSuffix(c.inventory, filepath.Ext(c.inventory)) + ".state.json"
	}
	return c, nil
}
