package tcp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// twin drives two identical senders in lockstep against one receiver: ref
// is polled with PollTransmit (one segment at a time), sup with
// PollTransmitBatch and a random maxSegs. Both get the same calls with the
// same arguments; what sup writes, cut by SplitSegment, must be byte for
// byte what ref writes, and their state must stay the same. Only ref's
// segments travel to the receiver (through random loss), and the
// receiver's answers go to both.
type twin struct {
	t        *testing.T
	r        *rand.Rand
	now      clock.Instant
	ref, sup *Conn
	peer     *Conn
	delay    time.Duration
	loss     float64
	queue    []twinSeg
	buf      []byte
	piece    []byte
	// What happened, to show the test covered what it means to.
	supers, pieces, segs int
	maxPieces            int
}

type twinSeg struct {
	at     clock.Instant
	toPeer bool
	data   []byte
}

func newTwin(t *testing.T, seed uint64, cfg, peerCfg Config, mtu int) *twin {
	w := &twin{
		t:     t,
		r:     rand.New(rand.NewPCG(seed, 99)),
		ref:   NewConn(NewEnv(cfg)),
		sup:   NewConn(NewEnv(cfg)),
		peer:  NewConn(NewEnv(peerCfg)),
		delay: time.Duration(1+seed%20) * time.Millisecond,
		buf:   make([]byte, 256<<10),
		piece: make([]byte, 70000),
	}
	ep := Endpoints{Local: addrA, Remote: addrB, ISS: wire.Seq(seed * 7919), MTU: mtu, TSOffset: uint32(seed)}
	for _, c := range []*Conn{w.ref, w.sup} {
		if err := c.Connect(w.now, ep); err != nil {
			t.Fatal(err)
		}
	}
	w.flushSender()
	// The receiver is "the listener": it opens on the SYN.
	syn := w.queue[0]
	w.queue = w.queue[1:]
	var f wire.TCPFields
	v, _ := wire.ParseTCP(syn.data)
	f.Decode(v)
	w.now = syn.at
	if err := w.peer.OpenPassive(w.now, Endpoints{Local: addrB, Remote: addrA, ISS: 77, MTU: mtu}, &f); err != nil {
		t.Fatal(err)
	}
	w.flushPeer()
	return w
}

// flushSender collects both senders' output and compares it.
func (w *twin) flushSender() {
	w.t.Helper()
	var ref [][]byte
	for {
		n := w.ref.PollTransmit(w.now, w.buf)
		if n == 0 {
			break
		}
		ref = append(ref, append([]byte(nil), w.buf[:n]...))
	}
	var sup [][]byte
	for {
		maxSegs := 1 + w.r.IntN(8)
		// Sometimes a buffer too short for maxSegs full segments.
		dst := w.buf
		if w.r.IntN(8) == 0 {
			dst = w.buf[:w.sup.MaxSegmentLen()+w.r.IntN(3*int(w.sup.sndMSS)+1)]
		}
		tx := w.sup.PollTransmitBatch(w.now, dst, maxSegs)
		if tx.Len == 0 {
			break
		}
		if tx.Segments < 1 || tx.Segments > maxSegs || tx.HeaderLen+tx.SegmentSize > tx.Len || tx.Len > len(dst) {
			w.t.Fatalf("bad Transmit %+v for maxSegs %d, buffer %d", tx, maxSegs, len(dst))
		}
		count, err := SegmentCount(dst[:tx.Len], max(tx.SegmentSize, 1))
		if err != nil || count != tx.Segments {
			w.t.Fatalf("SegmentCount %d, %v; Transmit %+v", count, err, tx)
		}
		for i := range count {
			k, err := SplitSegment(w.piece, dst[:tx.Len], max(tx.SegmentSize, 1), i)
			if err != nil {
				w.t.Fatal(err)
			}
			sup = append(sup, append([]byte(nil), w.piece[:k]...))
		}
		if tx.Segments > 1 {
			w.supers++
			w.pieces += tx.Segments
			w.maxPieces = max(w.maxPieces, tx.Segments)
		}
	}
	if len(ref) != len(sup) {
		w.t.Fatalf("at %v: %d segments one at a time, %d from super-segments\n%s", time.Duration(w.now), len(ref), len(sup), dumpSegs(ref, sup))
	}
	for i := range ref {
		if !bytes.Equal(ref[i], sup[i]) {
			w.t.Fatalf("at %v: segment %d differs\n%s", time.Duration(w.now), i, dumpSegs(ref, sup))
		}
	}
	w.same()
	w.segs += len(ref)
	for _, s := range ref {
		if w.r.Float64() < w.loss {
			continue
		}
		w.queue = append(w.queue, twinSeg{at: w.now.Add(w.delay), toPeer: true, data: s})
	}
}

