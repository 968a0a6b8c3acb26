package network

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

var (
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8::2")
)

// packet6 builds an IPv6 packet from src6 to dst6 with the extension
// headers ext (already encoded, the first's type in first) and an
// upper-layer payload of protocol proto.
func packet6(first uint8, ext []byte, proto uint8, payload []byte) []byte {
	nh := proto
	if len(ext) > 0 {
		nh = first
	}
	f := wire.IPv6Fields{NextHeader: nh, HopLimit: 64, Src: src6, Dst: dst6, PayloadLen: uint16(len(ext) + len(payload))}
	b := make([]byte, wire.IPv6HeaderLen+len(ext)+len(payload))
	f.Encode(b)
	copy(b[wire.IPv6HeaderLen:], ext)
	copy(b[wire.IPv6HeaderLen+len(ext):], payload)
	return b
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// fragments6 splits pkt with a Fragmenter6 and returns the fragments.
func fragments6(t *testing.T, pkt []byte, mtu int, id uint32) [][]byte {
	t.Helper()
	var f Fragmenter6
	if err := f.Reset(pkt, mtu, id); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	buf := make([]byte, mtu)
	for {
		n := f.Next(buf)
		if n == 0 {
			break
		}
		if n > mtu {
			t.Fatalf("fragment of %d bytes for MTU %d", n, mtu)
		}
		out = append(out, slices.Clone(buf[:n]))
	}
	if len(out) != f.NumFragments() {
		t.Fatalf("%d fragments, NumFragments says %d", len(out), f.NumFragments())
	}
	return out
}

// reassemble6 walks and adds each fragment, returning the packets made.
func reassemble6(t *testing.T, r *Reassembler, now clock.Instant, frags [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, fr := range frags {
		p, err := wire.ParseIPv6(fr)
		if err != nil {
			t.Fatal(err)
		}
		var c wire.IPv6Chain
		if err := c.Walk(p); err != nil {
			t.Fatalf("walk: %v", err)
		}
		if !c.Fragmented() {
			t.Fatalf("not a fragment: %x", fr[:48])
		}
		if pkt, ok := r.AddIPv6(now, p, &c); ok {
			out = append(out, slices.Clone(pkt))
		}
	}
	return out
}

// TestFragment6RoundTrip: RFC 8200 §4.5 — the source splits a packet with
// per-fragment headers (hop-by-hop, routing) and fragmentable ones
// (destination options after the routing header); each fragment fits the
// MTU, carries the per-fragment headers and a fragment header; the
// reassembler puts the original back in any order.
func TestFragment6RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hbh := wire.IPv6OptionsFields{NextHeader: wire.ProtoRouting}
	ext := make([]byte, hbh.Len())
	hbh.Encode(ext)
	// A routing header with no segments left: per-fragment.
	rt := []byte{wire.ProtoDestOpts, 0, 0, 0, 0, 0, 0, 0}
	ext = append(ext, rt...)
	dopt := wire.IPv6OptionsFields{NextHeader: wire.ProtoUDP}
	d := make([]byte, dopt.Len())
	dopt.Encode(d)
	ext = append(ext, d...)
	for _, size := range []int{1200, 1300, 3000, 9000, 65000} {
		for _, mtu := range []int{1280, 1500, 9000} {
			orig := packet6(wire.ProtoHopByHop, ext, wire.ProtoUDP, randBytes(rng, size))
			frags := fragments6(t, orig, mtu, 0xabcdef)
			if len(orig) <= mtu {
				if len(frags) != 1 || !bytes.Equal(frags[0], orig) {
					t.Fatalf("size %d mtu %d: a packet that fits was changed", size, mtu)
				}
				continue
			}
			for i, fr := range frags {
				// Per-fragment headers first, then the fragment header.
				if !bytes.Equal(fr[wire.IPv6HeaderLen:wire.IPv6HeaderLen+16], ext[:16]) && fr[wire.IPv6HeaderLen+8] != wire.ProtoFragment {
					t.Fatalf("fragment %d lost its per-fragment headers", i)
				}
				if fr[wire.IPv6HeaderLen+8] != wire.ProtoFragment {
					t.Fatalf("fragment %d: routing header's next header %d, want fragment", i, fr[wire.IPv6HeaderLen+8])
				}
				fh := wire.IPv6Fragment(fr[wire.IPv6HeaderLen+16:])
				if fh.NextHeader() != wire.ProtoDestOpts || fh.ID() != 0xabcdef || fh.More() != (i < len(frags)-1) {
					t.Fatalf("fragment %d: header %x", i, []byte(fh))
				}
			}
			r := NewReassembler6(ReassemblyConfig{}, nil)
			rng.Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
			out := reassemble6(t, r, 0, frags)
			if len(out) != 1 || !bytes.Equal(out[0], orig) {
				t.Fatalf("size %d mtu %d: reassembled %d packets, equal %v", size, mtu, len(out), len(out) == 1 && bytes.Equal(out[0], orig))
			}
			if r.Bytes() != 0 || r.Pending() != 0 {
				t.Fatalf("reassembler holds %d bytes after completing", r.Bytes())
			}
		}
	}
}

func TestFragment6Errors(t *testing.T) {
	var f Fragmenter6
	p := packet6(0, nil, wire.ProtoUDP, make([]byte, 2000))
	if err := f.Reset(p, 1279, 1); err != ErrMTUTooSmall {
		t.Errorf("MTU 1279: %v", err)
	}
	fh := make([]byte, 8)
	(&wire.IPv6FragmentFields{NextHeader: wire.ProtoUDP, More: true}).Encode(fh)
	q := packet6(wire.ProtoFragment, fh, wire.ProtoUDP, make([]byte, 2000))
	if err := f.Reset(q, 1280, 1); err == nil {
		t.Error("a packet with a fragment header was fragmented again")
	}
	if f.Next(make([]byte, 2000)) != 0 {
		t.Error("Next after an error wrote something")
	}
	if err := f.Reset([]byte{0x60, 0, 0}, 1500, 1); err == nil {
		t.Error("a truncated packet was accepted")
	}
}

// TestReassembly6Overlap: RFC 5722 — a fragment that overlaps another
// abandons the packet, even with the same bytes, while an exact duplicate
// is ignored.
func TestReassembly6Overlap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	orig := packet6(0, nil, wire.ProtoUDP, randBytes(rng, 4000))
	frags := fragments6(t, orig, 1500, 7)
	var st Stats
	r := NewReassembler6(ReassemblyConfig{}, &st)
	// An exact duplicate of the first fragment: ignored.
	if out := reassemble6(t, r, 0, [][]byte{frags[0], frags[0], frags[1], frags[2]}); len(out) != 1 || !bytes.Equal(out[0], orig) {
		t.Fatal("exact duplicate broke reassembly")
	}
	if st.Ip6ReasmOverlaps != 0 || st.Ip6ReasmOKs != 1 || st.Ip6ReasmReqds != 4 {
		t.Fatalf("counters %+v", st)
	}
	// A fragment holding the second's bytes and 8 more of the first's
	// (the same bytes): an overlap, the packet is dropped.
	f1 := frags[1]
	var c wire.IPv6Chain
	p, _ := wire.ParseIPv6(f1)
	if err := c.Walk(p); err != nil {
		t.Fatal(err)
	}
	over := slices.Clone(f1[:c.Offset])
	over = append(over, orig[wire.IPv6HeaderLen+int(c.Frag.Offset)-8:wire.IPv6HeaderLen+int(c.Frag.Offset)]...)
	over = append(over, f1[c.Offset:]...)
	binary.BigEndian.PutUint16(over[4:], uint16(len(over)-wire.IPv6HeaderLen))
	binary.BigEndian.PutUint16(over[c.FragHeader+2:], (c.Frag.Offset-8)|1)
	if out := reassemble6(t, r, 0, [][]byte{frags[0], over, frags[1], frags[2]}); len(out) != 0 {
		t.Fatal("overlapping fragments reassembled")
	}
	if st.Ip6ReasmOverlaps != 1 || st.ReasmOverlaps != 0 {
		t.Fatalf("overlap not counted as IPv6's: %+v", st)
	}
}

