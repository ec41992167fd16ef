# ftp.sh: a small FTP client over busybox nc and two FIFOs. busybox ftpget/ftpput take the
# password only as `-p PASS` (argv, readable in /proc/PID/cmdline) and read it from nowhere
# else; here it reaches the server through the shell's builtin printf, so it never is an argv.
# Passive mode only; the data connection goes to the control connection's host, whatever
# address the server's PASV reply names (no FTP bounce).

: "${TRD_BUNDLE_MAX:=1048576}"

# ftp_open HOST PORT: connect and read the greeting; fds 7 (to the server) and 8 (from it).
ftp_open() {
	FTP_HOST=$1 FTP_NC='' FTP_OPEN=''
	FTP_DIR=$(private_dir trd-ftp) || return 1
	mkfifo "$FTP_DIR/in" "$FTP_DIR/out" || return 1
	# A write to a server that hung up must fail, not kill the menu with SIGPIPE.
	trap '' PIPE
	nc "$1" "$2" <"$FTP_DIR/in" >"$FTP_DIR/out" 2>/dev/null &
	FTP_NC=$!
	exec 7>"$FTP_DIR/in" 8<"$FTP_DIR/out"
	FTP_OPEN=1
	ftp_reply || { warn "ftp: no answer from $1 port $2"; return 1; }
	ftp_want 220 "connect to $1 port $2"
}

ftp_close() {
	if [ -n "${FTP_OPEN:-}" ]; then
		printf 'QUIT\r\n' 2>/dev/null >&7 && ftp_reply >/dev/null 2>&1
		exec 7>&- 8<&-
	fi
	[ -z "${FTP_NC:-}" ] || { kill "$FTP_NC" 2>/dev/null; wait "$FTP_NC" 2>/dev/null; }
	[ -z "${FTP_DIR:-}" ] || rm -rf "$FTP_DIR"
	FTP_OPEN='' FTP_NC='' FTP_DIR=''
	trap - PIPE
}

# ftp_reply: one whole reply (multi-line ones too) into FTP_CODE and FTP_TEXT.
ftp_reply() {
	FTP_CODE='' FTP_TEXT=''
	IFS= read -r -t "$TRD_TIMEOUT" _ftp_line <&8 || return 1
	_ftp_line=${_ftp_line%"$TRD_CR"}
	FTP_CODE=${_ftp_line%"${_ftp_line#???}"}
	FTP_TEXT=${_ftp_line#????}
	is_uint "$FTP_CODE" || return 1
	case $_ftp_line in ???-*) ftp_continuation ;; esac
}

ftp_continuation() {
	while IFS= read -r -t "$TRD_TIMEOUT" _ftp_line <&8; do
		_ftp_line=${_ftp_line%"$TRD_CR"}
		case $_ftp_line in "$FTP_CODE" | "$FTP_CODE "*) return 0 ;; esac
	done
	return 1
}