// same checks that the two senders agree on everything they report.
func (w *twin) same() {
	w.t.Helper()
	if a, b := w.ref.Info(), w.sup.Info(); a != b {
		w.t.Fatalf("at %v: Info differs:\n one at a time %+v\n super         %+v", time.Duration(w.now), a, b)
	}
	if a, b := w.ref.NextDeadline(), w.sup.NextDeadline(); a != b {
		w.t.Fatalf("at %v: NextDeadline %v vs %v", time.Duration(w.now), a, b)
	}
	if a, b := w.ref.env.Stats, w.sup.env.Stats; a != b {
		w.t.Fatalf("at %v: Stats differ:\n%+v\n%+v", time.Duration(w.now), a, b)
	}
}

func dumpSegs(ref, sup [][]byte) string {
	var b bytes.Buffer
	for i := range max(len(ref), len(sup)) {
		for _, l := range []struct {
			name string
			s    [][]byte
		}{{"ref", ref}, {"sup", sup}} {
			if i >= len(l.s) {
				continue
			}
			var f wire.TCPFields
			v, _ := wire.ParseTCP(l.s[i])
			f.Decode(v)
			fmt.Fprintf(&b, "%d %s: seq %d ack %d %v win %d len %d\n", i, l.name, f.Seq, f.Ack, f.Flags, f.Window, len(f.Payload))
		}
	}
	return b.String()
}

func (w *twin) flushPeer() {
	for {
		n := w.peer.PollTransmit(w.now, w.buf)
		if n == 0 {
			return
		}
		if w.r.Float64() < w.loss/2 {
			continue
		}
		w.queue = append(w.queue, twinSeg{at: w.now.Add(w.delay), data: append([]byte(nil), w.buf[:n]...)})
	}
}

// step handles the next arrival or deadline before limit.
func (w *twin) step(limit clock.Instant) bool {
	next := clock.Min(w.ref.NextDeadline(), w.peer.NextDeadline())
	qi := -1
	for i, q := range w.queue {
		if q.at <= next && (qi < 0 || q.at < w.queue[qi].at) {
			qi, next = i, q.at
		}
	}
	if next > limit || next == clock.Never {
		return false
	}
	w.now = max(w.now, next)
	if qi >= 0 {
		q := w.queue[qi]
		w.queue = append(w.queue[:qi], w.queue[qi+1:]...)
		var f wire.TCPFields
		v, err := wire.ParseTCP(q.data)
		if err != nil {
			w.t.Fatal(err)
		}
		f.Decode(v)
		if q.toPeer {
			w.peer.HandleSegment(w.now, &f)
			w.flushPeer()
		} else {
			w.ref.HandleSegment(w.now, &f)
			w.sup.HandleSegment(w.now, &f)
			w.flushSender()
		}
		return true
	}
	if w.ref.NextDeadline() <= w.now {
		w.ref.HandleTimeout(w.now)
		w.sup.HandleTimeout(w.now)
		w.flushSender()
	}
	if w.peer.NextDeadline() <= w.now {
		w.peer.HandleTimeout(w.now)
		w.flushPeer()
	}
	return true
}

