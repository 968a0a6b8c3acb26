package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 sizes (RFC 8200 §3 and §5).
const (
	// IPv6HeaderLen is the length of the fixed IPv6 header.
	IPv6HeaderLen = 40
	// IPv6MinMTU is the smallest link MTU IPv6 allows (RFC 8200 §5): every
	// link carries 1280-byte packets, and ICMPv6 errors are cut to fit.
	IPv6MinMTU = 1280
)

// ECN codepoints: the two low-order bits of IPv4's TOS octet and of IPv6's
// traffic class (RFC 3168 §5).
const (
	ECNNotECT = 0 // not ECN-capable transport
	ECNECT1   = 1 // ECN-capable transport, ECT(1)
	ECNECT0   = 2 // ECN-capable transport, ECT(0)
	ECNCE     = 3 // congestion experienced
)

// Well-known IPv6 multicast addresses (RFC 4291 §2.7.1, RFC 3810 §11).
var (
	IPv6AllNodes        = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01}) // ff02::1
	IPv6AllRouters      = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x02}) // ff02::2
	IPv6AllMLDv2Routers = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x16}) // ff02::16
)

// IPv6 is a view of an IPv6 packet (RFC 8200 §3): the fixed header and the
// payload, extension headers included. A view returned by ParseIPv6 may be
// longer than the packet (Ethernet pads short frames): Payload and Packet
// stop at the payload length.
type IPv6 []byte

// ParseIPv6 checks the lengths of the IPv6 packet at the start of b and
// returns it as a view. It returns ErrTruncated if b is shorter than the
// fixed header or than the header plus the payload length, and ErrBadHeader
// if the version is not 6. It does not look at the extension headers (see
// IPv6Chain). Jumbograms (RFC 2675), whose payload length is 0 and whose
// real length is in a hop-by-hop option, are not supported: their payload
// reads as empty.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 6 {
		return nil, ErrBadHeader
	}
	if IPv6HeaderLen+int(binary.BigEndian.Uint16(b[4:])) > len(b) {
		return nil, ErrTruncated
	}
	return IPv6(b), nil
}

// TrafficClass returns the traffic class octet: DSCP and ECN (RFC 8200 §7,
// RFC 2474, RFC 3168).
func (p IPv6) TrafficClass() uint8 { return p[0]<<4 | p[1]>>4 }

// ECN returns the ECN field, the two low-order bits of the traffic class
// (RFC 3168 §5): ECNNotECT, ECNECT1, ECNECT0 or ECNCE.
func (p IPv6) ECN() uint8 { return p.TrafficClass() & 3 }

// FlowLabel returns the 20-bit flow label (RFC 8200 §6, RFC 6437).
func (p IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(p[0:]) & 0xfffff }

// PayloadLen returns the payload length field: the bytes after the fixed
// header, extension headers included.
func (p IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(p[4:]) }

// NextHeader returns the type of the header after the fixed one: an
// extension header or the upper-layer protocol (ProtoTCP, ...).
func (p IPv6) NextHeader() uint8 { return p[6] }

// HopLimit returns the hop limit.
func (p IPv6) HopLimit() uint8 { return p[7] }

// Src returns the source address.
func (p IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(p[8:24])) }

// Dst returns the destination address.
func (p IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(p[24:40])) }

// Payload returns the bytes after the fixed header up to the payload length.
func (p IPv6) Payload() []byte { return p[IPv6HeaderLen : IPv6HeaderLen+int(p.PayloadLen())] }

// Packet returns the header and payload, without any link-layer padding
// that followed.
func (p IPv6) Packet() []byte { return p[:IPv6HeaderLen+int(p.PayloadLen())] }

// SetHopLimit sets the hop limit. IPv6 has no header checksum to update.
func (p IPv6) SetHopLimit(h uint8) { p[7] = h }

// SetTrafficClass sets the traffic class octet, leaving the version and the
// flow label as they are (a router marking congestion experienced sets the
// ECN bits to ECNCE, RFC 3168 §5).
func (p IPv6) SetTrafficClass(tc uint8) {
	p[0] = p[0]&0xf0 | tc>>4
	p[1] = p[1]&0x0f | tc<<4
}

