# mem.sh: what the RAM the image finds allows. tor's own MaxMemInQueues is at least 256 MB
# whatever the machine has, and it warns that a directory cache wants 300 MB: on a small
# machine both are set from MemTotal, each only where the operator's torrc says nothing.
# The tmpfs mounts get sizes from it too (the kernel's default is half the RAM each).

: "${TRD_MEMINFO:=/proc/meminfo}"

# Below this much RAM (KiB), tor is no directory cache.
MEM_DIRCACHE_MIN_KB=$((300 * 1024))

# mem_total_kb: MemTotal, in KiB.
mem_total_kb() {
	_mk=$(awk '$1 == "MemTotal:" { print $2; exit }' "$TRD_MEMINFO" 2>/dev/null)
	is_uint "${_mk:-}" && echo "$_mk"
}

# mem_tmpfs_kb MOUNT: the size of that tmpfs, in KiB: tor's DataDirectory 3/8 of the RAM,
# /tmp 1/16 (at least 4 MiB: bundles pass through it), /run 1/32 (at least 2 MiB).
mem_tmpfs_kb() {
	_mt=$(mem_total_kb) || return 1
	case $1 in
	/var/lib/tor) echo $((_mt * 3 / 8)) ;;
	/tmp) _mtk=$((_mt / 16)); [ "$_mtk" -ge 4096 ] || _mtk=4096; echo "$_mtk" ;;
	/run) _mtk=$((_mt / 32)); [ "$_mtk" -ge 2048 ] || _mtk=2048; echo "$_mtk" ;;
	*) return 1 ;;
	esac
}

# mem_queues_mb: half the RAM for tor's cell queues, from tor's server minimum (64 MB) to
# its largest default (8 GB on 64-bit, 2 GB on 32-bit).
mem_queues_mb() {
	_mq=$(mem_total_kb) || return 1
	_mq=$((_mq / 2048))
	case $(uname -m) in x86_64) _mq_max=8192 ;; *) _mq_max=2048 ;; esac
	[ "$_mq" -ge 64 ] || _mq=64
	[ "$_mq" -le "$_mq_max" ] || _mq=$_mq_max
	echo "$_mq"
}

# mem_tor_options: tor's command-line options for this RAM, the torrc's own settings kept;
# none when the RAM is unknown.
mem_tor_options() {
	_mo=$(mem_total_kb) || return 0
	[ -n "$(torrc_option "$TRD_TORRC" MaxMemInQueues)" ] || echo --MaxMemInQueues "$(mem_queues_mb)MB"
	[ -n "$(torrc_option "$TRD_TORRC" DirCache)" ] || [ "$_mo" -ge "$MEM_DIRCACHE_MIN_KB" ] || echo --DirCache 0
}

# mem_source OPTION: where tor's value of OPTION comes from.
mem_source() {
	if [ -n "$(torrc_option "$TRD_TORRC" "$1")" ]; then echo "the torrc"
	elif mem_tor_options | grep -q -- "^--$1 "; then echo "set from $(($(mem_total_kb) / 1024)) MiB of RAM"
	else echo "tor's default"
	fi
}
