package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// TestSentQueueSplit: a record cut by split becomes consecutive records
// of at most the MSS, its FIN and PSH on the last, in the same list right
// after where it was, the records after it renumbered with their links
// intact, and the lists' byte counts unchanged.
func TestSentQueueSplit(t *testing.T) {
	var q sentQueue
	q.init()
	seq := wire.Seq(1000)
	// Six records of 1000 bytes (the last with a FIN), spread over both
	// lists: 1, 3 and 5 lost in that order (5 first), the rest in flight.
	for i := range 6 {
		end := seq.Add(1000)
		if i == 5 {
			end = end.Add(1)
		}
		_, r := q.push(seq, end, clock.Instant(i))
		if i == 5 {
			r.flags |= recFIN | recPSH
		}
		seq = end
	}
	for _, i := range []uint64{5, 1, 3} {
		q.markLost(i, q.at(i))
	}
	flightBytes, lostBytes := q.flight.bytes, q.lost.bytes
	q.split(1, 300) // 1000 bytes: four pieces (300, 300, 300, 100)
	q.split(8, 400) // the old record 5, now at 8: 1000 bytes and the FIN
	if q.flight.bytes != flightBytes || q.lost.bytes != lostBytes {
		t.Fatalf("bytes flight %d lost %d, want %d %d", q.flight.bytes, q.lost.bytes, flightBytes, lostBytes)
	}
	// Records cover the sequence space in order, without gaps.
	want := wire.Seq(1000)
	var lens []uint32
	for i := q.head; i < q.tail; i++ {
		r := q.at(i)
		if r.start != want {
			t.Fatalf("record %d starts at %d, want %d", i, r.start, want)
		}
		want = r.end
		lens = append(lens, r.len())
	}
	wantLens := []uint32{1000, 300, 300, 300, 100, 1000, 1000, 1000, 400, 400, 201}
	if len(lens) != len(wantLens) {
		t.Fatalf("lengths %v, want %v", lens, wantLens)
	}
	for i := range lens {
		if lens[i] != wantLens[i] {
			t.Fatalf("lengths %v, want %v", lens, wantLens)
		}
	}
	last := q.last()
	if last.flags&(recFIN|recPSH) != recFIN|recPSH || q.at(q.tail-2).flags&(recFIN|recPSH) != 0 {
		t.Errorf("FIN/PSH not only on the last piece: %v %v", q.at(q.tail-2).flags, last.flags)
	}
	// The lost list: the pieces of old 5 (now 8, 9, 10), then of old 1
	// (1..4), then old 3 (now 6).
	walk := func(l *recList) []uint64 {
		var out []uint64
		prev := noRec
		for i := l.head; i != noRec; i = q.at(i).next {
			if q.at(i).prev != prev {
				t.Fatalf("record %d: prev %d, want %d", i, q.at(i).prev, prev)
			}
			prev = i
			out = append(out, i)
		}
		if l.tail != prev {
			t.Fatalf("list tail %d, want %d", l.tail, prev)
		}
		return out
	}
	lost := walk(&q.lost)
	wantLost := []uint64{8, 9, 10, 1, 2, 3, 4, 6}
	flight := walk(&q.flight)
	wantFlight := []uint64{0, 5, 7}
	if len(lost) != len(wantLost) || len(flight) != len(wantFlight) {
		t.Fatalf("lost %v flight %v, want %v %v", lost, flight, wantLost, wantFlight)
	}
	for i := range lost {
		if lost[i] != wantLost[i] {
			t.Fatalf("lost %v, want %v", lost, wantLost)
		}
	}
	for i := range flight {
		if flight[i] != wantFlight[i] {
			t.Fatalf("flight %v, want %v", flight, wantFlight)
		}
	}
	if i := q.find(wire.Seq(1000 + 1000 + 650)); i != 3 {
		t.Errorf("find after split: %d, want 3", i)
	}
	q.free()
}

// blackHolePair is a transfer from a to b over a path that silently drops
// every segment with more than limit bytes of data (an MTU black hole:
// no ICMP). It returns the pair after the run and whether all of size
// bytes arrived within d.
//
// It also checks RFC 4821 §7.5 as it goes: no step that found a probe
// lost may start a recovery episode or shrink the congestion window.
func blackHolePair(t *testing.T, cfg Config, limit, size int, d time.Duration) (*pair, bool) {
	t.Helper()
	p := newPair(t, cfg, Config{RcvBuf: 1 << 20}, 10*time.Millisecond)
	p.connect()
	p.drop = func(from *Conn, seg *wire.TCPFields) bool { return len(seg.Payload) > limit }
	data := make([]byte, size)
	written, read := 0, 0
	buf := make([]byte, 64<<10)
	end := p.now.Add(d)
	for p.now < end && read < size {
		if written < size {
			n, _ := p.a.Write(data[written:])
			written += n
			p.flush(p.a)
		}
		before, cwnd := p.a.env.Stats, p.a.cc.Cwnd()
		if !p.step(end) {
			break
		}
		if st := p.a.env.Stats; st.MTUProbeFail > before.MTUProbeFail && st.Timeouts == before.Timeouts &&
			(st.Recoveries > before.Recoveries || p.a.cc.Cwnd() < cwnd) {
			t.Fatalf("at %v a lost probe was taken for congestion: recoveries %d→%d, cwnd %d→%d",
				time.Duration(p.now), before.Recoveries, st.Recoveries, cwnd, p.a.cc.Cwnd())
		}
		for {
			n, _ := p.b.Read(buf)
			if n == 0 {
				break
			}
			read += n
			p.flush(p.b)
		}
	}
	return p, read == size
}