// IPv6Fields is a decoded fixed IPv6 header (RFC 8200 §3).
type IPv6Fields struct {
	TrafficClass uint8
	// FlowLabel holds 20 bits; Encode ignores the rest.
	FlowLabel  uint32
	PayloadLen uint16
	NextHeader uint8
	HopLimit   uint8
	Src, Dst   netip.Addr
}

// Decode fills f from a view returned by ParseIPv6 (or from at least
// IPv6HeaderLen bytes of one, as an ICMPv6 error quotes it).
func (f *IPv6Fields) Decode(p IPv6) {
	f.TrafficClass = p.TrafficClass()
	f.FlowLabel = p.FlowLabel()
	f.PayloadLen = p.PayloadLen()
	f.NextHeader = p.NextHeader()
	f.HopLimit = p.HopLimit()
	f.Src = p.Src()
	f.Dst = p.Dst()
}

// Encode writes the fixed header into b, which must hold IPv6HeaderLen
// bytes, and returns IPv6HeaderLen. An IPv4 address is written in its
// IPv4-mapped form and the zero Addr as ::, so that a half-filled struct
// cannot panic.
func (f *IPv6Fields) Encode(b []byte) int {
	_ = b[IPv6HeaderLen-1]
	binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:], f.PayloadLen)
	b[6] = f.NextHeader
	b[7] = f.HopLimit
	putAddr16(b[8:24], f.Src)
	putAddr16(b[24:40], f.Dst)
	return IPv6HeaderLen
}

// putAddr16 writes a as 16 bytes: an IPv6 address as itself, an IPv4
// address as ::ffff:a.b.c.d, the zero Addr as ::.
func putAddr16(b []byte, a netip.Addr) {
	a16 := a.As16()
	copy(b[:16], a16[:])
}

// IPv6Addrs is a packed list of IPv6 addresses, 16 bytes each, as MLD
// (source lists) and NDP (RDNSS servers) carry them. Decoders return it
// aliasing the message; a trailing partial address is not counted.
type IPv6Addrs []byte

// Len returns the number of whole addresses in the list.
func (l IPv6Addrs) Len() int { return len(l) / 16 }

// At returns address i, for 0 <= i < Len().
func (l IPv6Addrs) At(i int) netip.Addr { return netip.AddrFrom16([16]byte(l[16*i:])) }

// AppendIPv6Addrs appends the addresses to b, 16 bytes each (see putAddr16
// for IPv4 and zero ones), and returns the extended slice.
func AppendIPv6Addrs(b []byte, addrs ...netip.Addr) IPv6Addrs {
	for _, a := range addrs {
		a16 := a.As16()
		b = append(b, a16[:]...)
	}
	return b
}

// SolicitedNodeMulticast returns the solicited-node multicast address of a
// (RFC 4291 §2.7.1): ff02::1:ff00:0/104 with the low 24 bits of a, the group
// a node joins for each of its unicast addresses and to which neighbour
// solicitations for a are sent (RFC 4861 §7.2.2). An IPv4 address is taken
// in its IPv4-mapped form.
func SolicitedNodeMulticast(a netip.Addr) netip.Addr {
	a16 := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: a16[13], 14: a16[14], 15: a16[15]})
}

// MulticastMAC returns the Ethernet address a multicast IP address maps to,
// and false if a is not a multicast address: for IPv6, 33:33 and the low 32
// bits of the address (RFC 2464 §7); for IPv4, 01:00:5e and the low 23 bits
// (RFC 1112 §6.4).
func MulticastMAC(a netip.Addr) (MAC, bool) {
	if !a.IsMulticast() {
		return MAC{}, false
	}
	a16 := a.As16()
	if a.Is4() || a.Is4In6() {
		return MAC{0x01, 0x00, 0x5e, a16[13] & 0x7f, a16[14], a16[15]}, true
	}
	return MAC{0x33, 0x33, a16[12], a16[13], a16[14], a16[15]}, true
}

// LinkLocalFromMAC returns the link-local address fe80::/64 with the
// modified EUI-64 interface identifier of an Ethernet address (RFC 4862
// §5.3, RFC 2464 §4–5, RFC 4291 Appendix A): the MAC split by ff:fe, with
// the universal/local bit inverted. Linux's default (addr_gen_mode 0) gives
// the same address.
func LinkLocalFromMAC(m MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 8: m[0] ^ 0x02, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]})
}
