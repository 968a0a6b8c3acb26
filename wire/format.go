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
