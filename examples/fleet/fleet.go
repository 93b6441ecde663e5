package main

import (
	"errors"
	"fmt"
	"io"
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
	"github.com/pxekit/pxekit/examples/internal/chain"
	"github.com/pxekit/pxekit/internal/bootfiles"
	"github.com/pxekit/pxekit/internal/osid"
	"github.com/pxekit/pxekit/internal/progress"
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
	tracker  *progress.Tracker
	log      *slog.Logger
	httpBase string
	proxy    bool
	serverIP netip.Addr
	dns      []netip.Addr

	loaders  *bootfiles.Set // at the root, for every host
	profiles map[string]*profileMedia
	hosts    map[string]*chain.Prepared // by MAC

	mu    sync.Mutex
	adhoc map[string]*chain.Prepared // "MAC/profile": unknown MACs installing from the menu

	closers []io.Closer

	// apiToken, when set, lets the reinstall API be used from the network.
	apiToken string
	// syslog is where installers send their log (zero: not asked to).
	syslog     netip.AddrPort
	installLog installLog
	// power drives BMCs (-power); nil without.
	power *powerCtl
}

// profileMedia is one profile opened: its media, OS, and loaders.
type profileMedia struct {
	name   string
	osID   string
	family osid.Family
	distro *isosrc.Distro
	media  chain.Media
	// loaders is the profile's own shim and GRUB (from its ISO), served
	// under its prefix; nil means the shared loaders.
	loaders *bootfiles.Set
	dialect bootmenu.GRUBDialect
	stages  map[string]progress.Stage
}

// buildOptions are the parts of the server the fleet's files depend on.
type buildOptions struct {
	HTTPBase string
	ServerIP netip.Addr
	Proxy    bool
	DNS      []netip.Addr
	Log      *slog.Logger
	Tracker  *progress.Tracker
	Store    *Store
	// HostRoot is where the host's boot loader packages are ("/").
	HostRoot string
	// Syslog, when valid, is put on installer kernel command lines as
	// their log target.
	Syslog netip.AddrPort
}

