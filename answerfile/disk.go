package answerfile

import (
	"fmt"
	"strings"
)

// diskPickScript returns the POSIX shell script that applies the one disk
// rule of Disk in the installer environment, so that every installer takes
// the same disk: anaconda's %pre (bash), debian-installer's
// partman/early_command (busybox ash) and subiquity's early-commands (dash)
// all run it.
//
// The script reads /sys/block (and udev's /run/udev/data for serial
// numbers) below $PXEKIT_ROOT (default empty, the real root; tests point it
// at a fake tree). On success it prints the chosen disk's kernel name
// ("sda", "nvme0n1", "cciss/c0d0") on stdout and a line about it on stderr,
// and exits 0. When no disk matches the selectors, or the chosen disk is
// smaller than minMiB (the layout's MinDiskMiB), it prints why on stderr,
// naming the disks it saw and their sizes, and exits 1. It calls exit, so
// run it as its own process (sh FILE), not with ".".
//
// d must have been validated: Device and Serial are quoted, but a newline
// in them would still end a comment line of the script.
func diskPickScript(d Disk, minMiB int) string {
	var crit []string
	if d.Device != "" {
		crit = append(crit, "disk.device="+d.Device)
	}
	if d.Serial != "" {
		crit = append(crit, "disk.serial="+d.Serial)
	}
	if d.MinGiB > 0 {
		crit = append(crit, fmt.Sprintf("disk.min_gib=%d", d.MinGiB))
	}
	if d.MaxGiB > 0 {
		crit = append(crit, fmt.Sprintf("disk.max_gib=%d", d.MaxGiB))
	}
	rule := "the default rule (the smallest disk that is not removable, read-only, a CD, loop, RAM or zram device)"
	if len(crit) > 0 {
		rule = strings.Join(crit, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# pxekit: choose the install disk: %s.\n", rule)
	b.WriteString("# Prints its kernel name; fails with a message when no disk fits.\n")
	fmt.Fprintf(&b, "want_dev=%s\n", shq(d.Device))
	fmt.Fprintf(&b, "want_serial=%s\n", shq(d.Serial))
	fmt.Fprintf(&b, "min_mib=%d\n", d.MinGiB*1024)
	fmt.Fprintf(&b, "max_mib=%d\n", d.MaxGiB*1024)
	fmt.Fprintf(&b, "need_mib=%d\n", minMiB)
	fmt.Fprintf(&b, "rule=%s\n", shq(rule))
	b.WriteString(diskPickBody)
	return b.String()
}

// diskPickBody is the fixed part of the script; see diskPickScript. It
// uses only POSIX sh, test, cat, sed, head, tr and readlink -f, which
// busybox, dash and bash environments all have. SCSI type 5 is a CD/DVD
// drive.
const diskPickBody = `root=${PXEKIT_ROOT:-}
name=
if [ -n "$want_dev" ]; then
	case $want_dev in
	/*) dev=$want_dev ;;
	*) dev=/dev/$want_dev ;;
	esac
	# Resolves /dev/disk/by-id and by-path links to the kernel name.
	name=$(readlink -f "$root$dev" 2>/dev/null) || name=
	[ -n "$name" ] || name=$dev
	name=${name#"$root"}
	name=${name#/dev/}
	name=$(echo "$name" | tr / '!')
fi
best=
best_mib=0
seen=
for d in "$root"/sys/block/*; do
	[ -r "$d/size" ] || continue
	n=${d##*/}
	if [ -n "$name" ]; then
		[ "$n" = "$name" ] || continue
	else
		case $n in
		loop*|ram*|zram*|sr*|fd*|dm-*|md*|nbd*|mtdblock*) continue ;;
		esac
		if [ -z "$want_serial" ] && [ "$(cat "$d/removable" 2>/dev/null)" = 1 ]; then
			continue
		fi
		if [ "$(cat "$d/device/type" 2>/dev/null)" = 5 ]; then
			continue
		fi
	fi
	sectors=$(cat "$d/size" 2>/dev/null)
	case $sectors in
	''|*[!0-9]*) continue ;;
	esac
	mib=$((sectors / 2048))
	[ "$mib" -gt 0 ] || continue
	if [ "$(cat "$d/ro" 2>/dev/null)" = 1 ]; then
		seen="$seen $n ($mib MiB, read-only)"
		continue
	fi
	serial=
	for f in "$d/device/serial" "$d/serial"; do
		if [ -r "$f" ]; then
			serial=$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//' "$f" | head -n 1)
			break
		fi
	done
	id_short=
	id_long=
	majmin=$(cat "$d/dev" 2>/dev/null)
	if [ -n "$majmin" ] && [ -r "$root/run/udev/data/b$majmin" ]; then
		id_short=$(sed -n 's/^E:ID_SERIAL_SHORT=//p' "$root/run/udev/data/b$majmin" | head -n 1)
		id_long=$(sed -n 's/^E:ID_SERIAL=//p' "$root/run/udev/data/b$majmin" | head -n 1)
		[ -n "$serial" ] || serial=$id_short
	fi
	seen="$seen $n ($mib MiB${serial:+, serial $serial})"
	if [ -n "$want_serial" ] && [ "$serial" != "$want_serial" ] &&
		[ "$id_short" != "$want_serial" ] && [ "$id_long" != "$want_serial" ]; then
		continue
	fi
	if [ "$min_mib" -gt 0 ] && [ "$mib" -lt "$min_mib" ]; then
		continue
	fi
	if [ "$max_mib" -gt 0 ] && [ "$mib" -gt "$max_mib" ]; then
		continue
	fi
	if [ -z "$best" ] || [ "$mib" -lt "$best_mib" ]; then
		best=$n
		best_mib=$mib
	fi
done
best=$(echo "$best" | tr '!' /)
if [ -z "$best" ]; then
	echo "pxekit: no disk matches $rule; disks seen:${seen:- none}" >&2
	exit 1
fi
if [ "$best_mib" -lt "$need_mib" ]; then
	echo "pxekit: disk $best is $best_mib MiB, the layout needs at least $need_mib MiB" >&2
	exit 1
fi
echo "pxekit: install disk $best ($best_mib MiB)" >&2
echo "$best"
`
