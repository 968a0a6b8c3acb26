package wire

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Differential tests of the IPv6 side against gopacket, as gopacket_test.go
// does for IPv4: wire encodes and gopacket decodes (and re-serializes,
// recomputing every length and checksum, to wire's bytes), and gopacket
// serializes and wire decodes (and re-encodes to gopacket's bytes).

// IPv6 frame kinds.
const (
	kind6TCP = iota
	kind6UDP
	kind6Echo
	kind6Error
	kind6NDP
	kind6MLD       // query (v1 or v2), MLDv1 report or done
	kind6MLDReport // MLDv2 report
	kind6Fragment  // a fragment that is not the first
	numKinds6
)

func randAddr6(r *rand.Rand) netip.Addr {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:], r.Uint64())
	binary.BigEndian.PutUint64(a[8:], r.Uint64())
	return netip.AddrFrom16(a)
}

// randExt is an extension header to put before the upper layer.
type randExt struct {
	next uint8 // this header's type: ProtoHopByHop, ProtoDestOpts or ProtoRouting
	opts IPv6OptionsFields
	// routing header: type, reserved word, data after the first 8 bytes
	rtype    uint8
	reserved [4]byte
	data     []byte
}

// randOptions returns options Walk accepts: Router Alert (hop-by-hop only),
// unknown options of the skip kind with up to 8 bytes of data, and short
// padding between them, at most 8 options; never more than 7 bytes of
// padding in a row, counting what Encode adds at the end.
func randOptions(r *rand.Rand, hbh bool) []byte {
	var o []byte
	run := 0 // padding bytes since the last option
	for n := r.IntN(5); n > 0; n-- {
		switch k := r.IntN(4); {
		case k == 0 && hbh:
			ra := RouterAlertOption(uint16(r.Uint32()))
			o, run = append(o, ra[:]...), 0
		case k == 1 && run+1 <= 7:
			o, run = append(o, IPv6OptPad1), run+1
		case k == 2 && run+3 <= 7:
			o, run = append(o, IPv6OptPadN, 1, 0), run+3
		default:
			typ := uint8(2 + r.IntN(62)) // action 00, not Pad1, PadN or Router Alert
			if typ == IPv6OptRouterAlert {
				typ = 0x1e
			}
			d := randBytes(r, r.IntN(9))
			o, run = append(append(o, typ, byte(len(d))), d...), 0
		}
	}
	if run > 0 {
		o = append(o, 0x1e, 0)
	}
	return o
}

type randFrame6 struct {
	kind    int
	eth     EthernetFields
	ip      IPv6Fields
	exts    []randExt
	tcp     TCPFields
	udp     UDPFields
	icmp    ICMPv6Fields
	ndp     NDPFields
	ndpOpts NDPOptions
	pi      []NDPPrefixInfo
	mld     MLDFields
	report  MLDv2ReportFields
	frag    IPv6FragmentFields
	raw     []byte
}

