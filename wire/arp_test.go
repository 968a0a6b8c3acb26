package wire

import (
	"errors"
	"net/netip"
	"testing"
)

var arpGolden = []struct {
	name  string
	frame []byte
	want  ARPFields
}{
	// RFC 826: a request leaves the target hardware address zero.
	{"Request", goldenARPRequest, ARPFields{Op: ARPRequest, SenderMAC: macA0, SenderIP: ipA, TargetIP: ipR}},
	{"Reply", goldenARPReply, ARPFields{Op: ARPReply, SenderMAC: macR0, SenderIP: ipR, TargetMAC: macA0, TargetIP: ipA}},
	{"VLANRequest", goldenVLANARP, ARPFields{Op: ARPRequest, SenderMAC: macA2, SenderIP: ipA2, TargetIP: ipR3}},
}

func TestARPDeconstruct(t *testing.T) {
	for _, tc := range arpGolden {
		t.Run(tc.name, func(t *testing.T) {
			b := l3(t, tc.frame)
			a, err := ParseARP(b)
			if err != nil {
				t.Fatalf("ParseARP: %v", err)
			}
			if len(a) != ARPLen || &a[0] != &b[0] {
				t.Errorf("view is %d bytes, want %d aliasing the input", len(a), ARPLen)
			}
			w := tc.want
			if a.Op() != w.Op || a.SenderMAC() != w.SenderMAC || a.SenderIP() != w.SenderIP ||
				a.TargetMAC() != w.TargetMAC || a.TargetIP() != w.TargetIP {
				t.Errorf("accessors = %d %v %v %v %v, want %+v", a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP(), w)
			}
			var f ARPFields
			f.Decode(a)
			if f != w {
				t.Errorf("Decode = %+v, want %+v", f, w)
			}
		})
	}
}

func TestARPConstruct(t *testing.T) {
	for _, tc := range arpGolden {
		t.Run(tc.name, func(t *testing.T) {
			b := poisoned(ARPLen + 2)
			if n := tc.want.Encode(b); n != ARPLen {
				t.Fatalf("Encode = %d", n)
			}
			if d := diffBytes(b[:ARPLen], l3(t, tc.frame)); d != "" {
				t.Error(d)
			}
			if b[ARPLen] != poison || b[ARPLen+1] != poison {
				t.Error("Encode wrote past ARPLen")
			}
		})
	}
}

func TestARPRoundTrip(t *testing.T) {
	for _, tc := range arpGolden {
		b := poisoned(ARPLen)
		tc.want.Encode(b)
		a, err := ParseARP(b)
		if err != nil {
			t.Fatalf("%s: ParseARP(Encode) = %v", tc.name, err)
		}
		var g ARPFields
		g.Decode(a)
		if g != tc.want {
			t.Errorf("%s: round trip = %+v, want %+v", tc.name, g, tc.want)
		}
	}
	// An address that is not IPv4 (here the zero Addr) is written as
	// 0.0.0.0 rather than panicking; an IPv4-mapped IPv6 one as itself.
	f := ARPFields{Op: ARPRequest, TargetIP: netip.MustParseAddr("::ffff:10.77.1.2")}
	b := poisoned(ARPLen)
	f.Encode(b)
	a, _ := ParseARP(b)
	if a.SenderIP() != netip.IPv4Unspecified() || a.TargetIP() != ipR {
		t.Errorf("SenderIP, TargetIP = %v, %v", a.SenderIP(), a.TargetIP())
	}
}

func TestARPParseErrors(t *testing.T) {
	good := l3(t, goldenARPRequest)
	for n := 0; n < ARPLen; n++ {
		if _, err := ParseARP(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("ParseARP(%d bytes) = %v, want ErrTruncated", n, err)
		}
	}
	// Minimum-size Ethernet frames pad an ARP to 46 bytes: the view stops at
	// ARPLen.
	padded := append(append([]byte{}, good...), make([]byte, 18)...)
	if a, err := ParseARP(padded); err != nil || len(a) != ARPLen {
		t.Errorf("ParseARP(padded) = %d bytes, %v", len(a), err)
	}
	for _, tc := range []struct {
		name string
		off  int
		val  []byte
		want error
	}{
		{"htype IEEE 802", 0, []byte{0, 6}, ErrUnsupported},
		{"htype 0", 0, []byte{0, 0}, ErrUnsupported},
		{"ptype IPv6", 2, []byte{0x86, 0xdd}, ErrUnsupported},
		{"hlen 8", 4, []byte{8}, ErrUnsupported},
		{"plen 16", 5, []byte{16}, ErrUnsupported},
		{"op 0", 6, []byte{0, 0}, ErrBadHeader},
		{"op 3 (RARP request)", 6, []byte{0, 3}, ErrBadHeader},
		{"op 0x0101", 6, []byte{1, 1}, ErrBadHeader},
	} {
		b := append([]byte{}, good...)
		copy(b[tc.off:], tc.val)
		if _, err := ParseARP(b); !errors.Is(err, tc.want) {
			t.Errorf("%s: ParseARP = %v, want %v", tc.name, err, tc.want)
		}
	}
}
