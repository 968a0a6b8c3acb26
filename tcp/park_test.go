package tcp

import (
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// parkCfg is the configuration of the parking tests: parking on, as the
// stack has it.
func parkCfg(cc string, noSACK bool) Config {
	return Config{ParkIdle: time.Second, Congestion: cc, NoSACK: noSACK}
}

// idlePair returns a pair that exchanged data both ways (with a loss, so
// that recovery and the controller have state) and then sat idle for 5 s
// with its events taken: both ends are parkable.
func idlePair(t *testing.T, cc string, noSACK bool) *pair {
	t.Helper()
	return idlePairCfg(t, parkCfg(cc, noSACK))
}

// idlePairCfg is idlePair with cfg at both ends.
func idlePairCfg(t *testing.T, cfg Config) *pair {
	t.Helper()
	p := newPair(t, cfg, cfg, 5*time.Millisecond)
	n := 0
	p.drop = func(from *Conn, seg *wire.TCPFields) bool {
		if len(seg.Payload) > 0 {
			n++
			return n == 7 // one data segment lost: a recovery episode
		}
		return false
	}
	p.connect()
	buf := make([]byte, 64<<10)
	for i := range 3 {
		p.a.Write(payloadBytes(uint64(i), 40000))
		p.flush(p.a)
		p.run(p.now.Add(2 * time.Second))
		for {
			if k, _ := p.b.Read(buf); k == 0 {
				break
			}
		}
		p.b.Write(payloadBytes(uint64(i+10), 3000))
		p.flush(p.b)
		p.run(p.now.Add(2 * time.Second))
		for {
			if k, _ := p.a.Read(buf); k == 0 {
				break
			}
		}
		p.flush(p.a)
		p.flush(p.b)
	}
	p.drop = nil
	p.run(p.now.Add(5 * time.Second))
	p.a.TakeEvents()
	p.b.TakeEvents()
	for _, c := range []*Conn{p.a, p.b} {
		if !c.Parkable(p.now) {
			t.Fatalf("%v not parkable after 5 s idle: %s", c.LocalAddr(), c.parkBlock(p.now))
		}
	}
	return p
}

func payloadBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*131 + uint64(i)*7)
	}
	return b
}

// parkAndUnpark parks c and rebuilds it at once, returning the rebuilt
// Conn.
func parkAndUnpark(t *testing.T, c *Conn, now clock.Instant) *Conn {
	t.Helper()
	l, r := c.LocalAddr(), c.RemoteAddr()
	rec := c.Park(now)
	if rec == nil {
		t.Fatal("Park refused a parkable connection")
	}
	return c.env.Unpark(now, rec, l, r)
}

// TestParkRoundTrip: a connection parked and rebuilt is the connection it
// was, field by field, but for the fields the park record leaves out by
// design (the controller, made again from cwnd and ssthresh; what is only
// meaningful during a call, a phase or a timer that is not running; the
// idle timer, re-armed). A field added to Conn and forgotten by
// Park/Unpark fails here.
func TestParkRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		cc     string
		noSACK bool
	}{{"cubic", false}, {"reno", false}, {"bbr", false}, {"cubic", true}} {
		t.Run(fmt.Sprintf("%s/noSACK=%v", tc.cc, tc.noSACK), func(t *testing.T) {
			p := idlePair(t, tc.cc, tc.noSACK)
			for _, c := range []*Conn{p.a, p.b} {
				checkRoundTrip(t, c, p.now)
			}
		})
	}
	// Keep-alive probes unanswered: in the record's flags up to
	// pfKeepMax, in the cold part beyond.
	for _, k := range []int32{1, 3, pfKeepMax, pfKeepMax + 1, 1000} {
		p := idlePair(t, "cubic", false)
		p.b.keepProbes = k
		checkRoundTrip(t, p.b, p.now)
	}
}