func randomFrame6(r *rand.Rand) randFrame6 {
	f := randFrame6{kind: r.IntN(numKinds6)}
	f.eth = EthernetFields{Dst: randMAC(r), Src: randMAC(r), EtherType: EtherTypeIPv6}
	if r.IntN(4) == 0 {
		f.eth.HasVLAN, f.eth.VLAN = true, uint16(r.Uint32())
	}
	f.ip = IPv6Fields{TrafficClass: uint8(r.Uint32()), FlowLabel: r.Uint32() & 0xfffff, HopLimit: uint8(r.Uint32()), Src: randAddr6(r), Dst: randAddr6(r)}
	// Extension headers: hop-by-hop first, then destination options and
	// routing headers (no segments left) in any order.
	if r.IntN(3) == 0 {
		f.exts = append(f.exts, randExt{next: ProtoHopByHop, opts: IPv6OptionsFields{Options: randOptions(r, true)}})
	}
	for n := r.IntN(3); n > 0 && r.IntN(2) == 0; n-- {
		if r.IntN(2) == 0 {
			f.exts = append(f.exts, randExt{next: ProtoDestOpts, opts: IPv6OptionsFields{Options: randOptions(r, false)}})
		} else {
			e := randExt{next: ProtoRouting, rtype: uint8([]int{2, 3, 4, 253}[r.IntN(4)]), data: randBytes(r, 8*r.IntN(4))}
			copy(e.reserved[:], randBytes(r, 4))
			f.exts = append(f.exts, e)
		}
	}
	payload := randBytes(r, r.IntN(120))
	switch f.kind {
	case kind6TCP:
		f.tcp = TCPFields{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Seq: Seq(r.Uint32()), Ack: Seq(r.Uint32()),
			Flags: TCPFlags(r.Uint32()), Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()), Options: randTCPOptions(r), Payload: payload}
	case kind6UDP:
		f.udp = UDPFields{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Payload: payload}
	case kind6Echo:
		f.icmp = ICMPv6Fields{Type: uint8(ICMPv6EchoRequest + r.IntN(2)), ID: uint16(r.Uint32()), Seq: uint16(r.Uint32()), Payload: payload}
	case kind6Error:
		f.icmp = ICMPv6Fields{Type: uint8(1 + r.IntN(4)), Code: uint8(r.IntN(5)), Payload: payload}
		switch f.icmp.Type {
		case ICMPv6PacketTooBig:
			f.icmp.MTU = r.Uint32()
		case ICMPv6ParameterProblem:
			f.icmp.Pointer = r.Uint32()
		}
	case kind6NDP:
		f.ndp = NDPFields{Type: uint8(ICMPv6RouterSolicit + r.IntN(5))}
		switch f.ndp.Type {
		case ICMPv6RouterAdvert:
			f.ndp.CurHopLimit, f.ndp.RAFlags, f.ndp.RouterLifetime = uint8(r.Uint32()), uint8(r.Uint32()), uint16(r.Uint32())
			f.ndp.ReachableTime, f.ndp.RetransTimer = r.Uint32(), r.Uint32()
			f.ndpOpts.MTU, f.ndpOpts.HasMTU = r.Uint32(), r.IntN(2) == 0
			for n := r.IntN(3); n > 0; n-- {
				f.pi = append(f.pi, NDPPrefixInfo{PrefixLen: uint8(r.IntN(129)), Flags: uint8(r.Uint32()), ValidLifetime: r.Uint32(), PreferredLifetime: r.Uint32(), Prefix: randAddr6(r)})
			}
		case ICMPv6NeighborAdvert:
			f.ndp.Router, f.ndp.Solicited, f.ndp.Override = r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(2) == 0
			f.ndp.Target = randAddr6(r)
		case ICMPv6NeighborSolicit:
			f.ndp.Target = randAddr6(r)
			if r.IntN(2) == 0 {
				f.ndpOpts.Nonce = randBytes(r, 6)
			}
		case ICMPv6Redirect:
			f.ndp.Target, f.ndp.Destination = randAddr6(r), randAddr6(r)
			if r.IntN(2) == 0 {
				f.ndpOpts.RedirectedHeader = randBytes(r, 8*r.IntN(8))
			}
		}
		if r.IntN(2) == 0 {
			f.ndpOpts.SourceLinkAddr, f.ndpOpts.HasSourceLinkAddr = randMAC(r), true
		}
		if r.IntN(3) == 0 {
			f.ndpOpts.TargetLinkAddr, f.ndpOpts.HasTargetLinkAddr = randMAC(r), true
		}
		opts := make([]byte, f.ndpOpts.Len()+NDPPrefixInfoLen*len(f.pi))
		i := f.ndpOpts.Encode(opts)
		for j := range f.pi {
			i += f.pi[j].Encode(opts[i:])
		}
		f.ndp.Options = opts
	case kind6MLD:
		f.mld = MLDFields{Type: uint8(ICMPv6MLDQuery + r.IntN(3)), MaxRespCode: uint16(r.Uint32()), Multicast: randAddr6(r)}
		if f.mld.Type == ICMPv6MLDQuery && r.IntN(2) == 0 {
			f.mld.V2, f.mld.SuppressRouterProcessing, f.mld.QRV, f.mld.QQIC = true, r.IntN(2) == 0, uint8(r.IntN(8)), uint8(r.Uint32())
			for n := r.IntN(4); n > 0; n-- {
				f.mld.Sources = AppendIPv6Addrs(f.mld.Sources, randAddr6(r))
			}
		}
	case kind6MLDReport:
		for n := r.IntN(4); n > 0; n-- {
			rec := MLDv2RecordFields{Type: uint8(1 + r.IntN(6)), Multicast: randAddr6(r), AuxData: randBytes(r, 4*r.IntN(3))}
			for m := r.IntN(3); m > 0; m-- {
				rec.Sources = AppendIPv6Addrs(rec.Sources, randAddr6(r))
			}
			f.report.Records = append(f.report.Records, rec)
		}
	case kind6Fragment:
		f.frag = IPv6FragmentFields{NextHeader: uint8(r.Uint32()), Offset: uint16(8 * (1 + r.IntN(8000))), More: r.IntN(2) == 0, ID: r.Uint32()}
		f.raw = randBytes(r, 8*r.IntN(20))
	}
	return f
}

// upperProto returns the protocol after the extension headers.
func (f *randFrame6) upperProto() uint8 {
	switch f.kind {
	case kind6TCP:
		return ProtoTCP
	case kind6UDP:
		return ProtoUDP
	case kind6Fragment:
		return ProtoFragment
	}
	return ProtoICMPv6
}

// encode writes the frame with wire's encoders.
func (f *randFrame6) encode() []byte {
	b := make([]byte, 0, 2048)
	eth := make([]byte, f.eth.HeaderLen())
	f.eth.Encode(eth)
	b = append(b, eth...)
	var chain []byte
	for i, e := range f.exts {
		next := f.upperProto()
		if i+1 < len(f.exts) {
			next = f.exts[i+1].next
		}
		var h []byte
		if e.next == ProtoRouting {
			h = append([]byte{next, byte((8+len(e.data))/8 - 1), e.rtype, 0}, e.reserved[:]...)
			h = append(h, e.data...)
		} else {
			e.opts.NextHeader = next
			h = make([]byte, e.opts.Len())
			e.opts.Encode(h)
		}
		chain = append(chain, h...)
	}
	var upper []byte
	src, dst := f.ip.Src, f.ip.Dst
	switch f.kind {
	case kind6TCP:
		upper = make([]byte, f.tcp.HeaderLen()+len(f.tcp.Payload))
		f.tcp.Encode(upper)
		TCP(upper).SetChecksum(TCPChecksum(upper, src, dst))
	case kind6UDP:
		upper = make([]byte, f.udp.Len())
		f.udp.Encode(upper, src, dst)
	case kind6Echo, kind6Error:
		upper = make([]byte, f.icmp.Len())
		f.icmp.Encode(upper, src, dst)
	case kind6NDP:
		upper = make([]byte, f.ndp.Len())
		f.ndp.Encode(upper, src, dst)
	case kind6MLD:
		upper = make([]byte, f.mld.Len())
		f.mld.Encode(upper, src, dst)
	case kind6MLDReport:
		upper = make([]byte, f.report.Len())
		f.report.Encode(upper, src, dst)
	case kind6Fragment:
		upper = make([]byte, IPv6FragmentLen, IPv6FragmentLen+len(f.raw))
		f.frag.Encode(upper)
		upper = append(upper, f.raw...)
	}
	f.ip.NextHeader = f.upperProto()
	if len(f.exts) > 0 {
		f.ip.NextHeader = f.exts[0].next
	}
	f.ip.PayloadLen = uint16(len(chain) + len(upper))
	ip := make([]byte, IPv6HeaderLen)
	f.ip.Encode(ip)
	return append(append(append(b, ip...), chain...), upper...)
}

