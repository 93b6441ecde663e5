package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/examples/internal/chain"
	"github.com/pxekit/pxekit/internal/bootfiles"
	"github.com/pxekit/pxekit/internal/progress"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// serve composes the packages and runs until ctx ends.
func serve(ctx context.Context, c *config, log *slog.Logger, out io.Writer) error {
	iface, serverIP, err := chain.PickInterface(c.iface, c.serverIP, c.dhcpMode != "off")
	if err != nil {
		return err
	}
	httpBase, err := chain.HTTPBase(serverIP, c.httpAddr)
	if err != nil {
		return err
	}
	site := &chain.Site{HTTPBase: httpBase, Log: log, Tracker: progress.New(log)}

	// What to install: the ISO (detected, unless -os overrides) and, for
	// installers whose ISO initrd cannot netboot, a netboot tree.
	var iso *isosrc.Image
	var distro *isosrc.Distro
	osID := c.osID
	if c.iso != "" {
		if iso, err = isosrc.Open(c.iso); err != nil {
			return err
		}
		defer iso.Close()
		if osID != "" {
			distro, err = isosrc.DetectAs(iso, osID)
		} else {
			distro, err = isosrc.Detect(iso)
		}
		if err != nil {
			return fmt.Errorf("%s: %w (name the OS with -os ID to override)", c.iso, err)
		}
		osID = distro.OSID
		site.ISO, site.ISOFile = iso, c.iso
	}
	if c.netboot != "" {
		nb, err := chain.OpenNetboot(c.netboot)
		if err != nil {
			return fmt.Errorf("-netboot: %w", err)
		}
		if cl, ok := nb.(io.Closer); ok {
			defer cl.Close()
		}
		site.Netboot = nb
		if distro != nil {
			if err := distro.UseNetboot(nb); err != nil {
				return fmt.Errorf("-netboot: %w", err)
			}
		} else {
			// Without an ISO, the tree says which architecture it boots.
			distro = chain.NetbootDistro(osID, nb)
		}
	}
	if distro != nil {
		for _, w := range distro.Warnings {
			log.Warn("iso", "warning", w)
		}
	}
	if c.root != "" {
		// Regular files inside -root only: no symbolic link out of it, no
		// listing, no FIFO or device to block on.
		root, err := tftpsrv.Dir(c.root)
		if err != nil {
			return fmt.Errorf("-root: %w", err)
		}
		defer root.Close()
		site.Extra = root
	}

	src := chain.LoaderSource(iso, distro, log)
	src.Netboot = site.Netboot
	loaders, err := bootfiles.Find(src, "/")
	if err != nil && osID != "" {
		return err
	}
	if loaders != nil {
		site.Loaders = loaders
		for _, m := range loaders.Missing() {
			log.Warn("boot loaders", "missing", m)
		}
	}

	if osID != "" {
		demo, err := configureInstall(c, site, osID, distro, serverIP)
		if err != nil {
			return err
		}
		log.Warn("lab tool: every client gets the same answer file, and anyone on this network segment can read it over HTTP (" + httpBase + "answer/...)")
		if len(demo) > 0 {
			log.Warn("-demo-password: " + chain.DemoWarning(demo))
		}
	}

	mux := http.NewServeMux()
	reports := &reporter{tracker: site.Tracker}
	mux.Handle("POST /api/report", reports)
	mux.Handle("POST /api/report/{mac}", reports)
	mux.Handle("/", site.HTTPHandler())
	srv := &chain.Servers{
		Log:        log,
		TFTP:       &tftpsrv.Server{Handler: site.TFTPHandler(), Logger: log, OnEvent: site.TFTPEvent},
		TFTPAddr:   c.tftpAddr,
		HTTP:       chain.NewHTTPServer(mux, c.httpLimits),
		HTTPAddr:   c.httpAddr,
		HTTPLimits: c.httpLimits,
	}
	if c.dhcpMode != "off" {
		srv.DHCP = func() (*dhcpsrv.Server, error) { return newDHCP(c, site, iface, serverIP) }
		srv.DHCPWhere = iface + ":67"
	}
	return srv.Run(ctx, func() {
		site.Banner(out, chain.BannerInfo{
			OSID: osID, ISO: c.iso, Interface: iface, ServerIP: serverIP, DHCP: c.dhcpMode,
			TFTPAddr: c.tftpAddr, HTTPAddr: c.httpAddr,
		})
	})
}

// configureInstall renders the answer file and menus for osID into site.
// It returns the accounts that carry the public demo password (only with
// -demo-password).
func configureInstall(c *config, site *chain.Site, osID string, distro *isosrc.Distro, serverIP netip.Addr) ([]string, error) {
	spec, err := buildSpec(c)
	if err != nil {
		return nil, err
	}
	if spec.Callback.URL == "" {
		// One answer file for every client: the report names no MAC, the
		// server finds it from the reporting address.
		spec.Callback.URL = site.HTTPBase + "api/report"
	}
	dns, err := chain.Nameservers(c.dns, serverIP)
	if err != nil {
		return nil, err
	}
	demo, err := checkCredentials(c, spec)
	if err != nil {
		return nil, err
	}
	return demo, site.AddInstall(chain.Install{
		OSID:        osID,
		Distro:      distro,
		Spec:        spec,
		Mirror:      c.mirror,
		Console:     c.console,
		Nameservers: dns,
	})
}