// TestParkRoundTripHandshakeOnly: a connection that only did its
// handshake parks without a cold part (its record is one allocation of
// the record's size class), and is rebuilt field by field.
func TestParkRoundTripHandshakeOnly(t *testing.T) {
	p := newPair(t, parkCfg("cubic", false), parkCfg("cubic", false), 50*time.Microsecond)
	p.connect()
	p.run(p.now.Add(5 * time.Second))
	for _, c := range []*Conn{p.a, p.b} {
		c.TakeEvents()
		rec := c.Park(p.now)
		if rec == nil {
			t.Fatalf("not parkable: %s", c.parkBlock(p.now))
		}
		if rec.cold != nil {
			t.Errorf("%v: the record of a connection that only did its handshake has a cold part: %+v", c.LocalAddr(), *rec.cold)
		}
		c = c.env.Unpark(p.now, rec, c.LocalAddr(), c.RemoteAddr())
		checkRoundTrip(t, c, p.now)
	}
	// An RTO that SRTT and RTTVAR do not give (backed off) goes in the
	// cold part, and comes back.
	p.a.rto *= 2
	p.a.TakeEvents()
	rec := p.a.Park(p.now)
	if rec == nil || rec.cold == nil || rec.flags.has(pfRTOCalc) {
		t.Fatalf("a backed-off RTO: record %v", rec)
	}
	p.a = p.a.env.Unpark(p.now, rec, addrA, addrB)
	checkRoundTrip(t, p.a, p.now)
	// So do a TS.Recent not taken from the last segment received and a
	// Last.ACK.sent short of RCV.NXT, which the record derives from
	// lastRecv and RCV.NXT in their usual state (coldBase).
	for _, odd := range []struct {
		name string
		set  func(c *Conn)
	}{
		{"tsRecentAt", func(c *Conn) { c.tsRecentAt = c.lastRecv.Add(-time.Millisecond) }},
		{"lastAckSent", func(c *Conn) { c.lastAckSent = c.rcvNxt.Add(^uint32(0)) }},
	} {
		p.a = parkAndUnpark(t, p.a, p.now) // the RTO back in its usual state
		p.a.rto = p.a.rtt.rto(p.a.env.cfg.InitialRTO, p.a.env.cfg.MinRTO, p.a.env.cfg.MaxRTO)
		odd.set(p.a)
		before := *p.a
		p.a.TakeEvents()
		rec := p.a.Park(p.now)
		if rec == nil || rec.cold == nil {
			t.Fatalf("an unusual %s: record %v, want one with a cold part", odd.name, rec)
		}
		p.a = p.a.env.Unpark(p.now, rec, addrA, addrB)
		if p.a.tsRecentAt != before.tsRecentAt || p.a.lastAckSent != before.lastAckSent {
			t.Errorf("an unusual %s: rebuilt with TS.Recent's time %v, Last.ACK.sent %v; was %v, %v",
				odd.name, p.a.tsRecentAt, p.a.lastAckSent, before.tsRecentAt, before.lastAckSent)
		}
		checkRoundTrip(t, p.a, p.now)
	}
	// The record fits the 192-byte size class, and the cold part the
	// 384-byte one (docs/ARCHITECTURE.md, "Memory per connection").
	if n := unsafe.Sizeof(Parked{}); n > 192 {
		t.Errorf("Parked is %d bytes, over its 192-byte size class", n)
	}
	if n := unsafe.Sizeof(parkedCold{}); n > 384 {
		t.Errorf("parkedCold is %d bytes, over its 384-byte size class", n)
	}
	if pfRTOCalc >= 1<<pfEcnInShift {
		t.Errorf("the record's flags overlap its ECN bits")
	}
}

