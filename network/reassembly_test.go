package network

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// addAll feeds frags to r at now and returns the packets it completed.
func addAll(t *testing.T, r *Reassembler, now clock.Instant, frags [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range frags {
		p, err := wire.ParseIPv4(f)
		if err != nil {
			t.Fatalf("test built a bad fragment: %v", err)
		}
		if pkt, ok := r.Add(now, p); ok {
			out = append(out, slices.Clone(pkt))
		}
		checkHoles(t, r)
	}
	return out
}

// checkHoles checks the RFC 815 bookkeeping of every datagram in progress:
// holes and pieces are sorted, disjoint, and exactly complementary; the
// charged memory is what the pieces hold; Bytes is the sum and within the
// cap.
func checkHoles(t *testing.T, r *Reassembler) {
	t.Helper()
	total := 0
	for k, d := range r.m {
		if r.m[d.key] != d || d.key != k {
			t.Fatalf("map key mismatch")
		}
		mem := datagramOverhead + cap(d.first)
		pos := 0 // everything before pos is accounted for
		hi, pi := 0, 0
		for hi < len(d.holes) || pi < len(d.pieces) {
			switch {
			case hi < len(d.holes) && d.holes[hi].first == pos:
				h := d.holes[hi]
				if h.last < h.first {
					t.Fatalf("empty hole %v", h)
				}
				pos = h.last + 1
				hi++
			case pi < len(d.pieces) && d.pieces[pi].off == pos:
				mem += cap(d.pieces[pi].buf)
				pos += len(d.pieces[pi].buf)
				pi++
			default:
				t.Fatalf("holes %v and pieces do not tile the datagram at %d", d.holes, pos)
			}
		}
		switch {
		case d.end >= 0 && pos != d.end:
			t.Fatalf("holes and pieces end at %d, datagram at %d", pos, d.end)
		case d.end < 0 && pos != holeInf+1:
			t.Fatalf("no final fragment yet, but the last hole ends at %d", pos-1)
		}
		if mem != d.mem {
			t.Fatalf("datagram charged %d, holds %d", d.mem, mem)
		}
		total += mem
	}
	if total != r.Bytes() || r.Bytes() > r.cfg.MaxBytes {
		t.Fatalf("Bytes = %d, datagrams hold %d, cap %d", r.Bytes(), total, r.cfg.MaxBytes)
	}
}

func fragsOf(orig []byte, cuts [][2]int) [][]byte {
	var fs [][]byte
	for _, c := range cuts {
		fs = append(fs, frag(orig, c[0], c[1], false))
	}
	return fs
}

func TestReassemblyOrders(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	orders := map[string]func([][]byte){
		"in order": func([][]byte) {},
		"reverse":  slices.Reverse[[][]byte],
		"random":   func(fs [][]byte) { rng.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] }) },
	}
	for _, name := range []string{"in order", "reverse", "random"} {
		for _, size := range []int{9, 16, 17, 100, 1480, 1481, 8000, 65535 - 60} {
			t.Run(fmt.Sprint(name, "/", size), func(t *testing.T) {
				var st Stats
				r := NewReassembler(ReassemblyConfig{}, &st)
				orig := randDatagram(rng, size, 40)
				if size > 65535-60-1 {
					orig = randDatagram(rng, size, 40) // the largest datagram there is
				}
				fs := fragsOf(orig, randCuts(rng, size))
				orders[name](fs)
				out := addAll(t, r, 0, fs)
				if len(out) != 1 || !bytes.Equal(out[0], orig) {
					t.Fatalf("got %d packets; want the original back", len(out))
				}
				if st.ReasmOKs != 1 || st.ReasmReqds != uint64(len(fs)) || st.ReasmFails != 0 {
					t.Fatalf("stats: %+v", st)
				}
				if r.Bytes() != 0 || r.Pending() != 0 || r.NextDeadline() != clock.Never {
					t.Fatalf("left over: %d bytes, %d pending", r.Bytes(), r.Pending())
				}
			})
		}
	}
}

func TestReassemblyOutputHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	orig := randDatagram(rng, 3000, 8)
	fs := fragsOf(orig, [][2]int{{0, 1480}, {1480, 2960}, {2960, 3000}})
	// The last fragment has another TTL and no options: the header is the
	// first fragment's, whatever order they come in.
	fs[2][8] = 3
	wire.IPv4(fs[2]).SetChecksum(0)
	wire.IPv4(fs[2]).SetChecksum(wire.Checksum(fs[2][:20], 0))
	r := NewReassembler(ReassemblyConfig{}, nil)
	out := addAll(t, r, 0, [][]byte{fs[2], fs[0], fs[1]})
	if len(out) != 1 {
		t.Fatal("not reassembled")
	}
	p, err := wire.ParseIPv4(out[0])
	if err != nil || !p.ChecksumValid() || p.IsFragment() || p.MF() || int(p.TotalLen()) != len(out[0]) {
		t.Fatalf("bad header: %v checksum %v fragment %v", err, p.ChecksumValid(), p.IsFragment())
	}
	if p.TTL() != 64 || p.HeaderLen() != 28 || !bytes.Equal(out[0], orig) {
		t.Fatalf("header is not the first fragment's: ttl %d hl %d", p.TTL(), p.HeaderLen())
	}
}

func TestReassemblyDFKept(t *testing.T) {
	// A fragment may carry DF (set by a host after fragmenting, RFC 791
	// allows it); the reassembled datagram keeps the first fragment's DF.
	rng := rand.New(rand.NewPCG(7, 8))
	orig := randDatagram(rng, 64, 0)
	fs := fragsOf(orig, [][2]int{{0, 32}, {32, 64}})
	for _, f := range fs {
		f[6] |= 0x40
		wire.IPv4(f).SetChecksum(0)
		wire.IPv4(f).SetChecksum(wire.Checksum(f[:20], 0))
	}
	out := addAll(t, NewReassembler(ReassemblyConfig{}, nil), 0, fs)
	if len(out) != 1 || !wire.IPv4(out[0]).DF() || !wire.IPv4(out[0]).ChecksumValid() {
		t.Fatal("DF lost or bad checksum")
	}
}

func TestReassemblyDuplicatesAndEqualOverlaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 200; i++ {
		var st Stats
		r := NewReassembler(ReassemblyConfig{}, &st)
		n := 8 + rng.IntN(5000)
		orig := randDatagram(rng, n, 4*rng.IntN(11))
		fs := fragsOf(orig, randCuts(rng, n))
		// Exact duplicates and overlapping fragments with the same bytes.
		for range rng.IntN(10) {
			fs = append(fs, slices.Clone(fs[rng.IntN(len(fs))]))
			a := 8 * rng.IntN((n+7)/8)
			b := min(n, a+8*(1+rng.IntN(40)))
			fs = append(fs, frag(orig, a, b, false))
		}
		rng.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		// The datagram completes when its last missing byte arrives;
		// fragments after that start a new datagram, which must not
		// complete from copies alone unless they cover it again.
		out := addAll(t, r, 0, fs)
		want, _ := refReassemble(fs[:firstComplete(fs)+1])
		if len(out) < 1 || !bytes.Equal(out[0], orig) || !bytes.Equal(want, orig) {
			t.Fatalf("case %d: got %d packets, first equal %v", i, len(out), len(out) > 0 && bytes.Equal(out[0], orig))
		}
		if st.ReasmOverlaps != 0 || st.ReasmFails != 0 {
			t.Fatalf("case %d: equal overlaps dropped: %+v", i, st)
		}
	}
}

// firstComplete returns the index of the fragment that completes the
// datagram, by the reference reassembler.
func firstComplete(fs [][]byte) int {
	for i := range fs {
		if _, ok := refReassemble(fs[:i+1]); ok {
			return i
		}
	}
	return -1
}

func TestReassemblyOverlapDifferentDropsDatagram(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	orig := randDatagram(rng, 4000, 0)
	for _, c := range []struct {
		name string
		a, b int // the bad fragment
	}{
		{"same range", 1000, 2000},
		{"partial", 1496, 2496},
		{"inside", 1504, 1512},
		{"covering", 0, 3000},
	} {
		t.Run(c.name, func(t *testing.T) {
			var st Stats
			r := NewReassembler(ReassemblyConfig{}, &st)
			fs := fragsOf(orig, [][2]int{{0, 1000}, {1000, 2000}, {2000, 3000}, {3000, 4000}})
			addAll(t, r, 0, fs[:2])
			bad := frag(orig, c.a, c.b, false)
			bad[len(bad)-1-(c.b-c.a)/2] ^= 1 // one bit differs, in the overlap
			if _, ok := r.Add(0, wire.IPv4(bad)); ok {
				t.Fatal("completed with conflicting data")
			}
			if st.ReasmOverlaps != 1 || st.ReasmFails != 1 || r.Pending() != 0 || r.Bytes() != 0 {
				t.Fatalf("overlap not dropped: %+v pending %d bytes %d", st, r.Pending(), r.Bytes())
			}
			// The rest starts a new datagram that cannot complete.
			if out := addAll(t, r, 0, fs[2:]); out != nil {
				t.Fatal("completed without the dropped fragments")
			}
		})
	}
}

