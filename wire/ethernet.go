package wire

import (
	"encoding/binary"
	"net"
)

// Ethernet II header sizes (IEEE 802.3 clause 3.2.6, "Ethernet II" framing)
// and the size of one IEEE 802.1Q tag.
const (
	EthernetHeaderLen = 14 // destination, source, EtherType
	VLANTagLen        = 4  // TPID (0x8100 or 0x88a8) and TCI
)

// EtherType is the type field of an Ethernet II header (IEEE 802.3 clause
// 3.2.6; IANA "IEEE 802 Numbers"). Values below 0x0600 are IEEE 802.3
// length fields, not types; this package reports them as they are and the
// stack drops them as unknown.
type EtherType uint16

// EtherTypes this package knows.
const (
	EtherTypeIPv4 EtherType = 0x0800 // RFC 894
	EtherTypeARP  EtherType = 0x0806 // RFC 826
	EtherTypeVLAN EtherType = 0x8100 // IEEE 802.1Q customer tag (C-tag)
	EtherTypeIPv6 EtherType = 0x86DD // RFC 2464
	// EtherTypeQinQ is the IEEE 802.1ad service tag (S-tag), the outer tag
	// of a QinQ frame.
	EtherTypeQinQ EtherType = 0x88A8
)

// String returns the name of a known type ("IPv4", "ARP", "802.1Q",
// "IPv6", "802.1ad") or the value in hex ("0x88cc").
func (t EtherType) String() string {
	switch t {
	case EtherTypeIPv4:
		return "IPv4"
	case EtherTypeARP:
		return "ARP"
	case EtherTypeVLAN:
		return "802.1Q"
	case EtherTypeIPv6:
		return "IPv6"
	case EtherTypeQinQ:
		return "802.1ad"
	}
	return string(appendHex16(make([]byte, 0, 6), uint16(t)))
}

// isVLANTag reports whether t is a tag protocol identifier: 0x8100
// (802.1Q C-tag) or 0x88a8 (802.1ad S-tag, QinQ outer).
func isVLANTag(t uint16) bool {
	return t == uint16(EtherTypeVLAN) || t == uint16(EtherTypeQinQ)
}

// MAC is an IEEE 802 48-bit MAC address. The zero value is 00:00:00:00:00:00.
// Unlike net.HardwareAddr it is comparable and can be a map key.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff, the destination of ARP requests
// (RFC 826).
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// MACFrom returns hw as a MAC, and false if hw is not 6 bytes long.
func MACFrom(hw net.HardwareAddr) (MAC, bool) {
	var m MAC
	if len(hw) != len(m) {
		return m, false
	}
	copy(m[:], hw)
	return m, true
}

// String formats m as six lower-case hex pairs separated by colons:
// "02:00:00:00:00:01".
func (m MAC) String() string {
	var b [17]byte
	return string(m.appendTo(b[:0]))
}

