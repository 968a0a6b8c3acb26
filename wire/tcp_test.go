package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// tcpGolden lists captured segments with their fields as tcpdump printed
// them; tcpdump shows sequence numbers relative to the ISN after the SYN, so
// the absolute values below are ISN + relative (the :40001 connection's ISNs
// are 2785435873 and 156381590, the :40004 one's 2357450978 and 3470278871).
var tcpGolden = []struct {
	name     string
	frame    []byte
	src, dst netip.Addr
	want     TCPFields
}{
	// Linux's SYN layout (tcp_options_write): mss; sackOK and TS sharing a
	// word; nop, wscale.
	{"SYN", goldenTCPSYN, ipA, ipR, TCPFields{SrcPort: 40001, DstPort: 5001, Seq: 2785435873, Flags: TCPFlagSYN, Window: 64240, Checksum: 0xca41,
		Options: TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1166700529, HasWScale: true, WScale: 10}}},
	{"SYNACK", goldenTCPSYNACK, ipR, ipA, TCPFields{SrcPort: 5001, DstPort: 40001, Seq: 156381590, Ack: 2785435874, Flags: TCPFlagSYN | TCPFlagACK, Window: 65160, Checksum: 0x986c,
		Options: TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 2207150005, TSEcr: 1166700529, HasWScale: true, WScale: 10}}},
	{"ACK", goldenTCPACK, ipA, ipR, TCPFields{SrcPort: 40001, DstPort: 5001, Seq: 2785435874, Ack: 156381591, Flags: TCPFlagACK, Window: 63, Checksum: 0xc585,
		Options: TCPOptions{HasTimestamp: true, TSVal: 1166700529, TSEcr: 2207150005}}},
	{"Data", goldenTCPData, ipA, ipR, TCPFields{SrcPort: 40001, DstPort: 5001, Seq: 2785435874, Ack: 156381591, Flags: TCPFlagPSH | TCPFlagACK, Window: 63, Checksum: 0x065b,
		Options: TCPOptions{HasTimestamp: true, TSVal: 1166700529, TSEcr: 2207150005}, Payload: bytes.Repeat([]byte("A"), 100)}},
	// RFC 2018 §3: nop, nop, TS, then nop, nop, SACK.
	{"SACK", goldenTCPSACK, ipR, ipA, TCPFields{SrcPort: 5001, DstPort: 40001, Seq: 156381591, Ack: 2785435974, Flags: TCPFlagACK, Window: 64, Checksum: 0x7ead,
		Options: TCPOptions{HasTimestamp: true, TSVal: 2207150055, TSEcr: 1166700529, NumSACK: 1, SACK: [4]SACKBlock{{2785436074, 2785436274}}}}},
	// RFC 2018 §4: the block holding the most recent segment comes first.
	{"SACK2", goldenTCPSACK2, ipR, ipA, TCPFields{SrcPort: 5004, DstPort: 40004, Seq: 3470278872, Ack: 2357450979, Flags: TCPFlagACK, Window: 64, Checksum: 0xc41c,
		Options: TCPOptions{HasTimestamp: true, TSVal: 1628946327, TSEcr: 1981280359, NumSACK: 2, SACK: [4]SACKBlock{{2357450979 + 300, 2357450979 + 400}, {2357450979 + 100, 2357450979 + 200}}}}},
	{"FIN", goldenTCPFIN, ipA, ipR, TCPFields{SrcPort: 40001, DstPort: 5001, Seq: 2785436374, Ack: 156381591, Flags: TCPFlagFIN | TCPFlagACK, Window: 63, Checksum: 0xbd50,
		Options: TCPOptions{HasTimestamp: true, TSVal: 1166702079, TSEcr: 2207150055}}},
	// Without timestamps Linux writes nop, nop, sackOK before nop, wscale.
	{"SYNNoTS", goldenTCPSYNNoTS, ipA, ipR, TCPFields{SrcPort: 40002, DstPort: 5002, Seq: 3292482988, Flags: TCPFlagSYN, Window: 64240, Checksum: 0x9bc8,
		Options: TCPOptions{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 10}}},
	// RFC 9293 §3.10.7.1, CLOSED: a SYN gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>,
	{"RSTACK", goldenTCPRSTACK, ipR, ipA, TCPFields{SrcPort: 5002, DstPort: 40002, Ack: 3292482989, Flags: TCPFlagRST | TCPFlagACK, Checksum: 0xd77a}},
	// and an ACK gets <SEQ=SEG.ACK><CTL=RST>.
	{"RST", goldenTCPRST, ipR, ipA, TCPFields{SrcPort: 5003, DstPort: 40003, Seq: 123456789, Flags: TCPFlagRST, Checksum: 0x1505}},
}

