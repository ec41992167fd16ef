# scp.sh: copies over SSH with dropbear's scp and dbclient, to a server whose host key the
# operator knows beforehand (SHA256:…). dbclient is never given -y: the key is trusted
# only after the fingerprint dbclient itself shows for this very connection matches the one
# typed, and only then written to known_hosts. The password, if any, reaches dbclient in its
# environment (DROPBEAR_PASSWORD), which is not argv; otherwise ~/.ssh/id_dropbear is used.

# hostkey_fingerprint BASE64: the SHA256:… fingerprint of a public key blob.
hostkey_fingerprint() {
	_hf=$(printf '%s' "$1" | base64 -d 2>/dev/null | sha256_hex) || return 1
	printf 'SHA256:%s\n' "$(printf "$(hex_escapes "$_hf")" | base64 | tr -d '=\n')"
}

# scp_trust HOST PORT USER FINGERPRINT: compare and, on a match, trust the host key.
scp_trust() {
	valid_fingerprint "$4" || { warn "scp: a host key fingerprint looks like SHA256: and 43 characters"; return 1; }
	_st=$(private_dir trd-hostkey) || return 1
	scp_probe "$_st" "$@"
	_st_rc=$?
	rm -rf "$_st"
	return $_st_rc
}

# scp_probe DIR HOST PORT USER FINGERPRINT: connect with an empty known_hosts and no way to
# log in; dbclient, with no terminal (setsid), prints the key's fingerprint and reads the
# answer from stdin: "y" only on a match. It then records the key and fails to log in.
scp_probe() {
	mkdir -m 700 "$1/home" && mkfifo "$1/in" "$1/err" || return 1
	trap '' PIPE
	HOME="$1/home" setsid "$TRD_DBCLIENT" -p "$3" -l "$4" -o PasswordAuthentication=no "$2" true \
		<"$1/in" >/dev/null 2>"$1/err" &
	_sp_pid=$!
	exec 5>"$1/in" 6<"$1/err"
	_sp_seen=''
	while IFS= read -r -t "$TRD_TIMEOUT" _sp_line <&6; do
		case $_sp_line in *" fingerprint SHA256:"*) _sp_seen=${_sp_line##* fingerprint }; _sp_seen=${_sp_seen%%)*}; break ;; esac
	done
	if [ -n "$_sp_seen" ] && [ "$_sp_seen" = "$5" ]; then printf 'y\n' >&5; else printf 'n\n' >&5; fi
	exec 5>&-
	while IFS= read -r -t "$TRD_TIMEOUT" _sp_line <&6; do :; done
	exec 6<&-
	kill "$_sp_pid" 2>/dev/null
	wait "$_sp_pid" 2>/dev/null
	trap - PIPE
	[ -n "$_sp_seen" ] || { warn "scp: $2 port $3 showed no host key (is it an SSH server?)"; return 1; }
	[ "$_sp_seen" = "$5" ] || { warn "scp: REFUSED: $2 presented host key $_sp_seen, not $5: nothing sent, nothing trusted"; return 1; }
	scp_known "$1/home/.ssh/known_hosts" "$2" "$5"
}

# scp_known FILE HOST FINGERPRINT: the line dbclient recorded, checked again by its own
# fingerprint, replaces any older line for HOST in root's known_hosts.
scp_known() {
	while read -r _sk_host _sk_algo _sk_key _sk_rest; do
		[ "$_sk_host" = "$2" ] && [ "$(hostkey_fingerprint "$_sk_key")" = "$3" ] || continue
		mkdir -p "$TRD_HOME/.ssh" && chmod 700 "$TRD_HOME/.ssh" || return 1
		_sk_file=$TRD_HOME/.ssh/known_hosts
		{
			awk -v h="$2" '$1 != h' "$_sk_file" 2>/dev/null
			echo "$_sk_host $_sk_algo $_sk_key"
		} >"$_sk_file.new" && mv -f "$_sk_file.new" "$_sk_file" || return 1
		say "scp: the host key of $2 is $3, as given: trusted"
		return 0
	done <"$1"
	warn "scp: dbclient recorded no matching host key for $2"
	return 1
}

# scp_run ARGS…: scp through dbclient, strict about host keys, never prompting.
scp_run() {
	if [ -n "${TRD_PASSWORD:-}" ]; then
		HOME=$TRD_HOME DROPBEAR_PASSWORD=$TRD_PASSWORD "$TRD_SCP" -q -S "$TRD_DBCLIENT" \
			-o StrictHostKeyChecking=yes -o BatchMode=yes -P "$URL_PORT" "$@"
	else
		HOME=$TRD_HOME "$TRD_SCP" -q -S "$TRD_DBCLIENT" -o StrictHostKeyChecking=yes -o BatchMode=yes -P "$URL_PORT" "$@"
	fi
}

# ssh_run COMMAND…: one command on the server, the same way.
ssh_run() {
	if [ -n "${TRD_PASSWORD:-}" ]; then
		HOME=$TRD_HOME DROPBEAR_PASSWORD=$TRD_PASSWORD "$TRD_DBCLIENT" -o StrictHostKeyChecking=yes \
			-o BatchMode=yes -p "$URL_PORT" -l "$URL_USER" "$URL_HOST" "$@"
	else
		HOME=$TRD_HOME "$TRD_DBCLIENT" -o StrictHostKeyChecking=yes -o BatchMode=yes -p "$URL_PORT" -l "$URL_USER" "$URL_HOST" "$@"
	fi
}

scp_remote() {
	case $URL_HOST in *:*) echo "$URL_USER@[$URL_HOST]:$1" ;; *) echo "$URL_USER@$URL_HOST:$1" ;; esac
}

# scp_fetch LOCAL / scp_store LOCAL, for the URL url_parse read, with TRD_HOSTKEY.
scp_fetch() {
	scp_trust "$URL_HOST" "$URL_PORT" "$URL_USER" "${TRD_HOSTKEY:-}" || return 1
	scp_run "$(scp_remote "$URL_PATH")" "$1" || { warn "scp: could not fetch $URL_PATH from $URL_HOST"; return 1; }
	[ "$(file_size "$1")" -le "$TRD_BUNDLE_MAX" ] || { warn "scp: $URL_PATH is larger than $TRD_BUNDLE_MAX bytes: not a bundle"; return 1; }
}

# Upload beside the old bundle, then rename over it: a broken upload never replaces it.
scp_store() {
	scp_trust "$URL_HOST" "$URL_PORT" "$URL_USER" "${TRD_HOSTKEY:-}" || return 1
	scp_run "$1" "$(scp_remote "$URL_PATH.part")" || { warn "scp: could not send $URL_PATH.part to $URL_HOST"; return 1; }
	ssh_run mv -f "$URL_PATH.part" "$URL_PATH" </dev/null ||
		{ warn "scp: sent as $URL_PATH.part, but the server would not rename it to $URL_PATH (mv)"; return 1; }
}
