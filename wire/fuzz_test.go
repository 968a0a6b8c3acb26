package wire

import (
	"bytes"
	"errors"
	"testing"
)

// Fuzz targets, one per parser. Each checks, on any input:
//
//   - the parser does not panic and fails only with its documented errors;
//   - when it succeeds, the view's accessors agree with the decoded field
//     struct, and payloads alias the input;
//   - Decode, Encode, Parse, Decode gives the same fields again (less what
//     Encode recomputes, such as checksums).
//
// The seeds are in fuzzSeeds (fuzz_seeds_test.go), with a comment each, and
// also in testdata/fuzz/FuzzXxx/ so that plain "go test" runs them; see
// TestFuzzCorpus.

func FuzzParseEthernet(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEthernet(t, b)
	})
}

func FuzzParseARP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkARP(t, b)
	})
}

func FuzzParseIPv4(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkIPv4(t, b)
	})
}

func FuzzParseICMPv4(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkICMPv4(t, b)
	})
}

func FuzzParseUDP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkUDP(t, b)
	})
}

func FuzzParseTCP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTCP(t, b)
	})
}

func FuzzTCPOptions(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTCPOptions(t, b)
	})
}

// addSeeds adds the commented seeds of the running target.
func addSeeds(f *testing.F) {
	seeds, ok := fuzzSeeds[f.Name()]
	if !ok {
		f.Fatalf("no seeds for %s", f.Name())
	}
	for _, s := range seeds {
		f.Add(s.data)
	}
}

// withinCap reports whether v is a subslice of b (an empty v always is):
// a subslice b[i:j] has capacity cap(b)-i.
func withinCap(v, b []byte) bool {
	if len(v) == 0 {
		return true
	}
	i := cap(b) - cap(v)
	return i >= 0 && i+len(v) <= len(b) && &b[i] == &v[0]
}

// checkEthernet parses b as a frame and, when it is one, checks the header
// and everything inside it, as the stack's receive path would walk it.
func checkEthernet(t *testing.T, b []byte) {
	e, err := ParseEthernet(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("ParseEthernet: unexpected error %v", err)
		}
		return
	}
	var f EthernetFields
	f.Decode(e)
	hl := e.HeaderLen()
	if hl < EthernetHeaderLen || hl > len(b) || (hl-EthernetHeaderLen)%VLANTagLen != 0 {
		t.Fatalf("HeaderLen %d of %d bytes", hl, len(b))
	}
	tci, tagged := e.VLAN()
	if f.Dst != e.Dst() || f.Src != e.Src() || f.EtherType != e.EtherType() || f.HasVLAN != tagged || f.VLAN != tci ||
		tagged != (hl > EthernetHeaderLen) || isVLANTag(uint16(f.EtherType)) {
		t.Fatalf("fields %+v disagree with the view", f)
	}
	if p := e.Payload(); len(p) != len(b)-hl || !withinCap(p, b) {
		t.Fatalf("Payload does not alias b[%d:]", hl)
	}
	buf := poisoned(f.HeaderLen())
	if n := f.Encode(buf); n != len(buf) {
		t.Fatalf("Encode = %d, HeaderLen %d", n, len(buf))
	}
	e2, err := ParseEthernet(buf)
	if err != nil {
		t.Fatalf("ParseEthernet(Encode(%+v)) = %v", f, err)
	}
	var g EthernetFields
	g.Decode(e2)
	if g != f {
		t.Fatalf("round trip %+v -> %+v", f, g)
	}
	if hl == EthernetHeaderLen+VLANTagLen && e[12] == 0x81 && e[13] == 0x00 && !bytes.Equal(buf, b[:hl]) {
		t.Fatalf("single 802.1Q tag re-encoded differently: %x, %x", buf, b[:hl])
	}
	if hl == EthernetHeaderLen && !bytes.Equal(buf, b[:hl]) {
		t.Fatalf("untagged header re-encoded differently: %x, %x", buf, b[:hl])
	}
	_ = f.String()
	switch f.EtherType {
	case EtherTypeARP:
		checkARP(t, e.Payload())
	case EtherTypeIPv4:
		checkIPv4(t, e.Payload())
	case EtherTypeIPv6:
		checkIPv6(t, e.Payload())
	}
}

