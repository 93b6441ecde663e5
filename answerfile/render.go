package answerfile

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/pxekit/pxekit/internal/osid"
)

// Kind names an answer-file format: the file one installer family reads.
type Kind string

// Answer-file kinds. Ubuntu's NoCloud meta-data is not a kind of its own:
// Build puts it in the Set beside the user-data.
const (
	KindKickstart   Kind = "kickstart"   // anaconda family
	KindAutoinstall Kind = "autoinstall" // Ubuntu: NoCloud user-data
	KindPreseed     Kind = "preseed"     // Debian
)

// kindMetaData is Ubuntu's NoCloud meta-data, rendered only as part of a
// Set.
const kindMetaData Kind = "meta-data"

// Renderer turns a Spec into answer files. The zero value is ready to use.
type Renderer struct {
	// Rand supplies salts for plaintext passwords. Default crypto/rand.
	Rand io.Reader
	// Logger receives one debug record per rendered file (never a
	// password). Default: silent.
	Logger *slog.Logger
}

// Render renders the answer file of the given kind for the OS identifier
// (see OSes: "rocky-9.0", "ubuntu-22.04", "debian-12", ...) with a zero
// Renderer.
func Render(osID string, kind Kind, s *Spec) ([]byte, error) {
	var r Renderer
	return r.Render(osID, kind, s)
}

// KindFor returns the answer-file kind the OS's installer reads:
// KindKickstart, KindAutoinstall or KindPreseed.
func KindFor(osID string) (Kind, error) {
	info, ok := osid.Lookup(osID)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownOS, osID)
	}
	return kindOf(info), nil
}

func kindOf(info osid.Info) Kind {
	switch info.Family {
	case osid.Anaconda:
		return KindKickstart
	case osid.Subiquity:
		return KindAutoinstall
	default:
		return KindPreseed
	}
}

// Render validates s for the OS and renders the answer file of the given
// kind. Problems come back together as a *ValidationError
// (errors.Is(err, ErrInvalidSpec)); an OS that does not read kind gives
// ErrUnsupportedKind. s is not modified. Ubuntu's meta-data comes with
// Build.
func (r *Renderer) Render(osID string, kind Kind, s *Spec) ([]byte, error) {
	pl, err := r.prepare(osID, kind, s)
	if err != nil {
		return nil, err
	}
	return r.renderPlan(pl, kind)
}

// prepare looks the OS up, checks that its installer reads kind and plans
// s for it.
func (r *Renderer) prepare(osID string, kind Kind, s *Spec) (*plan, error) {
	info, ok := osid.Lookup(osID)
	if !ok {
		return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownOS, osID, strings.Join(osid.IDs(), " "))
	}
	if want := kindOf(info); kind != want {
		return nil, fmt.Errorf("%w: %s reads a %s, not %q", ErrUnsupportedKind, info.ID, want, kind)
	}
	if s == nil {
		return nil, &ValidationError{Problems: []FieldError{{Field: "spec", Msg: "missing"}}}
	}
	return r.plan(info, s)
}

// renderPlan renders one file of a planned spec.
func (r *Renderer) renderPlan(pl *plan, kind Kind) ([]byte, error) {
	var out []byte
	var err error
	switch kind {
	case KindKickstart:
		out = renderKickstart(pl)
	case KindAutoinstall:
		out, err = renderAutoinstall(pl)
	case kindMetaData:
		out = renderMetaData(pl)
	case KindPreseed:
		out = renderPreseed(pl)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedKind, kind)
	}
	if err != nil {
		return nil, err
	}
	if r.Logger != nil {
		r.Logger.Debug("answerfile rendered", "os", pl.info.ID, "kind", string(kind), "hostname", pl.spec.Hostname, "bytes", len(out))
	}
	return out, nil
}

// plan is a validated spec with every default filled in for one OS.
type plan struct {
	info  osid.Info
	spec  Spec // defaults applied, passwords hashed
	repos []repoPlan
	demo  bool
}

type repoPlan struct {
	field                     string
	name, baseURL, mirrorList string
	gpgKey, suite             string
	components                []string
}

