package tcp

import (
	"reflect"
	"testing"

	"github.com/ustack/ustack/wire"
)

func blocks(o *ooo, room int, d *seqRange) []wire.SACKBlock {
	b := make([]wire.SACKBlock, room)
	return b[:o.sackBlocks(b, d)]
}

func blk(a, b wire.Seq) wire.SACKBlock { return wire.SACKBlock{Start: a, End: b} }

// TestOOOMerge checks that the reassembly ranges stay sorted, disjoint and
// not adjacent (RFC 9293 §3.10.7.4: out-of-order text is held).
func TestOOOMerge(t *testing.T) {
	var o ooo
	for _, c := range []struct {
		add  seqRange
		want []seqRange
	}{
		{seqRange{200, 300}, []seqRange{{200, 300}}},
		{seqRange{400, 500}, []seqRange{{200, 300}, {400, 500}}},
		{seqRange{100, 150}, []seqRange{{100, 150}, {200, 300}, {400, 500}}},
		{seqRange{300, 400}, []seqRange{{100, 150}, {200, 500}}}, // joins two adjacent ranges
		{seqRange{120, 130}, []seqRange{{100, 150}, {200, 500}}}, // inside one
		{seqRange{90, 600}, []seqRange{{90, 600}}},               // covers all
	} {
		if !o.add(c.add.start, c.add.end) {
			t.Fatalf("add %v refused", c.add)
		}
		if !reflect.DeepEqual([]seqRange(o.set), c.want) {
			t.Fatalf("after add %v: %v, want %v", c.add, o.set, c.want)
		}
	}
	if got := o.advance(50); got != 50 || len(o.set) != 1 {
		t.Fatalf("advance(50) = %v, ranges %v", got, o.set)
	}
	if got := o.advance(90); got != 600 || !o.empty() {
		t.Fatalf("advance(90) = %v, ranges %v; want 600 and none", got, o.set)
	}
}

// TestOOOWrap checks ranges across the 2^32 wrap of sequence numbers.
func TestOOOWrap(t *testing.T) {
	var o ooo
	top := wire.Seq(0xffffff00)
	o.add(top.Add(0x200), top.Add(0x300)) // past the wrap
	o.add(top, top.Add(0x100))
	if o.set[0].start != top {
		t.Fatalf("ranges %v: not in sequence order across the wrap", o.set)
	}
	if got := o.advance(top); got != top.Add(0x100) || len(o.set) != 1 {
		t.Fatalf("advance = %#x, ranges %v", uint32(got), o.set)
	}
}

// TestOOOLimit checks the bound on the number of ranges: the segment that
// would need one more is refused (and counted as OFODrop by the caller).
func TestOOOLimit(t *testing.T) {
	var o ooo
	for i := 0; i < maxOOORanges; i++ {
		s := wire.Seq(1000 + 20*i)
		if !o.add(s, s+10) {
			t.Fatalf("range %d refused", i)
		}
	}
	beyond := wire.Seq(1000 + 20*maxOOORanges + 100)
	if o.add(beyond, beyond+10) {
		t.Fatal("range beyond the limit accepted")
	}
	// Growing an existing range needs no new one.
	if !o.add(1010, 1015) {
		t.Fatal("extension of an existing range refused")
	}
}

// TestSACKBlockOrder checks RFC 2018 §4: the first block holds the most
// recently received segment, the following ones repeat the most recently
// reported blocks, and a D-SACK block (RFC 2883 §4) comes before them.
func TestSACKBlockOrder(t *testing.T) {
	var o ooo
	o.add(200, 300)
	o.add(400, 500)
	o.add(600, 700)
	if got, want := blocks(&o, 4, nil), []wire.SACKBlock{blk(600, 700), blk(400, 500), blk(200, 300)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	o.add(300, 350) // grows the oldest block: it comes first
	if got, want := blocks(&o, 4, nil), []wire.SACKBlock{blk(200, 350), blk(600, 700), blk(400, 500)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	// Room for 3 (with timestamps): the least recent block is left out.
	if got, want := blocks(&o, 2, nil), []wire.SACKBlock{blk(200, 350), blk(600, 700)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	// D-SACK first, then the SACK blocks.
	d := seqRange{50, 100}
	if got, want := blocks(&o, 3, &d), []wire.SACKBlock{blk(50, 100), blk(200, 350), blk(600, 700)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	// More blocks than the recency list remembers: the rest follow,
	// highest first.
	var p ooo
	for i := 0; i < 6; i++ {
		s := wire.Seq(100 * (i + 1))
		p.add(s, s+10)
	}
	got := blocks(&p, 4, nil)
	want := []wire.SACKBlock{blk(600, 610), blk(500, 510), blk(400, 410), blk(300, 310)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	// Blocks that were delivered (advance) are not reported.
	p.advance(100)
	p.advance(110)
	for _, b := range blocks(&p, 4, nil) {
		if b.Start == 100 {
			t.Fatalf("delivered block reported: %v", b)
		}
	}
}
