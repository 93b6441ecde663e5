// Command minimal installs one operating system on every PXE client that
// asks: proxyDHCP on one interface, TFTP for the boot loaders and menus, HTTP
// for the install tree, kernel, initrd and answer file — all from one ISO,
// without mounting it. It is built from the five pxekit packages alone.
//
//	sudo go run ./examples/minimal
//	sudo go run ./examples/minimal -iso Rocky-9.0-x86_64-dvd.iso -ssh-key ~/.ssh/id_ed25519.pub
//	go run ./examples/minimal -dhcp off -tftp-addr 127.0.0.1:6969 -http-addr 127.0.0.1:8080 -root DIR
//
// With no flags it serves Debian 12 from the host's netboot installer
// (Debian package debian-installer-12-netboot-amd64) and installs the
// operator's SSH public keys (~/.ssh/id_*.pub, else authorized_keys).
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
// operator's: -root-password-hash, -ssh-key or a -spec with a password or
// key; -demo-password installs the public demo password instead, and says so.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/isosrc"
)

// debianNetboot is where debian-installer-12-netboot-amd64 puts its tree:
// what minimal serves when given nothing.
const debianNetboot = "/usr/lib/debian-installer/images/12/amd64/text"

// config is everything the flags say.
type config struct {
	iso, osID, netboot, mirror    string
	dhcpMode, iface, pool, lease  string
	serverIP, root, tftp, http    string
	layout, passwordHash, sshKeys string
	console, dns, specFile        string
	ipxe, demoPassword, frontDoor bool
	grubHTTP                      bool
	dnsAddrs                      []netip.Addr
	keysFrom                      string // the file the SSH keys came from
	args                          []bootmenu.Arg
	// httpLimits bound HTTP clients (zero: isosrc's defaults); tests
	// shorten them.
	httpLimits isosrc.HTTPLimits
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = serve(ctx, cfg, slog.New(slog.NewTextHandler(stderr, nil)), stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "minimal:", err)
		if cfg == nil {
			return 2
		}
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	var ids []string
	for _, os := range isosrc.OSes() {
		ids = append(ids, os.ID)
	}
	fl := flag.NewFlagSet("minimal", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&c.iso, "iso", "", "distribution ISO to install (read in place, never mounted)")
	fl.StringVar(&c.osID, "os", "", "OS identifier, to override detection or when no ISO is given: "+strings.Join(ids, " "))
	fl.StringVar(&c.netboot, "netboot", "", "directory or netboot.tar.gz with the installer kernel and initrd, for installers whose ISO initrd cannot netboot (Debian)")
	fl.StringVar(&c.mirror, "mirror", "", "Debian: package mirror URL (default: the ISO tree when an ISO is given, else http://deb.debian.org/debian)")
	fl.StringVar(&c.dhcpMode, "dhcp", "proxy", "DHCP mode: proxy (answers PXE clients only, hands out no address), full (also leases addresses from -pool), or off")
	fl.StringVar(&c.iface, "iface", "", "network interface to serve (default: the first up, non-loopback IPv4 interface)")
	fl.StringVar(&c.pool, "pool", "", "full DHCP mode: addresses to lease, FIRST-LAST, inside the interface's subnet")
	fl.StringVar(&c.lease, "lease-file", "", "full DHCP mode: lease database, kept across restarts and crashes (default: leases in memory)")
	fl.StringVar(&c.serverIP, "server-ip", "", "address clients reach this server at (default: the interface's first IPv4 address)")
	fl.StringVar(&c.root, "root", "", "directory of extra files to serve over TFTP and HTTP")
	fl.StringVar(&c.tftp, "tftp-addr", ":69", "TFTP listen address")
	fl.StringVar(&c.http, "http-addr", ":8080", "HTTP listen address")
	fl.StringVar(&c.layout, "layout", "plain", "disk layout of the installed system: plain or lvm (GPT; BIOS and UEFI)")
	fl.StringVar(&c.passwordHash, "root-password-hash", "", "password of root and of the sudo user ops, as a crypt hash ($6$...; make one with: openssl passwd -6)")
	fl.StringVar(&c.sshKeys, "ssh-key", "", "file with SSH public keys for root and ops (without -root-password-hash, ops logs in by key only and sudoes without a password)")
	fl.BoolVar(&c.demoPassword, "demo-password", false, "lab only: with no other credential, install root and ops with the PUBLIC demo password "+answerfile.DemoPassword)
	fl.StringVar(&c.specFile, "spec", "", "answer-file spec in YAML (overrides -layout, -root-password-hash and -ssh-key)")
	fl.StringVar(&c.console, "console", "", "kernel console for the installer, e.g. ttyS0,115200n8")
	kargs := fl.String("args", "", "more kernel arguments for the installer, space-separated, e.g. \"nomodeset vga=791\"")
	fl.StringVar(&c.dns, "dns", "", "comma-separated DNS servers for clients (default: the host's non-loopback resolvers, else this server)")
	fl.BoolVar(&c.grubHTTP, "grub-http", true, "let Debian's signed GRUB load its http module when Secure Boot is off and read kernel and initrd over HTTP; false keeps them on TFTP")
	fl.BoolVar(&c.ipxe, "ipxe", true, "give iPXE clients (option 77/175) the HTTP boot script; false treats them as plain PXE clients")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fl.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q (flags come first: -iso FILE)", fl.Arg(0))
	case c.dhcpMode != "proxy" && c.dhcpMode != "full" && c.dhcpMode != "off":
		return nil, fmt.Errorf("-dhcp %q: want proxy, full or off", c.dhcpMode)
	case c.dhcpMode == "full" && c.pool == "":
		return nil, errors.New("-dhcp full needs -pool FIRST-LAST: the addresses it may lease")
	case c.layout != "plain" && c.layout != "lvm":
		return nil, fmt.Errorf("-layout %q: want plain or lvm", c.layout)
	}
	var err error
	if c.args, err = bootmenu.ParseArgs(*kargs); err != nil {
		return nil, fmt.Errorf("-args: %w", err)
	}
	for _, f := range strings.FieldsFunc(c.dns, func(r rune) bool { return r == ',' || r == ' ' }) {
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("-dns %q: %w", f, err)
		}
		c.dnsAddrs = append(c.dnsAddrs, ip)
	}
	if _, ok := isosrc.LookupOS(c.osID); c.osID != "" && !ok {
		return nil, fmt.Errorf("-os %q: unknown; known: %s", c.osID, strings.Join(ids, " "))
	}
	if len(args) == 0 {
		// The front door: what a newcomer gets from "go run".
		if _, err := os.Stat(debianNetboot); err != nil {
			return nil, fmt.Errorf("nothing to serve: with no flags minimal serves Debian 12 from its netboot installer, which is not installed (apt-get install debian-installer-12-netboot-amd64); or give -iso FILE, -os ID -netboot DIR, or -root DIR")
		}
		c.osID, c.netboot, c.frontDoor = "debian-12", debianNetboot, true
	}
	if c.iso == "" && c.osID == "" && c.root == "" {
		return nil, errors.New("nothing to serve: give -iso FILE, or -os ID with -netboot DIR, or -root DIR")
	}
	return c, nil
}
