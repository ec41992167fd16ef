# torrc.sh: the torrc, generated from a few answers per profile (relay, bridge, exit), and
# the rules every torrc must keep in this image (nothing logs).
#
# Answers, as variables: TORRC_NICKNAME TORRC_CONTACT TORRC_ORPORT TORRC_RATE TORRC_BURST
# TORRC_METRICS (0|1) TORRC_OFFLINE (0|1) TORRC_FAMILYID TORRC_MYFAMILY; exit only:
# TORRC_EXIT_POLICY (reduced|web|ports) TORRC_EXIT_PORTS ("22 80 443 8000-8100") TORRC_IPV6EXIT (0|1).

torrc_defaults() {
	TORRC_NICKNAME='' TORRC_CONTACT='' TORRC_RATE='' TORRC_BURST='' TORRC_METRICS=0
	TORRC_OFFLINE=0 TORRC_FAMILYID='' TORRC_MYFAMILY='' TORRC_EXIT_POLICY=reduced
	TORRC_EXIT_PORTS='' TORRC_IPV6EXIT=0
	case ${1:-relay} in
	bridge | exit) TORRC_ORPORT=443 ;;
	*) TORRC_ORPORT=9001 ;;
	esac
}

valid_profile() { case ${1:-} in relay | bridge | exit) return 0 ;; esac; return 1; }

valid_nickname() {
	case ${1:-} in '' | *[!A-Za-z0-9]*) return 1 ;; esac
	[ ${#1} -le 19 ]
}

# ContactInfo runs to the end of the line; '#' would start a comment and '\' or '"' would
# change how tor reads it, so those (and control characters) are refused.
valid_contact() {
	case ${1:-} in *[!\ -~]* | *'#'* | *'\'* | *'"'*) return 1 ;; esac
	[ ${#1} -le 200 ]
}

# A bandwidth such as "10 MBytes", "800 KBytes", "1 GBits".
valid_bandwidth() {
	_vb_n=${1%%[!0-9]*}
	_vb_unit=${1#"$_vb_n"}
	_vb_unit=${_vb_unit# }
	is_uint "$_vb_n" || return 1
	case $_vb_unit in
	bytes | KBytes | KB | MBytes | MB | GBytes | GB | TBytes | TB | KBits | MBits | GBits | TBits) return 0 ;;
	esac
	return 1
}

valid_familyid() {
	case ${1:-} in '' | *[!A-Za-z0-9+/=]*) return 1 ;; esac
	[ ${#1} -le 64 ]
}

# MyFamily: fingerprints ($ and 40 hex digits) separated by commas.
valid_myfamily() {
	case ${1:-} in '' | *[!0-9A-Fa-f,\$]* | ,* | *, | *,,*) return 1 ;; esac
}

# Exit ports: numbers and ranges separated by spaces.
valid_ports() {
	[ -n "${1:-}" ] || return 1
	for _vp in $1; do
		valid_port "${_vp%-*}" && valid_port "${_vp#*-}" || return 1
	done
}

# torrc_answers_ok PROFILE: every answer checked, each refusal saying which.
torrc_answers_ok() {
	valid_profile "$1" || { warn "profile \"$1\": relay, bridge or exit"; return 1; }
	[ -z "$TORRC_NICKNAME" ] || valid_nickname "$TORRC_NICKNAME" || { warn "Nickname: 1 to 19 letters and digits"; return 1; }
	[ -z "$TORRC_CONTACT" ] || valid_contact "$TORRC_CONTACT" || { warn "ContactInfo: printable text without # \\ or \""; return 1; }
	valid_port "$TORRC_ORPORT" || { warn "ORPort: a port number, 1 to 65535"; return 1; }
	[ -z "$TORRC_RATE" ] || valid_bandwidth "$TORRC_RATE" || { warn "RelayBandwidthRate: a number and a unit, e.g. \"10 MBytes\""; return 1; }
	[ -z "$TORRC_BURST" ] || valid_bandwidth "$TORRC_BURST" || { warn "RelayBandwidthBurst: a number and a unit, e.g. \"20 MBytes\""; return 1; }
	[ -z "$TORRC_FAMILYID" ] || valid_familyid "$TORRC_FAMILYID" || { warn "FamilyId: the identity tor --keygen-family printed"; return 1; }
	[ -z "$TORRC_MYFAMILY" ] || valid_myfamily "$TORRC_MYFAMILY" || { warn "MyFamily: fingerprints separated by commas"; return 1; }
	[ "$1" != exit ] || torrc_exit_answers_ok
}

torrc_exit_answers_ok() {
	case $TORRC_EXIT_POLICY in
	reduced | web) ;;
	ports) valid_ports "$TORRC_EXIT_PORTS" || { warn "exit ports: numbers or ranges (80 443 8000-8100)"; return 1; } ;;
	*) warn "exit policy: reduced, web or ports"; return 1 ;;
	esac
}

# torrc_generate PROFILE: the whole torrc on stdout, from the answers and the templates.
torrc_generate() {
	torrc_answers_ok "$1" || return 1
	printf '%s\n' "## tor-ramdisk $1 torrc, generated $(date -u '+%Y-%m-%d %H:%M') UTC."
	cat "$TRD_TEMPLATES/torrc.base" || return 1
	printf '\n## This relay\n'
	[ -z "$TORRC_NICKNAME" ] || printf 'Nickname %s\n' "$TORRC_NICKNAME"
	[ -z "$TORRC_CONTACT" ] || printf 'ContactInfo %s\n' "$TORRC_CONTACT"
	printf 'ORPort %s\n' "$TORRC_ORPORT"
	torrc_generate_options
	printf '\n'
	cat "$TRD_TEMPLATES/torrc.$1" || return 1
	[ "$1" != exit ] || torrc_exit_policy
}

torrc_generate_options() {
	[ -z "$TORRC_RATE" ] || printf 'RelayBandwidthRate %s\n' "$TORRC_RATE"
	[ -z "$TORRC_RATE$TORRC_BURST" ] || printf 'RelayBandwidthBurst %s\n' "${TORRC_BURST:-$TORRC_RATE}"
	[ "$TORRC_OFFLINE" != 1 ] || printf 'OfflineMasterKey 1\n'
	[ -z "$TORRC_FAMILYID" ] || printf 'FamilyId %s\n' "$TORRC_FAMILYID"
	[ -z "$TORRC_MYFAMILY" ] || printf 'MyFamily %s\n' "$TORRC_MYFAMILY"
	if [ "$TORRC_METRICS" = 1 ]; then
		printf 'MetricsPort 127.0.0.1:9035\n'
		printf 'MetricsPortPolicy accept 127.0.0.1\n'
	fi
}

torrc_exit_policy() {
	[ "$TORRC_IPV6EXIT" != 1 ] || printf 'IPv6Exit 1\n'
	case $TORRC_EXIT_POLICY in
	reduced) printf 'ReducedExitPolicy 1\n' ;;
	web) printf 'ExitPolicy accept *:80\nExitPolicy accept *:443\nExitPolicy reject *:*\n' ;;
	ports)
		for _tp in $TORRC_EXIT_PORTS; do printf 'ExitPolicy accept *:%s\n' "$_tp"; done
		printf 'ExitPolicy reject *:*\n'
		;;
	esac
}

