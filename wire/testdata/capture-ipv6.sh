#!/usr/bin/env bash
# capture-ipv6.sh OUTDIR — makes the Linux kernel send the IPv6 frames that
# wire/testdata/ipv6-golden.txt holds, and captures them with tcpdump into
# OUTDIR/link1.pcap (on A's link) and OUTDIR/link2.pcap (on B's link).
#
# It was run once, by hand, as root (Linux 6.18.44, Debian 12: iproute2 6.1,
# iputils 20221126, tcpdump 4.99.3, socat 1.7.4.4, radvd 2.19, nftables
# 1.0.6, python 3.11); the frames were then picked from the captures and
# written to ipv6-golden.txt with the tcpdump -nn -e -vv line of each. The
# tests do not run it: the bytes are committed. Everything it creates lives
# in namespaces named w6c<PID>-*, deleted on exit.
#
# Topology (all veth, one queue each, offloads off so that checksums are
# complete in the captures; documentation prefixes, RFC 3849):
#
#	A a0 2001:db8:1::1 02:00:00:00:01:01 ─┐
#	R r0 2001:db8:1::2 02:00:00:00:01:02 ─┼─ br1 (bridge in namespace L; link 1)
#	C c0 2001:db8:1::3 02:00:00:00:01:03 ─┘  C also holds 2001:db8:3::1
#	R r1 2001:db8:2::1 02:00:00:00:02:01 ─── b0 2001:db8:2::2 02:00:00:00:02:02 B (link 2, mtu 1280)
#
# R forwards and runs radvd on r0 (prefix 2001:db8:1::/64, MTU, RDNSS); A
# autoconfigures from it. R routes 2001:db8:3::/64 via C's link-local
# address on link 1, so A's packets to 2001:db8:3::1 make R send a redirect.
set -euo pipefail
OUT=${1:?usage: capture-ipv6.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
P=w6c$$
PY=/usr/bin/python3
pids=()
n() { local x=$1; shift; ip netns exec "$P-$x" "$@"; }
# Background processes are started with ip netns exec itself (which execs
# the program), so $! is the program's PID; radvd's forked child exits
# with its parent.
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 1
	for x in a r b c l; do ip netns del "$P-$x" 2>/dev/null; done
}
trap cleanup EXIT

for x in a r b c l; do ip netns add "$P-$x"; done
n l sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
n r sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.ip6frag_time=2
n a sysctl -qw net.ipv4.tcp_ecn=1
n l ip link add br1 type bridge stp_state 0
# veth NAME MAC NS PORT: a veth pair from NS:NAME to L:PORT on br1
veth() {
	ip link add "$1" numtxqueues 1 numrxqueues 1 netns "$P-$3" address "$2" type veth \
		peer name "$4" numtxqueues 1 numrxqueues 1 netns "$P-l"
	n l ip link set dev "$4" master br1 up
	n l ethtool -K "$4" tx off tso off gso off gro off >/dev/null
	n "$3" ethtool -K "$1" tx off tso off gso off gro off >/dev/null
}
veth a0 02:00:00:00:01:01 a la
veth r0 02:00:00:00:01:02 r lr
veth c0 02:00:00:00:01:03 c lc
n l ip link set dev br1 up
ip link add r1 numtxqueues 1 numrxqueues 1 netns "$P-r" address 02:00:00:00:02:01 mtu 1280 type veth \
	peer name b0 numtxqueues 1 numrxqueues 1 netns "$P-b" address 02:00:00:00:02:02 mtu 1280
n r ethtool -K r1 tx off tso off gso off gro off >/dev/null
n b ethtool -K b0 tx off tso off gso off gro off >/dev/null
for x in a r b c; do n $x ip link set dev lo up; done
n r ip link set dev r0 up
n r ip link set dev r1 up
n b ip link set dev b0 up
n c ip link set dev c0 up
n r ip addr add 2001:db8:1::2/64 dev r0 nodad
n r ip addr add 2001:db8:2::1/64 dev r1 nodad
n b ip addr add 2001:db8:2::2/64 dev b0 nodad
n c ip addr add 2001:db8:1::3/64 dev c0 nodad
n c ip addr add 2001:db8:3::1/64 dev c0 nodad
n b ip -6 route add default via 2001:db8:2::1
sleep 3 # link-local DAD on R, B, C
n r ip -6 route add 2001:db8:3::/64 via fe80::ff:fe00:103 dev r0

cat >"$OUT/radvd.conf" <<'RA'
interface r0 {
	AdvSendAdvert on;
	MinRtrAdvInterval 30;
	MaxRtrAdvInterval 100;
	AdvLinkMTU 1500;
	AdvCurHopLimit 64;
	AdvDefaultLifetime 1800;
	prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; AdvValidLifetime 86400; AdvPreferredLifetime 14400; };
	RDNSS 2001:db8:1::53 { AdvRDNSSLifetime 600; };
};
RA
ip netns exec "$P-r" radvd -n -C "$OUT/radvd.conf" -p "$OUT/radvd.pid" -m stderr 2>"$OUT/radvd.log" &
pids+=($!)
sleep 2

ip netns exec "$P-l" tcpdump -i la -s 0 -U -w "$OUT/link1.pcap" 2>/dev/null &
pids+=($!)
ip netns exec "$P-b" tcpdump -i b0 -s 0 -U -w "$OUT/link2.pcap" 2>/dev/null &
pids+=($!)
sleep 2

# Link up: MLDv2 reports, DAD with a nonce (RFC 7527), router solicitation;
# radvd answers; A autoconfigures an address from the prefix.
n a ip link set dev a0 up
n a ip addr add 2001:db8:1::1/64 dev a0
sleep 5