// buildFleet opens every profile's media and prepares every host's menu
// and answer files, collecting every problem: the server never starts
// half-configured.
func buildFleet(inv *Inventory, o buildOptions) (*fleet, error) {
	f := &fleet{
		inv: inv, tracker: o.Tracker, log: o.Log, httpBase: o.HTTPBase, proxy: o.Proxy,
		serverIP: o.ServerIP, dns: o.DNS,
		profiles: map[string]*profileMedia{}, hosts: map[string]*chain.Prepared{},
		adhoc: map[string]*chain.Prepared{}, syslog: o.Syslog,
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.tracker == nil {
		f.tracker = progress.New(f.log)
	}
	f.gate = NewGate(inv, o.Store, f.log)
	var problems []string
	if o.HostRoot == "" {
		o.HostRoot = "/"
	}
	shared, err := bootfiles.Find(bootfiles.Source{}, o.HostRoot)
	if err != nil {
		problems = append(problems, fmt.Sprintf("boot loaders: %v (install: apt-get install %s)", err, bootfiles.HostPackages))
	}
	f.loaders = shared

	for _, name := range inv.profileNames() {
		pm, err := f.openProfile(inv.Profiles[name], o.HostRoot)
		if err != nil {
			problems = append(problems, fmt.Sprintf("profile %s: %v", name, err))
			continue
		}
		f.profiles[name] = pm
	}
	var issues []hostIssue
	for i, h := range inv.Hosts {
		if h == nil || h.mac == nil {
			continue // listed by the inventory check
		}
		pm := f.profiles[h.Profile]
		if pm == nil {
			continue // its profile's problem is listed already
		}
		if h.spec == nil {
			continue // its spec's problems are listed by the inventory check
		}
		p, err := f.prepare(pm, h.spec, h.mac, f.answerDir(h.mac))
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

// openProfile opens the ISO and netboot tree, detects the OS and finds
// the loaders.
func (f *fleet) openProfile(pr *Profile, hostRoot string) (*profileMedia, error) {
	pm := &profileMedia{name: pr.name, osID: pr.OS}
	pm.media.Prefix = "profiles/" + pr.name + "/"
	var iso *isosrc.Image
	if pr.ISO != "" {
		file := f.inv.path(pr.ISO)
		var err error
		if iso, err = isosrc.Open(file); err != nil {
			return nil, fmt.Errorf("iso: %w", err)
		}
		f.closers = append(f.closers, iso)
		if pr.OS != "" {
			pm.distro, err = isosrc.DetectAs(iso, pr.OS)
		} else {
			pm.distro, err = isosrc.Detect(iso)
		}
		if err != nil {
			return nil, fmt.Errorf("iso %s: %w (name the OS with os:)", file, err)
		}
		pm.osID = pm.distro.OSID
		pm.media.ISO, pm.media.ISOFile = iso, file
	}
	if pr.Netboot != "" {
		// A directory is served confined to it, regular files only.
		nb, err := chain.OpenNetboot(f.inv.path(pr.Netboot))
		if err != nil {
			return nil, fmt.Errorf("netboot: %w", err)
		}
		if c, ok := nb.(io.Closer); ok {
			f.closers = append(f.closers, c)
		}
		pm.media.Netboot = nb
		if pm.distro != nil {
			if err := pm.distro.UseNetboot(nb); err != nil {
				return nil, fmt.Errorf("netboot: %w", err)
			}
		}
	}
	info, ok := osid.Lookup(pm.osID)
	if !ok {
		return nil, fmt.Errorf("unknown OS %q", pm.osID)
	}
	pm.family = info.Family
	if iso != nil {
		set, err := bootfiles.Find(chain.LoaderSource(iso, pm.distro, f.log), hostRoot)
		if err == nil && set.FromISO(bootfiles.GRUB) {
			pm.loaders = set
		}
	}
	var err error
	if pm.dialect, err = chain.Dialect(pm.loaders, pm.osID); err != nil {
		return nil, err
	}
	// Kernel and initrd names do not depend on the host: prepare once with
	// a placeholder to learn them (and to check the media hold them).
	probe := answerfile.DemoSpec(answerfile.SchemePlain)
	p, err := f.prepare(pm, probe, net.HardwareAddr{0, 0, 0, 0, 0, 0}, "hosts/probe/")
	if err != nil {
		return nil, err
	}
	pm.stages = p.Stages
	return pm, nil
}

// prepare renders a host's answer files (with the completion callback)
// and its install entry.
func (f *fleet) prepare(pm *profileMedia, spec *answerfile.Spec, mac net.HardwareAddr, dir string) (*chain.Prepared, error) {
	s := *spec
	s.Callback = answerfile.Callback{URL: f.reportURL(mac), Events: pm.family == osid.Subiquity}
	return chain.Prepare(f.httpBase, pm.media, chain.Install{
		OSID: pm.osID, Distro: pm.distro, Spec: &s, Mirror: f.inv.Profiles[pm.name].Mirror,
		Console: f.inv.Profiles[pm.name].Console, Nameservers: f.dns,
		Args: syslogArgs(pm.family, f.syslog),
	}, dir)
}

// Close releases the opened ISOs.
func (f *fleet) Close() {
	for _, c := range f.closers {
		c.Close()
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
	hw, err := net.ParseMAC(f.tracker.MAC(ip))
	if err != nil {
		return nil
	}
	return hw
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
		pm := f.profiles[d.Host.Profile]
		p, err := f.hostPrepared(mac)
		if err != nil {
			return nil, d, err
		}
		if pm.loaders != nil {
			dialect = pm.dialect
		}
		m = &bootmenu.Menu{
			Title: fmt.Sprintf("pxekit: %s: %s", name, p.Entry.Title), Timeout: 3 * time.Second, Default: "install",
			Entries: []bootmenu.Entry{p.Entry, bootmenu.LocalEntry()},
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
			e := p.Entry
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

// genericIPXE chains any iPXE (one that got boot.ipxe from another DHCP
// server, say) to its own host's script.
func (f *fleet) genericIPXE() []byte {
	return []byte("#!ipxe\n# pxekit fleet: every host has its own script\nchain " + f.httpBase + "hosts/${mac:hexhyp}/boot.ipxe\n")
}

// lookupFile resolves a served file that is the same for every host:
// loaders and profile media. ok is false for names nobody serves.
func (f *fleet) lookupFile(name string) (fsys fs.FS, rel string, ok bool) {
	if rest, found := strings.CutPrefix(name, "profiles/"); found {
		pname, sub, _ := strings.Cut(rest, "/")
		pm := f.profiles[pname]
		if pm == nil {
			return nil, "", false
		}
		if fsys, rel, ok := pm.media.Lookup(sub); ok {
			return fsys, rel, true
		}
		if pm.loaders != nil && pm.loaders.Has(sub) {
			return pm.loaders, sub, true
		}
		return nil, "", false
	}
	if f.loaders != nil && f.loaders.Has(name) {
		return f.loaders, name, true
	}
	return nil, "", false
}

// isoFile returns the on-disk ISO for profiles/NAME/image.iso.
func (f *fleet) isoFile(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "profiles/")
	if !ok {
		return "", false
	}
	pname, sub, _ := strings.Cut(rest, "/")
	pm := f.profiles[pname]
	if pm == nil || sub != "image.iso" || pm.media.ISOFile == "" {
		return "", false
	}
	return pm.media.ISOFile, true
}

// stage classifies a served name for progress.
func (f *fleet) stage(name string) (progress.Stage, bool) {
	if _, err := bootmenu.ParseConfigName(name); err == nil {
		return progress.Menu, true
	}
	if name == "boot.ipxe" || (strings.HasPrefix(name, "hosts/") && strings.HasSuffix(name, "/boot.ipxe")) {
		return progress.Menu, true
	}
	if strings.HasPrefix(name, "hosts/") {
		switch path.Base(name) {
		case "ks.cfg", "preseed.cfg", "user-data":
			return progress.Answer, true
		}
		return "", false
	}
	if rest, ok := strings.CutPrefix(name, "profiles/"); ok {
		pname, sub, _ := strings.Cut(rest, "/")
		if pm := f.profiles[pname]; pm != nil {
			if st, ok := pm.stages[name]; ok {
				return st, true
			}
			if pm.loaders != nil && pm.loaders.Has(sub) && !strings.HasSuffix(sub, ".c32") {
				return progress.Bootloader, true
			}
		}
		return "", false
	}
	if f.loaders != nil && f.loaders.Has(name) && !strings.HasSuffix(name, ".c32") {
		return progress.Bootloader, true
	}
	return "", false
}

// boot is the DHCP boot decision: the gate first, then the shared policy
// of the examples, with the host's own loader directory and iPXE script.
func (f *fleet) boot(c dhcpsrv.Client) (dhcpsrv.BootAnswer, error) {
	d := f.gate.Decide(c.MAC)
	if d.Action == ActIgnore {
		return dhcpsrv.BootAnswer{}, fmt.Errorf("%w: %s", dhcpsrv.ErrNoBootFile, d.Why)
	}
	set, prefix := f.loaders, ""
	if d.Action == ActInstall {
		if pm := f.profiles[d.Host.Profile]; pm != nil && pm.loaders != nil {
			set, prefix = pm.loaders, pm.media.Prefix
		}
	}
	var files fs.FS // a nil *bootfiles.Set must stay a nil interface
	if set != nil {
		files = set
	}
	table := &dhcpsrv.BootTable{
		ServerIP: f.serverIP, HTTPBase: f.httpBase, Files: files,
		IPXEScript: hostDir(c.MAC) + "boot.ipxe",
	}
	ans, err := chain.BootPolicy(table, chain.BootOptions{
		Proxy: f.proxy, IPXEScript: true,
		HaveSNPOnly: f.loaders != nil && f.loaders.Has("ipxe/snponly.efi"),
	})(c)
	if err != nil {
		return ans, err
	}
	if !strings.Contains(ans.File, "://") && !strings.HasPrefix(ans.File, "ipxe/") {
		ans.File = prefix + ans.File
	}
	return ans, nil
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
