package network

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ustack/ustack/wire"
)

// copiedOptions is the test's own reading of RFC 791 §3.1: the options
// whose type has the copied flag, in order, padded with zeros to a
// multiple of 4.
func copiedOpts(opts []byte) []byte {
	var out []byte
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			i = len(opts)
			continue
		case 1:
			i++
			continue
		}
		l := int(opts[i+1])
		if opts[i]&0x80 != 0 {
			out = append(out, opts[i:i+l]...)
		}
		i += l
	}
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}

// splitAll runs f over pkt at mtu and returns copies of the fragments.
func splitAll(t *testing.T, pkt []byte, mtu int) [][]byte {
	t.Helper()
	var f Fragmenter
	if err := f.Reset(pkt, mtu); err != nil {
		t.Fatalf("Reset(%d bytes, mtu %d): %v", len(pkt), mtu, err)
	}
	dst := make([]byte, mtu)
	var fs [][]byte
	for {
		n := f.Next(dst)
		if n == 0 {
			break
		}
		fs = append(fs, bytes.Clone(dst[:n]))
	}
	if len(fs) != f.NumFragments() {
		t.Fatalf("%d fragments, NumFragments %d", len(fs), f.NumFragments())
	}
	return fs
}

func TestFragmenterRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for i := 0; i < 500; i++ {
		optLen := 4 * rng.IntN(11)
		n := 1 + rng.IntN(20000)
		if i%50 == 0 {
			n = 65535 - 20 - optLen // the largest packet
		}
		orig := randDatagram(rng, n, optLen)
		mtu := MinMTU + rng.IntN(9000)
		if i%7 == 0 {
			mtu = MinMTU + rng.IntN(64)
		}
		fs := splitAll(t, orig, mtu)
		op := wire.IPv4(orig)
		if len(orig) <= mtu {
			if len(fs) != 1 || !bytes.Equal(fs[0], orig) {
				t.Fatalf("case %d: a packet that fits was changed", i)
			}
			continue
		}
		wantOpts := copiedOpts(op.Options())
		next := 0 // the payload offset the next fragment must start at
		for j, b := range fs {
			p, err := wire.ParseIPv4(b)
			if err != nil || !p.ChecksumValid() || len(b) > mtu || int(p.TotalLen()) != len(b) {
				t.Fatalf("case %d fragment %d: %v, %d bytes at mtu %d, checksum %v", i, j, err, len(b), mtu, err == nil && p.ChecksumValid())
			}
			last := j == len(fs)-1
			if p.MF() == last || p.DF() || int(p.FragOffset()) != next || (!last && len(p.Payload())%8 != 0) {
				t.Fatalf("case %d fragment %d: MF %v offset %d (want %d) payload %d", i, j, p.MF(), p.FragOffset(), next, len(p.Payload()))
			}
			if p.ID() != op.ID() || p.TOS() != op.TOS() || p.TTL() != op.TTL() || p.Protocol() != op.Protocol() || p.Src() != op.Src() || p.Dst() != op.Dst() {
				t.Fatalf("case %d fragment %d: header fields changed", i, j)
			}
			if j == 0 && !bytes.Equal(p.Options(), op.Options()) {
				t.Fatalf("case %d: first fragment lost options", i)
			}
			if j > 0 && !bytes.Equal(p.Options(), wantOpts) {
				t.Fatalf("case %d fragment %d: options %x, want the copied ones %x of %x", i, j, p.Options(), wantOpts, op.Options())
			}
			// As large as the MTU allows: a non-final fragment could not
			// hold 8 more bytes.
			if !last && len(b)+8 <= mtu {
				t.Fatalf("case %d fragment %d: %d bytes, room for more at mtu %d", i, j, len(b), mtu)
			}
			if !bytes.Equal(p.Payload(), op.Payload()[next:next+len(p.Payload())]) {
				t.Fatalf("case %d fragment %d: payload differs", i, j)
			}
			next += len(p.Payload())
		}
		if next != len(op.Payload()) {
			t.Fatalf("case %d: fragments carry %d of %d bytes", i, next, len(op.Payload()))
		}
		// Both reassemblers give the packet back, in a random order.
		rng.Shuffle(len(fs), func(a, b int) { fs[a], fs[b] = fs[b], fs[a] })
		if got, ok := refReassemble(fs); !ok || !bytes.Equal(got, orig) {
			t.Fatalf("case %d: the naive reassembler disagrees", i)
		}
		if out := addAll(t, NewReassembler(ReassemblyConfig{}, nil), 0, fs); len(out) != 1 || !bytes.Equal(out[0], orig) {
			t.Fatalf("case %d: Reassembler did not give the packet back", i)
		}
	}
}

