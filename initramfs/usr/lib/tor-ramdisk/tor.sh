# tor.sh: start, stop and reload tor, and ask it questions on its control port
# (127.0.0.1, cookie authentication; busybox nc speaks TCP only, not unix sockets).

tor_pid() {
	[ -r "$TRD_RUNDIR/tor.pid" ] || return 1
	read -r _tp <"$TRD_RUNDIR/tor.pid" || return 1
	is_uint "$_tp" && kill -0 "$_tp" 2>/dev/null && echo "$_tp"
}

tor_running() { tor_pid >/dev/null; }

# What the image relies on, given on the command line so that no torrc can change it.
tor_forced() {
	echo --RunAsDaemon 1 --User "$TRD_TOR_USER" --DataDirectory "$TRD_DATADIR" \
		--PidFile "$TRD_RUNDIR/tor.pid" --ControlPort "127.0.0.1:$TRD_CONTROL_PORT" \
		--CookieAuthentication 1 --CookieAuthFile "$TRD_RUNDIR/control.authcookie" --SocksPort 0 \
		--Sandbox 1
}

# tor_args: the forced options, then what the RAM sets where the torrc is silent (mem.sh).
tor_args() {
	tor_forced
	mem_tor_options
}

# tor_dirs: DataDirectory and the run directory, owned by tor and private to it.
tor_dirs() {
	mkdir -p "$TRD_DATADIR/keys" "$TRD_RUNDIR" &&
		chown -R "$(tor_owner)" "$TRD_DATADIR" "$TRD_RUNDIR" &&
		chmod 0700 "$TRD_DATADIR" "$TRD_DATADIR/keys" "$TRD_RUNDIR"
}

# tor_verify: the torrc obeys the image's rules and tor accepts it.
tor_verify() {
	[ -f "$TRD_TORRC" ] || { warn "there is no torrc: generate or import one first"; return 1; }
	torrc_check "$TRD_TORRC" || return 1
	# shellcheck disable=SC2046
	_tv=$("$TRD_TOR" --hush -f "$TRD_TORRC" $(tor_args) --verify-config 2>&1) && return 0
	printf '%s\n' "$_tv"
	warn "tor does not accept the torrc (see above)"
	return 1
}

# tor_start: tor as root (to bind low ports), dropping to the tor user; RunAsDaemon makes
# the parent wait until the daemon has started, so its exit status says whether it did, and
# the pid is the daemon's once it has written its PidFile; started means it answers.
tor_start() {
	if tor_running; then say "tor is already running (pid $(tor_pid))"; return 0; fi
	tor_verify && tor_dirs || return 1
	rm -f "$TRD_RUNDIR/control.authcookie"
	# Warnings before it detaches reach the console (not a log); the daemon's stdio is /dev/null.
	# shellcheck disable=SC2046
	"$TRD_TOR" --hush -f "$TRD_TORRC" $(tor_args) </dev/null || { warn "tor did not start"; return 1; }
	# The parent returns before the daemon has written its PidFile: wait for it.
	_tst=0
	until tor_running; do
		[ "$_tst" -lt "$TRD_TIMEOUT" ] || { warn "tor started, but wrote no pid file in $TRD_TIMEOUT s"; return 1; }
		sleep 1
		_tst=$((_tst + 1))
	done
	# The daemon answers on its control port from its main loop, once its seccomp sandbox is in
	# place: a tor that cannot load the sandbox (or dies before the loop) never answers.
	until ctl_session 'GETINFO version' 2>/dev/null | ctl_value version >/dev/null; do
		tor_running || { warn "tor exited as it started (nothing is logged; the shell, 8, can run it in the foreground to see why)"; return 1; }
		[ "$_tst" -lt "$TRD_TIMEOUT" ] || { warn "tor (pid $(tor_pid)) does not answer on its control port after $TRD_TIMEOUT s"; return 1; }
		sleep 1
		_tst=$((_tst + 1))
	done
	say "tor started (pid $(tor_pid))"
}

# tor_stop: SIGTERM (a relay exits at once; SIGINT would wait ShutdownWaitLength), then wait.
tor_stop() {
	_ts=$(tor_pid) || { say "tor is not running"; return 0; }
	kill -TERM "$_ts"
	_ts_n=0
	while kill -0 "$_ts" 2>/dev/null; do
		[ $_ts_n -lt "$TRD_TIMEOUT" ] || { warn "tor (pid $_ts) did not stop; killing it"; kill -KILL "$_ts"; break; }
		sleep 1
		_ts_n=$((_ts_n + 1))
	done
	rm -f "$TRD_RUNDIR/tor.pid" "$TRD_RUNDIR/control.authcookie"
	say "tor stopped"
}

# tor_reload: check the torrc first; then SIGNAL RELOAD on the control port, or SIGHUP.
tor_reload() {
	_tr=$(tor_pid) || { warn "tor is not running"; return 1; }
	tor_verify || return 1
	case $(ctl_session 'SIGNAL RELOAD' 2>/dev/null) in "250 OK"*) say "tor reloaded its torrc"; return 0 ;; esac
	kill -HUP "$_tr" && say "tor reloaded its torrc (SIGHUP)"
}

# ctl_session COMMAND…: authenticate with the cookie, send each COMMAND, QUIT; the replies
# after the authentication on stdout. The cookie goes from a builtin printf to nc's stdin,
# never into argv.
ctl_session() {
	_cs_cookie=$(xxd -p -c 64 "$TRD_RUNDIR/control.authcookie" 2>/dev/null) && [ -n "$_cs_cookie" ] ||
		{ warn "no control cookie: is tor running?"; return 1; }
	_cs=$({
		printf 'AUTHENTICATE %s\r\n' "$_cs_cookie"
		for _cs_cmd in "$@"; do printf '%s\r\n' "$_cs_cmd"; done
		printf 'QUIT\r\n'
	} | nc 127.0.0.1 "$TRD_CONTROL_PORT" 2>/dev/null | tr -d '\r')
	_cs_cookie=''
	case $_cs in
	"250 OK") ;;
	"250 OK$TRD_NL"*) printf '%s\n' "${_cs#"250 OK$TRD_NL"}" ;;
	'') warn "no answer on the control port (127.0.0.1:$TRD_CONTROL_PORT)"; return 1 ;;
	*) warn "the control port refused the cookie: ${_cs%%"$TRD_NL"*}"; return 1 ;;
	esac
}

# ctl_value KEY: from a control reply on stdin, the value of "250-KEY=VALUE" (or "250 KEY=").
ctl_value() {
	while IFS= read -r _cv; do
		case $_cv in "250-$1="* | "250 $1="*)
			printf '%s\n' "${_cv#250?"$1"=}"
			return 0 ;;
		esac
	done
	return 1
}
