package wire

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Differential tests against gopacket (github.com/gopacket/gopacket, layers),
// an independent decoder and encoder, on a few thousand random valid frames
// each way:
//
//   - TestGopacketDecodesWire: wire encodes, gopacket decodes; every field
//     must agree, and gopacket re-serializing what it decoded (recomputing
//     every checksum) must give wire's bytes back.
//   - TestWireDecodesGopacket: gopacket serializes (lengths and checksums
//     computed by it), wire parses and decodes; every field must agree,
//     wire's checksums must verify, and wire re-encoding the decoded fields
//     must give gopacket's bytes wherever the layout is canonical.
//
// gopacket is a test-only dependency.

const differentialFrames = 3000

// Frame kinds the generators pick from.
const (
	kindARP = iota
	kindTCP
	kindUDP
	kindICMP
	kindFragment // an IPv4 fragment with a non-zero offset and raw payload
	numKinds
)

// randFrame is a random frame described by wire field structs.
type randFrame struct {
	kind int
	eth  EthernetFields
	arp  ARPFields
	ip   IPv4Fields
	tcp  TCPFields
	udp  UDPFields
	icmp ICMPv4Fields
	raw  []byte // payload of a fragment
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randMAC(r *rand.Rand) MAC {
	var m MAC
	copy(m[:], randBytes(r, 6))
	return m
}

// randIPv4Options returns a valid IPv4 option list (RFC 791 §3.1): NOPs, a
// record route with some slots filled, a router alert (RFC 2113), ended by
// EOL when it does not fill the space exactly.
func randIPv4Options(r *rand.Rand) []byte {
	var o []byte
	for len(o) < 40 && r.IntN(3) != 0 {
		switch r.IntN(3) {
		case 0:
			o = append(o, ipv4OptNOP)
		case 1:
			slots := 1 + r.IntN(4)
			if len(o)+3+4*slots > 40 {
				continue
			}
			filled := r.IntN(slots + 1)
			o = append(o, 7, byte(3+4*slots), byte(4+4*filled))
			o = append(o, randBytes(r, 4*slots)...)
		case 2:
			if len(o)+4 > 40 {
				continue
			}
			o = append(o, 148, 4, 0, 0)
		}
	}
	if len(o)%4 != 0 && r.IntN(2) == 0 {
		o = append(o, ipv4OptEOL)
	}
	return o
}

// randTCPOptions returns random options, each kind present or not.
func randTCPOptions(r *rand.Rand) TCPOptions {
	var o TCPOptions
	if r.IntN(2) == 0 {
		o.MSS = uint16(1 + r.IntN(65535))
	}
	o.SACKPermitted = r.IntN(2) == 0
	if r.IntN(2) == 0 {
		o.HasWScale, o.WScale = true, uint8(r.IntN(15))
	}
	if r.IntN(2) == 0 {
		o.HasTimestamp, o.TSVal, o.TSEcr = true, r.Uint32(), r.Uint32()
	}
	o.NumSACK = uint8(r.IntN(TCPMaxSACKBlocks + 1))
	for i := range o.NumSACK {
		s := Seq(r.Uint32())
		o.SACK[i] = SACKBlock{s, s.Add(1 + r.Uint32N(1<<20))}
	}
	return encodable(o)
}

func randomFrame(r *rand.Rand) randFrame {
	f := randFrame{kind: r.IntN(numKinds)}
	f.eth = EthernetFields{Dst: randMAC(r), Src: randMAC(r), EtherType: EtherTypeIPv4}
	if r.IntN(3) == 0 {
		f.eth.HasVLAN, f.eth.VLAN = true, uint16(r.Uint32())
	}
	if f.kind == kindARP {
		f.eth.EtherType = EtherTypeARP
		f.arp = ARPFields{Op: uint16(1 + r.IntN(2)), SenderMAC: randMAC(r), SenderIP: randAddr4(r), TargetMAC: randMAC(r), TargetIP: randAddr4(r)}
		return f
	}
	f.ip = IPv4Fields{
		TOS: uint8(r.Uint32()), ID: uint16(r.Uint32()), DF: r.IntN(2) == 0,
		TTL: uint8(r.Uint32()), Src: randAddr4(r), Dst: randAddr4(r),
	}
	if r.IntN(4) == 0 {
		f.ip.Options = randIPv4Options(r)
	}
	payload := randBytes(r, r.IntN(200))
	var l4len int
	switch f.kind {
	case kindTCP:
		f.ip.Protocol = ProtoTCP
		f.tcp = TCPFields{
			SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Seq: Seq(r.Uint32()), Ack: Seq(r.Uint32()),
			Flags: TCPFlags(r.Uint32()), Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()),
			Options: randTCPOptions(r), Payload: payload,
		}
		l4len = f.tcp.HeaderLen() + len(payload)
	case kindUDP:
		f.ip.Protocol = ProtoUDP
		f.udp = UDPFields{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Payload: payload}
		l4len = f.udp.Len()
	case kindICMP:
		f.ip.Protocol = ProtoICMP
		f.icmp = randICMP(r, payload)
		l4len = f.icmp.Len()
	case kindFragment:
		f.ip.Protocol = uint8(r.Uint32())
		f.ip.DF = false
		f.ip.MF = r.IntN(2) == 0
		f.ip.FragOffset = uint16(8 * (1 + r.IntN(8000)))
		f.raw = payload
		l4len = len(payload)
	}
	f.ip.TotalLen = uint16(f.ip.HeaderLen() + l4len)
	return f
}