// checkRoundTrip parks c and rebuilds it, and compares the two.
func checkRoundTrip(t *testing.T, c *Conn, now clock.Instant) {
	t.Helper()
	before := *c
	var recBefore any
	switch r := c.rec.(type) {
	case *rackRecovery:
		recBefore = *r
	case *sackRecovery:
		recBefore = *r
	case *renoRecovery:
		recBefore = *r
	}
	cwnd, ssthresh, name := c.cc.Cwnd(), c.cc.Ssthresh(), c.cc.Name()
	after := *parkAndUnpark(t, c, now)
	var recAfter any
	switch r := after.rec.(type) {
	case *rackRecovery:
		recAfter = *r
	case *sackRecovery:
		recAfter = *r
	case *renoRecovery:
		recAfter = *r
	}
	if after.cc.Cwnd() != cwnd || after.cc.Ssthresh() != ssthresh || after.cc.Name() != name {
		t.Errorf("controller %s cwnd %d ssthresh %d, was %s %d %d", after.cc.Name(), after.cc.Cwnd(), after.cc.Ssthresh(), name, cwnd, ssthresh)
	}
	normalizeParked(&before)
	normalizeParked(&after)
	if !reflect.DeepEqual(before, after) {
		bv, av := reflect.ValueOf(before), reflect.ValueOf(after)
		for i := range bv.NumField() {
			if fmt.Sprintf("%+v", bv.Field(i)) != fmt.Sprintf("%+v", av.Field(i)) {
				t.Errorf("field %s: %+v, was %+v", bv.Type().Field(i).Name, av.Field(i), bv.Field(i))
			}
		}
		t.Errorf("rebuilt connection differs")
	}
	if recB, recA := clearRecConn(recBefore), clearRecConn(recAfter); !reflect.DeepEqual(recB, recA) {
		t.Errorf("recovery %+v, was %+v", recA, recB)
	}
}

// normalizeParked clears what Park leaves out by design.
func normalizeParked(c *Conn) {
	c.cc, c.rec, c.lr, c.rack = nil, nil, nil, nil
	c.sent, c.sb = sentQueue{}, scoreboard{} // empty either way
	c.timers.at[timerIdle] = 0               // re-armed by Unpark
	c.pacingNext = 0                         // in the past: no effect
	c.lastOOWAck = 0                         // its rate limit expired
	c.dsack = seqRange{}                     // reported only with dsackNow
	c.rttSeq, c.rttStart = 0, 0              // meaningful only while rttTiming
	c.reply = ctlReply{}                     // not pending
	c.ccSetsWindow = false                   // asked of the new controller
}

func clearRecConn(r any) any {
	switch r := r.(type) {
	case rackRecovery:
		r.c = nil
		return r
	case sackRecovery:
		r.c, r.sb = nil, nil
		return r
	case renoRecovery:
		r.c = nil
		return r
	}
	return r
}

// twinPairs returns two pairs driven identically to the same idle state;
// in the second, b is parked and the pair is its owner (pair.parkB).
func twinPairs(t *testing.T) (p1, p2 *pair) {
	return twinPairsCfg(t, parkCfg("cubic", false))
}

// twinPairsCfg is twinPairs with cfg at every end.
func twinPairsCfg(t *testing.T, cfg Config) (p1, p2 *pair) {
	p1 = idlePairCfg(t, cfg)
	p2 = idlePairCfg(t, cfg)
	env := p2.b.env
	p2.parkB = true
	if p2.bRec = p2.b.Park(p2.now); p2.bRec == nil {
		t.Fatal("Park refused")
	}
	if env.Stats.Parked != 1 || env.Stats.Parks != 1 {
		t.Fatalf("Stats Parked %d Parks %d, want 1 1", env.Stats.Parked, env.Stats.Parks)
	}
	return p1, p2
}

// ref is what the stimuli of TestParkedAnswersAsUnparked read of b: its
// sequence numbers and TS.Recent (from the twin that was never parked).
type ref struct {
	info     Info
	tsRecent uint32
}

