# time.sh: the clock, in UTC. tor needs it right to within a few hours to use the consensus.

time_show() {
	date -u '+%Y-%m-%d %H:%M:%S UTC'
}

# valid_datetime "YYYY-MM-DD HH:MM[:SS]"
valid_datetime() {
	case ${1:-} in
	[12][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]\ [0-2][0-9]:[0-5][0-9]) return 0 ;;
	[12][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]\ [0-2][0-9]:[0-5][0-9]:[0-5][0-9]) return 0 ;;
	esac
	return 1
}

# time_set "YYYY-MM-DD HH:MM[:SS]" (UTC)
time_set() {
	valid_datetime "$1" || { warn "\"$1\" is not YYYY-MM-DD HH:MM[:SS]"; return 1; }
	date -u -s "$1" >/dev/null || { warn "date refused \"$1\""; return 1; }
	time_save_rtc
	say "now $(time_show)"
}

# time_ntp SERVER: set the clock once from an NTP server; busybox ntpd then exits.
time_ntp() {
	valid_host "$1" || { warn "\"$1\" is not a host name or address"; return 1; }
	timeout $((TRD_TIMEOUT * 2)) ntpd -n -q -p "$1" >/dev/null 2>&1 || { warn "no time from $1"; return 1; }
	time_save_rtc
	say "now $(time_show)"
}

# time_save_rtc: keep the hardware clock (UTC) in step, where there is one.
time_save_rtc() {
	[ -e /dev/rtc0 ] || [ -e /dev/rtc ] || return 0
	hwclock -u -w 2>/dev/null || warn "could not set the hardware clock"
}
