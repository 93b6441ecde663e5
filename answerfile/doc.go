// Package answerfile turns one distro-neutral description of a server
// install (a Spec, usually kept in YAML) into the file each installer reads
// to run unattended: a kickstart for anaconda (CentOS/RHEL/AnolisOS 7.9,
// AlmaLinux/Rocky 8, Rocky 9, openEuler 22.03, Kylin V10, UOS 20), Ubuntu
// autoinstall user-data plus NoCloud meta-data (20.04, 22.04, 24.04), or a
// Debian preseed (9 to 12).
//
//	spec, err := answerfile.ParseSpec(yamlBytes)
//	ks, err := answerfile.Render("rocky-9.0", answerfile.KindKickstart, spec)
//
// OS identifiers are the plain strings of the shared table ("rocky-9.0",
// "ubuntu-22.04", "debian-12"); KindFor says which kind an OS reads and
// KickstartDialect which kickstart syntax (RHEL7, RHEL8, RHEL9, F33).
//
// Render validates first and reports every problem at once as a
// *ValidationError whose entries name the field by its YAML path
// ("layout.lvm.volumes[2].size: must be > 0"); errors.Is(err,
// ErrInvalidSpec) holds for it. Plaintext passwords are hashed with SHA-512
// crypt (this package's own implementation, checked against the
// specification's test vectors) and never appear in output, logs or
// marshalled specs.
//
// Disks are partitioned GPT for UEFI: an EFI system partition, /boot, then
// either plain partitions or one LVM volume group. Customizations the
// installer cannot express itself (extra users, keys, repositories, prompt
// colour, aliases, files, sysctl, shell) run as one POSIX shell script in
// the installed system: %post in kickstart, late_command in preseed,
// late-commands in autoinstall.
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
//	{"hostname":"web01","os":"rocky-9.0","status":"ok",
//	 "checks":[{"name":"user ops","ok":true},{"name":"package curl","ok":true}]}
//
// status is "ok" when every check passed, "failed" when one did not, and
// "unknown" when the script left no report. Kickstart sends it with curl from
// a %post --nochroot section, autoinstall with curl from late-commands, and
// preseed with the installer's busybox wget (--post-data) from late_command.
// Failures to reach the server are ignored so that they never stop an
// install; a server should answer 2xx quickly. With Callback.Events (Ubuntu
// only) the installer also POSTs its own progress events to the same URL as
// JSON objects carrying an "event_type" key, which the final report lacks.
//
// Boot arguments are the boot menu's business, but the files assume: for
// anaconda, inst.ks=<url> (and inst.repo= when Spec.Mirror is empty); for
// Ubuntu, autoinstall and ds=nocloud-net;s=<dir>/ serving user-data and
// meta-data; for Debian, auto=true priority=critical url=<url>.
//
// ParseKickstart reads existing hand-written kickstarts into a typed model
// (commands with options, sections with flags and bodies, %include kept
// verbatim, unknown commands kept with a warning) and Format writes them back
// equivalently, so teams can migrate their files.
package answerfile
