package wire

import (
	"errors"
	"testing"
)

// mustL4 returns the IPv4 payload of a golden frame; it panics on a bad
// frame, which can only come from an edit to golden_test.go.
func mustL4(frame []byte) []byte {
	e, err := ParseEthernet(frame)
	if err != nil {
		panic(err)
	}
	p, err := ParseIPv4(e.Payload())
	if err != nil {
		panic(err)
	}
	return p.Payload()
}

// icmpGolden lists captured ICMP messages with their fields as tcpdump
// printed them. Payload is everything after the 8-byte header.
var icmpGolden = []struct {
	name  string
	frame []byte
	want  ICMPv4Fields
}{
	{"EchoRequest", goldenEchoRequest, ICMPv4Fields{Type: ICMPv4EchoRequest, Checksum: 0x7527, ID: 6673, Seq: 1, Payload: mustL4(goldenEchoRequest)[8:]}},
	{"EchoReply", goldenEchoReply, ICMPv4Fields{Type: ICMPv4EchoReply, Checksum: 0x7d27, ID: 6673, Seq: 1, Payload: mustL4(goldenEchoReply)[8:]}},
	{"RecordRouteRequest", goldenRecordRouteRequest, ICMPv4Fields{Type: ICMPv4EchoRequest, Checksum: 0xd1db, ID: 6675, Seq: 1, Payload: unhex("0001020304050607")}},
	{"VLANEcho", goldenVLANEcho, ICMPv4Fields{Type: ICMPv4EchoRequest, Checksum: 0x92d6, ID: 7451, Seq: 1, Payload: mustL4(goldenVLANEcho)[8:]}},
	// RFC 792: time exceeded and destination unreachable leave the second
	// word unused (zero), except fragmentation needed, whose low half is
	// the next-hop MTU (RFC 1191 §4).
	{"TimeExceeded", goldenTimeExceeded, ICMPv4Fields{Type: ICMPv4TimeExceeded, Code: ICMPv4TTLExceeded, Checksum: 0xf4ff, Payload: mustL4(goldenTimeExceeded)[8:]}},
	{"FragNeeded", goldenFragNeeded, ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4FragmentationNeeded, Checksum: 0x73e1, MTU: 1000, Payload: mustL4(goldenFragNeeded)[8:]}},
	{"PortUnreachable", goldenPortUnreachable, ICMPv4Fields{Type: ICMPv4DestUnreachable, Code: ICMPv4PortUnreachable, Checksum: 0x14b8, Payload: mustL4(goldenPortUnreachable)[8:]}},
}

func TestICMPv4Deconstruct(t *testing.T) {
	for _, tc := range icmpGolden {
		t.Run(tc.name, func(t *testing.T) {
			b := l4(t, tc.frame)
			m, err := ParseICMPv4(b)
			if err != nil {
				t.Fatalf("ParseICMPv4: %v", err)
			}
			w := tc.want
			if m.Type() != w.Type || m.Code() != w.Code || m.Checksum() != w.Checksum {
				t.Errorf("type %d code %d checksum %#x, want %d %d %#x", m.Type(), m.Code(), m.Checksum(), w.Type, w.Code, w.Checksum)
			}
			if !m.ChecksumValid() {
				t.Error("ChecksumValid = false on a kernel-made message")
			}
			if p := m.Payload(); !sameBytes(p, w.Payload) || &p[0] != &b[8] {
				t.Errorf("Payload = %x, want %x aliasing the input", p, w.Payload)
			}
			switch w.Type {
			case ICMPv4EchoRequest, ICMPv4EchoReply:
				if m.ID() != w.ID || m.Seq() != w.Seq {
					t.Errorf("ID, Seq = %d, %d; want %d, %d", m.ID(), m.Seq(), w.ID, w.Seq)
				}
			case ICMPv4DestUnreachable:
				if m.NextHopMTU() != w.MTU {
					t.Errorf("NextHopMTU = %d, want %d", m.NextHopMTU(), w.MTU)
				}
			}
			var f ICMPv4Fields
			f.Decode(m)
			if !eqICMPv4(f, w) {
				t.Errorf("Decode = %+v\n  want %+v", f, w)
			}
		})
	}
}

