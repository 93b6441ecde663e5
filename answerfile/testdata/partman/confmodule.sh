# debconf stand-in. Questions are files under $PM_STATE/db, named with "/"
# replaced by "%". Every db_input of a question that was not preseeded is
# logged to $PM_STATE/questions as "PRIORITY QUESTION".
_dbf() { printf '%s/db/%s' "$PM_STATE" "$(printf %s "$1" | tr / %)"; }
db_get() { RET=; [ -f "$(_dbf "$1")" ] && RET=$(cat "$(_dbf "$1")"); return 0; }
db_set() { q=$1; shift; printf '%s' "$*" >"$(_dbf "$q")"; return 0; }
db_input() {
	# A preseeded question is seen and not asked again; at
	# priority=critical only critical questions are shown. 30 means "not
	# displayed".
	if [ -f "$(_dbf "$2").preseeded" ]; then
		echo "$1 $2" >>"$PM_STATE/questions.seen"
		return 30
	fi
	echo "$1 $2" >>"$PM_STATE/questions"
	[ "$1" = critical ] && return 0
	return 30
}
db_go() { return 0; }
db_metaget() { RET=; return 0; }
db_subst() { return 0; }
db_fget() {
	# A preseeded question is marked seen.
	RET=false
	[ "$2" = seen ] && [ -f "$(_dbf "$1").preseeded" ] && RET=true
	return 0
}
db_fset() { return 0; }
db_register() { return 0; }
db_unregister() { return 0; }
db_reset() { return 0; }
db_progress() { return 0; }
db_capb() { return 0; }
db_title() { return 0; }
db_settitle() { return 0; }
db_info() { return 0; }
db_stop() { return 0; }
db_x_loadtemplatefile() { return 0; }