// TestReassembly6KeyAndHeader: RFC 8200 §4.5 — fragments are keyed by
// source, destination and identification, not the next header (which
// may differ: the first fragment's is used), and the reassembled packet's
// per-fragment headers are the first fragment's.
func TestReassembly6KeyAndHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	orig := packet6(0, nil, wire.ProtoUDP, randBytes(rng, 3000))
	frags := fragments6(t, orig, 1280, 9)
	// The last fragment says TCP in its fragment header: ignored.
	last := frags[len(frags)-1]
	last[wire.IPv6HeaderLen] = wire.ProtoTCP
	last[7] = 3 // a hop limit of its own, also ignored
	r := NewReassembler6(ReassemblyConfig{}, nil)
	out := reassemble6(t, r, 0, frags)
	if len(out) != 1 || !bytes.Equal(out[0], orig) {
		t.Fatal("reassembly used a non-first fragment's headers")
	}
	// Another identification or destination is another packet.
	other := fragments6(t, orig, 1280, 10)
	if out := reassemble6(t, r, 0, append([][]byte{other[0]}, frags[1:]...)); len(out) != 0 {
		t.Fatal("fragments of two identifications were joined")
	}
}

// TestReassembly6Timeout: RFC 8200 §4.5 — 60 s after its first-arriving
// fragment a packet is abandoned; if the first fragment had arrived the
// quote for the time-exceeded error starts with it.
func TestReassembly6Timeout(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	orig := packet6(0, nil, wire.ProtoUDP, randBytes(rng, 3000))
	frags := fragments6(t, orig, 1280, 11)
	var st Stats
	r := NewReassembler6(ReassemblyConfig{}, &st)
	reassemble6(t, r, 0, frags[:1])
	if d := r.NextDeadline(); d != at(60*time.Second) {
		t.Fatalf("deadline %v, want 60 s", d)
	}
	r.HandleTimeout(at(59 * time.Second))
	if r.Pending() != 1 {
		t.Fatal("expired early")
	}
	r.HandleTimeout(at(60 * time.Second))
	q, ok := r.PollExpired()
	if !ok || st.Ip6ReasmTimeout != 1 || st.Ip6ReasmFails != 1 || r.Bytes() != 0 {
		t.Fatalf("no expiry: %+v, bytes %d", st, r.Bytes())
	}
	want := frags[0][:wire.IPv6HeaderLen+8+8]
	if !bytes.Equal(q, want) {
		t.Fatalf("quote %x, want the first fragment's headers and 8 bytes %x", q, want)
	}
	// Without the first fragment: no quote.
	reassemble6(t, r, at(61*time.Second), frags[1:2])
	r.HandleTimeout(at(200 * time.Second))
	if _, ok := r.PollExpired(); ok {
		t.Fatal("quote without a first fragment")
	}
}