// buildSpec is the -spec file, else the demo spec with the operator's
// credentials: -root-password-hash and -ssh-key go to root and to the
// sudo user ops alike, so that the demo password is on no account. With
// keys and no password, ops gets a random password nobody knows (the
// installers want one for the first user) and sudo without a password.
func buildSpec(c *config) (*answerfile.Spec, error) {
	if c.specFile != "" {
		data, err := os.ReadFile(c.specFile)
		if err != nil {
			return nil, err
		}
		spec, err := answerfile.ParseSpec(data)
		if err != nil {
			return nil, fmt.Errorf("-spec %s: %w", c.specFile, err)
		}
		return spec, nil
	}
	spec := answerfile.DemoSpec(c.layout)
	if c.passwordHash == "" && c.sshKeyFile == "" {
		return spec, nil // demo credentials, refused without -demo-password
	}
	var keys []string
	if c.sshKeyFile != "" {
		var err error
		if keys, err = readKeys(c.sshKeyFile); err != nil {
			return nil, err
		}
	}
	spec.Root.Password = answerfile.Password{Hash: c.passwordHash}
	spec.Root.SSHKeys = keys
	for i := range spec.Users {
		u := &spec.Users[i]
		u.SSHKeys = keys
		u.Password = answerfile.Password{Hash: c.passwordHash}
		if c.passwordHash == "" {
			u.Password = answerfile.Password{Plain: answerfile.Secret(rand.Text())}
			u.SudoNoPassword = true
		}
	}
	return spec, nil
}

// checkCredentials refuses a spec that would install the public demo
// password without -demo-password, or keep it next to the operator's own
// credentials.
func checkCredentials(c *config, spec *answerfile.Spec) ([]string, error) {
	demo, err := chain.CheckCredentials(spec, c.demoPassword)
	switch {
	case errors.Is(err, chain.ErrNoCredentials) && c.specFile != "":
		return nil, fmt.Errorf("-spec %s: %w: set root.password, root.ssh_keys or a user's, or give -demo-password to install with the PUBLIC demo password %q (lab only)", c.specFile, err, answerfile.DemoPassword)
	case errors.Is(err, chain.ErrNoCredentials):
		return nil, fmt.Errorf("%w for the installed systems: give -root-password-hash HASH (openssl passwd -6) or -ssh-key FILE, or -demo-password to install with the PUBLIC demo password %q (lab only)", err, answerfile.DemoPassword)
	case err != nil && c.specFile != "":
		return nil, fmt.Errorf("-spec %s: %w", c.specFile, err)
	}
	return demo, err
}

func newDHCP(c *config, site *chain.Site, iface string, serverIP netip.Addr) (*dhcpsrv.Server, error) {
	mode, err := dhcpsrv.ParseMode(c.dhcpMode)
	if err != nil {
		return nil, err
	}
	var files fs.FS // a nil *bootfiles.Set must stay a nil interface
	if site.Loaders != nil {
		files = site.Loaders
	}
	cfg := dhcpsrv.Config{
		Interface: iface, Mode: mode, ServerIP: serverIP,
		HTTPBase: site.HTTPBase, BootFiles: files,
		LeaseFile: c.leaseFile, Logger: site.Log, OnEvent: site.DHCPEvent,
	}
	table := &dhcpsrv.BootTable{ServerIP: serverIP, HTTPBase: site.HTTPBase, Files: files}
	cfg.Boot = chain.BootPolicy(table, chain.BootOptions{
		Proxy:       mode == dhcpsrv.ModeProxy,
		IPXEScript:  c.ipxeScript,
		HaveSNPOnly: site.Loaders != nil && site.Loaders.Has("ipxe/snponly.efi"),
	})
	if mode == dhcpsrv.ModeProxy {
		site.Log.Info("proxy mode: UEFI PXE clients chainload iPXE (ipxe/snponly.efi), because GRUB takes its server from the address server's ACK and ignores proxyDHCP; for Secure Boot use -dhcp full, or point the network DHCP server's next-server here")
		if site.Loaders != nil && site.Loaders.Has(bootfiles.GRUBAA64) {
			// No iPXE for ARM64 to chainload: its GRUB reads the ACK.
			site.Log.Warn("proxy mode: ARM64 UEFI clients get shim and GRUB (grubaa64.efi), which takes its TFTP server from the address server's ACK: point the network DHCP server's next-server (siaddr) here, or use -dhcp full")
		}
	}
	if mode == dhcpsrv.ModeFull {
		if cfg.Subnet, err = dhcpsrv.SubnetFromInterface(iface, c.pool); err != nil {
			return nil, fmt.Errorf("-pool: %w", err)
		}
		if dns, err := chain.Nameservers(c.dns, serverIP); err == nil {
			cfg.Subnet.DNS = dns
		}
		cfg.Probe = dhcpsrv.ICMPProbe(300 * time.Millisecond)
	}
	srv, err := dhcpsrv.New(cfg)
	if err != nil {
		return nil, chain.PortError("DHCP", iface+":67", err)
	}
	return srv, nil
}

func readKeys(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("-ssh-key: %w", err)
	}
	var keys []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, l)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("-ssh-key %s: no key in the file", file)
	}
	return keys, nil
}