// randICMP returns a random message of a type whose second word this
// package decodes, or of an unused-word error type.
func randICMP(r *rand.Rand, payload []byte) ICMPv4Fields {
	m := ICMPv4Fields{Payload: payload}
	switch r.IntN(6) {
	case 0, 1:
		m.Type = uint8([]int{ICMPv4EchoRequest, ICMPv4EchoReply}[r.IntN(2)])
		m.ID, m.Seq = uint16(r.Uint32()), uint16(r.Uint32())
	case 2:
		m.Type, m.Code, m.MTU = ICMPv4DestUnreachable, ICMPv4FragmentationNeeded, uint16(r.Uint32())
	case 3:
		m.Type, m.Code = ICMPv4DestUnreachable, uint8([]int{0, 1, 2, 3, 13}[r.IntN(5)])
	case 4:
		m.Type, m.Code = ICMPv4TimeExceeded, uint8(r.IntN(2))
	case 5:
		m.Type, m.Pointer = ICMPv4ParameterProblem, uint8(r.Uint32())
	}
	return m
}

// encode writes the frame with wire's encoders.
func (f *randFrame) encode() []byte {
	hl := f.eth.HeaderLen()
	if f.kind == kindARP {
		b := make([]byte, hl+ARPLen)
		f.eth.Encode(b)
		f.arp.Encode(b[hl:])
		return b
	}
	b := make([]byte, hl+int(f.ip.TotalLen))
	f.eth.Encode(b)
	ip := b[hl:]
	ihl := f.ip.Encode(ip)
	l4 := ip[ihl:]
	switch f.kind {
	case kindTCP:
		f.tcp.Encode(l4)
		TCP(l4).SetChecksum(TCPChecksum(l4, f.ip.Src, f.ip.Dst))
	case kindUDP:
		f.udp.Encode(l4, f.ip.Src, f.ip.Dst)
	case kindICMP:
		f.icmp.Encode(l4)
	case kindFragment:
		copy(l4, f.raw)
	}
	return b
}