// TestReassembly6Oversize: a fragment whose end, with the first
// fragment's headers, would make a payload longer than 65535 bytes is
// dropped.
func TestReassembly6Oversize(t *testing.T) {
	var st Stats
	r := NewReassembler6(ReassemblyConfig{}, &st)
	fh := make([]byte, 8)
	// A last fragment ending at 65528 of the fragmentable part is one
	// Walk lets through (RFC 8200 §4.5 bounds offset + length by 65535),
	// but the first fragment's headers push the payload over: the first fragment carries a 16-byte destination options
	// header before the fragment header.
	dopt := wire.IPv6OptionsFields{NextHeader: wire.ProtoFragment, Options: append([]byte{0x1e, 12}, make([]byte, 12)...)}
	d := make([]byte, dopt.Len())
	dopt.Encode(d)
	(&wire.IPv6FragmentFields{NextHeader: wire.ProtoUDP, Offset: 0, More: true, ID: 2}).Encode(fh)
	first := packet6(wire.ProtoDestOpts, append(slices.Clone(d), fh...), wire.ProtoUDP, make([]byte, 8))
	(&wire.IPv6FragmentFields{NextHeader: wire.ProtoUDP, Offset: 65520, More: false, ID: 2}).Encode(fh)
	tail := packet6(wire.ProtoFragment, fh, wire.ProtoUDP, make([]byte, 8))
	reassemble6(t, r, 0, [][]byte{tail, first})
	if st.Ip6ReasmFails == 0 || r.Pending() != 0 {
		t.Fatalf("oversize packet kept: %+v", st)
	}
}

