# bundle.sh: seal and open the encrypted relay state (torrc and keys/), the same bytes the
# host side (pipeline/bundle/format.ts) reads and writes:
#
#   "TRDBUN01" | PBKDF2 iterations, uint32 BE | "Salted__" | salt (8) | AES-256-CTR(tar) | HMAC-SHA256
#
# key||iv = PBKDF2-HMAC-SHA256(passphrase, salt, iterations, 48), as `openssl enc -pbkdf2` derives
# them; macKey = SHA-256(key||iv||"tor-ramdisk bundle mac v1"); the HMAC covers every byte
# before it. bundle-crypt (configs/openssl/bundle-crypt.c) does the KDF and the cipher. The
# passphrase reaches it on fd 3 (a here-document: a pipe, never a file and never argv); keys
# come back on its stdout and stay in shell variables.

: "${TRD_ITER:=600000}"
: "${TRD_ITER_MIN:=100000}"
: "${TRD_ITER_MAX:=10000000}"
: "${TRD_BUNDLE_MAX:=1048576}"

BUNDLE_MAGIC_HEX=54524442554e3031
BUNDLE_SALTED_HEX=53616c7465645f5f

# bundle_crypt ARGS…: bundle-crypt with the passphrase on fd 3.
bundle_crypt() {
	"$TRD_BUNDLE_CRYPT" "$@" 3<<EOF
$TRD_PASSPHRASE
EOF
}

# passphrase_ok: bundle-crypt reads one line of at most 1023 bytes from fd 3 (as openssl's -pass fd: does).
passphrase_ok() {
	[ -n "${TRD_PASSPHRASE:-}" ] || { warn "the passphrase is empty"; return 1; }
	[ "$(printf '%s' "$TRD_PASSPHRASE" | wc -c)" -le 1023 ] || { warn "the passphrase is longer than 1023 bytes"; return 1; }
}

# bundle_keys SALTHEX ITER: BUNDLE_KEY, BUNDLE_IV and BUNDLE_MACKEY (hex) for this salt.
bundle_keys() {
	_bk=$(bundle_crypt derive "$2" "$1") || { warn "bundle-crypt could not derive the keys"; return 1; }
	BUNDLE_KEY='' BUNDLE_IV=''
	while IFS='=' read -r _bk_name _bk_value; do
		case $_bk_name in
		key) BUNDLE_KEY=$_bk_value ;;
		iv) BUNDLE_IV=$_bk_value ;;
		esac
	done <<EOF
