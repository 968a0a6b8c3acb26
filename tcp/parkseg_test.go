package tcp

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// TestParkedKeepAliveFromRecord: the peer's keep-alive probes, 0-byte
// (as this stack and Linux send them) and 1-byte (as BSD's), for many
// intervals, with timestamps and SACK on and off, are answered by the
// parked record (Env.HandleParked) with exactly the segments the twin
// that never parked sends, and b stays parked throughout (no unpark,
// Stats.KeepAliveParked counting every probe); a second probe within the
// out-of-window rate limit gets no answer from either; a probe the record
// may not take (a PAWS failure, a 1-byte probe within the rate limit with
// SACK, whose D-SACK only the Conn keeps, a wrong SEG.ACK) unparks b,
// and then too the segments are the same. b's TCP_INFO and counters are
// compared after.
func TestParkedKeepAliveFromRecord(t *testing.T) {
	const every = 2 * time.Second
	probe := func(p *pair, r ref, payload []byte, tsDelta uint32, ack int) []byte {
		seq := r.info.RcvNxt - 1
		f := wire.TCPFields{SrcPort: addrA.Port(), DstPort: addrB.Port(), Seq: seq, Ack: r.info.SndUna + wire.Seq(ack), Flags: wire.TCPFlagACK, Window: 1000, Payload: payload}
		if r.info.Timestamps {
			f.Options.HasTimestamp = true
			f.Options.TSVal = r.tsRecent + tsDelta
		}
		buf := make([]byte, 1500)
		return buf[:f.Encode(buf)]
	}
	cases := []struct {
		name string
		// stimulus runs the pairs from start to start+30 s.
		stimulus func(p *pair, r ref)
		// parked: b stays parked with cfg (but for the unparks of the
		// stimulus's own calls); answered: how many keep-alive segments
		// the record takes or sends, at least.
		parked   func(cfg Config) bool
		answered int
		calls    int
	}{
		{"peer-keepalive", func(p *pair, r ref) {
			p.a.SetKeepAlive(p.now, true, time.Second, time.Second, 3)
		}, func(Config) bool { return true }, 25, 0},
		{"zero-byte-probes", func(p *pair, r ref) {
			for i := range 14 {
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, uint32(i), 0)})
				p.runTo(p.now.Add(every))
			}
		}, func(Config) bool { return true }, 14, 0},
		{"one-byte-probes", func(p *pair, r ref) {
			for i := range 14 {
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, []byte{0x5a}, uint32(i), 0)})
				p.runTo(p.now.Add(every))
			}
		}, func(Config) bool { return true }, 14, 0},
		{"rate-limited", func(p *pair, r ref) {
			for i := range 3 {
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, 0)})
				p.runTo(p.now.Add(100 * time.Millisecond))
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, uint32(i), 0)})
				p.runTo(p.now.Add(every))
			}
		}, func(Config) bool { return true }, 6, 0},
		{"rate-limited-one-byte", func(p *pair, r ref) {
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, []byte{1}, 0, 0)})
			p.runTo(p.now.Add(100 * time.Millisecond))
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, []byte{1}, 0, 0)})
			p.runTo(p.now.Add(every))
		}, func(cfg Config) bool { return cfg.NoSACK }, 1, 0},
		{"rate-limited-then-unparked", func(p *pair, r ref) {
			// The record's answer is remembered when b unparks: the
			// Conn sends nothing to the second segment.
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, 0)})
			p.runTo(p.now.Add(100 * time.Millisecond))
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, -1)})
			p.runTo(p.now.Add(every))
		}, func(Config) bool { return false }, 1, 0},
		{"own-keepalive", func(p *pair, r ref) {
			// b's own probes, sent by the record, and a's answers,
			// taken by it.
			ownKeepAlive(p, 3*time.Second)
		}, func(Config) bool { return true }, 16, 1},
		{"both-keepalive", func(p *pair, r ref) {
			p.a.SetKeepAlive(p.now, true, 2*time.Second, time.Second, 3)
			ownKeepAlive(p, 3*time.Second)
		}, func(Config) bool { return true }, 30, 1},
		{"own-keepalive-unanswered-once", func(p *pair, r ref) {
			// a's first answer is lost: b probes again an interval
			// later, keeping the count of unanswered probes.
			lost := false
			p.drop = func(from *Conn, seg *wire.TCPFields) bool {
				if from == p.a && !lost {
					lost = true
					return true
				}
				return false
			}
			ownKeepAlive(p, 3*time.Second)
		}, func(Config) bool { return true }, 16, 1},
		{"own-keepalive-dead-peer", func(p *pair, r ref) {
			// No answer at all: the record sends the probes, and the
			// Conn resets the connection when they are used up.
			p.drop = func(from *Conn, seg *wire.TCPFields) bool { return from == p.a }
			ownKeepAlive(p, 3*time.Second)
		}, func(Config) bool { return false }, 3, 1},
		{"paws-stale", func(p *pair, r ref) {
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, ^uint32(0), 0)})
			p.runTo(p.now.Add(every))
		}, func(cfg Config) bool { return cfg.NoTimestamps }, 0, 0},
		{"wrong-ack", func(p *pair, r ref) {
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, -1)})
			p.runTo(p.now.Add(every))
		}, func(Config) bool { return false }, 0, 0},
	}
	for _, opts := range []struct{ noTS, noSACK bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		cfg := parkCfg("cubic", opts.noSACK)
		cfg.NoTimestamps = opts.noTS
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/ts=%v,sack=%v", tc.name, !opts.noTS, !opts.noSACK), func(t *testing.T) {
				p1, p2 := twinPairsCfg(t, cfg)
				if p1.now != p2.now {
					t.Fatalf("twins at %v and %v", p1.now, p2.now)
				}
				r := ref{info: p1.b.Info(), tsRecent: p1.b.tsRecent}
				if r.info.Timestamps == opts.noTS || r.info.SACK == opts.noSACK {
					t.Fatalf("options: %+v", r.info)
				}
				markA1, markB1 := len(p1.sent[p1.a]), len(p1.sent[p1.b])
				markA2, markB2 := len(p2.sent[p2.a]), len(p2.sent[p2.b])
				end := p1.now.Add(30 * time.Second)
				for _, p := range []*pair{p1, p2} {
					tc.stimulus(p, r)
					p.runTo(end)
				}
				segsB1, segsB2 := p1.sent[p1.b][markB1:], p2.sent[p2.b][markB2:]
				segsA1, segsA2 := p1.sent[p1.a][markA1:], p2.sent[p2.a][markA2:]
				if len(segsB1) == 0 {
					t.Fatal("the unparked b sent nothing: the case tests nothing")
				}
				if !reflect.DeepEqual(segsB1, segsB2) {
					t.Errorf("parked b sent\n%v\nunparked b sent\n%v", segsB2, segsB1)
				}
				if !reflect.DeepEqual(segsA1, segsA2) {
					t.Errorf("a facing the parked b sent\n%v\nfacing the unparked one\n%v", segsA2, segsA1)
				}
				dsacks := 0
				for _, s := range segsB2 {
					dsacks += int(s.Options.NumSACK)
				}
				st := p2.b.env.Stats
				if wantParked := tc.parked(cfg); wantParked {
					if p2.bRec == nil || st.Unparks != uint64(tc.calls) {
						t.Errorf("b unparked (%d unparks), want it parked throughout", st.Unparks)
					}
					if int(st.KeepAliveParked) < tc.answered {
						t.Errorf("KeepAliveParked %d, want at least %d", st.KeepAliveParked, tc.answered)
					}
				} else if st.Unparks == uint64(tc.calls) {
					t.Errorf("b never unparked: the record took what it may not")
				}
				if p2.bRec != nil {
					p2.unparkB()
				}
				if i1, i2 := p1.b.Info(), p2.b.Info(); i1 != i2 {
					t.Errorf("TCP_INFO after: parked %+v\nunparked %+v", i2, i1)
				}
				s1, s2 := p1.b.env.Stats, p2.b.env.Stats
				for _, s := range []*Stats{&s1, &s2} {
					s.Parked, s.Parks, s.Unparks, s.KeepAliveParked = 0, 0, 0, 0
				}
				if s1 != s2 {
					t.Errorf("counters: parked b %+v\nunparked b %+v", s2, s1)
				}
				t.Logf("b sent %d segments (%d D-SACK blocks); parks %d, unparks %d, taken parked %d", len(segsB2), dsacks, st.Parks, st.Unparks, st.KeepAliveParked)
			})
		}
	}
}

