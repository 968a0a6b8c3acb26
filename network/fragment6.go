package network

import (
	"encoding/binary"
	"fmt"

	"github.com/ustack/ustack/wire"
)

// Fragmenter6 splits an IPv6 packet its source sends into fragments that
// fit an MTU (RFC 8200 §4.5). Only the source fragments IPv6, and only
// packets that do not fit the path: a host never makes atomic fragments
// (RFC 8021), so a packet that fits is written unchanged.
//
// The packet's per-fragment headers — the IPv6 header and the extension
// headers up to the routing header, or else the hop-by-hop header — are
// copied into every fragment, followed by a fragment header and the next
// piece of the rest, in multiples of 8 bytes but the last. It refers to
// the packet in place: the packet given to Reset must not change until
// Next returns 0. The zero value is ready for Reset.
type Fragmenter6 struct {
	pkt    []byte
	unfrag int   // length of the per-fragment headers
	nhOff  int   // offset of the Next Header field that names the fragment header
	nh     uint8 // what that field named: the first fragmentable header
	id     uint32
	mtu    int
	off    int // bytes of the fragmentable part already written
	single bool
	done   bool
	nfrags int
}

// Reset prepares to split the IPv6 packet pkt into fragments of at most
// mtu bytes with identification id (RFC 7739: the caller makes it hard to
// guess). A packet that fits mtu is not split: Next returns it unchanged,
// once. Errors (after which Next returns 0): ErrMTUTooSmall below the
// IPv6 minimum of 1280 (RFC 8200 §5), ErrBadPacket if pkt does not parse,
// already holds a fragment header (the source does not fragment a packet
// twice), or has per-fragment headers that leave no room for 8 bytes of
// data.
func (f *Fragmenter6) Reset(pkt []byte, mtu int, id uint32) error {
	*f = Fragmenter6{done: true}
	if mtu < wire.IPv6MinMTU {
		return ErrMTUTooSmall
	}
	p, err := wire.ParseIPv6(pkt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadPacket, err)
	}
	f.pkt = p.Packet()
	f.mtu = min(mtu, maxPacket6)
	if len(f.pkt) <= f.mtu {
		f.single, f.done, f.nfrags = true, false, 1
		return nil
	}
	if err := f.perFragment(); err != nil {
		return err
	}
	if f.unfrag+wire.IPv6FragmentLen+8 > f.mtu {
		return fmt.Errorf("%w: per-fragment headers of %d bytes leave no room", ErrBadPacket, f.unfrag)
	}
	f.id = id
	f.done = false
	rest := len(f.pkt) - f.unfrag
	step := f.step()
	f.nfrags = (rest + step - 1) / step
	return nil
}

// perFragment finds the per-fragment headers (RFC 8200 §4.5): all
// headers up to and including the routing header if there is one, else
// the hop-by-hop header if there is one, else the IPv6 header alone.
func (f *Fragmenter6) perFragment() error {
	p := f.pkt
	next, off := p[6], wire.IPv6HeaderLen
	f.unfrag, f.nhOff, f.nh = off, 6, next
	for range wire.IPv6MaxExtHeaders {
		switch next {
		case wire.ProtoHopByHop, wire.ProtoDestOpts, wire.ProtoRouting:
		case wire.ProtoFragment:
			return fmt.Errorf("%w: already fragmented", ErrBadPacket)
		default:
			return nil
		}
		h, err := wire.ParseIPv6ExtHeader(p[off:])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadPacket, err)
		}
		end := off + h.Len()
		if next == wire.ProtoHopByHop || next == wire.ProtoRouting {
			f.unfrag, f.nhOff, f.nh = end, off, h.NextHeader()
		}
		next, off = h.NextHeader(), end
	}
	return fmt.Errorf("%w: %w", ErrBadPacket, wire.ErrTooManyHeaders)
}

// step is the fragmentable bytes each fragment but the last carries.
func (f *Fragmenter6) step() int {
	return (f.mtu - f.unfrag - wire.IPv6FragmentLen) &^ 7
}

// NumFragments returns how many fragments Next writes (1 if the packet
// fits the MTU, 0 after an error).
func (f *Fragmenter6) NumFragments() int { return f.nfrags }

// Next writes the next fragment into dst and returns its length, or 0
// when done. dst must hold mtu bytes; if it is shorter than the fragment,
// Next writes nothing and returns 0 without moving on.
func (f *Fragmenter6) Next(dst []byte) int {
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
	body := f.pkt[f.unfrag:]
	n := len(body) - f.off
	more := false
	if step := f.step(); n > step {
		n, more = step, true
	}
	hl := f.unfrag + wire.IPv6FragmentLen
	if len(dst) < hl+n {
		return 0
	}
	copy(dst, f.pkt[:f.unfrag])
	dst[f.nhOff] = wire.ProtoFragment
	binary.BigEndian.PutUint16(dst[4:], uint16(hl+n-wire.IPv6HeaderLen))
	fh := wire.IPv6FragmentFields{NextHeader: f.nh, Offset: uint16(f.off), More: more, ID: f.id}
	fh.Encode(dst[f.unfrag:])
	copy(dst[hl:], body[f.off:f.off+n])
	f.off += n
	if f.off == len(body) {
		f.done = true
	}
	return hl + n
}