func (r *Renderer) plan(info osid.Info, in *Spec) (*plan, error) {
	// Problems of the spec itself and of this installer are reported
	// together, so they can all be fixed at once.
	var p problems
	in.validate(&p)
	s := *in
	s.Users = slices.Clone(in.Users)
	rnd := r.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	hash := func(pw *Password) error {
		if pw.Plain == "" {
			return nil
		}
		h, err := HashPassword(string(pw.Plain), rnd)
		if err != nil {
			return err
		}
		*pw = Password{Hash: h}
		return nil
	}
	for i := range s.Users {
		if s.Users[i].SudoNoPassword {
			s.Users[i].Sudo = true
		}
		if s.Users[i].Shell == "" && info.Family != osid.Anaconda {
			s.Users[i].Shell = "/bin/bash"
		}
	}
	if s.Timezone == "" {
		s.Timezone = "UTC"
	}
	if s.Locale == "" {
		s.Locale = "en_US.UTF-8"
	}
	if s.Keyboard == "" {
		s.Keyboard = "us"
	}
	if s.Finish == "" {
		s.Finish = "reboot"
	}
	if s.Network.Mode == "" {
		s.Network.Mode = "dhcp"
	}
	s.Layout = s.Layout.withDefaults()
	defFS := "ext4"
	if info.Family == osid.Anaconda {
		defFS = "xfs"
	}
	fill := func(vs []Volume, lv bool) []Volume {
		vs = slices.Clone(vs)
		for i := range vs {
			v := &vs[i]
			switch {
			case v.FS != "":
			case v.Mount == "/boot/efi":
				v.FS = "vfat"
			case v.Mount == "swap":
				v.FS = "swap"
			default:
				v.FS = defFS
			}
			if v.Grow && v.Size == 0 {
				v.Size = 1
			}
			if lv {
				v.Name = lvName(*v)
			}
		}
		return vs
	}
	s.Layout.Partitions = fill(s.Layout.Partitions, false)
	s.Layout.LVM.Volumes = fill(s.Layout.LVM.Volumes, true)

	pl := &plan{info: info, spec: s, demo: in.usesDemoPassword()}
	for i, rp := range s.Repos {
		pl.repos = append(pl.repos, expandRepo(&p, info, fmt.Sprintf("repos[%d]", i), rp))
	}
	checkFamily(&p, pl)
	if len(p) > 0 {
		return nil, p.err()
	}
	if err := hash(&pl.spec.Root.Password); err != nil {
		return nil, err
	}
	for i := range pl.spec.Users {
		if err := hash(&pl.spec.Users[i].Password); err != nil {
			return nil, err
		}
	}
	return pl, nil
}

func isELClone(info osid.Info) bool {
	switch info.Distro {
	case "centos", "rhel", "anolis", "alma", "rocky":
		return true
	}
	return false
}

// expandRepo applies presets; fields set in the spec win.
func expandRepo(p *problems, info osid.Info, field string, r Repo) repoPlan {
	var d repoPlan
	apt := info.Family != osid.Anaconda
	switch r.Preset {
	case PresetEPEL:
		if !isELClone(info) {
			p.add(field+".preset", "epel is only for Enterprise Linux 7–9 clones, not %s", info.ID)
			break
		}
		m := info.ELMajor
		d = repoPlan{name: "epel", gpgKey: fmt.Sprintf("https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-%d", m)}
		if m == 7 {
			d.baseURL = "https://dl.fedoraproject.org/pub/archive/epel/7/$basearch/"
		} else {
			d.baseURL = fmt.Sprintf("https://dl.fedoraproject.org/pub/epel/%d/Everything/$basearch/", m)
		}
	case PresetNginx:
		d = repoPlan{name: "nginx", gpgKey: "https://nginx.org/keys/nginx_signing.key", components: []string{"nginx"}, suite: info.Codename}
		switch {
		case apt:
			d.baseURL = "https://nginx.org/packages/" + info.Distro
		case isELClone(info):
			d.baseURL = fmt.Sprintf("https://nginx.org/packages/centos/%d/$basearch/", info.ELMajor)
		case r.BaseURL == "":
			p.add(field+".preset", "nginx.org publishes no repository for %s: give baseurl", info.ID)
		}
	case PresetDockerCE:
		d = repoPlan{name: "docker-ce", components: []string{"stable"}, suite: info.Codename}
		switch {
		case apt:
			d.baseURL = "https://download.docker.com/linux/" + info.Distro
			d.gpgKey = "https://download.docker.com/linux/" + info.Distro + "/gpg"
		case isELClone(info):
			d.baseURL = fmt.Sprintf("https://download.docker.com/linux/centos/%d/$basearch/stable", info.ELMajor)
			d.gpgKey = "https://download.docker.com/linux/centos/gpg"
		case r.BaseURL == "":
			p.add(field+".preset", "Docker publishes no repository for %s: give baseurl", info.ID)
		}
	}
	d.field = field
	if r.Name != "" {
		d.name = r.Name
	}
	if r.BaseURL != "" {
		d.baseURL, d.mirrorList = r.BaseURL, ""
	}
	if r.MirrorList != "" {
		d.mirrorList, d.baseURL = r.MirrorList, ""
	}
	if r.GPGKey != "" {
		d.gpgKey = r.GPGKey
	}
	if r.Suite != "" {
		d.suite = r.Suite
	}
	if len(r.Components) > 0 {
		d.components = r.Components
	}
	if apt {
		if d.suite == "" {
			d.suite = info.Codename
		}
		if len(d.components) == 0 {
			d.components = []string{"main"}
		}
		if d.mirrorList != "" {
			p.add(field+".mirrorlist", "apt repositories take baseurl, not mirrorlist")
		}
		if d.gpgKey == "" && d.baseURL != "" {
			p.add(field+".gpgkey", "required for apt repositories (%s)", info.ID)
		}
	}
	return d
}

