package answerfile

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pxekit/pxekit/internal/osid"
)

// Kickstart dialects, named as pykickstart's handler versions so that
// "ksvalidator -v RHEL9" checks the matching syntax.
const (
	DialectRHEL7 = "RHEL7" // CentOS, RHEL, AnolisOS 7.9
	DialectRHEL8 = "RHEL8" // AlmaLinux, Rocky 8
	DialectRHEL9 = "RHEL9" // Rocky 9
	DialectF33   = "F33"   // openEuler 22.03, Kylin V10, UOS 20 (anaconda 33)
)

// KickstartDialect returns the kickstart syntax version the OS's anaconda
// reads.
func KickstartDialect(osID string) (string, error) {
	info, ok := osid.Lookup(osID)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownOS, osID)
	}
	if info.Family != osid.Anaconda {
		return "", fmt.Errorf("%w: %s does not read kickstart", ErrUnsupportedKind, info.ID)
	}
	return dialectOf(info), nil
}

func dialectOf(info osid.Info) string {
	if !isELClone(info) {
		return DialectF33
	}
	switch info.ELMajor {
	case 7:
		return DialectRHEL7
	case 8:
		return DialectRHEL8
	}
	return DialectRHEL9
}

const diskInclude = "/tmp/pxekit-disk.ks"

