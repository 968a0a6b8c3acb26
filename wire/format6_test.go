package wire

import "testing"

// The IPv6 String methods print what tcpdump -nn -vv prints for the same
// frames (the lines in testdata/ipv6-golden.txt), in the shape of the IPv4
// ones: fields after the addresses, no checksum status, and no decoding of
// quoted packets.
func TestString6(t *testing.T) {
	var cases []struct{ got, want string }
	add := func(got, want string) { cases = append(cases, struct{ got, want string }{got, want}) }
	ip := func(name string) string {
		var f IPv6Fields
		f.Decode(mustIPv6(g6(name)))
		return f.String()
	}
	icmp := func(name string) string {
		var f ICMPv6Fields
		f.Decode(ICMPv6(mustUpper(g6(name))))
		return f.String()
	}
	ndp := func(name string) string {
		var f NDPFields
		f.Decode(NDP(mustUpper(g6(name))))
		return f.String()
	}
	mld := func(name string) string {
		var f MLDFields
		f.Decode(MLD(mustUpper(g6(name))))
		return f.String()
	}
	add(ip("echo-class-flow"), "2001:db8:1::ff:fe00:101 > 2001:db8:1::2: class 0xb9, flowlabel 0x12345, hlim 64, next-header ICMPv6 (58), payload length 16")
	add(ip("mld-report-linkup"), ":: > ff02::16: class 0x0, flowlabel 0x0, hlim 1, next-header Options (0), payload length 56")
	add(ip("frag-first"), "2001:db8:1::ff:fe00:101 > 2001:db8:1::2: class 0x0, flowlabel 0x5b1e5, hlim 64, next-header Fragment (44), payload length 1456")
	add(ip("dstopt-skip"), "2001:db8:1::ff:fe00:101 > 2001:db8:1::2: class 0x0, flowlabel 0xda5c1, hlim 64, next-header DstOpts (60), payload length 17")
	add(ip("proto-253"), "2001:db8:1::ff:fe00:101 > 2001:db8:1::2: class 0x0, flowlabel 0xe8db4, hlim 64, next-header unknown (253), payload length 10")
	for nh, name := range map[uint8]string{ProtoTCP: "TCP", ProtoUDP: "UDP", ProtoRouting: "Routing", ProtoESP: "ESP", ProtoAH: "AH", ProtoNoNext: "NoNext"} {
		if got := nextHeaderName(nh); got != name {
			t.Errorf("nextHeaderName(%d) = %q", nh, got)
		}
	}

	add(icmp("echo-request"), "ICMP6, echo request, id 1650, seq 1, length 40")
	add(icmp("echo-reply"), "ICMP6, echo reply, id 1650, seq 1, length 40")
	add(icmp("packet-too-big"), "ICMP6, packet too big, mtu 1280, length 1240")
	add(icmp("time-exceeded"), "ICMP6, time exceeded in-transit, length 72")
	add(icmp("reassembly-timeout"), "ICMP6, time exceeded in-transit (reassembly), length 1240")
	// tcpdump adds the address and port it finds in the quote.
	add(icmp("port-unreachable"), "ICMP6, destination unreachable, unreachable port, length 61")
	add(icmp("addr-unreachable"), "ICMP6, destination unreachable, unreachable address, length 112")
	add(icmp("no-route"), "ICMP6, destination unreachable, unreachable route, length 112")
	add(icmp("paramprob-option"), "ICMP6, parameter problem, option - octet 42, length 65")
	add(icmp("paramprob-nexthdr"), "ICMP6, parameter problem, next header - octet 6, length 58")
	for _, tc := range []struct {
		f    ICMPv6Fields
		want string
	}{
		{ICMPv6Fields{Type: ICMPv6ParameterProblem, Code: ICMPv6ErroneousHeader, Pointer: 4}, "ICMP6, parameter problem, header - octet 4, length 8"},
		{ICMPv6Fields{Type: ICMPv6ParameterProblem, Code: ICMPv6IncompleteChain}, "ICMP6, parameter problem, incomplete chain - octet 0, length 8"},
		{ICMPv6Fields{Type: ICMPv6ParameterProblem, Code: 9}, "ICMP6, parameter problem, length 8"},
		{ICMPv6Fields{Type: ICMPv6DestUnreachable, Code: ICMPv6AdminProhibited}, "ICMP6, destination unreachable, unreachable prohibited, length 8"},
		{ICMPv6Fields{Type: ICMPv6DestUnreachable, Code: 7}, "ICMP6, destination unreachable, length 8"},
		{ICMPv6Fields{Type: 100, Code: 3}, "ICMP6, type 100 code 3, length 8"},
		{ICMPv6Fields{Type: ICMPv6MLDv2Report}, "ICMP6, multicast listener report v2, length 8"},
	} {
		add(tc.f.String(), tc.want)
	}

	add(ndp("ns"), "ICMP6, neighbor solicitation, who has 2001:db8:1::2, length 32")
	add(ndp("na"), "ICMP6, neighbor advertisement, tgt is 2001:db8:1::2, Flags [router, solicited, override], length 32")
	add(ndp("na-unicast"), "ICMP6, neighbor advertisement, tgt is fe80::ff:fe00:101, Flags [solicited], length 24")
	add(ndp("rs"), "ICMP6, router solicitation, length 16")
	add(ndp("ra"), "ICMP6, router advertisement, hop limit 64, Flags 0x00, router lifetime 1800s, reachable time 0ms, retrans timer 0ms, length 88")
	add(ndp("redirect"), "ICMP6, redirect, 2001:db8:3::1 to fe80::ff:fe00:103, length 112")
	na := NDPFields{Type: ICMPv6NeighborAdvert, Target: llA}
	add(na.String(), "ICMP6, neighbor advertisement, tgt is fe80::ff:fe00:101, Flags [none], length 24")
	ra := NDPFields{Type: ICMPv6RouterAdvert, RAFlags: NDPRAManaged | NDPRAOther}
	add(ra.String(), "ICMP6, router advertisement, hop limit 0, Flags 0xc0, router lifetime 0s, reachable time 0ms, retrans timer 0ms, length 16")

	add(mld("mld-query-v2"), "ICMP6, multicast listener query v2, max resp delay 1000ms, addr ::, qrv 2, qqi 125s, 0 source(s), length 28")
	add(mld("mld-query-v1"), "ICMP6, multicast listener query, max resp delay 1000ms, addr ::, length 24")
	add(mld("mldv1-report"), "ICMP6, multicast listener report, max resp delay 0ms, addr ff02::1:ff00:101, length 24")
	q := MLDFields{Type: ICMPv6MLDQuery, V2: true, SuppressRouterProcessing: true, MaxRespCode: 0x8001, Multicast: mustAddr6("ff05::2"), QQIC: 0x81, Sources: AppendIPv6Addrs(nil, ip6A)}
	done := MLDFields{Type: ICMPv6MLDv1Done, Multicast: mustAddr6("ff02::1:ff00:1")}
	add(done.String(), "ICMP6, multicast listener done, max resp delay 0ms, addr ff02::1:ff00:1, length 24")
	add(q.String(), "ICMP6, multicast listener query v2, max resp delay 32776ms, addr ff05::2, S, qrv 0, qqi 136s, 1 source(s), length 44")

	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %q\nwant %q", c.got, c.want)
		}
	}
}

func TestSetChecksum6(t *testing.T) {
	b := make([]byte, 8)
	ICMPv6(b).SetChecksum(0x5678)
	if ICMPv6(b).Checksum() != 0x5678 || NDP(b).Checksum() != 0x5678 || MLD(b).Checksum() != 0x5678 || MLDv2Report(b).Checksum() != 0x5678 {
		t.Errorf("SetChecksum: %x", b)
	}
}