// ownKeepAlive turns b's keep-alive on (idle time idle, interval 1 s,
// three probes), unparking it for the call as its owner does.
func ownKeepAlive(p *pair, idle time.Duration) {
	if p.bRec != nil {
		p.unparkB()
	}
	p.b.SetKeepAlive(p.now, true, idle, time.Second, 3)
}

// runTo runs the pair to limit and sets its clock there, so that twins
// whose timers differ (one parked) are at the same time after.
func (p *pair) runTo(limit clock.Instant) {
	p.run(limit)
	p.now = max(p.now, limit)
}

// parkB parks p's end b and returns its record and Env, failing the test
// if it does not park.
func parkB(t *testing.T, p *pair) (*Parked, *Env) {
	t.Helper()
	rec := p.b.Park(p.now)
	if rec == nil {
		t.Fatal("not parked")
	}
	return rec, p.b.env
}

// probeTo returns a keep-alive probe from a to the parked record rec
// (SEG.SEQ = RCV.NXT − 1, SEG.ACK = SND.NXT, no data, a timestamp that
// passes PAWS), as RFC 9293 §3.8.4 has one sent.
func probeTo(rec *Parked) wire.TCPFields {
	seg := wire.TCPFields{SrcPort: addrA.Port(), DstPort: addrB.Port(), Seq: rec.rcvNxt - 1, Ack: rec.snd, Flags: wire.TCPFlagACK, Window: 1000}
	seg.Options.HasTimestamp, seg.Options.TSVal = true, rec.tsRecent
	return seg
}