func TestICMPv4Construct(t *testing.T) {
	for _, tc := range icmpGolden {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.want
			w.Checksum = 0 // Encode computes it
			n := w.Len()
			b := poisoned(n + 2)
			if got := w.Encode(b); got != n {
				t.Fatalf("Encode = %d, want %d", got, n)
			}
			if d := diffBytes(b[:n], l4(t, tc.frame)); d != "" {
				t.Error(d)
			}
			if b[n] != poison {
				t.Error("Encode wrote past Len")
			}
		})
	}
}

func TestICMPv4RoundTrip(t *testing.T) {
	cases := []ICMPv4Fields{
		{Type: ICMPv4ParameterProblem, Pointer: 20, Payload: mustL4(goldenEchoRequest)[:28]},
		{Type: ICMPv4DestUnreachable, Code: ICMPv4FragmentationNeeded, MTU: 576},
		{Type: ICMPv4DestUnreachable, Code: ICMPv4AdminProhibited},
		{Type: ICMPv4TimeExceeded, Code: ICMPv4ReassemblyTimeExceeded},
		{Type: 13, ID: 1, Seq: 2, Payload: make([]byte, 12)}, // timestamp request (RFC 792)
		{Type: 17, ID: 0xffff, Seq: 0xfffe},                  // address mask request (RFC 950)
		{Type: 5, Code: 1},                                   // redirect: the gateway is not kept
		{Type: 255, Code: 255, Payload: []byte{1}},
	}
	for _, tc := range icmpGolden {
		cases = append(cases, tc.want)
	}
	for _, f := range cases {
		b := poisoned(f.Len())
		f.Encode(b)
		m, err := ParseICMPv4(b)
		if err != nil {
			t.Fatalf("%v: ParseICMPv4(Encode) = %v", &f, err)
		}
		if !m.ChecksumValid() {
			t.Errorf("%v: encoded checksum does not verify", &f)
		}
		var g ICMPv4Fields
		g.Decode(m)
		f.Checksum = m.Checksum()
		if !eqICMPv4(f, g) {
			t.Errorf("round trip\n%+v\n%+v", f, g)
		}
	}
}

func TestICMPv4Quote(t *testing.T) {
	// The quoted datagram of each kernel-made error (RFC 792: "Internet
	// Header + 64 bits of Original Data Datagram"), as tcpdump decoded it.
	for _, tc := range []struct {
		name     string
		frame    []byte
		want     IPv4Fields
		tlen     int
		sport    uint16
		dport    uint16
		protocol uint8
	}{
		{"TimeExceeded", goldenTimeExceeded, IPv4Fields{TotalLen: 44, ID: 28338, DF: true, TTL: 1, Protocol: ProtoICMP, Checksum: 0xf382, Src: ipA, Dst: ipB}, 24, 0, 0, ProtoICMP},
		// Linux quotes up to 576 bytes in all (RFC 1812 §4.3.2.3).
		{"FragNeeded", goldenFragNeeded, IPv4Fields{TotalLen: 1228, DF: true, TTL: 64, Protocol: ProtoICMP, Checksum: 0x1e95, Src: ipA, Dst: ipB}, 576 - 20 - 8 - 20, 0, 0, ProtoICMP},
		// B saw the datagram after R decremented its TTL.
		{"PortUnreachable", goldenPortUnreachable, IPv4Fields{TotalLen: 33, ID: 64429, DF: true, TTL: 63, Protocol: ProtoUDP, Checksum: 0x2882, Src: ipA, Dst: ipB}, 13, 40000, 9999, ProtoUDP},
	} {
		m, _ := ParseICMPv4(l4(t, tc.frame))
		var f IPv4Fields
		tr, err := m.Quote(&f)
		if err != nil {
			t.Fatalf("%s: Quote: %v", tc.name, err)
		}
		if !eqIPv4(f, tc.want) {
			t.Errorf("%s: quoted header %+v\n  want %+v", tc.name, f, tc.want)
		}
		if len(tr) != tc.tlen {
			t.Errorf("%s: %d quoted transport bytes, want %d", tc.name, len(tr), tc.tlen)
		}
		if tc.protocol == ProtoUDP {
			u, err := ParseUDP(tr)
			if err != nil || u.SrcPort() != tc.sport || u.DstPort() != tc.dport {
				t.Errorf("%s: quoted UDP %v %d > %d", tc.name, err, u.SrcPort(), u.DstPort())
			}
		}
	}
}

