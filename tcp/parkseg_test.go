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
		// parked: b stays parked with cfg; answered: how many probes
		// the record takes, at least.
		parked   func(cfg Config) bool
		answered int
	}{
		{"peer-keepalive", func(p *pair, r ref) {
			p.a.SetKeepAlive(p.now, true, time.Second, time.Second, 3)
		}, func(Config) bool { return true }, 25},
		{"zero-byte-probes", func(p *pair, r ref) {
			for i := range 14 {
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, uint32(i), 0)})
				p.runTo(p.now.Add(every))
			}
		}, func(Config) bool { return true }, 14},
		{"one-byte-probes", func(p *pair, r ref) {
			for i := range 14 {
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, []byte{0x5a}, uint32(i), 0)})
				p.runTo(p.now.Add(every))
			}
		}, func(Config) bool { return true }, 14},
		{"rate-limited", func(p *pair, r ref) {
			for i := range 3 {
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, 0)})
				p.runTo(p.now.Add(100 * time.Millisecond))
				p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, uint32(i), 0)})
				p.runTo(p.now.Add(every))
			}
		}, func(Config) bool { return true }, 6},
		{"rate-limited-one-byte", func(p *pair, r ref) {
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, []byte{1}, 0, 0)})
			p.runTo(p.now.Add(100 * time.Millisecond))
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, []byte{1}, 0, 0)})
			p.runTo(p.now.Add(every))
		}, func(cfg Config) bool { return cfg.NoSACK }, 1},
		{"rate-limited-then-unparked", func(p *pair, r ref) {
			// The record's answer is remembered when b unparks: the
			// Conn sends nothing to the second segment.
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, 0)})
			p.runTo(p.now.Add(100 * time.Millisecond))
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, -1)})
			p.runTo(p.now.Add(every))
		}, func(Config) bool { return false }, 1},
		{"paws-stale", func(p *pair, r ref) {
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, ^uint32(0), 0)})
			p.runTo(p.now.Add(every))
		}, func(cfg Config) bool { return cfg.NoTimestamps }, 0},
		{"wrong-ack", func(p *pair, r ref) {
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: probe(p, r, nil, 0, -1)})
			p.runTo(p.now.Add(every))
		}, func(Config) bool { return false }, 0},
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
					if p2.bRec == nil || st.Unparks != 0 {
						t.Errorf("b unparked (%d unparks), want it parked throughout", st.Unparks)
					}
					if int(st.KeepAliveParked) < tc.answered {
						t.Errorf("KeepAliveParked %d, want at least %d", st.KeepAliveParked, tc.answered)
					}
				} else if st.Unparks == 0 {
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

// runTo runs the pair to limit and sets its clock there, so that twins
// whose timers differ (one parked) are at the same time after.
func (p *pair) runTo(limit clock.Instant) {
	p.run(limit)
	p.now = max(p.now, limit)
}

// TestHandleParkedAllocs: the record's answer to a keep-alive probe
// allocates nothing (and it is an answer each time: the probes are a
// second apart, beyond the rate limit).
func TestHandleParkedAllocs(t *testing.T) {
	p := idlePair(t, "cubic", false)
	rec := p.b.Park(p.now)
	if rec == nil {
		t.Fatal("not parked")
	}
	e := p.b.env
	seg := wire.TCPFields{SrcPort: addrA.Port(), DstPort: addrB.Port(), Seq: rec.rcvNxt - 1, Ack: rec.snd, Flags: wire.TCPFlagACK, Window: 1000, Payload: []byte{1}}
	seg.Options.HasTimestamp, seg.Options.TSVal = true, rec.tsRecent
	dst := make([]byte, wire.TCPMaxHeaderLen)
	now := p.now
	answer := func() {
		now = now.Add(time.Second)
		if n, ok := e.HandleParked(now, rec, &seg, dst); !ok || n == 0 {
			t.Fatalf("probe not answered from the record: %d %v", n, ok)
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
