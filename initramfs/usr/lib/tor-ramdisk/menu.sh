# menu.sh: the operator's menu. Numbered choices read from stdin, plain text out: it works
# on a serial console, with no curses and no terminal database.

pause() {
	printf '\n(Enter) '
	IFS= read -r _pause || true
}

# choose VAR: one menu number.
choose() {
	printf '\n> '
	IFS= read -r _choose || return 1
	eval "$1=\$_choose"
}

menu_header() {
	if _mh=$(tor_pid); then _mh="running (pid $_mh)"; else _mh=stopped; fi
	printf '\n== tor-ramdisk == %s == tor %s ==\n' "$(time_show)" "$_mh"
}

menu_main() {
	while :; do
		menu_header
		cat <<'EOF'
 1  Network
 2  Time
 3  torrc, import, export
 4  Tor: start, stop, reload
 5  Status
 6  Resources
 7  Entropy
 8  Shell
 9  Reboot
10  Halt (power off)
EOF
		choose _mm || return 0
		case $_mm in
		1) menu_network ;;
		2) menu_time ;;
		3) menu_torrc ;;
		4) menu_tor ;;
		5) status_show; pause ;;
		6) menu_resources; pause ;;
		7) menu_entropy; pause ;;
		8) menu_shell ;;
		9) menu_power reboot ;;
		10) menu_power poweroff ;;
		esac
	done
}

menu_tor() {
	printf '\n 1  start\n 2  stop\n 3  reload the torrc\n 0  back\n'
	choose _mt || return 0
	case $_mt in
	1) tor_start ;;
	2) tor_stop ;;
	3) tor_reload ;;
	*) return 0 ;;
	esac
	pause
}

menu_resources() {
	free
	echo
	uptime
	if _mr=$(tor_pid); then
		echo
		grep -E '^(VmRSS|Threads)' "/proc/$_mr/status" | sed 's/^/tor /'
	fi
	echo
	df -h /tmp /run "$TRD_DATADIR" 2>/dev/null
}

menu_entropy() {
	_me=/proc/sys/kernel/random
	printf 'entropy available: %s of %s bits\n' "$(cat "$_me/entropy_avail")" "$(cat "$_me/poolsize")"
}

# menu_shell: a shell on the console; `exit` comes back here.
menu_shell() {
	say "a shell: type exit to come back to the menu"
	/bin/sh -l
}

# menu_power reboot|poweroff: offer an export first, stop tor, then go.
menu_power() {
	if confirm "export first?"; then
		menu_export || confirm "the export failed: $1 anyway?" || return 0
	fi
	confirm "$1 now?" || return 0
	tor_stop
	sync
	"$1" -f
}
