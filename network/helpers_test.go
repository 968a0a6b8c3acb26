package network

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"github.com/ustack/ustack/wire"
)

var (
	srcA = netip.MustParseAddr("198.51.100.1")
	dstB = netip.MustParseAddr("203.0.113.2")
)

// datagram builds an IPv4 packet with header f (TotalLen and the fragment
// fields are filled from payload) and payload.
func buildIPv4(f wire.IPv4Fields, payload []byte) []byte {
	hl := f.HeaderLen()
	f.TotalLen = uint16(hl + len(payload))
	b := make([]byte, hl+len(payload))
	f.Encode(b)
	copy(b[hl:], payload)
	return b
}

// randDatagram returns a random unfragmented datagram with n payload bytes
// and optLen bytes of options (a multiple of 4), with random copied and
// uncopied options.
func randDatagram(rng *rand.Rand, n, optLen int) []byte {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	f := wire.IPv4Fields{
		TOS: byte(rng.Uint32()), ID: uint16(rng.Uint32()), TTL: 64, Protocol: wire.ProtoUDP,
		Src: srcA, Dst: dstB, Options: randOptions(rng, optLen),
	}
	return buildIPv4(f, payload)
}

// randOptions returns optLen bytes of well-formed options: a mix of NOPs
// and type-length-value options with and without the copied flag, ended by
// end-of-list padding.
func randOptions(rng *rand.Rand, optLen int) []byte {
	o := make([]byte, 0, optLen)
	for len(o) < optLen {
		room := optLen - len(o)
		switch {
		case room >= 3 && rng.IntN(3) > 0:
			l := 2 + rng.IntN(min(room, 10)-1)
			typ := byte(2 + rng.IntN(30)) // not EOL or NOP
			if rng.IntN(2) == 0 {
				typ |= 0x80 // copied
			}
			o = append(o, typ, byte(l))
			for range l - 2 {
				o = append(o, byte(rng.Uint32()))
			}
		case rng.IntN(4) == 0:
			o = append(o, 0) // end of list: the rest is padding
			for len(o) < optLen {
				o = append(o, 0)
			}
		default:
			o = append(o, 1) // NOP
		}
	}
	return o
}

// frag builds the fragment of orig (an unfragmented datagram) carrying
// payload bytes [a, b). Fragments other than the first carry no options
// unless withOpts.
func frag(orig []byte, a, b int, withOpts bool) []byte {
	p := wire.IPv4(orig)
	var f wire.IPv4Fields
	f.Decode(p)
	if a != 0 && !withOpts {
		f.Options = nil
	}
	f.FragOffset = uint16(a)
	f.MF = b < len(p.Payload())
	return buildIPv4(f, p.Payload()[a:b])
}

// randCuts returns a random partition of [0, n) into fragments: cut points
// that are multiples of 8, with at least two pieces when n > 8.
func randCuts(rng *rand.Rand, n int) [][2]int {
	var rs [][2]int
	a := 0
	for a < n {
		b := a + 8*(1+rng.IntN(max(1, min(n/8, 200))))
		if a == 0 && b >= n && n > 8 {
			b = 8 * max(1, (n-1)/16) // make it a real fragmentation
		}
		b = min(b, n)
		rs = append(rs, [2]int{a, b})
		a = b
	}
	return rs
}

// refReassemble is the naive reference: a byte array with a coverage map.
// It returns the reassembled datagram if frags complete one.
func refReassemble(frags [][]byte) ([]byte, bool) {
	var data [1 << 17]byte
	var have [1 << 17]bool
	var hdr []byte
	end := -1
	for _, b := range frags {
		p, err := wire.ParseIPv4(b)
		if err != nil {
			return nil, false
		}
		off := int(p.FragOffset())
		copy(data[off:], p.Payload())
		for i := range p.Payload() {
			have[off+i] = true
		}
		if off == 0 && hdr == nil {
			hdr = p[:p.HeaderLen()]
		}
		if !p.MF() {
			end = off + len(p.Payload())
		}
	}
	if hdr == nil || end < 0 {
		return nil, false
	}
	for i := range end {
		if !have[i] {
			return nil, false
		}
	}
	out := append(append([]byte(nil), hdr...), data[:end]...)
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	out[6] &^= 0x3f
	out[7] = 0
	out[10], out[11] = 0, 0
	binary.BigEndian.PutUint16(out[10:], wire.Checksum(out[:len(hdr)], 0))
	return out, true
}
