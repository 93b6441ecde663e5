package bootmenu

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/pxekit/pxekit/internal/instnet"
	"github.com/pxekit/pxekit/internal/osid"
)

// InstallInput is what an unattended install needs on the kernel command
// line. Only AnswerURL is required; the rest has working defaults.
type InstallInput struct {
	// RepoURL is the installation source over HTTP. Anaconda: the
	// extracted tree (inst.repo). Ubuntu: the live-server ISO itself (url=),
	// which casper downloads into RAM (give the machine 4 GB or more).
	// Debian: a mirror or the extracted DVD, set as the d-i mirror; empty
	// leaves the mirror to the preseed file.
	RepoURL string
	// AnswerURL is the kickstart file (anaconda), the NoCloud seed
	// directory holding user-data and meta-data (subiquity; a trailing
	// slash is added), or the preseed file (d-i). Required.
	AnswerURL string
	// Stage2URL is anaconda's inst.stage2, for when RepoURL is not a full
	// tree (e.g. the tree is a mirror without images/install.img).
	Stage2URL string
	// BootMAC, when set, names the install NIC literally (per-host menus).
	// Default: BOOTIF is filled in by the loader from the NIC it booted
	// from. Set NoBootIF to leave BOOTIF out.
	BootMAC  net.HardwareAddr
	NoBootIF bool
	// Console is the kernel console, e.g. "ttyS0,115200n8". Default: none
	// (the kernel's own default).
	Console string
	// InstallerNet is the installer's network before it reads its answer
	// file: hostname and domain, a static address, nameservers, no default
	// route (see its fields). answerfile.Build derives it from a spec as
	// Set.Installer. Default: DHCP.
	InstallerNet
	// Syslog, when valid, sends the installer's log to that host and UDP
	// port: inst.syslog= for anaconda, log_host= and log_port= for d-i.
	// Ubuntu has no kernel-line syslog; it reports through its webhook.
	Syslog netip.AddrPort
	// Locale and Keymap answer the d-i questions asked before the preseed
	// file can load. Defaults "en_US.UTF-8" and "us".
	Locale, Keymap string
	// Extra arguments are appended last.
	Extra []Arg

	// Kernel and Initrds, when set, are the installer's kernel and initrds
	// relative to InstallEntry's dir, for media whose layout differs from
	// the BootFiles table (an isosrc detection, a netboot tree): they win
	// over the table, which is only the fallback. Each is taken on its
	// own: set Kernel alone and the initrds still come from the table.
	// Paths must be relative and stay below dir. InstallArgs ignores them.
	Kernel  string
	Initrds []string
}

func checkURL(what, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%w: %s is required", ErrInvalid, what)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp" && u.Scheme != "nfs") {
		return fmt.Errorf("%w: %s %q is not an http(s), ftp or nfs URL", ErrInvalid, what, s)
	}
	return nil
}