func TestTCPDeconstruct(t *testing.T) {
	for _, tc := range tcpGolden {
		t.Run(tc.name, func(t *testing.T) {
			b := l4(t, tc.frame)
			s, err := ParseTCP(b)
			if err != nil {
				t.Fatalf("ParseTCP: %v", err)
			}
			w := tc.want
			if s.SrcPort() != w.SrcPort || s.DstPort() != w.DstPort || s.Seq() != w.Seq || s.Ack() != w.Ack ||
				s.Flags() != w.Flags || s.Window() != w.Window || s.Checksum() != w.Checksum || s.Urgent() != w.Urgent {
				t.Errorf("accessors: %d > %d seq %d ack %d [%v] win %d sum %#x urg %d", s.SrcPort(), s.DstPort(), s.Seq(), s.Ack(),
					s.Flags(), s.Window(), s.Checksum(), s.Urgent())
			}
			if hl := TCPHeaderLen + w.Options.EncodedLen(); s.HeaderLen() != hl || len(s.Options()) != hl-TCPHeaderLen {
				t.Errorf("HeaderLen = %d, want %d", s.HeaderLen(), hl)
			}
			if p := s.Payload(); !sameBytes(p, w.Payload) || len(p) > 0 && &p[0] != &b[s.HeaderLen()] {
				t.Errorf("Payload = %q, want %q aliasing the input", p, w.Payload)
			}
			if c := TCPChecksum(b, tc.src, tc.dst); c != 0 {
				t.Errorf("TCPChecksum over the kernel's segment = %#x, want 0", c)
			}
			var f TCPFields
			if err := f.Decode(s); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !eqTCP(f, w) {
				t.Errorf("Decode = %v\n  want %v", &f, &w)
			}
		})
	}
}

func TestTCPConstruct(t *testing.T) {
	for _, tc := range tcpGolden {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.want
			golden := l4(t, tc.frame)
			n := w.HeaderLen() + len(w.Payload)
			b := poisoned(n + 2)
			if got := w.Encode(b); got != n {
				t.Fatalf("Encode = %d, want %d", got, n)
			}
			if d := diffBytes(b[:n], golden); d != "" {
				t.Error(d)
			}
			if b[n] != poison {
				t.Error("Encode wrote past the segment")
			}
			// EncodeHeader writes only the header; with a zero checksum
			// field, TCPChecksum gives the kernel's checksum.
			h := poisoned(w.HeaderLen())
			w.Checksum = 0
			if got := w.EncodeHeader(h); got != len(h) {
				t.Fatalf("EncodeHeader = %d", got)
			}
			seg := append(h, w.Payload...)
			if c := TCPChecksum(seg, tc.src, tc.dst); c != tc.want.Checksum {
				t.Errorf("TCPChecksum = %#04x, want %#04x", c, tc.want.Checksum)
			}
		})
	}
}

func TestTCPRoundTrip(t *testing.T) {
	for _, tc := range tcpGolden {
		var f, g TCPFields
		if err := f.Decode(TCP(l4(t, tc.frame))); err != nil {
			t.Fatal(err)
		}
		b := poisoned(f.HeaderLen() + len(f.Payload))
		f.Encode(b)
		s, err := ParseTCP(b)
		if err != nil {
			t.Fatalf("%s: ParseTCP(Encode) = %v", tc.name, err)
		}
		if err := g.Decode(s); err != nil {
			t.Fatalf("%s: Decode(Encode) = %v", tc.name, err)
		}
		if !eqTCP(f, g) {
			t.Errorf("%s: round trip\n%v\n%v", tc.name, &f, &g)
		}
	}
}

