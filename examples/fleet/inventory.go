package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/examples/fleet/power"
	"github.com/pxekit/pxekit/isosrc"
)

// Inventory is the fleet file: OS profiles, the hosts that install them,
// and what happens to machines nobody listed.
//
//	unknown: local              # local | menu | ignore
//	demo_password: false        # true: lab only, see DemoPassword
//	defaults:                   # answer-file spec keys every profile starts from
//	  timezone: Asia/Shanghai
//	profiles:
//	  rocky9:
//	    iso: /srv/iso/Rocky-9.4-x86_64-dvd.iso
//	    spec: {packages: {names: [vim-enhanced]}}
//	  debian12:
//	    os: debian-12
//	    netboot: /usr/lib/debian-installer/images/12/amd64/text
//	    mirror: http://deb.debian.org/debian
//	hosts:
//	  - {mac: "52:54:00:00:00:01", hostname: web01, profile: rocky9, layout: lvm}
//	  - mac: 52:54:00:00:00:02
//	    hostname: db01
//	    profile: debian12
//	    address: 10.0.0.21/24
//	    gateway: 10.0.0.1
//	    overrides: {packages: {names: [postgresql]}}
//	    bmc:                    # for -power: see power.BMC
//	      type: ipmi
//	      address: 10.0.1.22
//	      user: pxekit
//	      password_env: BMC_DB01  # never the password itself
type Inventory struct {
	// Unknown is the policy for MACs not listed: "local" (default: boot
	// the local disk), "menu" (a menu of every profile, local disk by
	// default, for a person at the console) or "ignore" (no answer at all).
	Unknown string `yaml:"unknown"`
	// DemoPassword lets hosts whose spec sets no password and no SSH key
	// install with answerfile's PUBLIC demo password on root and on every
	// user (a sudo user "ops" when there is none); the server names them
	// at start. Without it (the default) such hosts are an inventory
	// problem. A spec with a password or key of its own must not keep the
	// demo password on any account, whatever this says.
	DemoPassword bool `yaml:"demo_password"`
	// Defaults are answer-file spec keys (see answerfile.Spec) under every
	// profile's spec.
	Defaults map[string]any `yaml:"defaults"`
	// Profiles by name.
	Profiles map[string]*Profile `yaml:"profiles"`
	// Hosts to install, one per MAC.
	Hosts []*Host `yaml:"hosts"`

	// dir resolves relative paths: the inventory file's directory.
	dir   string
	byMAC map[string]*Host
	// demo lists, by profile, the accounts that carry the demo password.
	demo map[string][]string
}

// Bounds on an inventory file: it is YAML, whose aliases can make a small
// file decode into a huge tree.
const (
	// MaxInventoryBytes bounds the file's size.
	MaxInventoryBytes = 4 << 20
	// MaxInventoryNodes bounds the YAML nodes of the document counted
	// with every alias expanded (a rack of thousands of hosts needs well
	// under a tenth of it).
	MaxInventoryNodes = 1 << 20
	// MaxSpecNodes bounds, the same way, defaults, each profile's spec
	// and each host's overrides: they are copied into every host's spec.
	MaxSpecNodes = 8192
)

// Profile is one OS install: media plus an answer-file spec.
type Profile struct {
	// ISO is the distribution ISO (relative paths are from the inventory
	// file). Anaconda and Ubuntu installs need one.
	ISO string `yaml:"iso"`
	// OS is the pxekit OS identifier; default: detected from the ISO.
	OS string `yaml:"os"`
	// Netboot is the directory or netboot.tar.gz holding Debian's
	// installer kernel and initrd.
	Netboot string `yaml:"netboot"`
	// Mirror is Debian's package mirror (default: the ISO tree, if any).
	Mirror string `yaml:"mirror"`
	// Console is the installer's kernel console, e.g. ttyS0,115200n8.
	Console string `yaml:"console"`
	// Spec are answer-file spec keys over Defaults.
	Spec map[string]any `yaml:"spec"`

	name string
}