func TestGopacketDecodesWire(t *testing.T) {
	r := rand.New(rand.NewPCG(0x9a7e, 1))
	for i := range differentialFrames {
		f := randomFrame(r)
		frame := f.encode()
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("frame %d (%x): gopacket: %v", i, frame, el.Error())
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("frame %d %x\n%s\n"+format, append([]any{i, frame, pkt.Dump()}, args...)...)
		}

		eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !bytes.Equal(eth.DstMAC, f.eth.Dst[:]) || !bytes.Equal(eth.SrcMAC, f.eth.Src[:]) {
			fail("MACs %v %v", eth.DstMAC, eth.SrcMAC)
		}
		inner := eth.EthernetType
		if f.eth.HasVLAN {
			q, _ := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
			if inner != layers.EthernetTypeDot1Q || q == nil {
				fail("no 802.1Q tag")
			}
			if q.Priority != VLANPriority(f.eth.VLAN) || q.DropEligible != (f.eth.VLAN&0x1000 != 0) || q.VLANIdentifier != VLANID(f.eth.VLAN) {
				fail("tag %+v, TCI %#x", q, f.eth.VLAN)
			}
			inner = q.Type
		}
		if uint16(inner) != uint16(f.eth.EtherType) {
			fail("EtherType %v", inner)
		}

		if f.kind == kindARP {
			a := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
			if a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 || a.HwAddressSize != 6 || a.ProtAddressSize != 4 ||
				a.Operation != f.arp.Op || !bytes.Equal(a.SourceHwAddress, f.arp.SenderMAC[:]) || !bytes.Equal(a.DstHwAddress, f.arp.TargetMAC[:]) ||
				!bytes.Equal(a.SourceProtAddress, f.arp.SenderIP.AsSlice()) || !bytes.Equal(a.DstProtAddress, f.arp.TargetIP.AsSlice()) {
				fail("ARP %+v, want %+v", a, f.arp)
			}
			reserialize(t, pkt, frame, fail)
			continue
		}

		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ipb := frame[f.eth.HeaderLen():]
		wantFlags := layers.IPv4Flag(0)
		if f.ip.DF {
			wantFlags |= layers.IPv4DontFragment
		}
		if f.ip.MF {
			wantFlags |= layers.IPv4MoreFragments
		}
		if ip.Version != 4 || int(ip.IHL)*4 != f.ip.HeaderLen() || ip.TOS != f.ip.TOS || ip.Length != f.ip.TotalLen || ip.Id != f.ip.ID ||
			ip.Flags != wantFlags || ip.FragOffset*8 != f.ip.FragOffset || ip.TTL != f.ip.TTL || uint8(ip.Protocol) != f.ip.Protocol ||
			ip.Checksum != binary.BigEndian.Uint16(ipb[10:]) || !ip.SrcIP.Equal(f.ip.Src.AsSlice()) || !ip.DstIP.Equal(f.ip.Dst.AsSlice()) {
			fail("IPv4 %+v, want %+v", ip, f.ip)
		}
		if !bytes.Equal(ip.Contents[IPv4HeaderLen:], ipb[IPv4HeaderLen:f.ip.HeaderLen()]) || !bytes.HasPrefix(ip.Contents[IPv4HeaderLen:], f.ip.Options) {
			fail("IPv4 options %x, want %x", ip.Contents[IPv4HeaderLen:], f.ip.Options)
		}

		switch f.kind {
		case kindTCP:
			s := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			w := f.tcp
			gotFlags := TCPFlags(0)
			for bit, set := range []bool{s.FIN, s.SYN, s.RST, s.PSH, s.ACK, s.URG, s.ECE, s.CWR} {
				if set {
					gotFlags |= 1 << bit
				}
			}
			if uint16(s.SrcPort) != w.SrcPort || uint16(s.DstPort) != w.DstPort || Seq(s.Seq) != w.Seq || Seq(s.Ack) != w.Ack ||
				int(s.DataOffset)*4 != w.HeaderLen() || gotFlags != w.Flags || s.NS || s.Window != w.Window || s.Urgent != w.Urgent ||
				!bytes.Equal(s.Payload, w.Payload) {
				fail("TCP %+v, want %v", s, &w)
			}
			if got := gopacketTCPOptions(t, s.Options); got != w.Options {
				fail("TCP options %v, want %v", &got, &w.Options)
			}
			s.SetNetworkLayerForChecksum(ip)
			// gopacket sums the segment as it is, checksum field
			// included: 0 means wire's checksum is right.
			if c, err := s.ComputeChecksum(); err != nil || c != 0 {
				fail("gopacket verifies wire's TCP checksum %#x as %#x (%v)", s.Checksum, c, err)
			}
		case kindUDP:
			u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if uint16(u.SrcPort) != f.udp.SrcPort || uint16(u.DstPort) != f.udp.DstPort || int(u.Length) != f.udp.Len() || !bytes.Equal(u.Payload, f.udp.Payload) {
				fail("UDP %+v, want %+v", u, f.udp)
			}
		case kindICMP:
			m := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			w := f.icmp
			id, seq := w.ID, w.Seq
			switch {
			case icmpv4HasMTU(w.Type, w.Code):
				id, seq = 0, w.MTU
			case w.Type == ICMPv4ParameterProblem:
				id, seq = uint16(w.Pointer)<<8, 0
			}
			if m.TypeCode.Type() != w.Type || m.TypeCode.Code() != w.Code || m.Id != id || m.Seq != seq || !bytes.Equal(m.Payload, w.Payload) {
				fail("ICMP %+v, want %+v", m, w)
			}
		case kindFragment:
			fr, _ := pkt.Layer(gopacket.LayerTypeFragment).(*gopacket.Fragment)
			if len(f.raw) > 0 && (fr == nil || !bytes.Equal(*fr, f.raw)) {
				fail("fragment payload")
			}
		}
		reserialize(t, pkt, frame, fail)
	}
}

