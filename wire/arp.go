package wire

import (
	"encoding/binary"
	"net/netip"
)

// ARPLen is the length of an ARP packet for Ethernet hardware and IPv4
// protocol addresses (RFC 826, "Packet format": 8 fixed bytes, then two
// 6-byte and two 4-byte addresses).
const ARPLen = 28

// ARP operation codes (RFC 826, ar$op).
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP hardware and protocol types this package decodes (RFC 826, ar$hrd and
// ar$pro; IANA "Address Resolution Protocol (ARP) Parameters").
const (
	arpHardwareEthernet = 1
	arpProtoIPv4        = uint16(EtherTypeIPv4)
)

// ARP is a view of an ARP packet for Ethernet and IPv4 (RFC 826).
type ARP []byte

// ParseARP checks that b holds an ARP packet that maps IPv4 addresses to
// Ethernet addresses and returns a view of its first ARPLen bytes (an ARP in
// a minimum-size Ethernet frame is followed by padding). It returns
// ErrTruncated if b is shorter than ARPLen, ErrUnsupported for any other
// hardware type, protocol type or address length (RFC 826 allows them; ustack
// only resolves IPv4 over Ethernet), and ErrBadHeader for an operation other
// than request or reply.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return nil, ErrTruncated
	}
	if binary.BigEndian.Uint16(b[0:]) != arpHardwareEthernet ||
		binary.BigEndian.Uint16(b[2:]) != arpProtoIPv4 ||
		b[4] != 6 || b[5] != 4 {
		return nil, ErrUnsupported
	}
	if op := binary.BigEndian.Uint16(b[6:]); op != ARPRequest && op != ARPReply {
		return nil, ErrBadHeader
	}
	return ARP(b[:ARPLen]), nil
}

// Op returns the operation: ARPRequest or ARPReply.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:]) }

// SenderMAC returns the sender hardware address (ar$sha).
func (a ARP) SenderMAC() MAC { return MAC(a[8:14]) }

// SenderIP returns the sender protocol address (ar$spa).
func (a ARP) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(a[14:18])) }

// TargetMAC returns the target hardware address (ar$tha); requests leave it
// zero.
func (a ARP) TargetMAC() MAC { return MAC(a[18:24]) }

// TargetIP returns the target protocol address (ar$tpa).
func (a ARP) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(a[24:28])) }

// ARPFields is a decoded ARP packet for Ethernet and IPv4. The zero value
// has no valid addresses; Encode writes invalid ones as 0.0.0.0.
type ARPFields struct {
	Op        uint16
	SenderMAC MAC
	SenderIP  netip.Addr
	TargetMAC MAC
	TargetIP  netip.Addr
}

// Decode fills f from a view returned by ParseARP.
func (f *ARPFields) Decode(a ARP) {
	f.Op = a.Op()
	f.SenderMAC = a.SenderMAC()
	f.SenderIP = a.SenderIP()
	f.TargetMAC = a.TargetMAC()
	f.TargetIP = a.TargetIP()
}

// Encode writes the packet (hardware type Ethernet, protocol type IPv4) into
// b, which must hold ARPLen bytes, and returns ARPLen.
func (f *ARPFields) Encode(b []byte) int {
	_ = b[ARPLen-1]
	binary.BigEndian.PutUint16(b[0:], arpHardwareEthernet)
	binary.BigEndian.PutUint16(b[2:], arpProtoIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], f.Op)
	copy(b[8:14], f.SenderMAC[:])
	putAddr4(b[14:18], f.SenderIP)
	copy(b[18:24], f.TargetMAC[:])
	putAddr4(b[24:28], f.TargetIP)
	return ARPLen
}

// putAddr4 writes a as four bytes: an IPv4 address (or IPv4-mapped IPv6
// address) as itself, anything else (the zero Addr, IPv6) as 0.0.0.0, so
// that encoding a half-filled field struct cannot panic.
func putAddr4(b []byte, a netip.Addr) {
	if a.Is4() || a.Is4In6() {
		a4 := a.As4()
		copy(b[:4], a4[:])
		return
	}
	b[0], b[1], b[2], b[3] = 0, 0, 0, 0
}
