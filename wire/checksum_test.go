package wire

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// naiveSum is the reference for PartialSum: RFC 1071 §4.1's C loop, one
// 16-bit word at a time into a 32-bit accumulator, folding the carries at the
// end; an odd last byte is the high byte of a zero-padded word.
func naiveSum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 §3, "Numerical Examples": the bytes 00 01 f2 03 f4 f5 f6 f7
	// sum to 2ddf0, which folds to ddf2; the checksum is its complement.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := PartialSum(b, 0); got != 0xddf2 {
		t.Errorf("PartialSum = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b, 0); got != 0x220d {
		t.Errorf("Checksum = %#04x, want 0x220d", got)
	}
	// §2(B): the sum is independent of byte order and of how the data is
	// split into pieces (here as 4 + 4 and 2 + 6).
	if got := AddSum(PartialSum(b[:4], 0), PartialSum(b[4:], 0)); got != 0xddf2 {
		t.Errorf("sum of halves = %#04x", got)
	}
	if got := PartialSum(b[2:], PartialSum(b[:2], 0)); got != 0xddf2 {
		t.Errorf("chained sum = %#04x", got)
	}
	// Appending the checksum makes the whole verify to 0.
	full := binary.BigEndian.AppendUint16(append([]byte{}, b...), 0x220d)
	if got := Checksum(full, 0); got != 0 {
		t.Errorf("Checksum with checksum appended = %#04x, want 0", got)
	}
}

func TestChecksumOddLengths(t *testing.T) {
	// RFC 1071 §4.1: "Add left-over byte, if any" as the high-order byte.
	for _, tc := range []struct {
		b    []byte
		want uint16
	}{
		{nil, 0},
		{[]byte{0xab}, 0xab00},
		{[]byte{0x12, 0x34, 0x56}, 0x1234 + 0x5600},
		{[]byte{0xff, 0xff, 0xff}, 0xff00 + 0}, // ffff + ff00 = 1feff -> feff + 1
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, 0x0102 + 0x0304 + 0x0506 + 0x0708 + 0x0900},
	} {
		want := naiveSum(tc.b, 0)
		if got := PartialSum(tc.b, 0); got != want {
			t.Errorf("PartialSum(%x) = %#04x, want %#04x", tc.b, got, want)
		}
	}
	if got := PartialSum([]byte{0xff, 0xff, 0xff}, 0); got != 0xff00 {
		t.Errorf("PartialSum(ff ff ff) = %#04x, want 0xff00", got)
	}
}

func TestChecksumAgainstNaive(t *testing.T) {
	// Every length 0..200 (crossing the 32-, 8-, 4- and 2-byte steps of
	// PartialSum), every starting offset 0..7, random data and initial
	// values, and all-ones data where the carries pile up.
	r := rand.New(rand.NewPCG(1071, 0))
	buf := make([]byte, 208)
	for n := 0; n <= 200; n++ {
		for off := 0; off < 8; off++ {
			for rep := 0; rep < 8; rep++ {
				for i := range buf {
					buf[i] = byte(r.Uint32())
				}
				if rep == 0 {
					for i := range buf {
						buf[i] = 0xff
					}
				}
				b := buf[off : off+n]
				init := uint16(r.Uint32())
				if rep == 1 {
					init = 0xffff
				}
				if got, want := PartialSum(b, init), naiveSum(b, init); got != want {
					t.Fatalf("len %d off %d init %#x: PartialSum = %#04x, naive %#04x", n, off, init, got, want)
				}
				if got, want := Checksum(b, init), ^naiveSum(b, init); got != want {
					t.Fatalf("len %d: Checksum = %#04x, want %#04x", n, got, want)
				}
			}
		}
	}
}

func TestChecksumLarge(t *testing.T) {
	// 64 KiB of 0xff (the most carries) and of random data.
	r := rand.New(rand.NewPCG(1071, 1))
	b := make([]byte, 65536+1)
	for i := range b {
		b[i] = 0xff
	}
	for _, n := range []int{65535, 65536, 65537} {
		if got, want := PartialSum(b[:n], 0xffff), naiveSum(b[:n], 0xffff); got != want {
			t.Errorf("all ones, %d bytes: %#04x, want %#04x", n, got, want)
		}
	}
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if got, want := PartialSum(b, 0), naiveSum(b, 0); got != want {
		t.Errorf("random 64 KiB: %#04x, want %#04x", got, want)
	}
}

func TestChecksumPieces(t *testing.T) {
	// RFC 1071 §2(C): sums of even-length pieces add up with AddSum.
	r := rand.New(rand.NewPCG(1071, 2))
	b := make([]byte, 300)
	for i := 0; i < 2000; i++ {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		n := r.IntN(len(b) + 1)
		k := 2 * r.IntN(n/2+1)
		whole := PartialSum(b[:n], 0)
		if got := AddSum(PartialSum(b[:k], 0), PartialSum(b[k:n], 0)); got != whole {
			t.Fatalf("split %d/%d: %#04x, want %#04x", k, n, got, whole)
		}
		if got := PartialSum(b[k:n], PartialSum(b[:k], 0)); got != whole {
			t.Fatalf("chained %d/%d: %#04x, want %#04x", k, n, got, whole)
		}
	}
	if AddSum(0xffff, 0xffff) != 0xffff || AddSum(0, 0) != 0 || AddSum(0x8000, 0x8000) != 1 {
		t.Error("AddSum end-around carry")
	}
}

