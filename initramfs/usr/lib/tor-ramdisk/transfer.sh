# transfer.sh: export and import of the whole state (torrc and keys/) as an encrypted bundle,
# over FTP or SCP. Everything secret is asked for (or read from fw_cfg) and forgotten after.

# transfer_export URL: seal the current state and send it.
transfer_export() {
	_te=$(private_dir trd-export) || return 1
	bundle_seal "$_te/bundle" && transport_put "$_te/bundle" "$1"
	_te_rc=$?
	rm -rf "$_te"
	[ $_te_rc -ne 0 ] || say "exported to $1"
	return $_te_rc
}

# transfer_fetch URL FILE: fetch a bundle (nothing is opened yet).
transfer_fetch() {
	transport_get "$1" "$2" || { warn "could not fetch $1"; return 1; }
}

# transfer_import URL [READY]: fetch, verify, and swap the state in. READY runs once the bundle
# has passed every check, just before the swap (by which time tor must have stopped).
transfer_import() {
	_ti=$(private_dir trd-import) || return 1
	transfer_fetch "$1" "$_ti/bundle" && bundle_open "$_ti/bundle" "$1" "${2:-}"
	_ti_rc=$?
	rm -rf "$_ti"
	return $_ti_rc
}

# transfer_ask URL: the transport's secrets, from fw_cfg or the console.
transfer_ask() {
	url_parse "$1" || return 1
	if [ "$URL_PROTO" = scp ]; then
		ask TRD_HOSTKEY "host key of $URL_HOST (SHA256:…, from the server's admin)" "${TRD_HOSTKEY:-}" || return 1
		valid_fingerprint "$TRD_HOSTKEY" || { warn "that is not a SHA256:… fingerprint"; return 1; }
	fi
	if url_anonymous; then TRD_PASSWORD=''; return 0; fi
	fwcfg_read password TRD_PASSWORD && return 0
	if [ "$URL_PROTO" = scp ]; then
		ask_secret TRD_PASSWORD "SSH password for $URL_USER@$URL_HOST (empty: use the SSH key)"
	else
		ask_secret TRD_PASSWORD "FTP password for $URL_USER@$URL_HOST (empty: none)"
	fi
}

# passphrase_ask [confirm]: the bundle passphrase, from fw_cfg or typed (twice to seal).
passphrase_ask() {
	fwcfg_read passphrase TRD_PASSPHRASE && return 0
	ask_secret TRD_PASSPHRASE 'bundle passphrase' || return 1
	[ "${1:-}" = confirm ] || return 0
	ask_secret _pa_again 'the same passphrase again' || return 1
	[ "$_pa_again" = "$TRD_PASSPHRASE" ] && _pa_again='' && return 0
	_pa_again='' TRD_PASSPHRASE=''
	warn "the two passphrases differ"
	return 1
}

secrets_forget() { TRD_PASSPHRASE='' TRD_PASSWORD=''; }

# sshkey_install_fwcfg: a dropbear private key from fw_cfg (opt/tor-ramdisk/sshkey) for scp.
sshkey_install_fwcfg() {
	[ -r "$TRD_FWCFG/sshkey/raw" ] || return 0
	sshkey_install <"$TRD_FWCFG/sshkey/raw"
}

# sshkey_install: standard input (a dropbear private key) as root's ~/.ssh/id_dropbear.
sshkey_install() {
	mkdir -p "$TRD_HOME/.ssh" && chmod 700 "$TRD_HOME/.ssh" || return 1
	(umask 077 && cat >"$TRD_HOME/.ssh/id_dropbear.new") && mv -f "$TRD_HOME/.ssh/id_dropbear.new" "$TRD_HOME/.ssh/id_dropbear"
}
