package wire

import (
	"errors"
	"net"
	"testing"
)

// ethernetGolden lists captured frames and the header each one carries.
// tags is the number of VLAN tags, which EthernetFields (one tag at most)
// does not keep.
var ethernetGolden = []struct {
	name  string
	frame []byte
	tags  int
	want  EthernetFields
}{
	{"ARPRequest", goldenARPRequest, 0, EthernetFields{Dst: BroadcastMAC, Src: macA0, EtherType: EtherTypeARP}},
	{"ARPReply", goldenARPReply, 0, EthernetFields{Dst: macA0, Src: macR0, EtherType: EtherTypeARP}},
	{"EchoRequest", goldenEchoRequest, 0, EthernetFields{Dst: macR0, Src: macA0, EtherType: EtherTypeIPv4}},
	{"FragFirst", goldenFragFirst, 0, EthernetFields{Dst: macR2, Src: macA1, EtherType: EtherTypeIPv4}},
	{"VLANARP", goldenVLANARP, 1, EthernetFields{Dst: BroadcastMAC, Src: macA2, HasVLAN: true, VLAN: 5, EtherType: EtherTypeARP}},
	{"VLANEcho", goldenVLANEcho, 1, EthernetFields{Dst: macR3, Src: macA2, HasVLAN: true, VLAN: 5, EtherType: EtherTypeIPv4}},
	// QinQ: the fields keep the innermost tag (C-tag 7), not the S-tag 100.
	{"QinQEcho", goldenQinQEcho, 2, EthernetFields{Dst: macR3, Src: macA2, HasVLAN: true, VLAN: 7, EtherType: EtherTypeIPv4}},
}

func TestEthernetDeconstruct(t *testing.T) {
	for _, tc := range ethernetGolden {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseEthernet(tc.frame)
			if err != nil {
				t.Fatalf("ParseEthernet: %v", err)
			}
			hl := EthernetHeaderLen + VLANTagLen*tc.tags
			if e.Dst() != tc.want.Dst || e.Src() != tc.want.Src {
				t.Errorf("Dst, Src = %v, %v; want %v, %v", e.Dst(), e.Src(), tc.want.Dst, tc.want.Src)
			}
			if e.EtherType() != tc.want.EtherType {
				t.Errorf("EtherType = %v, want %v", e.EtherType(), tc.want.EtherType)
			}
			if tci, ok := e.VLAN(); ok != tc.want.HasVLAN || tci != tc.want.VLAN {
				t.Errorf("VLAN = %#x, %v; want %#x, %v", tci, ok, tc.want.VLAN, tc.want.HasVLAN)
			}
			if e.HeaderLen() != hl {
				t.Errorf("HeaderLen = %d, want %d", e.HeaderLen(), hl)
			}
			if p := e.Payload(); len(p) != len(tc.frame)-hl || &p[0] != &tc.frame[hl] {
				t.Errorf("Payload does not alias frame[%d:]", hl)
			}
			var f EthernetFields
			f.Decode(e)
			if f != tc.want {
				t.Errorf("Decode = %+v, want %+v", f, tc.want)
			}
		})
	}
}

func TestEthernetQinQTags(t *testing.T) {
	// The outer tag of goldenQinQEcho is the 802.1ad S-tag 0x88a8 with VLAN
	// 100, the inner an 802.1Q C-tag with VLAN 7 (tcpdump: "vlan 100, p 0,
	// ethertype 802.1Q (0x8100), vlan 7, p 0").
	e, err := ParseEthernet(goldenQinQEcho)
	if err != nil {
		t.Fatal(err)
	}
	if got := EtherType(uint16(e[12])<<8 | uint16(e[13])); got != EtherTypeQinQ {
		t.Errorf("outer TPID = %v, want %v", got, EtherTypeQinQ)
	}
	if got := VLANID(uint16(e[14])<<8 | uint16(e[15])); got != 100 {
		t.Errorf("outer VLAN = %d, want 100", got)
	}
	if tci, _ := e.VLAN(); VLANID(tci) != 7 || VLANPriority(tci) != 0 {
		t.Errorf("inner tag = %#x, want VLAN 7 priority 0", tci)
	}
}

func TestEthernetConstruct(t *testing.T) {
	for _, tc := range ethernetGolden {
		if tc.tags > 1 {
			continue // EthernetFields writes one tag at most
		}
		t.Run(tc.name, func(t *testing.T) {
			hl := tc.want.HeaderLen()
			b := poisoned(hl + 4)
			if n := tc.want.Encode(b); n != hl {
				t.Fatalf("Encode = %d, want %d", n, hl)
			}
			if d := diffBytes(b[:hl], tc.frame[:hl]); d != "" {
				t.Error(d)
			}
			for i, x := range b[hl:] {
				if x != poison {
					t.Fatalf("Encode wrote past HeaderLen at %d", hl+i)
				}
			}
		})
	}
}