# ftp_cmd VERB [ARG]: send one command and read its reply. ARG may be a secret: printf is
# a builtin, so it is written to the FIFO without becoming any process's argument.
ftp_cmd() {
	if [ $# -gt 1 ]; then printf '%s %s\r\n' "$1" "$2" >&7; else printf '%s\r\n' "$1" >&7; fi || return 1
	ftp_reply || { warn "ftp: the connection to $FTP_HOST broke after $1"; return 1; }
}

# ftp_want CODES WHAT: the last reply must be one of CODES (a case pattern).
ftp_want() {
	eval "case \$FTP_CODE in $1) return 0 ;; esac"
	warn "ftp: $2 failed: $FTP_CODE $FTP_TEXT"
	return 1
}

ftp_login() {
	ftp_cmd USER "$1" || return 1
	[ "$FTP_CODE" = 230 ] && return 0
	ftp_want 331 "USER $1" || return 1
	ftp_cmd PASS "${TRD_PASSWORD:-}" || return 1
	ftp_want 230 "login as $1 (wrong password?)" || return 1
	ftp_cmd TYPE I && ftp_want 200 'TYPE I'
}

# ftp_passive: the data port, from EPSV (229 … (|||PORT|)) or else PASV (227 … (h,h,h,h,p,p)).
ftp_passive() {
	ftp_cmd EPSV || return 1
	if [ "$FTP_CODE" = 229 ]; then
		FTP_DPORT=${FTP_TEXT#*(|||}
		FTP_DPORT=${FTP_DPORT%%|*}
	else
		ftp_cmd PASV && ftp_want 227 PASV || return 1
		ftp_pasv_port "$FTP_TEXT"
	fi
	valid_port "$FTP_DPORT" || { warn "ftp: cannot read the data port in \"$FTP_TEXT\""; return 1; }
}

ftp_pasv_port() {
	_ftp_six=${1#*(}
	_ftp_six=${_ftp_six%%)*}
	_ftp_ifs=$IFS
	IFS=,
	# shellcheck disable=SC2086
	set -- $_ftp_six
	IFS=$_ftp_ifs
	FTP_DPORT=''
	[ $# -eq 6 ] && is_uint "$5" && is_uint "$6" && FTP_DPORT=$(($5 * 256 + $6))
}

# ftp_get REMOTE LOCAL: RETR into LOCAL, at most TRD_BUNDLE_MAX bytes.
ftp_get() {
	ftp_passive || return 1
	timeout $((TRD_TIMEOUT * 4)) nc "$FTP_HOST" "$FTP_DPORT" </dev/null 2>/dev/null | head -c $((TRD_BUNDLE_MAX + 1)) >"$2" &
	_ftp_data=$!
	ftp_cmd RETR "$1" && ftp_want '125|150' "RETR $1" || { kill "$_ftp_data" 2>/dev/null; return 1; }
	wait "$_ftp_data"
	ftp_reply && ftp_want '226|250' "RETR $1" || return 1
	[ "$(file_size "$2")" -le "$TRD_BUNDLE_MAX" ] || { warn "ftp: $1 is larger than $TRD_BUNDLE_MAX bytes: not a bundle"; return 1; }
}

# ftp_put LOCAL REMOTE: STOR to REMOTE.part, then rename it over REMOTE, so a broken upload
# never replaces a good bundle; then compare sizes where the server knows SIZE.
ftp_put() {
	ftp_passive || return 1
	timeout $((TRD_TIMEOUT * 4)) nc "$FTP_HOST" "$FTP_DPORT" <"$1" >/dev/null 2>&1 &
	_ftp_data=$!
	ftp_cmd STOR "$2.part" && ftp_want '125|150' "STOR $2.part" || { kill "$_ftp_data" 2>/dev/null; return 1; }
	wait "$_ftp_data"
	ftp_reply && ftp_want '226|250' "STOR $2.part" || return 1
	ftp_cmd RNFR "$2.part" && ftp_want 350 "RNFR $2.part" || return 1
	ftp_cmd RNTO "$2" && ftp_want 250 "RNTO $2" || return 1
	ftp_cmd SIZE "$2" || return 1
	[ "$FTP_CODE" != 213 ] || [ "$FTP_TEXT" = "$(file_size "$1")" ] || { warn "ftp: $2 arrived with $FTP_TEXT bytes, not $(file_size "$1")"; return 1; }
}

# ftp_fetch LOCAL / ftp_store LOCAL: one session for the URL that url_parse read.
ftp_fetch() {
	ftp_open "$URL_HOST" "$URL_PORT" && ftp_login "$URL_USER" && ftp_get "$URL_PATH" "$1"
	_ftp_rc=$?
	ftp_close
	return $_ftp_rc
}

ftp_store() {
	ftp_open "$URL_HOST" "$URL_PORT" && ftp_login "$URL_USER" && ftp_put "$1" "$URL_PATH"
	_ftp_rc=$?
	ftp_close
	return $_ftp_rc
}