func TestGopacketDecodesWire6(t *testing.T) {
	r := rand.New(rand.NewPCG(0x9a7e, 6))
	for i := range differentialFrames {
		f := randomFrame6(r)
		frame := f.encode()
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("frame %d %x\n%s\n"+format, append([]any{i, frame, pkt.Dump()}, args...)...)
		}
		if el := pkt.ErrorLayer(); el != nil {
			fail("gopacket: %v", el.Error())
		}
		ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip.Version != 6 || ip.TrafficClass != f.ip.TrafficClass || ip.FlowLabel != f.ip.FlowLabel || ip.Length != f.ip.PayloadLen ||
			uint8(ip.NextHeader) != f.ip.NextHeader || ip.HopLimit != f.ip.HopLimit || !ip.SrcIP.Equal(f.ip.Src.AsSlice()) || !ip.DstIP.Equal(f.ip.Dst.AsSlice()) {
			fail("IPv6 %+v, want %v", ip, &f.ip)
		}

		// The extension headers, in order, with their options.
		var got []gopacket.Layer
		for _, l := range pkt.Layers() {
			switch l.LayerType() {
			case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6Routing:
				got = append(got, l)
			}
		}
		if len(got) != len(f.exts) {
			fail("%d extension headers, want %d", len(got), len(f.exts))
		}
		for j, e := range f.exts {
			switch l := got[j].(type) {
			case *layers.IPv6HopByHop:
				checkGopacketOptions(fail, e, ProtoHopByHop, l.Contents, func() (o []gopacketTLV) {
					for _, x := range l.Options {
						o = append(o, gopacketTLV{x.OptionType, x.OptionData})
					}
					return o
				}())
			case *layers.IPv6Destination:
				checkGopacketOptions(fail, e, ProtoDestOpts, l.Contents, func() (o []gopacketTLV) {
					for _, x := range l.Options {
						o = append(o, gopacketTLV{x.OptionType, x.OptionData})
					}
					return o
				}())
			case *layers.IPv6Routing:
				if e.next != ProtoRouting || l.RoutingType != e.rtype || l.SegmentsLeft != 0 || !bytes.Equal(l.Reserved, e.reserved[:]) || !bytes.Equal(l.Data, e.data) {
					fail("routing header %d: %+v, want %+v", j, l, e)
				}
			}
		}
		// Wire's own walk agrees on where the upper layer starts.
		p := mustIPv6(frame)
		var c IPv6Chain
		if err := c.Walk(p); err != nil || c.Headers != len(f.exts)+b2i(f.kind == kind6Fragment) {
			fail("Walk: %v %+v", err, c)
		}

		switch f.kind {
		case kind6TCP:
			s := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if uint16(s.SrcPort) != f.tcp.SrcPort || Seq(s.Seq) != f.tcp.Seq || Seq(s.Ack) != f.tcp.Ack || s.Window != f.tcp.Window ||
				!bytes.Equal(s.Payload, f.tcp.Payload) || gopacketTCPOptions(t, s.Options) != f.tcp.Options {
				fail("TCP %+v, want %v", s, &f.tcp)
			}
			s.SetNetworkLayerForChecksum(ip)
			if c, err := s.ComputeChecksum(); err != nil || c != 0 {
				fail("gopacket verifies wire's TCP checksum %#x as %#x (%v)", s.Checksum, c, err)
			}
		case kind6UDP:
			u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if uint16(u.SrcPort) != f.udp.SrcPort || uint16(u.DstPort) != f.udp.DstPort || int(u.Length) != f.udp.Len() || !bytes.Equal(u.Payload, f.udp.Payload) {
				fail("UDP %+v", u)
			}
		case kind6Echo, kind6Error:
			m := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			if m.TypeCode.Type() != f.icmp.Type || m.TypeCode.Code() != f.icmp.Code {
				fail("ICMPv6 %+v", m)
			}
			if f.kind == kind6Echo {
				e := pkt.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
				if e.Identifier != f.icmp.ID || e.SeqNumber != f.icmp.Seq || !bytes.Equal(e.Payload, f.icmp.Payload) {
					fail("echo %+v", e)
				}
			} else if w := binary.BigEndian.Uint32(m.Payload); w != f.icmp.MTU|f.icmp.Pointer || !bytes.Equal(m.Payload[4:], f.icmp.Payload) {
				fail("second word %#x", w)
			}
		case kind6NDP:
			checkGopacketNDP(fail, pkt, &f)
		case kind6MLD:
			checkGopacketMLD(fail, pkt, &f.mld)
		case kind6MLDReport:
			rep := pkt.Layer(layers.LayerTypeMLDv2MulticastListenerReport).(*layers.MLDv2MulticastListenerReportMessage)
			if len(rep.MulticastAddressRecords) != len(f.report.Records) || int(rep.NumberOfMulticastAddressRecords) != len(f.report.Records) {
				fail("%d records", len(rep.MulticastAddressRecords))
			}
			for j, want := range f.report.Records {
				g := rep.MulticastAddressRecords[j]
				if uint8(g.RecordType) != want.Type || int(g.AuxDataLen) != len(want.AuxData)/4 || int(g.N) != want.Sources.Len() ||
					!g.MulticastAddress.Equal(want.Multicast.AsSlice()) || !bytes.Equal(g.AuxiliaryData, want.AuxData) && len(want.AuxData) > 0 {
					fail("record %d %+v, want %+v", j, g, want)
				}
				for k := range g.SourceAddresses {
					if !g.SourceAddresses[k].Equal(want.Sources.At(k).AsSlice()) {
						fail("record %d source %d", j, k)
					}
				}
			}
		case kind6Fragment:
			fr := pkt.Layer(layers.LayerTypeIPv6Fragment).(*layers.IPv6Fragment)
			if uint8(fr.NextHeader) != f.frag.NextHeader || fr.FragmentOffset*8 != f.frag.Offset || fr.MoreFragments != f.frag.More || fr.Identification != f.frag.ID {
				fail("fragment %+v, want %+v", fr, f.frag)
			}
			if d, _ := pkt.Layer(gopacket.LayerTypeFragment).(*gopacket.Fragment); len(f.raw) > 0 && (d == nil || !bytes.Equal(*d, f.raw)) {
				fail("fragment data")
			}
		}
		reserialize6(t, pkt, frame, fail)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

type gopacketTLV struct {
	typ  uint8
	data []byte
}

// checkGopacketOptions compares gopacket's options of an options header
// with the ones wire encoded, padding included.
func checkGopacketOptions(fail func(string, ...any), e randExt, typ uint8, contents []byte, got []gopacketTLV) {
	if e.next != typ {
		fail("header of type %d where %d was encoded", typ, e.next)
	}
	// Walk wire's encoding of the same header as the reference list.
	var want []gopacketTLV
	for d := contents[2:]; len(d) > 0; {
		if d[0] == IPv6OptPad1 {
			want = append(want, gopacketTLV{0, nil})
			d = d[1:]
			continue
		}
		n := 2 + int(d[1])
		want = append(want, gopacketTLV{d[0], d[2:n]})
		d = d[n:]
	}
	if len(got) != len(want) || !bytes.HasPrefix(contents[2:], e.opts.Options) {
		fail("%d options %v, want %d %v", len(got), got, len(want), want)
	}
	for k := range got {
		if got[k].typ != want[k].typ || !bytes.Equal(got[k].data, want[k].data) {
			fail("option %d: %v, want %v", k, got[k], want[k])
		}
	}
}

func checkGopacketNDP(fail func(string, ...any), pkt gopacket.Packet, f *randFrame6) {
	w := &f.ndp
	var opts layers.ICMPv6Options
	eqIP := func(ip net.IP, a netip.Addr) bool { return ip.Equal(a.AsSlice()) }
	switch w.Type {
	case ICMPv6RouterSolicit:
		m := pkt.Layer(layers.LayerTypeICMPv6RouterSolicitation).(*layers.ICMPv6RouterSolicitation)
		opts = m.Options
	case ICMPv6RouterAdvert:
		m := pkt.Layer(layers.LayerTypeICMPv6RouterAdvertisement).(*layers.ICMPv6RouterAdvertisement)
		if m.HopLimit != w.CurHopLimit || m.Flags != w.RAFlags || m.RouterLifetime != w.RouterLifetime || m.ReachableTime != w.ReachableTime ||
			m.RetransTimer != w.RetransTimer || m.ManagedAddressConfig() != (w.RAFlags&NDPRAManaged != 0) || m.OtherConfig() != (w.RAFlags&NDPRAOther != 0) {
			fail("RA %+v, want %+v", m, w)
		}
		opts = m.Options
	case ICMPv6NeighborSolicit:
		m := pkt.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
		if !eqIP(m.TargetAddress, w.Target) {
			fail("NS %+v", m)
		}
		opts = m.Options
	case ICMPv6NeighborAdvert:
		m := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if !eqIP(m.TargetAddress, w.Target) || m.Router() != w.Router || m.Solicited() != w.Solicited || m.Override() != w.Override {
			fail("NA %+v, want %+v", m, w)
		}
		opts = m.Options
	case ICMPv6Redirect:
		m := pkt.Layer(layers.LayerTypeICMPv6Redirect).(*layers.ICMPv6Redirect)
		if !eqIP(m.TargetAddress, w.Target) || !eqIP(m.DestinationAddress, w.Destination) {
			fail("redirect %+v", m)
		}
		opts = m.Options
	}
	// gopacket's options, decoded by wire's accessors, give back what was
	// encoded.
	var got NDPOptions
	var pis []NDPPrefixInfo
	for _, o := range opts {
		raw := NDPOption(append([]byte{byte(o.Type), byte((len(o.Data) + 2) / 8)}, o.Data...))
		switch uint8(o.Type) {
		case NDPOptSourceLinkAddr:
			got.SourceLinkAddr, got.HasSourceLinkAddr = raw.LinkAddr(), true
		case NDPOptTargetLinkAddr:
			got.TargetLinkAddr, got.HasTargetLinkAddr = raw.LinkAddr(), true
		case NDPOptMTU:
			got.MTU, got.HasMTU = raw.MTU(), true
		case NDPOptNonce:
			got.Nonce = raw.Body()
		case NDPOptRedirectedHeader:
			got.RedirectedHeader = raw.RedirectedHeader()
		case NDPOptPrefixInfo:
			pis = append(pis, raw.PrefixInfo())
		default:
			fail("option type %d", o.Type)
		}
	}
	want := f.ndpOpts
	if !want.HasMTU {
		want.MTU = 0
	}
	if !eqNDPOptions(got, want) || len(pis) != len(f.pi) {
		fail("options %+v, want %+v", got, want)
	}
	for i := range pis {
		if pis[i] != f.pi[i] {
			fail("prefix %d %+v, want %+v", i, pis[i], f.pi[i])
		}
	}
}

func checkGopacketMLD(fail func(string, ...any), pkt gopacket.Packet, w *MLDFields) {
	switch {
	case w.v2():
		m := pkt.Layer(layers.LayerTypeMLDv2MulticastListenerQuery).(*layers.MLDv2MulticastListenerQueryMessage)
		if m.MaximumResponseCode != w.MaxRespCode || !m.MulticastAddress.Equal(w.Multicast.AsSlice()) || m.SuppressRoutersideProcessing != w.SuppressRouterProcessing ||
			m.QueriersRobustnessVariable != w.QRV || m.QueriersQueryIntervalCode != w.QQIC || int(m.NumberOfSources) != w.Sources.Len() {
			fail("MLDv2 query %+v, want %+v", m, w)
		}
		for k := range m.SourceAddresses {
			if !m.SourceAddresses[k].Equal(w.Sources.At(k).AsSlice()) {
				fail("source %d", k)
			}
		}
	default:
		var m *layers.MLDv1Message
		switch w.Type {
		case ICMPv6MLDQuery:
			m = &pkt.Layer(layers.LayerTypeMLDv1MulticastListenerQuery).(*layers.MLDv1MulticastListenerQueryMessage).MLDv1Message
		case ICMPv6MLDv1Report:
			m = &pkt.Layer(layers.LayerTypeMLDv1MulticastListenerReport).(*layers.MLDv1MulticastListenerReportMessage).MLDv1Message
		default:
			m = &pkt.Layer(layers.LayerTypeMLDv1MulticastListenerDone).(*layers.MLDv1MulticastListenerDoneMessage).MLDv1Message
		}
		if m.MaximumResponseDelay != time.Duration(w.MaxRespCode)*time.Millisecond || !m.MulticastAddress.Equal(w.Multicast.AsSlice()) {
			fail("MLDv1 %+v, want %+v", m, w)
		}
	}
}

// reserialize6 has gopacket serialize the layers it decoded, recomputing
// every checksum, and checks the result is wire's frame.
//
// gopacket v1.7.7 writes NDP options in reverse order (ICMPv6Options
// prepends each one in turn), so they are reversed first.
func reserialize6(t *testing.T, pkt gopacket.Packet, frame []byte, fail func(string, ...any)) {
	t.Helper()
	var ls []gopacket.SerializableLayer
	var ip *layers.IPv6
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv6:
			ip = l
		case *layers.TCP:
			l.SetNetworkLayerForChecksum(ip)
		case *layers.UDP:
			l.SetNetworkLayerForChecksum(ip)
		case *layers.ICMPv6:
			l.SetNetworkLayerForChecksum(ip)
		case *layers.ICMPv6RouterSolicitation:
			reverseOptions(l.Options)
		case *layers.ICMPv6RouterAdvertisement:
			reverseOptions(l.Options)
		case *layers.ICMPv6NeighborSolicitation:
			reverseOptions(l.Options)
		case *layers.ICMPv6NeighborAdvertisement:
			reverseOptions(l.Options)
		case *layers.ICMPv6Redirect:
			reverseOptions(l.Options)
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
		want = append(slicesClone(frame), make([]byte, 60-len(frame))...)
	}
	if d := diffBytes(buf.Bytes(), want); d != "" {
		fail("gopacket re-serialized differently: %s", d)
	}
}

