package wire

import "strconv"

// String methods for the field structs. They print one line in the style of
// tcpdump -nn -v, for logs, test failures and the command-line tools; they
// allocate and do not belong on a per-packet path.

// String formats f as "02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype
// IPv4 (0x0800)", with ", vlan 5, p 0" before the type of a tagged frame.
func (f *EthernetFields) String() string {
	b := make([]byte, 0, 80)
	b = f.Src.appendTo(b)
	b = append(b, " > "...)
	b = f.Dst.appendTo(b)
	if f.HasVLAN {
		b = append(b, ", vlan "...)
		b = strconv.AppendUint(b, uint64(VLANID(f.VLAN)), 10)
		b = append(b, ", p "...)
		b = strconv.AppendUint(b, uint64(VLANPriority(f.VLAN)), 10)
	}
	b = append(b, ", ethertype "...)
	b = append(b, f.EtherType.String()...)
	b = append(b, " ("...)
	b = appendHex16(b, uint16(f.EtherType))
	b = append(b, ')')
	return string(b)
}

// String formats f as tcpdump does: "Request who-has 10.77.1.2 tell
// 10.77.1.1" or "Reply 10.77.1.2 is-at 02:00:00:00:01:02".
func (f *ARPFields) String() string {
	b := make([]byte, 0, 64)
	switch f.Op {
	case ARPRequest:
		b = append(b, "Request who-has "...)
		b = f.TargetIP.AppendTo(b)
		b = append(b, " tell "...)
		b = f.SenderIP.AppendTo(b)
	case ARPReply:
		b = append(b, "Reply "...)
		b = f.SenderIP.AppendTo(b)
		b = append(b, " is-at "...)
		b = f.SenderMAC.appendTo(b)
	default:
		b = append(b, "op "...)
		b = strconv.AppendUint(b, uint64(f.Op), 10)
	}
	return string(b)
}

// String formats f as "10.77.1.1 > 10.77.1.2: tos 0x0, ttl 64, id 33510,
// offset 0, flags [DF], proto ICMP (1), length 60", adding ", options (40
// bytes)" when there are options.
func (f *IPv4Fields) String() string {
	b := make([]byte, 0, 128)
	b = f.Src.AppendTo(b)
	b = append(b, " > "...)
	b = f.Dst.AppendTo(b)
	b = append(b, ": tos 0x"...)
	b = strconv.AppendUint(b, uint64(f.TOS), 16)
	b = append(b, ", ttl "...)
	b = strconv.AppendUint(b, uint64(f.TTL), 10)
	b = append(b, ", id "...)
	b = strconv.AppendUint(b, uint64(f.ID), 10)
	b = append(b, ", offset "...)
	b = strconv.AppendUint(b, uint64(f.FragOffset), 10)
	b = append(b, ", flags ["...)
	switch {
	case f.DF && f.MF:
		b = append(b, "DF+"...)
	case f.DF:
		b = append(b, "DF"...)
	case f.MF:
		b = append(b, '+')
	default:
		b = append(b, "none"...)
	}
	b = append(b, "], proto "...)
	switch f.Protocol {
	case ProtoICMP:
		b = append(b, "ICMP "...)
	case ProtoTCP:
		b = append(b, "TCP "...)
	case ProtoUDP:
		b = append(b, "UDP "...)
	default:
		b = append(b, "unknown "...)
	}
	b = append(b, '(')
	b = strconv.AppendUint(b, uint64(f.Protocol), 10)
	b = append(b, "), length "...)
	b = strconv.AppendUint(b, uint64(f.TotalLen), 10)
	if len(f.Options) > 0 {
		b = append(b, ", options ("...)
		b = strconv.AppendInt(b, int64(len(f.Options)), 10)
		b = append(b, " bytes)"...)
	}
	return string(b)
}