func TestTCPParseErrors(t *testing.T) {
	good := l4(t, goldenTCPSYN) // data offset 10
	for n := 0; n < 40; n++ {
		if _, err := ParseTCP(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ParseTCP(%d of 40 bytes) = %v, want ErrTruncated", n, err)
		}
	}
	for off := 0; off < 5; off++ {
		b := append([]byte{}, good...)
		b[12] = byte(off << 4)
		if _, err := ParseTCP(b); !errors.Is(err, ErrBadHeader) {
			t.Errorf("data offset %d: ParseTCP = %v, want ErrBadHeader", off, err)
		}
	}
	b := append([]byte{}, good...)
	b[12] = 0xf0 // 60 bytes claimed, 40 present
	if _, err := ParseTCP(b); !errors.Is(err, ErrTruncated) {
		t.Errorf("data offset 15 in 40 bytes: ParseTCP = %v, want ErrTruncated", err)
	}
	// The low nibble of byte 12 (reserved, and AccECN's AE bit) does not
	// change the header length.
	b[12] = 0xaf
	if s, err := ParseTCP(b); err != nil || s.HeaderLen() != 40 {
		t.Errorf("reserved bits set: %v, header %d", err, s.HeaderLen())
	}
}

func TestTCPOptionsDecode(t *testing.T) {
	mss := func(o *TCPOptions) { o.MSS = 1460 }
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
		want func(o *TCPOptions)
	}{
		{"empty", nil, nil, nil},
		{"NOPs only", []byte{1, 1, 1, 1}, nil, nil},
		{"MSS", []byte{2, 4, 5, 0xb4}, nil, mss},
		// RFC 9293 §3.2: options end at EOL; what follows is padding.
		{"EOL stops", []byte{0, 2, 4, 5, 0xb4}, nil, nil},
		{"EOL after MSS, garbage after", []byte{2, 4, 5, 0xb4, 0, 0xff, 0x01, 0xff}, nil, mss},
		{"EOL alone", []byte{0}, nil, nil},
		// Unknown options are skipped by their length (RFC 9293 §3.2,
		// MUST-6): MPTCP (30), TCP-AO (29), Fast Open (34), MD5 (19),
		// experimental (254).
		{"unknown MPTCP skipped", []byte{30, 4, 0x01, 0x81, 2, 4, 5, 0xb4}, nil, mss},
		{"unknown Fast Open cookie", []byte{34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 2, 4, 5, 0xb4}, nil, mss},
		{"unknown MD5 signature", append(append([]byte{19, 18}, make([]byte, 16)...), 1, 1), nil, nil},
		{"unknown kind 254 length 2", []byte{254, 2, 2, 4, 5, 0xb4}, nil, mss},
		{"unknown filling the rest", []byte{2, 4, 5, 0xb4, 99, 4, 0, 0}, nil, mss},
		{"window scale 14", []byte{1, 3, 3, 14}, nil, func(o *TCPOptions) { o.HasWScale, o.WScale = true, 14 }},
		// RFC 7323 §2.3: a shift above 14 is reported as sent; receivers clamp.
		{"window scale 15", []byte{1, 3, 3, 15}, nil, func(o *TCPOptions) { o.HasWScale, o.WScale = true, 15 }},
		{"SACK permitted", []byte{4, 2}, nil, func(o *TCPOptions) { o.SACKPermitted = true }},
		{"timestamps", []byte{8, 10, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, nil, func(o *TCPOptions) { o.HasTimestamp, o.TSVal, o.TSEcr = true, 1, 0xffffffff }},
		{"SACK 4 blocks", append([]byte{5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...), nil, func(o *TCPOptions) {
			o.NumSACK, o.SACK = 4, [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
		}},
		// A repeated SACK option replaces the first, with no stale blocks.
		{"SACK twice", append(append([]byte{5, 18}, seqBytes(1, 2, 3, 4)...), append([]byte{5, 10}, seqBytes(9, 10)...)...), nil, func(o *TCPOptions) {
			o.NumSACK, o.SACK = 1, [4]SACKBlock{{9, 10}}
		}},

		// Malformed lists: RFC 9293 §3.2 (MUST-7) says a receiver must not
		// crash; we reject the segment.
		{"length 0", []byte{2, 0, 5, 0xb4}, ErrBadOptions, nil},
		{"length 1", []byte{8, 1, 0, 0}, ErrBadOptions, nil},
		{"unknown length 0", []byte{99, 0}, ErrBadOptions, nil},
		{"unknown length 1", []byte{99, 1, 1, 1}, ErrBadOptions, nil},
		{"kind without length", []byte{1, 1, 1, 2}, ErrBadOptions, nil},
		{"unknown kind without length", []byte{99}, ErrBadOptions, nil},
		{"MSS overruns", []byte{2, 4, 5}, ErrBadOptions, nil},
		{"timestamps overrun", []byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0}, ErrBadOptions, nil},
		{"unknown overruns", []byte{99, 5, 0, 0}, ErrBadOptions, nil},
		{"SACK overruns", []byte{5, 10, 0, 0, 0, 1, 0, 0, 0}, ErrBadOptions, nil},
		{"MSS length 3", []byte{2, 3, 5, 1}, ErrBadOptions, nil},
		{"MSS length 5", []byte{2, 5, 5, 0xb4, 0}, ErrBadOptions, nil},
		{"WS length 2", []byte{3, 2, 1, 1}, ErrBadOptions, nil},
		{"WS length 4", []byte{3, 4, 7, 0}, ErrBadOptions, nil},
		{"SACK-permitted length 3", []byte{4, 3, 0, 1}, ErrBadOptions, nil},
		{"TS length 8", []byte{8, 8, 0, 0, 0, 0, 0, 0}, ErrBadOptions, nil},
		{"TS length 12", []byte{8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrBadOptions, nil},
		{"SACK without blocks", []byte{5, 2, 1, 1}, ErrBadOptions, nil},
		{"SACK length 9", []byte{5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, ErrBadOptions, nil},
		{"SACK length 11", []byte{5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, ErrBadOptions, nil},
		{"bad option after good ones", []byte{2, 4, 5, 0xb4, 3, 3, 7, 8, 0}, ErrBadOptions, nil},
	} {
		var got, want TCPOptions
		got.SACK[3] = SACKBlock{0xdead, 0xbeef} // Decode must reset everything
		err := got.Decode(tc.b)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: Decode(%x) = %v, want %v", tc.name, tc.b, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if tc.want != nil {
			tc.want(&want)
		}
		if got != want {
			t.Errorf("%s: Decode(%x) = %v, want %v", tc.name, tc.b, &got, &want)
		}
	}
}

// seqBytes returns the big-endian bytes of a list of sequence numbers.
func seqBytes(s ...uint32) []byte {
	var b []byte
	for _, x := range s {
		b = append(b, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	return b
}

func TestTCPOptionsEncode(t *testing.T) {
	// The layouts Linux writes (net/ipv4/tcp_output.c, tcp_options_write),
	// which the captures above confirm for SYN, SYN without TS, data and
	// SACK segments.
	for _, tc := range []struct {
		name string
		o    TCPOptions
		want []byte
	}{
		{"none", TCPOptions{}, nil},
		{"MSS", TCPOptions{MSS: 536}, []byte{2, 4, 2, 0x18}},
		{"SACK-permitted alone", TCPOptions{SACKPermitted: true}, []byte{1, 1, 4, 2}},
		{"WS alone", TCPOptions{HasWScale: true, WScale: 7}, []byte{1, 3, 3, 7}},
		{"WS 0", TCPOptions{HasWScale: true}, []byte{1, 3, 3, 0}},
		{"TS alone", TCPOptions{HasTimestamp: true, TSVal: 1, TSEcr: 2}, []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}},
		{"SYN", TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1, HasWScale: true, WScale: 10},
			[]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 10}},
		{"SYN without TS", TCPOptions{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 10},
			[]byte{2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 10}},
		{"SACK 1 block", TCPOptions{NumSACK: 1, SACK: [4]SACKBlock{{1, 2}}}, append([]byte{1, 1, 5, 10}, seqBytes(1, 2)...)},
		{"TS and 3 SACK blocks", TCPOptions{HasTimestamp: true, NumSACK: 3, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}}},
			append([]byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5, 26}, seqBytes(1, 2, 3, 4, 5, 6)...)},
		// RFC 2018 §3: with timestamps only 3 blocks fit; the first are kept.
		{"TS and 4 SACK blocks", TCPOptions{HasTimestamp: true, NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			append([]byte{1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5, 26}, seqBytes(1, 2, 3, 4, 5, 6)...)},
		{"4 SACK blocks", TCPOptions{NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			append([]byte{1, 1, 5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...)},
		{"everything", TCPOptions{MSS: 1, SACKPermitted: true, HasTimestamp: true, HasWScale: true, NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			append([]byte{2, 4, 0, 1, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 0, 1, 1, 5, 18}, seqBytes(1, 2, 3, 4)...)},
	} {
		if n := tc.o.EncodedLen(); n != len(tc.want) || n%4 != 0 || n > TCPMaxOptionLen {
			t.Errorf("%s: EncodedLen = %d, want %d", tc.name, n, len(tc.want))
			continue
		}
		b := poisoned(len(tc.want) + 1)
		if n := tc.o.Encode(b); n != len(tc.want) {
			t.Errorf("%s: Encode = %d, want %d", tc.name, n, len(tc.want))
		}
		if d := diffBytes(b[:len(tc.want)], tc.want); d != "" {
			t.Errorf("%s: %s", tc.name, d)
		}
		if b[len(tc.want)] != poison {
			t.Errorf("%s: Encode wrote past EncodedLen", tc.name)
		}
		var g TCPOptions
		if err := g.Decode(b[:len(tc.want)]); err != nil {
			t.Errorf("%s: Decode(Encode) = %v", tc.name, err)
		}
		want := tc.o
		want.NumSACK = uint8(tc.o.sackFit())
		clear(want.SACK[want.NumSACK:])
		if g != want {
			t.Errorf("%s: round trip %v, want %v", tc.name, &g, &want)
		}
	}
}

func TestTCPSegLen(t *testing.T) {
	// RFC 9293 §3.4: SYN and FIN each occupy one sequence number.
	for _, tc := range []struct {
		f    TCPFields
		want uint32
	}{
		{TCPFields{}, 0},
		{TCPFields{Flags: TCPFlagSYN}, 1},
		{TCPFields{Flags: TCPFlagSYN | TCPFlagFIN, Payload: make([]byte, 10)}, 12},
		{TCPFields{Flags: TCPFlagFIN | TCPFlagACK}, 1},
		{TCPFields{Flags: TCPFlagRST | TCPFlagACK, Payload: make([]byte, 3)}, 3},
	} {
		if got := tc.f.SegLen(); got != tc.want {
			t.Errorf("%v: SegLen = %d, want %d", &tc.f, got, tc.want)
		}
	}
}

func TestTCPFlagsString(t *testing.T) {
	for f, s := range map[TCPFlags]string{
		0: "none", TCPFlagSYN: "S", TCPFlagSYN | TCPFlagACK: "S.", TCPFlagFIN | TCPFlagACK: "F.",
		TCPFlagRST: "R", TCPFlagPSH | TCPFlagACK: "P.", TCPFlagSYN | TCPFlagECE | TCPFlagCWR: "SEW",
		TCPFlagURG | TCPFlagACK: "U.", 0xff: "SFRPUEW.",
	} {
		if got := f.String(); got != s {
			t.Errorf("%#x: String = %q, want %q", uint8(f), got, s)
		}
		if !f.Has(f) || (f != 0xff && f.Has(0xff)) {
			t.Errorf("%#x: Has is wrong", uint8(f))
		}
	}
}

func TestTCPSetters(t *testing.T) {
	b := append([]byte{}, l4(t, goldenTCPData)...)
	s := TCP(b)
	s.SetSrcPort(1)
	s.SetDstPort(2)
	s.SetSeq(3)
	s.SetAck(4)
	s.SetFlags(TCPFlagFIN | TCPFlagACK)
	s.SetWindow(5)
	s.SetChecksum(6)
	if s.SrcPort() != 1 || s.DstPort() != 2 || s.Seq() != 3 || s.Ack() != 4 || s.Flags() != TCPFlagFIN|TCPFlagACK || s.Window() != 5 || s.Checksum() != 6 {
		t.Errorf("setters: %d %d %d %d %v %d %d", s.SrcPort(), s.DstPort(), s.Seq(), s.Ack(), s.Flags(), s.Window(), s.Checksum())
	}
	if s.HeaderLen() != 32 || len(s.Payload()) != 100 {
		t.Error("setters changed the layout")
	}
}