func TestICMPv4ParseErrors(t *testing.T) {
	good := l4(t, goldenEchoRequest)
	for n := 0; n < ICMPv4HeaderLen; n++ {
		if _, err := ParseICMPv4(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ParseICMPv4(%d bytes) = %v, want ErrTruncated", n, err)
		}
	}
	if m, err := ParseICMPv4(good[:8]); err != nil || len(m.Payload()) != 0 {
		t.Errorf("header-only message: %v", err)
	}

	// Quote on malformed quotes.
	te := l4(t, goldenTimeExceeded) // 8 + 20 + 24 bytes
	var f IPv4Fields
	for n := ICMPv4HeaderLen; n < 8+20+8; n++ {
		if _, err := ICMPv4(te[:n]).Quote(&f); !errors.Is(err, ErrTruncated) {
			t.Errorf("Quote(%d bytes) = %v, want ErrTruncated", n, err)
		}
	}
	if tr, err := ICMPv4(te[:8+20+8]).Quote(&f); err != nil || len(tr) != 8 {
		t.Errorf("Quote(header + 8 bytes) = %d bytes, %v", len(tr), err)
	}
	bad := append([]byte{}, te...)
	bad[8] = 0x65 // IPv6 version with IHL 5
	if _, err := ICMPv4(bad).Quote(&f); !errors.Is(err, ErrBadHeader) {
		t.Errorf("Quote(version 6) = %v, want ErrBadHeader", err)
	}
	bad[8] = 0x44
	if _, err := ICMPv4(bad).Quote(&f); !errors.Is(err, ErrBadHeader) {
		t.Errorf("Quote(IHL 4) = %v, want ErrBadHeader", err)
	}
	bad[8] = 0x47 // IHL 7: 28 + 8 bytes needed, 44 present
	if tr, err := ICMPv4(bad).Quote(&f); err != nil || len(tr) != 16 {
		t.Errorf("Quote(IHL 7) = %d bytes, %v", len(tr), err)
	}
	bad[8] = 0x4f // IHL 15: 60 + 8 bytes needed
	if _, err := ICMPv4(bad).Quote(&f); !errors.Is(err, ErrTruncated) {
		t.Errorf("Quote(IHL 15) = %v, want ErrTruncated", err)
	}
}

func TestICMPv4ChecksumOddLength(t *testing.T) {
	// RFC 1071 §4.1: an odd final byte is padded with zero.
	f := ICMPv4Fields{Type: ICMPv4EchoRequest, ID: 7, Seq: 9, Payload: []byte{1, 2, 3}}
	b := poisoned(f.Len())
	f.Encode(b)
	if !ICMPv4(b).ChecksumValid() {
		t.Error("odd-length message does not verify")
	}
	want := ^AddSum(AddSum(0x0800, 7), AddSum(9, AddSum(0x0102, 0x0300)))
	if got := ICMPv4(b).Checksum(); got != want {
		t.Errorf("checksum %#04x, want %#04x", got, want)
	}
}
