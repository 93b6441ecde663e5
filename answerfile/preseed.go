package answerfile

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/pxekit/pxekit/internal/instnet"
)

func renderPreseed(pl *plan) []byte {
	s := &pl.spec
	major := pl.info.Major
	var b strings.Builder
	w := func(format string, args ...any) {
		b.WriteString(strings.TrimRight(fmt.Sprintf(format, args...), " "))
		b.WriteString("\n")
	}
	b.WriteString(header(pl, "#"))
	w("# Boot with: auto=true priority=critical url=<this file's URL> so that the")
	w("# locale and keyboard questions wait until this file has been read.")
	w("# d-i configures its network before it fetches this file: the hostname,")
	w("# domain and a static address must also be on the kernel command line")
	w("# (netcfg/get_hostname=..., see pxekit's bootmenu.InstallArgs); the")
	w("# netcfg answers below only apply when this file is in the initrd.")
	w("#")
	w("# Hosts the installer contacts:")
	for _, h := range preseedHosts(pl) {
		w("#   %s", h)
	}
	w("")
	w("### Localization")
	lang, country, _ := strings.Cut(strings.Split(s.Locale, ".")[0], "_")
	w("d-i debian-installer/language string %s", lang)
	if country != "" {
		w("d-i debian-installer/country string %s", country)
	}
	w("d-i debian-installer/locale string %s", s.Locale)
	w("d-i localechooser/supported-locales multiselect %s", s.Locale)
	w("d-i keyboard-configuration/xkb-keymap select %s", s.Keyboard)
	w("")
	w("### Network")
	n := s.Network
	switch {
	case n.Device != "":
		w("d-i netcfg/choose_interface select %s", n.Device)
	default:
		// "auto" prefers the interface named by BOOTIF=, i.e. the boot NIC.
		w("d-i netcfg/choose_interface select auto")
	}
	host, domain := s.Hostname, n.Domain
	if h, d, ok := strings.Cut(s.Hostname, "."); ok {
		host, domain = h, d
	}
	w("d-i netcfg/get_hostname string %s", host)
	w("d-i netcfg/get_domain string %s", domain)
	w("d-i netcfg/hostname string %s", host)
	if n.Mode == "static" {
		pfx := netip.MustParsePrefix(n.Address)
		w("# netcfg reads these before this file is fetched: they take effect from")
		w("# the kernel command line (pxekit's menus put them there) or when this")
		w("# file is in the initrd.")
		w("d-i netcfg/disable_autoconfig boolean true")
		w("d-i netcfg/get_ipaddress string %s", pfx.Addr())
		w("d-i netcfg/get_netmask string %s", netmask(pfx.Bits()))
		if n.Gateway == "" {
			w("d-i netcfg/get_gateway string %s", instnet.NetcfgNoGateway)
			w("d-i netcfg/no_default_route boolean true")
		} else {
			w("d-i netcfg/get_gateway string %s", n.Gateway)
		}
		w("d-i netcfg/get_nameservers string %s", strings.Join(n.DNS, " "))
		w("d-i netcfg/confirm_static boolean true")
	}
	w("d-i netcfg/wireless_wep string")
	w("d-i hw-detect/load_firmware boolean true")
	w("")
	w("### Mirror")
	mirror := s.Mirror
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
		if major <= 10 {
			mirror = "http://archive.debian.org/debian"
		}
	}
	u, _ := url.Parse(mirror) // validated
	proto := u.Scheme
	w("d-i mirror/country string manual")
	w("d-i mirror/protocol string %s", proto)
	w("d-i mirror/%s/hostname string %s", proto, u.Host)
	dir := u.EscapedPath()
	if dir == "" {
		dir = "/"
	}
	w("d-i mirror/%s/directory string %s", proto, dir)
	w("d-i mirror/%s/proxy string", proto)
	w("")
	w("### Clock")
	w("d-i clock-setup/utc boolean true")
	w("d-i time/zone string %s", s.Timezone)
	switch {
	case len(s.NTP) > 0:
		w("d-i clock-setup/ntp boolean true")
		w("d-i clock-setup/ntp-server string %s", s.NTP[0])
	case s.Offline:
		w("# Offline: no NTP server is named, so none is contacted.")
		w("d-i clock-setup/ntp boolean false")
	default:
		w("d-i clock-setup/ntp boolean true")
	}
	w("")
	w("### Accounts")
	if s.Root.Password.Hash != "" {
		w("d-i passwd/root-login boolean true")
		w("d-i passwd/root-password-crypted password %s", s.Root.Password.Hash)
	} else {
		w("d-i passwd/root-login boolean false")
	}
	if len(s.Users) > 0 {
		u0 := s.Users[0]
		w("d-i passwd/make-user boolean true")
		w("d-i passwd/user-fullname string %s", u0.FullName)
		w("d-i passwd/username string %s", u0.Name)
		w("d-i passwd/user-password-crypted password %s", u0.Password.Hash)
		groups := "audio cdrom video plugdev netdev"
		if u0.Sudo {
			groups += " sudo"
		}
		w("d-i passwd/user-default-groups string %s", groups)
	} else {
		w("d-i passwd/make-user boolean false")
	}
	w("")
	w("### Partitioning: GPT, %s; boots on UEFI (ESP) and BIOS (BIOS boot partition)", s.Layout.Scheme)
	w("# The disk is chosen before partman runs, by pxekit's disk rule (below); the")
	w("# install stops with a message when no disk fits the layout, instead of d-i")
	w("# falling back to its own atomic recipe on a disk that is too small.")
	need := preseedMinDiskMiB(&s.Layout)
	pick := diskPickScript(s.Disk, need)
	w("#| %s", "/tmp/pxekit-disk.sh:")
	for _, l := range strings.Split(strings.TrimSuffix(pick, "\n"), "\n") {
		if strings.HasSuffix(l, "\\") {
			l += " (continued)"
		}
		w("#| %s", l)
	}
	w("d-i partman/early_command string %s", partmanEarlyCommand(pick))
	method := "regular"
	if s.Layout.Scheme == SchemeLVM {
		method = "lvm"
	}
	w("d-i partman-auto/method string %s", method)
	if method == "lvm" {
		w("d-i partman-auto-lvm/new_vg_name string %s", s.Layout.LVM.VG)
		w("d-i partman-auto-lvm/guided_size string max")
		w("# GRUB boots from a logical volume: no question when /boot is on LVM or absent.")
		w("d-i partman-auto-lvm/no_boot boolean true")
	}
	w("d-i partman-auto/purge_lvm_from_device boolean true")
	w("d-i partman-lvm/device_remove_lvm boolean true")
	w("d-i partman-lvm/device_remove_lvm_span boolean true")
	w("d-i partman-md/device_remove_md boolean true")
	w("d-i partman-lvm/confirm boolean true")
	w("d-i partman-lvm/confirm_nooverwrite boolean true")
	w("d-i partman-efi/non_efi_system boolean true")
	w("d-i partman-partitioning/choose_label select gpt")
	w("d-i partman-partitioning/default_label string gpt")
	w("d-i partman-partitioning/confirm_write_new_label boolean true")
	w("d-i partman-auto/choose_recipe select pxekit")
	w("d-i partman-auto/expert_recipe string \\")
	w("      pxekit :: \\")
	lines := partmanRecipe(&s.Layout)
	for i, l := range lines {
		if i == len(lines)-1 {
			w("      %s", l)
		} else {
			w("      %s \\", l)
		}
	}
	hasSwap := false
	for _, v := range append(append([]Volume(nil), s.Layout.Partitions...), s.Layout.LVM.Volumes...) {
		hasSwap = hasSwap || v.Mount == "swap"
	}
	if !hasSwap {
		w("d-i partman-basicfilesystems/no_swap boolean false")
	}
	w("d-i partman/choose_partition select finish")
	w("d-i partman/confirm boolean true")
	w("d-i partman/confirm_nooverwrite boolean true")
	w("d-i partman/mount_style select uuid")
	w("")
	w("### Packages")
	switch {
	case s.Offline:
		w("# Offline: only the mirror above; no security or updates suites.")
		w("d-i apt-setup/services-select multiselect")
		w("d-i apt-setup/security_host string")
		w("d-i apt-setup/volatile_host string")
	case major <= 10:
		w("# security.debian.org no longer carries this release.")
		w("d-i apt-setup/services-select multiselect")
	}
	if major >= 12 {
		w("d-i apt-setup/non-free-firmware boolean true")
	}
	w("d-i apt-setup/cdrom/set-first boolean false")
	for i, r := range pl.repos {
		w("d-i apt-setup/local%d/repository string %s %s %s", i, r.baseURL, r.suite, strings.Join(r.components, " "))
		w("d-i apt-setup/local%d/comment string %s", i, r.name)
		w("d-i apt-setup/local%d/source boolean false", i)
		w("d-i apt-setup/local%d/key string %s", i, r.gpgKey)
	}
	tasks := s.Packages.Groups
	if len(tasks) == 0 {
		tasks = []string{"standard", "ssh-server"}
	}
	w("tasksel tasksel/first multiselect %s", strings.Join(tasks, ", "))
	if len(s.Packages.Names) > 0 {
		w("d-i pkgsel/include string %s", strings.Join(s.Packages.Names, " "))
	}
	w("d-i pkgsel/upgrade select safe-upgrade")
	if s.Offline {
		// unattended-upgrades would reach for the security suite.
		w("d-i pkgsel/update-policy select none")
	}
	w("popularity-contest popularity-contest/participate boolean false")
	w("")
	w("### Boot loader")
	w("d-i grub-installer/only_debian boolean true")
	w("d-i grub-installer/with_other_os boolean true")
	w("d-i grub-installer/force-efi-extra-removable boolean true")
	w("# grub-installer/bootdev is set to the chosen disk by partman/early_command.")
	w("")
	w("### Post-install")
	pp := postPlan{
		rootKeys:     true,
		userKeys:     true,
		allowRootSSH: true,
		purge:        s.Packages.Exclude,
	}
	for i := 1; i < len(s.Users); i++ {
		pp.createUsers = append(pp.createUsers, i)
	}
	script := postScript(pl, pp)
	w("# late_command writes this script (base64 below) into the installed system and runs it:")
	for _, l := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
		if strings.HasSuffix(l, "\\") {
			// debconf joins a line ending in a backslash with the next one,
			// comments included: keep this one from swallowing the next.
			l += " (continued)"
		}
		w("#| %s", l)
	}
	cmd := fmt.Sprintf("in-target sh -c 'echo %s | base64 -d > /root/pxekit-post.sh'; in-target sh /root/pxekit-post.sh > /target/root/pxekit-post.log 2>&1",
		base64.StdEncoding.EncodeToString([]byte(script)))
	if s.Callback.URL != "" {
		cmd += fmt.Sprintf(`; [ -s /target%[1]s ] || printf '{"hostname":"%%s","os":"%%s","status":"unknown","checks":[]}\n' %[2]s %[3]s > /target%[1]s`,
			ReportPath, shq(s.Hostname), shq(pl.info.ID))
		cmd += fmt.Sprintf(`; wget -q -O /dev/null --header='Content-Type: application/json' --post-data="$(cat /target%s)" %s || true`,
			ReportPath, shq(s.Callback.URL))
	}
	w("d-i preseed/late_command string %s", cmd)
	w("")
	w("### Finish")
	w("d-i finish-install/reboot_in_progress note")
	if s.Finish == "poweroff" {
		w("d-i debian-installer/exit/poweroff boolean true")
	}
	return []byte(b.String())
}

