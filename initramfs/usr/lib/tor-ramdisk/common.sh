# common.sh: paths, messages, prompts and input checks shared by the whole runtime.
# Every path can be moved by the environment, so the tests run these functions on a host.

: "${TRD_LIB:=/usr/lib/tor-ramdisk}"
: "${TRD_TORRC:=/etc/tor/torrc}"
: "${TRD_TEMPLATES:=/etc/tor}"
: "${TRD_DATADIR:=/var/lib/tor}"
: "${TRD_RUNDIR:=/run/tor}"
: "${TRD_TMP:=/tmp}"
: "${TRD_HOME:=/root}"
: "${TRD_TOR_USER:=tor}"
: "${TRD_TOR:=/usr/bin/tor}"
: "${TRD_BUNDLE_CRYPT:=/usr/bin/bundle-crypt}"
: "${TRD_DBCLIENT:=/usr/bin/dbclient}"
: "${TRD_SCP:=/usr/bin/scp}"
: "${TRD_CONTROL_PORT:=9051}"
: "${TRD_FWCFG:=/sys/firmware/qemu_fw_cfg/by_name/opt/tor-ramdisk}"
: "${TRD_CMDLINE:=/proc/cmdline}"
: "${TRD_TIMEOUT:=30}"

TRD_CR=$(printf '\r')
TRD_NL='
'

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }

# ask VAR PROMPT [DEFAULT]: one line from stdin, or DEFAULT when the answer is empty.
ask() {
	if [ -n "${3:-}" ]; then printf '%s [%s]: ' "$2" "$3"; else printf '%s: ' "$2"; fi
	IFS= read -r _ask_line || return 1
	[ -n "$_ask_line" ] || _ask_line=${3:-}
	eval "$1=\$_ask_line"
}

# ask_secret VAR PROMPT: a line read without echo; it only ever lives in a shell variable.
ask_secret() {
	printf '%s: ' "$2"
	IFS= read -rs _ask_line
	_ask_rc=$?
	printf '\n'
	eval "$1=\$_ask_line"
	_ask_line=
	return $_ask_rc
}

# confirm PROMPT: true only for an explicit yes (the default is no).
confirm() {
	printf '%s [y/N] ' "$1"
	IFS= read -r _confirm || return 1
	case $_confirm in y | Y | yes | YES | Yes) return 0 ;; esac
	return 1
}

is_uint() { case ${1:-} in '' | *[!0-9]*) return 1 ;; esac; [ ${#1} -le 9 ]; }

valid_port() { is_uint "${1:-}" && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

valid_ipv4() {
	case ${1:-} in *[!0-9.]* | *..* | .* | *.) return 1 ;; esac
	_v4_old=$IFS
	IFS=.
	# shellcheck disable=SC2086
	set -- $1
	IFS=$_v4_old
	[ $# -eq 4 ] || return 1
	for _v4 in "$@"; do is_uint "$_v4" && [ "$_v4" -le 255 ] && [ ${#_v4} -le 3 ] || return 1; done
}

# valid_cidr4 ADDR/PREFIX
valid_cidr4() {
	case ${1:-} in */*) ;; *) return 1 ;; esac
	valid_ipv4 "${1%/*}" && is_uint "${1#*/}" && [ "${1#*/}" -le 32 ]
}

# A loose IPv6 check: hex digits and colons, at least two colons, at most one "::".
valid_ipv6() {
	case ${1:-} in '' | *[!0-9a-fA-F:]* | *:::*) return 1 ;; *:*:*) ;; *) return 1 ;; esac
	_v6_rest=${1#*::}
	case $_v6_rest in *::*) return 1 ;; esac
	[ ${#1} -le 39 ]
}

valid_cidr6() {
	case ${1:-} in */*) ;; *) return 1 ;; esac
	valid_ipv6 "${1%/*}" && is_uint "${1#*/}" && [ "${1#*/}" -le 128 ]
}

# A host name (letters, digits, dots, dashes) or an IPv4 or IPv6 address.
valid_host() {
	valid_ipv6 "${1:-}" && return 0
	case ${1:-} in '' | -* | *[!A-Za-z0-9.-]* | *..*) return 1 ;; esac
	[ ${#1} -le 253 ]
}

valid_user() {
	case ${1:-} in '' | -* | *[!A-Za-z0-9._-]*) return 1 ;; esac
	[ ${#1} -le 64 ]
}

# A remote file path: no spaces, quotes or control characters, since it ends up in an FTP
# command line or in the remote shell that runs `scp -t`.
valid_remote_path() {
	case ${1:-} in '' | -* | *[!A-Za-z0-9._/@+:~-]*) return 1 ;; esac
	[ ${#1} -le 255 ]
}

# file_size FILE: its length in bytes, as a bare number.
file_size() {
	_fs=$(wc -c <"$1") || return 1
	echo $((_fs))
}

# private_dir PREFIX: a new mode-0700 directory under TRD_TMP; prints its path.
private_dir() {
	(umask 077 && mktemp -d "$TRD_TMP/$1.XXXXXX")
}

# owner:group for everything tor owns (its user and group share the name).
tor_owner() { printf '%s:%s\n' "$TRD_TOR_USER" "$TRD_TOR_USER"; }
