package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/isosrc"
)

// Served layout, over HTTP and (where loaders need it) TFTP:
//
//	shimx64.efi, grubx64.efi, pxelinux.0, ipxe/...   shared boot loaders
//	*grub.cfg*, pxelinux.cfg/*                       the asking host's menu
//	boot.ipxe                                        chains to the host's script
//	hosts/MAC/boot.ipxe                              the host's iPXE menu
//	hosts/MAC/TOKEN/ks.cfg, preseed.cfg, seed/...    the host's answer files
//	hosts/MAC/TOKEN/PROFILE/...                      answers of an unknown MAC
//	                                                 installing from the menu
//	profiles/NAME/{iso/,image.iso,boot/}             each profile's media
//	profiles/NAME/shimx64.efi ...                    a profile's own loaders
//	                                                 (EL ISOs under Secure Boot)
//	api/report/MAC/TOKEN                             installer and first-boot reports
//	api/hosts/NAME/reinstall                         re-arm a host (POST)
//	status, status.json                              progress

// fleet is the composed server state shared by every route.
type fleet struct {
	inv      *Inventory
	gate     *Gate
	steps    *stepLog
	bindings dhcpsrv.Bindings // which MAC is behind a TFTP or HTTP client's address
	log      *slog.Logger
	httpBase string
	proxy    bool
	serverIP netip.Addr
	dns      []netip.Addr

	loaders  *bootmenu.Loaders  // at the root, for every host
	served   fs.FS              // every file served the same to every host (see buildFleet)
	table    *dhcpsrv.BootTable // boot files of the shared loaders
	profiles map[string]*profileMedia
	hosts    map[string]*install // by MAC

	mu    sync.Mutex
	adhoc map[string]*install // "MAC/profile": unknown MACs installing from the menu

	// apiToken, when set, lets the reinstall API be used from the network.
	apiToken string
	// syslog is where installers send their log (zero: not asked to).
	syslog     netip.AddrPort
	installLog installLog
	// power drives BMCs (-power); nil without.
	power *powerCtl
	// packer keeps the answer files of installs packed (see packed).
	packer packer
}

// profileMedia is one profile opened: its media, OS, and loaders.
type profileMedia struct {
	name   string
	osID   string
	family isosrc.Family
	media  *isosrc.Media
	// kernel and initrds are the installer's, in media.BootTree().
	kernel  string
	initrds []string
	// loaders is the profile's own shim and GRUB (from its ISO), served
	// under its prefix, and table answers with them; both nil means the
	// shared loaders.
	loaders *bootmenu.Loaders
	table   *dhcpsrv.BootTable
	dialect bootmenu.GRUBDialect
	entry   bootmenu.Entry // the install's entry: its served kernel and initrds
}

// install is one machine's install made concrete: its answer files and
// the menu entry that starts its installer with them.
type install struct {
	answers map[string]packed // by served name
	url     string            // the answer URL the kernel line names
	entry   bootmenu.Entry
}

// buildOptions are the parts of the server the fleet's files depend on.
type buildOptions struct {
	HTTPBase string
	ServerIP netip.Addr
	Proxy    bool
	DNS      []netip.Addr
	Log      *slog.Logger
	Store    *Store
	// HostRoot is where the host's boot loader packages are ("/").
	HostRoot string
	// Syslog, when valid, is put on installer kernel command lines as
	// their log target.
	Syslog netip.AddrPort
	// GRUBTFTPOnly keeps Debian's GRUB from loading its http module
	// (-grub-http=false): kernel and initrd stay on TFTP.
	GRUBTFTPOnly bool
}