func TestFragmenterOptionsCopiedFlag(t *testing.T) {
	opts := []byte{
		0x83, 7, 4, 192, 0, 2, 1, // loose source route: copied
		0x07, 7, 4, 0, 0, 0, 0, // record route: not copied
		1,             // NOP: not copied
		0x94, 4, 0, 0, // router alert: copied
		0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, // timestamp: not copied
		0, 0, 0, 0, 0, // end of list, padding to 36 bytes
	}
	f := wire.IPv4Fields{ID: 9, TTL: 64, Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB, Options: opts}
	pkt := buildIPv4(f, make([]byte, 3000))
	fs := splitAll(t, pkt, 1500)
	want := []byte{0x83, 7, 4, 192, 0, 2, 1, 0x94, 4, 0, 0, 0}
	if len(fs) != 3 {
		t.Fatalf("%d fragments", len(fs))
	}
	if got := wire.IPv4(fs[0]).Options(); !bytes.Equal(got, opts) {
		t.Errorf("first fragment options %x", got)
	}
	for _, b := range fs[1:] {
		if got := wire.IPv4(b).Options(); !bytes.Equal(got, want) {
			t.Errorf("later fragment options %x, want %x", got, want)
		}
	}
	// No copied options: later fragments have a bare 20-byte header.
	f.Options = []byte{0x07, 3, 4, 0}
	for _, b := range splitAll(t, buildIPv4(f, make([]byte, 3000)), 1500)[1:] {
		if wire.IPv4(b).HeaderLen() != 20 {
			t.Errorf("header length %d, want 20", wire.IPv4(b).HeaderLen())
		}
	}
}

func TestFragmenterErrors(t *testing.T) {
	f := wire.IPv4Fields{ID: 9, TTL: 64, Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB}
	var fr Fragmenter
	dst := make([]byte, 2100)

	// RFC 791: DF set and too big. The caller sends frag-needed.
	f.DF = true
	df := buildIPv4(f, make([]byte, 2000))
	if err := fr.Reset(df, 1500); !errors.Is(err, ErrDontFragment) {
		t.Errorf("DF: %v", err)
	}
	if fr.Next(dst) != 0 || fr.NumFragments() != 0 {
		t.Error("Next after an error wrote something")
	}
	// DF but it fits: sent as is.
	if err := fr.Reset(df, 2020); err != nil || fr.Next(dst) != 2020 || fr.Next(dst) != 0 {
		t.Errorf("DF packet that fits: %v", err)
	}
	f.DF = false

	if err := fr.Reset(buildIPv4(f, make([]byte, 100)), 67); !errors.Is(err, ErrMTUTooSmall) {
		t.Errorf("mtu 67: %v", err)
	}
	// 68 is enough even for a 60-byte header (8 bytes per fragment).
	f.Options = bytes.Repeat([]byte{0x94, 4, 0, 0}, 10)
	if fs := splitAll(t, buildIPv4(f, make([]byte, 100)), 68); len(fs) != 13 {
		t.Errorf("mtu 68, 60-byte headers: %d fragments, want 13", len(fs))
	}
	f.Options = nil

	for _, b := range [][]byte{nil, {0x45}, bytes.Repeat([]byte{0x60}, 100)} {
		if err := fr.Reset(b, 1500); !errors.Is(err, ErrBadPacket) {
			t.Errorf("Reset(%x): %v", b, err)
		}
	}
	for _, o := range [][]byte{{0x83, 1, 0, 0}, {0x83, 9, 0, 0}, {1, 1, 1, 0x83}} {
		f.Options = o
		err := fr.Reset(buildIPv4(f, make([]byte, 2000)), 1500)
		if !errors.Is(err, ErrBadPacket) || !errors.Is(err, wire.ErrBadOptions) {
			t.Errorf("options %x: %v", o, err)
		}
	}
	// Offsets that would not fit the 13-bit field.
	f.Options, f.MF, f.FragOffset = nil, true, 65000
	if err := fr.Reset(buildIPv4(f, make([]byte, 1200)), 576); !errors.Is(err, ErrBadPacket) {
		t.Errorf("fragment past 65535: %v", err)
	}
}

