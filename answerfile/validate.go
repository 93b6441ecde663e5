package answerfile

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // time zones are checked the same on every machine
)

// Errors callers can test with errors.Is.
var (
	// ErrInvalidSpec matches every *ValidationError.
	ErrInvalidSpec = errors.New("answerfile: invalid spec")
	// ErrUnknownOS reports an OS identifier missing from the table.
	ErrUnknownOS = errors.New("answerfile: unknown OS identifier")
	// ErrUnsupportedKind reports an answer-file kind the OS's installer
	// does not read (a preseed for Rocky, a kickstart for Ubuntu).
	ErrUnsupportedKind = errors.New("answerfile: kind not supported for this OS")
)

// FieldError is one problem, naming the field by its YAML path
// ("layout.lvm.volumes[2].size").
type FieldError struct {
	Field string // YAML path of the offending field
	Msg   string // what is wrong, for a human
}

// Error renders "field: message".
func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists every problem found in a spec at once.
// errors.Is(err, ErrInvalidSpec) is true for it.
type ValidationError struct {
	Problems []FieldError
}

// Error lists every problem, one per line when there are several.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidSpec.Error())
	if len(e.Problems) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Problems[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidSpec) hold.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidSpec }

// problems collects FieldErrors.
type problems []FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

var (
	reLabel    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	reTimezone = regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`)
	reLocale   = regexp.MustCompile(`^[A-Za-z]{2,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@[a-z]+)?$`)
	reKeyboard = regexp.MustCompile(`^[a-z0-9_-]+(\([a-z0-9_-]+\))?$`)
	reUser     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	reDevice   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9/_.:-]*$`)
	reSerial   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:+/-]*$`)
	reVGName   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,126}$`)
	rePackage  = regexp.MustCompile(`^[A-Za-z0-9@^_][A-Za-z0-9_.+:~*-]*$`)
	reRepoName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	reUnit     = regexp.MustCompile(`^[A-Za-z0-9@_.:-]+$`)
	reAlias    = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	reSysctl   = regexp.MustCompile(`^[a-z0-9_][a-z0-9_./-]*$`)
	reMode     = regexp.MustCompile(`^0?[0-7]{3,4}$`)
	reOwner    = regexp.MustCompile(`^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$`)
	reMount    = regexp.MustCompile(`^/[A-Za-z0-9/_.-]*$`)
)

var knownFS = map[string]bool{"xfs": true, "ext4": true, "ext3": true, "ext2": true, "vfat": true, "swap": true, "btrfs": true}

var promptColours = map[string]string{
	"red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36", "white": "37",
}

// Validate checks the spec as written, independent of the target OS, and
// returns a *ValidationError listing every problem, or nil. Render also
// checks what a particular installer cannot do.
func (s *Spec) Validate() error {
	var p problems
	s.validate(&p)
	return p.err()
}