func TestReassemblyContradictoryLength(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	orig := randDatagram(rng, 4000, 0)
	longer := randDatagram(rng, 5000, 0)
	copy(longer[4:6], orig[4:6]) // same key: ID (the rest of it is equal)
	wire.IPv4(longer).SetChecksum(0)
	wire.IPv4(longer).SetChecksum(wire.Checksum(longer[:20], 0))
	for _, c := range []struct {
		name  string
		frags [][]byte
	}{
		{"data beyond the end", [][]byte{frag(orig, 3000, 4000, false), frag(longer, 4000, 4800, false)}},
		{"final before data", [][]byte{frag(longer, 4000, 4800, false), frag(orig, 3000, 4000, false)}},
		{"two ends", [][]byte{frag(orig, 3000, 4000, false), frag(longer, 4000, 5000, false)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var st Stats
			r := NewReassembler(ReassemblyConfig{}, &st)
			addAll(t, r, 0, c.frags)
			if st.ReasmOverlaps != 1 || st.ReasmFails != 1 || r.Pending() != 0 {
				t.Fatalf("not dropped: %+v, pending %d", st, r.Pending())
			}
		})
	}
}

func TestReassemblyFinalWithoutNewBytes(t *testing.T) {
	// The bytes of the final fragment already arrived in a fragment that
	// did not say it was the last: the final one still ends the datagram.
	rng := rand.New(rand.NewPCG(15, 16))
	orig := randDatagram(rng, 64, 0)
	notLast := frag(orig, 32, 64, false)
	notLast[6] |= 0x20 // MF
	wire.IPv4(notLast).SetChecksum(0)
	wire.IPv4(notLast).SetChecksum(wire.Checksum(notLast[:20], 0))
	r := NewReassembler(ReassemblyConfig{}, nil)
	out := addAll(t, r, 0, [][]byte{frag(orig, 0, 32, false), notLast, frag(orig, 48, 64, false)})
	if len(out) != 1 || !bytes.Equal(out[0], orig) {
		t.Fatal("final fragment without new bytes did not complete the datagram")
	}
}

func TestReassemblyBadFragments(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	orig := randDatagram(rng, 100, 0)
	var st Stats
	r := NewReassembler(ReassemblyConfig{}, &st)
	odd := frag(orig, 0, 12, false) // MF with 12 bytes: not a multiple of 8
	empty := frag(orig, 16, 16, false)
	empty[6] |= 0x20
	r.Add(0, wire.IPv4(odd))
	r.Add(0, wire.IPv4(empty))
	if st.InHdrErrors != 2 || r.Pending() != 0 || st.ReasmReqds != 2 {
		t.Fatalf("bad lengths: %+v", st)
	}
	// Not fragments, or not IPv4 at all: ignored, never a panic.
	for _, b := range [][]byte{orig, nil, {0x45}, orig[:30], bytes.Repeat([]byte{0xff}, 40)} {
		if _, ok := r.Add(0, wire.IPv4(b)); ok {
			t.Fatalf("Add(%x) completed", b)
		}
	}
	if st.ReasmReqds != 2 || r.Pending() != 0 {
		t.Fatalf("non-fragments counted: %+v", st)
	}
}

