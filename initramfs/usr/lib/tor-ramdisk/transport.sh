# transport.sh: where bundles come from and go to (ftp:// or scp:// URLs), and the secrets
# that go with them. Secrets live in shell variables only: never in argv, never in a file
# of ours (fw_cfg files are QEMU's, read-only and root-only).

# url_parse URL: sets URL_PROTO URL_USER URL_HOST URL_PORT URL_PATH, or says why not.
# Form: ftp://[user@]host[:port]/path or scp://user@host[:port]/path; an IPv6 host in [].
url_parse() {
	URL_PROTO='' URL_USER='' URL_HOST='' URL_PORT='' URL_PATH=''
	case ${1:-} in
	ftp://*) URL_PROTO=ftp URL_PORT=21 ;;
	scp://*) URL_PROTO=scp URL_PORT=22 ;;
	*) warn "\"${1:-}\" is not an ftp:// or scp:// URL"; return 1 ;;
	esac
	_url_rest=${1#*://}
	case $_url_rest in */?*) ;; *) warn "\"$1\" names no file (…/path)"; return 1 ;; esac
	URL_PATH=${_url_rest#*/}
	url_authority "${_url_rest%%/*}" || return 1
	url_check "$1"
}

url_authority() {
	_url_hp=$1
	case $1 in *@*)
		URL_USER=${1%@*}
		_url_hp=${1##*@}
		case $URL_USER in *:*)
			warn "a password in the URL would be readable by anyone (argv, /proc/cmdline); it is asked for separately"
			return 1 ;;
		esac ;;
	esac
	case $_url_hp in
	\[*\]) URL_HOST=${_url_hp#\[}; URL_HOST=${URL_HOST%\]} ;;
	\[*\]:*) URL_HOST=${_url_hp#\[}; URL_HOST=${URL_HOST%%\]*}; URL_PORT=${_url_hp##*\]:} ;;
	*:*:*) warn "an IPv6 address in a URL goes in brackets: [$_url_hp]"; return 1 ;;
	*:*) URL_HOST=${_url_hp%:*}; URL_PORT=${_url_hp#*:} ;;
	*) URL_HOST=$_url_hp ;;
	esac
}

url_check() {
	[ -n "$URL_USER" ] || [ "$URL_PROTO" = scp ] || URL_USER=anonymous
	valid_user "$URL_USER" || { warn "\"$1\": bad or missing user name"; return 1; }
	valid_host "$URL_HOST" || { warn "\"$1\": bad host \"$URL_HOST\""; return 1; }
	valid_port "$URL_PORT" || { warn "\"$1\": bad port \"$URL_PORT\""; return 1; }
	valid_remote_path "$URL_PATH" || { warn "\"$1\": the path may use only letters, digits and ._/@+:~-"; return 1; }
}

# url_anonymous: the parsed URL is anonymous FTP, which has no password to ask for.
url_anonymous() { [ "$URL_PROTO" = ftp ] && [ "$URL_USER" = anonymous ]; }

# fwcfg_read NAME VAR: QEMU's -fw_cfg name=opt/tor-ramdisk/NAME,file=… into VAR (first line).
fwcfg_read() {
	[ -r "$TRD_FWCFG/$1/raw" ] || return 1
	IFS= read -r _fw_line <"$TRD_FWCFG/$1/raw" || [ -n "$_fw_line" ] || return 1
	eval "$2=\$_fw_line"
	_fw_line=''
}

# transport_get URL LOCAL / transport_put LOCAL URL, with TRD_PASSWORD (may be empty) and,
# for scp, TRD_HOSTKEY (SHA256:… as the operator knows it).
transport_get() {
	url_parse "$1" || return 1
	case $URL_PROTO in
	ftp) ftp_fetch "$2" ;;
	scp) scp_fetch "$2" ;;
	esac
}

transport_put() {
	url_parse "$2" || return 1
	case $URL_PROTO in
	ftp) ftp_store "$1" ;;
	scp) scp_store "$1" ;;
	esac
}