// Host is one machine of the fleet.
type Host struct {
	MAC      string `yaml:"mac"`
	Hostname string `yaml:"hostname"`
	Profile  string `yaml:"profile"`
	// Layout is "plain" or "lvm"; default: the profile's.
	Layout string `yaml:"layout"`
	// Address (CIDR) and Gateway make the installed system's network
	// static and, in full DHCP mode, reserve the address for the MAC.
	// Without Gateway (a network without a router) it gets no default
	// route.
	Address string `yaml:"address"`
	Gateway string `yaml:"gateway"`
	// DNS servers for a static address.
	DNS []string `yaml:"dns"`
	// Overrides are spec keys for this host only, over the profile's.
	Overrides map[string]any `yaml:"overrides"`
	// RawBMC is the host's "bmc:" mapping (see power.BMC), parsed by the
	// inventory check into BMC so that its problems are listed with the
	// others, under the host's name.
	RawBMC yaml.Node `yaml:"bmc"`
	// BMC drives the host's power for -power; nil without "bmc:". It
	// holds a reference to the password, never the password.
	BMC *power.BMC `yaml:"-"`

	mac    net.HardwareAddr
	prefix netip.Prefix
	spec   *answerfile.Spec // merged and parsed by check
}

// The policies for unknown MACs.
const (
	UnknownLocal  = "local"
	UnknownMenu   = "menu"
	UnknownIgnore = "ignore"
)

// ErrInventory wraps every inventory problem.
var ErrInventory = errors.New("invalid inventory")

// InventoryError lists every problem found, so that an operator fixes the
// file once instead of once per run.
type InventoryError struct {
	File     string
	Problems []string
}

func (e *InventoryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInventory) true.
func (e *InventoryError) Is(target error) bool { return target == ErrInventory }

var profileName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// LoadInventory reads and checks an inventory file. Media are not opened
// here; see openProfiles.
func LoadInventory(file string) (*Inventory, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", file)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxInventoryBytes+1))
	if err != nil {
		return nil, err
	}
	inv, err := ParseInventory(data, filepath.Dir(file))
	var ie *InventoryError
	if errors.As(err, &ie) {
		ie.File = file
	}
	return inv, err
}

// ParseInventory decodes data and checks everything that needs no file:
// names, MACs, duplicates, references, addresses and every host's
// answer-file spec. Relative paths resolve against dir. With an
// *InventoryError the decoded inventory is returned as well (nil when the
// YAML itself is unreadable).
func ParseInventory(data []byte, dir string) (*Inventory, error) {
	if len(data) > MaxInventoryBytes {
		return nil, &InventoryError{File: "inventory", Problems: []string{
			fmt.Sprintf("over %d MiB: an inventory is a few KiB per hundred hosts", MaxInventoryBytes>>20)}}
	}
	if err := checkYAMLSize(data); err != nil {
		return nil, &InventoryError{File: "inventory", Problems: []string{err.Error()}}
	}
	inv := &Inventory{dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var problems []string
	if err := dec.Decode(inv); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &InventoryError{File: "inventory", Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
		}
		// Type errors leave the rest decoded: report them with the others.
		problems = append(problems, te.Errors...)
	}
	problems = append(problems, inv.check()...)
	if len(problems) > 0 {
		// The inventory goes back too, so that the media and answer files
		// can be checked for the remaining problems in the same run.
		return inv, &InventoryError{File: "inventory", Problems: problems}
	}
	return inv, nil
}