func renderKickstart(pl *plan) []byte {
	s := &pl.spec
	d := dialectOf(pl.info)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#version=%s", d)
	b.WriteString(header(pl, "#"))
	if d == DialectRHEL7 {
		w("install")
	}
	w("text")
	w("skipx")
	w("firstboot --disable")
	if s.Mirror != "" {
		w("url --url=%q", s.Mirror)
	} else {
		w("# Installation source: the inst.repo= boot argument.")
	}
	for _, r := range pl.repos {
		if r.baseURL != "" {
			w("repo --name=%q --baseurl=%q", r.name, r.baseURL)
		} else {
			w("repo --name=%q --mirrorlist=%q", r.name, r.mirrorList)
		}
	}
	w("lang %s", s.Locale)
	w("keyboard --vckeymap=%s --xlayouts='%s'", s.Keyboard, s.Keyboard)
	// Clock: the spec's NTP servers; offline without them, none (anaconda
	// otherwise enables chronyd with the distribution's pool).
	switch {
	case d != DialectRHEL9 && pl.info.Distro != "openeuler":
		// EL 7 and 8 have no timesource. Kylin V10 and UOS 20 build on
		// openEuler 20.03, whose anaconda and pykickstart may predate it;
		// --ntpservers and --nontp only draw a deprecation warning from
		// the F33 syntax on.
		switch {
		case len(s.NTP) > 0:
			w("timezone %s --utc --ntpservers=%s", s.Timezone, strings.Join(s.NTP, ","))
		case s.Offline:
			w("timezone %s --utc --nontp", s.Timezone)
		default:
			w("timezone %s --utc", s.Timezone)
		}
	default:
		// RHEL 9 and openEuler 22.03 (anaconda 36) deprecate timezone's
		// --ntpservers and --nontp in favour of timesource.
		w("timezone %s --utc", s.Timezone)
		for _, n := range s.NTP {
			w("timesource --ntp-server=%s", n)
		}
		if len(s.NTP) == 0 && s.Offline {
			w("timesource --ntp-disable")
		}
	}
	if d == DialectRHEL7 {
		w("auth --enableshadow --passalgo=sha512")
	}

	n := s.Network
	dev := "bootif"
	switch {
	case n.Device != "":
		dev = n.Device
	case n.MAC != "":
		dev = n.MAC
	}
	net := []string{"network", "--device=" + dev, "--onboot=on", "--activate", "--noipv6"}
	if n.Mode == "static" {
		pfx := netip.MustParsePrefix(n.Address)
		net = append(net, "--bootproto=static", "--ip="+pfx.Addr().String(), "--netmask="+netmask(pfx.Bits()))
		if n.Gateway != "" {
			net = append(net, "--gateway="+n.Gateway)
		}
		net = append(net, "--nameserver="+strings.Join(n.DNS, ","))
	} else {
		net = append(net, "--bootproto=dhcp")
	}
	host := s.Hostname
	if n.Domain != "" && !strings.Contains(host, ".") {
		host += "." + n.Domain
	}
	net = append(net, "--hostname="+host)
	w("%s", strings.Join(net, " "))

	if s.Root.Password.Hash != "" {
		rp := "rootpw --iscrypted " + s.Root.Password.Hash
		if s.Root.AllowSSH && rootpwAllowSSH(pl.info) {
			rp += " --allow-ssh"
		}
		w("%s", rp)
	} else {
		w("rootpw --lock")
	}
	for _, u := range s.Users {
		args := []string{"user", "--name=" + u.Name}
		if u.FullName != "" {
			args = append(args, fmt.Sprintf("--gecos=%q", u.FullName))
		}
		groups := u.Groups
		if u.Sudo {
			groups = append(append([]string(nil), groups...), "wheel")
		}
		if len(groups) > 0 {
			args = append(args, "--groups="+strings.Join(groups, ","))
		}
		if u.Shell != "" {
			args = append(args, "--shell="+u.Shell)
		}
		if u.Password.Hash != "" {
			args = append(args, "--iscrypted", "--password="+u.Password.Hash)
		} else {
			args = append(args, "--lock")
		}
		w("%s", strings.Join(args, " "))
	}
	// SSH keys go in %post for every dialect: sshkey takes one key per
	// user (pykickstart keeps the last and warns "already defined").

	// Storage. %pre picks the disk by the one rule (see Disk) and writes
	// the ignoredisk line; the BIOS boot partition lets GRUB boot the GPT
	// disk on BIOS machines, the ESP on UEFI ones.
	w("zerombr")
	w("%%include %s", diskInclude)
	w("clearpart --all --initlabel --disklabel=gpt")
	w("bootloader --location=mbr")
	w("part biosboot --fstype=biosboot --size=%d", biosBootMiB)
	for _, v := range s.Layout.Partitions {
		w("%s", ksVolume("part", v, ""))
	}
	if s.Layout.Scheme == SchemeLVM {
		vg := s.Layout.LVM.VG
		w("part pv.01 --size=1 --grow")
		w("volgroup %s pv.01", vg)
		for _, v := range s.Layout.LVM.Volumes {
			w("%s", ksVolume("logvol", v, vg))
		}
	}
	w("%s", s.Finish)

	w("")
	w("%%packages --ignoremissing")
	groups := s.Packages.Groups
	if len(groups) == 0 {
		groups = []string{"core"}
	}
	for _, g := range groups {
		w("@%s", strings.TrimPrefix(g, "@"))
	}
	for _, p := range s.Packages.Names {
		w("%s", p)
	}
	for _, p := range s.Packages.Exclude {
		w("-%s", p)
	}
	w("%%end")

	w("")
	w("# The install stops here, with the reason on screen, when no disk fits.")
	w("%%pre --erroronfail --log=/tmp/pxekit-pre.log")
	w("cat > /tmp/pxekit-disk.sh <<'PXEKIT_DISK'")
	b.WriteString(diskPickScript(s.Disk, s.Layout.MinDiskMiB()))
	w("PXEKIT_DISK")
	w("disk=$(sh /tmp/pxekit-disk.sh) || exit 1")
	w("echo \"ignoredisk --only-use=$disk\" > %s", diskInclude)
	w("%%end")

	pp := postPlan{
		rootKeys: true,
		userKeys: true,
		// EL 7 and 8 permit root password logins by default; EL 9 and
		// anaconda 33 systems do not. rootpw --allow-ssh exists from
		// 9.1 on.
		allowRootSSH: (d == DialectRHEL9 || d == DialectF33) && !rootpwAllowSSH(pl.info),
		yumRepos:     true,
	}
	if s.Offline {
		w("")
		w("# Offline: the installed system uses only the spec's repositories.")
		w("%%post --log=/root/pxekit-offline.log")
		b.WriteString(ksOfflinePost(pl))
		w("%%end")
	}
	w("")
	w("# The post-install script travels in base64 so that no line of it can")
	w("# end this section; a readable copy follows as comments.")
	w("%%post --log=/root/pxekit-post.log")
	script := postScript(pl, pp)
	for _, l := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
		w("#| %s", l)
	}
	w("base64 -d > /root/pxekit-post.sh <<'PXEKIT_POST'")
	enc := base64.StdEncoding.EncodeToString([]byte(script))
	for len(enc) > 76 {
		w("%s", enc[:76])
		enc = enc[76:]
	}
	w("%s", enc)
	w("PXEKIT_POST")
	w("sh /root/pxekit-post.sh")
	w("%%end")

	if s.Callback.URL != "" {
		w("")
		w("# Report the end of the install before the reboot. The installer")
		w("# environment has curl even when the installed system does not.")
		w("%%post --nochroot --log=/mnt/sysimage/root/pxekit-callback.log")
		w("report=/mnt/sysimage%s", ReportPath)
		w(`[ -s "$report" ] || printf '{"hostname":"%%s","os":"%%s","status":"unknown","checks":[]}\n' %s %s > "$report"`, shq(s.Hostname), shq(pl.info.ID))
		w("curl -fsS -m 30 --retry 3 -X POST -H 'Content-Type: application/json' --data-binary \"@$report\" %s || true", shq(s.Callback.URL))
		w("%%end")
	}
	return []byte(b.String())
}