// TestHandleParkedAllocs: the record's answer to a keep-alive probe
// allocates nothing (and it is an answer each time: the probes are a
// second apart, beyond the rate limit).
func TestHandleParkedAllocs(t *testing.T) {
	p := idlePair(t, "cubic", false)
	rec, e := parkB(t, p)
	seg := probeTo(rec)
	seg.Payload = []byte{1}
	dst := make([]byte, wire.TCPMaxHeaderLen)
	now := p.now
	answer := func() {
		now = now.Add(time.Second)
		if send, ok := e.HandleParked(now, rec, &seg); !ok || !send {
			t.Fatalf("probe not answered from the record: %v %v", send, ok)
		}
		if n := e.PollParked(now, rec, addrB.Port(), addrA.Port(), dst); n == 0 {
			t.Fatal("no answer to poll")
		}
	}
	answer()
	if allocs := testing.AllocsPerRun(1000, answer); allocs != 0 {
		t.Errorf("HandleParked: %v allocations, want 0", allocs)
	}
	if e.Stats.KeepAliveParked < 1001 || e.Stats.Unparks != 0 {
		t.Errorf("KeepAliveParked %d, Unparks %d", e.Stats.KeepAliveParked, e.Stats.Unparks)
	}
}

// TestTimeoutParkedAllocs: the record's own keep-alive probe and its
// taking of the answer allocate nothing (and both are done by the
// record each time).
func TestTimeoutParkedAllocs(t *testing.T) {
	p := idlePair(t, "cubic", false)
	p.b.SetKeepAlive(p.now, true, 15*time.Second, 15*time.Second, 3)
	p.b.TakeEvents()
	rec, e := parkB(t, p)
	ack := wire.TCPFields{SrcPort: addrA.Port(), DstPort: addrB.Port(), Seq: rec.rcvNxt, Ack: rec.snd, Flags: wire.TCPFlagACK,
		Window: uint16(rec.sndWnd >> rec.sndWScale)}
	ack.Options.HasTimestamp, ack.Options.TSVal = true, rec.tsRecent
	dst := make([]byte, wire.TCPMaxHeaderLen)
	round := func() {
		now := rec.NextDeadline()
		if send, ok := e.TimeoutParked(now, rec); !ok || !send {
			t.Fatalf("no probe from the record at %v: %v %v", now, send, ok)
		}
		if n := e.PollParked(now, rec, addrB.Port(), addrA.Port(), dst); n == 0 {
			t.Fatal("no probe to poll")
		}
		ack.Options.TSVal++
		if send, ok := e.HandleParked(now.Add(time.Millisecond), rec, &ack); !ok || send {
			t.Fatalf("the answer not taken by the record: %v %v", send, ok)
		}
		// The timer finds the peer heard from and re-arms for the idle
		// time after that.
		if send, ok := e.TimeoutParked(rec.NextDeadline(), rec); !ok || send {
			t.Fatalf("a probe though the peer answered: %v %v", send, ok)
		}
	}
	round()
	if allocs := testing.AllocsPerRun(1000, round); allocs != 0 {
		t.Errorf("TimeoutParked and the answer: %v allocations, want 0", allocs)
	}
	if e.Stats.KeepAliveProbes < 1001 || e.Stats.Unparks != 0 || rec.keepProbes() != 0 {
		t.Errorf("KeepAliveProbes %d, Unparks %d, probes unanswered %d", e.Stats.KeepAliveProbes, e.Stats.Unparks, rec.keepProbes())
	}
}

