package wire

import (
	"bytes"
	"errors"
	"testing"
)

// Fuzz targets of the IPv6 parsers (see fuzz_test.go for what each
// checks). Their seeds are in fuzzSeeds too.

func FuzzParseIPv6(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkIPv6(t, b)
	})
}

// FuzzIPv6Chain walks arbitrary extension headers behind a valid fixed
// header: the first byte is the fixed header's Next Header, the low bit of
// the second says whether the destination is multicast, the rest is the
// payload.
func FuzzIPv6Chain(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 || len(b) > 2+0xffff {
			return
		}
		dst := ip6R
		if b[1]&1 != 0 {
			dst = IPv6AllNodes
		}
		checkChain(t, pkt6(b[0], dst, b[2:]))
	})
}

// FuzzIPv6ExtHeaders feeds arbitrary bytes to the extension header
// parsers that work without a packet around them: ParseIPv6ExtHeader,
// ParseIPv6Fragment and SkipIPv6Ext (whose Next Header is the first byte).
func FuzzIPv6ExtHeaders(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 1 {
			return
		}
		checkExtHeaders(t, b[0], b[1:])
	})
}

func FuzzParseICMPv6(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkICMPv6(t, b)
	})
}

func FuzzParseNDP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkNDP(t, b)
	})
}

func FuzzNDPOptions(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkNDPOptions(t, b)
	})
}

func FuzzParseMLD(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkMLD(t, b)
	})
}

func FuzzParseMLDv2Report(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkMLDv2Report(t, b)
	})
}