// TestPLPMTUDBlackHole: RFC 4821 and RFC 8899 with the default mode
// (Linux's tcp_mtu_probing = 1). Segments over 1200 bytes vanish; the
// negotiated MSS is 1448. Full-sized segments time out until the MSS
// drops to the base MSS (1024), then probes search upward to within
// probeThreshold of the largest size that passes, the lost probes not
// taken for congestion (blackHolePair checks each: RFC 4821 §7.5). (RACK
// may still find a resent piece of a lost probe lost a round trip later:
// in virtual time it leaves at the same instant as new data sent just
// before it, and RFC 8985's tie-break by sequence number takes it for
// the older.) With probing
// off (tcp_mtu_probing = 0) the same transfer never gets past its first
// segment.
func TestPLPMTUDBlackHole(t *testing.T) {
	p, done := blackHolePair(t, Config{}, 1200, 2<<20, 2*time.Minute)
	st := p.a.env.Stats
	i := p.a.Info()
	if !done {
		t.Fatalf("transfer did not complete: %+v, stats %+v", i, st)
	}
	if st.MTUBlackHoles != 1 || st.MTUProbes == 0 || st.MTUProbeSuccess == 0 || st.MTUProbeFail == 0 {
		t.Errorf("black holes %d, probes %d (%d succeeded, %d failed)", st.MTUBlackHoles, st.MTUProbes, st.MTUProbeSuccess, st.MTUProbeFail)
	}
	if i.SndMSS > 1200 || i.SndMSS+probeThreshold < 1200 || i.PLPMTUD != PLPMTUDSearchComplete {
		t.Errorf("MSS %d (state %v), want within %d below 1200, search complete", i.SndMSS, i.PLPMTUD, probeThreshold)
	}

	off, done := blackHolePair(t, Config{MTUProbing: MTUProbingOff}, 1200, 2<<20, 2*time.Minute)
	if done || off.a.Info().BytesAcked != 0 || off.a.env.Stats.MTUBlackHoles != 0 {
		t.Errorf("with probing off: done %v, %d bytes acknowledged, %d black holes; want a stall",
			done, off.a.Info().BytesAcked, off.a.env.Stats.MTUBlackHoles)
	}
}

// TestPLPMTUDAlways: with tcp_mtu_probing = 2 a connection starts at the
// base MSS (RFC 8899's BASE), moves to SEARCH once that is acknowledged,
// probes up to the negotiated MSS on a path that takes it, and ends in
// SEARCH COMPLETE; ProbeInterval later the raise timer searches again.
func TestPLPMTUDAlways(t *testing.T) {
	cfg := Config{MTUProbing: MTUProbingAlways, ProbeInterval: time.Minute}
	p := newPair(t, cfg, Config{RcvBuf: 1 << 20}, 10*time.Millisecond)
	p.connect()
	if i := p.a.Info(); i.SndMSS != 1024 || i.PLPMTUD != PLPMTUDBase {
		t.Fatalf("after the handshake: MSS %d, %v; want 1024, base", i.SndMSS, i.PLPMTUD)
	}
	data := make([]byte, 4<<20)
	buf := make([]byte, 64<<10)
	written, read := 0, 0
	end := p.now.Add(time.Minute)
	for p.now < end && read < len(data) {
		if written < len(data) {
			n, _ := p.a.Write(data[written:])
			written += n
			p.flush(p.a)
		}
		if !p.step(end) {
			break
		}
		for n, _ := p.b.Read(buf); n > 0; n, _ = p.b.Read(buf) {
			read += n
			p.flush(p.b)
		}
	}
	i, st := p.a.Info(), p.a.env.Stats
	if read != len(data) || i.SndMSS+probeThreshold < 1448 || i.PLPMTUD != PLPMTUDSearchComplete || st.MTUProbeFail != 0 {
		t.Fatalf("read %d of %d; MSS %d, %v; probes %d, %d failed", read, len(data), i.SndMSS, i.PLPMTUD, st.MTUProbes, st.MTUProbeFail)
	}
	if !p.a.timers.armed(timerPLPMTU) {
		t.Fatal("no raise timer after the search completed")
	}
	p.run(p.a.timers.get(timerPLPMTU))
	if s := p.a.Info().PLPMTUD; s != PLPMTUDSearch {
		t.Errorf("after ProbeInterval: %v, want search", s)
	}
}

// TestMTUProbingModeText: the names and Linux's sysctl values.
func TestMTUProbingModeText(t *testing.T) {
	for in, want := range map[string]MTUProbingMode{"0": MTUProbingOff, "1": MTUProbingBlackHole, "2": MTUProbingAlways, "off": MTUProbingOff, "always": MTUProbingAlways} {
		var m MTUProbingMode
		if err := m.UnmarshalText([]byte(in)); err != nil || m != want {
			t.Errorf("%q: %v, %v", in, m, err)
		}
	}
	var m MTUProbingMode
	if err := m.UnmarshalText([]byte("3")); err == nil {
		t.Error("3 accepted")
	}
	for _, mode := range []MTUProbingMode{MTUProbingOff, MTUProbingBlackHole, MTUProbingAlways} {
		b, err := mode.MarshalText()
		var back MTUProbingMode
		if err != nil || back.UnmarshalText(b) != nil || back != mode {
			t.Errorf("%v: MarshalText %q, %v; read back as %v", mode, b, err, back)
		}
	}
}
