package wire

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// ipv4Golden lists captured packets with their headers as tcpdump -v printed
// them (see golden_test.go), so the expected values come from an independent
// decoder.
var ipv4Golden = []struct {
	name  string
	frame []byte
	want  IPv4Fields
}{
	{"EchoRequest", goldenEchoRequest, IPv4Fields{TotalLen: 60, ID: 33510, DF: true, TTL: 64, Protocol: ProtoICMP, Checksum: 0xa13e, Src: ipA, Dst: ipR}},
	{"EchoReply", goldenEchoReply, IPv4Fields{TotalLen: 60, ID: 51008, TTL: 64, Protocol: ProtoICMP, Checksum: 0x9ce4, Src: ipR, Dst: ipA}},
	// RFC 791 §3.1 record route: NOP, then type 7, length 39, pointer 8
	// (A wrote its address in the first slot); IHL 15.
	{"RecordRouteRequest", goldenRecordRouteRequest, IPv4Fields{TotalLen: 76, ID: 33565, DF: true, TTL: 64, Protocol: ProtoICMP, Checksum: 0x639a, Src: ipA, Dst: ipR,
		Options: unhex("01 07 27 08 0a4d0101" + "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000")}},
	// The reply: pointer 16 after R added two addresses, then EOL.
	{"RecordRouteReply", goldenRecordRouteReply, IPv4Fields{TotalLen: 76, ID: 51037, TTL: 64, Protocol: ProtoICMP, Checksum: 0x8f6e, Src: ipR, Dst: ipA,
		Options: unhex("07 27 10 0a4d0101 0a4d0102 0a4d0102" + "00000000 00000000 00000000 00000000 00000000 00000000" + "00")}},
	// ICMP errors carry TOS 0xc0 (precedence "internetwork control",
	// Linux's choice for ICMP errors).
	{"TimeExceeded", goldenTimeExceeded, IPv4Fields{TOS: 0xc0, TotalLen: 72, ID: 51069, TTL: 64, Protocol: ProtoICMP, Checksum: 0x9bdb, Src: ipR, Dst: ipA}},
	{"FragNeeded", goldenFragNeeded, IPv4Fields{TOS: 0xc0, TotalLen: 576, ID: 51106, TTL: 64, Protocol: ProtoICMP, Checksum: 0x99be, Src: ipR, Dst: ipA}},
	{"UDP", goldenUDP, IPv4Fields{TotalLen: 33, ID: 64429, DF: true, TTL: 64, Protocol: ProtoUDP, Checksum: 0x2782, Src: ipA, Dst: ipB}},
	{"PortUnreachable", goldenPortUnreachable, IPv4Fields{TOS: 0xc0, TotalLen: 61, ID: 502, TTL: 63, Protocol: ProtoICMP, Checksum: 0x616e, Src: ipB, Dst: ipA}},
	{"TCPSYN", goldenTCPSYN, IPv4Fields{TotalLen: 60, ID: 63723, DF: true, TTL: 64, Protocol: ProtoTCP, Checksum: 0x2b34, Src: ipA, Dst: ipR}},
	{"TCPRST", goldenTCPRST, IPv4Fields{TotalLen: 40, DF: true, TTL: 64, Protocol: ProtoTCP, Checksum: 0x2434, Src: ipR, Dst: ipA}},
	// RFC 791 §2.3 fragmentation: 48 data bytes with MF, then the last 24
	// at offset 48.
	{"FragFirst", goldenFragFirst, IPv4Fields{TotalLen: 68, ID: 892, MF: true, TTL: 64, Protocol: ProtoICMP, Checksum: 0x3ca1, Src: ipA1, Dst: ipR2}},
	{"FragLast", goldenFragLast, IPv4Fields{TotalLen: 44, ID: 892, FragOffset: 48, TTL: 64, Protocol: ProtoICMP, Checksum: 0x5cb3, Src: ipA1, Dst: ipR2}},
	{"VLANEcho", goldenVLANEcho, IPv4Fields{TotalLen: 60, ID: 42350, DF: true, TTL: 64, Protocol: ProtoICMP, Checksum: 0x78b6, Src: ipA2, Dst: ipR3}},
	{"QinQEcho", goldenQinQEcho, IPv4Fields{TotalLen: 60, ID: 42508, DF: true, TTL: 64, Protocol: ProtoICMP, Checksum: 0x7818, Src: ipA2, Dst: ipR3}},
}