func TestErrorAllowed6(t *testing.T) {
	udp := packet6(0, nil, wire.ProtoUDP, make([]byte, 8))
	echo := packet6(0, nil, wire.ProtoICMPv6, []byte{wire.ICMPv6EchoRequest, 0, 0, 0, 0, 0, 0, 0})
	errMsg := packet6(0, nil, wire.ProtoICMPv6, []byte{wire.ICMPv6DestUnreachable, 0, 0, 0, 0, 0, 0, 0})
	redirect := packet6(0, nil, wire.ProtoICMPv6, []byte{wire.ICMPv6Redirect, 0, 0, 0, 0, 0, 0, 0})
	mcast := slices.Clone(udp)
	copy(mcast[24:40], wire.IPv6AllNodes.AsSlice())
	unspec := slices.Clone(udp)
	clear(unspec[8:24])
	// An error about an error, behind an extension header.
	dopt := wire.IPv6OptionsFields{NextHeader: wire.ProtoICMPv6}
	d := make([]byte, dopt.Len())
	dopt.Encode(d)
	errBehindExt := packet6(wire.ProtoDestOpts, d, wire.ProtoICMPv6, []byte{wire.ICMPv6TimeExceeded, 0, 0, 0, 0, 0, 0, 0})
	for _, c := range []struct {
		name      string
		p         []byte
		link, exc bool
		want      bool
	}{
		{"udp", udp, false, false, true},
		{"echo request", echo, false, false, true},
		{"error (e.1)", errMsg, false, false, false},
		{"error behind an extension header (e.1)", errBehindExt, false, false, false},
		{"redirect (e.2)", redirect, false, false, false},
		{"multicast destination (e.3)", mcast, false, false, false},
		{"multicast destination, packet too big (e.3 exception)", mcast, false, true, true},
		{"link-layer multicast (e.4)", udp, true, false, false},
		{"link-layer multicast, exception", udp, true, true, true},
		{"unspecified source (e.6)", unspec, false, true, false},
		{"truncated", udp[:20], false, false, false},
	} {
		if got := ErrorAllowed6(c.p, c.link, c.exc); got != c.want {
			t.Errorf("%s: ErrorAllowed6 = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestErrorMessage6: RFC 4443 §2.4 (c) — the quote keeps the error within
// 1280 bytes; the checksum covers the pseudo-header.
func TestErrorMessage6(t *testing.T) {
	orig := packet6(0, nil, wire.ProtoUDP, make([]byte, 3000))
	buf := make([]byte, 1500)
	n := ErrorMessage6(buf, wire.ICMPv6ParameterProblem, 1, 6, orig, dst6, src6)
	if n != wire.IPv6MinMTU-wire.IPv6HeaderLen {
		t.Fatalf("error of %d bytes, want %d", n, wire.IPv6MinMTU-wire.IPv6HeaderLen)
	}
	m := wire.ICMPv6(buf[:n])
	if wire.ICMPv6Checksum(m, dst6, src6) != 0 || m.Pointer() != 6 || !bytes.Equal(m.Payload(), orig[:n-8]) {
		t.Fatal("bad error message")
	}
	// Link padding is not quoted.
	short := packet6(0, nil, wire.ProtoUDP, make([]byte, 8))
	padded := append(slices.Clone(short), 0, 0, 0, 0)
	if n := ErrorMessage6(buf, wire.ICMPv6DestUnreachable, 4, 0, padded, dst6, src6); n != 8+len(short) {
		t.Fatalf("quote of %d bytes, want %d", n-8, len(short))
	}
	req := []byte{wire.ICMPv6EchoRequest, 0, 0, 0, 0x12, 0x34, 0, 1, 'h', 'i'}
	n = EchoReply6(buf, req, dst6, src6)
	r := wire.ICMPv6(buf[:n])
	if n != len(req) || r.Type() != wire.ICMPv6EchoReply || r.ID() != 0x1234 || r.Seq() != 1 || wire.ICMPv6Checksum(r, dst6, src6) != 0 {
		t.Fatalf("bad echo reply %x", buf[:n])
	}
}

func TestFragment6Allocs(t *testing.T) {
	pkt := packet6(0, nil, wire.ProtoUDP, make([]byte, 5000))
	buf := make([]byte, 1500)
	var f Fragmenter6
	r := NewReassembler6(ReassemblyConfig{}, nil)
	var c wire.IPv6Chain
	frags := make([][]byte, 0, 8)
	for range 4 {
		frags = append(frags, make([]byte, 1500))
	}
	run := func() {
		if f.Reset(pkt, 1500, 5) != nil {
			t.Fatal("reset")
		}
		frags = frags[:0]
		for i := 0; ; i++ {
			n := f.Next(buf)
			if n == 0 {
				break
			}
			frags = append(frags, buf[:0])
			_ = n
			p, _ := wire.ParseIPv6(buf[:n])
			if c.Walk(p) != nil {
				t.Fatal("walk")
			}
			r.AddIPv6(0, p, &c)
		}
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Errorf("fragmenting and reassembling allocates %v per packet", a)
	}
}