# Neighbour discovery and echo.
n a ip -6 neigh flush dev a0
n a ping -6 -c1 -s 32 2001:db8:1::2 >/dev/null
# Traffic class (DSCP 0x2e, ECT(1)) and a flow label.
n a ping -6 -c1 -s 8 -Q 0xb9 -F 0x12345 2001:db8:1::2 >/dev/null || true
# Fragments: 3008-byte ICMPv6 message in 1448-byte fragments, both ways.
n a ping -6 -c1 -s 3000 2001:db8:1::2 >/dev/null
# Time exceeded (hop limit 1 through R); packet too big (link 2 has mtu 1280).
n a ping -6 -c1 -s 16 -t 1 2001:db8:2::2 >/dev/null || true
n a ping -6 -c1 -s 1400 -M do 2001:db8:2::2 >/dev/null || true
# Port unreachable from B through R.
printf hello | n a socat -u - 'UDP6:[2001:db8:2::2]:9999,sourceport=40000' || true
sleep 1
# Address unreachable: R's neighbour solicitations for ::99 go unanswered.
n a ping -6 -c1 -W 6 2001:db8:2::99 >/dev/null || true
# No route: R has no route to 2001:db8:99::/64.
n a ping -6 -c1 -W 2 2001:db8:99::1 >/dev/null || true
# Redirect: R forwards to C on the link the packet came from. (R limits
# redirects to A with the same per-host token bucket as its ICMPv6 errors,
# which the errors above emptied: wait for it to refill.)
sleep 6
n a ping -6 -c1 -s 8 2001:db8:3::1 >/dev/null || true
sleep 1

# TCP over IPv6 with ECN negotiated (A has tcp_ecn=1): SYN, SYN-ACK, ACK,
# data (ECT(0) in the traffic class), FIN.
ip netns exec "$P-r" socat -u TCP6-LISTEN:5001,reuseaddr OPEN:/dev/null,creat=0 &
pids+=($!)
sleep 1
n a $PY - <<'PYEOF'
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.bind(("2001:db8:1::1", 40001))
s.connect(("2001:db8:1::2", 5001))
s.send(b"A" * 100)
time.sleep(0.3)
s.shutdown(socket.SHUT_WR)
time.sleep(0.3)
s.close()
PYEOF
sleep 1

# Extension headers the kernel writes from sticky options (RFC 3542):
# option types from RFC 4727's experimental range, one per action of
# RFC 8200 §4.2 (0x1e skip, 0x5e discard, 0x9e discard + ICMP, 0xde
# discard + ICMP unless multicast). UDP to port 9 on R (closed).
n a $PY - <<'PYEOF'
import socket, time
IPV6_HOPOPTS, IPV6_DSTOPTS = 54, 59
def send(opt, hdr, data=b"x"):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, opt, hdr)
    s.sendto(data, ("2001:db8:1::2", 9))
    s.close()
    time.sleep(0.3)
# Destination options: skip-type 0x1e (2 bytes of data), PadN(0): R skips it, port unreachable.
send(IPV6_DSTOPTS, bytes([0, 0, 0x1e, 2, 0xaa, 0xbb, 1, 0]))
# Destination options: 0x9e (length 4): parameter problem, unrecognized option.
send(IPV6_DSTOPTS, bytes([0, 0, 0x9e, 4, 1, 2, 3, 4]))
# Hop-by-hop: PadN(2) then 0xde (length 0): parameter problem (R is unicast).
send(IPV6_HOPOPTS, bytes([0, 0, 1, 2, 0, 0, 0xde, 0]))
# Hop-by-hop: 0x5e: silently discarded.
send(IPV6_HOPOPTS, bytes([0, 0, 0x5e, 4, 0, 0, 0, 0]))
# A 16-byte destination options header: Pad1, then a 0x1e option of 11 bytes.
send(IPV6_DSTOPTS, bytes([0, 1, 0, 0x1e, 11]) + bytes(range(11)))
# Unknown next header 253 (RFC 3692 experiment): parameter problem code 1.
r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 253)
r.sendto(b"experiment", ("2001:db8:1::2", 0))
time.sleep(0.3)
PYEOF
sleep 1

# MLD queries from R (the kernel has no querier, so R sends the ICMPv6 body
# from a raw socket; the kernel adds the IPv6 and hop-by-hop headers and
# the checksum): an MLDv2 general query (max response 1000 ms, QRV 2, QQIC
# 125), then an MLDv1 general query. A answers with MLDv2 reports, then,
# in MLDv1 compatibility mode (RFC 3810 §8.2.1), with MLDv1 reports.
n r $PY - <<'PYEOF'
import socket, struct, time
IPV6_HOPOPTS = 54
idx = socket.if_nametoindex("r0")
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, IPV6_HOPOPTS, bytes([0, 0, 5, 2, 0, 0, 1, 0]))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
s.bind(("fe80::ff:fe00:102", 0, 0, idx))
v2 = struct.pack("!BBHHH16sBBH", 130, 0, 0, 1000, 0, bytes(16), 2, 125, 0)
s.sendto(v2, ("ff02::1", 0, 0, idx))
time.sleep(2)
v1 = struct.pack("!BBHHH16s", 130, 0, 0, 1000, 0, bytes(16))
s.sendto(v1, ("ff02::1", 0, 0, idx))
time.sleep(2)
PYEOF

# Reassembly timeout: R drops every fragment but the first, and after
# ip6frag_time (2 s) sends time exceeded, code 1.
n r nft add table ip6 w6c
n r nft add chain ip6 w6c pre '{ type filter hook prerouting priority -450; }'
n r nft add rule ip6 w6c pre frag frag-off != 0 drop
n a ping -6 -c1 -s 2000 -W 1 2001:db8:1::2 >/dev/null || true
sleep 4
echo "captures in $OUT"