func (m MAC) appendTo(b []byte) []byte {
	const hex = "0123456789abcdef"
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[x>>4], hex[x&0xf])
	}
	return b
}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether the individual/group bit (the least
// significant bit of the first octet, IEEE 802 clause 8.2) is set. The
// broadcast address is a multicast address too.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// Ethernet is a view of an Ethernet II frame without the frame check
// sequence: destination, source, zero or more VLAN tags, EtherType, payload.
type Ethernet []byte

// ParseEthernet checks that b holds an Ethernet II header, with any number of
// IEEE 802.1Q (0x8100) and 802.1ad (0x88a8) tags stacked after the source
// address, and returns it as a view. It returns ErrTruncated if b ends
// before the header does. Minimum-size padding and the FCS, if the link
// left them, are part of the payload; the IP layer trims by its own length.
func ParseEthernet(b []byte) (Ethernet, error) {
	if _, ok := ethernetHeaderLen(b); !ok {
		return nil, ErrTruncated
	}
	return Ethernet(b), nil
}

// ethernetHeaderLen walks the tags and returns the header length, and false
// if b is too short for it.
func ethernetHeaderLen(b []byte) (int, bool) {
	n := EthernetHeaderLen
	for {
		if len(b) < n {
			return 0, false
		}
		if !isVLANTag(binary.BigEndian.Uint16(b[n-2:])) {
			return n, true
		}
		n += VLANTagLen
	}
}

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// HeaderLen returns the header length: 14 plus 4 for each VLAN tag.
func (e Ethernet) HeaderLen() int {
	n := EthernetHeaderLen
	for isVLANTag(binary.BigEndian.Uint16(e[n-2:])) {
		n += VLANTagLen
	}
	return n
}

// EtherType returns the type of the payload: the type field after the last
// VLAN tag.
func (e Ethernet) EtherType() EtherType {
	return EtherType(binary.BigEndian.Uint16(e[e.HeaderLen()-2:]))
}

// VLAN returns the tag control information (priority, drop eligible
// indicator and VLAN ID; IEEE 802.1Q clause 9.6) of the innermost tag, and
// false if the frame is untagged.
func (e Ethernet) VLAN() (tci uint16, ok bool) {
	n := e.HeaderLen()
	if n == EthernetHeaderLen {
		return 0, false
	}
	return binary.BigEndian.Uint16(e[n-4:]), true
}

// Payload returns the bytes after the header.
func (e Ethernet) Payload() []byte { return e[e.HeaderLen():] }

// VLANID returns the 12-bit VLAN identifier of a tag control information
// field (IEEE 802.1Q clause 9.6).
func VLANID(tci uint16) uint16 { return tci & 0x0fff }

// VLANPriority returns the 3-bit priority code point of a tag control
// information field (IEEE 802.1Q clause 9.6).
func VLANPriority(tci uint16) uint8 { return uint8(tci >> 13) }

// EthernetFields is a decoded Ethernet II header with at most one VLAN tag.
// The zero value is an untagged header with zero addresses and type 0.
type EthernetFields struct {
	Dst, Src MAC
	// HasVLAN reports an IEEE 802.1Q tag; VLAN is its tag control
	// information (priority, DEI and VLAN ID). Decoding a frame with
	// stacked tags (QinQ) keeps the innermost one.
	HasVLAN bool
	VLAN    uint16
	// EtherType is the type of the payload (after the tag, if any).
	EtherType EtherType
}

// Decode fills f from a view returned by ParseEthernet.
func (f *EthernetFields) Decode(e Ethernet) {
	f.Dst = e.Dst()
	f.Src = e.Src()
	f.VLAN, f.HasVLAN = e.VLAN()
	f.EtherType = e.EtherType()
}

// HeaderLen returns the length Encode writes: 14, or 18 with a VLAN tag.
func (f *EthernetFields) HeaderLen() int {
	if f.HasVLAN {
		return EthernetHeaderLen + VLANTagLen
	}
	return EthernetHeaderLen
}

// Encode writes the header into b, which must hold HeaderLen() bytes, and
// returns HeaderLen(). A VLAN tag is written as an 802.1Q (0x8100) tag.
func (f *EthernetFields) Encode(b []byte) int {
	n := f.HeaderLen()
	_ = b[n-1]
	copy(b[0:6], f.Dst[:])
	copy(b[6:12], f.Src[:])
	if f.HasVLAN {
		binary.BigEndian.PutUint16(b[12:], uint16(EtherTypeVLAN))
		binary.BigEndian.PutUint16(b[14:], f.VLAN)
	}
	binary.BigEndian.PutUint16(b[n-2:], uint16(f.EtherType))
	return n
}

// appendHex16 appends v as "0x" and four lower-case hex digits.
func appendHex16(b []byte, v uint16) []byte {
	const hex = "0123456789abcdef"
	return append(b, '0', 'x', hex[v>>12], hex[v>>8&0xf], hex[v>>4&0xf], hex[v&0xf])
}