// buildFleet opens every profile's media and prepares every host's menu
// and answer files, collecting every problem: the server never starts
// half-configured.
func buildFleet(inv *Inventory, o buildOptions) (*fleet, error) {
	f := &fleet{
		inv: inv, log: o.Log, httpBase: o.HTTPBase, proxy: o.Proxy, serverIP: o.ServerIP, dns: o.DNS,
		profiles: map[string]*profileMedia{}, hosts: map[string]*install{}, adhoc: map[string]*install{}, syslog: o.Syslog,
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.gate = NewGate(inv, o.Store, f.log)
	f.steps = &stepLog{log: f.log, now: time.Now, keep: func(mac string) bool {
		_, known := f.gate.store.Get(mac)
		return known || f.inv.host(macOf(mac)) != nil
	}}
	var problems []string
	if o.HostRoot == "" {
		o.HostRoot = "/"
	}
	shared, err := bootmenu.FindLoaders(bootmenu.LoaderSource{}, o.HostRoot)
	if err != nil {
		problems = append(problems, fmt.Sprintf("boot loaders: %v (install: apt-get install %s)", err, bootmenu.HostLoaderPackages))
	}
	f.loaders = shared

	// What TFTP serves besides menus, and what the boot tables look in:
	// the shared loaders at the root, each profile's media and own
	// loaders below its prefix.
	served := []fs.FS{f.loaders}
	for _, name := range inv.profileNames() {
		pm, err := f.openProfile(inv.Profiles[name], o.HostRoot, o.GRUBTFTPOnly)
		if err != nil {
			problems = append(problems, fmt.Sprintf("profile %s: %v", name, err))
			continue
		}
		f.profiles[name] = pm
		var tree fs.FS = pm.media
		if pm.loaders != nil {
			tree = isosrc.Union(pm.media, pm.loaders)
		}
		served = append(served, isosrc.Mount(pm.media.Prefix, tree))
	}
	f.served = isosrc.Union(served...)
	f.table = f.bootTable("")
	for _, pm := range f.profiles {
		if pm.loaders != nil {
			pm.table = f.bootTable(pm.media.Prefix)
		}
	}
	var issues []hostIssue
	for i, h := range inv.Hosts {
		if h == nil || h.mac == nil || f.profiles[h.Profile] == nil || h.spec == nil {
			continue // listed by the inventory check, or with its profile
		}
		p, err := f.prepare(f.profiles[h.Profile], h.spec, h.mac, f.answerDir(h.mac))
		if err != nil {
			issues = append(issues, specIssues(i, h, err)...)
			continue
		}
		f.hosts[h.mac.String()] = p
	}
	problems = append(problems, inv.groupIssues(issues)...)
	if len(problems) > 0 {
		f.Close()
		return nil, &InventoryError{File: "inventory", Problems: problems}
	}
	return f, nil
}

// bootTable is the DHCP boot table for loaders served below prefix. A
// UEFI PXE client in proxy mode gets iPXE when it is served there (see
// BootTable.ProxyUEFI), else the shim; in full mode the shim, the chain
// that keeps Secure Boot.
func (f *fleet) bootTable(prefix string) *dhcpsrv.BootTable {
	return &dhcpsrv.BootTable{ServerIP: f.serverIP, HTTPBase: f.httpBase, Files: f.served, Prefix: prefix}
}

// openProfile opens the ISO and netboot tree, detects the OS and finds
// the loaders.
func (f *fleet) openProfile(pr *Profile, hostRoot string, grubTFTPOnly bool) (_ *profileMedia, err error) {
	m, err := isosrc.OpenMedia(f.inv.path(pr.ISO), f.inv.path(pr.Netboot), pr.OS, isosrc.Limits{})
	if errors.Is(err, isosrc.ErrUnknownDistro) {
		return nil, fmt.Errorf("%w (name the OS with os:)", err)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.Prefix = "profiles/" + pr.name + "/"
	pm := &profileMedia{name: pr.name, osID: pr.OS, media: m}
	if m.Distro != nil {
		pm.osID = m.Distro.OSID
		pm.kernel, pm.initrds = m.Distro.BootFiles()
	}
	info, ok := isosrc.LookupOS(pm.osID)
	if !ok {
		return nil, fmt.Errorf("unknown OS %q", pm.osID)
	}
	pm.family = info.Family
	if pm.kernel == "" {
		// No detection (a netboot tree alone): the usual paths.
		if pm.kernel, pm.initrds, err = bootmenu.BootFiles(pm.osID); err != nil {
			return nil, err
		}
	}
	if tree := m.BootTree(); tree == nil || !fileExists(tree, pm.kernel) {
		return nil, fmt.Errorf("%s: the installer kernel %s is not there; give the ISO, or for Debian the netboot tree or netboot.tar.gz", pm.osID, pm.kernel)
	}
	src, err := m.Loaders()
	if err != nil {
		f.log.Warn("iso: its own loaders are unreadable; the host's serve it", "profile", pr.name, "error", err)
	}
	own, err := bootmenu.FindLoaders(bootmenu.LoaderSource(src), hostRoot)
	if err == nil && own.FromDistro(bootmenu.LoaderGRUB) {
		pm.loaders = own // and its boot table, once every profile is open
	}
	if pm.dialect, err = pm.loaders.Dialect(pm.osID); err != nil {
		return nil, err
	}
	pm.dialect.HTTPInsmod = pm.dialect.HTTPInsmod && !grubTFTPOnly
	// Check the install with a placeholder spec: the media must hold what
	// the family installs from.
	probe, err := f.prepare(pm, answerfile.DemoSpec(answerfile.SchemePlain), net.HardwareAddr{0, 0, 0, 0, 0, 0}, "hosts/probe/")
	if err != nil {
		return nil, err
	}
	pm.entry = probe.entry // every host's kernel and initrds are the profile's
	return pm, nil
}

// prepare renders a host's answer files (with the completion callback)
// and its install entry.
func (f *fleet) prepare(pm *profileMedia, spec *answerfile.Spec, mac net.HardwareAddr, dir string) (*install, error) {
	pr := f.inv.Profiles[pm.name]
	repo, err := pm.media.RepoURL(f.httpBase, pm.family, pr.Mirror)
	if err != nil {
		return nil, err
	}
	s := *spec
	s.Callback = answerfile.Callback{URL: f.reportURL(mac), Events: pm.family == isosrc.FamilySubiquity}
	if pm.family == isosrc.FamilyDebianInstaller && s.Mirror == "" {
		s.Mirror = repo
	}
	set, err := answerfile.Build(pm.osID, &s, f.httpBase+dir)
	if err != nil {
		return nil, fmt.Errorf("answer file: %w", err)
	}
	in := bootmenu.InstallInput{
		RepoURL: repo, AnswerURL: set.URL, Console: pr.Console, Syslog: f.syslog,
		InstallerNet: set.Installer, Kernel: pm.kernel, Initrds: pm.initrds,
	}
	if len(in.Nameservers) == 0 {
		in.Nameservers = f.dns
	}
	p := &install{answers: map[string]packed{}, url: set.URL}
	if p.entry, err = bootmenu.InstallEntry(pm.osID, pm.media.Prefix+"boot", in); err != nil {
		return nil, err
	}
	for name, data := range set.Files {
		if p.answers[dir+name], err = f.packer.pack(data); err != nil {
			return nil, fmt.Errorf("answer file %s: %w", name, err)
		}
	}
	return p, nil
}

// Close releases the opened media.
func (f *fleet) Close() {
	for _, pm := range f.profiles {
		pm.media.Close()
	}
}

func dashed(mac net.HardwareAddr) string { return strings.ReplaceAll(mac.String(), ":", "-") }

func hostDir(mac net.HardwareAddr) string { return "hosts/" + dashed(mac) + "/" }

// parseMAC reads a 48-bit MAC in any separator style (the inventory, a
// hosts/MAC/ path element, an operator's command).
func parseMAC(s string) (net.HardwareAddr, bool) {
	hw, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	return hw, err == nil && len(hw) == 6
}

// macFor returns the MAC a request is from: the one its name carries,
// else the one DHCP (or the neighbour table) ties to its address.
func (f *fleet) macFor(named net.HardwareAddr, ip netip.Addr) net.HardwareAddr {
	if len(named) == 6 {
		return named
	}
	mac, _ := f.bindings.MAC(ip.Unmap())
	return mac
}

// hostname names a MAC for people: the inventory's name, else the MAC.
func (f *fleet) hostname(mac net.HardwareAddr) string {
	if h := f.inv.host(mac); h != nil {
		return h.Hostname
	}
	if rec, ok := f.gate.store.Get(mac.String()); ok && rec.Hostname != "" {
		return rec.Hostname
	}
	return mac.String()
}

// errIgnored is the refusal for ignored MACs and unresolvable clients.
var errIgnored = fmt.Errorf("%w: ignored", ErrNotAllowed)

// menu renders the boot menu the gate's decision gives, for one loader.
func (f *fleet) menu(mac net.HardwareAddr, kind bootmenu.Kind) ([]byte, Decision, error) {
	if mac == nil {
		// No MAC for this address (a relayed or NATed client in proxy
		// mode): GRUB can still name itself, pxelinux always does.
		d := Decision{Action: ActLocal, Why: "client MAC unknown"}
		m := &bootmenu.Menu{Title: "pxekit: unknown client", Default: "local", Entries: []bootmenu.Entry{bootmenu.LocalEntry()}}
		if kind == bootmenu.GRUB {
			snippet, err := bootmenu.GRUBPerHostSnippet("")
			if err != nil {
				return nil, d, err
			}
			m.Entries[0].GRUBCommands = nil
			out, err := f.render(m, kind, bootmenu.GRUBDebian)
			return append([]byte(snippet+"\n"), out...), d, err
		}
		out, err := f.render(m, kind, bootmenu.GRUBDebian)
		return out, d, err
	}
	d := f.gate.Decide(mac)
	name := f.hostname(mac)
	dialect := bootmenu.GRUBDebian
	var m *bootmenu.Menu
	switch d.Action {
	case ActIgnore:
		return nil, d, errIgnored
	case ActInstall:
		p, err := f.hostPrepared(mac)
		if err != nil {
			return nil, d, err
		}
		dialect = f.profiles[d.Host.Profile].dialect
		// Timeout 0: the inventory armed this host, so the install is a
		// decision already made; a countdown would only delay every host.
		m = &bootmenu.Menu{
			Title: fmt.Sprintf("pxekit: %s: %s", name, p.entry.Title), Timeout: 0, Default: "install",
			Entries: []bootmenu.Entry{p.entry, bootmenu.LocalEntry()},
		}
	case ActLocal:
		m = &bootmenu.Menu{
			Title: fmt.Sprintf("pxekit: %s: boot from local disk (%s)", name, d.Why), Default: "local",
			Entries: []bootmenu.Entry{bootmenu.LocalEntry()},
		}
	case ActMenu:
		m = &bootmenu.Menu{Title: "pxekit: " + name + " is not in the inventory", Timeout: time.Minute, Default: "local",
			Entries: []bootmenu.Entry{bootmenu.LocalEntry()}}
		for _, pname := range f.inv.profileNames() {
			pm := f.profiles[pname]
			p, err := f.adhocPrepared(pm, mac)
			if err != nil {
				return nil, d, err
			}
			e := p.entry
			e.ID, e.Title = "install-"+pname, fmt.Sprintf("Install %s (%s)", pname, pm.osID)
			m.Entries = append(m.Entries, e)
		}
	}
	out, err := f.render(m, kind, dialect)
	return out, d, err
}

func (f *fleet) render(m *bootmenu.Menu, kind bootmenu.Kind, dialect bootmenu.GRUBDialect) ([]byte, error) {
	return bootmenu.Render(m, kind, bootmenu.Options{HTTPBase: f.httpBase, GRUBDialect: dialect, PXELinuxUI: "menu.c32"})
}

func fileExists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// stage classifies a served name for progress.
func (f *fleet) stage(name string) (Stage, bool) {
	if _, menu := bootmenu.MenuKind(name); menu {
		return StageMenu, true
	}
	if strings.HasPrefix(name, "hosts/") {
		switch path.Base(name) {
		case "ks.cfg", "preseed.cfg", "user-data":
			return StageAnswer, true
		}
		return "", false
	}
	if rest, ok := strings.CutPrefix(name, "profiles/"); ok {
		pname, sub, _ := strings.Cut(rest, "/")
		pm := f.profiles[pname]
		if pm == nil {
			return "", false
		}
		// The kernel and initrds by served name; the profile's own
		// loaders by their name below its prefix.
		if st, ok := bootmenu.StepOf(name, nil, pm.entry); ok {
			return Stage(st), true
		}
		st, ok := bootmenu.StepOf(sub, pm.loaders)
		return Stage(st), ok
	}
	st, ok := bootmenu.StepOf(name, f.loaders)
	return Stage(st), ok
}

// boot is the DHCP boot decision: the gate first, then the boot table of
// the loaders the host's menu needs; iPXE gets the host's own script.
func (f *fleet) boot(c dhcpsrv.Client) (dhcpsrv.BootAnswer, error) {
	d := f.gate.Decide(c.MAC)
	if d.Action == ActIgnore {
		return dhcpsrv.BootAnswer{}, fmt.Errorf("%w: %s", dhcpsrv.ErrNoBootFile, d.Why)
	}
	if c.IPXE {
		ans := dhcpsrv.BootAnswer{File: f.httpBase + hostDir(c.MAC) + "boot.ipxe", ServerIP: f.serverIP, VendorClass: "PXEClient"}
		if c.HTTPClient {
			ans.VendorClass = "HTTPClient"
		}
		return ans, nil
	}
	if d.Action == ActInstall {
		if pm := f.profiles[d.Host.Profile]; pm != nil && pm.table != nil {
			return pm.table.Decide(c)
		}
	}
	return f.table.Decide(c)
}

// reservations are the full-mode DHCP reservations of hosts with a static
// address inside the served subnet.
func (f *fleet) reservations(subnet netip.Prefix) ([]dhcpsrv.Reservation, []string) {
	var out []dhcpsrv.Reservation
	var outside []string
	for _, h := range f.inv.Hosts {
		if !h.prefix.IsValid() {
			continue
		}
		if !subnet.Contains(h.prefix.Addr()) {
			outside = append(outside, fmt.Sprintf("%s %s", h.Hostname, h.prefix.Addr()))
			continue
		}
		out = append(out, dhcpsrv.Reservation{MAC: h.mac, IP: h.prefix.Addr(), Hostname: h.Hostname})
	}
	return out, outside
}

var yamlLine = regexp.MustCompile(`line \d+: `)

// hostIssue is one problem of one host's spec.
type hostIssue struct {
	host  *Host
	where string // "hosts[3] (web01)"
	issue string // "disk.wipe: must be true: ..."
}

// specIssues splits a spec error into its problems.
func specIssues(i int, h *Host, err error) []hostIssue {
	where := fmt.Sprintf("hosts[%d] (%s)", i, h.Hostname)
	var ve *answerfile.ValidationError
	if !errors.As(err, &ve) {
		// YAML's line numbers point into the merged copy, not the file.
		msg := yamlLine.ReplaceAllString(err.Error(), "")
		return []hostIssue{{h, where, "spec: " + strings.Join(strings.Fields(msg), " ")}}
	}
	var out []hostIssue
	for _, p := range ve.Problems {
		out = append(out, hostIssue{h, where, "spec: " + p.Error()})
	}
	return out
}

// groupIssues names a problem that every host of a profile shares once,
// on the profile (it comes from defaults or the profile's spec), and the
// others on their hosts.
func (inv *Inventory) groupIssues(issues []hostIssue) []string {
	perProfile := map[string]int{}
	for _, h := range inv.Hosts {
		if h != nil {
			perProfile[h.Profile]++
		}
	}
	type key struct{ profile, issue string }
	count := map[key]int{}
	for _, is := range issues {
		count[key{is.host.Profile, is.issue}]++
	}
	var out []string
	done := map[key]bool{}
	for _, is := range issues {
		k := key{is.host.Profile, is.issue}
		if n := perProfile[k.profile]; n > 1 && count[k] == n {
			if !done[k] {
				done[k] = true
				out = append(out, fmt.Sprintf("profile %s (all %d hosts): %s", k.profile, n, is.issue))
			}
			continue
		}
		out = append(out, is.where+": "+is.issue)
	}
	return out
}
