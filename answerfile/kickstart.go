package answerfile

import (
	"fmt"
	"net/netip"
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
	w("timezone %s --utc", s.Timezone)
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
		net = append(net, "--bootproto=static", "--ip="+pfx.Addr().String(), "--netmask="+netmask(pfx.Bits()),
			"--gateway="+n.Gateway, "--nameserver="+strings.Join(n.DNS, ","))
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
		if s.Root.AllowSSH && d == DialectRHEL9 {
			rp += " --allow-ssh"
		}
		w("%s", rp)
	} else {
		w("rootpw --lock")
	}
	nativeKeys := d != DialectRHEL7
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
	if nativeKeys {
		for _, k := range s.Root.SSHKeys {
			w("sshkey --username=root %q", k)
		}
		for _, u := range s.Users {
			for _, k := range u.SSHKeys {
				w("sshkey --username=%s %q", u.Name, k)
			}
		}
	}

	// Storage.
	w("zerombr")
	if s.Disk.Device != "" {
		disk := strings.TrimPrefix(s.Disk.Device, "/dev/")
		w("ignoredisk --only-use=%s", disk)
	} else {
		w("# The target disk (the first non-removable one) is chosen by %%pre.")
		w("%%include %s", diskInclude)
	}
	w("clearpart --all --initlabel --disklabel=gpt")
	w("bootloader --location=mbr")
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

	if s.Disk.Device == "" {
		w("")
		w("%%pre --log=/tmp/pxekit-pre.log")
		w("# First whole disk that is neither removable, read-only, a CD nor zram.")
		w("disk=$(lsblk -dnpo NAME,TYPE,RM,RO | awk '$2 == \"disk\" && $3 == \"0\" && $4 == \"0\" && $1 !~ /zram/ { sub(\"/dev/\", \"\", $1); print $1; exit }')")
		w("echo \"ignoredisk --only-use=$disk\" > %s", diskInclude)
		w("%%end")
	}

	pp := postPlan{
		rootKeys:     !nativeKeys,
		userKeys:     !nativeKeys,
		allowRootSSH: d == DialectRHEL9 || d == DialectF33,
		yumRepos:     true,
	}
	if d == DialectRHEL9 {
		pp.allowRootSSH = false // rootpw --allow-ssh
	}
	w("")
	w("%%post --log=/root/pxekit-post.log")
	b.WriteString(postScript(pl, pp))
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
