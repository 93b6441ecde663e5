package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// site is what minimal serves, over TFTP and HTTP alike: the generated
// answer files and menus, the media (iso/, image.iso, boot/), the boot
// loaders and -root.
type site struct {
	log     *slog.Logger
	binds   dhcpsrv.Bindings // who is behind a TFTP or HTTP client's address
	media   *isosrc.Media
	loaders *bootmenu.Loaders
	extra   fs.FS
	files   fstest.MapFS // generated, by served name
	menus   bootmenu.Menus
	entry   bootmenu.Entry // the install: its kernel and initrds mark client steps
}

// serve composes the packages and runs until ctx ends.
func serve(ctx context.Context, c *config, log *slog.Logger, out io.Writer) error {
	iface, serverIP, err := dhcpsrv.ServeInterface(c.iface, c.dhcpMode == "off") // without DHCP, loopback will do
	if err != nil {
		return fmt.Errorf("%w (name the interface with -iface)", err)
	}
	if c.serverIP != "" {
		if serverIP, err = netip.ParseAddr(c.serverIP); err != nil || !serverIP.Is4() {
			return fmt.Errorf("-server-ip %q: not an IPv4 address", c.serverIP)
		}
	}
	base, err := isosrc.BaseURL(c.http, serverIP)
	if err != nil {
		return fmt.Errorf("-http-addr: %w", err)
	}
	s := &site{log: log, files: fstest.MapFS{}}
	if s.media, err = isosrc.OpenMedia(c.iso, c.netboot, c.osID, isosrc.Limits{}); errors.Is(err, isosrc.ErrUnknownDistro) {
		return fmt.Errorf("%w (name the OS with -os ID)", err)
	} else if err != nil {
		return err
	}
	defer s.media.Close()
	if c.root != "" {
		root, err := tftpsrv.Dir(c.root) // confined, regular files only
		if err != nil {
			return fmt.Errorf("-root: %w", err)
		}
		defer root.Close()
		s.extra = root
	}
	osID := c.osID
	l, err := s.media.Loaders()
	if err != nil {
		log.Warn("iso: the host's boot loaders serve instead", "error", err)
	}
	if d := s.media.Distro; d != nil {
		osID = d.OSID
		for _, w := range d.Warnings {
			log.Warn("iso", "warning", w)
		}
	}
	if s.loaders, err = bootmenu.FindLoaders(bootmenu.LoaderSource(l), "/"); err != nil && osID != "" {
		return err
	}
	for _, m := range s.loaders.Missing() {
		log.Warn("boot loaders", "missing", m)
	}
	dns := c.dnsAddrs
	if len(dns) == 0 {
		dns = dhcpsrv.DefaultNameservers(serverIP)
	}
	if osID != "" {
		if err := s.install(c, osID, base, dns); err != nil {
			return err
		}
		log.Warn("lab tool: every client gets the same answer file, and anyone on this network segment can read it over HTTP (" + base + "answer/...)")
	}
	dhcp, err := s.newDHCP(c, iface, serverIP, base, dns)
	if err != nil {
		return err
	}
	return s.run(ctx, c, dhcp, func() {
		fmt.Fprintf(out, "pxekit serving on %s (%s): DHCP %s, TFTP %s, HTTP %s\n", iface, serverIP, c.dhcpMode, c.tftp, c.http)
		if osID != "" {
			fmt.Fprintf(out, "  installs: %s from %s\n", osID, strings.TrimSpace(c.iso+" "+c.netboot))
		}
		lines := s.loaders.Origins()
		for n := range s.files {
			lines = append(lines, "generated: "+base+n)
		}
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Fprintln(out, "  "+l)
		}
	})
}

