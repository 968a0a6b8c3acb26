package wire

import (
	"net/netip"
	"testing"
)

// Sinks for TestNoAllocs and the benchmarks. Results are stored in package
// variables so the compiler cannot prove them unused and delete the work
// being measured (net/netip's habit); inputs and field structs live here too,
// so that nothing escapes merely because a closure captured it.
var (
	sinkEth     Ethernet
	sinkARP     ARP
	sinkIPv4    IPv4
	sinkICMP    ICMPv4
	sinkUDP     UDP
	sinkTCP     TCP
	sinkErr     error
	sinkInt     int
	sinkU16     uint16
	sinkU32     uint32
	sinkBool    bool
	sinkBytes   []byte
	sinkAddr    netip.Addr
	sinkMAC     MAC
	sinkSeq     Seq
	sinkEthF    EthernetFields
	sinkARPF    ARPFields
	sinkIPv4F   IPv4Fields
	sinkICMPF   ICMPv4Fields
	sinkUDPF    UDPFields
	sinkTCPF    TCPFields
	sinkTCPOpts TCPOptions
	allocBuf    = make([]byte, 2048)
	allocBuf2   = make([]byte, 2048)
)

func TestNoAllocs(t *testing.T) {
	tcpFrame := goldenTCPSACK2
	tcpSeg := mustL4(tcpFrame)
	tcpOpts := mustTCPOptions(tcpFrame)
	badSeg := edit(tcpSeg, func(b []byte) { b[23] = 0 }) // timestamps of length 0
	ipPkt := mustL3(goldenRecordRouteRequest)
	arpPkt := mustL3(goldenARPReply)
	udpDgram := mustL4(goldenUDP)
	icmpMsg := mustL4(goldenPortUnreachable)
	var (
		ethF  EthernetFields
		arpF  ARPFields
		ipF   IPv4Fields
		icmpF ICMPv4Fields
		udpF  UDPFields
		tcpF  TCPFields
	)
	ethF.Decode(Ethernet(goldenQinQEcho))
	arpF.Decode(ARP(arpPkt))
	ipF.Decode(IPv4(ipPkt))
	icmpF.Decode(ICMPv4(icmpMsg))
	udpF.Decode(UDP(udpDgram))
	if err := tcpF.Decode(TCP(tcpSeg)); err != nil {
		t.Fatal(err)
	}
	sinkEthF, sinkARPF, sinkIPv4F, sinkICMPF, sinkUDPF, sinkTCPF = ethF, arpF, ipF, icmpF, udpF, tcpF

	for _, tc := range []struct {
		name string
		f    func()
	}{
		// Ethernet.
		{"ParseEthernet", func() { sinkEth, sinkErr = ParseEthernet(goldenQinQEcho) }},
		{"ParseEthernet/truncated", func() { sinkEth, sinkErr = ParseEthernet(goldenQinQEcho[:20]) }},
		{"Ethernet accessors", func() {
			e := Ethernet(goldenQinQEcho)
			sinkMAC, sinkU16 = e.Dst(), uint16(e.EtherType())
			sinkU16, sinkBool = e.VLAN()
			sinkBytes, sinkInt = e.Payload(), e.HeaderLen()
		}},
		{"EthernetFields.Decode", func() { sinkEthF.Decode(Ethernet(goldenQinQEcho)) }},
		{"EthernetFields.Encode", func() { sinkInt = sinkEthF.Encode(allocBuf) }},
		{"MAC predicates", func() { sinkBool = sinkMAC.IsMulticast() || sinkMAC.IsBroadcast() || sinkMAC.IsZero() }},
		// ARP.
		{"ParseARP", func() { sinkARP, sinkErr = ParseARP(arpPkt) }},
		{"ParseARP/unsupported", func() { sinkARP, sinkErr = ParseARP(goldenARPReply) }},
		{"ARP accessors", func() { sinkAddr, sinkMAC = ARP(arpPkt).SenderIP(), ARP(arpPkt).TargetMAC() }},
		{"ARPFields.Decode", func() { sinkARPF.Decode(ARP(arpPkt)) }},
		{"ARPFields.Encode", func() { sinkInt = sinkARPF.Encode(allocBuf) }},
		// IPv4.
		{"ParseIPv4", func() { sinkIPv4, sinkErr = ParseIPv4(ipPkt) }},
		{"ParseIPv4/bad", func() { sinkIPv4, sinkErr = ParseIPv4(goldenARPReply) }},
		{"IPv4 accessors", func() {
			p := IPv4(ipPkt)
			sinkAddr, sinkBytes, sinkBool = p.Src(), p.Payload(), p.IsFragment()
			sinkU16, sinkBytes = p.FragOffset(), p.Options()
		}},
		{"IPv4.ChecksumValid", func() { sinkBool = IPv4(ipPkt).ChecksumValid() }},
		{"IPv4.SetTTL", func() { IPv4(allocBuf2).SetTTL(63) }},
		{"IPv4Fields.Decode", func() { sinkIPv4F.Decode(IPv4(ipPkt)) }},
		{"IPv4Fields.Encode", func() { sinkInt = sinkIPv4F.Encode(allocBuf) }},
		// ICMPv4.
		{"ParseICMPv4", func() { sinkICMP, sinkErr = ParseICMPv4(icmpMsg) }},
		{"ICMPv4.ChecksumValid", func() { sinkBool = ICMPv4(icmpMsg).ChecksumValid() }},
		{"ICMPv4.Quote", func() { sinkBytes, sinkErr = ICMPv4(icmpMsg).Quote(&sinkIPv4F) }},
		{"ICMPv4Fields.Decode", func() { sinkICMPF.Decode(ICMPv4(icmpMsg)) }},
		{"ICMPv4Fields.Encode", func() { sinkInt = sinkICMPF.Encode(allocBuf) }},
		// UDP.
		{"ParseUDP", func() { sinkUDP, sinkErr = ParseUDP(udpDgram) }},
		{"ParseUDP/truncated", func() { sinkUDP, sinkErr = ParseUDP(udpDgram[:5]) }},
		{"UDPFields.Decode", func() { sinkUDPF.Decode(UDP(udpDgram)) }},
		{"UDPFields.Encode", func() { sinkInt = sinkUDPF.Encode(allocBuf, ipA, ipB) }},
		{"UDPChecksum", func() { sinkU16 = UDPChecksum(udpDgram, ipA, ipB) }},
		// TCP.
		{"ParseTCP", func() { sinkTCP, sinkErr = ParseTCP(tcpSeg) }},
		{"ParseTCP/bad", func() { sinkTCP, sinkErr = ParseTCP(tcpSeg[:19]) }},
		{"TCPFields.Decode", func() { sinkErr = sinkTCPF.Decode(TCP(tcpSeg)) }},
		{"TCPFields.Decode/bad options", func() { sinkErr = sinkTCPF.Decode(TCP(badSeg)) }},
		{"TCPFields.Encode", func() { sinkInt = sinkTCPF.Encode(allocBuf) }},
		{"TCPFields.EncodeHeader", func() { sinkInt = sinkTCPF.EncodeHeader(allocBuf) }},
		{"TCPChecksum", func() { sinkU16 = TCPChecksum(tcpSeg, ipR, ipA) }},
		{"TCPOptions.Decode", func() { sinkErr = sinkTCPOpts.Decode(tcpOpts) }},
		{"TCPOptions.Encode", func() { sinkInt = sinkTCPF.Options.Encode(allocBuf) }},
		{"TCPOptions.EncodedLen", func() { sinkInt = sinkTCPF.Options.EncodedLen() }},
		// Checksums.
		{"Checksum", func() { sinkU16 = Checksum(allocBuf[:1501], 0) }},
		{"PartialSum", func() { sinkU16 = PartialSum(allocBuf[:1500], 7) }},
		{"PseudoHeaderSum", func() { sinkU16 = PseudoHeaderSum(ipA, ipB, ProtoTCP, 1480) }},
		{"ChecksumUpdate16", func() { sinkU16 = ChecksumUpdate16(sinkU16, 1, 2) }},
		{"ChecksumUpdate32", func() { sinkU16 = ChecksumUpdate32(sinkU16, 1, 2) }},
		{"AddSum", func() { sinkU16 = AddSum(sinkU16, 0xffff) }},
		// Sequence numbers.
		{"Seq", func() {
			sinkBool = sinkSeq.LessThan(7) || sinkSeq.InWindow(5, 10) || sinkSeq.InRange(1, 2)
			sinkSeq = MaxSeq(sinkSeq.Add(1), 3)
		}},
	} {
		copy(allocBuf2, ipPkt) // for SetTTL
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}
