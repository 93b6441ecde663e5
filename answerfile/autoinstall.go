package answerfile

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The autoinstall document. Field order is output order.
type aiDoc struct {
	Autoinstall aiConfig `yaml:"autoinstall"`
}

type aiConfig struct {
	Version       int                  `yaml:"version"`
	EarlyCommands []string             `yaml:"early-commands,omitempty"`
	Locale        string               `yaml:"locale"`
	Keyboard      aiKeyboard           `yaml:"keyboard"`
	Timezone      string               `yaml:"timezone,omitempty"`
	Identity      aiIdentity           `yaml:"identity"`
	SSH           aiSSH                `yaml:"ssh"`
	Network       any                  `yaml:"network"`
	Storage       aiStorage            `yaml:"storage"`
	Apt           *aiApt               `yaml:"apt,omitempty"`
	UserData      map[string]any       `yaml:"user-data,omitempty"`
	Packages      []string             `yaml:"packages,omitempty"`
	LateCommands  []string             `yaml:"late-commands,omitempty"`
	Reporting     map[string]aiWebhook `yaml:"reporting,omitempty"`
	Shutdown      string               `yaml:"shutdown,omitempty"`
}

type aiKeyboard struct {
	Layout string `yaml:"layout"`
}

type aiIdentity struct {
	Hostname string `yaml:"hostname"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Realname string `yaml:"realname,omitempty"`
}

type aiSSH struct {
	InstallServer  bool     `yaml:"install-server"`
	AllowPW        bool     `yaml:"allow-pw"`
	AuthorizedKeys []string `yaml:"authorized-keys,omitempty"`
}

type aiStorage struct {
	Swap   map[string]int `yaml:"swap"`
	Config []yaml.Node    `yaml:"config"`
}

type aiApt struct {
	Geoip        bool        `yaml:"geoip"`
	Primary      []aiPrimary `yaml:"primary,omitempty"`
	Security     []aiPrimary `yaml:"security,omitempty"`
	DisableSuite []string    `yaml:"disable_suites,omitempty"`
	Fallback     string      `yaml:"fallback,omitempty"`
}

type aiPrimary struct {
	Arches []string `yaml:"arches"`
	URI    string   `yaml:"uri"`
}

type aiWebhook struct {
	Type     string `yaml:"type"`
	Endpoint string `yaml:"endpoint"`
}

// curtin storage actions, one struct per type so the keys stay ordered.
type ctDisk struct {
	Type       string `yaml:"type"`
	ID         string `yaml:"id"`
	Ptable     string `yaml:"ptable"`
	Path       string `yaml:"path"`
	Wipe       string `yaml:"wipe"`
	Preserve   bool   `yaml:"preserve"`
	GrubDevice bool   `yaml:"grub_device"`
}

type ctPartition struct {
	Type       string `yaml:"type"`
	ID         string `yaml:"id"`
	Device     string `yaml:"device"`
	Number     int    `yaml:"number"`
	Size       any    `yaml:"size"` // "600M", or -1 for the rest of the disk
	Flag       string `yaml:"flag,omitempty"`
	GrubDevice bool   `yaml:"grub_device,omitempty"`
	Wipe       string `yaml:"wipe,omitempty"`
	Preserve   bool   `yaml:"preserve"`
}

type ctVG struct {
	Type     string   `yaml:"type"`
	ID       string   `yaml:"id"`
	Name     string   `yaml:"name"`
	Devices  []string `yaml:"devices"`
	Preserve bool     `yaml:"preserve"`
}

type ctLV struct {
	Type     string `yaml:"type"`
	ID       string `yaml:"id"`
	Name     string `yaml:"name"`
	Volgroup string `yaml:"volgroup"`
	Size     string `yaml:"size,omitempty"`
	Preserve bool   `yaml:"preserve"`
}

type ctFormat struct {
	Type     string `yaml:"type"`
	ID       string `yaml:"id"`
	Volume   string `yaml:"volume"`
	FSType   string `yaml:"fstype"`
	Preserve bool   `yaml:"preserve"`
}

type ctMount struct {
	Type   string `yaml:"type"`
	ID     string `yaml:"id"`
	Device string `yaml:"device"`
	Path   string `yaml:"path"`
}

func renderAutoinstall(pl *plan) ([]byte, error) {
	s := &pl.spec
	major := pl.info.Major
	idx := identityUser(s)
	id := s.Users[idx]
	c := aiConfig{
		Version:  1,
		Locale:   s.Locale,
		Keyboard: aiKeyboard{Layout: s.Keyboard},
		Identity: aiIdentity{Hostname: s.Hostname, Username: id.Name, Password: id.Password.Hash, Realname: id.FullName},
		SSH:      aiSSH{InstallServer: true, AllowPW: len(id.SSHKeys) == 0 || s.Root.AllowSSH, AuthorizedKeys: id.SSHKeys},
		Network:  aiNetwork(pl),
	}
	if major >= 22 {
		c.Timezone = s.Timezone
		c.Shutdown = s.Finish
	}
	if s.Mirror != "" {
		c.Apt = &aiApt{Primary: []aiPrimary{{Arches: []string{"default"}, URI: s.Mirror}}}
	}
	if s.Offline {
		// checkFamily requires the mirror: it serves every suite, and the
		// updates, security and backports pockets are left out.
		c.Apt.Security = c.Apt.Primary
		c.Apt.DisableSuite = []string{"updates", "security", "backports"}
		if major >= 24 {
			c.Apt.Fallback = "offline-install"
		}
	}
	c.EarlyCommands = aiEarlyCommands(s)
	c.UserData = aiIdentityFixes(id)
	var err error
	c.Storage, err = aiStorageConfig(s)
	if err != nil {
		return nil, err
	}
	pp := postPlan{
		rootPassword: true,
		rootKeys:     true,
		userKeys:     true,
		allowRootSSH: true,
		timezone:     major < 22,
		aptRepos:     true,
		tasks:        s.Packages.Groups,
		purge:        s.Packages.Exclude,
		skipCheck:    map[string]bool{id.Name: true},
	}
	// The identity user is created by cloud-init at first boot; the script
	// creates the others.
	for i := range s.Users {
		if i != idx {
			pp.createUsers = append(pp.createUsers, i)
		}
	}
	if len(pl.repos) > 0 {
		// Packages from added repositories can only come after them.
		pp.install = s.Packages.Names
	} else {
		c.Packages = s.Packages.Names
	}
	script := postScript(pl, pp)
	delim := "PXEKIT_POST"
	for strings.Contains(script, delim) {
		delim += "_"
	}
	if cmd := aiTimesyncd(s, "/target/etc"); cmd != "" {
		c.LateCommands = append(c.LateCommands, cmd)
	}
	c.LateCommands = append(c.LateCommands,
		"cat > /target/root/pxekit-post.sh <<'"+delim+"'\n"+script+delim,
		"curtin in-target --target=/target -- sh /root/pxekit-post.sh > /target/root/pxekit-post.log 2>&1",
	)
	if s.Callback.URL != "" {
		c.LateCommands = append(c.LateCommands,
			fmt.Sprintf(`[ -s /target%[1]s ] || printf '{"hostname":"%%s","os":"%%s","status":"unknown","checks":[]}\n' %[2]s %[3]s > /target%[1]s`,
				ReportPath, shq(s.Hostname), shq(pl.info.ID)),
			fmt.Sprintf("curl -fsS -m 30 --retry 3 -X POST -H 'Content-Type: application/json' --data-binary @/target%s %s || true",
				ReportPath, shq(s.Callback.URL)))
		if s.Callback.Events {
			c.Reporting = map[string]aiWebhook{"pxekit": {Type: "webhook", Endpoint: s.Callback.URL}}
		}
	}
	var buf bytes.Buffer
	buf.WriteString("#cloud-config\n")
	buf.WriteString(header(pl, "#"))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(aiDoc{Autoinstall: c}); err != nil {
		return nil, fmt.Errorf("answerfile: encoding autoinstall: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// diskPlaceholder stands for the install disk in the storage config until
// early-commands put the chosen disk's path in its place.
const diskPlaceholder = "/dev/pxekit-install-disk"

// aiEarlyCommands picks the install disk by the one rule and writes its
// path into /autoinstall.yaml, which subiquity reads again after the
// early-commands; and sets the installer's own clock source.
func aiEarlyCommands(s *Spec) []string {
	script := diskPickScript(s.Disk, s.Layout.MinDiskMiB())
	cmds := []string{
		"cat > /tmp/pxekit-disk.sh <<'PXEKIT_DISK'\n" + script + "PXEKIT_DISK",
		// The placeholder is split so that this command does not match
		// its own pattern in the file.
		`if disk=$(sh /tmp/pxekit-disk.sh 2>/tmp/pxekit-disk.log); then cat /tmp/pxekit-disk.log; ` +
			`p=/dev/pxekit-install; sed -i "s|${p}-disk|/dev/$disk|" /autoinstall.yaml; ` +
			`else cat /tmp/pxekit-disk.log >&2; cat /tmp/pxekit-disk.log > /dev/console 2>/dev/null; exit 1; fi`,
	}
	if cmd := aiTimesyncd(s, "/run"); cmd != "" {
		cmds = append(cmds, cmd)
		cmds = append(cmds, "systemctl try-restart systemd-timesyncd.service || true")
	}
	return cmds
}

// aiTimesyncd returns the command that points systemd-timesyncd (the
// clock client of Ubuntu's installer and installed system) at the spec's
// NTP servers only, or at none when offline without NTP servers; "" when
// the spec leaves the default (ntp.ubuntu.com).
func aiTimesyncd(s *Spec, etc string) string {
	if len(s.NTP) == 0 && !s.Offline {
		return ""
	}
	dir := etc + "/systemd/timesyncd.conf.d"
	return fmt.Sprintf("mkdir -p %s && printf '[Time]\\nNTP=%%s\\nFallbackNTP=\\n' %s > %s/50-pxekit.conf",
		dir, shq(strings.Join(s.NTP, " ")), dir)
}

// aiIdentityFixes returns the user-data that gives the identity user what
// the spec says: subiquity always creates it with the shell /bin/bash and
// the groups of an Ubuntu administrator (sudo among them), at first boot,
// after the installer's late-commands ran. cloud-init's runcmd runs after
// it was created.
func aiIdentityFixes(u User) map[string]any {
	var cmds [][]string
	if len(u.Groups) > 0 {
		cmds = append(cmds, []string{"usermod", "-aG", strings.Join(u.Groups, ","), u.Name})
	}
	if !u.Sudo {
		cmds = append(cmds, []string{"gpasswd", "-d", u.Name, "sudo"})
	}
	if u.Shell != "" && u.Shell != "/bin/bash" {
		cmds = append(cmds, []string{"usermod", "-s", u.Shell, u.Name})
	}
	if len(cmds) == 0 {
		return nil
	}
	return map[string]any{"runcmd": cmds}
}

func aiNetwork(pl *plan) any {
	n := pl.spec.Network
	eth := map[string]any{}
	name := "boot"
	switch {
	case n.Device != "":
		name = n.Device
	case n.MAC != "":
		eth["match"] = map[string]string{"macaddress": strings.ToLower(n.MAC)}
	default:
		eth["match"] = map[string]string{"name": "e*"}
	}
	if n.Mode == "static" {
		eth["addresses"] = []string{n.Address}
		switch {
		case n.Gateway == "": // no router: no default route
		case pl.info.Major < 22:
			eth["gateway4"] = n.Gateway
		default:
			eth["routes"] = []map[string]string{{"to": "default", "via": n.Gateway}}
		}
		ns := map[string]any{"addresses": n.DNS}
		if n.Domain != "" {
			ns["search"] = []string{n.Domain}
		}
		eth["nameservers"] = ns
	} else {
		eth["dhcp4"] = true
	}
	cfg := map[string]any{"version": 2, "ethernets": map[string]any{name: eth}}
	if pl.info.Major < 22 {
		// The 20.04 installer wants the netplan document one level down.
		return map[string]any{"network": cfg}
	}
	return cfg
}

func aiStorageConfig(s *Spec) (aiStorage, error) {
	var items []any
	// The disk is found by early-commands (diskPickScript), which replace
	// the placeholder path before subiquity reads the file again. GRUB for
	// BIOS goes to the disk (its core image into the bios_grub partition);
	// on UEFI curtin installs to the ESP.
	items = append(items,
		ctDisk{Type: "disk", ID: "disk0", Ptable: "gpt", Path: diskPlaceholder, Wipe: "superblock-recursive", GrubDevice: true},
		ctPartition{Type: "partition", ID: "part1", Device: "disk0", Number: 1, Size: fmt.Sprintf("%dM", biosBootMiB), Flag: "bios_grub"})
	type mnt struct{ path, fmt string }
	var mounts []mnt
	fsType := func(fs string) string {
		if fs == "vfat" {
			return "fat32"
		}
		return fs
	}
	addFormat := func(vol, mount, fs string) {
		fid := "fs-" + vol
		items = append(items, ctFormat{Type: "format", ID: fid, Volume: vol, FSType: fsType(fs)})
		p := mount
		if mount == "swap" {
			p = "none"
		}
		mounts = append(mounts, mnt{p, fid})
	}
	num := 1
	for _, v := range s.Layout.Partitions {
		num++
		pid := fmt.Sprintf("part%d", num)
		p := ctPartition{Type: "partition", ID: pid, Device: "disk0", Number: num, Size: fmt.Sprintf("%dM", v.Size), Wipe: "superblock"}
		if v.Grow {
			p.Size = -1
		}
		if v.Mount == "/boot/efi" {
			p.Flag = "boot"
		}
		if v.Mount == "swap" {
			p.Flag = "swap"
		}
		items = append(items, p)
		addFormat(pid, v.Mount, v.FS)
	}
	if s.Layout.Scheme == SchemeLVM {
		num++
		pv := fmt.Sprintf("part%d", num)
		items = append(items, ctPartition{Type: "partition", ID: pv, Device: "disk0", Number: num, Size: -1, Wipe: "superblock"})
		vg := s.Layout.LVM.VG
		items = append(items, ctVG{Type: "lvm_volgroup", ID: "vg-" + vg, Name: vg, Devices: []string{pv}})
		for _, v := range s.Layout.LVM.Volumes {
			lid := "lv-" + v.Name
			lv := ctLV{Type: "lvm_partition", ID: lid, Name: v.Name, Volgroup: "vg-" + vg}
			if !v.Grow {
				lv.Size = fmt.Sprintf("%dM", v.Size)
			}
			items = append(items, lv)
			addFormat(lid, v.Mount, v.FS)
		}
	}
	// Parents before children: / first, then by depth; swap last.
	slices.SortStableFunc(mounts, func(a, b mnt) int {
		da, db := strings.Count(a.path, "/"), strings.Count(b.path, "/")
		if a.path == "/" {
			da = 0
		}
		if b.path == "/" {
			db = 0
		}
		if a.path == "none" {
			da = 1 << 10
		}
		if b.path == "none" {
			db = 1 << 10
		}
		return da - db
	})
	for i, m := range mounts {
		items = append(items, ctMount{Type: "mount", ID: fmt.Sprintf("mount%d", i), Device: m.fmt, Path: m.path})
	}
	st := aiStorage{Swap: map[string]int{"size": 0}}
	for _, it := range items {
		var n yaml.Node
		if err := n.Encode(it); err != nil {
			return st, fmt.Errorf("answerfile: encoding storage: %w", err)
		}
		n.Style = yaml.FlowStyle
		st.Config = append(st.Config, n)
	}
	return st, nil
}

func renderMetaData(pl *plan) []byte {
	return fmt.Appendf(nil, "instance-id: pxekit-%s\nlocal-hostname: %s\n", pl.spec.Hostname, pl.spec.Hostname)
}