func TestReassemblyKeys(t *testing.T) {
	// RFC 791: fragments belong together only if source, destination,
	// protocol and identification all match.
	rng := rand.New(rand.NewPCG(19, 20))
	var origs, all [][]byte
	for i := range 4 {
		o := randDatagram(rng, 600, 0)
		binary.BigEndian.PutUint16(o[4:], 77) // same ID
		switch i {
		case 1:
			o[12] ^= 1 // source
		case 2:
			o[19] ^= 1 // destination
		case 3:
			o[9] = wire.ProtoTCP
		}
		wire.IPv4(o).SetChecksum(0)
		wire.IPv4(o).SetChecksum(wire.Checksum(o[:20], 0))
		origs = append(origs, o)
		all = append(all, fragsOf(o, [][2]int{{0, 200}, {200, 400}, {400, 600}})...)
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	out := addAll(t, NewReassembler(ReassemblyConfig{}, nil), 0, all)
	if len(out) != 4 {
		t.Fatalf("%d datagrams, want 4", len(out))
	}
	for _, o := range origs {
		if !slices.ContainsFunc(out, func(b []byte) bool { return bytes.Equal(b, o) }) {
			t.Fatal("a datagram came out wrong")
		}
	}
}

func TestReassemblyTimeoutAndQuote(t *testing.T) {
	var st Stats
	r := NewReassembler(ReassemblyConfig{Timeout: 30 * time.Second}, &st)
	rng := rand.New(rand.NewPCG(21, 22))
	withFirst := randDatagram(rng, 3000, 12)
	noFirst := randDatagram(rng, 3000, 0)
	binary.BigEndian.PutUint16(noFirst[4:], binary.BigEndian.Uint16(withFirst[4:])+1)
	addAll(t, r, at(time.Second), [][]byte{frag(withFirst, 0, 1000, false)})
	addAll(t, r, at(2*time.Second), [][]byte{frag(noFirst, 1000, 2000, false)})
	addAll(t, r, at(20*time.Second), [][]byte{frag(withFirst, 2000, 3000, false)}) // does not extend the timer
	if d := r.NextDeadline(); d != at(31*time.Second) {
		t.Fatalf("NextDeadline = %v, want 31s", d)
	}
	r.HandleTimeout(at(31*time.Second - 1))
	if r.Pending() != 2 || st.ReasmTimeout != 0 {
		t.Fatal("expired early")
	}
	r.HandleTimeout(at(31 * time.Second))
	if r.Pending() != 1 || st.ReasmTimeout != 1 || st.ReasmFails != 1 || r.NextDeadline() != at(32*time.Second) {
		t.Fatalf("after the first expiry: pending %d %+v", r.Pending(), st)
	}
	q, ok := r.PollExpired()
	// RFC 792: the first fragment's header (with its options) and the first
	// 8 bytes of its payload.
	if want := frag(withFirst, 0, 1000, false)[:32+8]; !ok || !bytes.Equal(q, want) {
		t.Fatalf("quote = %x, want %x", q, want)
	}
	// The quote makes a valid time exceeded message.
	var m [576]byte
	n := ErrorMessage(m[:], wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyTimeExceeded, 0, q)
	icmp, err := wire.ParseICMPv4(m[:n])
	if err != nil || !icmp.ChecksumValid() || !bytes.Equal(icmp.Payload(), q) {
		t.Fatalf("time exceeded from the quote: %v", err)
	}
	if _, ok := r.PollExpired(); ok {
		t.Fatal("second quote")
	}
	r.HandleTimeout(at(time.Hour))
	if _, ok := r.PollExpired(); ok {
		t.Fatal("quote for a datagram whose first fragment never came")
	}
	if st.ReasmTimeout != 2 || st.ReasmFails != 2 || r.Pending() != 0 || r.Bytes() != 0 || r.NextDeadline() != clock.Never {
		t.Fatalf("after all expired: %+v", st)
	}
}

func TestReassemblyMemoryCap(t *testing.T) {
	var st Stats
	// Each datagram holds its first fragment's 1480 bytes and a copy of
	// its header (with 8 bytes, for the time-exceeded quote): eight fit,
	// with less room left than the second fragment needs.
	const maxBytes = 15 << 10
	r := NewReassembler(ReassemblyConfig{MaxBytes: maxBytes, Timeout: time.Second}, &st)
	rng := rand.New(rand.NewPCG(23, 24))
	var first [][]byte
	refused := 0
	for i := 0; i < 100; i++ {
		o := randDatagram(rng, 3000, 0)
		binary.BigEndian.PutUint16(o[4:], uint16(i))
		f := frag(o, 0, 1480, false)
		fails := st.ReasmFails
		r.Add(0, wire.IPv4(f))
		checkHoles(t, r)
		if st.ReasmFails != fails {
			refused++
		} else {
			first = append(first, o)
		}
	}
	if refused == 0 || len(first) == 0 || r.Bytes() > maxBytes || r.Bytes()+datagramOverhead+bufCost(1480)+bufCost(28) <= maxBytes {
		t.Fatalf("refused %d accepted %d, Bytes %d", refused, len(first), r.Bytes())
	}
	// A datagram already in progress cannot grow past the cap either; but
	// one that fits completes.
	if out := addAll(t, r, 0, [][]byte{frag(first[0], 1480, 3000, false)}); len(out) != 0 {
		t.Fatal("grew past the cap")
	}
	// Timeouts free the memory, and new datagrams are accepted again.
	r.HandleTimeout(at(time.Second))
	if r.Bytes() != 0 {
		t.Fatalf("Bytes = %d after expiry", r.Bytes())
	}
	o := randDatagram(rng, 3000, 0)
	if out := addAll(t, r, at(time.Second), fragsOf(o, [][2]int{{0, 1480}, {1480, 2960}, {2960, 3000}})); len(out) != 1 {
		t.Fatal("no reassembly after memory was freed")
	}
}

func TestReassemblyOversize(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	// A fragment ending past 65535−20 cannot be part of any datagram.
	var st Stats
	r := NewReassembler(ReassemblyConfig{}, &st)
	o := randDatagram(rng, 100, 0)
	f := frag(o, 0, 16, false)
	binary.BigEndian.PutUint16(f[6:], 0x2000|65528/8)
	wire.IPv4(f).SetChecksum(0)
	wire.IPv4(f).SetChecksum(wire.Checksum(f[:20], 0))
	r.Add(0, wire.IPv4(f))
	if st.ReasmFails != 1 || r.Pending() != 0 {
		t.Fatalf("oversize fragment kept: %+v", st)
	}
	// The payload fits a 20-byte header but not the first fragment's 60:
	// found when the first fragment arrives, in either order.
	big := randDatagram(rng, 65535-60, 40)
	payloadEnd := 65535 - 60 + 24 // 65499: fits 65535 with 20+16, not with 60
	tail := make([]byte, 0, 2000)
	tail = append(tail, big[60+64000:]...)
	tail = append(tail, bytes.Repeat([]byte{7}, payloadEnd-(65535-60))...)
	var hf wire.IPv4Fields
	hf.Decode(wire.IPv4(big))
	hf.Options = nil
	hf.FragOffset = 64000
	last := buildIPv4(hf, tail)
	first := frag(big, 0, 8000, false)
	for _, order := range [][][]byte{{last, first}, {first, last}} {
		st = Stats{}
		r = NewReassembler(ReassemblyConfig{}, &st)
		addAll(t, r, 0, order)
		if st.ReasmFails != 1 || r.Pending() != 0 || r.Bytes() != 0 {
			t.Fatalf("oversize datagram kept: %+v pending %d", st, r.Pending())
		}
	}
}

func TestReassemblyRandomAgainstReference(t *testing.T) {
	// RFC 815 hole bookkeeping on random fragmentations of random payloads,
	// with random overlaps (equal bytes) and duplicates: the reassembled
	// bytes must equal the original, the moment the reference reassembler
	// completes too. Holes are checked after every fragment (addAll).
	rng := rand.New(rand.NewPCG(27, 28))
	for i := 0; i < 300; i++ {
		r := NewReassembler(ReassemblyConfig{}, nil)
		n := 9 + rng.IntN(9000)
		orig := randDatagram(rng, n, 4*rng.IntN(11))
		var fs [][]byte
		for range 1 + rng.IntN(3) { // several partitions, interleaved
			fs = append(fs, fragsOf(orig, randCuts(rng, n))...)
		}
		rng.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		k := firstComplete(fs)
		out := addAll(t, r, 0, fs[:k+1])
		if len(out) != 1 || !bytes.Equal(out[0], orig) {
			t.Fatalf("case %d (%d bytes, %d fragments): not reassembled at fragment %d", i, n, len(fs), k)
		}
	}
}

func TestReassemblyAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	r := NewReassembler(ReassemblyConfig{}, nil)
	var views []wire.IPv4
	for i := range 8 {
		o := randDatagram(rng, 4000, 0)
		binary.BigEndian.PutUint16(o[4:], uint16(i))
		for _, f := range fragsOf(o, [][2]int{{2960, 4000}, {0, 1480}, {1480, 2960}}) {
			views = append(views, wire.IPv4(f))
		}
	}
	run := func() {
		for _, v := range views {
			r.Add(0, v)
		}
	}
	for range 10 {
		run()
	}
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Errorf("reassembling 8 datagrams allocates %v times after warm-up", a)
	}
}

func BenchmarkReassembly3Fragments(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	o := randDatagram(rng, 4000, 0)
	fs := fragsOf(o, [][2]int{{0, 1480}, {1480, 2960}, {2960, 4000}})
	r := NewReassembler(ReassemblyConfig{}, nil)
	b.ReportAllocs()
	b.SetBytes(4000)
	for b.Loop() {
		for _, f := range fs {
			r.Add(0, wire.IPv4(f))
		}
	}
}

func TestReassemblyExpiredQuotesBounded(t *testing.T) {
	r := NewReassembler(ReassemblyConfig{}, nil)
	rng := rand.New(rand.NewPCG(31, 32))
	o := randDatagram(rng, 64, 0)
	for i := range maxExpired + 10 {
		f := frag(o, 0, 32, false)
		binary.BigEndian.PutUint16(f[4:], uint16(i))
		r.Add(0, wire.IPv4(f))
	}
	r.HandleTimeout(at(time.Hour))
	n := 0
	for {
		if _, ok := r.PollExpired(); !ok {
			break
		}
		n++
	}
	if n != maxExpired {
		t.Fatalf("%d quotes, want the cap %d", n, maxExpired)
	}
}
