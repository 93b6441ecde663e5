package answerfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Spec is one distro-neutral description of a server install. Teams keep it
// in YAML (see ParseSpec); the field tags give the YAML and JSON keys. Zero
// values mean "the default" stated on each field; WithDefaults fills them in.
type Spec struct {
	// Hostname of the installed system (a single DNS label or an FQDN).
	// Required.
	Hostname string `yaml:"hostname" json:"hostname"`
	// Timezone is an IANA zone such as "Asia/Shanghai", checked against
	// the time zone database Go embeds (a zone added after a target's
	// release may still be missing there). Default "UTC".
	Timezone string `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	// Locale such as "en_US.UTF-8". Default "en_US.UTF-8".
	Locale string `yaml:"locale,omitempty" json:"locale,omitempty"`
	// Keyboard is an X keyboard layout such as "us" or "de". Default "us".
	Keyboard string `yaml:"keyboard,omitempty" json:"keyboard,omitempty"`
	// Mirror is the package source the installer installs from, as an http(s)
	// URL: the BaseOS/os tree for kickstart (empty: the inst.repo= boot
	// argument is used), the Debian archive for preseed (empty:
	// deb.debian.org, or archive.debian.org for Debian 9 and 10), the Ubuntu
	// archive for autoinstall (empty: the installer's default).
	Mirror string `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	// Root configures the root account.
	Root Root `yaml:"root,omitempty" json:"root,omitempty"`
	// Users are created in order. Ubuntu needs at least one with a password
	// (its installer's identity); Debian makes the first one its "first user".
	Users []User `yaml:"users,omitempty" json:"users,omitempty"`
	// Network of the installed system. Default: DHCP on the boot NIC.
	Network Network `yaml:"network,omitempty" json:"network,omitempty"`
	// Disk is the install target.
	Disk Disk `yaml:"disk,omitempty" json:"disk,omitempty"`
	// Layout is the partitioning of the disk (GPT, bootable on BIOS and
	// UEFI). Default: the plain scheme with the default partitions (see
	// DefaultLayout and the table in the package documentation).
	Layout Layout `yaml:"layout,omitempty" json:"layout,omitempty"`
	// Packages to install or leave out.
	Packages Packages `yaml:"packages,omitempty" json:"packages,omitempty"`
	// Repos are extra package repositories, configured in the installed
	// system (and, for kickstart and preseed, used during the install).
	Repos []Repo `yaml:"repos,omitempty" json:"repos,omitempty"`
	// Post are typed post-install steps, run in order inside the installed
	// system after the packages are in.
	Post []Step `yaml:"post,omitempty" json:"post,omitempty"`
	// Finish is what the machine does when the install ends: "reboot"
	// (default) or "poweroff".
	Finish string `yaml:"finish,omitempty" json:"finish,omitempty"`
	// Callback reports the end of the install to a server (install-once).
	Callback Callback `yaml:"callback,omitempty" json:"callback,omitempty"`
	// Offline keeps the installer and the installed system from contacting
	// any host the spec does not name: no NTP unless NTP is set, no
	// security or updates mirrors, no geoip or other online look-ups; only
	// Mirror, Repos, NTP and Callback are contacted. Default false (each
	// installer's own defaults, listed in the package documentation).
	Offline bool `yaml:"offline,omitempty" json:"offline,omitempty"`
	// NTP servers (host names or addresses) for the installer's clock and
	// the installed system. Default: none given, the installer's default
	// pool unless Offline.
	NTP []string `yaml:"ntp,omitempty" json:"ntp,omitempty"`
}

// Root configures the root account.
type Root struct {
	// Password of root. Empty locks root's password (Ubuntu always does;
	// Debian then gives the first user sudo).
	Password Password `yaml:"password,omitempty" json:"password,omitempty"`
	// SSHKeys are authorized_keys lines for root.
	SSHKeys []string `yaml:"ssh_keys,omitempty" json:"ssh_keys,omitempty"`
	// AllowSSH permits root to log in over SSH with its password. False
	// leaves the distribution's default (RHEL 9 and Ubuntu forbid it).
	AllowSSH bool `yaml:"allow_ssh,omitempty" json:"allow_ssh,omitempty"`
}