// TestSuperSegments checks PollTransmitBatch and SplitSegment together:
// over random transfers (writes of random sizes, Nagle on and off, a
// receiver reading at random, so windows open and close; loss, so fast
// retransmits, NewReno and SACK recovery and RTOs happen; a FIN at the
// end), the segments cut from every super-segment are byte for byte the
// ones PollTransmit writes one at a time in the same situation, and the
// two senders stay in the same state (Info, NextDeadline, counters).
func TestSuperSegments(t *testing.T) {
	var supers, pieces, retrans, fins, maxPieces int
	for seed := uint64(1); seed <= 60; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		cfg := Config{
			NoSACK:       seed%3 == 0,
			NoTimestamps: seed%4 == 0,
			SndBuf:       64<<10 + r.IntN(512<<10),
		}
		peerCfg := Config{RcvBuf: 8<<10 + r.IntN(256<<10), NoWindowScale: seed%5 == 0}
		mtu := []int{1500, 576, 9000, 1280}[seed%4]
		w := newTwin(t, seed, cfg, peerCfg, mtu)
		w.loss = []float64{0, 0.01, 0.05, 0.15}[seed%4]
		noDelay := seed%2 == 0
		w.ref.SetNoDelay(noDelay)
		w.sup.SetNoDelay(noDelay)
		total := 200<<10 + r.IntN(2<<20)
		written := 0
		rbuf := make([]byte, 64<<10)
		end := w.now.Add(20 * time.Minute)
		closed := false
		for w.now < end {
			if written < total && r.IntN(3) == 0 {
				p := make([]byte, 1+r.IntN(min(40000, total-written)))
				for i := range p {
					p[i] = byte(written + i)
				}
				n1, err1 := w.ref.Write(p)
				n2, err2 := w.sup.Write(p)
				if n1 != n2 || err1 != err2 {
					t.Fatalf("seed %d: Write %d, %v vs %d, %v", seed, n1, err1, n2, err2)
				}
				written += n1
				if r.IntN(20) == 0 {
					w.ref.SetNoDelay(!noDelay)
					w.sup.SetNoDelay(!noDelay)
					noDelay = !noDelay
				}
				w.flushSender()
			}
			if written == total && !closed {
				w.ref.CloseWrite()
				w.sup.CloseWrite()
				closed = true
				w.flushSender()
			}
			if r.IntN(4) == 0 {
				w.peer.Read(rbuf[:r.IntN(len(rbuf))])
				w.flushPeer()
			}
			if !w.step(end) {
				if closed {
					break
				}
			}
		}
		if w.ref.State() != FinWait2 && w.ref.State() != TimeWait && w.ref.State() != Closed {
			t.Fatalf("seed %d: transfer did not finish: %v, %d of %d written", seed, w.ref.State(), written, total)
		}
		supers += w.supers
		pieces += w.pieces
		maxPieces = max(maxPieces, w.maxPieces)
		retrans += int(w.ref.Info().TotalRetrans)
		if w.ref.finQueued && w.ref.sndUna.GreaterThan(w.ref.finSeq) {
			fins++
		}
	}
	t.Logf("%d super-segments of %d segments (up to %d), %d retransmissions, %d FINs acknowledged", supers, pieces, maxPieces, retrans, fins)
	if supers < 1000 || maxPieces < 8 || retrans < 100 || fins < 50 {
		t.Errorf("the transfers did not cover what the test is for: %d super-segments (up to %d pieces), %d retransmissions, %d FINs", supers, maxPieces, retrans, fins)
	}
}