// InstallArgs returns the kernel arguments that make osID's installer run
// unattended from in. Keys are those of the installer generation:
//
//   - anaconda (EL7, EL8, EL9, openEuler, Kylin, UOS): inst.repo, inst.ks,
//     optional inst.stage2. EL7 also still accepts the unprefixed ks=,
//     repo= and ksdevice=; EL9's anaconda dropped them, so the inst.
//     spelling, valid on all, is used. A static Address becomes dracut's
//     ip=<addr>::<gw>:<mask>:<host>:<iface>:none, Nameservers nameserver=,
//     Syslog inst.syslog=, Offline inst.geoloc=0.
//   - subiquity (Ubuntu 20.04, 22.04, 24.04): ip=dhcp (or, with a static
//     Address, klibc's ip=<addr>::<gw>:<mask>:<host>:<iface>:off:<dns0>:<dns1>
//     for casper's own fetch of the ISO and the seed; the installed
//     system's network comes from autoinstall), url=<ISO>, autoinstall,
//     ds=nocloud-net;s=<seed>/ (24.04's cloud-init: ds=nocloud;
//     s=...), cloud-config-url=/dev/null so cloud-init does not fetch the
//     ISO a second time as its config; 20.04 also needs root=/dev/ram0 and
//     ramdisk_size for the ISO.
//   - debian-installer: auto=true priority=critical url=<preseed>
//     interface=auto, locale, keymap, and everything netcfg asks before the
//     preseed is fetched: hostname and domain, a static address
//     (netcfg/disable_autoconfig, get_ipaddress, get_netmask, get_gateway,
//     confirm_static), nameservers, no_default_route; then log_host and
//     log_port, and the mirror from RepoURL.
//
// Then BOOTIF (unless NoBootIF), console=, and in.Extra.
func InstallArgs(osID string, in InstallInput) ([]Arg, error) {
	info, ok := osid.Lookup(osID)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownOS, osID)
	}
	if err := checkURL("answer-file URL", in.AnswerURL, true); err != nil {
		return nil, err
	}
	if err := checkURL("repository URL", in.RepoURL, false); err != nil {
		return nil, err
	}
	if err := checkURL("stage2 URL", in.Stage2URL, false); err != nil {
		return nil, err
	}
	if err := in.checkNetwork(); err != nil {
		return nil, err
	}
	var args []Arg
	switch info.Family {
	case osid.Anaconda:
		if in.RepoURL != "" {
			args = append(args, KV("inst.repo", in.RepoURL))
		}
		if in.Stage2URL != "" {
			args = append(args, KV("inst.stage2", in.Stage2URL))
		}
		args = append(args, KV("inst.ks", in.AnswerURL))
		if in.Address.IsValid() {
			// dracut: ip=<client>::<gateway>:<netmask>:<hostname>:<interface>:none
			args = append(args, KV("ip", in.ipWord("none")))
		}
		for _, ns := range in.Nameservers {
			args = append(args, KV("nameserver", ns.String()))
		}
		if in.Syslog.IsValid() {
			args = append(args, KV("inst.syslog", in.Syslog.String()))
		}
		if in.Offline {
			args = append(args, KV("inst.geoloc", "0"))
		}
	case osid.Subiquity:
		if in.RepoURL == "" {
			return nil, fmt.Errorf("%w: %s netboots the live-server ISO: RepoURL must be the ISO's URL", ErrInvalid, osID)
		}
		if info.Major <= 20 {
			args = append(args, KV("root", "/dev/ram0"), KV("ramdisk_size", "1500000"))
		}
		seed := in.AnswerURL
		if !strings.HasSuffix(seed, "/") {
			seed += "/"
		}
		ds := "nocloud-net"
		if info.Major >= 24 {
			ds = "nocloud"
		}
		ip := "dhcp"
		if in.Address.IsValid() {
			// casper hands ip= to klibc's ipconfig:
			// <client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>
			ip = in.ipWord("off")
			var dns []string
			for _, ns := range in.Nameservers {
				if ns.Is4() && len(dns) < 2 {
					dns = append(dns, ns.String())
				}
			}
			if len(dns) > 0 {
				ip += ":" + strings.Join(dns, ":")
			}
		}
		args = append(args,
			KV("ip", ip),
			KV("url", in.RepoURL),
			Flag("autoinstall"),
			KV("ds", ds+";s="+seed),
			KV("cloud-config-url", "/dev/null"),
		)
	case osid.DebianDI:
		loc, km := in.Locale, in.Keymap
		if loc == "" {
			loc = "en_US.UTF-8"
		}
		if km == "" {
			km = "us"
		}
		host, dom := in.Hostname, in.Domain
		if host == "" {
			host = "unassigned-hostname"
		}
		if dom == "" {
			dom = "unassigned-domain"
		}
		args = append(args,
			KV("auto", "true"),
			KV("priority", "critical"),
			KV("url", in.AnswerURL),
			KV("interface", "auto"),
			KV("debian-installer/locale", loc),
			KV("keyboard-configuration/xkb-keymap", km),
			KV("netcfg/get_hostname", host),
			KV("netcfg/get_domain", dom),
		)
		if in.Address.IsValid() {
			// netcfg asks these before the preseed file is fetched.
			args = append(args,
				KV("netcfg/disable_autoconfig", "true"),
				KV("netcfg/get_ipaddress", in.Address.Addr().String()),
				KV("netcfg/get_netmask", netmask(in.Address.Bits())),
			)
			if in.Gateway.IsValid() {
				args = append(args, KV("netcfg/get_gateway", in.Gateway.String()))
			} else {
				args = append(args, KV("netcfg/get_gateway", instnet.NetcfgNoGateway))
			}
		}
		if len(in.Nameservers) > 0 {
			ns := make([]string, len(in.Nameservers))
			for i, a := range in.Nameservers {
				ns[i] = a.String()
			}
			args = append(args, KV("netcfg/get_nameservers", strings.Join(ns, " ")))
		}
		if in.Address.IsValid() {
			args = append(args, KV("netcfg/confirm_static", "true"))
		}
		if in.NoDefaultRoute || (in.Address.IsValid() && !in.Gateway.IsValid()) {
			args = append(args, KV("netcfg/no_default_route", "true"))
		}
		if in.Syslog.IsValid() {
			args = append(args, KV("log_host", in.Syslog.Addr().String()), KV("log_port", fmt.Sprint(in.Syslog.Port())))
		}
		if in.RepoURL != "" {
			u, _ := url.Parse(in.RepoURL)
			dir := u.EscapedPath()
			if dir == "" {
				dir = "/"
			}
			args = append(args,
				KV("mirror/country", "manual"),
				KV("mirror/protocol", u.Scheme),
				KV("mirror/"+u.Scheme+"/hostname", u.Host),
				KV("mirror/"+u.Scheme+"/directory", dir),
				KV("mirror/"+u.Scheme+"/proxy", ""),
			)
		}
	default:
		return nil, fmt.Errorf("%w: %s has installer family %q, which bootmenu does not know", ErrUnknownOS, osID, info.Family)
	}
	switch {
	case in.NoBootIF:
	case in.BootMAC != nil:
		w, err := macWord(in.BootMAC)
		if err != nil {
			return nil, err
		}
		args = append(args, KV("BOOTIF", w))
	default:
		args = append(args, BootIF())
	}
	if in.Console != "" {
		args = append(args, KV("console", in.Console))
	}
	args = append(args, in.Extra...)
	for _, a := range args {
		if err := a.Validate(); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// checkNetwork validates the installer's own network settings, which end up
// in colon-separated ip= words and in netcfg answers.
func (in *InstallInput) checkNetwork() error {
	for what, name := range map[string]string{"hostname": in.Hostname, "domain": in.Domain, "interface": in.Interface} {
		if name == "" {
			continue
		}
		if len(name) > 253 {
			return fmt.Errorf("%w: %s %q is longer than 253 characters", ErrInvalid, what, name)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || (what == "interface" && r == '_')) {
				return fmt.Errorf("%w: %s %q contains %q", ErrInvalid, what, name, r)
			}
		}
	}
	if strings.Contains(in.Hostname, ".") {
		return fmt.Errorf("%w: hostname %q must be a single label; put the rest in Domain", ErrInvalid, in.Hostname)
	}
	for _, ns := range in.Nameservers {
		switch {
		case !ns.IsValid():
			return fmt.Errorf("%w: a nameserver is the zero netip.Addr", ErrInvalid)
		case ns.Zone() != "":
			return fmt.Errorf("%w: nameserver %s has a zone, which no installer reads", ErrInvalid, ns)
		}
	}
	if in.Address.IsValid() {
		if !in.Address.Addr().Is4() {
			return fmt.Errorf("%w: static address %s: only IPv4 is supported on the kernel line", ErrInvalid, in.Address)
		}
		if in.Gateway.IsValid() && !in.Gateway.Is4() {
			return fmt.Errorf("%w: gateway %s is not IPv4 like the address %s", ErrInvalid, in.Gateway, in.Address)
		}
	} else if in.Gateway.IsValid() || in.Interface != "" {
		return fmt.Errorf("%w: Gateway and Interface need a static Address", ErrInvalid)
	}
	if in.Syslog.IsValid() && in.Syslog.Port() == 0 {
		return fmt.Errorf("%w: syslog target %s has no port", ErrInvalid, in.Syslog)
	}
	return nil
}