// craft returns a segment from a to b with seq, ack, flags and payload,
// carrying a timestamp that passes PAWS when timestamps are on.
func (p *pair) craft(r ref, seq, ack wire.Seq, flags wire.TCPFlags, payload []byte) []byte {
	f := wire.TCPFields{SrcPort: addrA.Port(), DstPort: addrB.Port(), Seq: seq, Ack: ack, Flags: flags, Window: 1000, Payload: payload}
	if r.info.Timestamps {
		f.Options.HasTimestamp = true
		f.Options.TSVal = r.tsRecent + 1
	}
	buf := make([]byte, 1500)
	n := f.Encode(buf)
	return buf[:n]
}

// TestParkedAnswersAsUnparked: a parked connection answers each kind of
// segment exactly as the same connection never parked: a keep-alive
// probe, a data segment, a window probe beyond the window, a RST, a FIN,
// an old duplicate (a duplicate ACK with D-SACK), a SYN (a challenge
// ACK); and its own keep-alive timer fires at the same instant with the
// same probe. Both sides' segments are compared field by field, and b's
// TCP_INFO after.
func TestParkedAnswersAsUnparked(t *testing.T) {
	cases := []struct {
		name     string
		stimulus func(p *pair, r ref)
	}{
		{"keepalive-probe", func(p *pair, r ref) {
			p.a.SetKeepAlive(p.now, true, time.Second, time.Second, 3)
		}},
		{"data", func(p *pair, r ref) {
			p.a.Write([]byte("hello, parked"))
			p.flush(p.a)
		}},
		{"window-probe", func(p *pair, r ref) {
			seg := p.craft(r, r.info.RcvNxt.Add(r.info.RcvWnd), r.info.SndUna, wire.TCPFlagACK, []byte{1})
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: seg})
		}},
		{"rst", func(p *pair, r ref) {
			p.a.Abort()
			p.flush(p.a)
		}},
		{"fin", func(p *pair, r ref) {
			p.a.CloseWrite()
			p.flush(p.a)
		}},
		{"old-duplicate", func(p *pair, r ref) {
			seg := p.craft(r, r.info.RcvNxt-3000, r.info.SndUna, wire.TCPFlagACK, []byte("old"))
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: seg})
		}},
		{"syn-challenge", func(p *pair, r ref) {
			seg := p.craft(r, r.info.RcvNxt.Add(100), 0, wire.TCPFlagSYN, nil)
			p.queue = append(p.queue, inflight{at: p.now, to: p.b, data: seg})
		}},
		{"write-after-idle", func(p *pair, r ref) {
			// b writes more than the restart window after the idle
			// period: its controller restarts from the record's cwnd
			// (RFC 5681 §4.1) and the flight is the same.
			if p.bRec != nil {
				p.unparkB()
			}
			p.b.Write(payloadBytes(99, 60000))
			p.flush(p.b)
		}},
		{"own-keepalive", func(p *pair, r ref) {
			// The owner's call unparks b; it parks again at its idle
			// timer, and its keep-alive timer unparks it.
			if p.bRec != nil {
				p.unparkB()
			}
			p.b.SetKeepAlive(p.now, true, 3*time.Second, time.Second, 2)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p1, p2 := twinPairs(t)
			r := ref{info: p1.b.Info(), tsRecent: p1.b.tsRecent}
			markA1, markB1 := len(p1.sent[p1.a]), len(p1.sent[p1.b])
			markA2, markB2 := len(p2.sent[p2.a]), len(p2.sent[p2.b])
			tc.stimulus(p1, r)
			tc.stimulus(p2, r)
			p1.run(p1.now.Add(30 * time.Second))
			p2.run(p2.now.Add(30 * time.Second))
			segsB1, segsB2 := p1.sent[p1.b][markB1:], p2.sent[p2.b][markB2:]
			segsA1, segsA2 := p1.sent[p1.a][markA1:], p2.sent[p2.a][markA2:]
			if len(segsB1) == 0 && p1.b.State() != Closed {
				t.Fatalf("the unparked connection sent nothing and is %v: the case tests nothing", p1.b.State())
			}
			if p1.b.State() != p2.b.State() || p1.b.Err() != p2.b.Err() {
				t.Errorf("parked b ends %v (%v), unparked %v (%v)", p2.b.State(), p2.b.Err(), p1.b.State(), p1.b.Err())
			}
			if !reflect.DeepEqual(segsB1, segsB2) {
				t.Errorf("parked b sent\n%v\nunparked b sent\n%v", segsB2, segsB1)
			}
			if !reflect.DeepEqual(segsA1, segsA2) {
				t.Errorf("a facing the parked b sent\n%v\nfacing the unparked one\n%v", segsA2, segsA1)
			}
			if p2.bRec != nil {
				p2.unparkB()
			}
			if i1, i2 := p1.b.Info(), p2.b.Info(); i1 != i2 {
				t.Errorf("TCP_INFO after: parked %+v\nunparked %+v", i2, i1)
			}
			st := p2.b.env.Stats
			if st.Unparks == 0 {
				t.Errorf("b was never unparked (Unparks 0): the case tests nothing")
			}
			t.Logf("b sent %d segments; parks %d, unparks %d", len(segsB1), st.Parks, st.Unparks)
		})
	}
}