func (s *Spec) validate(p *problems) {
	s.validateLimits(p)
	validHostname(p, s.Hostname)
	if s.Timezone != "" {
		if !reTimezone.MatchString(s.Timezone) || len(s.Timezone) > 64 {
			p.add("timezone", "%q is not an IANA zone name like Asia/Shanghai", s.Timezone)
		} else if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "Local" {
			p.add("timezone", "%q is not in the IANA time zone database (misspelt? e.g. Asia/Shanghai); the installer would stop or fall back to UTC", s.Timezone)
		}
	}
	if len(s.NTP) > maxNTP {
		p.add("ntp", "%d servers: at most %d", len(s.NTP), maxNTP)
	}
	for i, n := range s.NTP {
		if _, err := netip.ParseAddr(n); err == nil {
			continue
		}
		if !validDomain(n) {
			p.add(fmt.Sprintf("ntp[%d]", i), "%q is not a host name or IP address", n)
		}
	}
	if s.Locale != "" && !reLocale.MatchString(s.Locale) {
		p.add("locale", "%q is not a locale like en_US.UTF-8", s.Locale)
	}
	if s.Keyboard != "" && !reKeyboard.MatchString(s.Keyboard) {
		p.add("keyboard", "%q is not a keyboard layout like us or de", s.Keyboard)
	}
	if s.Mirror != "" {
		validURL(p, "mirror", s.Mirror)
	}
	validPassword(p, "root.password", s.Root.Password)
	validKeys(p, "root.ssh_keys", s.Root.SSHKeys)
	seen := map[string]int{}
	for i, u := range s.Users {
		f := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Name == "":
			p.add(f+".name", "required")
		case !reUser.MatchString(u.Name):
			p.add(f+".name", "%q is not a login name (lower case, digits, _ and -, at most 32)", u.Name)
		case u.Name == "root":
			p.add(f+".name", "root is configured under root, not users")
		default:
			if j, dup := seen[u.Name]; dup {
				p.add(f+".name", "duplicate of users[%d]", j)
			}
			seen[u.Name] = i
		}
		if strings.ContainsAny(u.FullName, "\n:\"'\\") {
			p.add(f+".full_name", "must not contain newlines, colons, quotes or backslashes")
		}
		validPassword(p, f+".password", u.Password)
		for j, g := range u.Groups {
			if !reUser.MatchString(g) {
				p.add(fmt.Sprintf("%s.groups[%d]", f, j), "%q is not a group name", g)
			}
		}
		validKeys(p, f+".ssh_keys", u.SSHKeys)
		if u.Shell != "" && (!path.IsAbs(u.Shell) || !reMount.MatchString(u.Shell)) {
			p.add(f+".shell", "%q is not an absolute path", u.Shell)
		}
	}
	s.Network.validate(p)
	if !s.Disk.Wipe {
		p.add("disk.wipe", "must be true: the layout replaces everything on the target disk")
	}
	s.Disk.validate(p)
	s.Layout.validate(p)
	if max := s.Disk.MaxGiB; max > 0 && max <= maxDiskGiB && max*1024 < s.Layout.MinDiskMiB() {
		p.add("disk.max_gib", "%d GiB is less than the layout needs (%d MiB): no disk in the range could hold it", max, s.Layout.MinDiskMiB())
	}
	validNames(p, "packages.groups", s.Packages.Groups)
	validNames(p, "packages.names", s.Packages.Names)
	validNames(p, "packages.exclude", s.Packages.Exclude)
	repoNames := map[string]int{}
	for i, r := range s.Repos {
		f := fmt.Sprintf("repos[%d]", i)
		r.validate(p, f)
		if n := r.effectiveName(); n != "" {
			if j, dup := repoNames[n]; dup {
				p.add(f+".name", "duplicate of repos[%d]", j)
			}
			repoNames[n] = i
		}
	}
	for i, st := range s.Post {
		st.validate(p, fmt.Sprintf("post[%d]", i))
	}
	switch s.Finish {
	case "", "reboot", "poweroff":
	default:
		p.add("finish", "%q: must be reboot or poweroff", s.Finish)
	}
	if s.Callback.URL != "" {
		validURL(p, "callback.url", s.Callback.URL)
	} else if s.Callback.Events {
		p.add("callback.events", "needs callback.url")
	}
}

func validDomain(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !reLabel.MatchString(l) {
			return false
		}
	}
	return true
}

func validHostname(p *problems, h string) {
	if h == "" {
		p.add("hostname", "required")
		return
	}
	if len(h) > 253 {
		p.add("hostname", "longer than 253 characters")
		return
	}
	for _, l := range strings.Split(h, ".") {
		if !reLabel.MatchString(l) {
			p.add("hostname", "%q is not a host name (letters, digits and -, dot-separated labels of at most 63)", h)
			return
		}
	}
}

func validURL(p *problems, field, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp") || u.Host == "" {
		p.add(field, "%q is not an http, https or ftp URL", raw)
		return
	}
	if strings.ContainsAny(raw, " '\"\\\n`") {
		p.add(field, "must not contain spaces, quotes, backslashes or backquotes")
	}
}

func validPassword(p *problems, field string, pw Password) {
	if pw.Hash != "" && pw.Plain != "" {
		p.add(field, "set hash or plain, not both")
	}
	if pw.Hash != "" {
		if _, why := parseHash(pw.Hash); why != "" {
			p.add(field+".hash", "%s; the account could not log in with its password (generate one with HashPassword or mkpasswd -m sha-512)", why)
		}
	}
	if strings.ContainsAny(string(pw.Plain), "\n") {
		p.add(field+".plain", "must be a single line")
	}
}

func validKeys(p *problems, field string, keys []string) {
	for i, k := range keys {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case strings.ContainsAny(k, "\r\n"):
			p.add(f, "must be one authorized_keys line")
		case strings.ContainsAny(k, "'\\`"):
			p.add(f, "must not contain single quotes, backslashes or backquotes")
		case !strings.Contains(k, "ssh-") && !strings.Contains(k, "ecdsa-") && !strings.Contains(k, "sk-"):
			p.add(f, "does not look like a public key (ssh-ed25519 AAAA...)")
		}
	}
}

