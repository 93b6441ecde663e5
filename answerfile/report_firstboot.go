package answerfile

import (
	"fmt"
	"net/netip"
	"strings"
)

// Paths of the first-boot report in the installed system (see the package
// documentation).
const (
	// FirstBootUnit is the one-shot systemd unit that sends the booted
	// report; it is enabled for multi-user.target and disables itself.
	FirstBootUnit = "pxekit-firstboot.service"
	// FirstBootScript is what the unit runs.
	FirstBootScript = "/usr/local/sbin/pxekit-firstboot"
	// FirstBootURLFile holds the callback URL (mode 0600, root): it can
	// carry a token, so it is neither in the unit nor in the script, and
	// it is removed once the report is sent or given up on.
	FirstBootURLFile = "/etc/pxekit/report-url"
	// BootReportPath is the booted report, as sent.
	BootReportPath = "/root/pxekit-boot-report.json"
)

// First-boot retries when the server cannot be reached: FirstBootTries
// attempts, FirstBootDelay seconds apart (the environment variables
// PXEKIT_REPORT_TRIES and PXEKIT_REPORT_DELAY override them, for tests).
const (
	FirstBootTries = 10
	FirstBootDelay = 30
)

// installFirstBoot appends to the post-install script the commands that
// install the first-boot unit, its script and the callback URL.
func installFirstBoot(b *strings.Builder, pl *plan) {
	s := &pl.spec
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	script := firstBootScript(pl)
	delim := "PXEKIT_FIRSTBOOT"
	for strings.Contains(script, delim) {
		delim += "_"
	}
	w("# First-boot report: %s sends stage booted once, then disables itself.", FirstBootUnit)
	w("mkdir -p /etc/pxekit /usr/local/sbin /etc/systemd/system/multi-user.target.wants")
	w("(umask 077 && printf '%%s\\n' %s > %s)", shq(s.Callback.URL), FirstBootURLFile)
	w("cat > %s <<'%s'", FirstBootScript, delim)
	b.WriteString(script)
	w("%s", delim)
	w("chmod 0700 %s", FirstBootScript)
	w("cat > /etc/systemd/system/%s <<'PXEKIT_UNIT'", FirstBootUnit)
	w("[Unit]")
	w("Description=pxekit first-boot report")
	w("Wants=network-online.target")
	w("After=network-online.target ssh.service sshd.service cloud-init.service")
	w("ConditionPathExists=%s", FirstBootURLFile)
	w("")
	w("[Service]")
	w("Type=oneshot")
	w("ExecStart=%s", FirstBootScript)
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	w("PXEKIT_UNIT")
	// What systemctl enable does, without needing a running systemd.
	w("ln -sf /etc/systemd/system/%[1]s /etc/systemd/system/multi-user.target.wants/%[1]s", FirstBootUnit)
}

