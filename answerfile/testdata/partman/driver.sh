# driver.sh MODE SIZE: give partman one blank disk of SIZE bytes (/dev/sda,
# or /dev/nvme0n1 when PM_DISK says so) and run the real autopartition
# (MODE plain) or autopartition-lvm (MODE lvm) on it, as partman's
# "automatically_partition" step does. Then print what was made:
#   RC <exit status>
#   PART <device> <partition path> <bytes> <method> <mountpoint>
#   VG/LV lines from the LVM stand-in
mode=$1
size=$2
disk=${PM_DISK:-/dev/sda}
dev=$DEVICES/$(echo "$disk" | tr / =)
mkdir -p "$dev" "$PM_STATE/db" "$PM_W/tmp"
cd "$dev" || exit 1
echo "$disk" >device
echo "$size" >size
echo "QEMU HARDDISK" >model
echo gpt >label
echo "-1 0-$((size - 1)) $size primary free $disk FREE" >parts
cd /
case $mode in
plain) autopartition "$dev" ;;
lvm) autopartition-lvm "$dev" ;;
esac
echo "RC $?"
for d in "$DEVICES"/*; do
	[ -f "$d/parts" ] || continue
	while read num id bytes type fs path name; do
		[ "$fs" = free ] && continue
		method=$(cat "$d/$id/method" 2>/dev/null)
		mp=$(cat "$d/$id/mountpoint" 2>/dev/null)
		echo "PART $(cat "$d/device") $path $bytes ${method:--} ${mp:--}"
	done <"$d/parts"
done
[ -f "$PM_STATE/lvm" ] && cat "$PM_STATE/lvm"
exit 0