func validNames(p *problems, field string, names []string) {
	for i, n := range names {
		if !rePackage.MatchString(n) {
			p.add(fmt.Sprintf("%s[%d]", field, i), "%q is not a package or group name", n)
		}
	}
}

func (n Network) validate(p *problems) {
	if n.Device != "" && !reDevice.MatchString(n.Device) {
		p.add("network.device", "%q is not an interface name", n.Device)
	}
	if n.MAC != "" {
		if _, err := net.ParseMAC(n.MAC); err != nil {
			p.add("network.mac", "%q is not a MAC address", n.MAC)
		}
		if n.Device != "" {
			p.add("network.mac", "set device or mac, not both")
		}
	}
	if n.Domain != "" {
		for _, l := range strings.Split(n.Domain, ".") {
			if !reLabel.MatchString(l) {
				p.add("network.domain", "%q is not a domain name", n.Domain)
				break
			}
		}
	}
	switch n.Mode {
	case "", "dhcp":
		if n.Address != "" || n.Gateway != "" || len(n.DNS) > 0 {
			p.add("network.mode", "address, gateway and dns need mode: static")
		}
		return
	case "static":
	default:
		p.add("network.mode", "%q: must be dhcp or static", n.Mode)
		return
	}
	pfx, err := netip.ParsePrefix(n.Address)
	if n.Address == "" {
		p.add("network.address", "required for a static setup")
	} else if err != nil || !pfx.Addr().Is4() {
		p.add("network.address", "%q is not an IPv4 address with prefix length like 192.0.2.10/24", n.Address)
	}
	if n.Gateway == "" {
		// A network without a router (an isolated install network): no
		// default route.
	} else if gw, err := netip.ParseAddr(n.Gateway); err != nil || !gw.Is4() {
		p.add("network.gateway", "%q is not an IPv4 address", n.Gateway)
	} else if err == nil && pfx.IsValid() && !pfx.Masked().Contains(gw) {
		p.add("network.gateway", "%s is outside %s", n.Gateway, pfx.Masked())
	}
	if len(n.DNS) == 0 {
		p.add("network.dns", "at least one server is required for a static setup")
	}
	for i, d := range n.DNS {
		if a, err := netip.ParseAddr(d); err != nil || !a.Is4() {
			p.add(fmt.Sprintf("network.dns[%d]", i), "%q is not an IPv4 address", d)
		}
	}
}

// maxDiskGiB bounds disk.min_gib and disk.max_gib (1 EiB).
const maxDiskGiB = 1 << 30

func (d Disk) validate(p *problems) {
	if d.Device != "" {
		dev := strings.TrimPrefix(d.Device, "/dev/")
		if !reDevice.MatchString(dev) || len(d.Device) > 255 || strings.Contains(dev, "..") {
			p.add("disk.device", "%q is not a disk name like sda, /dev/nvme0n1 or /dev/disk/by-id/...", d.Device)
		}
	}
	if d.Serial != "" && (!reSerial.MatchString(d.Serial) || len(d.Serial) > 128) {
		p.add("disk.serial", "%q is not a serial number (letters, digits and _ . : + / -, at most 128)", d.Serial)
	}
	for _, b := range []struct {
		field string
		v     int
	}{{"disk.min_gib", d.MinGiB}, {"disk.max_gib", d.MaxGiB}} {
		if b.v < 0 || b.v > maxDiskGiB {
			p.add(b.field, "%d: must be between 0 (no bound) and %d", b.v, maxDiskGiB)
		}
	}
	if d.MinGiB > 0 && d.MaxGiB > 0 && d.MaxGiB < d.MinGiB {
		p.add("disk.max_gib", "%d is less than disk.min_gib %d", d.MaxGiB, d.MinGiB)
	}
}