// TestWireDecodesGopacket6 has gopacket build IPv6 frames (lengths and
// checksums computed by it) and checks what wire decodes from them.
func TestWireDecodesGopacket6(t *testing.T) {
	r := rand.New(rand.NewPCG(0x9a7e, 7))
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for i := range differentialFrames {
		kind := r.IntN(numKinds6)
		eth := &layers.Ethernet{SrcMAC: randBytes(r, 6), DstMAC: randBytes(r, 6), EthernetType: layers.EthernetTypeIPv6}
		ip := &layers.IPv6{Version: 6, TrafficClass: uint8(r.Uint32()), FlowLabel: r.Uint32() & 0xfffff, HopLimit: uint8(r.Uint32()),
			SrcIP: randAddr6(r).AsSlice(), DstIP: randAddr6(r).AsSlice()}
		ls := []gopacket.SerializableLayer{eth, ip}
		var hbh *layers.IPv6HopByHop
		// Options headers whose options fill whole 8-byte units: with
		// FixLengths, gopacket v1.7.7 pads others by length%8 bytes
		// instead of the rest of the unit and refuses them.
		if r.IntN(3) == 0 {
			hbh = &layers.IPv6HopByHop{}
			d := randBytes(r, 4+8*r.IntN(2))
			hbh.Options = append(hbh.Options, &layers.IPv6HopByHopOption{OptionType: uint8(0x1e), OptionData: d})
			ip.HopByHop = hbh
		}
		var dst *layers.IPv6Destination
		if r.IntN(3) == 0 {
			dst = &layers.IPv6Destination{}
			d := randBytes(r, 4+8*r.IntN(2))
			dst.Options = append(dst.Options, &layers.IPv6DestinationOption{OptionType: 0x3e, OptionData: d})
			ls = append(ls, dst)
		}
		var next layers.IPProtocol
		var upper []gopacket.SerializableLayer
		var icmp *layers.ICMPv6
		payload := randBytes(r, r.IntN(100))
		var wantTCP TCPFields
		switch kind {
		case kind6TCP:
			next = layers.IPProtocolTCP
			s := &layers.TCP{SrcPort: layers.TCPPort(r.Uint32()), DstPort: layers.TCPPort(r.Uint32()), Seq: r.Uint32(), Ack: r.Uint32(),
				SYN: r.IntN(2) == 0, ACK: r.IntN(2) == 0, Window: uint16(r.Uint32())}
			s.Options, wantTCP.Options = randGopacketTCPOptions(r)
			s.SetNetworkLayerForChecksum(ip)
			upper = append(upper, s, gopacket.Payload(payload))
		case kind6UDP:
			next = layers.IPProtocolUDP
			u := &layers.UDP{SrcPort: layers.UDPPort(r.Uint32()), DstPort: layers.UDPPort(r.Uint32())}
			u.SetNetworkLayerForChecksum(ip)
			upper = append(upper, u, gopacket.Payload(payload))
		case kind6Fragment:
			// RFC 8200 §4.5: a fragment that is not the last holds a
			// multiple of 8 bytes (Walk checks it).
			next = layers.IPProtocolIPv6Fragment
			more := r.IntN(2) == 0
			if more {
				payload = payload[:len(payload)&^7]
			}
			upper = append(upper, &layers.IPv6Fragment{NextHeader: layers.IPProtocol(r.Uint32()), FragmentOffset: uint16(1 + r.IntN(8000)),
				MoreFragments: more, Identification: r.Uint32()}, gopacket.Payload(payload))
		default:
			next = layers.IPProtocolICMPv6
			icmp = &layers.ICMPv6{}
			icmp.SetNetworkLayerForChecksum(ip)
			var msg gopacket.SerializableLayer
			switch kind {
			case kind6Echo:
				icmp.TypeCode = layers.CreateICMPv6TypeCode(uint8(ICMPv6EchoRequest+r.IntN(2)), 0)
				msg = &layers.ICMPv6Echo{Identifier: uint16(r.Uint32()), SeqNumber: uint16(r.Uint32())}
			case kind6Error:
				icmp.TypeCode = layers.CreateICMPv6TypeCode(uint8(1+r.IntN(4)), uint8(r.IntN(7)))
				payload = append(binary.BigEndian.AppendUint32(nil, r.Uint32()), payload...)
			case kind6NDP:
				o := layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: randBytes(r, 6)}, {Type: layers.ICMPv6OptMTU, Data: randBytes(r, 6)}}
				tgt := randAddr6(r).AsSlice()
				switch r.IntN(4) {
				case 0:
					icmp.TypeCode = layers.CreateICMPv6TypeCode(ICMPv6RouterSolicit, 0)
					msg = &layers.ICMPv6RouterSolicitation{Options: o}
				case 1:
					icmp.TypeCode = layers.CreateICMPv6TypeCode(ICMPv6RouterAdvert, 0)
					o = append(o, layers.ICMPv6Option{Type: layers.ICMPv6OptPrefixInfo, Data: randBytes(r, 30)})
					msg = &layers.ICMPv6RouterAdvertisement{HopLimit: uint8(r.Uint32()), Flags: uint8(r.Uint32()), RouterLifetime: uint16(r.Uint32()),
						ReachableTime: r.Uint32(), RetransTimer: r.Uint32(), Options: o}
				case 2:
					icmp.TypeCode = layers.CreateICMPv6TypeCode(ICMPv6NeighborSolicit, 0)
					msg = &layers.ICMPv6NeighborSolicitation{TargetAddress: tgt, Options: o}
				default:
					icmp.TypeCode = layers.CreateICMPv6TypeCode(ICMPv6NeighborAdvert, 0)
					msg = &layers.ICMPv6NeighborAdvertisement{Flags: uint8(r.Uint32()) & 0xe0, TargetAddress: tgt, Options: o}
				}
				payload = nil
			case kind6MLD:
				icmp.TypeCode = layers.CreateICMPv6TypeCode(ICMPv6MLDQuery, 0)
				q := &layers.MLDv2MulticastListenerQueryMessage{MaximumResponseCode: uint16(r.Uint32()), MulticastAddress: randAddr6(r).AsSlice(),
					SuppressRoutersideProcessing: r.IntN(2) == 0, QueriersRobustnessVariable: uint8(r.IntN(8)), QueriersQueryIntervalCode: uint8(r.Uint32())}
				for n := r.IntN(3); n > 0; n-- {
					q.SourceAddresses = append(q.SourceAddresses, randAddr6(r).AsSlice())
				}
				msg, payload = q, nil
			case kind6MLDReport:
				icmp.TypeCode = layers.CreateICMPv6TypeCode(ICMPv6MLDv2Report, 0)
				rep := &layers.MLDv2MulticastListenerReportMessage{}
				for n := r.IntN(3); n > 0; n-- {
					rec := layers.MLDv2MulticastAddressRecord{RecordType: layers.MLDv2MulticastAddressRecordType(1 + r.IntN(6)), MulticastAddress: randAddr6(r).AsSlice()}
					for m := r.IntN(3); m > 0; m-- {
						rec.SourceAddresses = append(rec.SourceAddresses, randAddr6(r).AsSlice())
					}
					rep.MulticastAddressRecords = append(rep.MulticastAddressRecords, rec)
				}
				// gopacket puts the report's first 4 bytes after the
				// ICMPv6 header: reserved, number of records.
				msg, payload = rep, nil
			}
			upper = append(upper, icmp)
			if msg != nil {
				upper = append(upper, msg)
			}
			if payload != nil {
				upper = append(upper, gopacket.Payload(payload))
			}
		}
		// Chain the next headers.
		switch {
		case dst != nil:
			dst.NextHeader = next
			next = layers.IPProtocolIPv6Destination
		}
		if hbh != nil {
			hbh.NextHeader = next
			ip.NextHeader = layers.IPProtocolIPv6HopByHop
		} else {
			ip.NextHeader = next
		}
		ls = append(ls, upper...)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
			t.Fatalf("frame %d: gopacket serialize: %v", i, err)
		}
		frame := buf.Bytes()
		fail := func(format string, args ...any) {
			t.Helper()
			pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
			t.Fatalf("frame %d kind %d %x\n%s\n"+format, append([]any{i, kind, frame, pkt.Dump()}, args...)...)
		}
		e, err := ParseEthernet(frame)
		if err != nil || e.EtherType() != EtherTypeIPv6 {
			fail("ParseEthernet: %v", err)
		}
		p, err := ParseIPv6(e.Payload())
		if err != nil {
			fail("ParseIPv6: %v", err)
		}
		var pf IPv6Fields
		pf.Decode(p)
		if pf.TrafficClass != ip.TrafficClass || pf.FlowLabel != ip.FlowLabel || pf.PayloadLen != ip.Length || pf.NextHeader != uint8(ip.NextHeader) ||
			pf.HopLimit != ip.HopLimit || !bytes.Equal(pf.Src.AsSlice(), ip.SrcIP) || !bytes.Equal(pf.Dst.AsSlice(), ip.DstIP) {
			fail("IPv6 %v", &pf)
		}
		hb := poisoned(IPv6HeaderLen)
		if pf.Encode(hb); !bytes.Equal(hb, p[:IPv6HeaderLen]) {
			fail("IPv6 header re-encoded as %x", hb)
		}
		var c IPv6Chain
		if err := c.Walk(p); err != nil || c.Proto != uint8(next) && kind != kind6Fragment && (hbh == nil && dst == nil) {
			fail("Walk: %v %+v", err, c)
		}
		wantHeaders := b2i(hbh != nil) + b2i(dst != nil) + b2i(kind == kind6Fragment)
		if c.Headers != wantHeaders || c.RouterAlert {
			fail("Walk: %d headers, want %d", c.Headers, wantHeaders)
		}
		up := c.Upper(p)
		switch kind {
		case kind6TCP:
			s, err := ParseTCP(up)
			var tf TCPFields
			if err != nil || tf.Decode(s) != nil || TCPChecksum(up, pf.Src, pf.Dst) != 0 || tf.Options != wantTCP.Options || !bytes.Equal(tf.Payload, payload) {
				fail("TCP %v %v", &tf, err)
			}
		case kind6UDP:
			u, err := ParseUDP(up)
			if err != nil || UDPChecksum(u.Datagram(), pf.Src, pf.Dst) != 0 || !bytes.Equal(u.Payload(), payload) {
				fail("UDP %v", err)
			}
		case kind6Fragment:
			g := upper[0].(*layers.IPv6Fragment)
			if !c.Fragmented() || c.Frag.ID != g.Identification || c.Frag.Offset != 8*g.FragmentOffset || c.Frag.More != g.MoreFragments ||
				c.Proto != uint8(g.NextHeader) || !bytes.Equal(up, payload) {
				fail("fragment %+v", c)
			}
		default:
			checkWireICMPv6(fail, up, pf.Src, pf.Dst, icmp, upper)
		}
	}
}

