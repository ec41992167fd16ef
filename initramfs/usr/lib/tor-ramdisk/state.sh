# state.sh: the relay's persistent state (the torrc and DataDirectory/keys/), gathered for a
# bundle, checked member by member when one comes in, and swapped in only when all is well.

# key_name_ok NAME: a flat file name tor uses in keys/ (ed25519_*, secret_*, NAME.secret_family_key).
key_name_ok() {
	case ${1:-} in '' | .* | *[!A-Za-z0-9._-]*) return 1 ;; esac
	[ ${#1} -le 90 ]
}

# state_collect DIR: copy torrc and every regular key file into DIR, as the bundle names them.
state_collect() {
	[ -f "$TRD_TORRC" ] || { warn "there is no torrc to export: generate or import one first"; return 1; }
	mkdir -p "$1/keys" && cp "$TRD_TORRC" "$1/torrc" || return 1
	for _sc in "$TRD_DATADIR/keys"/*; do
		[ -f "$_sc" ] && [ ! -L "$_sc" ] || continue
		key_name_ok "${_sc##*/}" || { warn "not exported: keys/${_sc##*/} (unexpected name)"; continue; }
		cp "$_sc" "$1/keys/" || return 1
	done
	if torrc_offline "$1/torrc" && master_secret_in "$1/keys"; then
		warn "the torrc says OfflineMasterKey 1, yet keys/ holds the master secret key: not exporting it"
		return 1
	fi
	[ -n "$(ls "$1/keys")" ] || warn "note: keys/ is empty (tor has not made its keys yet): the bundle holds only the torrc"
}

master_secret_in() {
	[ -e "$1/ed25519_master_id_secret_key" ] || [ -e "$1/ed25519_master_id_secret_key_encrypted" ]
}

# tar_field TAR OFFSET LEN: LEN bytes at OFFSET, NULs removed; a trailing newline is kept.
tar_field() {
	_tf=$(tail -c +$(($2 + 1)) "$1" | head -c "$3" | tr -d '\000'; echo .)
	printf '%s' "${_tf%.}"
}

# tar_check TAR: reads every header itself (type and raw name, before tar could rewrite a
# name) and refuses all but torrc, the keys/ directory and regular files in it.
tar_check() {
	_tk_size=$(file_size "$1") || return 1
	_tk_off=0
	_tk_seen=/
	while [ $((_tk_off + 512)) -le "$_tk_size" ]; do
		_tk_name=$(tar_field "$1" "$_tk_off" 100)
		_tk_type=$(tar_field "$1" $((_tk_off + 156)) 1)
		[ -n "$_tk_name$_tk_type" ] || return 0
		member_check "$(tar_field "$1" $((_tk_off + 345)) 155)" "$_tk_name" "$_tk_type" || return 1
		case $_tk_seen in *"/${_tk_name%/}/"*) warn "member \"$_tk_name\" appears twice"; return 1 ;; esac
		_tk_seen="$_tk_seen${_tk_name%/}/"
		_tk_len=$(tar_field "$1" $((_tk_off + 124)) 12 | tr -d ' ')
		case $_tk_len in '' | *[!0-7]*) warn "member \"$_tk_name\" has an unreadable size"; return 1 ;; esac
		_tk_off=$((_tk_off + 512 + (0$_tk_len + 511) / 512 * 512))
	done
	warn "the archive is cut short (no end-of-archive block)"
	return 1
}

# member_check PREFIX NAME TYPEFLAG: one tar member against the bundle's rules.
member_check() {
	[ -z "$1" ] || { warn "member \"$1/$2\" uses a long-name prefix: not a bundle member"; return 1; }
	case $2 in
	/*) warn "member \"$2\" is an absolute path"; return 1 ;;
	.. | ../* | */.. | */../*) warn "member \"$2\" has a \"..\" component"; return 1 ;;
	esac
	case $3 in
	0 | '' | 5) ;;
	1 | 2) warn "member \"$2\" is a link"; return 1 ;;
	*) warn "member \"$2\" has tar type '$3': only torrc, keys/ and files in it belong in a bundle"; return 1 ;;
	esac
	case $3:$2 in
	5:keys | 5:keys/) return 0 ;;
	5:*) warn "member \"$2\" is a directory other than keys/"; return 1 ;;
	*:torrc) return 0 ;;
	*:keys/*) key_name_ok "${2#keys/}" && return 0 ;;
	esac
	warn "member \"$2\" is neither torrc nor keys/<file>"
	return 1
}

# state_check DIR: the unpacked tree, looked at again on disk, and the torrc's key rules.
state_check() {
	for _st in "$1"/* "$1"/.*; do
		case ${_st##*/} in . | ..) continue ;; esac
		[ -e "$_st" ] || [ -L "$_st" ] || continue
		case ${_st##*/} in
		torrc) [ -f "$_st" ] && [ ! -L "$_st" ] || { warn "torrc is not a regular file"; return 1; } ;;
		keys) [ -d "$_st" ] && [ ! -L "$_st" ] || { warn "keys is not a directory"; return 1; } ;;
		*) warn "unexpected file \"${_st##*/}\" in the bundle"; return 1 ;;
		esac
	done
	[ -f "$1/torrc" ] || { warn "the bundle has no torrc"; return 1; }
	mkdir -p "$1/keys" && state_check_keys "$1/keys" && torrc_check "$1/torrc" && state_check_rules "$1"
}