// checkYAMLSize refuses a document whose tree, with every alias expanded,
// has more than MaxInventoryNodes nodes, before anything decodes it into
// Go values (which would expand the aliases). Counting memoizes each
// node's size, so it takes time linear in the file, not in the expansion.
func checkYAMLSize(data []byte) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil // not YAML, or empty: the decoder proper says so
	}
	sizes := map[*yaml.Node]int{}
	var size func(n *yaml.Node, depth int) (int, error)
	size = func(n *yaml.Node, depth int) (int, error) {
		if n == nil {
			return 0, nil
		}
		if s, ok := sizes[n]; ok {
			if s < 0 {
				return 0, errors.New("an alias refers to a node that contains it")
			}
			return s, nil
		}
		if depth > 1000 {
			return 0, errors.New("nested over 1000 levels deep")
		}
		sizes[n] = -1 // in progress
		total := 1
		kids := n.Content
		if n.Kind == yaml.AliasNode {
			kids = []*yaml.Node{n.Alias}
		}
		for _, k := range kids {
			s, err := size(k, depth+1)
			if err != nil {
				return 0, err
			}
			total += s
			if total > MaxInventoryNodes {
				return 0, fmt.Errorf("over %d YAML nodes once its aliases are expanded: too large for an inventory", MaxInventoryNodes)
			}
		}
		sizes[n] = total
		return total, nil
	}
	if _, err := size(&doc, 0); err != nil {
		return err
	}
	// The parts every host's spec is merged from.
	check := func(where string, n *yaml.Node) error {
		if s := sizes[n]; s > MaxSpecNodes {
			return fmt.Errorf("%s: %d YAML nodes once its aliases are expanded, at most %d: it is copied into every host's spec", where, s, MaxSpecNodes)
		}
		return nil
	}
	top := mappingValues(&doc)
	if err := check("defaults", top["defaults"]); err != nil {
		return err
	}
	profiles := mappingValues(top["profiles"])
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		if err := check("profile "+name+": spec", mappingValues(profiles[name])["spec"]); err != nil {
			return err
		}
	}
	if hosts := resolveAlias(top["hosts"]); hosts != nil && hosts.Kind == yaml.SequenceNode {
		for i, h := range hosts.Content {
			if err := check(fmt.Sprintf("hosts[%d]: overrides", i), mappingValues(h)["overrides"]); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolveAlias follows a document node and aliases to the node they stand
// for.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		case yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// mappingValues returns a mapping node's values by scalar key (nil for
// anything that is not a mapping).
func mappingValues(n *yaml.Node) map[string]*yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out
}

// check validates everything but the media, returning every problem.
func (inv *Inventory) check() []string {
	var p []string
	inv.byMAC = map[string]*Host{}
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	switch inv.Unknown {
	case "":
		inv.Unknown = UnknownLocal
	case UnknownLocal, UnknownMenu, UnknownIgnore:
	default:
		add("unknown: %q: want local, menu or ignore", inv.Unknown)
	}
	if len(inv.Profiles) == 0 {
		add("profiles: none defined")
	}
	for _, name := range inv.profileNames() {
		pr := inv.Profiles[name]
		if pr == nil {
			add("profile %s: empty", name)
			delete(inv.Profiles, name)
			continue
		}
		pr.name = name
		if !profileName.MatchString(name) {
			add("profile %q: name must be lower-case letters, digits, '.', '_' or '-' (it becomes a URL path)", name)
		}
		if pr.OS != "" {
			if _, ok := isosrc.LookupOS(pr.OS); !ok {
				var known []string
				for _, os := range isosrc.OSes() {
					known = append(known, os.ID)
				}
				slices.Sort(known)
				add("profile %s: os %q: unknown; known: %s", name, pr.OS, strings.Join(known, " "))
			}
		}
		if pr.ISO == "" && pr.OS == "" {
			add("profile %s: give iso (the OS is detected from it) or os", name)
		}
		if pr.ISO == "" && pr.Netboot == "" {
			add("profile %s: give iso or netboot: nothing holds the installer", name)
		}
		if pr.Mirror != "" && !strings.HasPrefix(pr.Mirror, "http://") && !strings.HasPrefix(pr.Mirror, "https://") {
			add("profile %s: mirror %q: want an http:// or https:// URL", name, pr.Mirror)
		}
	}

	var issues []hostIssue
	macs := map[string]int{}
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	bmcs := map[string]int{}
	for i, h := range inv.Hosts {
		where := fmt.Sprintf("hosts[%d]", i)
		if h == nil {
			add("%s: empty", where)
			continue
		}
		if h.Hostname != "" {
			where = fmt.Sprintf("hosts[%d] (%s)", i, h.Hostname)
		}
		hw, ok := parseMAC(h.MAC)
		switch {
		case h.MAC == "":
			add("%s: mac missing", where)
		case !ok:
			add("%s: mac %q: not a 48-bit MAC address", where, h.MAC)
		case macKind(hw) != "":
			add("%s: mac %s: %s, not a machine's address", where, hw, macKind(hw))
		default:
			h.mac = hw
			if j, dup := macs[hw.String()]; dup {
				add("%s: mac %s already belongs to hosts[%d] (%s)", where, hw, j, inv.Hosts[j].Hostname)
			} else {
				macs[hw.String()] = i
				inv.byMAC[hw.String()] = h
			}
		}
		if h.Hostname == "" {
			add("%s: hostname missing", where)
		} else {
			key := strings.ToLower(h.Hostname)
			if j, dup := names[key]; dup {
				add("%s: hostname %s already used by hosts[%d]", where, h.Hostname, j)
			} else {
				names[key] = i
			}
		}
		if h.Profile == "" {
			add("%s: profile missing", where)
		} else if _, ok := inv.Profiles[h.Profile]; !ok {
			add("%s: profile %q is not defined (profiles: %s)", where, h.Profile, strings.Join(inv.profileNames(), ", "))
		}
		if h.Layout != "" && h.Layout != answerfile.SchemePlain && h.Layout != answerfile.SchemeLVM {
			add("%s: layout %q: want plain or lvm", where, h.Layout)
		}
		if h.Address != "" {
			pfx, err := netip.ParsePrefix(h.Address)
			if err != nil || !pfx.Addr().Is4() {
				add("%s: address %q: want IPv4 in CIDR form, e.g. 10.0.0.21/24", where, h.Address)
			} else {
				h.prefix = pfx
				if j, dup := addrs[pfx.Addr()]; dup {
					add("%s: address %s already belongs to hosts[%d]", where, pfx.Addr(), j)
				} else {
					addrs[pfx.Addr()] = i
				}
			}
		} else if h.Gateway != "" || len(h.DNS) > 0 {
			add("%s: gateway and dns need a static address", where)
		}
		if h.RawBMC.Kind != 0 {
			b, err := parseHostBMC(&h.RawBMC)
			switch {
			case err != nil:
				add("%s: %v", where, err)
			default:
				key := bmcKey(b)
				if j, dup := bmcs[key]; dup {
					// Powering one host would power-cycle the other.
					add("%s: bmc %s already belongs to hosts[%d] (%s)", where, b.Address, j, inv.Hosts[j].Hostname)
				} else {
					bmcs[key] = i
				}
				h.BMC = &b
			}
		}
		// The spec is checked with the others once the profile's OS is
		// known (specFor), but a malformed one is named here already.
		if _, ok := inv.Profiles[h.Profile]; ok && h.Hostname != "" {
			var err error
			if h.spec, err = inv.specFor(h); err != nil {
				issues = append(issues, specIssues(i, h, err)...)
			} else if err := inv.checkCredentials(h.Profile, h.spec); err != nil {
				issues = append(issues, hostIssue{h, fmt.Sprintf("hosts[%d] (%s)", i, h.Hostname), err.Error()})
				h.spec = nil
			}
		}
	}
	p = append(p, inv.groupIssues(issues)...)
	if inv.Unknown == UnknownMenu {
		// Unknown MACs install any profile from the menu: its own spec
		// must pass the same rule.
		for _, name := range inv.profileNames() {
			_, err := inv.unknownSpec(inv.Profiles[name], net.HardwareAddr{2, 0, 0, 0, 0, 1})
			if errors.Is(err, answerfile.ErrNoCredentials) || errors.Is(err, answerfile.ErrDemoMixed) {
				add("profile %s (menu installs of unknown MACs): %v", name, err)
			}
		}
	}
	return p
}

// parseHostBMC parses a host's "bmc:" node. The error, one line, starts
// with "bmc" and never holds a password: an inline one is refused unread.
func parseHostBMC(n *yaml.Node) (power.BMC, error) {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return power.BMC{}, fmt.Errorf("bmc: want a mapping (type, address, user, password_env or password_file)")
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return power.BMC{}, fmt.Errorf("bmc: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	for k := range m {
		// A password written inline, even under a misspelt key such as
		// "{password:x}" (one key in YAML flow style), is refused without
		// echoing the key, which holds it.
		if l := strings.ToLower(k); strings.Contains(l, "pass") && l != "password_env" && l != "password_file" {
			return power.BMC{}, errors.New("bmc: a password key: passwords are not accepted inline; use password_env (an environment variable) or password_file")
		}
	}
	b, err := power.ParseBMC(m)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), power.ErrConfig.Error()+": ")
		return power.BMC{}, errors.New(msg)
	}
	return b, nil
}