// preseedHosts lists, for the file's header, every host the install
// reaches over the network. The defaults are those seen from Debian 12's
// installer: the mirror, the security mirror, NTP and the DNS server.
func preseedHosts(pl *plan) []string {
	s := &pl.spec
	mirror := s.Mirror
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
		if pl.info.Major <= 10 {
			mirror = "http://archive.debian.org/debian"
		}
	}
	host := func(raw string) string {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			return u.Host
		}
		return raw
	}
	out := []string{"the DHCP and DNS servers of the install network (DNS: look-ups and reverse look-ups)",
		host(mirror) + " (mirror: the installer's components and every package)"}
	if !s.Offline && pl.info.Major > 10 {
		out = append(out, "security.debian.org (security suite, apt-setup's default security_host)")
	}
	switch {
	case len(s.NTP) > 0:
		out = append(out, s.NTP[0]+" (NTP)")
	case !s.Offline:
		out = append(out, "the NTP server of DHCP or clock-setup's default pool (NTP)")
	}
	for _, r := range pl.repos {
		out = append(out, host(r.baseURL)+" (repository "+r.name+")")
		if k := host(r.gpgKey); r.gpgKey != "" && k != host(r.baseURL) {
			out = append(out, k+" (signing key of "+r.name+")")
		}
	}
	if s.Callback.URL != "" {
		out = append(out, host(s.Callback.URL)+" (completion report)")
	}
	return out
}