// String formats f as "ICMP echo request, id 6673, seq 1, length 40", "ICMP
// time exceeded in-transit, length 52", "ICMP unreachable - need to frag
// (mtu 1000), length 556", ...
func (f *ICMPv4Fields) String() string {
	b := make([]byte, 0, 64)
	b = append(b, "ICMP "...)
	switch {
	case f.Type == ICMPv4EchoRequest:
		b = append(b, "echo request"...)
	case f.Type == ICMPv4EchoReply:
		b = append(b, "echo reply"...)
	case icmpv4HasMTU(f.Type, f.Code):
		b = append(b, "unreachable - need to frag (mtu "...)
		b = strconv.AppendUint(b, uint64(f.MTU), 10)
		b = append(b, ')')
	case f.Type == ICMPv4DestUnreachable && f.Code <= ICMPv4PortUnreachable:
		b = append(b, [...]string{"net", "host", "protocol", "port"}[f.Code]...)
		b = append(b, " unreachable"...)
	case f.Type == ICMPv4DestUnreachable && f.Code == ICMPv4AdminProhibited:
		b = append(b, "unreachable - admin prohibited filter"...)
	case f.Type == ICMPv4TimeExceeded && f.Code == ICMPv4TTLExceeded:
		b = append(b, "time exceeded in-transit"...)
	case f.Type == ICMPv4TimeExceeded && f.Code == ICMPv4ReassemblyTimeExceeded:
		b = append(b, "ip reassembly time exceeded"...)
	case f.Type == ICMPv4ParameterProblem:
		b = append(b, "parameter problem - octet "...)
		b = strconv.AppendUint(b, uint64(f.Pointer), 10)
	default:
		b = append(b, "type "...)
		b = strconv.AppendUint(b, uint64(f.Type), 10)
		b = append(b, " code "...)
		b = strconv.AppendUint(b, uint64(f.Code), 10)
	}
	if icmpv4HasIDSeq(f.Type) {
		b = append(b, ", id "...)
		b = strconv.AppendUint(b, uint64(f.ID), 10)
		b = append(b, ", seq "...)
		b = strconv.AppendUint(b, uint64(f.Seq), 10)
	}
	b = append(b, ", length "...)
	b = strconv.AppendInt(b, int64(f.Len()), 10)
	return string(b)
}

// String formats f as "40000 > 9999: UDP, length 5".
func (f *UDPFields) String() string {
	b := make([]byte, 0, 40)
	b = strconv.AppendUint(b, uint64(f.SrcPort), 10)
	b = append(b, " > "...)
	b = strconv.AppendUint(b, uint64(f.DstPort), 10)
	b = append(b, ": UDP, length "...)
	b = strconv.AppendInt(b, int64(len(f.Payload)), 10)
	return string(b)
}

// String formats f as tcpdump does: "40001 > 5001: Flags [S], seq
// 2785435873, win 64240, options [mss 1460,sackOK,TS val 1166700529 ecr
// 0,wscale 10], length 0". Sequence numbers are absolute; the ack is shown
// when the ACK bit is set.
func (f *TCPFields) String() string {
	b := make([]byte, 0, 160)
	b = strconv.AppendUint(b, uint64(f.SrcPort), 10)
	b = append(b, " > "...)
	b = strconv.AppendUint(b, uint64(f.DstPort), 10)
	b = append(b, ": Flags ["...)
	b = append(b, f.Flags.String()...)
	b = append(b, ']')
	if len(f.Payload) > 0 || f.Flags&(TCPFlagSYN|TCPFlagFIN|TCPFlagRST) != 0 || f.Flags&TCPFlagACK == 0 {
		b = append(b, ", seq "...)
		b = strconv.AppendUint(b, uint64(f.Seq), 10)
		if len(f.Payload) > 0 {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(f.Seq.Add(uint32(len(f.Payload)))), 10)
		}
	}
	if f.Flags&TCPFlagACK != 0 {
		b = append(b, ", ack "...)
		b = strconv.AppendUint(b, uint64(f.Ack), 10)
	}
	b = append(b, ", win "...)
	b = strconv.AppendUint(b, uint64(f.Window), 10)
	if f.Flags&TCPFlagURG != 0 {
		b = append(b, ", urg "...)
		b = strconv.AppendUint(b, uint64(f.Urgent), 10)
	}
	if f.Options != (TCPOptions{}) {
		b = append(b, ", options "...)
		b = f.Options.appendTo(b)
	}
	b = append(b, ", length "...)
	b = strconv.AppendInt(b, int64(len(f.Payload)), 10)
	return string(b)
}