func TestIPv4Deconstruct(t *testing.T) {
	for _, tc := range ipv4Golden {
		t.Run(tc.name, func(t *testing.T) {
			b := l3(t, tc.frame)
			p, err := ParseIPv4(b)
			if err != nil {
				t.Fatalf("ParseIPv4: %v", err)
			}
			w := tc.want
			hl := IPv4HeaderLen + len(w.Options)
			if p.HeaderLen() != hl || p.TOS() != w.TOS || p.TotalLen() != w.TotalLen || p.ID() != w.ID ||
				p.DF() != w.DF || p.MF() != w.MF || p.FragOffset() != w.FragOffset || p.TTL() != w.TTL ||
				p.Protocol() != w.Protocol || p.Checksum() != w.Checksum || p.Src() != w.Src || p.Dst() != w.Dst {
				t.Errorf("accessors disagree with tcpdump: hl %d tos %#x len %d id %d df %v mf %v off %d ttl %d proto %d sum %#x %v > %v",
					p.HeaderLen(), p.TOS(), p.TotalLen(), p.ID(), p.DF(), p.MF(), p.FragOffset(), p.TTL(), p.Protocol(), p.Checksum(), p.Src(), p.Dst())
			}
			if !sameBytes(p.Options(), w.Options) {
				t.Errorf("Options = %x, want %x", p.Options(), w.Options)
			}
			if got := p.Payload(); len(got) != int(w.TotalLen)-hl || &got[0] != &b[hl] {
				t.Errorf("Payload: %d bytes, want %d aliasing the input", len(got), int(w.TotalLen)-hl)
			}
			if got := p.Packet(); len(got) != int(w.TotalLen) || &got[0] != &b[0] {
				t.Errorf("Packet: %d bytes, want %d", len(got), w.TotalLen)
			}
			if !p.ChecksumValid() {
				t.Error("ChecksumValid = false on a kernel-made header")
			}
			if got, want := p.IsFragment(), w.MF || w.FragOffset != 0; got != want {
				t.Errorf("IsFragment = %v, want %v", got, want)
			}
			var f IPv4Fields
			f.Decode(p)
			if !eqIPv4(f, w) {
				t.Errorf("Decode = %+v\n  want %+v", f, w)
			}
		})
	}
}

func TestIPv4Construct(t *testing.T) {
	for _, tc := range ipv4Golden {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.want
			w.Checksum = 0 // Encode computes it; the golden bytes hold the kernel's
			hl := w.HeaderLen()
			b := poisoned(hl + 3)
			if n := w.Encode(b); n != hl {
				t.Fatalf("Encode = %d, want %d", n, hl)
			}
			if d := diffBytes(b[:hl], l3(t, tc.frame)[:hl]); d != "" {
				t.Error(d)
			}
			if b[hl] != poison {
				t.Error("Encode wrote past HeaderLen")
			}
		})
	}
}

func TestIPv4OptionPadding(t *testing.T) {
	// RFC 791 §3.1: the header is padded with zeros (which read as end of
	// option list) to a 32-bit boundary.
	for n := 0; n <= IPv4MaxOptionLen+5; n++ {
		opts := make([]byte, n)
		for i := range opts {
			opts[i] = ipv4OptNOP
		}
		f := IPv4Fields{TotalLen: 100, TTL: 1, Src: ipA, Dst: ipB, Options: opts}
		hl := f.HeaderLen()
		want := IPv4HeaderLen + (min(n, IPv4MaxOptionLen)+3)/4*4
		if hl != want {
			t.Fatalf("%d option bytes: HeaderLen = %d, want %d", n, hl, want)
		}
		b := poisoned(hl)
		f.Encode(b)
		p, err := ParseIPv4(append(b, make([]byte, 100-hl)...))
		if err != nil {
			t.Fatalf("%d option bytes: ParseIPv4(Encode) = %v", n, err)
		}
		for i, x := range p.Options() {
			want := byte(ipv4OptNOP)
			if i >= n {
				want = ipv4OptEOL
			}
			if x != want {
				t.Fatalf("%d option bytes: byte %d = %#x, want %#x", n, i, x, want)
			}
		}
		if !p.ChecksumValid() {
			t.Fatalf("%d option bytes: bad checksum", n)
		}
	}
}

func TestIPv4RoundTrip(t *testing.T) {
	for _, tc := range ipv4Golden {
		var f, g IPv4Fields
		f.Decode(IPv4(l3(t, tc.frame)))
		b := poisoned(f.HeaderLen())
		f.Encode(b)
		b = append(b, make([]byte, int(f.TotalLen)-len(b))...)
		p, err := ParseIPv4(b)
		if err != nil {
			t.Fatalf("%s: ParseIPv4(Encode) = %v", tc.name, err)
		}
		g.Decode(p)
		if !eqIPv4(f, g) {
			t.Errorf("%s: round trip\n%+v\n%+v", tc.name, f, g)
		}
	}
}