// ipWord is the static ip= value shared by dracut and klibc's ipconfig:
// <client>::<gateway>:<netmask>:<hostname>:<interface>:<autoconf>.
func (in *InstallInput) ipWord(autoconf string) string {
	gw := ""
	if in.Gateway.IsValid() {
		gw = in.Gateway.String()
	}
	return strings.Join([]string{in.Address.Addr().String(), "", gw, netmask(in.Address.Bits()), in.Hostname, in.Interface, autoconf}, ":")
}

// netmask writes an IPv4 prefix length as a dotted mask, the form d-i,
// dracut and ipconfig read.
func netmask(bits int) string {
	m := net.CIDRMask(bits, 32)
	return net.IP(m).String()
}

// BootFiles returns where osID's network kernel and initrd live, relative
// to the root of its installation media: images/pxeboot/ for anaconda,
// casper/ for Ubuntu's live server, and for Debian the netboot tree
// (debian-installer/amd64/ — the ISO's own initrd cannot netboot; serve
// the netboot tarball or the debian-installer-N-netboot-amd64 package).
func BootFiles(osID string) (kernel string, initrds []string, err error) {
	info, ok := osid.Lookup(osID)
	if !ok {
		return "", nil, fmt.Errorf("%w: %q", ErrUnknownOS, osID)
	}
	switch info.Family {
	case osid.Anaconda:
		return "images/pxeboot/vmlinuz", []string{"images/pxeboot/initrd.img"}, nil
	case osid.Subiquity:
		return "casper/vmlinuz", []string{"casper/initrd"}, nil
	}
	return "debian-installer/amd64/linux", []string{"debian-installer/amd64/initrd.gz"}, nil
}