// TestParkAllocs: parking and unparking allocate nothing once the Env's
// pools are warm.
func TestParkAllocs(t *testing.T) {
	p := idlePair(t, "cubic", false)
	c := p.b
	c = parkAndUnpark(t, c, p.now)
	allocs := testing.AllocsPerRun(1000, func() {
		c = c.env.Unpark(p.now, c.Park(p.now), addrB, addrA)
	})
	if allocs != 0 {
		t.Errorf("park and unpark: %v allocations, want 0", allocs)
	}
	if c.env.Stats.Parked != 0 || c.env.Stats.Parks != c.env.Stats.Unparks || c.env.Stats.Parks < 1000 {
		t.Errorf("Stats: Parked %d Parks %d Unparks %d", c.env.Stats.Parked, c.env.Stats.Parks, c.env.Stats.Unparks)
	}
}

// TestParkRefused: a connection that is not quiescent does not park:
// unread data, unsent data, data in flight, a FIN sent, not idle long
// enough, parking off.
func TestParkRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(p *pair)
	}{
		{"unread", func(p *pair) {
			p.a.Write([]byte("x"))
			p.flush(p.a)
			p.run(p.now.Add(10 * time.Second))
		}},
		{"unsent", func(p *pair) {
			p.now = p.now.Add(10 * time.Second)
			p.b.Write([]byte("x"))
		}},
		{"in-flight", func(p *pair) {
			p.b.Write([]byte("x"))
			p.flush(p.b)
			p.queue = nil
			p.now = p.now.Add(2 * time.Second)
		}},
		{"fin-sent", func(p *pair) {
			p.b.CloseWrite()
			p.flush(p.b)
			p.run(p.now.Add(10 * time.Second))
		}},
		{"not-idle", func(p *pair) {
			p.a.Write([]byte("x"))
			p.flush(p.a)
			p.run(p.now.Add(500 * time.Millisecond))
			buf := make([]byte, 10)
			p.b.Read(buf)
		}},
		{"off", func(p *pair) {
			p.b.env.cfg.ParkIdle = 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := idlePair(t, "cubic", false)
			tc.do(p)
			p.b.TakeEvents()
			if rec := p.b.Park(p.now); rec != nil {
				t.Errorf("parked: %+v", p.b.Info())
			}
			if p.b.env.Stats.Parked != 0 {
				t.Errorf("Stats.Parked %d", p.b.env.Stats.Parked)
			}
		})
	}
}