func TestFragmenterRefragment(t *testing.T) {
	// A fragment split again (a router with a smaller MTU on the way):
	// offsets continue from the fragment's, and only the last piece of a
	// non-final fragment keeps MF.
	rng := rand.New(rand.NewPCG(43, 44))
	orig := randDatagram(rng, 4000, 8)
	var all [][]byte
	for _, f := range splitAll(t, orig, 1500) {
		pieces := splitAll(t, f, 576)
		last := wire.IPv4(pieces[len(pieces)-1])
		if last.MF() != wire.IPv4(f).MF() {
			t.Fatalf("last piece MF %v, fragment MF %v", last.MF(), wire.IPv4(f).MF())
		}
		if wire.IPv4(pieces[0]).FragOffset() != wire.IPv4(f).FragOffset() {
			t.Fatal("first piece does not start at the fragment's offset")
		}
		all = append(all, pieces...)
	}
	if out := addAll(t, NewReassembler(ReassemblyConfig{}, nil), 0, all); len(out) != 1 || !bytes.Equal(out[0], orig) {
		t.Fatal("refragmented pieces do not reassemble")
	}
}

func TestFragmenterExactFit(t *testing.T) {
	// The rest fits the second fragment exactly: two fragments, the last
	// with MF clear; one byte more needs a third.
	f := wire.IPv4Fields{ID: 9, TTL: 64, Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB}
	fs := splitAll(t, buildIPv4(f, make([]byte, 2960)), 1500)
	if len(fs) != 2 || len(fs[1]) != 1500 || wire.IPv4(fs[1]).MF() {
		t.Fatalf("exact fit: %d fragments, last %d bytes", len(fs), len(fs[len(fs)-1]))
	}
	if fs := splitAll(t, buildIPv4(f, make([]byte, 2961)), 1500); len(fs) != 3 || len(fs[2]) != 21 {
		t.Fatalf("one byte more: %d fragments", len(fs))
	}
	// The reserved flag bit is not copied into fragments (Linux clears it).
	pkt := buildIPv4(f, make([]byte, 2960))
	pkt[6] |= 0x80
	wire.IPv4(pkt).SetChecksum(0)
	wire.IPv4(pkt).SetChecksum(wire.Checksum(pkt[:20], 0))
	for _, b := range splitAll(t, pkt, 1500) {
		if b[6]&0x80 != 0 || !wire.IPv4(b).ChecksumValid() {
			t.Fatal("reserved bit copied")
		}
	}
}

func TestFragmenterShortDst(t *testing.T) {
	f := wire.IPv4Fields{ID: 9, TTL: 64, Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB}
	pkt := buildIPv4(f, make([]byte, 3000))
	var fr Fragmenter
	if err := fr.Reset(pkt, 1500); err != nil {
		t.Fatal(err)
	}
	if n := fr.Next(make([]byte, 100)); n != 0 {
		t.Fatalf("Next into a short buffer = %d", n)
	}
	if n := fr.Next(make([]byte, 1500)); n != 1500 || wire.IPv4(pkt).ID() != 9 {
		t.Fatalf("Next after a short buffer = %d, want the first fragment", n)
	}
	if err := fr.Reset(pkt[:1000], 1500); err == nil { // total length says 3020
		t.Fatal("Reset of a truncated packet succeeded")
	}
	if err := fr.Reset(pkt, 4000); err != nil || fr.Next(make([]byte, 100)) != 0 || fr.Next(make([]byte, 4000)) != len(pkt) {
		t.Fatal("a packet that fits: short buffer, then the packet")
	}
}

func TestFragmenterAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	pkt := randDatagram(rng, 9000, 12)
	var fr Fragmenter
	dst := make([]byte, 1500)
	if a := testing.AllocsPerRun(100, func() {
		fr.Reset(pkt, 1500)
		for fr.Next(dst) > 0 {
		}
	}); a != 0 {
		t.Errorf("fragmenting allocates %v times", a)
	}
}