// reserialize has gopacket serialize the layers it decoded, recomputing
// every checksum and (for Ethernet) padding to 60 bytes, and checks the
// result is the frame wire made.
func reserialize(t *testing.T, pkt gopacket.Packet, frame []byte, fail func(string, ...any)) {
	t.Helper()
	var ls []gopacket.SerializableLayer
	var ip *layers.IPv4
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			ip = l
		case *layers.TCP:
			l.SetNetworkLayerForChecksum(ip)
		case *layers.UDP:
			l.SetNetworkLayerForChecksum(ip)
		}
		sl, ok := l.(gopacket.SerializableLayer)
		if !ok {
			fail("layer %v cannot be serialized", l.LayerType())
		}
		ls = append(ls, sl)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		fail("gopacket serialize: %v", err)
	}
	want := frame
	if len(want) < 60 {
		want = append(append([]byte{}, frame...), make([]byte, 60-len(frame))...)
	}
	if d := diffBytes(buf.Bytes(), want); d != "" {
		fail("gopacket re-serialized differently: %s", d)
	}
}

// gopacketTCPOptions interprets gopacket's option list as TCPOptions.
func gopacketTCPOptions(t *testing.T, opts []layers.TCPOption) TCPOptions {
	t.Helper()
	var o TCPOptions
	for _, x := range opts {
		d := x.OptionData
		switch x.OptionType {
		case layers.TCPOptionKindMSS:
			o.MSS = binary.BigEndian.Uint16(d)
		case layers.TCPOptionKindWindowScale:
			o.HasWScale, o.WScale = true, d[0]
		case layers.TCPOptionKindSACKPermitted:
			o.SACKPermitted = true
		case layers.TCPOptionKindTimestamps:
			o.HasTimestamp, o.TSVal, o.TSEcr = true, binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		case layers.TCPOptionKindSACK:
			o.NumSACK = 0
			o.SACK = [TCPMaxSACKBlocks]SACKBlock{}
			for ; len(d) >= 8 && o.NumSACK < TCPMaxSACKBlocks; d = d[8:] {
				o.SACK[o.NumSACK] = SACKBlock{Seq(binary.BigEndian.Uint32(d)), Seq(binary.BigEndian.Uint32(d[4:]))}
				o.NumSACK++
			}
		}
	}
	return o
}

// gopacketFrame is a random frame as gopacket layers, with the expected
// TCP options for what wire should decode.
type gopacketFrame struct {
	kind   int
	tags   int
	layers []gopacket.SerializableLayer
	eth    *layers.Ethernet
	dot1q  []*layers.Dot1Q
	arp    *layers.ARP
	ip     *layers.IPv4
	tcp    *layers.TCP
	udp    *layers.UDP
	icmp   *layers.ICMPv4
	pay    []byte
	tcpOpt TCPOptions
}

