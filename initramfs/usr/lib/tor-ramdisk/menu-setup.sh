# menu-setup.sh: the menu's network, time, torrc and export/import screens.

# ask_until VAR PROMPT DEFAULT CHECK [empty]: ask until CHECK accepts (or, with "empty",
# until the answer is empty).
ask_until() {
	while :; do
		ask "$1" "$2" "$3" || return 1
		eval "_au=\$$1"
		[ -z "$_au" ] && [ "${5:-}" = empty ] && return 0
		[ -n "$_au" ] && "$4" "$_au" && return 0
		say "  not valid; try again"
	done
}

ask_iface() {
	ask_until "$1" interface "$(net_iface)" valid_iface
}

menu_network() {
	printf '\n 1  IPv4 by DHCP\n 2  IPv4 static\n 3  IPv6 by SLAAC\n 4  IPv6 static\n 5  DNS servers\n 6  show\n 0  back\n'
	choose _mn || return 0
	# shellcheck disable=SC2086
	case $_mn in
	1) ask_iface _mn_if && net_dhcp "$_mn_if" ;;
	2) ask_iface _mn_if && ask_until _mn_a 'address/prefix (e.g. 192.0.2.10/24)' '' valid_cidr4 &&
		ask_until _mn_g gateway '' valid_ipv4 && net_static4 "$_mn_if" "$_mn_a" "$_mn_g" ;;
	3) ask_iface _mn_if && net_slaac "$_mn_if" ;;
	4) ask_iface _mn_if && ask_until _mn_a 'address/prefix (e.g. 2001:db8::10/64)' '' valid_cidr6 &&
		ask_until _mn_g gateway '' valid_ipv6 && net_static6 "$_mn_if" "$_mn_a" "$_mn_g" ;;
	5) ask _mn_d 'DNS servers, separated by spaces' && net_dns $_mn_d ;;
	6) net_show ;;
	*) return 0 ;;
	esac
	pause
}

menu_time() {
	printf '\n 1  show\n 2  set by hand (UTC)\n 3  set from an NTP server\n 0  back\n'
	choose _mti || return 0
	case $_mti in
	1) time_show ;;
	2) ask_until _mti_d 'date and time, UTC (YYYY-MM-DD HH:MM[:SS])' '' valid_datetime && time_set "$_mti_d" ;;
	3) ask_until _mti_s 'NTP server' pool.ntp.org valid_host && time_ntp "$_mti_s" ;;
	*) return 0 ;;
	esac
	pause
}

menu_torrc() {
	printf '\n 1  new torrc: relay\n 2  new torrc: bridge\n 3  new torrc: exit\n 4  show\n 5  edit (vi)\n'
	printf ' 6  check (tor --verify-config)\n 7  import torrc and keys\n 8  export torrc and keys\n'
	printf ' 9  SSH key for scp (paste)\n 0  back\n'
	choose _mto || return 0
	case $_mto in
	1) torrc_new relay ;;
	2) torrc_new bridge ;;
	3) torrc_new exit ;;
	4) cat "$TRD_TORRC" 2>/dev/null || say "there is no torrc yet" ;;
	5) torrc_edit ;;
	6) tor_verify && say "the torrc is valid" ;;
	7) menu_import ;;
	8) menu_export ;;
	9) menu_sshkey ;;
	*) return 0 ;;
	esac
	pause
}

# torrc_new PROFILE: a few questions, the result shown, installed when confirmed.
torrc_new() {
	torrc_defaults "$1"
	say "a new $1 torrc (Enter keeps the [default])"
	torrc_ask "$1" || return 1
	_tn=$(torrc_generate "$1") || return 1
	printf '\n%s\n\n' "$_tn"
	[ ! -f "$TRD_TORRC" ] || confirm "replace the current torrc?" || return 0
	mkdir -p "${TRD_TORRC%/*}" && printf '%s\n' "$_tn" >"$TRD_TORRC.new" && mv -f "$TRD_TORRC.new" "$TRD_TORRC" || return 1
	say "written to $TRD_TORRC"
	! tor_running || ! confirm "reload tor with it?" || tor_reload
}