// Password is a crypt(3) hash or a plaintext to be hashed with SHA-512 crypt
// when rendering. Set exactly one. The plaintext is never rendered, logged or
// marshalled.
type Password struct {
	// Hash is a crypt(3) hash used as given: "$6$…" (SHA-512) or "$5$…"
	// everywhere; "$y$…" (yescrypt) and "$2b$…" (bcrypt) only for Debian
	// 11+, Ubuntu 22.04+ and EL 9, whose libxcrypt verifies them (glibc's
	// crypt on EL 7 and Debian 9/10 does not). A truncated hash is an
	// error.
	Hash string `yaml:"hash,omitempty" json:"hash,omitempty"`
	// Plain is hashed with SHA-512 crypt and a random salt at render time.
	Plain Secret `yaml:"plain,omitempty" json:"plain,omitempty"`
}

// IsZero reports whether no password is set; it also keeps an empty
// password out of marshalled YAML.
func (p Password) IsZero() bool { return p.Hash == "" && p.Plain == "" }

// Secret is a string that must not leak: String, GoString, LogValue,
// MarshalJSON, MarshalYAML and MarshalText all print "[redacted]". Use
// string(s) where the value is truly needed.
type Secret string

const redacted = "[redacted]"

// String keeps fmt's %v and %s from printing the secret.
func (s Secret) String() string { return redactIf(s) }

// GoString covers %#v.
func (s Secret) GoString() string { return redactIf(s) }

// LogValue keeps slog output clean.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redactIf(s)) }

// MarshalJSON writes the redaction marker, never the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redactIf(s)) }

// MarshalText writes the redaction marker, never the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redactIf(s)), nil }

// MarshalYAML writes the redaction marker, never the secret.
func (s Secret) MarshalYAML() (any, error) { return redactIf(s), nil }

func redactIf(s Secret) string {
	if s == "" {
		return ""
	}
	return redacted
}

// User is a login account.
type User struct {
	// Name is the login name. Required.
	Name string `yaml:"name" json:"name"`
	// FullName is the GECOS comment. Default: none.
	FullName string `yaml:"full_name,omitempty" json:"full_name,omitempty"`
	// Password of the user. Empty means key-only login (not allowed for the
	// user that becomes Ubuntu's identity or Debian's first user).
	Password Password `yaml:"password,omitempty" json:"password,omitempty"`
	// Groups are supplementary groups, created if missing.
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Sudo adds the user to the administrators' group ("wheel" on the
	// anaconda family, "sudo" on Debian and Ubuntu).
	Sudo bool `yaml:"sudo,omitempty" json:"sudo,omitempty"`
	// SudoNoPassword also lets the user sudo without a password (a
	// sudoers.d drop-in). Implies Sudo.
	SudoNoPassword bool `yaml:"sudo_nopasswd,omitempty" json:"sudo_nopasswd,omitempty"`
	// SSHKeys are authorized_keys lines for the user.
	SSHKeys []string `yaml:"ssh_keys,omitempty" json:"ssh_keys,omitempty"`
	// Shell is the login shell. Default /bin/bash (useradd's default on
	// the anaconda family; set explicitly on Debian and Ubuntu, whose
	// useradd would give /bin/sh).
	Shell string `yaml:"shell,omitempty" json:"shell,omitempty"`
}

// Network configures the installed system's primary interface.
type Network struct {
	// Mode is "dhcp" (default) or "static".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Device is the interface name. Default: the NIC the machine booted
	// from (kickstart --device=bootif, netcfg "auto" honouring BOOTIF=; for
	// Ubuntu, which has no such notion, every "en*" interface for DHCP, and
	// a static setup needs Device or MAC).
	Device string `yaml:"device,omitempty" json:"device,omitempty"`
	// MAC selects the interface by hardware address instead of Device.
	MAC string `yaml:"mac,omitempty" json:"mac,omitempty"`
	// Address is the static address in CIDR form ("192.0.2.10/24").
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Gateway is the static default gateway. Empty: the network has no
	// router (an isolated install network) and the host no default route.
	Gateway string `yaml:"gateway,omitempty" json:"gateway,omitempty"`
	// DNS servers for a static setup.
	DNS []string `yaml:"dns,omitempty" json:"dns,omitempty"`
	// Domain is the DNS search domain. Default: none.
	Domain string `yaml:"domain,omitempty" json:"domain,omitempty"`
}