// InstallEntry returns the menu entry that installs osID: kernel and
// initrds under dir (the OS tree's path relative to the boot server root;
// "" for the root itself) from in.Kernel and in.Initrds, else from
// BootFiles; arguments from InstallArgs. Its ID is "install".
func InstallEntry(osID, dir string, in InstallInput) (Entry, error) {
	args, err := InstallArgs(osID, in)
	if err != nil {
		return Entry{}, err
	}
	kernel, initrds, err := BootFiles(osID)
	if err != nil {
		return Entry{}, err
	}
	if in.Kernel != "" {
		if err := checkRelPath("kernel", in.Kernel); err != nil {
			return Entry{}, err
		}
		kernel = in.Kernel
	}
	if len(in.Initrds) > 0 {
		for _, p := range in.Initrds {
			if err := checkRelPath("initrd", p); err != nil {
				return Entry{}, err
			}
		}
		initrds = in.Initrds
	}
	info, _ := osid.Lookup(osID)
	join := func(p string) string { return strings.TrimPrefix(path.Join(dir, p), "/") }
	e := Entry{
		ID:     "install",
		Title:  "Install " + info.Name + " " + info.Version,
		Kernel: join(kernel),
		Args:   args,
	}
	for _, p := range initrds {
		e.Initrds = append(e.Initrds, join(p))
	}
	return e, e.Validate()
}

// checkRelPath refuses an override that would not stay below
// InstallEntry's dir; Entry.Validate checks the characters afterwards.
func checkRelPath(what, p string) error {
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: %s path %q must be relative to the OS tree", ErrInvalid, what, p)
	}
	if err := checkPath(what+" path", p); err != nil {
		return err
	}
	if c := path.Clean(p); c == "." {
		return fmt.Errorf("%w: %s path %q names the tree itself, not a file", ErrInvalid, what, p)
	}
	return nil
}

// LocalEntry returns the "boot from local disk" entry, ID "local". It
// chainloads the disk's EFI loader under GRUB (OVMF stops in its setup
// page after GRUB's exit) and exits under pxelinux and iPXE.
func LocalEntry() Entry {
	return Entry{ID: "local", Title: "Boot from local disk", Local: LocalChainload}
}

// InstallMenu is the one-call path: a menu with the install entry for osID
// (default, 5-second timeout) and a local-boot entry. Render it with
// Render.
func InstallMenu(osID, dir string, in InstallInput) (*Menu, error) {
	e, err := InstallEntry(osID, dir, in)
	if err != nil {
		return nil, err
	}
	m := &Menu{
		Title:   "pxekit: " + e.Title,
		Timeout: 5 * time.Second,
		Default: e.ID,
		Entries: []Entry{e, LocalEntry()},
	}
	return m, m.Validate()
}