$_bk
EOF
	_bk=''
	[ ${#BUNDLE_KEY} -eq 64 ] && [ ${#BUNDLE_IV} -eq 32 ] && hex_valid "$BUNDLE_KEY$BUNDLE_IV" ||
		{ warn "bundle-crypt printed no key and iv"; return 1; }
	BUNDLE_MACKEY=$({
		printf "$(hex_escapes "$BUNDLE_KEY$BUNDLE_IV")"
		printf '%s' 'tor-ramdisk bundle mac v1'
	} | sha256_hex)
}

bundle_forget() { BUNDLE_KEY='' BUNDLE_IV='' BUNDLE_MACKEY=''; }
BUNDLE_NAME=''

uint32_escapes() {
	octal_escape $(($1 >> 24 & 255))
	octal_escape $(($1 >> 16 & 255))
	octal_escape $(($1 >> 8 & 255))
	octal_escape $(($1 & 255))
}

# bundle_seal OUT: the current torrc and keys/ as a bundle at OUT.
bundle_seal() {
	passphrase_ok || return 1
	[ "$TRD_ITER" -ge "$TRD_ITER_MIN" ] || { warn "refusing to seal with $TRD_ITER PBKDF2 iterations (minimum $TRD_ITER_MIN)"; return 1; }
	_bs=$(private_dir trd-seal) || return 1
	bundle_seal_in "$_bs" "$1"
	_bs_rc=$?
	rm -rf "$_bs"
	bundle_forget
	return $_bs_rc
}

bundle_seal_in() {
	state_collect "$1/state" && (cd "$1/state" && tar -cf "$1/plain.tar" torrc keys) || return 1
	bundle_crypt seal "$TRD_ITER" "$1/plain.tar" "$1/enc" || { warn "bundle-crypt could not encrypt"; return 1; }
	# The format has an 8-byte salt: make sure it was one.
	[ "$(bytes_hex "$1/enc" 0 8)" = "$BUNDLE_SALTED_HEX" ] &&
		[ "$(file_size "$1/enc")" -eq $(($(file_size "$1/plain.tar") + 16)) ] ||
		{ warn "bundle-crypt did not write Salted__ and an 8-byte salt"; return 1; }
	rm -f "$1/plain.tar"
	bundle_keys "$(bytes_hex "$1/enc" 8 8)" "$TRD_ITER" || return 1
	{
		printf 'TRDBUN01'
		printf "$(uint32_escapes "$TRD_ITER")"
		cat "$1/enc"
	} >"$1/body" || return 1
	_bs_mac=$(hmac_sha256 "$BUNDLE_MACKEY" <"$1/body") || return 1
	{
		cat "$1/body"
		printf "$(hex_escapes "$_bs_mac")"
	} >"$2.tmp" && mv -f "$2.tmp" "$2"
}

# bundle_open FILE [NAME [READY]]: verify the whole bundle, decrypt it, check every member, and
# only then replace the current state. On any refusal the current state is left as it was.
# NAME (where it came from) is what the messages call it; READY, a command, runs once every
# check has passed, just before the swap, and nothing is swapped in unless it succeeds.
bundle_open() {
	passphrase_ok || return 1
	BUNDLE_NAME=${2:-$1}
	bundle_verify "$1" || { BUNDLE_NAME=''; return 1; }
	_bo=$( (umask 077 && mktemp -d "$TRD_DATADIR/.trd-import.XXXXXX")) || return 1
	bundle_open_in "$1" "$_bo" "${3:-}"
	_bo_rc=$?
	rm -rf "$_bo"
	bundle_forget
	BUNDLE_NAME=''
	return $_bo_rc
}

# bundle_verify FILE: header checks, then the HMAC over everything before it. Sets BUNDLE_ITER.
bundle_verify() {
	: "${BUNDLE_NAME:=$1}"
	_bv_size=$(file_size "$1") || return 1
	[ "$_bv_size" -ge 60 ] || { warn "refused: $BUNDLE_NAME is too short to be a bundle ($_bv_size bytes): truncated?"; return 1; }
	[ "$_bv_size" -le "$TRD_BUNDLE_MAX" ] || { warn "refused: $BUNDLE_NAME is larger than $TRD_BUNDLE_MAX bytes: not a bundle"; return 1; }
	[ "$(bytes_hex "$1" 0 8)" = "$BUNDLE_MAGIC_HEX" ] || { warn "refused: $BUNDLE_NAME is not a tor-ramdisk bundle (no TRDBUN01 header)"; return 1; }
	[ "$(bytes_hex "$1" 12 8)" = "$BUNDLE_SALTED_HEX" ] || { warn "refused: $BUNDLE_NAME has a malformed header (no Salted__)"; return 1; }
	BUNDLE_ITER=$((0x$(bytes_hex "$1" 8 4)))
	[ "$BUNDLE_ITER" -ge "$TRD_ITER_MIN" ] || { warn "refused: $BUNDLE_NAME asks for only $BUNDLE_ITER PBKDF2 iterations (minimum $TRD_ITER_MIN)"; return 1; }
	[ "$BUNDLE_ITER" -le "$TRD_ITER_MAX" ] || { warn "refused: $BUNDLE_NAME asks for $BUNDLE_ITER PBKDF2 iterations (maximum $TRD_ITER_MAX)"; return 1; }
	bundle_keys "$(bytes_hex "$1" 20 8)" "$BUNDLE_ITER" || return 1
	_bv_want=$(bytes_hex "$1" $((_bv_size - 32)) 32)
	_bv_got=$(head -c $((_bv_size - 32)) "$1" | hmac_sha256 "$BUNDLE_MACKEY") || return 1
	[ "$_bv_got" = "$_bv_want" ] && return 0
	bundle_forget
	warn "refused: $BUNDLE_NAME failed authentication: wrong passphrase, or the file was altered or truncated. Nothing was decrypted; the current state is unchanged."
	return 1
}

bundle_open_in() {
	head -c $((_bv_size - 32)) "$1" | tail -c +13 >"$2/enc" || return 1
	bundle_crypt open "$BUNDLE_ITER" "$2/enc" "$2/plain.tar" || { warn "refused: bundle-crypt could not decrypt $BUNDLE_NAME"; return 1; }
	tar_check "$2/plain.tar" || { warn "refused: $BUNDLE_NAME holds an archive that is not a tor-ramdisk state; the current state is unchanged."; return 1; }
	mkdir "$2/new" && tar -xf "$2/plain.tar" -C "$2/new" 2>/dev/null || { warn "refused: tar could not unpack $BUNDLE_NAME"; return 1; }
	rm -f "$2/plain.tar" "$2/enc"
	state_check "$2/new" || { warn "refused: $BUNDLE_NAME; the current state is unchanged."; return 1; }
	[ -z "$3" ] || "$3" || { warn "not imported: $BUNDLE_NAME; the current state is unchanged."; return 1; }
	state_install "$2/new"
}