func (l Layout) validate(p *problems) {
	switch l.Scheme {
	case "", SchemePlain:
		if l.LVM.VG != "" || len(l.LVM.Volumes) > 0 {
			p.add("layout.lvm", "set but layout.scheme is not lvm")
		}
	case SchemeLVM:
	default:
		p.add("layout.scheme", "%q: must be plain or lvm", l.Scheme)
		return
	}
	d := l.withDefaults()
	mounts := map[string]string{}
	check := func(f string, v Volume, lv bool) {
		mp := v.Mount
		switch {
		case mp == "":
			p.add(f+".mount", "required (a path or swap)")
		case mp == "swap":
		case mp == "biosboot":
			p.add(f+".mount", "the 1 MiB BIOS boot partition is added to every layout; leave it out")
		case !reMount.MatchString(mp) || path.Clean(mp) != mp:
			p.add(f+".mount", "%q is not a clean absolute path or swap", mp)
		}
		if mp != "" && mp != "swap" {
			if prev, dup := mounts[mp]; dup {
				p.add(f+".mount", "%s is already mounted by %s", mp, prev)
			}
			mounts[mp] = f
		}
		switch {
		case v.Size < 0:
			p.add(f+".size", "must be > 0")
		case v.Size == 0 && !v.Grow:
			p.add(f+".size", "must be > 0 (or set grow)")
		case v.Size > maxVolumeMiB:
			p.add(f+".size", "%d MiB is more than %d MiB (1 EiB)", v.Size, maxVolumeMiB)
		}
		least := map[string]struct {
			mib int
			why string
		}{
			"/boot/efi": {minESPMiB, "firmware and mkfs.vfat need a FAT32 EFI system partition"},
			"/boot":     {minBootMiB, "/boot holds every installed kernel with its initramfs; updates would fail"},
			"/":         {minRootMiB, "the smallest package set of any target does not fit"},
		}[mp]
		if least.mib > 0 && v.Size < least.mib && !(v.Grow && v.Size == 0 && mp == "/") {
			p.add(f+".size", "%d MiB is less than the %d MiB %s needs: %s, and the install would fail", v.Size, least.mib, mp, least.why)
		}
		if v.FS != "" && !knownFS[v.FS] {
			p.add(f+".fs", "%q: must be one of xfs, ext4, ext3, ext2, btrfs, vfat, swap", v.FS)
		}
		if (mp == "swap") != (v.FS == "swap") && v.FS != "" {
			p.add(f+".fs", "swap goes with mount: swap and nothing else")
		}
		if mp == "/boot/efi" {
			if lv {
				p.add(f+".mount", "/boot/efi must be a partition, not a logical volume")
			}
			if v.FS != "" && v.FS != "vfat" {
				p.add(f+".fs", "/boot/efi must be vfat for UEFI")
			}
		}
		if mp == "/boot" && lv {
			p.add(f+".mount", "/boot must be a partition: the boot loader reads it before LVM is up")
		}
		if v.Name != "" {
			if !lv {
				p.add(f+".name", "only logical volumes have names")
			} else if !reVGName.MatchString(v.Name) {
				p.add(f+".name", "%q is not an LVM name", v.Name)
			}
		}
	}
	growing := func(field string, vols []Volume) {
		for i, v := range vols {
			if v.Grow && i != len(vols)-1 {
				p.add(fmt.Sprintf("%s[%d].grow", field, i), "only the last volume may grow")
			}
		}
	}
	if len(d.Partitions) > maxVolumes {
		p.add("layout.partitions", "%d partitions: at most %d", len(d.Partitions), maxVolumes)
		return
	}
	if len(d.LVM.Volumes) > maxVolumes {
		p.add("layout.lvm.volumes", "%d logical volumes: at most %d", len(d.LVM.Volumes), maxVolumes)
		return
	}
	for i, v := range d.Partitions {
		check(fmt.Sprintf("layout.partitions[%d]", i), v, false)
		if d.Scheme == SchemeLVM && v.Grow {
			p.add(fmt.Sprintf("layout.partitions[%d].grow", i), "with lvm the physical volume takes the rest of the disk")
		}
	}
	growing("layout.partitions", d.Partitions)
	if d.Scheme == SchemeLVM {
		if d.LVM.VG != "" && !reVGName.MatchString(d.LVM.VG) {
			p.add("layout.lvm.vg", "%q is not an LVM name", d.LVM.VG)
		}
		names := map[string]int{}
		for i, v := range d.LVM.Volumes {
			f := fmt.Sprintf("layout.lvm.volumes[%d]", i)
			check(f, v, true)
			n := lvName(v)
			if j, dup := names[n]; dup {
				p.add(f+".name", "logical volume %q is also layout.lvm.volumes[%d]", n, j)
			}
			names[n] = i
		}
		growing("layout.lvm.volumes", d.LVM.Volumes)
	}
	if _, ok := mounts["/"]; !ok {
		p.add("layout", "no volume is mounted at /")
	}
	if _, ok := mounts["/boot/efi"]; !ok {
		p.add("layout", "no /boot/efi partition: UEFI needs an EFI system partition")
	}
}