// bmcKey identifies a BMC endpoint, to find two hosts sharing one.
func bmcKey(b power.BMC) string {
	addr := strings.ToLower(b.Address)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		port := "623"
		if b.Type == power.Redfish {
			port = "443"
		}
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), port)
	}
	return string(b.Type) + " " + addr + " " + b.SystemID
}

// checkCredentials applies the examples' credential rule (see
// Spec.RequireCredentials and DemoPassword) to a spec of profile, filling
// in the demo password where the inventory allows it and noting the
// accounts for the start-up warning.
func (inv *Inventory) checkCredentials(profile string, s *answerfile.Spec) error {
	demo, err := s.RequireCredentials(inv.DemoPassword)
	switch {
	case errors.Is(err, answerfile.ErrNoCredentials):
		return fmt.Errorf("%w: set root.password, root.ssh_keys or a user's in defaults, the profile's spec or the host's overrides, or demo_password: true to install with the PUBLIC demo password %q (lab only)", err, answerfile.DemoPassword)
	case err != nil:
		return err
	}
	if len(demo) > 0 {
		if inv.demo == nil {
			inv.demo = map[string][]string{}
		}
		for _, a := range demo {
			if !slices.Contains(inv.demo[profile], a) {
				inv.demo[profile] = append(inv.demo[profile], a)
			}
		}
	}
	return nil
}

