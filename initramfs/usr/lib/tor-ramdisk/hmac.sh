# hmac.sh: bytes as hex, and HMAC-SHA256 computed by the shell around sha256sum.
# A tool given the key as an argument (`openssl dgst -mac HMAC -macopt hexkey:KEY`) would put it
# in that process's argv (readable in /proc/PID/cmdline). Here the key only passes through builtins (arithmetic,
# printf) into sha256sum's standard input: no process is ever given it as an argument.

# bytes_hex FILE OFFSET COUNT: lowercase hex of COUNT bytes at OFFSET.
bytes_hex() {
	xxd -p -s "$2" -l "$3" "$1" | tr -d '\n'
}

# sha256_hex: the SHA-256 of standard input, in hex.
sha256_hex() {
	sha256sum | {
		read -r _sh_hex _sh_rest
		printf '%s\n' "$_sh_hex"
	}
}

# hex_valid HEX: an even number of hex digits.
hex_valid() {
	case $1 in *[!0-9a-fA-F]*) return 1 ;; esac
	[ $((${#1} % 2)) -eq 0 ]
}

# octal_escape N: the printf escape for byte N (0..255), made without a subshell.
octal_escape() {
	printf '%s' "\\$(($1 / 64))$(($1 / 8 % 8))$(($1 % 8))"
}

# hex_escapes HEX: the bytes of HEX as printf escapes ("\ooo\ooo…").
hex_escapes() {
	_hx=$1
	while [ -n "$_hx" ]; do
		octal_escape $((0x${_hx%"${_hx#??}"}))
		_hx=${_hx#??}
	done
}

# pad_xor KEYHEX PAD: the 64-byte HMAC block (KEY, zero-padded) XOR PAD, as printf escapes.
pad_xor() {
	_px=$1
	_px_n=0
	while [ $_px_n -lt 64 ]; do
		_px_b=0
		if [ -n "$_px" ]; then
			_px_b=$((0x${_px%"${_px#??}"}))
			_px=${_px#??}
		fi
		octal_escape $((_px_b ^ $2))
		_px_n=$((_px_n + 1))
	done
}

# hmac_sha256 KEYHEX: HMAC-SHA256(KEY, standard input) in hex.
# H((K ^ opad) || H((K ^ ipad) || message)), ipad = 0x36, opad = 0x5c, K padded to 64 bytes.
hmac_sha256() {
	hex_valid "$1" || { warn "hmac: the key is not hex"; return 1; }
	_hm_key=$1
	[ ${#_hm_key} -le 128 ] || _hm_key=$(printf "$(hex_escapes "$_hm_key")" | sha256_hex)
	_hm_inner=$({
		printf "$(pad_xor "$_hm_key" 54)"
		cat
	} | sha256_hex) || return 1
	_hm_outer=$({
		printf "$(pad_xor "$_hm_key" 92)"
		printf "$(hex_escapes "$_hm_inner")"
	} | sha256_hex)
	_hm_rc=$?
	_hm_key=''
	printf '%s\n' "$_hm_outer"
	return $_hm_rc
}