// TestParkedCalls: a parked record answers the calls its owner makes
// without unparking exactly as the Conn would.
func TestParkedCalls(t *testing.T) {
	p := idlePair(t, "reno", false)
	c := p.b
	want := struct {
		keep, readable, wr bool
		cc                 string
	}{c.KeepAlive(), c.Readable(), c.Writable(), c.CongestionControl()}
	_, rerr := c.Read(make([]byte, 10))
	rec := c.Park(p.now)
	if rec == nil {
		t.Fatal("not parked")
	}
	got := struct {
		keep, readable, wr bool
		cc                 string
	}{rec.KeepAlive(), rec.Readable(), rec.Writable(), rec.CongestionControl()}
	if got != want {
		t.Errorf("parked answers %+v, the Conn %+v", got, want)
	}
	if rerr != ErrWouldBlock {
		t.Errorf("Read: %v", rerr)
	}
	c = c.env.Unpark(p.now, rec, addrB, addrA)
	c.CloseRead()
	p.now = p.now.Add(10 * time.Second)
	c.TakeEvents()
	if rec = c.Park(p.now); rec == nil {
		t.Fatal("not parked after CloseRead")
	}
	if !rec.Readable() {
		t.Error("parked after CloseRead: not readable (io.EOF)")
	}
	c = c.env.Unpark(p.now, rec, addrB, addrA)
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read after CloseRead, parked and unparked: %v, want io.EOF", err)
	}
}

// TestParkKeepAliveStaysCompact: connections that only did their
// handshake and then exchange keep-alive probes (package net's default
// turns keep-alive on) park again with a record of one allocation: the
// probe's answer (a duplicate ACK) and the rest of the exchange leave
// nothing that needs the cold part; b, parked, does its keep-alive from
// the record.
func TestParkKeepAliveStaysCompact(t *testing.T) {
	p := newPair(t, parkCfg("cubic", false), parkCfg("cubic", false), 50*time.Microsecond)
	p.connect()
	p.a.SetKeepAlive(p.now, true, 2*time.Second, time.Second, 3)
	p.b.SetKeepAlive(p.now, true, 3*time.Second, time.Second, 3)
	p.parkB = true
	p.run(p.now.Add(20 * time.Second))
	if st := p.a.env.Stats; st.KeepAliveProbes == 0 {
		t.Fatal("no keep-alive probe: the test tests nothing")
	}
	// Step on until each end parks (b by the pair, as its owner; a here,
	// when its idle timer finds it parkable).
	var a *Parked
	for i := 0; (a == nil || p.bRec == nil) && i < 10000; i++ {
		if !p.step(p.now.Add(time.Minute)) {
			break
		}
		if a == nil {
			p.a.TakeEvents()
			if p.a.Parkable(p.now) {
				a = p.a.Park(p.now)
				if a.cold != nil {
					t.Errorf("a: cold part after keep-alive: %+v", *a.cold)
				}
				p.a = p.a.env.Unpark(p.now, a, addrA, addrB)
			}
		}
	}
	if a == nil || p.bRec == nil {
		t.Fatalf("did not park: a %v, b %v", a != nil, p.bRec != nil)
	}
	if p.bRec.cold != nil {
		t.Errorf("b: cold part after keep-alive: %+v", *p.bRec.cold)
	}
	// b's record sends its probes, takes their answers and answers a's
	// (Env.TimeoutParked, HandleParked): about 6 + 6 + 9 in 20 s.
	if st := p.b.env.Stats; st.KeepAliveParked < 15 || st.Unparks != 0 {
		t.Errorf("b: %d keep-alive segments taken or sent parked, %d unparks in 20 s of probes every 2 and 3 s", st.KeepAliveParked, st.Unparks)
	}
}

