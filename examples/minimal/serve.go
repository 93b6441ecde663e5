package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/examples/internal/chain"
	"github.com/pxekit/pxekit/internal/bootfiles"
	"github.com/pxekit/pxekit/internal/osid"
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
		nb, err := isosrc.OpenNetboot(c.netboot)
		if err != nil {
			return fmt.Errorf("-netboot: %w", err)
		}
		site.Netboot = nb
		if distro != nil {
			if err := distro.UseNetboot(nb); err != nil {
				return fmt.Errorf("-netboot: %w", err)
			}
		}
	}
	if distro != nil {
		for _, w := range distro.Warnings {
			log.Warn("iso", "warning", w)
		}
	}
	if c.root != "" {
		site.Extra = os.DirFS(c.root)
	}

	loaders, err := bootfiles.Find(loaderSource(iso, distro, log), "/")
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
		if err := configureInstall(c, site, osID, distro, serverIP); err != nil {
			return err
		}
	}

	// TFTP and HTTP.
	tftp := &tftpsrv.Server{Handler: site.TFTPHandler(), Logger: log, OnEvent: site.TFTPEvent}
	httpSrv := &http.Server{Addr: c.httpAddr, Handler: site.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 3)
	tl, err := net.ListenPacket("udp", c.tftpAddr)
	if err != nil {
		return chain.PortError("TFTP", c.tftpAddr, err)
	}
	hl, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		tl.Close()
		return chain.PortError("HTTP", c.httpAddr, err)
	}
	go func() { errc <- tftp.Serve(tl) }()
	go func() { errc <- httpSrv.Serve(hl) }()

	// DHCP last: a client that gets an offer must find the files served.
	var dhcp *dhcpsrv.Server
	if c.dhcpMode != "off" {
		dhcp, err = newDHCP(c, site, iface, serverIP)
		if err != nil {
			tftp.Close()
			httpSrv.Close()
			return err
		}
		go func() { errc <- dhcp.Serve(ctx) }()
	}

	site.Banner(out, chain.BannerInfo{
		OSID: osID, ISO: c.iso, Interface: iface, ServerIP: serverIP, DHCP: c.dhcpMode,
		TFTPAddr: c.tftpAddr, HTTPAddr: c.httpAddr,
	})

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		if errors.Is(runErr, http.ErrServerClosed) || errors.Is(runErr, dhcpsrv.ErrServerClosed) {
			runErr = nil
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if dhcp != nil {
		_ = dhcp.Shutdown(sctx)
	}
	_ = httpSrv.Shutdown(sctx)
	_ = tftp.Shutdown(sctx)
	return runErr
}

// configureInstall renders the answer file and menus for osID into site.
func configureInstall(c *config, site *chain.Site, osID string, distro *isosrc.Distro, serverIP netip.Addr) error {
	spec := answerfile.DemoSpec(c.layout)
	if c.specFile != "" {
		data, err := os.ReadFile(c.specFile)
		if err != nil {
			return err
		}
		if spec, err = answerfile.ParseSpec(data); err != nil {
			return fmt.Errorf("-spec %s: %w", c.specFile, err)
		}
	} else {
		if c.passwordHash != "" {
			spec.Root.Password = answerfile.Password{Hash: c.passwordHash}
		}
		if c.sshKeyFile != "" {
			keys, err := readKeys(c.sshKeyFile)
			if err != nil {
				return err
			}
			spec.Root.SSHKeys = keys
		}
	}
	dns, err := chain.Nameservers(c.dns, serverIP)
	if err != nil {
		return err
	}
	return site.AddInstall(chain.Install{
		OSID:        osID,
		Distro:      distro,
		Spec:        spec,
		Mirror:      c.mirror,
		Console:     c.console,
		Nameservers: dns,
	})
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

// loaderSource says where the distribution's own shim and GRUB are. EL
// clones boot their own pair (under Secure Boot their shim trusts only their
// GRUB and kernels); Debian and Ubuntu ISOs carry a CD-ROM GRUB, so the
// host's signed network GRUB comes first for them.
func loaderSource(iso *isosrc.Image, d *isosrc.Distro, log *slog.Logger) bootfiles.Source {
	if iso == nil || d == nil {
		return bootfiles.Source{}
	}
	src := bootfiles.Source{FS: iso, Shim: d.Shim, GRUB: d.GRUB, PreferHost: d.Family != string(osid.Anaconda)}
	if d.EFISource == isosrc.EFIFromElTorito {
		efi, err := iso.EFIFS()
		if err != nil {
			log.Warn("iso", "efi image", err)
			return bootfiles.Source{PreferHost: true}
		}
		src.FS = efi
	}
	return src
}
