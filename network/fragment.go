package network

import (
	"encoding/binary"
	"fmt"

	"github.com/ustack/ustack/wire"
)

// MinMTU is the smallest MTU an IPv4 link may have: every module must pass
// a 68-byte datagram without fragmenting it further (RFC 791 §3.2,
// "Fragmentation": a 60-byte header and an 8-byte fragment).
const MinMTU = 68

// Fragmenter splits an IPv4 packet into fragments that fit an MTU (RFC 791
// §2.3 and §3.2, "Fragmentation"; RFC 1122 §3.3.2). It copies the header
// into each fragment and refers to the payload in place, so the packet
// given to Reset must not change until Next returns 0. The zero value is
// ready for Reset. A packet that is itself a fragment can be split again:
// offsets are relative to its own, and only its last piece keeps its MF
// flag, as RFC 791 describes for fragments refragmented on the way.
//
// The first fragment carries all the options; the others carry only those
// whose copied flag is set (RFC 791 §3.1, "Options"), packed and padded
// with end-of-list to a multiple of 4 bytes. (Linux instead overwrites the
// uncopied options with NOPs, ip_options_fragment, so every fragment has
// the same header length; packing leaves more room for data.) Fragment
// payloads are as large as the MTU allows, in multiples of 8 bytes except
// the last.
type Fragmenter struct {
	pkt     []byte // the packet being split, header and payload
	hl      int    // its header length
	mtu     int
	off     int  // payload bytes already written
	base    int  // the packet's own fragment offset, in bytes
	lastMF  bool // MF of the packet: the last fragment's MF
	single  bool // the packet fits: Next writes it unchanged
	done    bool
	nfrags  int
	optLen  int // copied options, padded
	options [wire.IPv4MaxOptionLen]byte
}

// Reset prepares to split the IPv4 packet pkt (header+payload) into
// fragments whose total length is at most mtu. Error if DF is set (the
// caller then sends ICMP frag-needed to itself / reports EMSGSIZE) or mtu <
// 68 (RFC 791 minimum).
//
// A packet that already fits mtu is not split: Next returns it unchanged,
// once, whatever its DF flag. Errors: ErrMTUTooSmall, ErrDontFragment (only
// when the packet does not fit), ErrBadPacket (pkt does not parse as IPv4,
// or its options are malformed). After an error Next returns 0.
func (f *Fragmenter) Reset(pkt []byte, mtu int) error {
	*f = Fragmenter{done: true}
	if mtu < MinMTU {
		return ErrMTUTooSmall
	}
	p, err := wire.ParseIPv4(pkt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadPacket, err)
	}
	mtu = min(mtu, maxDatagram)
	f.pkt = p.Packet()
	f.hl = p.HeaderLen()
	f.mtu = mtu
	if len(f.pkt) <= mtu {
		f.single, f.done, f.nfrags = true, false, 1
		return nil
	}
	if p.DF() {
		return ErrDontFragment
	}
	if err := f.copiedOptions(p.Options()); err != nil {
		return err
	}
	f.base = int(p.FragOffset())
	if f.base+len(f.pkt)-f.hl > maxDatagram-wire.IPv4HeaderLen {
		return ErrBadPacket // its fragments' offsets would not fit 13 bits
	}
	f.lastMF = p.MF()
	f.done = false
	f.nfrags = f.count()
	return nil
}

// copiedOptions collects the options with the copied flag (the high bit
// of the option type, RFC 791 §3.1) for the fragments after the first.
func (f *Fragmenter) copiedOptions(opts []byte) error {
	n := 0
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 { // end of option list
			break
		}
		if t == 1 { // no operation
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return fmt.Errorf("%w: %w", ErrBadPacket, wire.ErrBadOptions)
		}
		l := int(opts[i+1])
		if t&0x80 != 0 {
			n += copy(f.options[n:], opts[i:i+l])
		}
		i += l
	}
	f.optLen = (n + 3) &^ 3
	clear(f.options[n:f.optLen])
	return nil
}

// count returns the number of fragments Next will write.
func (f *Fragmenter) count() int {
	rest := len(f.pkt) - f.hl - (f.mtu-f.hl)&^7 // after the first
	room := f.mtu - wire.IPv4HeaderLen - f.optLen
	if rest <= room {
		return 2
	}
	step := room &^ 7
	return 2 + (rest-room+step-1)/step
}

// NumFragments returns how many fragments Next writes for the packet given
// to Reset (1 if it fits the MTU, 0 after an error). The stack adds it to
// FragCreates.
func (f *Fragmenter) NumFragments() int { return f.nfrags }

// Next writes the next fragment (IP header with correct MF/offset/total
// length/checksum; options: copy only the options with the copied flag
// into non-first fragments, RFC 791) into dst and returns its length, or 0
// when done. dst must hold mtu bytes. Counts nothing itself; the stack
// counts FragOKs/FragCreates.
//
// If dst is shorter than the fragment, Next writes nothing and returns 0
// without moving on.
func (f *Fragmenter) Next(dst []byte) int {
	if f.done {
		return 0
	}
	if f.single {
		if len(dst) < len(f.pkt) {
			return 0
		}
		f.done = true
		return copy(dst, f.pkt)
	}
	first := f.off == 0
	hl := wire.IPv4HeaderLen + f.optLen
	if first {
		hl = f.hl
	}
	payload := f.pkt[f.hl:]
	n := len(payload) - f.off
	mf := f.lastMF
	if n > f.mtu-hl {
		n = (f.mtu - hl) &^ 7
		mf = true
	}
	if len(dst) < hl+n {
		return 0
	}
	copy(dst, f.pkt[:wire.IPv4HeaderLen])
	if first {
		copy(dst[wire.IPv4HeaderLen:hl], f.pkt[wire.IPv4HeaderLen:f.hl])
	} else {
		copy(dst[wire.IPv4HeaderLen:hl], f.options[:f.optLen])
	}
	copy(dst[hl:], payload[f.off:f.off+n])
	dst[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(dst[2:], uint16(hl+n))
	w := uint16((f.base+f.off)/8) & 0x1fff // DF is clear; the reserved bit too, as Linux ip_do_fragment leaves it
	if mf {
		w |= 0x2000
	}
	binary.BigEndian.PutUint16(dst[6:], w)
	dst[10], dst[11] = 0, 0
	binary.BigEndian.PutUint16(dst[10:], wire.Checksum(dst[:hl], 0))
	f.off += n
	if f.off == len(payload) {
		f.done = true
	}
	return hl + n
}