// TestSplitSegment checks the cutting rules on a hand-made super-segment
// (sequence numbers, FIN and PSH on the last piece, CWR on the first,
// lengths, the header copied) and every error.
func TestSplitSegment(t *testing.T) {
	f := wire.TCPFields{SrcPort: 1, DstPort: 2, Seq: 0xffff_fff0, Ack: 7, Flags: wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagFIN | wire.TCPFlagCWR, Window: 100}
	f.Options.HasTimestamp, f.Options.TSVal, f.Options.TSEcr = true, 5, 6
	hl := f.HeaderLen()
	super := make([]byte, hl+25)
	f.EncodeHeader(super[:hl])
	for i := range 25 {
		super[hl+i] = byte(i)
	}
	n, err := SegmentCount(super, 10)
	if err != nil || n != 3 {
		t.Fatalf("SegmentCount = %d, %v, want 3", n, err)
	}
	dst := make([]byte, 100)
	for i, want := range []struct {
		seq   wire.Seq
		flags wire.TCPFlags
		data  []byte
	}{
		{0xffff_fff0, wire.TCPFlagACK | wire.TCPFlagCWR, super[hl : hl+10]},
		{0xffff_fffa, wire.TCPFlagACK, super[hl+10 : hl+20]},
		{4, wire.TCPFlagACK | wire.TCPFlagPSH | wire.TCPFlagFIN, super[hl+20:]},
	} {
		k, err := SplitSegment(dst, super, 10, i)
		if err != nil {
			t.Fatal(err)
		}
		v, err := wire.ParseTCP(dst[:k])
		if err != nil {
			t.Fatal(err)
		}
		var g wire.TCPFields
		if err := g.Decode(v); err != nil {
			t.Fatal(err)
		}
		if g.Seq != want.seq || g.Flags != want.flags || !bytes.Equal(g.Payload, want.data) ||
			g.Ack != 7 || g.Window != 100 || g.Options.TSVal != 5 || g.SrcPort != 1 {
			t.Errorf("piece %d: %+v", i, g)
		}
	}
	// A bare header is one segment, unchanged.
	if n, err := SegmentCount(super[:hl], 10); n != 1 || err != nil {
		t.Errorf("bare header: %d, %v", n, err)
	}
	if k, err := SplitSegment(dst, super[:hl], 10, 0); k != hl || err != nil || !bytes.Equal(dst[:hl], super[:hl]) {
		t.Errorf("bare header: %d, %v", k, err)
	}
	for _, c := range []struct {
		dst, super []byte
		size, i    int
		want       error
	}{
		{dst, super, 0, 0, errSegSize},
		{dst, super[:10], 10, 0, errSegShort},
		{dst, append([]byte{}, super[:12]...), 10, 0, errSegShort},
		{dst, super, 10, 3, errSegIndex},
		{dst, super, 10, -1, errSegIndex},
		{dst[:hl+5], super, 10, 0, errSegDst},
	} {
		if _, err := SplitSegment(c.dst, c.super, c.size, c.i); err != c.want {
			t.Errorf("SplitSegment(len %d, len %d, %d, %d) = %v, want %v", len(c.dst), len(c.super), c.size, c.i, err, c.want)
		}
	}
	bad := append([]byte{}, super...)
	bad[12] = 0xf0 // header length 60, beyond the 45-byte segment
	if _, err := SegmentCount(bad[:45], 10); err != errSegShort {
		t.Errorf("header longer than the segment: %v", err)
	}
}

// TestZeroAllocsSuperSegments: a bulk transfer whose sender hands out
// super-segments of up to eight segments (PollTransmitBatch), cut by
// SplitSegment and delivered to the receiver, whose ACKs come back,
// allocates nothing once warm.
func TestZeroAllocsSuperSegments(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	// Buffers large enough for a round's 256 KiB at once.
	big := Config{SndBuf: 4 << 20, RcvBuf: 4 << 20}
	p := newPair(t, big, big, 0)
	p.connect()
	snd, rcv := p.a, p.b
	data := make([]byte, 256<<10)
	super := make([]byte, snd.MaxSegmentLen()+8*int(snd.sndMSS))
	piece := make([]byte, snd.MaxSegmentLen())
	ack := make([]byte, rcv.MaxSegmentLen())
	rbuf := make([]byte, 256<<10)
	var f wire.TCPFields
	now := p.now
	pieces, received, supers := 0, 0, 0
	round := func() {
		now = now.Add(time.Millisecond)
		snd.Write(data)
		for {
			tx := snd.PollTransmitBatch(now, super, 8)
			if tx.Len == 0 {
				break
			}
			if tx.Segments > 1 {
				supers++
			}
			for i := range tx.Segments {
				n, err := SplitSegment(piece, super[:tx.Len], tx.SegmentSize, i)
				if err != nil {
					panic(err)
				}
				v, _ := wire.ParseTCP(piece[:n])
				f.Decode(v)
				rcv.HandleSegment(now, &f)
				pieces++
			}
			for {
				k, _ := rcv.Read(rbuf)
				received += k
				if k == 0 {
					break
				}
			}
			for {
				n := rcv.PollTransmit(now, ack)
				if n == 0 {
					break
				}
				v, _ := wire.ParseTCP(ack[:n])
				f.Decode(v)
				snd.HandleSegment(now, &f)
			}
		}
	}
	for range 50 {
		round()
	}
	pieces, received, supers = 0, 0, 0
	if allocs := testing.AllocsPerRun(50, round); allocs != 0 {
		t.Errorf("%.2f allocations per round", allocs)
	}
	if received < 50*len(data) || pieces < 50*len(data)/int(snd.sndMSS) || supers < pieces/16 {
		t.Errorf("%d bytes in %d segments, %d super-segments: not the transfer meant", received, pieces, supers)
	}
	t.Logf("%d bytes in %d segments, %d super-segments", received, pieces, supers)
}
