// Command minimal installs one operating system on every PXE client that
// asks: proxyDHCP on one interface, TFTP for the boot loaders and menus, HTTP
// for the install tree, kernel, initrd and answer file — all from one ISO,
// without mounting it.
//
//	sudo go run ./examples/minimal -iso Rocky-9.0-x86_64-dvd.iso
//	sudo go run ./examples/minimal -os debian-12 -netboot /usr/lib/debian-installer/images/12/amd64/text
//	go run ./examples/minimal -dhcp off -tftp-addr 127.0.0.1:6969 -http-addr 127.0.0.1:8080 -root DIR
//
// It is safe by default: proxyDHCP never hands out an address and answers
// only PXE and HTTP-boot clients; "-dhcp full -pool FIRST-LAST" makes it the
// network's DHCP server. TFTP is read-only. Passwords are never logged.
// Each client step is logged as one line with stage=NAME mac=MAC, and the
// installer's completion report (POST /api/report) as stage=done or
// stage=failed.
//
// It is a lab tool: every client gets the same answer file, and anyone on
// the segment can read it. It installs nothing without a credential of the
// operator's: give -root-password-hash or -ssh-key (root and the sudo user
// "ops" get them), or a -spec with a password or key; -demo-password
// installs with the public demo password instead, and says so at start.
// Only regular files inside -root are served (no symbolic link out of it,
// no directory listing).
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
	"strings"
	"syscall"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/examples/internal/chain"
	"github.com/pxekit/pxekit/internal/osid"
)

// config is everything the flags say.
type config struct {
	iso, osID, netboot, mirror string
	dhcpMode, iface, pool      string
	leaseFile, serverIP        string
	root, tftpAddr, httpAddr   string
	layout, passwordHash       string
	sshKeyFile, console, dns   string
	specFile                   string
	ipxeScript, demoPassword   bool

	// httpLimits bound HTTP clients (zero: chain's defaults); tests
	// shorten them.
	httpLimits chain.HTTPLimits
}

func main() {
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
		fmt.Fprintln(stderr, "minimal:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, cfg, log, stdout); err != nil {
		fmt.Fprintln(stderr, "minimal:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fl := flag.NewFlagSet("minimal", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&c.iso, "iso", "", "distribution ISO to install (read in place, never mounted)")
	fl.StringVar(&c.osID, "os", "", "OS identifier, to override detection or when no ISO is given: "+strings.Join(osid.IDs(), " "))
	fl.StringVar(&c.netboot, "netboot", "", "directory or netboot.tar.gz with the installer kernel and initrd, for installers whose ISO initrd cannot netboot (Debian)")
	fl.StringVar(&c.mirror, "mirror", "", "Debian: package mirror URL (default: the ISO tree when an ISO is given, else http://deb.debian.org/debian)")
	fl.StringVar(&c.dhcpMode, "dhcp", "proxy", "DHCP mode: proxy (answers PXE clients only, hands out no address), full (also leases addresses from -pool), or off")
	fl.StringVar(&c.iface, "iface", "", "network interface to serve (default: the first up, non-loopback IPv4 interface)")
	fl.StringVar(&c.pool, "pool", "", "full DHCP mode: addresses to lease, FIRST-LAST, inside the interface's subnet")
	fl.StringVar(&c.leaseFile, "lease-file", "", "full DHCP mode: lease database, kept across restarts and crashes (default: leases in memory)")
	fl.StringVar(&c.serverIP, "server-ip", "", "address clients reach this server at (default: the interface's first IPv4 address)")
	fl.StringVar(&c.root, "root", "", "directory of extra files to serve over TFTP and HTTP")
	fl.StringVar(&c.tftpAddr, "tftp-addr", ":69", "TFTP listen address")
	fl.StringVar(&c.httpAddr, "http-addr", ":8080", "HTTP listen address")
	fl.StringVar(&c.layout, "layout", "plain", "disk layout of the installed system: plain or lvm (GPT, UEFI)")
	fl.StringVar(&c.passwordHash, "root-password-hash", "", "password of root and of the sudo user ops, as a crypt hash ($6$...; make one with: openssl passwd -6)")
	fl.StringVar(&c.sshKeyFile, "ssh-key", "", "file with SSH public keys for root and ops (without -root-password-hash, ops logs in by key only and sudoes without a password)")
	fl.BoolVar(&c.demoPassword, "demo-password", false, "lab only: with no -root-password-hash, -ssh-key or spec credential, install root and ops with the PUBLIC demo password "+answerfile.DemoPassword+" (without it, minimal refuses)")
	fl.StringVar(&c.specFile, "spec", "", "answer-file spec in YAML (overrides -layout, -root-password-hash and -ssh-key); it must set a password or SSH key, or needs -demo-password")
	fl.StringVar(&c.console, "console", "", "kernel console for the installer, e.g. ttyS0,115200n8")
	fl.StringVar(&c.dns, "dns", "", "comma-separated DNS servers for clients (default: the host's non-loopback resolvers, else this server)")
	fl.BoolVar(&c.ipxeScript, "ipxe", true, "give iPXE clients (option 77/175) the HTTP boot script; false treats them as plain PXE clients (pxelinux.0 on BIOS)")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags come first: -iso FILE)", fl.Arg(0))
	}
	switch c.dhcpMode {
	case "proxy", "full", "off":
	default:
		return nil, fmt.Errorf("-dhcp %q: want proxy, full or off", c.dhcpMode)
	}
	if c.dhcpMode == "full" && c.pool == "" {
		return nil, errors.New("-dhcp full needs -pool FIRST-LAST: the addresses it may lease")
	}
	if c.layout != "plain" && c.layout != "lvm" {
		return nil, fmt.Errorf("-layout %q: want plain or lvm", c.layout)
	}
	if c.osID != "" {
		if _, ok := osid.Lookup(c.osID); !ok {
			return nil, fmt.Errorf("-os %q: unknown; known: %s", c.osID, strings.Join(osid.IDs(), " "))
		}
	}
	if c.iso == "" && c.osID == "" && c.root == "" {
		return nil, errors.New("nothing to serve: give -iso FILE, or -os ID with -netboot DIR, or -root DIR")
	}
	return c, nil
}