torrc_ask() {
	ask_until TORRC_NICKNAME 'Nickname (1-19 letters and digits)' '' valid_nickname empty &&
		ask_until TORRC_CONTACT 'ContactInfo (e.g. email:you[]example.org)' '' valid_contact empty &&
		ask_until TORRC_ORPORT ORPort "$TORRC_ORPORT" valid_port &&
		ask_until TORRC_RATE 'RelayBandwidthRate (e.g. 10 MBytes; empty: no limit)' '' valid_bandwidth empty || return 1
	[ -z "$TORRC_RATE" ] || ask_until TORRC_BURST RelayBandwidthBurst "$TORRC_RATE" valid_bandwidth || return 1
	! confirm 'master identity key kept offline (OfflineMasterKey 1)?' || TORRC_OFFLINE=1
	ask_until TORRC_FAMILYID 'FamilyId (its key comes in with an import; empty: none)' '' valid_familyid empty &&
		ask_until TORRC_MYFAMILY 'MyFamily fingerprints, comma-separated (empty: none)' '' valid_myfamily empty || return 1
	! confirm 'MetricsPort on 127.0.0.1:9035 (loopback only)?' || TORRC_METRICS=1
	[ "$1" != exit ] || torrc_ask_exit
}

torrc_ask_exit() {
	say " exit policy: 1 tor's reduced exit policy, 2 web only (80, 443), 3 ports I list"
	ask _tae 'exit policy' 1 || return 1
	case $_tae in
	2) TORRC_EXIT_POLICY=web ;;
	3) TORRC_EXIT_POLICY=ports
		ask_until TORRC_EXIT_PORTS 'ports and ranges (e.g. 80 443 8000-8100)' '' valid_ports || return 1 ;;
	*) TORRC_EXIT_POLICY=reduced ;;
	esac
	! confirm 'exit to IPv6 too (IPv6Exit 1)?' || TORRC_IPV6EXIT=1
}

# torrc_edit: vi on a copy; the copy replaces the torrc only if it passes the checks.
torrc_edit() {
	_te_copy=${TRD_TORRC%/*}/.torrc.edit
	cp "$TRD_TORRC" "$_te_copy" 2>/dev/null || : >"$_te_copy"
	while :; do
		vi "$_te_copy"
		torrc_check "$_te_copy" && break
		confirm "edit again (no: discard the changes)?" || { rm -f "$_te_copy"; return 1; }
	done
	chmod 0644 "$_te_copy" && mv -f "$_te_copy" "$TRD_TORRC" && say "saved"
	! tor_running || ! confirm "reload tor with it?" || tor_reload
}

# menu_url WHAT: an ftp:// or scp:// URL into TRD_LAST_URL, kept for the session (no secret).
menu_url() {
	say "$1: ftp://[user@]host[:port]/path or scp://user@host[:port]/path"
	ask_until TRD_LAST_URL URL "${TRD_LAST_URL:-}" url_parse
}

menu_export() {
	menu_url 'export to' && transfer_ask "$TRD_LAST_URL" && passphrase_ask confirm &&
		transfer_export "$TRD_LAST_URL"
	_mex=$?
	secrets_forget
	return $_mex
}

# menu_import: the bundle is fetched and checked while tor runs on; tor stops only for the
# swap, once the bundle has passed every check, and starts again on the new state.
menu_import() {
	MIM_STOPPED=''
	menu_url 'import from' && transfer_ask "$TRD_LAST_URL" && passphrase_ask &&
		transfer_import "$TRD_LAST_URL" menu_import_ready
	_mim_rc=$?
	secrets_forget
	[ -z "$MIM_STOPPED" ] || tor_start
	return $_mim_rc
}

# menu_import_ready: the bundle is good; tor, if it runs, stops for the swap (when confirmed).
menu_import_ready() {
	tor_running || return 0
	confirm "the bundle is good; tor is running: stop it to swap the new state in (it starts again after)?" || return 1
	tor_stop && MIM_STOPPED=1
}

# menu_sshkey: a dropbear private key for scp, pasted as one line of base64
# (made with: dropbearconvert openssh dropbear id_ed25519 key && base64 -w0 key).
menu_sshkey() {
	ask_secret _msk 'dropbear private key, base64 on one line (empty: keep the current one)' || return 1
	[ -n "$_msk" ] || return 0
	printf '%s' "$_msk" | base64 -d 2>/dev/null | sshkey_install && say "SSH key installed as $TRD_HOME/.ssh/id_dropbear"
	_msk=''
}
