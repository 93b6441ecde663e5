package answerfile

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
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
		w("# A static address applies when this file is read before the network is")
		w("# up (preseed in the initrd, or netcfg/disable_autoconfig=true on the")
		w("# kernel command line).")
		w("d-i netcfg/disable_autoconfig boolean true")
		w("d-i netcfg/get_ipaddress string %s", pfx.Addr())
		w("d-i netcfg/get_netmask string %s", netmask(pfx.Bits()))
		w("d-i netcfg/get_gateway string %s", n.Gateway)
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
	w("d-i clock-setup/ntp boolean true")
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
	w("### Partitioning: GPT for UEFI, %s", s.Layout.Scheme)
	if s.Disk.Device != "" {
		dev := s.Disk.Device
		if !strings.HasPrefix(dev, "/dev/") {
			dev = "/dev/" + dev
		}
		w("d-i partman-auto/disk string %s", dev)
	} else {
		w("# No disk given: take the first one the installer lists.")
		w(`d-i partman/early_command string debconf-set partman-auto/disk "$(list-devices disk | head -n1)"`)
	}
	method := "regular"
	if s.Layout.Scheme == SchemeLVM {
		method = "lvm"
	}
	w("d-i partman-auto/method string %s", method)
	if method == "lvm" {
		w("d-i partman-auto-lvm/new_vg_name string %s", s.Layout.LVM.VG)
		w("d-i partman-auto-lvm/guided_size string max")
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
	var lines []string
	for _, v := range s.Layout.Partitions {
		lines = append(lines, partmanLine(v, ""))
	}
	if method == "lvm" {
		for _, v := range s.Layout.LVM.Volumes {
			lines = append(lines, partmanLine(v, s.Layout.LVM.VG))
		}
	}
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
	if major <= 10 {
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
	w("popularity-contest popularity-contest/participate boolean false")
	w("")
	w("### Boot loader")
	w("d-i grub-installer/only_debian boolean true")
	w("d-i grub-installer/with_other_os boolean true")
	w("d-i grub-installer/force-efi-extra-removable boolean true")
	if s.Disk.Device != "" {
		dev := s.Disk.Device
		if !strings.HasPrefix(dev, "/dev/") {
			dev = "/dev/" + dev
		}
		w("d-i grub-installer/bootdev string %s", dev)
	} else if major >= 10 {
		w("d-i grub-installer/bootdev string default")
	}
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

// partmanLine is one expert_recipe entry: "min priority max fs options .".
// Sizes are the spec's MiB; partman counts in MB, so volumes come out about
// 5% larger than in the other installers.
func partmanLine(v Volume, vg string) string {
	size := fmt.Sprint(v.Size)
	lo, prio, hi := size, size, size
	if v.Grow {
		prio, hi = "100000", "-1"
	}
	var parts []string
	switch {
	case v.Mount == "/boot/efi":
		parts = []string{lo, prio, hi, "free", "$iflabel{ gpt }", "$reusemethod{ }", "method{ efi }", "format{ }"}
	case v.Mount == "swap":
		parts = []string{lo, prio, hi, "linux-swap", "method{ swap }", "format{ }"}
	default:
		parts = []string{lo, prio, hi, v.FS, "method{ format }", "format{ }", "use_filesystem{ }",
			"filesystem{ " + v.FS + " }", "mountpoint{ " + v.Mount + " }"}
	}
	if vg != "" {
		parts = append(parts, "$lvmok{ }", "in_vg{ "+vg+" }", "lv_name{ "+v.Name+" }")
	} else if v.Mount != "/boot/efi" {
		parts = append(parts, "$primary{ }")
	}
	if v.Mount == "/boot" {
		parts = append(parts, "$bootable{ }")
	}
	return strings.Join(parts, " ") + " ."
}
