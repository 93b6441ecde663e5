# partman-lvm's lvm-base.sh stand-in. Volume groups are files
# $PM_STATE/vg/NAME holding "extents free", with 4 MiB extents and 1 MiB of
# metadata per physical volume.
. "$PM_LIB/base.sh"
PE=4194304

_pv_size() {
	awk -v p="$1" '$6 == p { print $3 }' "$DEVICES"/*/parts | head -n 1
}
vg_get_info() {
	[ -f "$PM_STATE/vg/$1" ] || return 1
	read _ext FREEPE <"$PM_STATE/vg/$1"
	return 0
}
vg_create() {
	_vg=$1
	shift
	_ext=0
	for _pv in "$@"; do
		_sz=$(_pv_size "$_pv")
		[ -n "$_sz" ] || { echo "lvm stub: no partition $_pv" >&2; return 1; }
		_ext=$((_ext + (_sz - MIB) / PE))
	done
	mkdir -p "$PM_STATE/vg"
	echo "$_ext $_ext" >"$PM_STATE/vg/$_vg"
	echo "VG $_vg $* $((_ext * PE))" >>"$PM_STATE/lvm"
}
vg_lock_pvs() { :; }
device_remove_lvm() { return 0; }
device_cleanup_partitions() { return 0; }
lvm_extents_from_human() {
	# $2 is "NK": decimal kilobytes, rounded up to whole extents.
	_k=${2%K}
	echo $(((_k * 1000 + PE - 1) / PE))
}
lv_create() {
	read _ext _free <"$PM_STATE/vg/$1"
	if [ "$3" -gt "$_free" ]; then
		echo "lvm stub: $2 needs $3 extents, $1 has $_free" >&2
		return 1
	fi
	echo "$_ext $((_free - $3))" >"$PM_STATE/vg/$1"
	echo "LV $1 $2 $(($3 * PE))" >>"$PM_STATE/lvm"
	echo $(($3 * PE)) >"$PM_STATE/lvsize.$1-$2"
}