// String formats the options as tcpdump names them, in the order Encode
// writes them: "[mss 1460,sackOK,TS val 1 ecr 0,wscale 7,sack 1
// {100:200}]", "[]" when there are none.
func (o *TCPOptions) String() string { return string(o.appendTo(make([]byte, 0, 96))) }

func (o *TCPOptions) appendTo(b []byte) []byte {
	b = append(b, '[')
	n0 := len(b)
	sep := func() {
		if len(b) > n0 {
			b = append(b, ',')
		}
	}
	if o.MSS != 0 {
		b = append(b, "mss "...)
		b = strconv.AppendUint(b, uint64(o.MSS), 10)
	}
	if o.SACKPermitted {
		sep()
		b = append(b, "sackOK"...)
	}
	if o.HasTimestamp {
		sep()
		b = append(b, "TS val "...)
		b = strconv.AppendUint(b, uint64(o.TSVal), 10)
		b = append(b, " ecr "...)
		b = strconv.AppendUint(b, uint64(o.TSEcr), 10)
	}
	if o.HasWScale {
		sep()
		b = append(b, "wscale "...)
		b = strconv.AppendUint(b, uint64(o.WScale), 10)
	}
	if o.NumSACK > 0 {
		sep()
		b = append(b, "sack "...)
		b = strconv.AppendUint(b, uint64(o.NumSACK), 10)
		b = append(b, ' ')
		for _, s := range o.SACK[:min(int(o.NumSACK), TCPMaxSACKBlocks)] {
			b = append(b, '{')
			b = strconv.AppendUint(b, uint64(s.Start), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(s.End), 10)
			b = append(b, '}')
		}
	}
	return append(b, ']')
}

// String formats f as "2001:db8:1::1 > 2001:db8:1::2: class 0xb9,
// flowlabel 0x12345, hlim 64, next-header ICMPv6 (58), payload length 16",
// with tcpdump's names for the next header.
func (f *IPv6Fields) String() string {
	b := make([]byte, 0, 160)
	b = f.Src.AppendTo(b)
	b = append(b, " > "...)
	b = f.Dst.AppendTo(b)
	b = append(b, ": class 0x"...)
	b = strconv.AppendUint(b, uint64(f.TrafficClass), 16)
	b = append(b, ", flowlabel 0x"...)
	b = strconv.AppendUint(b, uint64(f.FlowLabel&0xfffff), 16)
	b = append(b, ", hlim "...)
	b = strconv.AppendUint(b, uint64(f.HopLimit), 10)
	b = append(b, ", next-header "...)
	b = append(b, nextHeaderName(f.NextHeader)...)
	b = append(b, " ("...)
	b = strconv.AppendUint(b, uint64(f.NextHeader), 10)
	b = append(b, "), payload length "...)
	b = strconv.AppendUint(b, uint64(f.PayloadLen), 10)
	return string(b)
}

// nextHeaderName names an IPv6 Next Header value as tcpdump does.
func nextHeaderName(n uint8) string {
	switch n {
	case ProtoHopByHop:
		return "Options"
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoRouting:
		return "Routing"
	case ProtoFragment:
		return "Fragment"
	case ProtoESP:
		return "ESP"
	case ProtoAH:
		return "AH"
	case ProtoICMPv6:
		return "ICMPv6"
	case ProtoNoNext:
		return "NoNext"
	case ProtoDestOpts:
		return "DstOpts"
	}
	return "unknown"
}