func TestIPv4ParseErrors(t *testing.T) {
	good := l3(t, goldenRecordRouteRequest) // IHL 15, total length 76
	for n := 0; n < len(good); n++ {
		if _, err := ParseIPv4(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ParseIPv4(%d of %d bytes) = %v, want ErrTruncated", n, len(good), err)
		}
	}
	set := func(f func(b []byte)) []byte {
		b := append([]byte{}, good...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"version 6", set(func(b []byte) { b[0] = 0x6f }), ErrBadHeader},
		{"version 0", set(func(b []byte) { b[0] = 0x0f }), ErrBadHeader},
		{"IHL 0", set(func(b []byte) { b[0] = 0x40 }), ErrBadHeader},
		{"IHL 4", set(func(b []byte) { b[0] = 0x44 }), ErrBadHeader},
		{"total length 0", set(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 0) }), ErrBadHeader},
		{"total length 59 < IHL*4", set(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 59) }), ErrBadHeader},
		{"total length 77 > buffer", set(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 77) }), ErrTruncated},
		{"total length 65535", set(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 0xffff) }), ErrTruncated},
		{"IHL 15, 24-byte buffer", good[:24], ErrTruncated},
	} {
		if _, err := ParseIPv4(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: ParseIPv4 = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Total length equal to the header: an empty payload is fine.
	b := set(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 60) })
	if p, err := ParseIPv4(b); err != nil || len(p.Payload()) != 0 || len(p.Packet()) != 60 {
		t.Errorf("header-only packet: %v", err)
	}
}

func TestIPv4EthernetPadding(t *testing.T) {
	// A 40-byte TCP RST travels in a 60-byte minimum Ethernet frame (IEEE
	// 802.3 §4.2.3.3; veth does not pad, real NICs do): the 6 padding bytes
	// must stay out of Payload and Packet.
	frame := append(append([]byte{}, goldenTCPRST...), 0, 0, 0, 0, 0, 0)
	p, err := ParseIPv4(l3(t, frame))
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 46 || len(p.Packet()) != 40 || len(p.Payload()) != 20 {
		t.Errorf("view %d, Packet %d, Payload %d; want 46, 40, 20", len(p), len(p.Packet()), len(p.Payload()))
	}
}

func TestIPv4ChecksumValid(t *testing.T) {
	b := append([]byte{}, l3(t, goldenRecordRouteReply)...)
	p, _ := ParseIPv4(b)
	if !p.ChecksumValid() {
		t.Fatal("golden header does not verify")
	}
	// Any single-bit error in the header is detected (RFC 1071 §1); one in
	// the payload is not the header checksum's business.
	for i := 0; i < p.HeaderLen()*8; i++ {
		b[i/8] ^= 1 << (i % 8)
		if p.ChecksumValid() {
			t.Errorf("bit %d flipped, checksum still valid", i)
		}
		b[i/8] ^= 1 << (i % 8)
	}
	b[len(b)-1] ^= 0xff
	if !p.ChecksumValid() {
		t.Error("payload change broke the header checksum")
	}
}

func TestIPv4SetTTL(t *testing.T) {
	// RFC 1624 §3: the incremental update must equal a recomputation, as
	// a router decrementing the TTL relies on (RFC 1812 §5.3.1).
	b := append([]byte{}, l3(t, goldenEchoRequest)...)
	p, _ := ParseIPv4(b)
	p.SetTTL(63)
	if p.TTL() != 63 || p.Checksum() != 0xa23e || !p.ChecksumValid() {
		t.Errorf("TTL %d checksum %#x valid %v; want 63 0xa23e true", p.TTL(), p.Checksum(), p.ChecksumValid())
	}
	r := rand.New(rand.NewPCG(1624, 1))
	for i := 0; i < 10000; i++ {
		f := IPv4Fields{
			TOS: uint8(r.Uint32()), TotalLen: 60, ID: uint16(r.Uint32()), DF: r.IntN(2) == 0,
			TTL: uint8(r.Uint32()), Protocol: uint8(r.Uint32()), Src: randAddr4(r), Dst: randAddr4(r),
		}
		h := make([]byte, 60)
		f.Encode(h)
		p := IPv4(h)
		ttl := uint8(r.Uint32())
		p.SetTTL(ttl)
		inc := p.Checksum()
		p.SetChecksum(0)
		full := Checksum(h[:IPv4HeaderLen], 0)
		if inc != full || p.TTL() != ttl {
			t.Fatalf("%+v: SetTTL(%d) checksum %#04x, recomputed %#04x", f, ttl, inc, full)
		}
	}
}