func checkARP(t *testing.T, b []byte) {
	a, err := ParseARP(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrBadHeader) {
			t.Fatalf("ParseARP: unexpected error %v", err)
		}
		return
	}
	if len(a) != ARPLen || !withinCap(a, b) {
		t.Fatalf("view is %d bytes", len(a))
	}
	var f ARPFields
	f.Decode(a)
	if f.Op != a.Op() || f.SenderMAC != a.SenderMAC() || f.SenderIP != a.SenderIP() || f.TargetMAC != a.TargetMAC() || f.TargetIP != a.TargetIP() {
		t.Fatalf("fields %+v disagree with the view", f)
	}
	if !f.SenderIP.Is4() || !f.TargetIP.Is4() || (f.Op != ARPRequest && f.Op != ARPReply) {
		t.Fatalf("decoded %+v", f)
	}
	// ARPFields keeps every bit, so encoding gives the input back.
	buf := poisoned(ARPLen)
	f.Encode(buf)
	if !bytes.Equal(buf, a) {
		t.Fatalf("re-encoded %x, input %x", buf, []byte(a))
	}
	_ = f.String()
}

func checkIPv4(t *testing.T, b []byte) {
	p, err := ParseIPv4(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadHeader) {
			t.Fatalf("ParseIPv4: unexpected error %v", err)
		}
		return
	}
	var f IPv4Fields
	f.Decode(p)
	hl := p.HeaderLen()
	if hl < IPv4HeaderLen || hl > IPv4MaxHeaderLen || int(f.TotalLen) < hl || int(f.TotalLen) > len(b) {
		t.Fatalf("header %d, total %d, buffer %d", hl, f.TotalLen, len(b))
	}
	if f.TOS != p.TOS() || f.TotalLen != p.TotalLen() || f.ID != p.ID() || f.DF != p.DF() || f.MF != p.MF() ||
		f.FragOffset != p.FragOffset() || f.TTL != p.TTL() || f.Protocol != p.Protocol() || f.Checksum != p.Checksum() ||
		f.Src != p.Src() || f.Dst != p.Dst() || !bytes.Equal(f.Options, p.Options()) || len(f.Options) != hl-IPv4HeaderLen {
		t.Fatalf("fields %+v disagree with the view", f)
	}
	if f.FragOffset%8 != 0 || p.IsFragment() != (f.MF || f.FragOffset != 0) {
		t.Fatalf("fragment fields %+v", f)
	}
	if pl := p.Payload(); len(pl) != int(f.TotalLen)-hl || !withinCap(pl, b) || len(p.Packet()) != int(f.TotalLen) {
		t.Fatal("Payload/Packet do not match the total length")
	}
	if f.HeaderLen() != hl {
		t.Fatalf("Fields.HeaderLen %d, view %d", f.HeaderLen(), hl)
	}
	buf := make([]byte, int(f.TotalLen))
	copy(buf[hl:], p.Payload())
	copy(buf, poisoned(hl))
	if n := f.Encode(buf); n != hl {
		t.Fatalf("Encode = %d, want %d", n, hl)
	}
	p2, err := ParseIPv4(buf)
	if err != nil {
		t.Fatalf("ParseIPv4(Encode(%+v)) = %v", f, err)
	}
	if !p2.ChecksumValid() {
		t.Fatal("encoded header checksum does not verify")
	}
	var g IPv4Fields
	g.Decode(p2)
	want := f
	want.Checksum = g.Checksum
	if !eqIPv4(g, want) {
		t.Fatalf("round trip\n%+v\n%+v", f, g)
	}
	// Only the reserved flag bit and the checksum may differ.
	b0 := append([]byte{}, b[:hl]...)
	b0[6] &^= 0x80
	b0[10], b0[11], buf[10], buf[11] = 0, 0, 0, 0
	if !bytes.Equal(b0, buf[:hl]) {
		t.Fatalf("re-encoded header %x, input %x", buf[:hl], b0)
	}
	// SetTTL keeps a valid checksum valid (RFC 1624).
	if p.ChecksumValid() {
		h := IPv4(append([]byte{}, p.Packet()...))
		h.SetTTL(f.TTL ^ f.TOS ^ 0x5a)
		if !h.ChecksumValid() {
			t.Fatal("SetTTL broke a valid checksum")
		}
	}
	_ = f.String()
	if f.FragOffset != 0 {
		return // no transport header here
	}
	switch f.Protocol {
	case ProtoICMP:
		checkICMPv4(t, p.Payload())
	case ProtoUDP:
		checkUDP(t, p.Payload())
	case ProtoTCP:
		checkTCP(t, p.Payload())
	}
}

