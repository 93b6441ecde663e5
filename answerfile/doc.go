// Package answerfile turns one distro-neutral description of a server
// install (a Spec, usually kept in YAML) into the file each installer reads
// to run unattended: a kickstart for anaconda (CentOS/RHEL/AnolisOS 7.9,
// AlmaLinux/Rocky 8, Rocky 9, openEuler 22.03, Kylin V10, UOS 20), Ubuntu
// autoinstall user-data plus NoCloud meta-data (20.04, 22.04, 24.04), or a
// Debian preseed (9 to 12).
//
//	spec, err := answerfile.ParseSpec(yamlBytes)
//	set, err := answerfile.Build("rocky-9.0", spec, "http://10.0.0.1:8080/answer/")
//	// serve set.Files below /answer/; put set.URL and set.Installer on
//	// the kernel line (bootmenu.InstallInput).
//
// OS identifiers are the plain strings of one table that bootmenu and
// isosrc share ("rocky-9.0", "ubuntu-22.04", "debian-12"; OSes lists
// them, LookupOS finds one); KindFor says which Kind an OS reads and
// KickstartDialect which kickstart syntax (RHEL7, RHEL8, RHEL9, F33).
//
// Render and Build validate first and report every problem at once as a
// *ValidationError whose entries name the field by its YAML path
// ("layout.lvm.volumes[2].size: must be > 0"); errors.Is(err,
// ErrInvalidSpec) holds for it. Plaintext passwords are hashed with SHA-512
// crypt (this package's own implementation, checked against the
// specification's test vectors) and never appear in output, logs or
// marshalled specs.
//
// Customizations the installer cannot express itself (extra users, keys,
// repositories, prompt colour, aliases, files, sysctl, shell) run as one
// POSIX shell script in the installed system: %post in kickstart (carried
// in base64, so that no line of a step can end the section),
// late_command in preseed, late-commands in autoinstall.
//
// # What an install serves
//
// Build renders every file one installer reads, as a Set: the kickstart
// "ks.cfg", the preseed "preseed.cfg", or Ubuntu's NoCloud seed
// "seed/user-data" and "seed/meta-data", named relative to the directory
// they are served from, together with the URL the kernel line must give
// the installer and the network set-up the installer needs before it can
// fetch that URL (InstallerNet: hostname and domain split from an FQDN,
// the static address, gateway, DNS servers and interface; for Debian no
// interface, which keeps its installer on the boot NIC, and no default
// route required). Render gives one file of a given Kind.
//
// # Credentials
//
// DemoSpec and DemoPassword exist so that a lab can install something at
// once; RequireCredentials keeps that password off any system whose
// operator set a credential of their own. A spec with its own password or
// SSH key must not keep the demo password on any account (ErrDemoMixed;
// the demo password is recognised in plaintext and as a SHA-512 crypt
// hash with any salt and up to 100,000 rounds); a spec with neither is
// refused (ErrNoCredentials) unless the caller allows the demo password,
// which is then put on every account without one, with the "ops" sudo
// user added when there is no user. DemoWarning words the warning to show
// when it is.
//
// # Disk layout
//
// Every installer partitions the disk the same way, GPT so that one layout
// boots on BIOS machines (GRUB's core image in the BIOS boot partition)
// and on UEFI ones (the EFI system partition). Sizes in MiB; the defaults
// (DefaultLayout) fit a 10 GB disk (9536 MiB) and / grows to fill a larger
// one:
//
//	partition       plain               lvm                          minimum in a spec
//	BIOS boot       1                   1                            always added, not in the spec
//	/boot/efi       512 (vfat)          512 (vfat)                   100
//	/boot           1024                1024                         256
//	swap            1024                LV "swap" 1024               -
//	/               5120, grows         LV "root" 5120, grows        2048
//	LVM PV          -                   the rest, VG "vg0"           -
//	smallest disk   7683                7691                         Layout.MinDiskMiB
//
// MinDiskMiB adds the partitions (a growing one at its minimum) to 2 MiB
// of GPT and alignment overhead and, for lvm, 8 MiB for the physical
// volume's label and metadata and each logical volume rounded up to LVM's
// 4 MiB extents. Debian's partman counts recipe sizes in MB (10^6 bytes);
// the preseed converts, rounding up.
//
// # The install disk
//
// Every installer takes the same disk (see Disk): with no selector, the
// smallest disk that is not removable, read-only, a CD, a loop, RAM, zram,
// device-mapper, md or nbd device, so that a server with a small boot SSD
// and large data disks keeps its data disks. disk.device (a name, a /dev
// path or a /dev/disk/by-id or by-path link), disk.serial (sysfs or udev
// ID_SERIAL_SHORT / ID_SERIAL) and disk.min_gib/max_gib narrow the choice.
// One shell script applies the rule in the installer before partitioning
// (anaconda's %pre, debian-installer's partman/early_command, subiquity's
// early-commands, which rewrite the disk's path in /autoinstall.yaml before
// subiquity reads it again); it stops the install with a message naming
// the disks it saw and their sizes when none matches, or when the chosen
// one is smaller than the layout needs ("disk sda is 9000 MiB, the layout
// needs at least 9100 MiB").
//
// # Hosts contacted
//
// By default each installer and the system it installs reach, besides the
// DHCP, DNS and boot servers:
//
//   - anaconda: the install source (Mirror, or the inst.repo= boot
//     argument), the spec's Repos, Callback.URL; the distribution's NTP
//     pool (chronyd, in the installer and the installed system); in the
//     installed system, the distribution's own repositories (dnf/yum
//     mirror lists such as mirrors.rockylinux.org) when packages are
//     installed or dnf-makecache.timer runs.
//   - subiquity: the Ubuntu archive (archive.ubuntu.com, or a country
//     mirror chosen after a geoip.ubuntu.com look-up, or Mirror),
//     security.ubuntu.com, ntp.ubuntu.com (systemd-timesyncd, in the
//     installer and the installed system), the spec's Repos, Callback.URL.
//   - debian-installer: the header of each rendered preseed lists the hosts
//     it reaches.
//
// With Spec.Offline, kickstart and autoinstall reach only the install
// source or Mirror, Repos, NTP and Callback.URL: anaconda gets timesource
// --ntp-disable or timezone --nontp (or the NTP servers only), and the
// installed system's own repositories are disabled in favour of one for
// Mirror; subiquity gets apt geoip off, Mirror as primary and security
// archive with the updates, security and backports suites disabled (24.04:
// fallback offline-install), and timesyncd pointed at the NTP servers or at
// none. Ubuntu needs Mirror when offline. Anaconda's geolocation is a boot
// option, not a kickstart command, so it is turned off on the kernel line:
// Build sets Set.Installer.Offline, which bootmenu turns into
// inst.geoloc=0. Offline does not cover what the spec's own post steps
// fetch, nor services of the installed Ubuntu that call home on their own
// (snapd, motd-news, the release upgrader).
//
// # Limits
//
// ParseSpec reads at most MaxSpecBytes (1 MiB) and 100000 YAML nodes with
// aliases expanded. Validate refuses more than 1000 users, 100 SSH keys per
// account, 100 repositories, 5000 packages per list, 16 NTP or DNS
// servers, 64 partitions or logical volumes, 1000 post steps, 256 KiB in
// one post step and 1 MiB in all of them.
//
// # Completion callback
//
// With Spec.Callback.URL set, the post-install script checks its own work
// (every user exists, every package is installed, every enabled unit is
// enabled, every file exists), writes the result to /root/pxekit-report.json
// in the installed system, and then, before the installer reboots, the
// installer environment sends exactly one request:
//
//	POST <callback.url>            (the URL as given, query string included)
//	Content-Type: application/json
//
//	{"stage":"installed","hostname":"web01","os":"rocky-9.0","status":"ok",
//	 "checks":[{"name":"user ops","ok":true},{"name":"package curl","ok":true}]}
//
// status is "ok" when every check passed, "failed" when one did not, and
// "unknown" when the script left no report (that body has no "stage",
// which means "installed"). Kickstart sends it with curl from
// a %post --nochroot section, autoinstall with curl from late-commands, and
// preseed with the installer's busybox wget (--post-data) from late_command.
// Failures to reach the server are ignored so that they never stop an
// install; a server should answer 2xx quickly. With Callback.Events (Ubuntu
// only) the installer also POSTs its own progress events to the same URL as
// JSON objects carrying an "event_type" key, which the final report lacks.
//
// The post-install script also installs a one-shot systemd unit,
// pxekit-firstboot.service (FirstBootUnit), so that the callback learns that
// the installed system came up, not only that the installer finished. On
// the first boot from disk, after network-online.target and sshd, it runs
// the same checks again plus the hostname, an address (the static one when
// the spec has one) and sshd listening on its configured port, writes
// /root/pxekit-boot-report.json and sends it the same way, with
// "stage":"booted", by curl (else wget). A 2xx or 4xx answer ends it; with
// no answer it tries FirstBootTries times FirstBootDelay seconds apart.
// Then it disables itself and removes FirstBootURLFile, the only file that
// holds the URL (mode 0600); its output in the journal never shows the URL.
// ParseReport reads both reports (and the progress events) for a server,
// bounded; ReportHandler serves the callback with it, and ReportSender says
// who posted (the address, and the MAC a {mac} route names).
//
// Boot arguments are the boot menu's business, but the files assume: for
// anaconda, inst.ks=<url> (and inst.repo= when Spec.Mirror is empty); for
// Ubuntu, autoinstall and ds=nocloud-net;s=<dir>/ serving user-data and
// meta-data; for Debian, auto=true priority=critical url=<url>.
//
// Package kickstart (answerfile/kickstart) reads existing hand-written
// kickstarts into a typed model and writes them back equivalently, so
// teams can migrate their files.
package answerfile
