# net.sh: IPv4 (DHCP or static), IPv6 (SLAAC or static) and DNS, with busybox ip and udhcpc.

: "${TRD_RESOLV:=/etc/resolv.conf}"
: "${TRD_UDHCPC_SCRIPT:=/usr/share/udhcpc/default.script}"

# net_ifaces: every interface but loopback.
net_ifaces() {
	for _ni in /sys/class/net/*; do
		[ "${_ni##*/}" = lo ] || [ ! -e "$_ni" ] || echo "${_ni##*/}"
	done
}

net_iface() {
	if [ -n "${CMD_IFACE:-}" ]; then echo "$CMD_IFACE"; else net_ifaces | head -n 1; fi
}

# net_dhcp IFACE: a lease, or failure after a few tries; udhcpc then stays in the
# background to renew it (it logs nothing: the image's busybox has no syslog).
net_dhcp() {
	net_stop_dhcp "$1"
	ip link set "$1" up || return 1
	udhcpc -i "$1" -n -t 5 -T 3 -p "/run/udhcpc.$1.pid" -s "$TRD_UDHCPC_SCRIPT" >/dev/null 2>&1 ||
		{ warn "no DHCP lease on $1"; return 1; }
	say "$1: $(net_addr4 "$1")"
}

net_stop_dhcp() {
	[ -r "/run/udhcpc.$1.pid" ] || return 0
	read -r _nsd <"/run/udhcpc.$1.pid" && is_uint "$_nsd" && kill "$_nsd" 2>/dev/null
	rm -f "/run/udhcpc.$1.pid"
}

net_addr4() { ip -4 -o addr show dev "$1" | awk '{ print $4; exit }'; }

# net_static4 IFACE ADDR/PREFIX GATEWAY
net_static4() {
	valid_cidr4 "$2" || { warn "\"$2\" is not ADDR/PREFIX (e.g. 192.0.2.10/24)"; return 1; }
	valid_ipv4 "$3" || { warn "gateway \"$3\" is not an IPv4 address"; return 1; }
	net_stop_dhcp "$1"
	ip link set "$1" up && ip -4 addr flush dev "$1" && ip -4 addr add "$2" dev "$1" &&
		ip -4 route replace default via "$3" dev "$1" || { warn "could not configure $1"; return 1; }
	say "$1: $2 via $3"
}

# net_slaac IFACE: addresses and route from router advertisements; a stable address
# (no temporary ones: a relay's address is public anyway).
net_slaac() {
	_ns=/proc/sys/net/ipv6/conf/$1
	[ -d "$_ns" ] || { warn "no IPv6 on $1"; return 1; }
	echo 1 >"$_ns/accept_ra" && echo 1 >"$_ns/autoconf" && echo 0 >"$_ns/use_tempaddr" 2>/dev/null
	ip link set "$1" down && ip link set "$1" up || return 1
	say "$1: IPv6 autoconfiguration on; addresses appear when a router advertises"
}

# net_static6 IFACE ADDR/PREFIX GATEWAY
net_static6() {
	valid_cidr6 "$2" || { warn "\"$2\" is not an IPv6 ADDR/PREFIX"; return 1; }
	valid_ipv6 "$3" || { warn "gateway \"$3\" is not an IPv6 address"; return 1; }
	_ns=/proc/sys/net/ipv6/conf/$1
	[ ! -d "$_ns" ] || { echo 0 >"$_ns/accept_ra"; echo 0 >"$_ns/autoconf"; }
	ip link set "$1" up && ip -6 addr add "$2" dev "$1" && ip -6 route replace default via "$3" dev "$1" ||
		{ warn "could not configure IPv6 on $1"; return 1; }
	say "$1: $2 via $3"
}

# net_dns SERVER…: /etc/resolv.conf, replaced in one rename.
net_dns() {
	for _nd in "$@"; do
		valid_ipv4 "$_nd" || valid_ipv6 "$_nd" || { warn "DNS server \"$_nd\" is not an address"; return 1; }
	done
	for _nd in "$@"; do echo "nameserver $_nd"; done >"$TRD_RESOLV.new" && mv -f "$TRD_RESOLV.new" "$TRD_RESOLV"
}

net_show() {
	ip addr show
	echo
	ip -4 route show
	ip -6 route show 2>/dev/null
	echo
	cat "$TRD_RESOLV" 2>/dev/null || echo "no DNS servers"
}
