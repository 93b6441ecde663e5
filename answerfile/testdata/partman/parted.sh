
# ---- pxekit harness: parted_server stand-in (appended to base.sh) ----
# Each device directory holds: device, size, model, label and parts, whose
# lines are "num id size type fs path name" with id "start-end" in bytes,
# sorted by start. Free space has num -1 and fs "free".
MIB=1048576

log() { :; }
humandev() { echo "$1"; }
disable_swap() { :; }
enable_swap() { :; }
stop_parted_server() { :; }
restart_partman() { :; }
menudir_default_choice() { :; }
update_partition() { :; }

write_line() { echo "$*" >>"$PM_STATE/written"; }
read_line() { read "$@" <&7; }
close_dialog() { exec 7<&-; }
open_dialog() {
	_cmd=$1
	shift
	_pm_cmd "$_cmd" "$@" >"$PM_STATE/resp.$$"
	exec 7<"$PM_STATE/resp.$$"
}

_pm_sort() { sort -t ' ' -k2,2n parts >parts.new && mv parts.new parts; }

# _pm_merge joins neighbouring free segments.
_pm_merge() {
	_pm_sort
	awk '
	function flush() { if (fs != "") { print "-1 " fs "-" fe " " (fe - fs + 1) " primary free " path " FREE" }; fs = "" }
	{
		split($2, r, "-")
		if ($5 == "free") {
			if (fs == "") { fs = r[1]; path = $6 }
			fe = r[2]
			next
		}
		flush()
		print
	}
	END { flush() }' parts >parts.new && mv parts.new parts
}

_pm_cmd() {
	case $1 in
	PARTITIONS) cat parts ;;
	GET_LABEL_TYPE) cat label ;;
	USES_EXTENDED) echo no ;;
	PARTITION_INFO) grep " $2 " parts || true ;;
	GET_FLAGS) echo ;;
	SET_FLAGS | COMMIT | DISK_UNCHANGED | CHANGE_FILE_SYSTEM | SET_NAME) ;;
	OPEN) echo OK ;;
	NEW_LABEL)
		echo "$2" >label
		_sz=$(cat size)
		case $(cat device) in
		/dev/mapper/*) _sz=$(cat "$PM_STATE/lvsize.$(basename "$(cat device)")") ;;
		esac
		echo "-1 0-$((_sz - 1)) $_sz primary free $(cat device) FREE" >parts
		;;
	DELETE_PARTITION)
		awk -v id="$2" '$2 == id { print "-1 " $2 " " $3 " primary free " $6 " FREE"; next } { print }' parts >parts.new
		mv parts.new parts
		_pm_merge
		;;
	NEW_PARTITION) _pm_new "$@" ;;
	*) echo "parted stub: unknown command $*" >&2 ;;
	esac
}

# _pm_new NEW_PARTITION type fs free-id beginning|end|full size
_pm_new() {
	_line=$(grep " $4 " parts) || return 0
	set -- "$@" $_line
	_fs_=${4%-*}
	_fe=${4#*-}
	_len=$((_fe - _fs_ + 1))
	_req=$((($6 + MIB - 1) / MIB * MIB))
	case $5 in
	full) _s=$_fs_ _e=$_fe ;;
	beginning) _s=$_fs_ _e=$((_fs_ + _req - 1)) ;;
	end) _s=$((_fe - _req + 1)) _e=$_fe ;;
	esac
	if [ "$5" != full ] && [ "$_req" -gt "$_len" ]; then
		echo "parted stub: $_req bytes do not fit in $_len" >&2
		return 0
	fi
	_num=$(awk 'BEGIN { n = 0 } $1 > n { n = $1 } END { print n + 1 }' parts)
	_dev=$(cat device)
	case $_dev in
	*[0-9]) _path=${_dev}p$_num ;;
	*) _path=$_dev$_num ;;
	esac
	_new="$_num $_s-$_e $((_e - _s + 1)) $2 $3 $_path P$_num"
	{
		grep -v " $4 " parts
		echo "$_new"
		[ "$_s" -gt "$_fs_" ] && echo "-1 $_fs_-$((_s - 1)) $((_s - _fs_)) primary free $_dev FREE"
		[ "$_e" -lt "$_fe" ] && echo "-1 $((_e + 1))-$_fe $((_fe - _e)) primary free $_dev FREE"
	} >parts.new
	mv parts.new parts
	_pm_sort
	echo "$_new"
}
