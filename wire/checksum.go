package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// PartialSum returns the ones'-complement sum (RFC 1071) of b added to
// initial, folded to 16 bits and not complemented. Sums of pieces combine with
// AddSum, so a checksum can be built over a pseudo-header, a header and a
// payload that live in different buffers. An odd final byte is padded with a
// zero byte, so only the last piece may have an odd length.
func PartialSum(b []byte, initial uint16) uint16 {
	ac := uint64(initial)
	var carry uint64
	for len(b) >= 32 {
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[0:8]), carry)
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[8:16]), carry)
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[16:24]), carry)
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		ac, carry = bits.Add64(ac, uint64(binary.BigEndian.Uint32(b[0:4])), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		ac, carry = bits.Add64(ac, uint64(binary.BigEndian.Uint16(b[0:2])), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		ac, carry = bits.Add64(ac, uint64(b[0])<<8, carry)
	}
	ac, carry = bits.Add64(ac, carry, 0)
	ac += carry
	return fold64(ac)
}

func fold64(ac uint64) uint16 {
	s := (ac >> 32) + (ac & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// AddSum returns the ones'-complement sum of two partial sums.
func AddSum(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s>>16 + s&0xffff)
}

// Checksum returns the Internet checksum (RFC 1071) of b with the partial sum
// initial added in: the complement of PartialSum. A buffer that already holds
// a correct checksum gives 0.
func Checksum(b []byte, initial uint16) uint16 { return ^PartialSum(b, initial) }

// PseudoHeaderSum returns the partial sum of the pseudo-header that TCP,
// UDP and ICMPv6 checksums cover, for either family. When src and dst are
// both IPv4 addresses it is the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768):
// source, destination, zero, protocol, and the transport length. Otherwise
// it is the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, the
// upper-layer packet length as 32 bits, three zero bytes and the next
// header, with an IPv4 address taken as its IPv4-mapped IPv6 form (RFC 4291
// §2.5.5.2) and the zero Addr as ::. An IPv4-mapped address is an IPv6
// address here: pass the addresses as the IP header carries them. With a
// routing header the IPv6 destination is the final one (RFC 8200 §8.1).
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint16 {
	if src.Is4() && dst.Is4() {
		s4, d4 := src.As4(), dst.As4()
		ac := uint64(binary.BigEndian.Uint32(s4[:])) +
			uint64(binary.BigEndian.Uint32(d4[:])) +
			uint64(proto) + uint64(uint32(length))
		return fold64(ac)
	}
	s, d := src.As16(), dst.As16()
	// Ten 32-bit words at most: the sum cannot overflow 64 bits.
	ac := uint64(proto) + uint64(uint32(length))
	for i := 0; i < 16; i += 4 {
		ac += uint64(binary.BigEndian.Uint32(s[i:])) + uint64(binary.BigEndian.Uint32(d[i:]))
	}
	return fold64(ac)
}

// ChecksumUpdate16 returns checksum csum updated for one 16-bit field that
// changed from old to new, without touching the rest of the data
// (RFC 1624 §3, eqn. 3: HC' = ~(~HC + ~m + m')).
func ChecksumUpdate16(csum, old, new uint16) uint16 {
	return ^AddSum(AddSum(^csum, ^old), new)
}

// ChecksumUpdate32 is ChecksumUpdate16 for a 32-bit field, such as an IPv4
// address or a TCP sequence number.
func ChecksumUpdate32(csum uint16, old, new uint32) uint16 {
	csum = ChecksumUpdate16(csum, uint16(old>>16), uint16(new>>16))
	return ChecksumUpdate16(csum, uint16(old), uint16(new))
}