// Disk is the install target. With no selector set, every installer takes
// the same disk: the smallest disk that is not removable, read-only, a CD,
// a loop, RAM or zram device (on a server with a small boot SSD and large
// data disks, the boot SSD). Device, Serial and MinGiB/MaxGiB narrow the
// choice; the install stops with a message when no disk matches.
type Disk struct {
	// Device is the target disk by path: "sda", "/dev/nvme0n1" or a stable
	// "/dev/disk/by-path/…" or "/dev/disk/by-id/…" name. Default: none.
	Device string `yaml:"device,omitempty" json:"device,omitempty"`
	// Serial selects the disk whose serial number (as the kernel reports it
	// in /sys/block/*/device/serial or udev's ID_SERIAL_SHORT) equals it.
	// Default: none.
	Serial string `yaml:"serial,omitempty" json:"serial,omitempty"`
	// MinGiB and MaxGiB bound the disk's size in GiB (2^30 bytes); the
	// smallest disk inside the range is taken. 0 means unbounded.
	MinGiB int `yaml:"min_gib,omitempty" json:"min_gib,omitempty"`
	MaxGiB int `yaml:"max_gib,omitempty" json:"max_gib,omitempty"`
	// Wipe must be true: the layout replaces the disk's partition table and
	// every partition and LVM volume on it. Requiring it makes destroying
	// data an explicit decision.
	Wipe bool `yaml:"wipe,omitempty" json:"wipe,omitempty"`
}

// Layout schemes.
const (
	SchemePlain = "plain"
	SchemeLVM   = "lvm"
)

// Layout is a GPT partitioning that boots on BIOS and UEFI machines: every
// layout starts with a 1 MiB BIOS boot partition (added by the renderers,
// not listed here) and must have a /boot/efi partition.
type Layout struct {
	// Scheme is "plain" (default: every mount point a partition) or "lvm"
	// (partitions for /boot/efi and /boot, one volume group on the rest).
	Scheme string `yaml:"scheme,omitempty" json:"scheme,omitempty"`
	// Partitions are the GPT partitions in disk order, after the BIOS boot
	// partition. Default: /boot/efi 512 MiB, /boot 1024 MiB, and for the
	// plain scheme swap 1024 MiB and / of at least 5120 MiB on the rest.
	// With LVM they are the non-LVM partitions; the physical volume takes
	// the rest of the disk. /boot/efi needs at least 100 MiB, /boot 256
	// MiB, / 2048 MiB.
	Partitions []Volume `yaml:"partitions,omitempty" json:"partitions,omitempty"`
	// LVM is the volume group of the "lvm" scheme.
	LVM LVM `yaml:"lvm,omitempty" json:"lvm,omitempty"`
}

// LVM is the volume group of the "lvm" scheme.
type LVM struct {
	// VG is the volume group name. Default "vg0".
	VG string `yaml:"vg,omitempty" json:"vg,omitempty"`
	// Volumes are the logical volumes. Default: swap 1024 MiB named "swap"
	// and / of at least 5120 MiB on the rest named "root".
	Volumes []Volume `yaml:"volumes,omitempty" json:"volumes,omitempty"`
}

// Volume is one partition or logical volume.
type Volume struct {
	// Mount is the mount point ("/", "/var") or "swap".
	Mount string `yaml:"mount" json:"mount"`
	// Size in MiB; with Grow, the minimum size. Default 1 with Grow.
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Grow takes the space left over. At most one volume per disk or VG
	// grows, and it comes last.
	Grow bool `yaml:"grow,omitempty" json:"grow,omitempty"`
	// FS is the filesystem. Default: vfat for /boot/efi, swap for swap, xfs
	// on the anaconda family and ext4 elsewhere.
	FS string `yaml:"fs,omitempty" json:"fs,omitempty"`
	// Name is the logical volume name (LVM only). Default: derived from the
	// mount point ("root" for /, "var_log" for /var/log, "swap").
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
}

