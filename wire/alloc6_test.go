package wire

import "testing"

// Sinks for TestNoAllocsIPv6 (see alloc_test.go).
var (
	sinkIPv6    IPv6
	sinkIPv6F   IPv6Fields
	sinkChain   IPv6Chain
	sinkExt     IPv6ExtHeader
	sinkOptsF   IPv6OptionsFields
	sinkFrag    IPv6Fragment
	sinkFragF   IPv6FragmentFields
	sinkICMP6   ICMPv6
	sinkICMP6F  ICMPv6Fields
	sinkNDP     NDP
	sinkNDPF    NDPFields
	sinkNDPOpts NDPOptions
	sinkNDPOpt  NDPOption
	sinkPrefix  NDPPrefixInfo
	sinkMLD     MLD
	sinkMLDF    MLDFields
	sinkMLDRep  MLDv2Report
	sinkMLDRec  MLDv2Record
	sinkMLDRecF MLDv2RecordFields
	sinkU8      uint8
	sinkU32b    uint32
)

func TestNoAllocsIPv6(t *testing.T) {
	echo := mustL3(g6("echo-request"))
	mldPkt := mustL3(g6("mld-report-linkup"))
	dstUnknown := mustL3(g6("dstopt-unknown"))
	fragPkt := mustL3(g6("frag-first"))
	ptb := mustUpper(g6("packet-too-big"))
	ra := mustUpper(g6("ra"))
	redirect := mustUpper(g6("redirect"))
	query := mustUpper(g6("mld-query-v2"))
	report := mustUpper(g6("mld-report-4"))
	hbh := mustIPv6(g6("mld-report-linkup")).Payload()
	src, dst := mustIPv6(g6("ra")).Src(), mustIPv6(g6("ra")).Dst()
	var rdnss NDPRDNSS
	records := make([]MLDv2RecordFields, 4)
	for l, i := MLDv2Report(report).Records(), 0; i < 4; i++ {
		r, rest, _ := l.Next()
		records[i].Decode(r)
		l = rest
	}
	reportF := MLDv2ReportFields{Records: records}

	sinkIPv6F.Decode(IPv6(echo))
	sinkICMP6F.Decode(ICMPv6(ptb))
	sinkNDPF.Decode(NDP(ra))
	sinkMLDF.Decode(MLD(query))
	_ = sinkNDPOpts.Decode(NDP(redirect).Options())
	sinkOptsF = IPv6OptionsFields{NextHeader: ProtoICMPv6, Options: hbh[2:6]}
	sinkFragF.Decode(IPv6Fragment(mustIPv6(g6("frag-middle")).Payload()))

	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"ParseIPv6", func() { sinkIPv6, sinkErr = ParseIPv6(echo) }},
		{"ParseIPv6/bad", func() { sinkIPv6, sinkErr = ParseIPv6(echo[:39]) }},
		{"IPv6 accessors", func() {
			p := IPv6(echo)
			sinkAddr, sinkBytes, sinkU8 = p.Src(), p.Payload(), p.ECN()
			sinkU32b, sinkBytes = p.FlowLabel(), p.Packet()
		}},
		{"IPv6 setters", func() { IPv6(allocBuf2).SetHopLimit(1); IPv6(allocBuf2).SetTrafficClass(3) }},
		{"IPv6Fields.Decode", func() { sinkIPv6F.Decode(IPv6(echo)) }},
		{"IPv6Fields.Encode", func() { sinkInt = sinkIPv6F.Encode(allocBuf) }},
		{"IPv6Chain.Walk/hop-by-hop", func() { sinkErr = sinkChain.Walk(IPv6(mldPkt)) }},
		{"IPv6Chain.Walk/unknown option", func() { sinkErr = sinkChain.Walk(IPv6(dstUnknown)) }},
		{"IPv6Chain.Walk/fragment", func() { sinkErr = sinkChain.Walk(IPv6(fragPkt)); sinkBytes = sinkChain.Upper(IPv6(fragPkt)) }},
		{"SkipIPv6Ext", func() { sinkU8, sinkInt, sinkErr = SkipIPv6Ext(hbh, ProtoHopByHop) }},
		{"ParseIPv6ExtHeader", func() { sinkExt, sinkErr = ParseIPv6ExtHeader(hbh) }},
		{"IPv6OptionsFields", func() { sinkOptsF.Decode(IPv6ExtHeader(hbh)); sinkInt = sinkOptsF.Encode(allocBuf) }},
		{"IPv6Fragment", func() {
			sinkFrag, sinkErr = ParseIPv6Fragment(fragPkt[40:])
			sinkFragF.Decode(sinkFrag)
			sinkInt = sinkFragF.Encode(allocBuf)
		}},
		{"ParseICMPv6", func() { sinkICMP6, sinkErr = ParseICMPv6(ptb) }},
		{"ICMPv6.Quote", func() { sinkU8, sinkBytes, sinkErr = ICMPv6(ptb).Quote(&sinkIPv6F) }},
		{"ICMPv6Fields.Decode", func() { sinkICMP6F.Decode(ICMPv6(ptb)) }},
		{"ICMPv6Fields.Encode", func() { sinkInt = sinkICMP6F.Encode(allocBuf, src, dst) }},
		{"ICMPv6Checksum", func() { sinkU16 = ICMPv6Checksum(ptb, src, dst) }},
		{"PseudoHeaderSum/IPv6", func() { sinkU16 = PseudoHeaderSum(src, dst, ProtoTCP, 1440) }},
		{"TCPChecksum/IPv6", func() { sinkU16 = TCPChecksum(ptb, src, dst) }},
		{"ParseNDP", func() { sinkNDP, sinkErr = ParseNDP(ra) }},
		{"ParseNDP/bad", func() { sinkNDP, sinkErr = ParseNDP(ptb) }},
		{"NDPFields.Decode", func() { sinkNDPF.Decode(NDP(ra)) }},
		{"NDPFields.Encode", func() { sinkInt = sinkNDPF.Encode(allocBuf, src, dst) }},
		{"NDPOptions.Decode", func() { sinkErr = sinkNDPOpts.Decode(NDP(redirect).Options()) }},
		{"NDPOptions.Encode", func() { sinkInt = sinkNDPOpts.Encode(allocBuf) }},
		{"NDPOptionList walk", func() {
			for l := NDP(ra).Options(); ; {
				o, rest, ok := l.Next()
				if !ok {
					break
				}
				switch o.Type() {
				case NDPOptPrefixInfo:
					sinkPrefix = o.PrefixInfo()
					sinkInt = sinkPrefix.Encode(allocBuf)
				case NDPOptRDNSS:
					rdnss = NDPRDNSS{Lifetime: o.RDNSSLifetime(), Servers: o.RDNSSServers()}
					sinkInt = rdnss.Encode(allocBuf)
				case NDPOptMTU:
					sinkU32b = o.MTU()
				case NDPOptSourceLinkAddr:
					sinkMAC = o.LinkAddr()
				}
				sinkNDPOpt, l = o, rest
			}
		}},
		{"ParseMLD", func() { sinkMLD, sinkErr = ParseMLD(query) }},
		{"MLD accessors", func() {
			m := MLD(query)
			sinkU32b, sinkAddr, sinkInt = m.MaxRespDelay()+m.QQI(), m.Multicast(), m.Sources().Len()
		}},
		{"MLDFields", func() { sinkMLDF.Decode(MLD(query)); sinkInt = sinkMLDF.Encode(allocBuf, src, dst) }},
		{"ParseMLDv2Report", func() { sinkMLDRep, sinkErr = ParseMLDv2Report(report) }},
		{"MLDv2 records", func() {
			for l := MLDv2Report(report).Records(); ; {
				r, rest, ok := l.Next()
				if !ok {
					break
				}
				sinkMLDRecF.Decode(r)
				sinkMLDRec, l = r, rest
			}
		}},
		{"MLDv2ReportFields.Encode", func() { sinkInt = reportF.Encode(allocBuf, src, dst) }},
		{"address helpers", func() {
			sinkAddr = SolicitedNodeMulticast(src)
			sinkMAC, sinkBool = MulticastMAC(dst)
			sinkAddr = LinkLocalFromMAC(sinkMAC)
		}},
	} {
		copy(allocBuf2, echo)
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}