// partmanMB converts the spec's MiB into partman's MB (10^6 bytes), rounded
// up so that no volume comes out smaller than the spec says.
func partmanMB(mib int) int { return int((int64(mib)*(1<<20) + 999_999) / 1_000_000) }

// growPriority is the priority (the recipe's second column) of the volume
// that takes the free space: far above any minimum, so that partman's
// expand_scheme gives it everything the fixed volumes leave.
const growPriority = "1000000000"

// partmanRecipe is the expert_recipe, one entry a line. Partition entries
// come in disk order: the BIOS boot partition (GRUB's core image on BIOS
// machines; unused on UEFI), the spec's partitions, and for lvm the
// physical volume, declared with vg_name{ VG } so that partman-auto-lvm
// puts the volume group on it (without it, in_vg{ VG } stops the install
// with the critical question partman-auto-lvm/no_pv_in_vg). No $primary{ }
// (GPT has no extended partitions) and no $bootable{ } (on GPT parted's
// boot flag makes a partition an EFI system partition).
func partmanRecipe(l *Layout) []string {
	lines := []string{fmt.Sprintf("%[1]d %[1]d %[1]d free $iflabel{ gpt } method{ biosgrub } .", partmanMB(biosBootMiB))}
	for _, v := range l.Partitions {
		lines = append(lines, partmanLine(v, ""))
	}
	if l.Scheme == SchemeLVM {
		// The PV's minimum is only its overhead: choose_recipe adds it to
		// the logical volumes' minimums, and perform_recipe_by_lvm checks
		// those against the volume group.
		lines = append(lines, fmt.Sprintf("%d %s -1 ext4 method{ lvm } vg_name{ %s } .", partmanMB(pvOverheadMiB), growPriority, l.LVM.VG))
		for _, v := range l.LVM.Volumes {
			lines = append(lines, partmanLine(v, l.LVM.VG))
		}
	}
	return lines
}