// firstBootScript is the POSIX sh the unit runs on the first boot from
// disk: the spec's checks again, plus the hostname, an address and sshd
// listening, reported as stage booted. Its output (the journal) never
// shows the URL.
func firstBootScript(pl *plan) string {
	s := &pl.spec
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	raw := func(lines ...string) {
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	w("#!/bin/sh")
	w("# pxekit first-boot report for %s, run once by %s.", pl.info.ID, FirstBootUnit)
	raw(
		"export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"tries=${PXEKIT_REPORT_TRIES:-"+fmt.Sprint(FirstBootTries)+"}",
		"delay=${PXEKIT_REPORT_DELAY:-"+fmt.Sprint(FirstBootDelay)+"}",
		"pxekit_failed=0",
		"pxekit_checks=",
		"pxekit_check() {",
		"	pxekit_name=$1; shift",
		"	if \"$@\" >/dev/null 2>&1; then pxekit_ok=true; else pxekit_ok=false; pxekit_failed=1; fi",
		"	echo \"pxekit: check $pxekit_name: $pxekit_ok\"",
		"	pxekit_checks=\"${pxekit_checks:+$pxekit_checks,}{\\\"name\\\":\\\"$pxekit_name\\\",\\\"ok\\\":$pxekit_ok}\"",
		"}",
		"pxekit_hostname_is() {",
		"	h=$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)",
		"	[ \"$h\" = \"$1\" ] || [ \"$h\" = \"$2\" ]",
		"}",
		"pxekit_addresses() {",
		"	hostname -I 2>/dev/null || ip -o addr show scope global 2>/dev/null | awk '{sub(/\\/.*/, \"\", $4); print $4}'",
		"}",
		"pxekit_has_address() {",
		"	a=$(pxekit_addresses | tr '\\n' ' ')",
		"	if [ -n \"$1\" ]; then",
		"		case \" $a \" in *\" $1 \"*) return 0 ;; *) return 1 ;; esac",
		"	fi",
		"	[ -n \"$(echo $a)\" ]",
		"}",
		"pxekit_sshd_listening() {",
		"	port=$( (sshd -T 2>/dev/null || /usr/sbin/sshd -T 2>/dev/null) | awk '$1 == \"port\" { print $2; exit }')",
		"	[ -n \"$port\" ] || port=22",
		"	hex=$(printf ':%04X' \"$port\")",
		"	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |",
		"		awk -v p=\"$hex\" '$4 == \"0A\" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }'",
		"}",
	)
	for _, l := range checkLines(pl, nil) {
		w("%s", l)
	}
	short, _, _ := strings.Cut(s.Hostname, ".")
	w("pxekit_check %s pxekit_hostname_is %s %s", shq("hostname "+s.Hostname), shq(s.Hostname), shq(short))
	addr := ""
	if s.Network.Mode == "static" {
		if p, err := netip.ParsePrefix(s.Network.Address); err == nil {
			addr = p.Addr().String()
		}
	}
	if addr != "" {
		w("pxekit_check %s pxekit_has_address %s", shq("address "+addr), shq(addr))
	} else {
		w("pxekit_check address pxekit_has_address ''")
	}
	w("pxekit_check 'sshd listening' pxekit_sshd_listening")
	raw(`if [ "$pxekit_failed" = 0 ]; then pxekit_status=ok; else pxekit_status=failed; fi`)
	w(`printf '{"stage":"booted","hostname":"%%s","os":"%%s","status":"%%s","checks":[%%s]}\n' %s %s "$pxekit_status" "$pxekit_checks" > %s`,
		shq(s.Hostname), shq(pl.info.ID), BootReportPath)
	w(`echo "pxekit: first boot $pxekit_status"`)
	w("url=$(cat %s)", FirstBootURLFile)
	// 2xx: delivered. 4xx: refused (a replay, a host re-armed since):
	// retrying cannot help. Anything else: the server is not there yet.
	raw(
		"n=0",
		"while :; do",
		"	n=$((n + 1))",
		"	if command -v curl >/dev/null 2>&1; then",
		"		code=$(curl -s -o /dev/null -w '%{http_code}' -m 30 -X POST -H 'Content-Type: application/json' --data-binary @"+BootReportPath+" \"$url\" 2>/dev/null)",
		"	elif wget -q -O /dev/null --header='Content-Type: application/json' --post-data=\"$(cat "+BootReportPath+")\" \"$url\" >/dev/null 2>&1; then",
		"		code=204",
		"	else",
		"		code=000",
		"	fi",
		"	case $code in",
		"	2??) echo \"pxekit: boot report delivered\"; break ;;",
		"	4??) echo \"pxekit: boot report refused (HTTP $code)\"; break ;;",
		"	esac",
		"	if [ \"$n\" -ge \"$tries\" ]; then echo \"pxekit: boot report not delivered after $n attempts\"; break; fi",
		"	echo \"pxekit: boot report attempt $n failed; next in ${delay}s\"",
		"	sleep \"$delay\"",
		"done",
		"rm -f "+FirstBootURLFile+" /etc/systemd/system/multi-user.target.wants/"+FirstBootUnit,
		"systemctl disable "+FirstBootUnit+" >/dev/null 2>&1 || true",
		"exit 0",
	)
	return b.String()
}
