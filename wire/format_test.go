package wire

import "testing"

// The String methods print what tcpdump -nn -v prints for the same frames
// (compare the tcpdump lines in golden_test.go), except where noted.
func TestString(t *testing.T) {
	decode := func(frame []byte) (EthernetFields, IPv4Fields, []byte) {
		var ef EthernetFields
		ef.Decode(Ethernet(frame))
		var pf IPv4Fields
		if ef.EtherType == EtherTypeIPv4 {
			pf.Decode(IPv4(mustL3(frame)))
		}
		return ef, pf, mustL3(frame)
	}
	var cases []struct{ got, want string }
	add := func(got, want string) { cases = append(cases, struct{ got, want string }{got, want}) }

	ef, _, l3 := decode(goldenARPRequest)
	add(ef.String(), "02:00:00:00:01:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806)")
	var af ARPFields
	af.Decode(ARP(l3))
	add(af.String(), "Request who-has 10.77.1.2 tell 10.77.1.1")
	af.Decode(ARP(mustL3(goldenARPReply)))
	add(af.String(), "Reply 10.77.1.2 is-at 02:00:00:00:01:02")
	af.Op = 9
	add(af.String(), "op 9")

	// tcpdump -e prints the tag after the outer type; we print the fields.
	ef, pf, _ := decode(goldenVLANEcho)
	add(ef.String(), "02:00:00:00:04:01 > 02:00:00:00:04:02, vlan 5, p 0, ethertype IPv4 (0x0800)")
	add(pf.String(), "10.77.4.1 > 10.77.4.2: tos 0x0, ttl 64, id 42350, offset 0, flags [DF], proto ICMP (1), length 60")
	ef.VLAN = 6<<13 | 4094
	add(ef.String(), "02:00:00:00:04:01 > 02:00:00:00:04:02, vlan 4094, p 6, ethertype IPv4 (0x0800)")

	_, pf, _ = decode(goldenRecordRouteReply)
	add(pf.String(), "10.77.1.2 > 10.77.1.1: tos 0x0, ttl 64, id 51037, offset 0, flags [none], proto ICMP (1), length 76, options (40 bytes)")
	_, pf, _ = decode(goldenFragFirst)
	add(pf.String(), "10.77.3.1 > 10.77.3.2: tos 0x0, ttl 64, id 892, offset 0, flags [+], proto ICMP (1), length 68")
	pf.DF, pf.Protocol, pf.TOS = true, 99, 0xc0
	add(pf.String(), "10.77.3.1 > 10.77.3.2: tos 0xc0, ttl 64, id 892, offset 0, flags [DF+], proto unknown (99), length 68")
	_, pf, _ = decode(goldenTCPSYN)
	add(pf.String(), "10.77.1.1 > 10.77.1.2: tos 0x0, ttl 64, id 63723, offset 0, flags [DF], proto TCP (6), length 60")

	icmp := func(frame []byte) string {
		var f ICMPv4Fields
		f.Decode(ICMPv4(mustL4(frame)))
		return f.String()
	}
	add(icmp(goldenEchoRequest), "ICMP echo request, id 6673, seq 1, length 40")
	add(icmp(goldenEchoReply), "ICMP echo reply, id 6673, seq 1, length 40")
	add(icmp(goldenTimeExceeded), "ICMP time exceeded in-transit, length 52")
	// tcpdump names the unreachable host and port from the quote.
	add(icmp(goldenFragNeeded), "ICMP unreachable - need to frag (mtu 1000), length 556")
	add(icmp(goldenPortUnreachable), "ICMP port unreachable, length 41")
	for _, tc := range []struct {
		f    ICMPv4Fields
		want string
	}{
		{ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4NetUnreachable}, "ICMP net unreachable, length 8"},
		{ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4HostUnreachable}, "ICMP host unreachable, length 8"},
		{ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4ProtoUnreachable}, "ICMP protocol unreachable, length 8"},
		{ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4AdminProhibited}, "ICMP unreachable - admin prohibited filter, length 8"},
		{ICMPv4Fields{Type: ICMPv4TimeExceeded, Code: ICMPv4ReassemblyTimeExceeded}, "ICMP ip reassembly time exceeded, length 8"},
		{ICMPv4Fields{Type: ICMPv4ParameterProblem, Pointer: 20, Payload: make([]byte, 28)}, "ICMP parameter problem - octet 20, length 36"},
		{ICMPv4Fields{Type: 13, ID: 1, Seq: 2}, "ICMP type 13 code 0, id 1, seq 2, length 8"},
		{ICMPv4Fields{Type: 200, Code: 3}, "ICMP type 200 code 3, length 8"},
	} {
		add(tc.f.String(), tc.want)
	}

	var uf UDPFields
	uf.Decode(UDP(mustL4(goldenUDP)))
	add(uf.String(), "40000 > 9999: UDP, length 5")

	tcp := func(frame []byte) string {
		var f TCPFields
		if err := f.Decode(TCP(mustL4(frame))); err != nil {
			t.Fatal(err)
		}
		return f.String()
	}
	// tcpdump shows the NOPs and, after the SYN, relative sequence numbers;
	// we show the options in Encode's order and absolute numbers.
	add(tcp(goldenTCPSYN), "40001 > 5001: Flags [S], seq 2785435873, win 64240, options [mss 1460,sackOK,TS val 1166700529 ecr 0,wscale 10], length 0")
	add(tcp(goldenTCPSYNNoTS), "40002 > 5002: Flags [S], seq 3292482988, win 64240, options [mss 1460,sackOK,wscale 10], length 0")
	add(tcp(goldenTCPACK), "40001 > 5001: Flags [.], ack 156381591, win 63, options [TS val 1166700529 ecr 2207150005], length 0")
	add(tcp(goldenTCPData), "40001 > 5001: Flags [P.], seq 2785435874:2785435974, ack 156381591, win 63, options [TS val 1166700529 ecr 2207150005], length 100")
	add(tcp(goldenTCPSACK2), "5004 > 40004: Flags [.], ack 2357450979, win 64, options [TS val 1628946327 ecr 1981280359,sack 2 {2357451279:2357451379}{2357451079:2357451179}], length 0")
	add(tcp(goldenTCPFIN), "40001 > 5001: Flags [F.], seq 2785436374, ack 156381591, win 63, options [TS val 1166702079 ecr 2207150055], length 0")
	add(tcp(goldenTCPRSTACK), "5002 > 40002: Flags [R.], seq 0, ack 3292482989, win 0, length 0")
	add(tcp(goldenTCPRST), "5003 > 40003: Flags [R], seq 123456789, win 0, length 0")
	urg := TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagURG | TCPFlagACK, Ack: 5, Urgent: 3}
	add(urg.String(), "1 > 2: Flags [U.], ack 5, win 0, urg 3, length 0")
	var none TCPOptions
	add(none.String(), "[]")

	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %q\nwant %q", c.got, c.want)
		}
	}
}

func TestSetChecksum(t *testing.T) {
	b := make([]byte, 20)
	IPv4(b).SetChecksum(0x1234)
	ICMPv4(b).SetChecksum(0x5678)
	UDP(b[8:]).SetChecksum(0x9abc)
	if IPv4(b).Checksum() != 0x1234 || ICMPv4(b).Checksum() != 0x5678 || UDP(b[8:]).Checksum() != 0x9abc {
		t.Errorf("SetChecksum: %x", b)
	}
}