// isSentinel reports whether err is one of the given errors.
func isSentinel(err error, errs ...error) bool {
	for _, e := range errs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func checkIPv6(t *testing.T, b []byte) {
	p, err := ParseIPv6(b)
	if err != nil {
		if !isSentinel(err, ErrTruncated, ErrBadHeader) {
			t.Fatalf("ParseIPv6: unexpected error %v", err)
		}
		return
	}
	var f IPv6Fields
	f.Decode(p)
	if f.TrafficClass != p.TrafficClass() || f.FlowLabel != p.FlowLabel() || f.PayloadLen != p.PayloadLen() || f.NextHeader != p.NextHeader() ||
		f.HopLimit != p.HopLimit() || f.Src != p.Src() || f.Dst != p.Dst() || f.FlowLabel > 0xfffff || p.ECN() != f.TrafficClass&3 {
		t.Fatalf("fields %v disagree with the view", &f)
	}
	if pl := p.Payload(); len(pl) != int(f.PayloadLen) || IPv6HeaderLen+len(pl) > len(b) || !withinCap(pl, b) || len(p.Packet()) != IPv6HeaderLen+len(pl) {
		t.Fatal("Payload/Packet do not match the payload length")
	}
	// The fixed header has no reserved bits: Encode gives it back.
	buf := poisoned(IPv6HeaderLen)
	if f.Encode(buf); !bytes.Equal(buf, b[:IPv6HeaderLen]) {
		t.Fatalf("re-encoded %x, input %x", buf, b[:IPv6HeaderLen])
	}
	_ = f.String()
	checkChain(t, p)
}

// checkChain walks p's extension headers and checks what Walk reports
// against the packet, then checks the upper layer.
func checkChain(t *testing.T, p IPv6) {
	pkt := p.Packet()
	var c IPv6Chain
	err := c.Walk(p)
	if c.Headers > IPv6MaxExtHeaders {
		t.Fatalf("%d headers walked", c.Headers)
	}
	if err != nil {
		if !isSentinel(err, ErrTruncated, ErrBadHeader, ErrBadOptions, ErrUnknownOption, ErrUnsupported, ErrTooManyHeaders) {
			t.Fatalf("Walk: unexpected error %v", err)
		}
		if !c.ICMP {
			return
		}
		ptr := int(c.Pointer)
		switch {
		case c.Code == ICMPv6IncompleteChain:
			if ptr != 0 || err != ErrTruncated || c.Frag.Offset != 0 {
				t.Fatalf("code 3: %+v %v", c, err)
			}
		case ptr >= len(pkt):
			t.Fatalf("pointer %d past the %d-byte packet", ptr, len(pkt))
		case c.Code == ICMPv6UnknownOption:
			a := IPv6OptionActionOf(pkt[ptr])
			if err != ErrUnknownOption || a < IPv6OptDiscardICMP || a == IPv6OptDiscardICMPUnicast && p.Dst().IsMulticast() {
				t.Fatalf("code 2 at %d (type %#x): %v", ptr, pkt[ptr], err)
			}
		case c.Code == ICMPv6UnknownNextHeader:
			if pkt[ptr] != ProtoHopByHop || err != ErrBadHeader {
				t.Fatalf("code 1 at %d: %d", ptr, pkt[ptr])
			}
		case c.Code == ICMPv6ErroneousHeader:
			// A routing header's type with segments left, or a
			// fragment's payload length or offset field.
			routing := err == ErrUnsupported && ptr+1 < len(pkt) && pkt[ptr+1] != 0
			fragment := err == ErrBadHeader && c.FragHeader != 0 && (ptr == 4 || ptr == c.FragHeader+2)
			if !routing && !fragment {
				t.Fatalf("code 0 at %d: %v %+v", ptr, err, c)
			}
		default:
			t.Fatalf("code %d", c.Code)
		}
		return
	}
	if c.Offset < IPv6HeaderLen || c.Offset > len(pkt) || c.ProtoOffset >= c.Offset || pkt[c.ProtoOffset] != c.Proto && !c.Fragmented() {
		t.Fatalf("chain %+v in %d bytes", c, len(pkt))
	}
	if up := c.Upper(p); len(up) != len(pkt)-c.Offset || len(up) > 0 && !withinCap(up, pkt) {
		t.Fatal("Upper")
	}
	if c.Fragmented() {
		if c.Offset != c.FragHeader+IPv6FragmentLen || pkt[c.FragProtoOffset] != ProtoFragment || c.Proto != c.Frag.NextHeader ||
			c.Frag.More && (len(pkt)-c.Offset)%8 != 0 || int(c.Frag.Offset)+len(pkt)-c.Offset > 0xffff {
			t.Fatalf("fragment %+v", c)
		}
		return
	}
	if c.Proto != ProtoAH {
		proto, off, err := SkipIPv6Ext(p.Payload(), p.NextHeader())
		if err != nil || proto != c.Proto || off+IPv6HeaderLen != c.Offset {
			t.Fatalf("SkipIPv6Ext = %d, %d, %v; Walk %+v", proto, off, err, c)
		}
	}
	up := c.Upper(p)
	switch c.Proto {
	case ProtoTCP:
		checkTCP(t, up)
	case ProtoUDP:
		checkUDP(t, up)
	case ProtoICMPv6:
		checkICMPv6(t, up)
	}
}

func checkExtHeaders(t *testing.T, next uint8, b []byte) {
	if h, err := ParseIPv6ExtHeader(b); err == nil {
		if h.Len() != len(h) || h.Len()%8 != 0 || h.Len() > len(b) || len(h.Data()) != h.Len()-2 || !withinCap(h, b) {
			t.Fatalf("ParseIPv6ExtHeader: %d-byte view, Len %d", len(h), h.Len())
		}
		sinkU8 = h.RoutingType() ^ h.SegmentsLeft() ^ h.NextHeader()
		var f IPv6OptionsFields
		f.Decode(h)
		buf := poisoned(f.Len())
		if n := f.Encode(buf); n != len(h) || !bytes.Equal(buf, h) {
			t.Fatalf("options header %x re-encoded as %x", []byte(h), buf)
		}
	} else if err != ErrTruncated || len(b) >= 2 && (int(b[1])+1)*8 <= len(b) {
		t.Fatalf("ParseIPv6ExtHeader(%d bytes) = %v", len(b), err)
	}
	if h, err := ParseIPv6Fragment(b); err == nil {
		var f IPv6FragmentFields
		f.Decode(h)
		buf := poisoned(IPv6FragmentLen)
		f.Encode(buf)
		in := slicesClone(h)
		in[1], in[3] = 0, in[3]&^6 // the reserved fields
		if f.Offset%8 != 0 || !bytes.Equal(buf, in) {
			t.Fatalf("fragment header %x re-encoded as %x", []byte(h), buf)
		}
	} else if err != ErrTruncated || len(b) >= IPv6FragmentLen {
		t.Fatalf("ParseIPv6Fragment(%d bytes) = %v", len(b), err)
	}
	proto, off, err := SkipIPv6Ext(b, next)
	switch {
	case err == nil:
		if off > len(b) {
			t.Fatalf("SkipIPv6Ext: offset %d past %d bytes", off, len(b))
		}
		switch proto {
		case ProtoHopByHop, ProtoDestOpts, ProtoRouting, ProtoAH:
			t.Fatalf("SkipIPv6Ext stopped at extension header %d", proto)
		case ProtoFragment:
			if off < IPv6FragmentLen || IPv6Fragment(b[off-IPv6FragmentLen:]).Offset() == 0 {
				t.Fatalf("SkipIPv6Ext stopped after a first fragment at %d", off)
			}
		}
	case err == ErrTruncated:
		// off is where the header that does not fit starts.
		if off > len(b) || off+2 <= len(b) && off+8 <= len(b) && proto != ProtoAH && proto != ProtoFragment && off+(int(b[off+1])+1)*8 <= len(b) {
			t.Fatalf("SkipIPv6Ext: truncated at %d of %d", off, len(b))
		}
	case err != ErrTooManyHeaders:
		t.Fatalf("SkipIPv6Ext: unexpected error %v", err)
	}
}

func checkICMPv6(t *testing.T, b []byte) {
	m, err := ParseICMPv6(b)
	if err != nil {
		if !isSentinel(err, ErrTruncated) {
			t.Fatalf("ParseICMPv6: unexpected error %v", err)
		}
		return
	}
	var f ICMPv6Fields
	f.Decode(m)
	if f.Type != m.Type() || f.Code != m.Code() || f.Checksum != m.Checksum() || !bytes.Equal(f.Payload, m.Payload()) ||
		len(f.Payload) != len(b)-ICMPv6HeaderLen || len(f.Payload) > 0 && !withinCap(f.Payload, b) || f.Len() != len(b) {
		t.Fatalf("fields %v disagree with the view", &f)
	}
	switch f.Type {
	case ICMPv6EchoRequest, ICMPv6EchoReply:
		if f.ID != m.ID() || f.Seq != m.Seq() || f.MTU != 0 || f.Pointer != 0 {
			t.Fatalf("echo fields %v", &f)
		}
	case ICMPv6PacketTooBig:
		if f.MTU != m.MTU() || f.ID != 0 || f.Pointer != 0 {
			t.Fatalf("packet-too-big fields %v", &f)
		}
	case ICMPv6ParameterProblem:
		if f.Pointer != m.Pointer() || f.ID != 0 || f.MTU != 0 {
			t.Fatalf("parameter-problem fields %v", &f)
		}
	default:
		if f.ID != 0 || f.Seq != 0 || f.MTU != 0 || f.Pointer != 0 {
			t.Fatalf("type %d decoded a second word: %v", f.Type, &f)
		}
	}
	buf := poisoned(f.Len())
	f.Encode(buf, ip6A, ip6R)
	if ICMPv6Checksum(buf, ip6A, ip6R) != 0 {
		t.Fatal("encoded checksum does not verify")
	}
	var g ICMPv6Fields
	g.Decode(ICMPv6(buf))
	want := f
	want.Checksum = g.Checksum
	if !eqICMPv6(g, want) {
		t.Fatalf("round trip\n%v\n%v", &f, &g)
	}
	var q IPv6Fields
	if proto, up, err := m.Quote(&q); err == nil {
		if len(up) < 8 || !withinCap(up, b) || len(b)-len(up) < ICMPv6HeaderLen+IPv6HeaderLen {
			t.Fatalf("Quote: %d bytes of protocol %d", len(up), proto)
		}
		_ = q.String()
	} else if !isSentinel(err, ErrTruncated, ErrBadHeader, ErrTooManyHeaders) {
		t.Fatalf("Quote: unexpected error %v", err)
	}
	_ = f.String()
	switch f.Type {
	case ICMPv6RouterSolicit, ICMPv6RouterAdvert, ICMPv6NeighborSolicit, ICMPv6NeighborAdvert, ICMPv6Redirect:
		checkNDP(t, b)
	case ICMPv6MLDQuery, ICMPv6MLDv1Report, ICMPv6MLDv1Done:
		checkMLD(t, b)
	case ICMPv6MLDv2Report:
		checkMLDv2Report(t, b)
	}
}

func checkNDP(t *testing.T, b []byte) {
	m, err := ParseNDP(b)
	if err != nil {
		if !isSentinel(err, ErrTruncated, ErrBadHeader, ErrBadOptions, ErrUnsupported) {
			t.Fatalf("ParseNDP: unexpected error %v", err)
		}
		return
	}
	var f NDPFields
	f.Decode(m)
	hl := ndpHeaderLen(f.Type)
	if f.CurHopLimit != m.CurHopLimit() || f.RAFlags != m.RAFlags() || f.RouterLifetime != m.RouterLifetime() ||
		f.ReachableTime != m.ReachableTime() || f.RetransTimer != m.RetransTimer() || f.Router != m.Router() ||
		f.Solicited != m.Solicited() || f.Override != m.Override() || f.Target != m.Target() || f.Destination != m.Destination() {
		t.Fatalf("fields %v disagree with the accessors", &f)
	}
	if hl == 0 || f.Len() != len(b) || !bytes.Equal(f.Options, b[hl:]) || len(f.Options) > 0 && !withinCap(f.Options, b) || f.Checksum != m.Checksum() {
		t.Fatalf("fields %v disagree with the view", &f)
	}
	buf := poisoned(f.Len())
	f.Encode(buf, llA, llR)
	if ICMPv6Checksum(buf, llA, llR) != 0 {
		t.Fatal("encoded checksum does not verify")
	}
	m2, err := ParseNDP(buf)
	if err != nil {
		t.Fatalf("ParseNDP(Encode(%v)) = %v", &f, err)
	}
	var g NDPFields
	g.Decode(m2)
	want := f
	want.Checksum = g.Checksum
	if !eqNDP(g, want) {
		t.Fatalf("round trip\n%+v\n%+v", want, g)
	}
	// Only the reserved bits and the checksum may differ.
	in := slicesClone(b)
	in[2], in[3], buf[2], buf[3] = 0, 0, 0, 0
	switch f.Type {
	case ICMPv6RouterSolicit, ICMPv6NeighborSolicit, ICMPv6Redirect:
		clear(in[4:8])
	case ICMPv6NeighborAdvert:
		in[4] &= 0xe0
		clear(in[5:8])
	}
	if !bytes.Equal(in, buf) {
		t.Fatalf("re-encoded\n%x\ninput\n%x", buf, in)
	}
	checkNDPOptions(t, m.Options())
	_ = f.String()
}

func checkNDPOptions(t *testing.T, b []byte) {
	var o NDPOptions
	if err := o.Decode(b); err != nil {
		if !isSentinel(err, ErrBadOptions) {
			t.Fatalf("Decode: unexpected error %v", err)
		}
		return
	}
	// Next walks the whole list, and the typed accessors are safe.
	prefixes, rdnss, n := 0, 0, 0
	for l := NDPOptionList(b); len(l) > 0; {
		opt, rest, ok := l.Next()
		if !ok || len(opt) == 0 || len(opt) != opt.Len() || len(opt.Body()) != opt.Len()-2 {
			t.Fatalf("Next on an accepted list: %x", []byte(l))
		}
		switch opt.Type() {
		case NDPOptSourceLinkAddr, NDPOptTargetLinkAddr:
			sinkMAC = opt.LinkAddr()
		case NDPOptMTU:
			sinkU32 = opt.MTU()
		case NDPOptPrefixInfo:
			pi := opt.PrefixInfo()
			e := poisoned(NDPPrefixInfoLen)
			if pi.Encode(e); !bytes.Equal(e[:4], opt[:4]) || !bytes.Equal(e[4:12], opt[4:12]) || !bytes.Equal(e[16:], opt[16:]) {
				t.Fatalf("prefix information %x re-encoded as %x", []byte(opt), e)
			}
			prefixes++
		case NDPOptRDNSS:
			r := NDPRDNSS{Lifetime: opt.RDNSSLifetime(), Servers: opt.RDNSSServers()}
			e := poisoned(r.Len())
			if r.Encode(e); r.Len() != len(opt) || !bytes.Equal(e[4:], opt[4:]) {
				t.Fatalf("RDNSS %x re-encoded as %x", []byte(opt), e)
			}
			rdnss++
		case NDPOptRedirectedHeader:
			sinkBytes = opt.RedirectedHeader()
		}
		// Every accessor is safe on every option.
		sinkMAC, sinkU32, sinkBytes, sinkPrefix = opt.LinkAddr(), opt.MTU()+opt.RDNSSLifetime(), opt.RedirectedHeader(), opt.PrefixInfo()
		sinkInt = opt.RDNSSServers().Len()
		n += len(opt)
		l = rest
	}
	if n != len(b) || prefixes != o.Prefixes || rdnss != o.RDNSS {
		t.Fatalf("walked %d of %d bytes, %d prefixes, %d RDNSS; Decode %+v", n, len(b), prefixes, rdnss, o)
	}
	buf := poisoned(o.Len() + 1)
	if k := o.Encode(buf); k != o.Len() || k%8 != 0 || buf[k] != poison {
		t.Fatalf("Encode wrote %d, Len %d", k, o.Len())
	}
	var g NDPOptions
	if err := g.Decode(buf[:o.Len()]); err != nil {
		t.Fatalf("Decode(Encode(%+v)) = %v", o, err)
	}
	want := o
	want.Prefixes, want.RDNSS = 0, 0
	if !eqNDPOptions(g, want) {
		t.Fatalf("round trip\n%+v\n%+v", want, g)
	}
}

func checkMLD(t *testing.T, b []byte) {
	m, err := ParseMLD(b)
	if err != nil {
		if !isSentinel(err, ErrTruncated, ErrBadHeader, ErrUnsupported) {
			t.Fatalf("ParseMLD: unexpected error %v", err)
		}
		return
	}
	var f MLDFields
	f.Decode(m)
	if f.Type != m.Type() || f.MaxRespCode != m.MaxRespCode() || f.Multicast != m.Multicast() || f.V2 != m.IsV2Query() ||
		f.V2 && (f.QRV != m.QRV() || f.QQIC != m.QQIC() || f.Sources.Len() != m.NumSources() || !withinCap(f.Sources, b) && len(f.Sources) > 0) {
		t.Fatalf("fields %+v disagree with the view", f)
	}
	sinkU32 = m.MaxRespDelay() + m.QQI()
	if !m.IsV2Query() && (m.SuppressRouterProcessing() || m.QRV() != 0 || m.QQIC() != 0 || m.NumSources() != 0 || m.Sources() != nil) {
		t.Fatal("MLDv2 fields of an MLDv1 message are not zero")
	}
	buf := poisoned(f.Len())
	f.Encode(buf, llR, IPv6AllNodes)
	m2, err := ParseMLD(buf)
	if err != nil || ICMPv6Checksum(buf, llR, IPv6AllNodes) != 0 {
		t.Fatalf("ParseMLD(Encode(%+v)) = %v", f, err)
	}
	var g MLDFields
	g.Decode(m2)
	want := f
	want.Checksum = g.Checksum
	if !eqMLD(g, want) {
		t.Fatalf("round trip\n%+v\n%+v", want, g)
	}
	// Only the code, the checksum and the reserved bits may differ.
	in := slicesClone(b[:f.Len()])
	in[1], in[2], in[3], in[6], in[7], buf[2], buf[3] = 0, 0, 0, 0, 0, 0, 0
	if f.V2 {
		in[24] &= 0x0f
	}
	if !bytes.Equal(in, buf) {
		t.Fatalf("re-encoded\n%x\ninput\n%x", buf, in)
	}
	_ = f.String()
}

func checkMLDv2Report(t *testing.T, b []byte) {
	r, err := ParseMLDv2Report(b)
	if err != nil {
		if !isSentinel(err, ErrTruncated, ErrUnsupported) {
			t.Fatalf("ParseMLDv2Report: unexpected error %v", err)
		}
		return
	}
	var recs []MLDv2RecordFields
	l := r.Records()
	for i := 0; i < r.NumRecords(); i++ {
		rv, rest, ok := l.Next()
		if !ok {
			t.Fatalf("record %d of %d missing", i, r.NumRecords())
		}
		var f MLDv2RecordFields
		f.Decode(rv)
		if f.Len() != len(rv) || f.Type != rv.Type() || f.Sources.Len() != rv.NumSources() || len(f.AuxData) != 4*rv.AuxDataLen() {
			t.Fatalf("record %d: %+v, view %x", i, f, []byte(rv))
		}
		recs = append(recs, f)
		l = rest
	}
	f := MLDv2ReportFields{Records: recs}
	n := f.Len()
	buf := poisoned(n + 1)
	if k := f.Encode(buf, llA, IPv6AllMLDv2Routers); k != n || buf[n] != poison || ICMPv6Checksum(buf[:n], llA, IPv6AllMLDv2Routers) != 0 {
		t.Fatalf("Encode = %d, Len %d", k, n)
	}
	// Only the checksum and the reserved octets may differ.
	in := slicesClone(b[:n])
	in[1], in[2], in[3], in[4], in[5], buf[2], buf[3] = 0, 0, 0, 0, 0, 0, 0
	if !bytes.Equal(in, buf[:n]) {
		t.Fatalf("re-encoded\n%x\ninput\n%x", buf[:n], in)
	}
}