// TestParkIdleStaysCompact: connections that only did their handshake
// (with timestamps or without, SACK or not, keep-alive off or on as
// package net has it) park for minutes without ever needing the cold
// part: what the record derives rather than keeps (TS.Recent's time,
// Last.ACK.sent: coldBase) is in its usual state all along. a is parked
// and rebuilt at every step it is parkable, b parked by the pair as its
// owner would; a's own probes are left out with keep-alive on (the
// probe's count is in cold until its answer, as before the record
// derived anything).
func TestParkIdleStaysCompact(t *testing.T) {
	for _, ts := range []bool{true, false} {
		for _, sack := range []bool{true, false} {
			for _, keep := range []bool{false, true} {
				t.Run(fmt.Sprintf("ts=%v/sack=%v/keepalive=%v", ts, sack, keep), func(t *testing.T) {
					cfg := parkCfg("cubic", !sack)
					cfg.NoTimestamps = !ts
					p := newPair(t, cfg, cfg, 50*time.Microsecond)
					p.connect()
					if keep {
						p.a.SetKeepAlive(p.now, true, 15*time.Second, 15*time.Second, 9)
						p.b.SetKeepAlive(p.now, true, 15*time.Second, 15*time.Second, 9)
					}
					p.parkB = true
					end := p.now.Add(200 * time.Second)
					aParks, bParked := 0, 0
					for p.now < end {
						if !p.step(end) {
							p.now = p.now.Add(time.Second)
						}
						p.a.TakeEvents()
						if p.a.Parkable(p.now) {
							rec := p.a.Park(p.now)
							aParks++
							if rec.cold != nil && !keep {
								t.Fatalf("a at %v: cold part %+v", p.now, *rec.cold)
							}
							p.a = p.a.env.Unpark(p.now, rec, addrA, addrB)
						}
						if p.bRec != nil {
							bParked++
							if p.bRec.cold != nil {
								t.Fatalf("b at %v: cold part %+v", p.now, *p.bRec.cold)
							}
						}
					}
					if aParks < 100 || bParked < 100 {
						t.Fatalf("a parked %d times, b was parked at %d steps: the test tests little", aParks, bParked)
					}
					if keep && p.a.env.Stats.KeepAliveProbes == 0 {
						t.Fatal("no keep-alive probe: the test tests nothing")
					}
				})
			}
		}
	}
}

// TestNewConnReusesParked: a connection made on an Env where another
// parked takes that one's Conn, and at its handshake its recovery
// algorithm and controller, instead of allocating them (a server that
// keeps accepting while earlier connections park makes no garbage of
// them); and it behaves exactly as one made on a fresh Env: every
// segment it sends through a handshake and a transfer with a loss, and
// its TCP_INFO after, are the same.
func TestNewConnReusesParked(t *testing.T) {
	for _, tc := range []struct {
		cc     string
		noSACK bool
	}{{"cubic", false}, {"reno", false}, {"bbr", false}, {"cubic", true}} {
		t.Run(fmt.Sprintf("%s/noSACK=%v", tc.cc, tc.noSACK), func(t *testing.T) {
			idle := idlePair(t, tc.cc, tc.noSACK)
			old := idle.b
			env, oldRec, oldCC := old.env, old.rec, old.cc
			if old.Park(idle.now) == nil {
				t.Fatal("Park refused a parkable connection")
			}
			script := func(p *pair) {
				n := 0
				p.drop = func(from *Conn, seg *wire.TCPFields) bool {
					if len(seg.Payload) > 0 {
						n++
						return n == 5
					}
					return false
				}
				p.connect()
				p.a.Write(payloadBytes(1, 40000))
				p.flush(p.a)
				p.b.Write(payloadBytes(2, 3000))
				p.flush(p.b)
				p.run(p.now.Add(3 * time.Second))
				buf := make([]byte, 64<<10)
				for _, c := range []*Conn{p.a, p.b} {
					for {
						if k, _ := c.Read(buf); k == 0 {
							break
						}
					}
					p.flush(c)
				}
				p.run(p.now.Add(3 * time.Second))
			}
			cfg := parkCfg(tc.cc, tc.noSACK)
			fresh := newPair(t, cfg, cfg, 5*time.Millisecond)
			script(fresh)
			reused := newPair(t, cfg, cfg, 5*time.Millisecond)
			reused.b = NewConn(env)
			if reused.b != old {
				t.Fatal("NewConn allocated a Conn while the Env's pool held one")
			}
			script(reused)
			if reused.b.rec != oldRec || reused.b.cc != oldCC {
				t.Errorf("handshake allocated: recovery reused %v, controller reused %v", reused.b.rec == oldRec, reused.b.cc == oldCC)
			}
			got, want := reused.sent[reused.b], fresh.sent[fresh.b]
			if len(got) != len(want) {
				t.Fatalf("reused Conn sent %d segments, fresh one %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("segment %d: reused Conn sent %+v, fresh one %+v", i, got[i], want[i])
				}
			}
			if g, w := reused.b.Info(), fresh.b.Info(); g != w {
				t.Errorf("TCP_INFO:\nreused %+v\nfresh  %+v", g, w)
			}
			if fresh.a.Info().TotalRetrans+fresh.b.Info().TotalRetrans == 0 {
				t.Error("the script retransmitted nothing: recovery was not exercised")
			}
		})
	}
}