state_check_keys() {
	for _st in "$1"/* "$1"/.*; do
		case ${_st##*/} in . | ..) continue ;; esac
		[ -e "$_st" ] || [ -L "$_st" ] || continue
		[ -f "$_st" ] && [ ! -L "$_st" ] && key_name_ok "${_st##*/}" || { warn "keys/${_st##*/} is not a plain key file"; return 1; }
	done
}

# state_check_rules DIR: offline master key, a complete identity, family keys, and no
# identity lost by accident.
state_check_rules() {
	if torrc_offline "$1/torrc"; then
		! master_secret_in "$1/keys" || { warn "the torrc says OfflineMasterKey 1, so the master secret key never enters the image, but the bundle carries keys/ed25519_master_id_secret_key: remove it from the bundle"; return 1; }
		for _sr in ed25519_signing_secret_key ed25519_signing_cert; do
			[ -f "$1/keys/$_sr" ] || { warn "OfflineMasterKey 1 needs keys/$_sr, and the bundle has none"; return 1; }
		done
	elif [ -n "$(ls "$1/keys")" ] && ! [ -f "$1/keys/ed25519_master_id_secret_key" ]; then
		warn "keys/ has no ed25519_master_id_secret_key: if the master key is kept offline, say OfflineMasterKey 1 in the torrc"
		return 1
	fi
	if torrc_familyid "$1/torrc" && ! has_family_key "$1/keys"; then
		warn "the torrc names a FamilyId, but the bundle has no keys/*.secret_family_key"
		return 1
	fi
	# Keys replace keys/ as a whole: a bundle must not quietly drop the RSA identity.
	if [ -n "$(ls "$1/keys")" ] && [ -f "$TRD_DATADIR/keys/secret_id_key" ] && [ ! -f "$1/keys/secret_id_key" ]; then
		warn "the bundle has keys but no keys/secret_id_key, while this relay has one: importing it would change the relay's RSA identity. Export first and change the keys in that bundle."
		return 1
	fi
}

has_family_key() {
	for _hf in "$1"/*.secret_family_key; do [ -f "$_hf" ] && return 0; done
	return 1
}

# state_install DIR: replace the current state with DIR's: the old keys/ and torrc are moved
# aside, the new ones moved in (renames within one filesystem), then the old ones removed.
# A bundle with no key files (a fresh relay's) replaces the torrc only: keys are never
# dropped by an import.
state_install() {
	! tor_running || { warn "tor is running: stop it before importing"; return 1; }
	_si_etc=${TRD_TORRC%/*}
	mkdir -p "$_si_etc" && cp "$1/torrc" "$_si_etc/.torrc.new" && chmod 0644 "$_si_etc/.torrc.new" || return 1
	if [ -z "$(ls "$1/keys")" ]; then
		mv -f "$_si_etc/.torrc.new" "$TRD_TORRC" || { rm -f "$_si_etc/.torrc.new"; return 1; }
		say "imported: the torrc (the bundle has no keys: keys/ is as it was)"
		return 0
	fi
	chown -R "$(tor_owner)" "$1/keys" && chmod 0700 "$1/keys" && chmod 0600 "$1/keys"/* &&
		rm -rf "$TRD_DATADIR/.keys.old" "$_si_etc/.torrc.old" || { rm -f "$_si_etc/.torrc.new"; return 1; }
	if [ -e "$TRD_DATADIR/keys" ] && ! mv "$TRD_DATADIR/keys" "$TRD_DATADIR/.keys.old"; then
		rm -f "$_si_etc/.torrc.new"
		return 1
	fi
	if ! mv "$1/keys" "$TRD_DATADIR/keys" ||
		{ [ -e "$TRD_TORRC" ] && ! mv "$TRD_TORRC" "$_si_etc/.torrc.old"; } ||
		! mv "$_si_etc/.torrc.new" "$TRD_TORRC"; then
		state_rollback "$_si_etc"
		return 1
	fi
	rm -rf "$TRD_DATADIR/.keys.old" "$_si_etc/.torrc.old"
	say "imported: the torrc and $(ls "$TRD_DATADIR/keys" | wc -l) key files"
}

state_rollback() {
	warn "could not swap the new state in; putting the old one back"
	rm -rf "$TRD_DATADIR/keys"
	[ ! -e "$TRD_DATADIR/.keys.old" ] || mv "$TRD_DATADIR/.keys.old" "$TRD_DATADIR/keys"
	[ ! -e "$1/.torrc.old" ] || mv -f "$1/.torrc.old" "$TRD_TORRC"
	rm -f "$1/.torrc.new"
}