// DemoWarnings are the start-up warnings for profiles that install the
// public demo password (demo_password: true).
func (inv *Inventory) DemoWarnings() []string {
	var out []string
	for _, name := range inv.profileNames() {
		if a := inv.demo[name]; len(a) > 0 {
			out = append(out, "profile "+name+": "+answerfile.DemoWarning(a))
		}
	}
	return out
}

// macKind names what a MAC is when it cannot be one machine's NIC: the
// broadcast or a multicast address (group bit set), or all zeros.
func macKind(hw net.HardwareAddr) string {
	switch {
	case bytes.Equal(hw, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}):
		return "the broadcast address"
	case hw[0]&1 != 0:
		return "a multicast address"
	case bytes.Equal(hw, make(net.HardwareAddr, len(hw))):
		return "all zeros"
	}
	return ""
}

func (inv *Inventory) profileNames() []string {
	names := make([]string, 0, len(inv.Profiles))
	for n := range inv.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// specFor merges defaults, the profile's spec, the host's fields and its
// overrides, in that order, into one checked spec.
func (inv *Inventory) specFor(h *Host) (*answerfile.Spec, error) {
	pr := inv.Profiles[h.Profile]
	m := mergeMaps(nil, inv.Defaults)
	m = mergeMaps(m, pr.Spec)
	own := map[string]any{"hostname": h.Hostname}
	if h.Layout != "" {
		own["layout"] = map[string]any{"scheme": h.Layout}
	}
	if h.Address != "" {
		netw := map[string]any{"mode": "static", "address": h.Address, "mac": h.MAC}
		if h.Gateway != "" {
			netw["gateway"] = h.Gateway
		}
		if len(h.DNS) > 0 {
			netw["dns"] = h.DNS
		}
		own["network"] = netw
	}
	m = mergeMaps(m, own)
	m = mergeMaps(m, h.Overrides)
	return specFromMap(m)
}

// unknownSpec is the spec an unlisted machine installs from the menu with:
// the profile's, named after its MAC.
func (inv *Inventory) unknownSpec(pr *Profile, mac net.HardwareAddr) (*answerfile.Spec, error) {
	m := mergeMaps(nil, inv.Defaults)
	m = mergeMaps(m, pr.Spec)
	if _, ok := m["hostname"]; !ok {
		m["hostname"] = "pxe-" + strings.ReplaceAll(mac.String(), ":", "")
	}
	s, err := specFromMap(m)
	if err != nil {
		return nil, err
	}
	if err := inv.checkCredentials(pr.name, s); err != nil {
		return nil, err
	}
	return s, nil
}

func specFromMap(m map[string]any) (*answerfile.Spec, error) {
	data, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	return answerfile.ParseSpec(data)
}

// mergeMaps returns dst with src laid over it: maps merge key by key,
// anything else (lists included) is replaced. Neither input is modified.
func mergeMaps(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(dm, sm)
				continue
			}
			out[k] = mergeMaps(nil, sm)
			continue
		}
		out[k] = v
	}
	return out
}

// path resolves a path from the inventory file's directory.
func (inv *Inventory) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(inv.dir, p)
}

// host returns the listed host with mac, or nil.
func (inv *Inventory) host(mac net.HardwareAddr) *Host {
	return inv.byMAC[mac.String()]
}

// hostByName finds a host by hostname or MAC, for the operator's commands.
func (inv *Inventory) hostByName(s string) *Host {
	if hw, ok := parseMAC(s); ok {
		return inv.host(hw)
	}
	for _, h := range inv.Hosts {
		if h != nil && strings.EqualFold(h.Hostname, s) {
			return h
		}
	}
	return nil
}