func TestEthernetRoundTrip(t *testing.T) {
	for _, tc := range ethernetGolden {
		var f, g EthernetFields
		f.Decode(Ethernet(tc.frame))
		b := poisoned(f.HeaderLen())
		f.Encode(b)
		e, err := ParseEthernet(b)
		if err != nil {
			t.Fatalf("%s: ParseEthernet(Encode) = %v", tc.name, err)
		}
		g.Decode(e)
		if f != g {
			t.Errorf("%s: round trip %+v -> %+v", tc.name, f, g)
		}
	}
}

func TestEthernetTruncated(t *testing.T) {
	for _, tc := range ethernetGolden {
		hl := EthernetHeaderLen + VLANTagLen*tc.tags
		for n := 0; n < hl; n++ {
			if _, err := ParseEthernet(tc.frame[:n]); !errors.Is(err, ErrTruncated) {
				t.Errorf("%s: ParseEthernet(%d bytes) = %v, want ErrTruncated", tc.name, n, err)
			}
		}
		// A header alone, with no payload, is a valid (if useless) frame.
		e, err := ParseEthernet(tc.frame[:hl])
		if err != nil || len(e.Payload()) != 0 {
			t.Errorf("%s: ParseEthernet(header only) = %v, payload %d", tc.name, err, len(e.Payload()))
		}
	}
	// A run of tags with no type after it.
	tags := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0, 5, 0x88, 0xa8, 0, 6}
	if _, err := ParseEthernet(tags); !errors.Is(err, ErrTruncated) {
		t.Errorf("ParseEthernet(unterminated tags) = %v, want ErrTruncated", err)
	}
}

func TestMAC(t *testing.T) {
	for _, tc := range []struct {
		m                      MAC
		s                      string
		broad, multi, zeroAddr bool
	}{
		{MAC{0x02, 0, 0, 0, 0, 0x01}, "02:00:00:00:00:01", false, false, false},
		{BroadcastMAC, "ff:ff:ff:ff:ff:ff", true, true, false},
		{MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, "01:00:5e:00:00:fb", false, true, false}, // IPv4 multicast (RFC 1112 §6.4)
		{MAC{0x33, 0x33, 0, 0, 0, 1}, "33:33:00:00:00:01", false, true, false},             // IPv6 multicast (RFC 2464 §7)
		{MAC{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54}, "fe:dc:ba:98:76:54", false, false, false},
		{MAC{}, "00:00:00:00:00:00", false, false, true},
	} {
		if got := tc.m.String(); got != tc.s {
			t.Errorf("String = %q, want %q", got, tc.s)
		}
		if got := tc.m.IsBroadcast(); got != tc.broad {
			t.Errorf("%v.IsBroadcast = %v", tc.m, got)
		}
		if got := tc.m.IsMulticast(); got != tc.multi {
			t.Errorf("%v.IsMulticast = %v", tc.m, got)
		}
		if got := tc.m.IsZero(); got != tc.zeroAddr {
			t.Errorf("%v.IsZero = %v", tc.m, got)
		}
		hw, err := net.ParseMAC(tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := MACFrom(hw); !ok || m != tc.m {
			t.Errorf("MACFrom(%v) = %v, %v", hw, m, ok)
		}
		if hw.String() != tc.m.String() {
			t.Errorf("String = %q, net.HardwareAddr says %q", tc.m, hw)
		}
	}
	for _, n := range []int{0, 5, 7, 8, 20} {
		if _, ok := MACFrom(make(net.HardwareAddr, n)); ok {
			t.Errorf("MACFrom(%d bytes) ok", n)
		}
	}
}

func TestEtherTypeString(t *testing.T) {
	for et, s := range map[EtherType]string{
		EtherTypeIPv4: "IPv4", EtherTypeARP: "ARP", EtherTypeVLAN: "802.1Q",
		EtherTypeIPv6: "IPv6", EtherTypeQinQ: "802.1ad", 0x88cc: "0x88cc", 0x002e: "0x002e",
	} {
		if got := et.String(); got != s {
			t.Errorf("EtherType(%#04x).String() = %q, want %q", uint16(et), got, s)
		}
	}
}

func TestVLANTCI(t *testing.T) {
	const tci = 5<<13 | 1<<12 | 0xabc // priority 5, DEI, VLAN 0xabc (IEEE 802.1Q §9.6)
	if VLANID(tci) != 0xabc || VLANPriority(tci) != 5 {
		t.Errorf("VLANID, VLANPriority = %#x, %d", VLANID(tci), VLANPriority(tci))
	}
	f := EthernetFields{Dst: macR3, Src: macA2, HasVLAN: true, VLAN: tci, EtherType: EtherTypeARP}
	b := poisoned(f.HeaderLen())
	f.Encode(b)
	if got, ok := Ethernet(b).VLAN(); !ok || got != tci {
		t.Errorf("VLAN() after Encode = %#x, %v", got, ok)
	}
}