func (r Repo) effectiveName() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Preset
}

// checkFamily reports what the target installer cannot express.
func checkFamily(p *problems, pl *plan) {
	s := &pl.spec
	checkHash := func(field string, pw Password) {
		if pw.Hash == "" {
			return
		}
		if id, why := parseHash(pw.Hash); why == "" {
			if why := hashUnsupported(pl.info, id); why != "" {
				p.add(field+".hash", "%s: the account could never log in with its password; use a $6$ hash (mkpasswd -m sha-512)", why)
			}
		}
	}
	checkHash("root.password", s.Root.Password)
	for i, u := range s.Users {
		checkHash(fmt.Sprintf("users[%d].password", i), u.Password)
	}
	switch pl.info.Family {
	case osid.Subiquity:
		if identityUser(s) < 0 {
			p.add("users", "Ubuntu's installer needs a user with a password (its identity); root cannot log in with a password there")
		}
		if s.Network.Mode == "static" && s.Network.Device == "" && s.Network.MAC == "" {
			p.add("network.device", "Ubuntu has no notion of the boot NIC: a static setup needs device or mac")
		}
		if s.Offline && s.Mirror == "" {
			p.add("mirror", "offline needs a mirror for Ubuntu: without one the installer and the installed system use archive.ubuntu.com and security.ubuntu.com")
		}
		if s.Finish == "poweroff" && pl.info.Major < 22 {
			p.add("finish", "poweroff needs Ubuntu 22.04 or later (autoinstall shutdown key)")
		}
	case osid.DebianDI:
		if len(s.Users) > 0 && s.Users[0].Password.IsZero() {
			p.add("users[0].password", "Debian's installer makes users[0] its first user, which needs a password")
		}
		if len(s.Users) == 0 && s.Root.Password.IsZero() {
			p.add("root.password", "Debian needs a root password or a user with a password")
		}
		for _, u := range s.Users {
			if u.Name == "ssh" {
				p.add("users", "a user named ssh clashes with Debian's system group")
			}
		}
	case osid.Anaconda:
		if s.Root.Password.IsZero() && !slices.ContainsFunc(s.Users, func(u User) bool { return !u.Password.IsZero() || len(u.SSHKeys) > 0 }) && len(s.Root.SSHKeys) == 0 {
			p.add("root.password", "nobody could log in: set a root password, root SSH keys, or a user")
		}
	}
}

// identityUser is the index of the user Ubuntu's identity section gets: the
// first with a password.
func identityUser(s *Spec) int {
	return slices.IndexFunc(s.Users, func(u User) bool { return !u.Password.IsZero() })
}

// adminGroup is the group that grants sudo.
func adminGroup(info osid.Info) string {
	if info.Family == osid.Anaconda {
		return "wheel"
	}
	return "sudo"
}

// header is the comment block opening every rendered file.
func header(pl *plan, comment string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s Generated by pxekit for %s (%s %s). Edit the spec, not this file.\n", comment, pl.info.ID, pl.info.Name, pl.info.Version)
	if pl.demo {
		fmt.Fprintf(&b, "%s WARNING: this file uses pxekit's public DEMO password (%q).\n", comment, DemoPassword)
		fmt.Fprintf(&b, "%s CHANGE IT before installing anything that matters: set root.password and users[].password.\n", comment)
	}
	return b.String()
}