func (r Repo) validate(p *problems, f string) {
	switch r.Preset {
	case "", PresetEPEL, PresetNginx, PresetDockerCE:
	default:
		p.add(f+".preset", "%q: must be epel, nginx or docker-ce", r.Preset)
	}
	if r.Preset == "" {
		if r.Name == "" {
			p.add(f+".name", "required without a preset")
		}
		if r.BaseURL == "" && r.MirrorList == "" {
			p.add(f+".baseurl", "baseurl or mirrorlist is required without a preset")
		}
	}
	if r.Name != "" && !reRepoName.MatchString(r.Name) {
		p.add(f+".name", "%q: letters, digits, _, . and - only", r.Name)
	}
	if r.BaseURL != "" && r.MirrorList != "" {
		p.add(f+".mirrorlist", "set baseurl or mirrorlist, not both")
	}
	for _, u := range []struct{ field, v string }{{"baseurl", r.BaseURL}, {"mirrorlist", r.MirrorList}, {"gpgkey", r.GPGKey}} {
		if u.v != "" {
			validURL(p, f+"."+u.field, strings.NewReplacer("$releasever", "x", "$basearch", "x").Replace(u.v))
		}
	}
	if r.Suite != "" && !reRepoName.MatchString(r.Suite) {
		p.add(f+".suite", "%q is not a suite name", r.Suite)
	}
	for i, c := range r.Components {
		if !reRepoName.MatchString(c) {
			p.add(fmt.Sprintf("%s.components[%d]", f, i), "%q is not a component name", c)
		}
	}
}

func (st Step) validate(p *problems, f string) {
	set := 0
	for _, b := range []bool{len(st.Enable) > 0, len(st.Disable) > 0, st.Prompt != "", len(st.Aliases) > 0, st.File != nil, len(st.Sysctl) > 0, st.Shell != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		p.add(f, "set exactly one of enable, disable, prompt, aliases, file, sysctl, shell (found %d)", set)
	}
	for i, u := range append(append([]string(nil), st.Enable...), st.Disable...) {
		if !reUnit.MatchString(u) {
			p.add(fmt.Sprintf("%s.units[%d]", f, i), "%q is not a systemd unit name", u)
		}
	}
	if st.Prompt != "" {
		if _, ok := promptColours[st.Prompt]; !ok {
			p.add(f+".prompt", "%q: must be red, green, yellow, blue, magenta, cyan or white", st.Prompt)
		}
	}
	for i, a := range st.Aliases {
		if !reAlias.MatchString(a.Name) {
			p.add(fmt.Sprintf("%s.aliases[%d].name", f, i), "%q is not an alias name", a.Name)
		}
		if a.Command == "" || strings.ContainsAny(a.Command, "\n") {
			p.add(fmt.Sprintf("%s.aliases[%d].command", f, i), "must be one non-empty line")
		}
	}
	if st.File != nil {
		fl := st.File
		if !path.IsAbs(fl.Path) || path.Clean(fl.Path) != fl.Path || !reMount.MatchString(fl.Path) || fl.Path == "/" {
			p.add(f+".file.path", "%q is not a clean absolute file path", fl.Path)
		}
		if fl.Mode != "" && !reMode.MatchString(fl.Mode) {
			p.add(f+".file.mode", "%q is not an octal mode like 0644", fl.Mode)
		}
		if fl.Owner != "" && !reOwner.MatchString(fl.Owner) {
			p.add(f+".file.owner", "%q is not user or user:group", fl.Owner)
		}
	}
	for i, kv := range st.Sysctl {
		if !reSysctl.MatchString(kv.Key) {
			p.add(fmt.Sprintf("%s.sysctl[%d].key", f, i), "%q is not a sysctl key like net.ipv4.ip_forward", kv.Key)
		}
		if kv.Value == "" || strings.ContainsAny(kv.Value, "\n") {
			p.add(fmt.Sprintf("%s.sysctl[%d].value", f, i), "must be one non-empty line")
		}
	}
}

// lvName is the volume's LV name, derived from the mount point if unset.
func lvName(v Volume) string {
	if v.Name != "" {
		return v.Name
	}
	switch v.Mount {
	case "/":
		return "root"
	case "swap":
		return "swap"
	}
	return strings.ReplaceAll(strings.Trim(v.Mount, "/"), "/", "_")
}