# torrc_option FILE KEYWORD: the values of KEYWORD (tor keywords ignore case), one a line.
torrc_option() {
	awk -v k="$2" 'tolower($1) == tolower(k) { $1 = ""; sub(/^[ \t]+/, ""); print }' "$1"
}

torrc_offline() { torrc_option "$1" OfflineMasterKey | grep -qx '1'; }
torrc_familyid() { [ -n "$(torrc_option "$1" FamilyId)" ]; }

# torrc_check FILE: refuse what would make tor log or stay in the foreground. tor reads a
# keyword's unambiguous prefix as the keyword ("lo" is Log), so every prefix of Log counts;
# %include could pull in lines this check never sees.
torrc_check() {
	_tc_bad=$(awk '{ k = tolower($1) } k == "l" || k == "lo" || k == "log" || k == "%include" { print NR ": " $0; exit }' "$1")
	if [ -n "$_tc_bad" ]; then
		warn "torrc line $_tc_bad: nothing logs in tor-ramdisk (tor keeps quiet with RunAsDaemon 1 and no Log line), and nothing is included; remove it"
		return 1
	fi
	if torrc_option "$1" RunAsDaemon | grep -qvx '1'; then
		warn "the torrc sets RunAsDaemon to something other than 1: tor would log to the console"
		return 1
	fi
}

# torrc_profile FILE: which profile a torrc looks like.
torrc_profile() {
	if torrc_option "$1" BridgeRelay | grep -qx 1; then echo bridge
	elif torrc_option "$1" ExitRelay | grep -qx 1 || torrc_option "$1" ReducedExitPolicy | grep -qx 1; then echo exit
	else echo relay; fi
}
