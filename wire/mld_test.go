package wire

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

func goldenICMPv6(t *testing.T, name string) ([]byte, netip.Addr, netip.Addr) {
	t.Helper()
	p := mustIPv6(g6(name))
	m := mustUpper(g6(name))
	if ICMPv6Checksum(m, p.Src(), p.Dst()) != 0 {
		t.Fatalf("%s: checksum does not verify", name)
	}
	return m, p.Src(), p.Dst()
}

func TestMLDQueryAndV1(t *testing.T) {
	// The queries R sent and the MLDv1 report A answered with, as tcpdump
	// -vv printed them.
	for _, tc := range []struct {
		name  string
		want  MLDFields
		delay uint32
	}{
		{"mld-query-v2", MLDFields{Type: ICMPv6MLDQuery, MaxRespCode: 1000, Multicast: ip6Unspec, V2: true, QRV: 2, QQIC: 125}, 1000},
		{"mld-query-v1", MLDFields{Type: ICMPv6MLDQuery, MaxRespCode: 1000, Multicast: ip6Unspec}, 1000},
		{"mldv1-report", MLDFields{Type: ICMPv6MLDv1Report, Multicast: mustAddr6("ff02::1:ff00:101")}, 0},
	} {
		b, src, dst := goldenICMPv6(t, tc.name)
		m, err := ParseMLD(b)
		if err != nil {
			t.Fatalf("%s: ParseMLD: %v", tc.name, err)
		}
		w := tc.want
		w.Checksum = m.Checksum()
		if m.Type() != w.Type || m.IsV2Query() != w.V2 || m.MaxRespCode() != w.MaxRespCode || m.MaxRespDelay() != tc.delay ||
			m.Multicast() != w.Multicast || (w.V2 && (m.QRV() != w.QRV || m.QQIC() != w.QQIC || m.QQI() != 125 ||
			m.SuppressRouterProcessing() || m.NumSources() != 0)) || m.Sources().Len() != 0 {
			t.Errorf("%s: accessors disagree with tcpdump", tc.name)
		}
		var f MLDFields
		f.Decode(m)
		if !eqMLD(f, w) {
			t.Errorf("%s: Decode = %+v\n  want %+v", tc.name, f, w)
		}
		w.Checksum = 0
		e := poisoned(w.Len() + 1)
		if n := w.Encode(e, src, dst); n != len(b) || e[n] != poison {
			t.Errorf("%s: Encode = %d, want %d", tc.name, n, len(b))
		}
		if d := diffBytes(e[:len(b)], b); d != "" {
			t.Errorf("%s: %s", tc.name, d)
		}
	}
}

func eqMLD(a, b MLDFields) bool {
	as, bs := a.Sources, b.Sources
	a.Sources, b.Sources = nil, nil
	return reflect.DeepEqual(a, b) && bytes.Equal(as, bs)
}

func TestMLDQueryRoundTrip(t *testing.T) {
	srcs := AppendIPv6Addrs(nil, ip6A, ip6B, llR)
	for _, f := range []MLDFields{
		{Type: ICMPv6MLDQuery, MaxRespCode: 0xffff, Multicast: mustAddr6("ff05::1:3"), V2: true, SuppressRouterProcessing: true, QRV: 7, QQIC: 0xff, Sources: srcs},
		{Type: ICMPv6MLDQuery, V2: true, QRV: 0, Multicast: ip6Unspec},
		{Type: ICMPv6MLDv1Done, MaxRespCode: 5, Multicast: mustAddr6("ff02::1:ff00:1")},
	} {
		b := poisoned(f.Len())
		f.Encode(b, llR, IPv6AllNodes)
		m, err := ParseMLD(b)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		var g MLDFields
		g.Decode(m)
		f.Checksum = g.Checksum
		if !eqMLD(f, g) || ICMPv6Checksum(b, llR, IPv6AllNodes) != 0 {
			t.Errorf("round trip\n%+v\n%+v", f, g)
		}
	}
	if m, _ := ParseMLD(func() []byte {
		f := MLDFields{Type: ICMPv6MLDQuery, V2: true, Multicast: ip6Unspec, Sources: srcs}
		b := make([]byte, f.Len())
		f.Encode(b, llR, IPv6AllNodes)
		return b
	}()); m.NumSources() != 3 || m.Sources().At(2) != llR {
		t.Error("sources")
	}
	// V2 and the MLDv2 fields mean nothing in other messages.
	f := MLDFields{Type: ICMPv6MLDv1Report, V2: true, QRV: 3, Sources: srcs, Multicast: ip6Unspec}
	if f.Len() != MLDv1Len {
		t.Errorf("v1 report Len %d", f.Len())
	}
	// Parts of an address and more than 65535 sources are not written.
	f = MLDFields{Type: ICMPv6MLDQuery, V2: true, Sources: make(IPv6Addrs, 16*70000+5)}
	if f.Len() != MLDv2QueryLen+16*0xffff {
		t.Errorf("Len %d", f.Len())
	}
}

