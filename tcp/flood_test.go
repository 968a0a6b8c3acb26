package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/internal/flood"
	"github.com/ustack/ustack/wire"
)

// TestSACKFloodWork: 20,000 ACKs with three bogus SACK blocks each (from
// package internal/flood: above SND.NXT, below SND.UNA, reversed, and
// inside the flight claiming data the peer never got), from an attacker
// who knows the connection's sequence numbers and timestamps, at a
// sender with a large flight. SACK tagging visits at most a constant per
// block plus a constant per record ever sent (the bound FuzzScoreboard
// holds), the scoreboard stays within maxSACKRanges, the core's
// invariants hold throughout, and once the real peer acknowledges
// everything the connection goes on as before.
func TestSACKFloodWork(t *testing.T) {
	d := newFuzzDriver(0xe7)
	d.env.cfg.SndBuf = 4 << 20
	d.maxSndBuf = d.env.cfg.SndBuf
	if err := d.open(true, Established, 0xe7); err != nil {
		t.Fatal(err)
	}
	c := d.c
	if err := d.write(60000); err != nil {
		t.Fatal(err)
	}
	for range 6 { // slow start, an ACK a segment: grow the flight
		d.now = d.now.Add(10 * time.Millisecond)
		for end := c.sndMax; c.sndUna.LessThan(end); {
			d.peerTS++
			ack := wire.MinSeq(c.sndUna.Add(2000), end)
			d.sentSegs, d.sent = 0, d.sent[:0]
			if err := d.deliver(d.peerSeg(c.rcvNxt, ack, wire.TCPFlagACK, 65535, 0)); err != nil {
				t.Fatal(err)
			}
		}
		d.sentSegs, d.sent = 0, d.sent[:0]
		if err := d.write(1 << 20); err != nil {
			t.Fatal(err)
		}
	}
	flight := c.sndMax.Size(c.sndUna)
	if flight < 100_000 {
		t.Fatalf("flight %d bytes, want a large one", flight)
	}
	g := flood.New(flood.Config{Kind: flood.SACK, Targets: []flood.Target{{
		Local: d.local, Remote: d.remote, RcvNxt: c.rcvNxt, RcvWnd: c.advertisedRemaining(),
		SndUna: c.sndUna, SndNxt: c.sndMax,
	}}})
	buf := make([]byte, flood.FrameLen)
	work0, sent0 := c.env.sackWork, c.sent.tail
	blocks := 0
	for i := range 20000 {
		n := g.Frame(buf)
		tp, err := wire.ParseTCP(buf[34:n])
		if err != nil {
			t.Fatal(err)
		}
		var f wire.TCPFields
		if err := f.Decode(tp); err != nil {
			t.Fatal(err)
		}
		// The attacker knows the timestamps: PAWS lets it through.
		d.peerTS++
		f.Options.TSVal, f.Options.TSEcr = d.peerTS, c.tsVal(d.now)
		blocks += int(f.Options.NumSACK)
		if i%100 == 0 {
			d.now = d.now.Add(time.Millisecond)
		}
		d.sentSegs, d.sent = 0, d.sent[:0] // a burst of its own
		if err := d.deliver(&f); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if i%1000 == 0 {
			if err := d.check(); err != nil {
				t.Fatalf("segment %d: %v", i, err)
			}
		}
		if len(c.sb.ranges) > maxSACKRanges {
			t.Fatalf("%d SACK ranges", len(c.sb.ranges))
		}
	}
	work, records := c.env.sackWork-work0, c.sent.tail-sent0+uint64(flight/1000)
	t.Logf("%d bogus SACK blocks over a %d-byte flight: %d ranges and records visited, %d scoreboard ranges", blocks, flight, work, len(c.sb.ranges))
	if bound := 8*uint64(blocks) + 4*records + 64; work > bound {
		t.Errorf("SACK tagging visited %d ranges and records for %d blocks and %d records, bound %d", work, blocks, records, bound)
	}
	if c.State() != Established {
		t.Fatalf("state %v", c.State())
	}
	for range 3 {
		d.now = d.now.Add(10 * time.Millisecond)
		d.sentSegs, d.sent = 0, d.sent[:0]
		if err := d.ackAll(65535); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.check(); err != nil {
		t.Fatal(err)
	}
	if c.State() != Established {
		t.Fatalf("after the flood: %v", c.State())
	}
}