// randGopacketTCPOptions returns a list of options in random order, each
// known kind at most once, unknown kinds and NOPs mixed in, at most 40
// bytes; and the TCPOptions wire should decode from it.
func randGopacketTCPOptions(r *rand.Rand) ([]layers.TCPOption, TCPOptions) {
	var list []layers.TCPOption
	var want TCPOptions
	size := 0
	add := func(kind layers.TCPOptionKind, data []byte) bool {
		n := 2 + len(data)
		if kind == layers.TCPOptionKindNop {
			n = 1
		}
		if size+n > TCPMaxOptionLen {
			return false
		}
		size += n
		o := layers.TCPOption{OptionType: kind}
		if kind != layers.TCPOptionKindNop {
			o.OptionLength, o.OptionData = uint8(n), data
		}
		list = append(list, o)
		return true
	}
	for _, k := range r.Perm(7) {
		if r.IntN(2) == 0 {
			continue
		}
		switch k {
		case 0:
			v := uint16(r.Uint32())
			if add(layers.TCPOptionKindMSS, binary.BigEndian.AppendUint16(nil, v)) {
				want.MSS = v
			}
		case 1:
			v := uint8(r.IntN(256))
			if add(layers.TCPOptionKindWindowScale, []byte{v}) {
				want.HasWScale, want.WScale = true, v
			}
		case 2:
			if add(layers.TCPOptionKindSACKPermitted, nil) {
				want.SACKPermitted = true
			}
		case 3:
			v, e := r.Uint32(), r.Uint32()
			if add(layers.TCPOptionKindTimestamps, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, v), e)) {
				want.HasTimestamp, want.TSVal, want.TSEcr = true, v, e
			}
		case 4:
			n := 1 + r.IntN(TCPMaxSACKBlocks)
			var d []byte
			var blocks [TCPMaxSACKBlocks]SACKBlock
			for i := range n {
				s, e := r.Uint32(), r.Uint32()
				d = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(d, s), e)
				blocks[i] = SACKBlock{Seq(s), Seq(e)}
			}
			if add(layers.TCPOptionKindSACK, d) {
				want.NumSACK, want.SACK = uint8(n), blocks
			}
		case 5:
			// Unknown to wire, skipped by length: MPTCP-like (30), TCP
			// Fast Open (34), experimental (253, 254).
			kind := layers.TCPOptionKind([]int{34, 253, 254}[r.IntN(3)])
			add(kind, randBytes(r, r.IntN(6)))
		case 6:
			for range r.IntN(4) {
				add(layers.TCPOptionKindNop, nil)
			}
		}
	}
	return list, want
}

func randomGopacketFrame(r *rand.Rand) *gopacketFrame {
	g := &gopacketFrame{kind: r.IntN(numKinds)}
	g.eth = &layers.Ethernet{SrcMAC: net.HardwareAddr(randBytes(r, 6)), DstMAC: net.HardwareAddr(randBytes(r, 6))}
	g.layers = append(g.layers, g.eth)
	inner := layers.EthernetTypeIPv4
	if g.kind == kindARP {
		inner = layers.EthernetTypeARP
	}
	g.tags = []int{0, 0, 1, 2}[r.IntN(4)]
	next := &g.eth.EthernetType
	for i := range g.tags {
		*next = layers.EthernetTypeDot1Q
		if i == 0 && g.tags == 2 {
			*next = layers.EthernetTypeQinQ
		}
		q := &layers.Dot1Q{Priority: uint8(r.IntN(8)), DropEligible: r.IntN(2) == 0, VLANIdentifier: uint16(r.IntN(4096))}
		g.dot1q = append(g.dot1q, q)
		g.layers = append(g.layers, q)
		next = &q.Type
	}
	*next = inner
	if g.kind == kindARP {
		g.arp = &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: uint16(1 + r.IntN(2)), SourceHwAddress: randBytes(r, 6), SourceProtAddress: randBytes(r, 4),
			DstHwAddress: randBytes(r, 6), DstProtAddress: randBytes(r, 4),
		}
		g.layers = append(g.layers, g.arp)
		return g
	}
	g.ip = &layers.IPv4{
		Version: 4, TOS: uint8(r.Uint32()), Id: uint16(r.Uint32()), TTL: uint8(r.Uint32()),
		SrcIP: net.IP(randBytes(r, 4)), DstIP: net.IP(randBytes(r, 4)),
	}
	if r.IntN(2) == 0 {
		g.ip.Flags = layers.IPv4DontFragment
	}
	if opts := randIPv4Options(r); r.IntN(4) == 0 {
		// Decode gopacket's own view of the options back from bytes.
		var probe layers.IPv4
		hdr := make([]byte, 20+(len(opts)+3)&^3)
		hdr[0] = byte(0x40 | len(hdr)/4)
		binary.BigEndian.PutUint16(hdr[2:], uint16(len(hdr)))
		copy(hdr[20:], opts)
		if err := probe.DecodeFromBytes(hdr, gopacket.NilDecodeFeedback); err == nil {
			g.ip.Options, g.ip.Padding = probe.Options, probe.Padding
		}
	}
	g.layers = append(g.layers, g.ip)
	g.pay = randBytes(r, r.IntN(200))
	switch g.kind {
	case kindTCP:
		g.ip.Protocol = layers.IPProtocolTCP
		g.tcp = &layers.TCP{
			SrcPort: layers.TCPPort(r.Uint32()), DstPort: layers.TCPPort(r.Uint32()), Seq: r.Uint32(), Ack: r.Uint32(),
			FIN: r.IntN(2) == 0, SYN: r.IntN(2) == 0, RST: r.IntN(2) == 0, PSH: r.IntN(2) == 0,
			ACK: r.IntN(2) == 0, URG: r.IntN(2) == 0, ECE: r.IntN(2) == 0, CWR: r.IntN(2) == 0,
			Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()),
		}
		g.tcp.Options, g.tcpOpt = randGopacketTCPOptions(r)
		g.tcp.SetNetworkLayerForChecksum(g.ip)
		g.layers = append(g.layers, g.tcp)
	case kindUDP:
		g.ip.Protocol = layers.IPProtocolUDP
		g.udp = &layers.UDP{SrcPort: layers.UDPPort(r.Uint32()), DstPort: layers.UDPPort(r.Uint32())}
		g.udp.SetNetworkLayerForChecksum(g.ip)
		g.layers = append(g.layers, g.udp)
	case kindICMP:
		g.ip.Protocol = layers.IPProtocolICMPv4
		m := randICMP(r, nil)
		id, seq := m.ID, m.Seq
		switch {
		case icmpv4HasMTU(m.Type, m.Code):
			id, seq = 0, m.MTU
		case m.Type == ICMPv4ParameterProblem:
			id, seq = uint16(m.Pointer)<<8, 0
		}
		g.icmp = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(m.Type, m.Code), Id: id, Seq: seq}
		g.layers = append(g.layers, g.icmp)
	case kindFragment:
		g.ip.Protocol = layers.IPProtocol(r.Uint32())
		g.ip.Flags = 0
		if r.IntN(2) == 0 {
			g.ip.Flags = layers.IPv4MoreFragments
		}
		g.ip.FragOffset = uint16(1 + r.IntN(8000))
	}
	g.layers = append(g.layers, gopacket.Payload(g.pay))
	return g
}

func TestWireDecodesGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(0x9a7e, 2))
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for i := range differentialFrames {
		g := randomGopacketFrame(r)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, g.layers...); err != nil {
			t.Fatalf("frame %d: gopacket serialize: %v", i, err)
		}
		frame := buf.Bytes()
		fail := func(format string, args ...any) {
			t.Helper()
			pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
			t.Fatalf("frame %d %x\n%s\n"+format, append([]any{i, frame, pkt.Dump()}, args...)...)
		}

		e, err := ParseEthernet(frame)
		if err != nil {
			fail("ParseEthernet: %v", err)
		}
		var ef EthernetFields
		ef.Decode(e)
		if !bytes.Equal(ef.Dst[:], g.eth.DstMAC) || !bytes.Equal(ef.Src[:], g.eth.SrcMAC) || e.HeaderLen() != 14+4*g.tags {
			fail("Ethernet %+v, header %d", ef, e.HeaderLen())
		}
		wantType := g.eth.EthernetType
		if g.tags > 0 {
			q := g.dot1q[g.tags-1]
			tci := uint16(q.Priority)<<13 | q.VLANIdentifier
			if q.DropEligible {
				tci |= 0x1000
			}
			if !ef.HasVLAN || ef.VLAN != tci {
				fail("VLAN %v %#x, want %#x", ef.HasVLAN, ef.VLAN, tci)
			}
			wantType = q.Type
		}
		if uint16(ef.EtherType) != uint16(wantType) {
			fail("EtherType %v, want %v", ef.EtherType, wantType)
		}
		if g.tags < 2 {
			b := poisoned(ef.HeaderLen())
			ef.Encode(b)
			if !bytes.Equal(b, frame[:len(b)]) {
				fail("Ethernet re-encoded as %x", b)
			}
		}

		if g.kind == kindARP {
			a, err := ParseARP(e.Payload())
			if err != nil {
				fail("ParseARP: %v", err)
			}
			var af ARPFields
			af.Decode(a)
			if af.Op != g.arp.Operation || !bytes.Equal(af.SenderMAC[:], g.arp.SourceHwAddress) || !bytes.Equal(af.TargetMAC[:], g.arp.DstHwAddress) ||
				!bytes.Equal(af.SenderIP.AsSlice(), g.arp.SourceProtAddress) || !bytes.Equal(af.TargetIP.AsSlice(), g.arp.DstProtAddress) {
				fail("ARP %+v", af)
			}
			b := poisoned(ARPLen)
			af.Encode(b)
			if !bytes.Equal(b, a) {
				fail("ARP re-encoded as %x", b)
			}
			continue
		}

		p, err := ParseIPv4(e.Payload())
		if err != nil {
			fail("ParseIPv4: %v", err)
		}
		var pf IPv4Fields
		pf.Decode(p)
		gi := g.ip
		if !p.ChecksumValid() || pf.Checksum != gi.Checksum || p.HeaderLen() != int(gi.IHL)*4 || pf.TOS != gi.TOS || pf.TotalLen != gi.Length ||
			pf.ID != gi.Id || pf.DF != (gi.Flags&layers.IPv4DontFragment != 0) || pf.MF != (gi.Flags&layers.IPv4MoreFragments != 0) ||
			pf.FragOffset != gi.FragOffset*8 || pf.TTL != gi.TTL || pf.Protocol != uint8(gi.Protocol) ||
			!bytes.Equal(pf.Src.AsSlice(), gi.SrcIP) || !bytes.Equal(pf.Dst.AsSlice(), gi.DstIP) || len(p.Packet()) != int(gi.Length) {
			fail("IPv4 %+v (valid %v)", pf, p.ChecksumValid())
		}
		b := poisoned(pf.HeaderLen())
		pf.Encode(b)
		if !bytes.Equal(b, p[:p.HeaderLen()]) {
			fail("IPv4 header re-encoded as %x", b)
		}
		l4 := p.Payload()

		switch g.kind {
		case kindTCP:
			s, err := ParseTCP(l4)
			if err != nil {
				fail("ParseTCP: %v", err)
			}
			var tf TCPFields
			if err := tf.Decode(s); err != nil {
				fail("TCP Decode: %v", err)
			}
			gt := g.tcp
			var flags TCPFlags
			for bit, set := range []bool{gt.FIN, gt.SYN, gt.RST, gt.PSH, gt.ACK, gt.URG, gt.ECE, gt.CWR} {
				if set {
					flags |= 1 << bit
				}
			}
			if TCPChecksum(l4, pf.Src, pf.Dst) != 0 || tf.Checksum != gt.Checksum || tf.SrcPort != uint16(gt.SrcPort) || tf.DstPort != uint16(gt.DstPort) ||
				tf.Seq != Seq(gt.Seq) || tf.Ack != Seq(gt.Ack) || s.HeaderLen() != int(gt.DataOffset)*4 || tf.Flags != flags ||
				tf.Window != gt.Window || tf.Urgent != gt.Urgent || !bytes.Equal(tf.Payload, g.pay) {
				fail("TCP %v", &tf)
			}
			if tf.Options != g.tcpOpt {
				fail("TCP options %v, want %v", &tf.Options, &g.tcpOpt)
			}
		case kindUDP:
			u, err := ParseUDP(l4)
			if err != nil {
				fail("ParseUDP: %v", err)
			}
			var uf UDPFields
			uf.Decode(u)
			gu := g.udp
			if UDPChecksum(u.Datagram(), pf.Src, pf.Dst) != 0 || uf.Checksum != gu.Checksum || uf.SrcPort != uint16(gu.SrcPort) ||
				uf.DstPort != uint16(gu.DstPort) || u.Length() != gu.Length || !bytes.Equal(uf.Payload, g.pay) {
				fail("UDP %+v", uf)
			}
			b := poisoned(uf.Len())
			uf.Encode(b, pf.Src, pf.Dst)
			if !bytes.Equal(b, u.Datagram()) {
				fail("UDP re-encoded as %x", b)
			}
		case kindICMP:
			m, err := ParseICMPv4(l4)
			if err != nil {
				fail("ParseICMPv4: %v", err)
			}
			var mf ICMPv4Fields
			mf.Decode(m)
			gm := g.icmp
			if !m.ChecksumValid() || mf.Checksum != gm.Checksum || mf.Type != gm.TypeCode.Type() || mf.Code != gm.TypeCode.Code() ||
				m.ID() != gm.Id || m.Seq() != gm.Seq || !bytes.Equal(mf.Payload, g.pay) {
				fail("ICMP %+v", mf)
			}
			b := poisoned(mf.Len())
			mf.Encode(b)
			if !bytes.Equal(b, m) {
				fail("ICMP re-encoded as %x", b)
			}
		case kindFragment:
			if !p.IsFragment() || !bytes.Equal(l4, g.pay) {
				fail("fragment")
			}
		}
	}
}