// icmpv6TypeName names ICMPv6 types as tcpdump does, "" for others.
func icmpv6TypeName(t uint8) string {
	switch t {
	case ICMPv6DestUnreachable:
		return "destination unreachable"
	case ICMPv6PacketTooBig:
		return "packet too big"
	case ICMPv6TimeExceeded:
		return "time exceeded in-transit"
	case ICMPv6ParameterProblem:
		return "parameter problem"
	case ICMPv6EchoRequest:
		return "echo request"
	case ICMPv6EchoReply:
		return "echo reply"
	case ICMPv6MLDQuery:
		return "multicast listener query"
	case ICMPv6MLDv1Report:
		return "multicast listener report"
	case ICMPv6MLDv1Done:
		return "multicast listener done"
	case ICMPv6RouterSolicit:
		return "router solicitation"
	case ICMPv6RouterAdvert:
		return "router advertisement"
	case ICMPv6NeighborSolicit:
		return "neighbor solicitation"
	case ICMPv6NeighborAdvert:
		return "neighbor advertisement"
	case ICMPv6Redirect:
		return "redirect"
	case ICMPv6MLDv2Report:
		return "multicast listener report v2"
	}
	return ""
}

// appendICMPv6Type appends "ICMP6, " and the type's name, or "type T code
// C" for a type without one.
func appendICMPv6Type(b []byte, t, code uint8) []byte {
	b = append(b, "ICMP6, "...)
	if name := icmpv6TypeName(t); name != "" {
		return append(b, name...)
	}
	b = append(b, "type "...)
	b = strconv.AppendUint(b, uint64(t), 10)
	b = append(b, " code "...)
	return strconv.AppendUint(b, uint64(code), 10)
}

// String formats f as tcpdump does: "ICMP6, echo request, id 1650, seq 1,
// length 40", "ICMP6, packet too big, mtu 1280, length 1240", "ICMP6,
// destination unreachable, unreachable port, length 61", "ICMP6, parameter
// problem, option - octet 42, length 65", ...
func (f *ICMPv6Fields) String() string {
	b := make([]byte, 0, 80)
	b = appendICMPv6Type(b, f.Type, f.Code)
	switch {
	case icmpv6HasIDSeq(f.Type):
		b = append(b, ", id "...)
		b = strconv.AppendUint(b, uint64(f.ID), 10)
		b = append(b, ", seq "...)
		b = strconv.AppendUint(b, uint64(f.Seq), 10)
	case f.Type == ICMPv6PacketTooBig:
		b = append(b, ", mtu "...)
		b = strconv.AppendUint(b, uint64(f.MTU), 10)
	case f.Type == ICMPv6DestUnreachable && f.Code <= ICMPv6RejectRoute:
		b = append(b, ", "...)
		b = append(b, [...]string{"unreachable route", "unreachable prohibited", "beyond scope",
			"unreachable address", "unreachable port", "source policy", "reject route"}[f.Code]...)
	case f.Type == ICMPv6TimeExceeded && f.Code == ICMPv6ReassemblyTimeExceeded:
		b = append(b, " (reassembly)"...)
	case f.Type == ICMPv6ParameterProblem && f.Code <= ICMPv6IncompleteChain:
		b = append(b, ", "...)
		b = append(b, [...]string{"header", "next header", "option", "incomplete chain"}[f.Code]...)
		b = append(b, " - octet "...)
		b = strconv.AppendUint(b, uint64(f.Pointer), 10)
	}
	b = append(b, ", length "...)
	b = strconv.AppendInt(b, int64(f.Len()), 10)
	return string(b)
}