// Packages to install or leave out.
type Packages struct {
	// Groups are package groups in the target's own naming: comps groups or
	// environments for kickstart ("core", "^minimal-environment"; default
	// "core"), tasksel tasks for Debian and Ubuntu ("standard",
	// "ssh-server"; Debian default "standard, ssh-server").
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Names are packages to install.
	Names []string `yaml:"names,omitempty" json:"names,omitempty"`
	// Exclude are packages not to install (kickstart) or to purge after the
	// install (Debian, Ubuntu).
	Exclude []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
}

// Repository presets, expanded per family by the renderers.
const (
	PresetEPEL     = "epel"
	PresetNginx    = "nginx"
	PresetDockerCE = "docker-ce"
)

// Repo is an extra package repository. Either Preset or a URL is set.
type Repo struct {
	// Name identifies the repository (yum repo id, apt list file name).
	// Default: the preset's name.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Preset is "epel" (anaconda family, EL 7–9 only), "nginx" or
	// "docker-ce" (EL, Debian, Ubuntu). The other fields override it.
	Preset string `yaml:"preset,omitempty" json:"preset,omitempty"`
	// BaseURL of a yum repository, or the URI of an apt repository.
	BaseURL string `yaml:"baseurl,omitempty" json:"baseurl,omitempty"`
	// MirrorList of a yum repository (instead of BaseURL).
	MirrorList string `yaml:"mirrorlist,omitempty" json:"mirrorlist,omitempty"`
	// GPGKey is the URL of the signing key. Empty disables signature
	// checking for yum repositories and is an error for apt ones.
	GPGKey string `yaml:"gpgkey,omitempty" json:"gpgkey,omitempty"`
	// Suite of an apt repository. Default: the release codename.
	Suite string `yaml:"suite,omitempty" json:"suite,omitempty"`
	// Components of an apt repository. Default: "main".
	Components []string `yaml:"components,omitempty" json:"components,omitempty"`
}

// Step is one post-install step; set exactly one field.
type Step struct {
	// Enable are systemd units to enable.
	Enable []string `yaml:"enable,omitempty" json:"enable,omitempty"`
	// Disable are systemd units to disable.
	Disable []string `yaml:"disable,omitempty" json:"disable,omitempty"`
	// Prompt colours root's and users' shell prompt: "red", "green",
	// "yellow", "blue", "magenta", "cyan" or "white".
	Prompt string `yaml:"prompt,omitempty" json:"prompt,omitempty"`
	// Aliases are shell aliases for every login shell (/etc/profile.d).
	Aliases []Alias `yaml:"aliases,omitempty" json:"aliases,omitempty"`
	// File writes a file.
	File *File `yaml:"file,omitempty" json:"file,omitempty"`
	// Sysctl sets kernel parameters persistently (/etc/sysctl.d).
	Sysctl []Sysctl `yaml:"sysctl,omitempty" json:"sysctl,omitempty"`
	// Shell is an arbitrary POSIX shell snippet.
	Shell string `yaml:"shell,omitempty" json:"shell,omitempty"`
}

// Alias is one shell alias.
type Alias struct {
	Name    string `yaml:"name" json:"name"`       // alias name, e.g. "ll"
	Command string `yaml:"command" json:"command"` // what it expands to, one line
}

// Sysctl is one kernel parameter.
type Sysctl struct {
	Key   string `yaml:"key" json:"key"`     // e.g. "net.ipv4.ip_forward"
	Value string `yaml:"value" json:"value"` // e.g. "1"
}

// File is written into the installed system.
type File struct {
	// Path is absolute. Parent directories are created.
	Path string `yaml:"path" json:"path"`
	// Content is written verbatim.
	Content string `yaml:"content" json:"content"`
	// Mode is octal, as in chmod. Default "0644".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Owner is "user" or "user:group". Default root.
	Owner string `yaml:"owner,omitempty" json:"owner,omitempty"`
}

// Callback reports the end of an install. See the package documentation
// for the exact request each installer sends.
type Callback struct {
	// URL receives the report (http or https). Empty: no callback.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Events, for Ubuntu only, also sends the installer's progress events
	// to URL (autoinstall "reporting" webhook).
	Events bool `yaml:"events,omitempty" json:"events,omitempty"`
}