func TestMLDv2MaxRespDelay(t *testing.T) {
	// RFC 3810 §5.1.3 and §5.1.9: linear below the threshold, then
	// (mant | 0x1000) << (exp + 3), continuous at the threshold.
	for code, want := range map[uint16]uint32{0: 0, 1000: 1000, 0x7fff: 0x7fff, 0x8000: 0x8000, 0x8001: 0x8008, 0xffff: 0x1fff << 10, 0x9000: 0x1000 << 4} {
		if got := MLDv2MaxRespDelay(code); got != want {
			t.Errorf("MLDv2MaxRespDelay(%#x) = %d, want %d", code, got, want)
		}
	}
	for code, want := range map[uint8]uint32{0: 0, 125: 125, 127: 127, 0x80: 128, 0x81: 136, 0xff: 0x1f << 10} {
		if got := MLDv2QQI(code); got != want {
			t.Errorf("MLDv2QQI(%#x) = %d, want %d", code, got, want)
		}
	}
	prev := uint32(0)
	for c := 1; c <= 0xffff; c++ {
		d := MLDv2MaxRespDelay(uint16(c))
		if d <= prev {
			t.Fatalf("not increasing at %#x: %d after %d", c, d, prev)
		}
		prev = d
	}
}

func TestMLDv2Report(t *testing.T) {
	// The reports Linux sent: on link up (joins, CHANGE_TO_EXCLUDE with
	// no sources) and in answer to the query (current state,
	// MODE_IS_EXCLUDE), as tcpdump -vv printed them.
	rec := func(typ uint8, group string) MLDv2RecordFields {
		return MLDv2RecordFields{Type: typ, Multicast: mustAddr6(group)}
	}
	for _, tc := range []struct {
		name string
		recs []MLDv2RecordFields
	}{
		{"mld-report-linkup", []MLDv2RecordFields{rec(MLDChangeToExclude, "ff02::1:ff00:1"), rec(MLDChangeToExclude, "ff02::1:ff00:101")}},
		{"mld-report-current", []MLDv2RecordFields{rec(MLDModeIsExclude, "ff02::1:ff00:1"), rec(MLDModeIsExclude, "ff02::1:ff00:101")}},
		{"mld-report-4", []MLDv2RecordFields{rec(MLDModeIsExclude, "ff02::1:ff00:0"), rec(MLDModeIsExclude, "ff02::1:ff00:2"),
			rec(MLDModeIsExclude, "ff02::1:ff00:102"), rec(MLDModeIsExclude, "ff02::2")}},
	} {
		b, src, dst := goldenICMPv6(t, tc.name)
		r, err := ParseMLDv2Report(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.NumRecords() != len(tc.recs) || r.Checksum() != uint16(b[2])<<8|uint16(b[3]) {
			t.Errorf("%s: %d records", tc.name, r.NumRecords())
		}
		l := r.Records()
		for i, want := range tc.recs {
			rv, rest, ok := l.Next()
			if !ok {
				t.Fatalf("%s: record %d missing", tc.name, i)
			}
			var got MLDv2RecordFields
			got.Decode(rv)
			if got.Type != want.Type || got.Multicast != want.Multicast || got.Sources.Len() != 0 || len(got.AuxData) != 0 ||
				rv.AuxDataLen() != 0 || rv.NumSources() != 0 || rv.Type() != want.Type || len(rv) != MLDv2RecordLen {
				t.Errorf("%s: record %d = %+v, want %+v", tc.name, i, got, want)
			}
			l = rest
		}
		if len(l) != 0 {
			t.Errorf("%s: %d bytes after the records", tc.name, len(l))
		}
		f := MLDv2ReportFields{Records: tc.recs}
		e := poisoned(f.Len() + 1)
		if n := f.Encode(e, src, dst); n != len(b) || e[n] != poison {
			t.Fatalf("%s: Encode = %d, want %d", tc.name, n, len(b))
		}
		if d := diffBytes(e[:len(b)], b); d != "" {
			t.Errorf("%s: %s", tc.name, d)
		}
	}
}

func TestMLDv2ReportSourcesAndAux(t *testing.T) {
	recs := []MLDv2RecordFields{
		{Type: MLDAllowNewSources, Multicast: mustAddr6("ff3e::8000:1"), Sources: AppendIPv6Addrs(nil, ip6A, ip6B)},
		{Type: MLDBlockOldSources, Multicast: mustAddr6("ff3e::8000:2"), AuxData: []byte{1, 2, 3, 4, 5}},
		{Type: MLDModeIsInclude, Multicast: mustAddr6("ff3e::8000:3"), Sources: AppendIPv6Addrs(nil, llR), AuxData: []byte{9, 9, 9, 9}},
	}
	f := MLDv2ReportFields{Records: recs}
	b := poisoned(f.Len())
	if f.Len() != 8+(20+32)+(20+8)+(20+16+4) {
		t.Fatalf("Len %d", f.Len())
	}
	f.Encode(b, llA, IPv6AllMLDv2Routers)
	r, err := ParseMLDv2Report(b)
	if err != nil || ICMPv6Checksum(b, llA, IPv6AllMLDv2Routers) != 0 {
		t.Fatal(err)
	}
	l := r.Records()
	for i, want := range recs {
		rv, rest, ok := l.Next()
		var got MLDv2RecordFields
		got.Decode(rv)
		wantAux := append(slicesClone(want.AuxData), make([]byte, (4-len(want.AuxData)%4)%4)...)
		if !ok || got.Type != want.Type || got.Multicast != want.Multicast || !bytes.Equal(got.Sources, want.Sources) ||
			!bytes.Equal(got.AuxData, wantAux) || rv.AuxDataLen() != len(wantAux)/4 {
			t.Errorf("record %d = %+v, want %+v", i, got, want)
		}
		if got.Len() != len(rv) {
			t.Errorf("record %d: Len %d, view %d", i, got.Len(), len(rv))
		}
		l = rest
	}
	// Truncation anywhere in a record is caught; bytes after the records
	// are ignored.
	for n := 0; n < len(b); n++ {
		if _, err := ParseMLDv2Report(b[:n]); err != ErrTruncated {
			t.Fatalf("ParseMLDv2Report(%d of %d bytes) = %v", n, len(b), err)
		}
	}
	if _, err := ParseMLDv2Report(append(slicesClone(b), 1, 2, 3)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
	if _, err := ParseMLDv2Report(edit(b, func(b []byte) { b[0] = ICMPv6MLDQuery })); err != ErrUnsupported {
		t.Errorf("type 130: %v", err)
	}
	// Record count capped at 65535.
	many := MLDv2ReportFields{Records: make([]MLDv2RecordFields, 70000)}
	if many.Len() != 8+20*0xffff {
		t.Errorf("Len of 70000 records = %d", many.Len())
	}
	big := make([]byte, many.Len())
	many.Encode(big, llA, IPv6AllMLDv2Routers)
	if r, err := ParseMLDv2Report(big); err != nil || r.NumRecords() != 0xffff {
		t.Errorf("65535 records: %v", err)
	}
	// Long auxiliary data is cut to what the length octet can say.
	rf := MLDv2RecordFields{AuxData: make([]byte, 2000)}
	if rf.Len() != 20+1020 {
		t.Errorf("aux Len %d", rf.Len())
	}
}

func TestMLDParseErrors(t *testing.T) {
	q, _, _ := goldenICMPv6(t, "mld-query-v2")
	for n := 0; n < MLDv1Len; n++ {
		if _, err := ParseMLD(q[:n]); err != ErrTruncated {
			t.Errorf("ParseMLD(%d bytes) = %v", n, err)
		}
	}
	for n := 25; n < 28; n++ {
		if _, err := ParseMLD(q[:n]); err != ErrBadHeader {
			t.Errorf("query of %d bytes: %v, want ErrBadHeader (RFC 3810 §8.1)", n, err)
		}
	}
	if _, err := ParseMLD(edit(q, func(b []byte) { b[27] = 1 })); err != ErrTruncated {
		t.Errorf("one source missing: %v", err)
	}
	if m, err := ParseMLD(append(slicesClone(q), 1, 2, 3)); err != nil || m.Sources().Len() != 0 {
		t.Errorf("additional data (RFC 3810 §5.1.12): %v", err)
	}
	for _, typ := range []uint8{ICMPv6MLDv2Report, ICMPv6EchoRequest, ICMPv6NeighborSolicit} {
		if _, err := ParseMLD(edit(q, func(b []byte) { b[0] = typ })); err != ErrUnsupported {
			t.Errorf("type %d: %v", typ, err)
		}
	}
	// A report or done message longer than 24 bytes is still MLDv1.
	if m, err := ParseMLD(edit(q, func(b []byte) { b[0] = ICMPv6MLDv1Report })); err != nil || m.IsV2Query() || m.MaxRespDelay() != 1000 {
		t.Errorf("long report: %v", err)
	}
	for _, l := range []MLDv2Records{nil, make([]byte, 19), edit(make([]byte, 35), func(b []byte) { b[3] = 1 }), edit(make([]byte, 23), func(b []byte) { b[1] = 1 })} {
		if _, _, ok := l.Next(); ok {
			t.Errorf("Next(%x) = ok", []byte(l))
		}
	}
	for n := 0; n < MLDv2ReportLen; n++ {
		if _, err := ParseMLDv2Report(make([]byte, n)); err != ErrTruncated {
			t.Errorf("ParseMLDv2Report(%d bytes) = %v", n, err)
		}
	}
}

func TestIPv6MulticastAddresses(t *testing.T) {
	// RFC 4291 §2.7.1 and RFC 2464 §7, checked against every captured
	// frame sent to a multicast group, and RFC 4862 §5.3 against the
	// link-local addresses Linux gave A, R and C.
	for _, tc := range ipv6Golden {
		frame := g6(tc.name)
		p := mustIPv6(frame)
		if !p.Dst().IsMulticast() {
			continue
		}
		if m, ok := MulticastMAC(p.Dst()); !ok || m != Ethernet(frame).Dst() {
			t.Errorf("%s: MulticastMAC(%v) = %v, frame went to %v", tc.name, p.Dst(), m, Ethernet(frame).Dst())
		}
	}
	if got := SolicitedNodeMulticast(llA); got != mustIPv6(g6("ns-dad")).Dst() {
		t.Errorf("SolicitedNodeMulticast(%v) = %v", llA, got)
	}
	if got := SolicitedNodeMulticast(ip6R); got != mustIPv6(g6("ns")).Dst() {
		t.Errorf("SolicitedNodeMulticast(%v) = %v", ip6R, got)
	}
	if got := SolicitedNodeMulticast(mustAddr6("2001:db8::abcd:ef12:3456")); got != mustAddr6("ff02::1:ff12:3456") {
		t.Errorf("SolicitedNodeMulticast = %v", got)
	}
	for mac, ll := range map[MAC]netip.Addr{macA0: llA, macR0: llR, macC: llC, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}: mustAddr6("fe80::fdff:ffff:feff:ffff")} {
		if got := LinkLocalFromMAC(mac); got != ll {
			t.Errorf("LinkLocalFromMAC(%v) = %v, want %v", mac, got, ll)
		}
	}
	for a, want := range map[netip.Addr]MAC{
		IPv6AllNodes:                      {0x33, 0x33, 0, 0, 0, 1},
		IPv6AllMLDv2Routers:               {0x33, 0x33, 0, 0, 0, 0x16},
		mustAddr6("224.0.0.251"):          {0x01, 0x00, 0x5e, 0, 0, 0xfb},
		mustAddr6("239.255.255.250"):      {0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa},
		mustAddr6("::ffff:239.128.1.2"):   {0x01, 0x00, 0x5e, 0x00, 0x01, 0x02},
		mustAddr6("ff3e::1234:5678:9abc"): {0x33, 0x33, 0x56, 0x78, 0x9a, 0xbc},
	} {
		if got, ok := MulticastMAC(a); !ok || got != want {
			t.Errorf("MulticastMAC(%v) = %v, %v; want %v", a, got, ok, want)
		}
	}
	for _, a := range []netip.Addr{ip6A, ipA, {}, llA} {
		if _, ok := MulticastMAC(a); ok {
			t.Errorf("MulticastMAC(%v) ok", a)
		}
	}
	if IPv6AllRouters != mustAddr6("ff02::2") || IPv6AllNodes != mustAddr6("ff02::1") || IPv6AllMLDv2Routers != mustAddr6("ff02::16") {
		t.Error("well-known addresses")
	}
	l := AppendIPv6Addrs([]byte{}, ip6A, ipA, netip.Addr{})
	if l.Len() != 3 || l.At(0) != ip6A || l.At(1) != netip.AddrFrom16(ipA.As16()) || l.At(2) != ip6Unspec || IPv6Addrs(l[:47]).Len() != 2 {
		t.Errorf("IPv6Addrs %x", []byte(l))
	}
}