// TestParkBurstAllocs: a burst of parks larger than the Env's pool
// (connections whose handshakes ended together park together) followed
// by as many new connections allocates nothing: the Conns, recovery
// algorithms and controllers beyond the pool wait in sync.Pools for the
// new connections instead of going to the collector.
func TestParkBurstAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; make allocs runs this without it")
	}
	e := NewEnv(parkCfg("cubic", false))
	burst := make([]*Conn, 4*parkPoolMax)
	start := func(c *Conn) {
		c.sackOK, c.sndMSS = true, 1460
		c.selectRecovery()
		c.startCongestionControl()
	}
	for i := range burst {
		burst[i] = NewConn(e)
		start(burst[i])
	}
	allocs := testing.AllocsPerRun(20, func() {
		for _, c := range burst {
			e.putConn(c) // as Park does
		}
		for i := range burst {
			burst[i] = NewConn(e)
			start(burst[i])
		}
	})
	if allocs != 0 {
		t.Errorf("%d parks and %d new connections: %v allocations, want 0", len(burst), len(burst), allocs)
	}
	for _, c := range burst {
		if c.rack == nil || c.cc == nil || c.cc.Name() != "cubic" {
			t.Fatalf("new connection without its RACK or CUBIC: rack %v, cc %v", c.rack, c.cc)
		}
	}
}

// stickyCC is a controller registered from outside the way a program
// may write one: embedding cc.Base, its Init leaving state it already
// has. It is not cc.Reusable, so the core must never hand one that a
// parked connection gave back to another connection.
type stickyCC struct {
	cc.Base
	cwnd uint32
}

func (s *stickyCC) Name() string { return "test-sticky" }
func (s *stickyCC) Cwnd() uint32 { return s.cwnd }
func (s *stickyCC) Init(p cc.Params) {
	if s.cwnd == 0 {
		s.cwnd = p.InitialWindow
	}
}

var registerSticky sync.Once

// TestParkedControllerNotReusedUnlessReusable: a parked connection's
// controller goes to another connection (NewConn, Unpark) only when it
// says its Init resets it (cc.Reusable, as the built-in ones do).
func TestParkedControllerNotReusedUnlessReusable(t *testing.T) {
	registerSticky.Do(func() {
		if err := cc.Register("test-sticky", func() cc.Controller { return new(stickyCC) }); err != nil {
			t.Fatal(err)
		}
	})
	for _, name := range []string{"test-sticky", "cubic"} {
		t.Run(name, func(t *testing.T) {
			idle := idlePair(t, name, false)
			old := idle.b
			env, oldCC := old.env, old.cc
			if old.Park(idle.now) == nil {
				t.Fatal("Park refused a parkable connection")
			}
			cfg := parkCfg(name, false)
			p := newPair(t, cfg, cfg, 5*time.Millisecond)
			p.b = NewConn(env)
			if p.b != old {
				t.Fatal("NewConn allocated a Conn while the Env's pool held one")
			}
			p.connect()
			reused := p.b.cc == oldCC
			if want := cc.IsReusable(oldCC); reused != want {
				t.Errorf("controller %s reused by the next connection: %v, want %v", name, reused, want)
			}
		})
	}
}