func checkICMPv4(t *testing.T, b []byte) {
	m, err := ParseICMPv4(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("ParseICMPv4: unexpected error %v", err)
		}
		return
	}
	var f ICMPv4Fields
	f.Decode(m)
	if f.Type != m.Type() || f.Code != m.Code() || f.Checksum != m.Checksum() || !bytes.Equal(f.Payload, m.Payload()) ||
		len(f.Payload) != len(b)-ICMPv4HeaderLen || !withinCap(f.Payload, b) && len(f.Payload) > 0 {
		t.Fatalf("fields %+v disagree with the view", f)
	}
	switch {
	case icmpv4HasIDSeq(f.Type):
		if f.ID != m.ID() || f.Seq != m.Seq() || f.MTU != 0 || f.Pointer != 0 {
			t.Fatalf("query fields %+v", f)
		}
	case icmpv4HasMTU(f.Type, f.Code):
		if f.MTU != m.NextHopMTU() || f.ID != 0 || f.Seq != 0 || f.Pointer != 0 {
			t.Fatalf("frag-needed fields %+v", f)
		}
	case f.Type == ICMPv4ParameterProblem:
		if f.Pointer != m.Pointer() || f.ID != 0 || f.Seq != 0 || f.MTU != 0 {
			t.Fatalf("parameter-problem fields %+v", f)
		}
	default:
		if f.ID != 0 || f.Seq != 0 || f.MTU != 0 || f.Pointer != 0 {
			t.Fatalf("type %d decoded a second word: %+v", f.Type, f)
		}
	}
	if f.Len() != len(b) {
		t.Fatalf("Len %d, message %d", f.Len(), len(b))
	}
	buf := poisoned(f.Len())
	f.Encode(buf)
	m2, err := ParseICMPv4(buf)
	if err != nil {
		t.Fatalf("ParseICMPv4(Encode) = %v", err)
	}
	if !m2.ChecksumValid() {
		t.Fatal("encoded checksum does not verify")
	}
	var g ICMPv4Fields
	g.Decode(m2)
	want := f
	want.Checksum = g.Checksum
	if !eqICMPv4(g, want) {
		t.Fatalf("round trip\n%+v\n%+v", f, g)
	}
	var q IPv4Fields
	if tr, err := m.Quote(&q); err == nil {
		if len(tr) < 8 || !withinCap(tr, b) || q.HeaderLen() < IPv4HeaderLen {
			t.Fatalf("Quote: %d transport bytes", len(tr))
		}
		_ = q.String()
	} else if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadHeader) {
		t.Fatalf("Quote: unexpected error %v", err)
	}
	_ = f.String()
}

func checkUDP(t *testing.T, b []byte) {
	u, err := ParseUDP(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadHeader) {
			t.Fatalf("ParseUDP: unexpected error %v", err)
		}
		return
	}
	var f UDPFields
	f.Decode(u)
	if f.SrcPort != u.SrcPort() || f.DstPort != u.DstPort() || f.Checksum != u.Checksum() || !bytes.Equal(f.Payload, u.Payload()) ||
		f.Len() != int(u.Length()) || len(u.Datagram()) != f.Len() || len(f.Payload) > 0 && !withinCap(f.Payload, b) {
		t.Fatalf("fields %+v disagree with the view (length %d)", f, u.Length())
	}
	buf := poisoned(f.Len())
	f.Encode(buf, ipA, ipB)
	u2, err := ParseUDP(buf)
	if err != nil {
		t.Fatalf("ParseUDP(Encode) = %v", err)
	}
	if UDPChecksum(buf, ipA, ipB) != 0 || u2.Checksum() == 0 {
		t.Fatalf("encoded checksum %#x does not verify", u2.Checksum())
	}
	var g UDPFields
	g.Decode(u2)
	want := f
	want.Checksum = g.Checksum
	if !eqUDP(g, want) {
		t.Fatalf("round trip\n%+v\n%+v", f, g)
	}
	_ = f.String()
}

