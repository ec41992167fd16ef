# status.sh: what tor says about itself (control port), and when its signing key expires.
#
# No control-port GETINFO reports our own signing certificate's lifetime, so it is read
# from keys/ed25519_signing_cert: a 32-byte tag "== ed25519v1-cert: type4 ==" (NUL-padded),
# then the certificate: version (1) = 1, type (1) = 4, expiration (4, big-endian) in hours
# since 1970, key type, the signed key, extensions, signature.

# cert_expiry_hours FILE: the certificate's expiration, in hours since the epoch.
cert_expiry_hours() {
	[ -f "$1" ] || { warn "there is no $1"; return 1; }
	[ "$(file_size "$1")" -ge 40 ] || { warn "$1 is too short to be a certificate"; return 1; }
	_ce_tag=$(head -c 32 "$1" | tr -d '\000')
	case $_ce_tag in "== ed25519v1-cert: "*" ==") ;; *) warn "$1 is not a tor ed25519 certificate file"; return 1 ;; esac
	[ "$(bytes_hex "$1" 32 2)" = 0104 ] || { warn "$1 is not a version 1 signing-key certificate (type 4)"; return 1; }
	echo $((0x$(bytes_hex "$1" 34 4)))
}

# cert_expiry_text FILE [NOW]: "2026-12-25 10:00 UTC, in 29 days" (or "EXPIRED …").
cert_expiry_text() {
	_ce_h=$(cert_expiry_hours "$1") || return 1
	_ce_at=$((_ce_h * 3600))
	_ce_now=${2:-$(date +%s)}
	_ce_when=$(date -u -d "@$_ce_at" '+%Y-%m-%d %H:%M UTC')
	if [ "$_ce_at" -le "$_ce_now" ]; then
		echo "EXPIRED $_ce_when, $(((_ce_now - _ce_at) / 86400)) days ago"
	else
		echo "$_ce_when, in $(((_ce_at - _ce_now) / 86400)) days $(((_ce_at - _ce_now) % 86400 / 3600)) hours"
	fi
}

# bootstrap_text VALUE: "100% (Done)" from status/bootstrap-phase.
bootstrap_text() {
	_bt_p=${1#*PROGRESS=}
	_bt_p=${_bt_p%% *}
	_bt_s=${1#*SUMMARY=\"}
	_bt_s=${_bt_s%%\"*}
	printf '%s%% (%s)\n' "$_bt_p" "$_bt_s"
}

# bytes_text N: "N bytes (M MiB)".
bytes_text() {
	is_uint "${1:-}" || { echo unknown; return 0; }
	echo "$1 bytes ($(($1 / 1048576)) MiB)"
}

status_show() {
	say "signing key certificate: $(cert_expiry_text "$TRD_DATADIR/keys/ed25519_signing_cert" 2>&1)"
	if ! _ss_pid=$(tor_pid); then say "tor: not running"; return 0; fi
	say "tor: running, pid $_ss_pid"
	_ss=$(ctl_session 'GETINFO version' 'GETINFO uptime' 'GETCONF Sandbox' 'GETINFO status/bootstrap-phase' 'GETINFO fingerprint' \
		'GETINFO status/reachability-succeeded/or' 'GETINFO traffic/read' 'GETINFO traffic/written' \
		'GETCONF MaxMemInQueues' 'GETCONF DirCache') || return 1
	status_lines "$_ss"
}

# status_lines REPLY: the control port's answers, one per line, for people.
status_lines() {
	say "version: $(printf '%s\n' "$1" | ctl_value version || echo unknown)"
	say "up: $(printf '%s\n' "$1" | ctl_value uptime || echo unknown) s"
	case $(printf '%s\n' "$1" | ctl_value Sandbox) in
	1) say "sandbox: on (seccomp)" ;;
	*) say "sandbox: OFF" ;;
	esac
	_sl=$(printf '%s\n' "$1" | ctl_value status/bootstrap-phase) && _sl=$(bootstrap_text "$_sl")
	say "bootstrap: ${_sl:-unknown}"
	say "fingerprint: $(printf '%s\n' "$1" | ctl_value fingerprint || echo 'none yet')"
	# tor writes "NICKNAME ID" to fingerprint-ed25519 once it has its ed25519 identity.
	_sl=$(cut -d ' ' -f 2 "$TRD_DATADIR/fingerprint-ed25519" 2>/dev/null) || _sl=''
	say "ed25519 identity: ${_sl:-none yet}"
	case $(printf '%s\n' "$1" | ctl_value status/reachability-succeeded/or) in
	1) say "ORPort reachable: yes" ;;
	0) say "ORPort reachable: not yet (tor tests it after bootstrapping)" ;;
	*) say "ORPort reachable: unknown" ;;
	esac
	say "read: $(bytes_text "$(printf '%s\n' "$1" | ctl_value traffic/read)")"
	say "written: $(bytes_text "$(printf '%s\n' "$1" | ctl_value traffic/written)")"
	say "MaxMemInQueues: $(printf '%s\n' "$1" | ctl_value MaxMemInQueues | awk '{ printf "%d MiB", $1 / 1048576 }'), $(mem_source MaxMemInQueues)"
	say "DirCache: $(printf '%s\n' "$1" | ctl_value DirCache || echo unknown), $(mem_source DirCache)"
}