// reverseOptions reverses an NDP option list in place.
func reverseOptions(o layers.ICMPv6Options) {
	for i, j := 0, len(o)-1; i < j; i, j = i+1, j-1 {
		o[i], o[j] = o[j], o[i]
	}
}

// checkWireICMPv6 checks wire's decoding of an ICMPv6 message gopacket
// built.
func checkWireICMPv6(fail func(string, ...any), b []byte, src, dst netip.Addr, icmp *layers.ICMPv6, upper []gopacket.SerializableLayer) {
	m, err := ParseICMPv6(b)
	if err != nil || ICMPv6Checksum(m, src, dst) != 0 || m.Type() != icmp.TypeCode.Type() || m.Code() != icmp.TypeCode.Code() || m.Checksum() != icmp.Checksum {
		fail("ICMPv6: %v", err)
	}
	var msg gopacket.SerializableLayer
	if len(upper) > 1 {
		msg = upper[1]
	}
	eqIP := func(a netip.Addr, ip net.IP) bool { return bytes.Equal(a.AsSlice(), ip) }
	switch g := msg.(type) {
	case *layers.ICMPv6Echo:
		if m.ID() != g.Identifier || m.Seq() != g.SeqNumber {
			fail("echo")
		}
	case gopacket.Payload: // an error: the second word and the quote
		var f ICMPv6Fields
		f.Decode(m)
		if !bytes.Equal(m[4:], g) || f.Type == ICMPv6PacketTooBig && f.MTU != binary.BigEndian.Uint32(g) ||
			f.Type == ICMPv6ParameterProblem && f.Pointer != binary.BigEndian.Uint32(g) {
			fail("error %v", &f)
		}
		e := poisoned(f.Len())
		if f.Encode(e, src, dst); f.Type != ICMPv6DestUnreachable && f.Type != ICMPv6TimeExceeded && !bytes.Equal(e, b) {
			fail("re-encoded %x", e)
		}
	case *layers.ICMPv6RouterSolicitation, *layers.ICMPv6RouterAdvertisement, *layers.ICMPv6NeighborSolicitation, *layers.ICMPv6NeighborAdvertisement:
		n, err := ParseNDP(b)
		if err != nil {
			fail("ParseNDP: %v", err)
		}
		var f NDPFields
		f.Decode(n)
		var o NDPOptions
		if err := o.Decode(f.Options); err != nil || !o.HasSourceLinkAddr || !o.HasMTU {
			fail("NDP options %+v %v", o, err)
		}
		var gopts layers.ICMPv6Options
		switch g := g.(type) {
		case *layers.ICMPv6RouterSolicitation:
			gopts = g.Options
		case *layers.ICMPv6RouterAdvertisement:
			gopts = g.Options
			if f.CurHopLimit != g.HopLimit || f.RAFlags != g.Flags || f.RouterLifetime != g.RouterLifetime || f.ReachableTime != g.ReachableTime ||
				f.RetransTimer != g.RetransTimer || o.Prefixes != 1 {
				fail("RA %+v", f)
			}
		case *layers.ICMPv6NeighborSolicitation:
			gopts = g.Options
			if !eqIP(f.Target, g.TargetAddress) {
				fail("NS %+v", f)
			}
		case *layers.ICMPv6NeighborAdvertisement:
			gopts = g.Options
			if !eqIP(f.Target, g.TargetAddress) || f.Router != g.Router() || f.Solicited != g.Solicited() || f.Override != g.Override() {
				fail("NA %+v", f)
			}
		}
		if !bytes.Equal(o.SourceLinkAddr[:], gopts[0].Data) || o.MTU != binary.BigEndian.Uint32(gopts[1].Data[2:]) {
			fail("NDP options %+v", o)
		}
		e := poisoned(f.Len())
		if f.Encode(e, src, dst); !bytes.Equal(e, b) {
			fail("NDP re-encoded %x", e)
		}
	case *layers.MLDv2MulticastListenerQueryMessage:
		q, err := ParseMLD(b)
		if err != nil || !q.IsV2Query() || q.MaxRespCode() != g.MaximumResponseCode || !eqIP(q.Multicast(), g.MulticastAddress) ||
			q.SuppressRouterProcessing() != g.SuppressRoutersideProcessing || q.QRV() != g.QueriersRobustnessVariable ||
			q.QQIC() != g.QueriersQueryIntervalCode || q.NumSources() != len(g.SourceAddresses) {
			fail("MLDv2 query %v", err)
		}
		for k, s := range g.SourceAddresses {
			if !eqIP(q.Sources().At(k), s) {
				fail("source %d", k)
			}
		}
		var f MLDFields
		f.Decode(q)
		e := poisoned(f.Len())
		if f.Encode(e, src, dst); !bytes.Equal(e, b) {
			fail("MLD re-encoded %x", e)
		}
	case *layers.MLDv2MulticastListenerReportMessage:
		rep, err := ParseMLDv2Report(b)
		if err != nil || rep.NumRecords() != len(g.MulticastAddressRecords) {
			fail("MLDv2 report %v", err)
		}
		var recs []MLDv2RecordFields
		l := rep.Records()
		for k, gr := range g.MulticastAddressRecords {
			rv, rest, _ := l.Next()
			var rf MLDv2RecordFields
			rf.Decode(rv)
			if rf.Type != uint8(gr.RecordType) || !eqIP(rf.Multicast, gr.MulticastAddress) || rf.Sources.Len() != len(gr.SourceAddresses) {
				fail("record %d %+v", k, rf)
			}
			for j, s := range gr.SourceAddresses {
				if !eqIP(rf.Sources.At(j), s) {
					fail("record %d source %d", k, j)
				}
			}
			recs = append(recs, rf)
			l = rest
		}
		f := MLDv2ReportFields{Records: recs}
		e := poisoned(f.Len())
		if f.Encode(e, src, dst); !bytes.Equal(e, b) {
			fail("MLDv2 report re-encoded %x", e)
		}
	default:
		fail("no message layer")
	}
}