// preseedMinDiskMiB is the disk size the early check asks for: the
// layout's own minimum, or more if the recipe needs more once partman's MB
// are rounded up to the 1 MiB partition alignment (4 MiB extents for
// logical volumes) and the GPT's 2 MiB are added. A disk that passes the
// check is then one on which choose_recipe keeps the recipe and every
// volume gets at least its minimum (the partman tests run it at exactly
// this size).
func preseedMinDiskMiB(l *Layout) int {
	need := int64(gptOverheadMiB)
	for _, line := range partmanRecipe(l) {
		mb, _ := strconv.ParseInt(strings.Fields(line)[0], 10, 64)
		unit := int64(1 << 20)
		if strings.Contains(line, "$lvmok{") {
			unit = lvmExtentMiB << 20
		}
		need += (mb*1_000_000 + unit - 1) / unit * unit >> 20
	}
	return max(int(need), l.MinDiskMiB())
}

// partmanLine is one expert_recipe entry: "min priority max fs options .".
func partmanLine(v Volume, vg string) string {
	size := fmt.Sprint(partmanMB(v.Size))
	lo, prio, hi := size, size, size
	if v.Grow {
		prio, hi = growPriority, "-1"
	}
	var parts []string
	switch {
	case v.Mount == "/boot/efi":
		parts = []string{lo, prio, hi, "free", "$iflabel{ gpt }", "method{ efi }", "format{ }"}
	case v.Mount == "swap":
		parts = []string{lo, prio, hi, "linux-swap", "method{ swap }", "format{ }"}
	default:
		parts = []string{lo, prio, hi, v.FS, "method{ format }", "format{ }", "use_filesystem{ }",
			"filesystem{ " + v.FS + " }", "mountpoint{ " + v.Mount + " }"}
	}
	if vg != "" {
		parts = append(parts, "$lvmok{ }", "in_vg{ "+vg+" }", "lv_name{ "+v.Name+" }")
	}
	return strings.Join(parts, " ") + " ."
}

// partmanEarlyCommand writes the disk-pick script and a helper that shows
// an error in the installer's frontend, then runs the script: the chosen
// disk becomes partman-auto/disk and grub-installer/bootdev; no disk, or
// one too small for the layout, shows the script's message (which names
// the sizes) and fails the command, which stops the install. The message
// also goes to the installer's log (and syslog target). Each script line
// is written by one echo of a single-quoted word, a single quote spelt
// '"'"', so that the command holds no backslash for the preseed loader or
// the shell to interpret.
func partmanEarlyCommand(pick string) string {
	stop := `. /usr/share/debconf/confmodule
echo 'Template: pxekit/stop' >/tmp/pxekit.templates
echo 'Type: error' >>/tmp/pxekit.templates
echo 'Description: pxekit stopped the install' >>/tmp/pxekit.templates
echo ' ${MESSAGE}' >>/tmp/pxekit.templates
debconf-loadtemplate pxekit /tmp/pxekit.templates
db_subst pxekit/stop MESSAGE "$1"
db_fset pxekit/stop seen false
db_input critical pxekit/stop || true
db_go || true
`
	write := func(script, file string) string {
		var cmds []string
		for _, l := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
			cmds = append(cmds, "echo '"+strings.ReplaceAll(l, "'", `'"'"'`)+"'")
		}
		return "{ " + strings.Join(cmds, "; ") + "; } >" + file
	}
	return write(pick, "/tmp/pxekit-disk.sh") + "; " + write(stop, "/tmp/pxekit-stop.sh") + "; " +
		`if d=$(sh /tmp/pxekit-disk.sh 2>/tmp/pxekit-disk.err); then cat /tmp/pxekit-disk.err >&2; ` +
		`debconf-set partman-auto/disk "/dev/$d"; debconf-set grub-installer/bootdev "/dev/$d"; ` +
		`else cat /tmp/pxekit-disk.err >&2; sh /tmp/pxekit-stop.sh "$(cat /tmp/pxekit-disk.err)"; exit 1; fi`
}