// TestOOWQueueBurst: a burst of probe answers (connections set up
// together probe together) fills the Env's rate-limit queue; each record
// is rate-limited within InvalidRateLimit of its answer and answers again
// after; once the burst has expired, the queue is made small again.
func TestOOWQueueBurst(t *testing.T) {
	p := idlePair(t, "cubic", false)
	rec, e := parkB(t, p)
	const n = 5000
	recs := make([]*Parked, n)
	for i := range recs {
		recs[i] = new(Parked)
		*recs[i] = *rec
	}
	seg := probeTo(rec)
	dst := make([]byte, wire.TCPMaxHeaderLen)
	t0 := p.now.Add(time.Second)
	for i, r := range recs {
		if send, ok := e.HandleParked(t0.Add(time.Duration(i)*time.Microsecond), r, &seg); !ok || !send {
			t.Fatalf("record %d: no answer (%v %v)", i, send, ok)
		}
		e.PollParked(t0, r, addrB.Port(), addrA.Port(), dst)
	}
	if len(e.oow.at) != n || e.oow.peak != n {
		t.Fatalf("queue holds %d (peak %d), want %d", len(e.oow.at), e.oow.peak, n)
	}
	// Within the limit: rate-limited, no answer, still parked.
	limited := e.Stats.OOWRateLimited
	if send, ok := e.HandleParked(t0.Add(100*time.Millisecond), recs[n-1], &seg); !ok || send {
		t.Errorf("a second probe within the limit: %v %v, want no answer from the record", send, ok)
	}
	if e.Stats.OOWRateLimited != limited+1 {
		t.Errorf("OOWRateLimited %d, want %d", e.Stats.OOWRateLimited, limited+1)
	}
	// After it: answered, and the burst expired.
	if send, ok := e.HandleParked(t0.Add(2*time.Second), recs[0], &seg); !ok || !send {
		t.Errorf("a probe after the limit: %v %v, want an answer", send, ok)
	}
	if len(e.oow.at) != 1 || e.oow.peak > oowSmall || cap(e.oow.q) > oowSmall {
		t.Errorf("after the burst: %d held, peak %d, queue capacity %d", len(e.oow.at), e.oow.peak, cap(e.oow.q))
	}
	for i, r := range recs[1:] {
		if r.flags.has(pfOOWAck) {
			t.Fatalf("record %d still flagged after its limit", i+1)
		}
	}
}

// TestParkedOwedHandedToConn: what a record owes and its owner has not
// polled yet (an answer with or without a D-SACK, a probe) goes to the
// Conn when it is unparked first: the Conn sends the segments the twin
// that never parked sends.
func TestParkedOwedHandedToConn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		probe   bool // b's own keep-alive timer
	}{{"answer", nil, false}, {"answer-dsack", []byte{1}, false}, {"own-probe", nil, true}} {
		t.Run(tc.name, func(t *testing.T) {
			p1, p2 := twinPairs(t)
			r := ref{info: p1.b.Info(), tsRecent: p1.b.tsRecent}
			var seg wire.TCPFields
			v, _ := wire.ParseTCP(p1.craft(r, r.info.RcvNxt-1, r.info.SndUna, wire.TCPFlagACK, tc.payload))
			seg.Decode(v)
			if tc.probe {
				for _, p := range []*pair{p1, p2} {
					ownKeepAlive(p, 3*time.Second)
					p.runTo(p.now.Add(2 * time.Second)) // b parks again
				}
				if p2.bRec == nil {
					t.Fatal("b not parked again")
				}
			}
			mark1, mark2 := len(p1.sent[p1.b]), len(p2.sent[p2.b])
			now := p1.now.Add(10 * time.Second)
			p1.now, p2.now = now, now
			if tc.probe {
				p1.b.HandleTimeout(now)
				if send, ok := p2.b.env.TimeoutParked(now, p2.bRec); !ok || !send {
					t.Fatalf("no probe owed: %v %v", send, ok)
				}
			} else {
				p1.b.HandleSegment(now, &seg)
				if send, ok := p2.b.env.HandleParked(now, p2.bRec, &seg); !ok || !send {
					t.Fatalf("no answer owed: %v %v", send, ok)
				}
			}
			p2.unparkB() // before the owner polls
			p1.flush(p1.b)
			p2.flush(p2.b)
			s1, s2 := p1.sent[p1.b][mark1:], p2.sent[p2.b][mark2:]
			if len(s1) == 0 || !reflect.DeepEqual(s1, s2) {
				t.Errorf("unparked with output owed, b sent\n%v\nthe twin\n%v", s2, s1)
			}
		})
	}
}