// rootpwAllowSSH reports whether the OS's anaconda knows rootpw
// --allow-ssh: RHEL 9.1 and its clones on (pykickstart 3.32.6, June 2022).
// Rocky 9.0 rejects the option as a fatal error.
func rootpwAllowSSH(info osid.Info) bool {
	if !isELClone(info) || info.ELMajor < 9 {
		return false
	}
	_, minor, _ := strings.Cut(info.Version, ".")
	m, err := strconv.Atoi(minor)
	return info.ELMajor > 9 || (err == nil && m >= 1)
}

// ksOfflinePost disables the distribution's own repositories in the
// installed system (their mirror lists point at the internet) and, when
// Mirror is set, adds one repository for it, checked with the signing keys
// the disabled ones named; a BaseOS URL gets its AppStream sibling too.
// It also stops dnf's periodic metadata refresh.
func ksOfflinePost(pl *plan) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	var ours []string
	for _, r := range pl.repos {
		ours = append(ours, r.name+".repo")
	}
	w("keys=")
	w("for f in /etc/yum.repos.d/*.repo; do")
	w("	[ -f \"$f\" ] || continue")
	w("	case ${f##*/} in")
	if len(ours) > 0 {
		w("	%s) continue ;;", strings.Join(ours, "|"))
	}
	w("	esac")
	w("	for k in $(sed -n 's/^gpgkey[[:space:]]*=//p' \"$f\"); do")
	w("		case \" $keys \" in *\" $k \"*) ;; *) keys=\"$keys $k\" ;; esac")
	w("	done")
	w("	sed -i 's/^enabled[[:space:]]*=.*/enabled=0/' \"$f\"")
	w("done")
	if m := pl.spec.Mirror; m != "" {
		mirrors := [][2]string{{"pxekit-mirror", m}}
		if strings.Contains(m, "/BaseOS/") {
			mirrors = append(mirrors, [2]string{"pxekit-mirror-appstream", strings.Replace(m, "/BaseOS/", "/AppStream/", 1)})
		}
		for _, r := range mirrors {
			w("cat > /etc/yum.repos.d/%s.repo <<PXEKIT_REPO", r[0])
			w("[%s]", r[0])
			w("name=%s (pxekit offline)", r[0])
			w("baseurl=%s", strings.NewReplacer(`\`, `\\`, "$", `\$`, "`", "\\`").Replace(r[1]))
			w("enabled=1")
			w("gpgcheck=1")
			w("gpgkey=${keys# }")
			w("PXEKIT_REPO")
		}
	}
	w("systemctl disable dnf-makecache.timer >/dev/null 2>&1 || true")
	return b.String()
}

func ksVolume(cmd string, v Volume, vg string) string {
	mount := v.Mount
	args := []string{cmd, mount}
	if vg != "" {
		args = append(args, "--vgname="+vg, "--name="+v.Name)
	}
	fs := v.FS
	if fs == "vfat" && mount == "/boot/efi" {
		fs = "efi"
	}
	args = append(args, "--fstype="+fs, fmt.Sprintf("--size=%d", v.Size))
	if v.Grow {
		args = append(args, "--grow")
	}
	return strings.Join(args, " ")
}

func netmask(bits int) string {
	m := uint32(0xffffffff) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}