// ParseSpec reads a YAML (or JSON, which is YAML) spec of at most
// MaxSpecBytes and 100000 YAML nodes (aliases expanded). Unknown keys are an
// error so that a misspelt key is not silently ignored. Error messages
// give line numbers and never quote values, which may be secrets. The spec
// is not validated; Render and Validate do that.
func ParseSpec(data []byte) (*Spec, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("answerfile: parsing spec: %d bytes, at most %d", len(data), MaxSpecBytes)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("answerfile: parsing spec: %w", hideValues(err))
	}
	if n := countNodes(&root, maxSpecNodes+1, 0); n > maxSpecNodes {
		return nil, fmt.Errorf("answerfile: parsing spec: more than %d YAML nodes (aliases expanded)", maxSpecNodes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("answerfile: parsing spec: %w", hideValues(err))
	}
	return &s, nil
}

// countNodes counts n's nodes, following aliases, and stops counting at
// limit so that alias bombs cost nothing. Alias depth is bounded too.
func countNodes(n *yaml.Node, limit, depth int) int {
	if n == nil || depth > 100 {
		return limit
	}
	count := 1
	if n.Kind == yaml.AliasNode {
		return count + countNodes(n.Alias, limit-count, depth+1)
	}
	for _, c := range n.Content {
		if count >= limit {
			return limit
		}
		count += countNodes(c, limit-count, depth+1)
	}
	return count
}

// reQuoted matches the values yaml.v3 quotes in its type errors
// ("cannot unmarshal !!str `hunter2` into ...").
var reQuoted = regexp.MustCompile("`[^`]*`")

// hideValues rewrites YAML errors so that they name lines and types but no
// values: a password written where a mapping belongs would be echoed.
func hideValues(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = reQuoted.ReplaceAllString(m, "(value not shown)")
		}
		return &yaml.TypeError{Errors: msgs}
	}
	return errors.New(reQuoted.ReplaceAllString(err.Error(), "(value not shown)"))
}

// UnmarshalYAML takes only the mapping form, with a message that does not
// echo a password written as a plain string.
func (p *Password) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a password is a mapping, {hash: ...} or {plain: ...}; the value is not shown", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value != "hash" && k.Value != "plain" {
			return fmt.Errorf("line %d: a password takes the keys hash and plain only; the key is not shown", k.Line)
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: password %s must be a string", v.Line, k.Value)
		}
	}
	type plain Password // without this method
	var out plain
	if err := n.Decode(&out); err != nil {
		return hideValues(err)
	}
	*p = Password(out)
	return nil
}

// demoPasswordHash is SHA-512 crypt of "pxekit-demo".
const demoPasswordHash = "$6$pxekitdemosalt$CNbX.5VZ2sQgrl7tHPEy5LpP2PyybeVzbbxJPiJmJwDG4rqTfBTck6uEbCUCLHkAVnf.F5qblFG3h2Fg4ha4t1"

// DemoPassword is the plaintext of DemoSpec's password hashes. It is public:
// change it before installing anything that matters.
const DemoPassword = "pxekit-demo"

// DemoSpec returns a small, valid spec for demonstrations: hostname "demo",
// DHCP on the boot NIC, the disk of the one disk rule (see Disk) wiped, the given layout scheme ("" is
// plain), root and an "ops" sudo user whose password is DemoPassword.
// Rendered files carry a comment saying to change it.
func DemoSpec(scheme string) *Spec {
	return &Spec{
		Hostname: "demo",
		Timezone: "UTC",
		Root:     Root{Password: Password{Hash: demoPasswordHash}},
		Users: []User{{
			Name: "ops", FullName: "Operations", Sudo: true,
			Password: Password{Hash: demoPasswordHash},
		}},
		Disk:     Disk{Wipe: true},
		Layout:   Layout{Scheme: scheme},
		Packages: Packages{Names: []string{"curl", "rsync"}},
		Post: []Step{
			{Prompt: "green"},
			{Aliases: []Alias{{Name: "ll", Command: "ls -alF"}}},
		},
	}
}

// usesDemoPassword reports whether any account has DemoSpec's password.
func (s *Spec) usesDemoPassword() bool {
	if s.Root.Password.Hash == demoPasswordHash {
		return true
	}
	for _, u := range s.Users {
		if u.Password.Hash == demoPasswordHash {
			return true
		}
	}
	return false
}
