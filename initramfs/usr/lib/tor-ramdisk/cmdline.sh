# cmdline.sh: the non-interactive boot settings from the kernel command line (and under
# QEMU from fw_cfg's opt/tor-ramdisk/cmdline). Anyone can read /proc/cmdline, so it carries
# no secret: passphrase and passwords come from the console or from QEMU's fw_cfg.
#
#   trd.net=dhcp | static,ADDR/PREFIX,GATEWAY[,DNS[,DNS…]]
#   trd.net6=slaac | static,ADDR/PREFIX,GATEWAY
#   trd.iface=NAME                      (default: the first interface that is not lo)
#   trd.import=ftp://[user@]host[:port]/path | scp://user@host[:port]/path
#   trd.hostkey=SHA256:…                (the scp server's host key; required with scp://)
#   trd.start=0|1                       (start tor once the rest is done)
#   trd.profile=relay|bridge|exit       (the torrc made when there is none to import)

cmdline_reset() {
	CMD_NET='' CMD_NET_ADDR='' CMD_NET_GW='' CMD_NET_DNS=''
	CMD_NET6='' CMD_NET6_ADDR='' CMD_NET6_GW=''
	CMD_IFACE='' CMD_IMPORT='' CMD_HOSTKEY='' CMD_START=0 CMD_PROFILE=''
}

# cmdline_parse WORD…: every trd.* word checked; any mistake fails the whole parse (a typo
# must not, say, start a fresh relay with new keys instead of importing the old ones).
cmdline_parse() {
	cmdline_reset
	_cp_rc=0
	for _cp in "$@"; do
		case $_cp in
		trd.*=*) cmdline_word "${_cp%%=*}" "${_cp#*=}" || _cp_rc=1 ;;
		trd.*) warn "$_cp: a trd. parameter needs a value"; _cp_rc=1 ;;
		esac
	done
	[ $_cp_rc -eq 0 ] && cmdline_consistent
}

cmdline_word() {
	case $1 in
	trd.net) cmdline_net "$2" ;;
	trd.net6) cmdline_net6 "$2" ;;
	trd.iface) CMD_IFACE=$2; cmdline_is "$1=$2" valid_iface "$2" ;;
	trd.import) CMD_IMPORT=$2; cmdline_is "$1=$2" url_parse "$2" ;;
	trd.hostkey) CMD_HOSTKEY=$2; cmdline_is "$1=$2" valid_fingerprint "$2" ;;
	trd.start) CMD_START=$2; cmdline_is "$1=$2: 0 or 1" cmdline_bool "$2" ;;
	trd.profile) CMD_PROFILE=$2; cmdline_is "$1=$2: relay, bridge or exit" valid_profile "$2" ;;
	*) warn "$1: unknown parameter (trd.net, trd.net6, trd.iface, trd.import, trd.hostkey, trd.start, trd.profile)"; return 1 ;;
	esac
}

# cmdline_is WHAT CHECK ARGS…: run CHECK, naming WHAT when it fails.
cmdline_is() {
	_ci=$1
	shift
	"$@" && return 0
	warn "$_ci: invalid"
	return 1
}

cmdline_bool() { case $1 in 0 | 1) return 0 ;; esac; return 1; }

valid_iface() {
	case ${1:-} in '' | *[!A-Za-z0-9._-]*) return 1 ;; esac
	[ ${#1} -le 15 ]
}

# SHA256: and 43 base64 characters, the way dbclient and ssh-keygen print it.
valid_fingerprint() {
	case ${1:-} in SHA256:*) ;; *) return 1 ;; esac
	_vf=${1#SHA256:}
	case $_vf in *[!A-Za-z0-9+/]*) return 1 ;; esac
	[ ${#_vf} -eq 43 ]
}

cmdline_net() {
	case $1 in
	dhcp) CMD_NET=dhcp; return 0 ;;
	static,*) ;;
	*) warn "trd.net=$1: dhcp or static,ADDR/PREFIX,GATEWAY[,DNS]"; return 1 ;;
	esac
	_cn_old=$IFS
	IFS=,
	# shellcheck disable=SC2086
	set -- $1
	IFS=$_cn_old
	[ $# -ge 3 ] || { warn "trd.net=static needs ADDR/PREFIX and GATEWAY"; return 1; }
	CMD_NET=static CMD_NET_ADDR=$2 CMD_NET_GW=$3
	valid_cidr4 "$2" || { warn "trd.net: \"$2\" is not an IPv4 ADDR/PREFIX"; return 1; }
	valid_ipv4 "$3" || { warn "trd.net: gateway \"$3\" is not an IPv4 address"; return 1; }
	shift 3
	for _cn in "$@"; do
		valid_ipv4 "$_cn" || valid_ipv6 "$_cn" || { warn "trd.net: DNS server \"$_cn\" is not an address"; return 1; }
		CMD_NET_DNS="$CMD_NET_DNS${CMD_NET_DNS:+ }$_cn"
	done
}

cmdline_net6() {
	case $1 in
	slaac) CMD_NET6=slaac; return 0 ;;
	static,*,*) ;;
	*) warn "trd.net6=$1: slaac or static,ADDR/PREFIX,GATEWAY"; return 1 ;;
	esac
	_cn6=${1#static,}
	CMD_NET6=static CMD_NET6_ADDR=${_cn6%%,*} CMD_NET6_GW=${_cn6#*,}
	valid_cidr6 "$CMD_NET6_ADDR" || { warn "trd.net6: \"$CMD_NET6_ADDR\" is not an IPv6 ADDR/PREFIX"; return 1; }
	valid_ipv6 "$CMD_NET6_GW" || { warn "trd.net6: gateway \"$CMD_NET6_GW\" is not an IPv6 address"; return 1; }
}

cmdline_consistent() {
	URL_PROTO=''
	if [ -n "$CMD_IMPORT" ]; then
		url_parse "$CMD_IMPORT" || return 1
		[ -n "$CMD_NET$CMD_NET6" ] || { warn "trd.import needs a network: add trd.net= (or trd.net6=)"; return 1; }
		if [ "$URL_PROTO" = scp ] && [ -z "$CMD_HOSTKEY" ]; then
			warn "trd.import=scp://… needs trd.hostkey=SHA256:… (the server's host key, known beforehand)"
			return 1
		fi
	fi
	[ -z "$CMD_HOSTKEY" ] || [ "$URL_PROTO" = scp ] || { warn "trd.hostkey is only for trd.import=scp://…"; return 1; }
}

# cmdline_show: the parsed settings, one NAME=VALUE a line (for people and for the tests).
cmdline_show() {
	for _cs in CMD_NET CMD_NET_ADDR CMD_NET_GW CMD_NET_DNS CMD_NET6 CMD_NET6_ADDR CMD_NET6_GW \
		CMD_IFACE CMD_IMPORT CMD_HOSTKEY CMD_START CMD_PROFILE; do
		eval "printf '%s=%s\n' $_cs \"\$$_cs\""
	done
}

# cmdline_read: parse the running kernel's command line, then QEMU's fw_cfg
# opt/tor-ramdisk/cmdline (the same words, for a kernel started straight from UEFI, which
# has no command line); a word given twice takes its last value. Split, never globbed.
cmdline_read() {
	_cr='' _cr_fw=''
	[ -r "$TRD_CMDLINE" ] && { read -r _cr <"$TRD_CMDLINE" || :; }
	fwcfg_read cmdline _cr_fw || :
	set -f
	# shellcheck disable=SC2086
	cmdline_parse $_cr $_cr_fw
	_cr_rc=$?
	set +f
	return $_cr_rc
}
