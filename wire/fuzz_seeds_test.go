package wire

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A fuzzSeed is one seed input with the reason it is in the corpus.
type fuzzSeed struct {
	name    string // file name under testdata/fuzz/<target>/
	comment string // what it exercises
	data    []byte
}

// fuzzSeeds holds every fuzz target's seeds, commented (net/netip's habit).
// The targets add them with f.Add; testdata/fuzz holds the same bytes in
// Go's corpus format and testdata/fuzz/README.md lists them, both generated
// from this table by "go test ./wire -run TestFuzzCorpus -update-corpus".
// The "linux-" seeds are the kernel captures of golden_test.go.
var fuzzSeeds = map[string][]fuzzSeed{
	"FuzzParseEthernet": {
		{"linux-arp-request", "untagged broadcast frame carrying an ARP request", goldenARPRequest},
		{"linux-arp-reply", "unicast frame carrying an ARP reply", goldenARPReply},
		{"linux-icmp-echo-request", "IPv4 without options, ICMP echo request", goldenEchoRequest},
		{"linux-icmp-echo-reply", "ICMP echo reply", goldenEchoReply},
		{"linux-ipv4-record-route-request", "IPv4 with IHL 15 (NOP + record route), echo request", goldenRecordRouteRequest},
		{"linux-ipv4-record-route-reply", "record route filled in and ended by EOL", goldenRecordRouteReply},
		{"linux-icmp-time-exceeded", "ICMP time exceeded quoting a whole echo request", goldenTimeExceeded},
		{"linux-icmp-frag-needed", "ICMP fragmentation needed, MTU 1000, 548 quoted bytes", goldenFragNeeded},
		{"linux-udp", "UDP datagram with a 5-byte payload", goldenUDP},
		{"linux-icmp-port-unreachable", "ICMP port unreachable quoting a UDP datagram", goldenPortUnreachable},
		{"linux-tcp-syn", "TCP SYN: mss, sackOK+TS, nop, wscale", goldenTCPSYN},
		{"linux-tcp-synack", "TCP SYN-ACK", goldenTCPSYNACK},
		{"linux-tcp-ack", "TCP pure ACK with timestamps", goldenTCPACK},
		{"linux-tcp-data", "TCP data segment, 100 bytes", goldenTCPData},
		{"linux-tcp-sack", "TCP ACK with one SACK block", goldenTCPSACK},
		{"linux-tcp-sack2", "TCP ACK with two SACK blocks", goldenTCPSACK2},
		{"linux-tcp-fin", "TCP FIN|ACK", goldenTCPFIN},
		{"linux-tcp-syn-nots", "TCP SYN without timestamps", goldenTCPSYNNoTS},
		{"linux-tcp-rstack", "TCP RST|ACK, no options", goldenTCPRSTACK},
		{"linux-tcp-rst", "TCP bare RST", goldenTCPRST},
		{"linux-ipv4-frag-first", "first IPv4 fragment (MF): a truncated ICMP message", goldenFragFirst},
		{"linux-ipv4-frag-last", "last IPv4 fragment (offset 48): no transport header", goldenFragLast},
		{"linux-vlan-arp", "802.1Q tag (VLAN 5) before an ARP request", goldenVLANARP},
		{"linux-vlan-echo", "802.1Q tag before IPv4", goldenVLANEcho},
		{"linux-qinq-echo", "802.1ad S-tag outside an 802.1Q C-tag (QinQ)", goldenQinQEcho},
		{"empty", "no bytes at all: ErrTruncated", []byte{}},
		{"short-13", "one byte short of a header", goldenEchoRequest[:13]},
		{"tag-without-type", "an 802.1Q TPID and TCI with no type after them", goldenVLANEcho[:16]},
		{"ipv4-padded", "a 40-byte RST padded to the 60-byte Ethernet minimum", append(slices.Clone(goldenTCPRST), 0, 0, 0, 0, 0, 0)},
		{"linux-ipv6-echo-request", "IPv6 without extension headers, ICMPv6 echo request", g6("echo-request")},
		{"linux-ipv6-mld-report", "IPv6 hop-by-hop header (Router Alert) before an MLDv2 report", g6("mld-report-linkup")},
		{"linux-ipv6-frag-first", "first IPv6 fragment", g6("frag-first")},
		{"linux-ipv6-tcp-syn", "TCP SYN over IPv6", g6("tcp-syn")},
		{"linux-ipv6-ra", "router advertisement with four options", g6("ra")},
		{"linux-ipv6-redirect", "redirect quoting a packet", g6("redirect")},
		{"linux-ipv6-dstopt-unknown", "destination option 0x9e: Walk asks for a parameter problem", g6("dstopt-unknown")},
		{"linux-ipv6-port-unreachable", "ICMPv6 error quoting a UDP datagram", g6("port-unreachable")},
	},
	"FuzzParseARP": {
		{"linux-request", "ARP request, target hardware address zero", mustL3(goldenARPRequest)},
		{"linux-reply", "ARP reply", mustL3(goldenARPReply)},
		{"linux-vlan-request", "ARP request sent on VLAN 5", mustL3(goldenVLANARP)},
		{"padded", "ARP with the 18 padding bytes of a minimum Ethernet frame", append(slices.Clone(mustL3(goldenARPRequest)), make([]byte, 18)...)},
		{"htype-ieee802", "hardware type 6: ErrUnsupported", edit(mustL3(goldenARPRequest), func(b []byte) { b[1] = 6 })},
		{"ptype-ipv6", "protocol type 0x86dd: ErrUnsupported", edit(mustL3(goldenARPRequest), func(b []byte) { b[2], b[3] = 0x86, 0xdd })},
		{"op-rarp", "operation 3 (RARP request): ErrBadHeader", edit(mustL3(goldenARPRequest), func(b []byte) { b[7] = 3 })},
		{"short-27", "one byte short: ErrTruncated", mustL3(goldenARPRequest)[:27]},
	},
	"FuzzParseIPv4": {
		{"linux-icmp-echo", "20-byte header, DF, ICMP", mustL3(goldenEchoRequest)},
		{"linux-record-route-request", "IHL 15 with NOP and record route", mustL3(goldenRecordRouteRequest)},
		{"linux-record-route-reply", "record route ended by EOL", mustL3(goldenRecordRouteReply)},
		{"linux-frag-first", "MF set, offset 0", mustL3(goldenFragFirst)},
		{"linux-frag-last", "offset 48, MF clear", mustL3(goldenFragLast)},
		{"linux-time-exceeded", "TOS 0xc0, ICMP error", mustL3(goldenTimeExceeded)},
		{"linux-frag-needed", "576-byte ICMP error", mustL3(goldenFragNeeded)},
		{"linux-udp", "UDP", mustL3(goldenUDP)},
		{"linux-tcp-syn", "TCP with options", mustL3(goldenTCPSYN)},
		{"linux-tcp-rst-padded", "total length 40 in 46 bytes (Ethernet padding)", append(slices.Clone(mustL3(goldenTCPRST)), 0, 0, 0, 0, 0, 0)},
		{"ihl-4", "IHL below 5: ErrBadHeader", edit(mustL3(goldenEchoRequest), func(b []byte) { b[0] = 0x44 })},
		{"version-6", "version 6: ErrBadHeader", edit(mustL3(goldenEchoRequest), func(b []byte) { b[0] = 0x65 })},
		{"total-length-short", "total length below the header: ErrBadHeader", edit(mustL3(goldenEchoRequest), func(b []byte) { b[2], b[3] = 0, 19 })},
		{"total-length-long", "total length past the buffer: ErrTruncated", edit(mustL3(goldenEchoRequest), func(b []byte) { b[3]++ })},
		{"reserved-flag", "the reserved (evil) bit set, which Encode drops", edit(mustL3(goldenEchoRequest), func(b []byte) { b[6] |= 0x80 })},
	},
	"FuzzParseICMPv4": {
		{"linux-echo-request", "echo request: ID and sequence number", mustL4(goldenEchoRequest)},
		{"linux-echo-reply", "echo reply", mustL4(goldenEchoReply)},
		{"linux-echo-8-bytes", "echo request with 8 data bytes, no timestamp", mustL4(goldenRecordRouteRequest)},
		{"linux-time-exceeded", "time exceeded: unused word, quoted header", mustL4(goldenTimeExceeded)},
		{"linux-frag-needed", "fragmentation needed: next-hop MTU, long quote", mustL4(goldenFragNeeded)},
		{"linux-port-unreachable", "port unreachable quoting UDP", mustL4(goldenPortUnreachable)},
		{"parameter-problem", "parameter problem, pointer 1 (built by Encode)", encodeICMP(ICMPv4Fields{Type: ICMPv4ParameterProblem, Pointer: 1, Payload: mustL3(goldenUDP)})},
		{"header-only", "8 bytes, no payload", mustL4(goldenEchoRequest)[:8]},
		{"short-7", "ErrTruncated", mustL4(goldenEchoRequest)[:7]},
		{"quote-ihl-15", "an error quoting a header that claims 60 bytes", edit(mustL4(goldenTimeExceeded), func(b []byte) { b[8] = 0x4f })},
	},
	"FuzzParseUDP": {
		{"linux-udp", "5-byte payload", mustL4(goldenUDP)},
		{"empty-payload", "length 8", edit(mustL4(goldenUDP)[:8], func(b []byte) { b[5] = 8 })},
		{"trailing", "length 13 in 16 bytes", append(slices.Clone(mustL4(goldenUDP)), 1, 2, 3)},
		{"length-7", "length below the header: ErrBadHeader", edit(mustL4(goldenUDP), func(b []byte) { b[5] = 7 })},
		{"length-14", "length past the buffer: ErrTruncated", edit(mustL4(goldenUDP), func(b []byte) { b[5] = 14 })},
	},
	"FuzzParseTCP": {
		{"linux-syn", "SYN: mss, sackOK+TS, nop, wscale", mustL4(goldenTCPSYN)},
		{"linux-synack", "SYN-ACK", mustL4(goldenTCPSYNACK)},
		{"linux-ack", "ACK: nop, nop, TS", mustL4(goldenTCPACK)},
		{"linux-data", "data segment", mustL4(goldenTCPData)},
		{"linux-sack", "one SACK block", mustL4(goldenTCPSACK)},
		{"linux-sack2", "two SACK blocks", mustL4(goldenTCPSACK2)},
		{"linux-fin", "FIN|ACK", mustL4(goldenTCPFIN)},
		{"linux-syn-nots", "SYN without timestamps: nop, nop, sackOK", mustL4(goldenTCPSYNNoTS)},
		{"linux-rstack", "RST|ACK, 20-byte header", mustL4(goldenTCPRSTACK)},
		{"linux-rst", "bare RST", mustL4(goldenTCPRST)},
		{"data-offset-4", "data offset below 5: ErrBadHeader", edit(mustL4(goldenTCPRST), func(b []byte) { b[12] = 0x40 })},
		{"data-offset-15", "data offset past the buffer: ErrTruncated", edit(mustL4(goldenTCPSYN), func(b []byte) { b[12] = 0xf0 })},
		{"option-length-0", "MSS with length 0: ErrBadOptions", edit(mustL4(goldenTCPSYN), func(b []byte) { b[21] = 0 })},
		{"four-sack-blocks", "the most SACK blocks a header holds, no timestamps", encodeTCP(TCPFields{Flags: TCPFlagACK, Options: TCPOptions{NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}})},
	},
	"FuzzParseIPv6": {
		{"linux-echo-request", "no extension headers, ICMPv6", mustL3(g6("echo-request"))},
		{"linux-echo-class-flow", "traffic class 0xb9 and a flow label", mustL3(g6("echo-class-flow"))},
		{"linux-mld-report", "hop-by-hop header with Router Alert and PadN", mustL3(g6("mld-report-linkup"))},
		{"linux-mld-query-v2", "hop-by-hop header, MLDv2 query", mustL3(g6("mld-query-v2"))},
		{"linux-frag-first", "first fragment: offset 0, M set", mustL3(g6("frag-first"))},
		{"linux-frag-last", "last fragment: offset 2896, M clear", mustL3(g6("frag-last"))},
		{"linux-tcp-syn", "TCP SYN", mustL3(g6("tcp-syn"))},
		{"linux-tcp-data", "TCP data, ECT(0)", mustL3(g6("tcp-data"))},
		{"linux-udp", "UDP", mustL3(g6("udp"))},
		{"linux-dstopt-skip", "destination option 0x1e (skip) and PadN", mustL3(g6("dstopt-skip"))},
		{"linux-dstopt-16", "16-byte destination header: Pad1, an 11-byte option", mustL3(g6("dstopt-16"))},
		{"linux-dstopt-unknown", "destination option 0x9e: parameter problem, code 2", mustL3(g6("dstopt-unknown"))},
		{"linux-hbh-unknown", "hop-by-hop option 0xde: parameter problem unless multicast", mustL3(g6("hbh-unknown"))},
		{"linux-hbh-discard", "hop-by-hop option 0x5e: silent discard", mustL3(g6("hbh-discard"))},
		{"linux-proto-253", "unknown next header", mustL3(g6("proto-253"))},
		{"linux-ra", "router advertisement", mustL3(g6("ra"))},
		{"linux-packet-too-big", "ICMPv6 error quoting 1232 bytes", mustL3(g6("packet-too-big"))},
		{"linux-padded", "a neighbour advertisement with 6 bytes of link padding after it", append(slices.Clone(mustL3(g6("na-unicast"))), make([]byte, 6)...)},
		{"version-4", "version 4: ErrBadHeader", edit(mustL3(g6("echo-request")), func(b []byte) { b[0] = 0x40 })},
		{"payload-length-long", "payload length past the buffer: ErrTruncated", edit(mustL3(g6("echo-request")), func(b []byte) { b[5]++ })},
		{"payload-length-0", "payload length 0 with a hop-by-hop header: the chain is truncated", edit(mustL3(g6("mld-report-linkup")), func(b []byte) { b[4], b[5] = 0, 0 })},
		{"short-39", "one byte short of a header: ErrTruncated", mustL3(g6("echo-request"))[:39]},
	},
	"FuzzIPv6Chain": {
		{"hbh-router-alert", "hop-by-hop with Router Alert, then ICMPv6", append([]byte{ProtoHopByHop, 1}, mustIPv6(g6("mld-report-linkup")).Payload()...)},
		{"dstopt-unknown-multicast", "option 0x9e to a multicast destination: ICMP anyway", append([]byte{ProtoDestOpts, 1}, mustIPv6(g6("dstopt-unknown")).Payload()...)},
		{"hbh-unknown-multicast", "option 0xde to a multicast destination: silent", append([]byte{ProtoHopByHop, 1}, mustIPv6(g6("hbh-unknown")).Payload()...)},
		{"frag-first", "first fragment and its ICMPv6 header", append([]byte{ProtoFragment, 0}, mustIPv6(g6("frag-first")).Payload()...)},
		{"frag-middle", "a middle fragment", append([]byte{ProtoFragment, 0}, mustIPv6(g6("frag-middle")).Payload()...)},
		{"routing-segments-left", "routing header with segments left: parameter problem, code 0", append([]byte{ProtoRouting, 0}, ext(ProtoTCP, 4, 2, 0, 0, 0, 0)...)},
		{"routing-done", "routing header with no segments left, then UDP", append([]byte{ProtoRouting, 0}, append(ext(ProtoUDP, 0, 0, 0, 0, 0, 0), udp8...)...)},
		{"hbh-second", "hop-by-hop after a destination header: code 1", append([]byte{ProtoDestOpts, 0}, append(ext(ProtoHopByHop, 1, 4, 0, 0, 0, 0), ext(ProtoUDP, 1, 4, 0, 0, 0, 0)...)...)},
		{"atomic-fragment", "atomic fragment, then UDP", append([]byte{ProtoFragment, 0}, append(frag(ProtoUDP, 0, false, 1), udp8...)...)},
		{"incomplete-chain", "first fragment cut in a TCP header: code 3", append([]byte{ProtoFragment, 0}, append(frag(ProtoTCP, 0, true, 1), make([]byte, 8)...)...)},
		{"frag-past-65535", "fragment ending past 65535: code 0 at its offset", append([]byte{ProtoFragment, 0}, append(frag(ProtoTCP, 65528, false, 1), make([]byte, 8)...)...)},
		{"frag-odd", "M set, 12 bytes of data: code 0 at the payload length", append([]byte{ProtoFragment, 0}, append(frag(ProtoTCP, 8, true, 1), make([]byte, 12)...)...)},
		{"ah", "authentication header ends the walk", append([]byte{ProtoDestOpts, 0}, append(ext(ProtoAH, 1, 4, 0, 0, 0, 0), make([]byte, 24)...)...)},
		{"chain-17", "17 destination headers: ErrTooManyHeaders", append([]byte{ProtoDestOpts, 0}, bytes.Repeat(ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0), 17)...)},
		{"padding-8", "8 bytes of padding in a row: ErrBadOptions", append([]byte{ProtoDestOpts, 0}, ext(ProtoUDP, 1, 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0)...)},
		{"options-9", "9 options in one header: ErrBadOptions", append([]byte{ProtoDestOpts, 0}, ext(ProtoUDP, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 1, 2, 0, 0)...)},
		{"no-next", "no next header, with bytes after it", []byte{ProtoNoNext, 0, 1, 2, 3}},
	},
	"FuzzIPv6ExtHeaders": {
		{"linux-hbh", "Linux's MLD hop-by-hop header, then ICMPv6", append([]byte{ProtoHopByHop}, mustIPv6(g6("mld-report-linkup")).Payload()...)},
		{"linux-dstopt-16", "a 16-byte destination options header, then UDP", append([]byte{ProtoDestOpts}, mustIPv6(g6("dstopt-16")).Payload()...)},
		{"linux-frag-first", "a first fragment's header and data", append([]byte{ProtoFragment}, mustIPv6(g6("frag-first")).Payload()...)},
		{"linux-frag-last", "a last fragment: the walk stops after its header", append([]byte{ProtoFragment}, mustIPv6(g6("frag-last")).Payload()...)},
		{"ah", "an authentication header (RFC 4302: 4-byte units, plus 2)", append([]byte{ProtoAH, ProtoTCP, 1}, make([]byte, 14)...)},
		{"routing", "a routing header with segments left", append([]byte{ProtoRouting}, ext(ProtoNoNext, 4, 1, 0, 0, 0, 0)...)},
		{"reserved-bits", "a fragment header with its reserved fields set", []byte{ProtoFragment, ProtoUDP, 0xff, 0x00, 0x0f, 0, 0, 0, 1}},
		{"chain-17", "17 headers: ErrTooManyHeaders", append([]byte{ProtoDestOpts}, bytes.Repeat(ext(ProtoDestOpts, 1, 4, 0, 0, 0, 0), 17)...)},
		{"truncated", "a header longer than the bytes", []byte{ProtoDestOpts, ProtoUDP, 3, 1, 0}},
	},
	"FuzzParseICMPv6": {
		{"linux-echo-request", "echo request", mustUpper(g6("echo-request"))},
		{"linux-echo-reply", "echo reply", mustUpper(g6("echo-reply"))},
		{"linux-time-exceeded", "time exceeded quoting a whole echo request", mustUpper(g6("time-exceeded"))},
		{"linux-packet-too-big", "packet too big, MTU 1280, 1232-byte quote", mustUpper(g6("packet-too-big"))},
		{"linux-port-unreachable", "port unreachable quoting UDP", mustUpper(g6("port-unreachable"))},
		{"linux-dstopt-skip-unreachable", "port unreachable quoting a destination header", mustUpper(g6("dstopt-skip-unreachable"))},
		{"linux-paramprob-option", "parameter problem, code 2, pointer 42", mustUpper(g6("paramprob-option"))},
		{"linux-paramprob-nexthdr", "parameter problem, code 1, pointer 6", mustUpper(g6("paramprob-nexthdr"))},
		{"linux-reassembly-timeout", "time exceeded quoting a first fragment", mustUpper(g6("reassembly-timeout"))},
		{"linux-ra", "router advertisement (NDP)", mustUpper(g6("ra"))},
		{"linux-mld-query-v2", "MLDv2 query", mustUpper(g6("mld-query-v2"))},
		{"linux-mld-report", "MLDv2 report", mustUpper(g6("mld-report-4"))},
		{"header-only", "8 bytes", mustUpper(g6("echo-request"))[:8]},
		{"short-7", "ErrTruncated", mustUpper(g6("echo-request"))[:7]},
		{"quote-version-4", "an error quoting an IPv4 header", edit(mustUpper(g6("time-exceeded")), func(b []byte) { b[8] = 0x45 })},
	},
	"FuzzParseNDP": {
		{"linux-ns-dad", "DAD neighbour solicitation with a nonce", mustUpper(g6("ns-dad"))},
		{"linux-rs", "router solicitation, source link-layer address", mustUpper(g6("rs"))},
		{"linux-ra", "router advertisement: prefix, RDNSS, MTU, link-layer address", mustUpper(g6("ra"))},
		{"linux-ns", "neighbour solicitation", mustUpper(g6("ns"))},
		{"linux-na", "neighbour advertisement, R S O, target link-layer address", mustUpper(g6("na"))},
		{"linux-na-unicast", "neighbour advertisement, S only, no options", mustUpper(g6("na-unicast"))},
		{"linux-redirect", "redirect with a redirected header", mustUpper(g6("redirect"))},
		{"code-1", "ICMP code 1: ErrBadHeader", edit(mustUpper(g6("ns")), func(b []byte) { b[1] = 1 })},
		{"option-length-0", "option of length 0: ErrBadOptions", edit(mustUpper(g6("ns")), func(b []byte) { b[25] = 0 })},
		{"short-ra", "router advertisement of 15 bytes: ErrTruncated", mustUpper(g6("ra"))[:15]},
		{"echo", "not NDP: ErrUnsupported", mustUpper(g6("echo-request"))},
	},
	"FuzzNDPOptions": {
		{"linux-ra", "prefix information, RDNSS, MTU, source link-layer address", mustUpper(g6("ra"))[NDPRouterAdvertLen:]},
		{"linux-redirect", "target link-layer address, redirected header", mustUpper(g6("redirect"))[NDPRedirectLen:]},
		{"linux-nonce", "nonce", mustUpper(g6("ns-dad"))[NDPNeighborSolicitLen:]},
		{"duplicates", "each single option twice: the first counts", []byte{1, 1, 2, 0, 0, 0, 0, 1, 1, 1, 2, 0, 0, 0, 0, 2, 5, 1, 0, 0, 0, 0, 5, 0xdc, 5, 1, 0, 0, 0, 0, 5, 0x78}},
		{"unknown", "an unknown option of 16 bytes", append([]byte{31, 2}, make([]byte, 14)...)},
		{"rdnss-even", "RDNSS of 4 units: ErrBadOptions", append([]byte{25, 4}, make([]byte, 30)...)},
		{"length-0", "length 0: ErrBadOptions", []byte{1, 0, 0, 0, 0, 0, 0, 0}},
		{"overrun", "past the end: ErrBadOptions", []byte{3, 4, 64, 0xc0}},
	},
	"FuzzParseMLD": {
		{"linux-query-v2", "MLDv2 general query", mustUpper(g6("mld-query-v2"))},
		{"linux-query-v1", "MLDv1 general query, 24 bytes", mustUpper(g6("mld-query-v1"))},
		{"linux-report-v1", "MLDv1 report", mustUpper(g6("mldv1-report"))},
		{"query-25", "a 25-byte query: ErrBadHeader", append(slices.Clone(mustUpper(g6("mld-query-v1"))), 0)},
		{"query-sources", "an MLDv2 query with one source missing: ErrTruncated", edit(mustUpper(g6("mld-query-v2")), func(b []byte) { b[27] = 1 })},
		{"query-exp", "exponential max response code and QQIC, S flag", edit(mustUpper(g6("mld-query-v2")), func(b []byte) { b[4], b[24], b[25] = 0xff, 0x0f, 0xff })},
	},
	"FuzzParseMLDv2Report": {
		{"linux-linkup", "two CHANGE_TO_EXCLUDE records", mustUpper(g6("mld-report-linkup"))},
		{"linux-current", "two MODE_IS_EXCLUDE records", mustUpper(g6("mld-report-current"))},
		{"linux-4", "four records", mustUpper(g6("mld-report-4"))},
		{"sources-aux", "records with sources and auxiliary data", encodeMLDv2Report(MLDv2ReportFields{Records: []MLDv2RecordFields{
			{Type: MLDAllowNewSources, Multicast: IPv6AllNodes, Sources: AppendIPv6Addrs(nil, ip6A, ip6B)},
			{Type: MLDBlockOldSources, Multicast: IPv6AllRouters, AuxData: []byte{1, 2, 3, 4}}}})},
		{"count-too-high", "one record more than present: ErrTruncated", edit(mustUpper(g6("mld-report-current")), func(b []byte) { b[7]++ })},
	},
	"FuzzTCPOptions": {
		{"linux-syn", "mss, sackOK+TS, nop, wscale", mustTCPOptions(goldenTCPSYN)},
		{"linux-syn-nots", "mss, nop, nop, sackOK, nop, wscale", mustTCPOptions(goldenTCPSYNNoTS)},
		{"linux-ts", "nop, nop, TS", mustTCPOptions(goldenTCPACK)},
		{"linux-sack", "nop, nop, TS, nop, nop, SACK(1)", mustTCPOptions(goldenTCPSACK)},
		{"linux-sack2", "nop, nop, TS, nop, nop, SACK(2)", mustTCPOptions(goldenTCPSACK2)},
		{"sack-4", "four SACK blocks, unpadded", append([]byte{5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...)},
		{"sack-twice", "a SACK option repeated: the second replaces the first", append(append([]byte{5, 18}, seqBytes(1, 2, 3, 4)...), append([]byte{5, 10}, seqBytes(9, 10)...)...)},
		{"sackperm-ws-sack4", "unpadded options whose SACK blocks do not all fit once padded", append([]byte{4, 2, 3, 3, 7, 5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...)},
		{"unknown-mptcp", "an unknown option (MPTCP, 30) skipped by length", []byte{30, 4, 0x01, 0x81, 2, 4, 5, 0xb4}},
		{"eol-garbage", "EOL then bytes that would be malformed", []byte{2, 4, 5, 0xb4, 0, 0xff, 0x01, 0xff}},
		{"length-0", "length 0: ErrBadOptions", []byte{2, 0, 5, 0xb4}},
		{"length-1", "length 1: ErrBadOptions", []byte{8, 1, 0, 0}},
		{"mss-overrun", "MSS running past the end: ErrBadOptions", []byte{1, 2, 4, 5}},
		{"ws-length-4", "window scale of length 4: ErrBadOptions", []byte{3, 4, 7, 0}},
		{"ts-length-8", "timestamps of length 8: ErrBadOptions", []byte{8, 8, 0, 0, 0, 0, 0, 0}},
		{"sack-length-11", "SACK not a multiple of 8 plus 2: ErrBadOptions", []byte{5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"kind-without-length", "a kind in the last byte: ErrBadOptions", []byte{1, 1, 1, 2}},
	},
}

// mustL3 returns the Ethernet payload of a golden frame; it panics on a bad
// frame, which can only come from an edit to golden_test.go.
func mustL3(frame []byte) []byte {
	e, err := ParseEthernet(frame)
	if err != nil {
		panic(err)
	}
	return e.Payload()
}

// mustTCPOptions returns the option bytes of a golden TCP frame.
func mustTCPOptions(frame []byte) []byte {
	s, err := ParseTCP(mustL4(frame))
	if err != nil {
		panic(err)
	}
	return s.Options()
}

// edit returns a copy of b changed by f.
func edit(b []byte, f func(b []byte)) []byte {
	b = slices.Clone(b)
	f(b)
	return b
}

func encodeICMP(f ICMPv4Fields) []byte {
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

func encodeMLDv2Report(f MLDv2ReportFields) []byte {
	b := make([]byte, f.Len())
	f.Encode(b, llA, IPv6AllMLDv2Routers)
	return b
}

func encodeTCP(f TCPFields) []byte {
	b := make([]byte, f.HeaderLen()+len(f.Payload))
	f.Encode(b)
	return b
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz from fuzzSeeds")

// corpusFile is the content of a Go fuzz corpus file holding one []byte.
func corpusFile(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}

// corpusReadme lists every seed file and what it exercises.
func corpusReadme() []byte {
	var b bytes.Buffer
	b.WriteString(`# Fuzz seed corpora of package wire

Each directory holds the seeds of one fuzz target in Go's corpus format
("go test fuzz v1"). Plain ` + "`go test ./wire`" + ` runs every file as a test case;
` + "`go test ./wire -fuzz FuzzParseTCP`" + ` (one target at a time) fuzzes from them.

Corpus files cannot hold comments, so this list says what each seed
exercises. The files and this README are generated from the commented table
` + "`fuzzSeeds`" + ` in ` + "`wire/fuzz_seeds_test.go`" + `, which the targets also pass to f.Add;
after editing the table run

    go test ./wire -run TestFuzzCorpus -update-corpus

and TestFuzzCorpus fails while they differ. Seeds named ` + "`linux-*`" + ` are frames
captured from Linux 6.18 in network namespaces (see ` + "`wire/golden_test.go`" + ` and
` + "`wire/testdata/ipv6-golden.txt`" + ` for how each was made); the rest are edits of
them or hand-made edge cases.
A failing input the fuzzer finds is written here under a hash name: add it
to the table with a comment (TestFuzzCorpus insists).
`)
	for _, target := range slices.Sorted(maps.Keys(fuzzSeeds)) {
		fmt.Fprintf(&b, "\n## %s\n\n| file | bytes | exercises |\n| --- | ---: | --- |\n", target)
		for _, s := range fuzzSeeds[target] {
			fmt.Fprintf(&b, "| `%s` | %d | %s |\n", s.name, len(s.data), s.comment)
		}
	}
	return b.Bytes()
}

// TestFuzzCorpus checks that testdata/fuzz holds exactly the seeds of
// fuzzSeeds and that README.md lists them; with -update-corpus it rewrites
// them.
func TestFuzzCorpus(t *testing.T) {
	root := filepath.Join("testdata", "fuzz")
	if *updateCorpus {
		for target, seeds := range fuzzSeeds {
			dir := filepath.Join(root, target)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, s := range seeds {
				if err := os.WriteFile(filepath.Join(dir, s.name), corpusFile(s.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(root, "README.md"), corpusReadme(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil || !bytes.Equal(readme, corpusReadme()) {
		t.Errorf("testdata/fuzz/README.md is stale (%v); run go test ./wire -run TestFuzzCorpus -update-corpus", err)
	}
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() {
			if _, ok := fuzzSeeds[d.Name()]; !ok {
				t.Errorf("testdata/fuzz/%s: no such target in fuzzSeeds", d.Name())
			}
		}
	}
	for target, seeds := range fuzzSeeds {
		dir := filepath.Join(root, target)
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Errorf("%s: %v", target, err)
			continue
		}
		want := map[string][]byte{}
		for _, s := range seeds {
			if _, dup := want[s.name]; dup || s.comment == "" || strings.ContainsAny(s.name, "/ ") {
				t.Errorf("%s/%s: duplicate, uncommented or badly named seed", target, s.name)
			}
			want[s.name] = corpusFile(s.data)
		}
		for _, f := range files {
			got, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				t.Error(err)
				continue
			}
			w, ok := want[f.Name()]
			if !ok {
				t.Errorf("%s/%s is not in fuzzSeeds: add it there with a comment", target, f.Name())
				continue
			}
			if !bytes.Equal(got, w) {
				t.Errorf("%s/%s differs from fuzzSeeds; run with -update-corpus", target, f.Name())
			}
			delete(want, f.Name())
		}
		for name := range want {
			t.Errorf("%s/%s is missing; run with -update-corpus", target, name)
		}
	}
}