// String formats f as tcpdump does: "ICMP6, neighbor solicitation, who
// has 2001:db8:1::2, length 32", "ICMP6, neighbor advertisement, tgt is
// 2001:db8:1::2, Flags [router, solicited, override], length 32", "ICMP6,
// router advertisement, hop limit 64, Flags 0x00, router lifetime 1800s,
// reachable time 0ms, retrans timer 0ms, length 88", "ICMP6, redirect,
// 2001:db8:3::1 to fe80::ff:fe00:103, length 112".
func (f *NDPFields) String() string {
	b := make([]byte, 0, 128)
	b = appendICMPv6Type(b, f.Type, 0)
	switch f.Type {
	case ICMPv6NeighborSolicit:
		b = append(b, ", who has "...)
		b = f.Target.AppendTo(b)
	case ICMPv6NeighborAdvert:
		b = append(b, ", tgt is "...)
		b = f.Target.AppendTo(b)
		b = append(b, ", Flags ["...)
		n0 := len(b)
		for _, x := range [...]struct {
			set  bool
			name string
		}{{f.Router, "router"}, {f.Solicited, "solicited"}, {f.Override, "override"}} {
			if x.set {
				if len(b) > n0 {
					b = append(b, ", "...)
				}
				b = append(b, x.name...)
			}
		}
		if len(b) == n0 {
			b = append(b, "none"...)
		}
		b = append(b, ']')
	case ICMPv6RouterAdvert:
		b = append(b, ", hop limit "...)
		b = strconv.AppendUint(b, uint64(f.CurHopLimit), 10)
		b = append(b, ", Flags 0x"...)
		b = append(b, "0123456789abcdef"[f.RAFlags>>4], "0123456789abcdef"[f.RAFlags&0xf])
		b = append(b, ", router lifetime "...)
		b = strconv.AppendUint(b, uint64(f.RouterLifetime), 10)
		b = append(b, "s, reachable time "...)
		b = strconv.AppendUint(b, uint64(f.ReachableTime), 10)
		b = append(b, "ms, retrans timer "...)
		b = strconv.AppendUint(b, uint64(f.RetransTimer), 10)
		b = append(b, "ms"...)
	case ICMPv6Redirect:
		b = append(b, ", "...)
		b = f.Destination.AppendTo(b)
		b = append(b, " to "...)
		b = f.Target.AppendTo(b)
	}
	b = append(b, ", length "...)
	b = strconv.AppendInt(b, int64(f.Len()), 10)
	return string(b)
}

// String formats f as "ICMP6, multicast listener query v2, max resp delay
// 1000ms, addr ::, qrv 2, qqi 125s, 0 source(s), length 28", or for MLDv1
// messages "ICMP6, multicast listener report, max resp delay 0ms, addr
// ff02::1:ff00:1, length 24".
func (f *MLDFields) String() string {
	b := make([]byte, 0, 128)
	b = appendICMPv6Type(b, f.Type, 0)
	delay := uint32(f.MaxRespCode)
	if f.v2() {
		b = append(b, " v2"...)
		delay = MLDv2MaxRespDelay(f.MaxRespCode)
	}
	b = append(b, ", max resp delay "...)
	b = strconv.AppendUint(b, uint64(delay), 10)
	b = append(b, "ms, addr "...)
	b = f.Multicast.AppendTo(b)
	if f.v2() {
		if f.SuppressRouterProcessing {
			b = append(b, ", S"...)
		}
		b = append(b, ", qrv "...)
		b = strconv.AppendUint(b, uint64(f.QRV&7), 10)
		b = append(b, ", qqi "...)
		b = strconv.AppendUint(b, uint64(MLDv2QQI(f.QQIC)), 10)
		b = append(b, "s, "...)
		b = strconv.AppendInt(b, int64(f.sources().Len()), 10)
		b = append(b, " source(s)"...)
	}
	b = append(b, ", length "...)
	b = strconv.AppendInt(b, int64(f.Len()), 10)
	return string(b)
}
