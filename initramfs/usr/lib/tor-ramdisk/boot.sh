# boot.sh: the non-interactive boot: network, import and start, as the kernel command line
# says (cmdline.sh). Secrets come from fw_cfg or, failing that, from the console.

boot_auto() {
	cmdline_read || { warn "tor-ramdisk: mistakes on the kernel command line (above): nothing was done automatically"; return 1; }
	sshkey_install_fwcfg || warn "could not install the SSH key from fw_cfg"
	boot_network || return 1
	if [ -n "$CMD_IMPORT" ]; then
		boot_import || { warn "tor-ramdisk: the import failed: tor was not started"; return 1; }
		[ -z "$CMD_PROFILE" ] || [ "$(torrc_profile "$TRD_TORRC")" = "$CMD_PROFILE" ] ||
			warn "note: trd.profile=$CMD_PROFILE, but the imported torrc is a $(torrc_profile "$TRD_TORRC") torrc"
	fi
	[ "$CMD_START" = 1 ] || return 0
	[ -f "$TRD_TORRC" ] || boot_default_torrc || return 1
	tor_start
}

boot_network() {
	[ -n "$CMD_NET$CMD_NET6" ] || return 0
	_bn=$(net_iface)
	[ -n "$_bn" ] || { warn "no network interface"; return 1; }
	case $CMD_NET in
	dhcp) net_dhcp "$_bn" || return 1 ;;
	static)
		net_static4 "$_bn" "$CMD_NET_ADDR" "$CMD_NET_GW" || return 1
		# shellcheck disable=SC2086
		[ -z "$CMD_NET_DNS" ] || net_dns $CMD_NET_DNS || return 1
		;;
	esac
	case $CMD_NET6 in
	slaac) net_slaac "$_bn" ;;
	static) net_static6 "$_bn" "$CMD_NET6_ADDR" "$CMD_NET6_GW" ;;
	esac
}

# boot_import: the passphrase is asked up to three times when typed; a wrong one from fw_cfg
# is final (asking again would get the same answer).
boot_import() {
	TRD_HOSTKEY=$CMD_HOSTKEY
	url_parse "$CMD_IMPORT" || return 1
	if url_anonymous; then
		TRD_PASSWORD=''
	else
		fwcfg_read password TRD_PASSWORD || ask_secret TRD_PASSWORD "password for $URL_USER@$URL_HOST (empty: none)" || return 1
	fi
	_bi=$(private_dir trd-import) || return 1
	transfer_fetch "$CMD_IMPORT" "$_bi/bundle" && boot_open "$_bi/bundle"
	_bi_rc=$?
	rm -rf "$_bi"
	secrets_forget
	return $_bi_rc
}

boot_open() {
	if fwcfg_read passphrase TRD_PASSPHRASE; then
		bundle_open "$1" "$CMD_IMPORT"
		return
	fi
	for _bo_try in 1 2 3; do
		ask_secret TRD_PASSPHRASE "bundle passphrase for $CMD_IMPORT" || return 1
		bundle_open "$1" "$CMD_IMPORT" && return 0
	done
	return 1
}

# boot_default_torrc: trd.start=1 with nothing imported: the profile's torrc, default answers.
boot_default_torrc() {
	torrc_defaults "${CMD_PROFILE:-relay}"
	mkdir -p "${TRD_TORRC%/*}" &&
		torrc_generate "${CMD_PROFILE:-relay}" >"$TRD_TORRC.new" && mv -f "$TRD_TORRC.new" "$TRD_TORRC" ||
		{ warn "could not write a $CMD_PROFILE torrc"; return 1; }
	say "no torrc was imported: using a default ${CMD_PROFILE:-relay} torrc"
}