func checkTCP(t *testing.T, b []byte) {
	s, err := ParseTCP(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadHeader) {
			t.Fatalf("ParseTCP: unexpected error %v", err)
		}
		return
	}
	hl := s.HeaderLen()
	if hl < TCPHeaderLen || hl > TCPMaxHeaderLen || hl > len(b) || len(s.Options()) != hl-TCPHeaderLen {
		t.Fatalf("header %d of %d bytes", hl, len(b))
	}
	var f TCPFields
	if err := f.Decode(s); err != nil {
		if !errors.Is(err, ErrBadOptions) {
			t.Fatalf("Decode: unexpected error %v", err)
		}
		return
	}
	if f.SrcPort != s.SrcPort() || f.DstPort != s.DstPort() || f.Seq != s.Seq() || f.Ack != s.Ack() || f.Flags != s.Flags() ||
		f.Window != s.Window() || f.Checksum != s.Checksum() || f.Urgent != s.Urgent() || !bytes.Equal(f.Payload, s.Payload()) ||
		len(f.Payload) != len(b)-hl || len(f.Payload) > 0 && !withinCap(f.Payload, b) {
		t.Fatalf("fields %v disagree with the view", &f)
	}
	var o TCPOptions
	if err := o.Decode(s.Options()); err != nil || o != f.Options {
		t.Fatalf("TCPOptions.Decode = %v, %v; Fields.Decode %v", err, &o, &f.Options)
	}
	n := f.HeaderLen() + len(f.Payload)
	buf := poisoned(n)
	if got := f.Encode(buf); got != n {
		t.Fatalf("Encode = %d, want %d", got, n)
	}
	s2, err := ParseTCP(buf)
	if err != nil {
		t.Fatalf("ParseTCP(Encode) = %v", err)
	}
	var g TCPFields
	if err := g.Decode(s2); err != nil {
		t.Fatalf("Decode(Encode(%v)) = %v", &f, err)
	}
	want := f
	want.Options = encodable(f.Options)
	if !eqTCP(g, want) {
		t.Fatalf("round trip\n%v\n%v", &want, &g)
	}
	_ = f.String()
}

func checkTCPOptions(t *testing.T, b []byte) {
	var o TCPOptions
	if err := o.Decode(b); err != nil {
		if !errors.Is(err, ErrBadOptions) {
			t.Fatalf("Decode: unexpected error %v", err)
		}
		return
	}
	if o.NumSACK > TCPMaxSACKBlocks {
		t.Fatalf("NumSACK %d", o.NumSACK)
	}
	for _, s := range o.SACK[o.NumSACK:] {
		if s != (SACKBlock{}) {
			t.Fatalf("stale SACK block past NumSACK: %v", &o)
		}
	}
	n := o.EncodedLen()
	if n%4 != 0 || n > TCPMaxOptionLen {
		t.Fatalf("EncodedLen %d", n)
	}
	buf := poisoned(n + 1)
	if got := o.Encode(buf); got != n || buf[n] != poison {
		t.Fatalf("Encode wrote %d bytes, EncodedLen %d", got, n)
	}
	var g TCPOptions
	if err := g.Decode(buf[:n]); err != nil {
		t.Fatalf("Decode(Encode(%v)) = %v", &o, err)
	}
	if want := encodable(o); g != want {
		t.Fatalf("round trip %v -> %v", &want, &g)
	}
	_ = o.String()
}

// encodable returns o as it reads back after Encode: only the SACK blocks
// that fit beside the other options are kept (RFC 2018 §3), and an MSS of 0
// means "absent".
func encodable(o TCPOptions) TCPOptions {
	o.NumSACK = uint8(o.sackFit())
	clear(o.SACK[o.NumSACK:])
	return o
}