// install renders the answer files and the menus that boot the installer.
func (s *site) install(c *config, osID, base string, dns []netip.Addr) error {
	spec, err := buildSpec(c)
	if err != nil {
		return err
	}
	if spec.Callback.URL == "" {
		// One answer file for all: the report names no MAC, its address does.
		spec.Callback.URL = base + "api/report"
	}
	demo, err := spec.RequireCredentials(c.demoPassword)
	switch {
	case errors.Is(err, answerfile.ErrNoCredentials) && c.frontDoor:
		return fmt.Errorf("%w: found no SSH public key in ~/.ssh (id_ed25519.pub, id_ecdsa.pub, id_rsa.pub, authorized_keys) of the user running minimal; give -ssh-key FILE or -root-password-hash HASH", err)
	case errors.Is(err, answerfile.ErrNoCredentials):
		return fmt.Errorf("%w for the installed systems: give -root-password-hash HASH (openssl passwd -6), -ssh-key FILE or a -spec with a password or key, or -demo-password to install with the PUBLIC demo password %q (lab only)", err, answerfile.DemoPassword)
	case err != nil:
		return err
	case len(demo) > 0:
		s.log.Warn("-demo-password: " + answerfile.DemoWarning(demo))
	case c.frontDoor:
		s.log.Info("installed systems get root and the sudo user ops with the SSH keys of " + c.keysFrom)
	}
	info, _ := isosrc.LookupOS(osID)
	repo, err := s.media.RepoURL(base, info.Family, c.mirror)
	if err != nil {
		return err
	}
	if info.Family == isosrc.FamilyDebianInstaller && spec.Mirror == "" {
		spec.Mirror = repo
	}
	set, err := answerfile.Build(osID, spec, base+"answer/")
	if err != nil {
		return err
	}
	for name, data := range set.Files {
		s.files["answer/"+name] = &fstest.MapFile{Data: data}
	}
	in := bootmenu.InstallInput{RepoURL: repo, AnswerURL: set.URL, Console: c.console, InstallerNet: set.Installer, Extra: c.args}
	if len(in.Nameservers) == 0 {
		in.Nameservers = dns
	}
	if d := s.media.Distro; d != nil {
		in.Kernel, in.Initrds = d.BootFiles()
	}
	if s.entry, err = bootmenu.InstallEntry(osID, "boot", in); err != nil {
		return err
	}
	if _, err := fs.Stat(s.media, s.entry.Kernel); err != nil {
		return fmt.Errorf("%s: the installer kernel %s is not there (%v): give the ISO, or for Debian -netboot", osID, s.entry.Kernel, err)
	}
	dialect, err := s.loaders.Dialect(osID)
	if err != nil {
		return err
	}
	dialect.HTTPInsmod = dialect.HTTPInsmod && c.grubHTTP
	// Timeout 0: running minimal is the decision to install whoever asks; a countdown only delays it.
	menu := &bootmenu.Menu{Title: "pxekit: " + s.entry.Title, Timeout: 0, Default: s.entry.ID,
		Entries: []bootmenu.Entry{s.entry, bootmenu.LocalEntry()}}
	if s.menus, err = bootmenu.RenderAll(menu, bootmenu.Options{HTTPBase: base, GRUBDialect: dialect, PXELinuxUI: "menu.c32"}); err != nil {
		return err
	}
	s.files["boot.ipxe"] = &fstest.MapFile{Data: s.menus[bootmenu.IPXE]}
	return nil
}

// buildSpec is -spec, else the demo spec with the operator's credentials.
func buildSpec(c *config) (*answerfile.Spec, error) {
	if c.specFile != "" {
		spec, err := answerfile.ReadSpec(c.specFile)
		if err != nil {
			return nil, fmt.Errorf("-spec: %w", err)
		}
		return spec, nil
	}
	spec := answerfile.DemoSpec(c.layout)
	var keys []string
	var err error
	if c.frontDoor {
		// The operator's own public keys; without any, refused below.
		keys, c.keysFrom, _ = answerfile.OperatorKeys()
	} else if c.sshKeys != "" {
		if keys, err = answerfile.ReadKeys(c.sshKeys); err != nil {
			return nil, fmt.Errorf("-ssh-key: %w", err)
		}
	}
	if c.passwordHash != "" || len(keys) > 0 {
		spec.SetCredentials(c.passwordHash, keys)
	}
	return spec, nil // without a credential, refused unless -demo-password
}