func TestChecksumUpdate(t *testing.T) {
	// RFC 1624 §3: updating the checksum for a changed field must give
	// what recomputing it gives, for 16- and 32-bit fields anywhere.
	r := rand.New(rand.NewPCG(1624, 0))
	b := make([]byte, 40)
	for i := 0; i < 100000; i++ {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		// Exercise the boundary values RFC 1624 §4 worries about.
		switch i % 4 {
		case 1:
			clear(b[4:])
		case 2:
			for j := range b {
				b[j] = 0xff
			}
		}
		binary.BigEndian.PutUint16(b[0:], 0)
		csum := Checksum(b, 0)
		binary.BigEndian.PutUint16(b[0:], csum)

		off := 2 + 2*r.IntN(len(b)/2-1)
		if r.IntN(2) == 0 && off+4 <= len(b) {
			old := binary.BigEndian.Uint32(b[off:])
			nw := r.Uint32()
			binary.BigEndian.PutUint32(b[off:], nw)
			csum = ChecksumUpdate32(csum, old, nw)
		} else {
			old := binary.BigEndian.Uint16(b[off:])
			nw := uint16(r.Uint32())
			binary.BigEndian.PutUint16(b[off:], nw)
			csum = ChecksumUpdate16(csum, old, nw)
		}
		binary.BigEndian.PutUint16(b[0:], 0)
		if allZero(b) {
			// RFC 1624 §5: only all-zero data tells +0 from -0 here
			// (update gives 0x0000, recomputing 0xffff); no IP header
			// or pseudo-header is all zero.
			continue
		}
		if want := Checksum(b, 0); csum != want {
			t.Fatalf("case %d: updated %#04x, recomputed %#04x (data %x)", i, csum, want, b)
		}
	}
	// RFC 1624 §3's example: HC 0xdd2f, a field 0x5555 changes to 0x3285.
	if got := ChecksumUpdate16(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Errorf("RFC 1624 example: %#04x, want 0x0000", got)
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func TestPseudoHeaderSum(t *testing.T) {
	// RFC 9293 §3.1 / RFC 768: source, destination, zero, protocol,
	// length, summed as a 12-byte buffer.
	r := rand.New(rand.NewPCG(768, 0))
	for i := 0; i < 10000; i++ {
		src, dst := randAddr4(r), randAddr4(r)
		proto := uint8(r.Uint32())
		n := r.IntN(65536)
		s4, d4 := src.As4(), dst.As4()
		ph := append(append(s4[:], d4[:]...), 0, proto, byte(n>>8), byte(n))
		if got, want := PseudoHeaderSum(src, dst, proto, n), naiveSum(ph, 0); got != want {
			t.Fatalf("%v %v %d %d: %#04x, want %#04x", src, dst, proto, n, got, want)
		}
	}
	// The golden TCP SYN, checked by hand: pseudo-header, then the segment.
	seg := l4(t, goldenTCPSYN)
	ph := PseudoHeaderSum(ipA, ipR, ProtoTCP, len(seg))
	if want := naiveSum(unhex("0a4d0101 0a4d0102 0006 0028"), 0); ph != want {
		t.Errorf("SYN pseudo-header sum %#04x, want %#04x", ph, want)
	}
	if Checksum(seg, ph) != 0 {
		t.Error("SYN does not verify")
	}
}

func TestPseudoHeaderSumIPv6(t *testing.T) {
	// RFC 8200 §8.1: source, destination, 32-bit upper-layer length,
	// three zero bytes, next header; summed as a 40-byte buffer.
	r := rand.New(rand.NewPCG(8200, 0))
	for i := 0; i < 10000; i++ {
		var s, d [16]byte
		for j := range s {
			s[j], d[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		if i%4 == 0 {
			for j := range s {
				s[j], d[j] = 0xff, 0xff // the most carries
			}
		}
		proto := uint8(r.Uint32())
		n := r.IntN(1 << 20) // jumbogram lengths too: 32 bits
		ph := append(append(s[:], d[:]...), byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, proto)
		if got, want := PseudoHeaderSum(netip.AddrFrom16(s), netip.AddrFrom16(d), proto, n), naiveSum(ph, 0); got != want {
			t.Fatalf("%x %x %d %d: %#04x, want %#04x", s, d, proto, n, got, want)
		}
	}
	// An IPv4-mapped address is an IPv6 address: the 40-byte form. (Its
	// sum equals the 12-byte form's: the two 0xffff words add nothing in
	// ones' complement, which is what makes IPv4/IPv6 translation
	// checksum-neutral.) The zero Addr reads as ::, and a mix of families
	// takes the IPv6 form.
	m4, m6 := netip.AddrFrom16(ipA.As16()), netip.AddrFrom16(ipB.As16())
	s4, d4 := m4.As16(), m6.As16()
	ph := append(append(s4[:], d4[:]...), 0, 0, 0, 8, 0, 0, 0, ProtoUDP)
	if got, want := PseudoHeaderSum(m4, m6, ProtoUDP, 8), naiveSum(ph, 0); got != want {
		t.Errorf("IPv4-mapped: %#04x, want %#04x", got, want)
	}
	if got, want := PseudoHeaderSum(ipA, m6, ProtoUDP, 8), PseudoHeaderSum(m4, m6, ProtoUDP, 8); got != want {
		t.Errorf("mixed families: %#04x, want %#04x", got, want)
	}
	if got, want := PseudoHeaderSum(netip.Addr{}, netip.Addr{}, ProtoTCP, 20), naiveSum([]byte{0, 0, 0, 20, 0, 0, 0, ProtoTCP}, 0); got != want {
		t.Errorf("zero addresses: %#04x, want %#04x", got, want)
	}
}
