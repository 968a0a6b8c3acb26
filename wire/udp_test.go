package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

// udpGolden is the captured datagram 10.77.1.1:40000 > 10.77.2.2:9999
// "hello" (tcpdump: "UDP, length 5"; checksum read from the bytes and
// verified below).
var udpGolden = UDPFields{SrcPort: 40000, DstPort: 9999, Checksum: 0xe115, Payload: []byte("hello")}

func TestUDPDeconstruct(t *testing.T) {
	b := l4(t, goldenUDP)
	u, err := ParseUDP(b)
	if err != nil {
		t.Fatalf("ParseUDP: %v", err)
	}
	w := udpGolden
	if u.SrcPort() != w.SrcPort || u.DstPort() != w.DstPort || u.Length() != 13 || u.Checksum() != w.Checksum {
		t.Errorf("%d > %d length %d checksum %#x", u.SrcPort(), u.DstPort(), u.Length(), u.Checksum())
	}
	if p := u.Payload(); string(p) != "hello" || &p[0] != &b[8] {
		t.Errorf("Payload = %q, want \"hello\" aliasing the input", p)
	}
	if d := u.Datagram(); len(d) != 13 || &d[0] != &b[0] {
		t.Errorf("Datagram: %d bytes, want 13", len(d))
	}
	// RFC 768: the sum over pseudo-header, header and data is all ones.
	if c := UDPChecksum(u.Datagram(), ipA, ipB); c != 0 {
		t.Errorf("UDPChecksum over the kernel's datagram = %#x, want 0", c)
	}
	var f UDPFields
	f.Decode(u)
	if !eqUDP(f, w) {
		t.Errorf("Decode = %+v, want %+v", f, w)
	}
}

func TestUDPConstruct(t *testing.T) {
	f := udpGolden
	f.Checksum = 0 // Encode computes it
	b := poisoned(f.Len() + 2)
	if n := f.Encode(b, ipA, ipB); n != 13 {
		t.Fatalf("Encode = %d, want 13", n)
	}
	if d := diffBytes(b[:13], l4(t, goldenUDP)); d != "" {
		t.Error(d)
	}
	if b[13] != poison {
		t.Error("Encode wrote past Len")
	}
}

func TestUDPChecksumZeroSentAsOnes(t *testing.T) {
	// RFC 768: "If the computed checksum is zero, it is transmitted as all
	// ones". Pick the last two payload bytes so that the sum is all ones
	// and the computed checksum therefore 0.
	f := UDPFields{SrcPort: 1, DstPort: 2, Payload: []byte{'u', 's', 't', 'a', 0, 0}}
	b := make([]byte, f.Len())
	f.Encode(b, ipA, ipB)
	c := binary.BigEndian.Uint16(b[6:])
	binary.BigEndian.PutUint16(f.Payload[4:], c) // adds ^sum to the sum
	f.Encode(b, ipA, ipB)
	if got := UDP(b).Checksum(); got != 0xffff {
		t.Fatalf("checksum field = %#04x, want 0xffff", got)
	}
	if c := UDPChecksum(b, ipA, ipB); c != 0 {
		t.Errorf("receiver's check = %#04x, want 0", c)
	}
}

func TestUDPRoundTrip(t *testing.T) {
	for _, f := range []UDPFields{
		udpGolden,
		{SrcPort: 0, DstPort: 53}, // no payload, source port unused
		{SrcPort: 65535, DstPort: 65535, Payload: make([]byte, 1)}, // odd length
		{SrcPort: 5353, DstPort: 5353, Payload: make([]byte, 1472)},
	} {
		b := poisoned(f.Len())
		f.Encode(b, ipA, ipB)
		u, err := ParseUDP(b)
		if err != nil {
			t.Fatalf("ParseUDP(Encode) = %v", err)
		}
		if UDPChecksum(b, ipA, ipB) != 0 {
			t.Errorf("%v: checksum does not verify", &f)
		}
		var g UDPFields
		g.Decode(u)
		f.Checksum = u.Checksum()
		if !eqUDP(f, g) {
			t.Errorf("round trip\n%+v\n%+v", f, g)
		}
	}
}

func TestUDPParseErrors(t *testing.T) {
	good := l4(t, goldenUDP)
	for n := 0; n < len(good); n++ {
		if _, err := ParseUDP(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ParseUDP(%d of 13 bytes) = %v, want ErrTruncated", n, err)
		}
	}
	for _, tc := range []struct {
		length uint16
		want   error
	}{
		{0, ErrBadHeader}, {7, ErrBadHeader}, {14, ErrTruncated}, {0xffff, ErrTruncated},
	} {
		b := append([]byte{}, good...)
		binary.BigEndian.PutUint16(b[4:], tc.length)
		if _, err := ParseUDP(b); !errors.Is(err, tc.want) {
			t.Errorf("length field %d: ParseUDP = %v, want %v", tc.length, err, tc.want)
		}
	}
	// Bytes past the length field (a shorter length than the IP payload)
	// are not payload.
	b := append(append([]byte{}, good...), 0xee, 0xee, 0xee)
	u, err := ParseUDP(b)
	if err != nil || string(u.Payload()) != "hello" || len(u.Datagram()) != 13 {
		t.Errorf("trailing bytes: %v, payload %q", err, u.Payload())
	}
	// Length 8: an empty datagram.
	binary.BigEndian.PutUint16(b[4:], 8)
	if u, err := ParseUDP(b); err != nil || len(u.Payload()) != 0 {
		t.Errorf("length 8: %v", err)
	}
}
