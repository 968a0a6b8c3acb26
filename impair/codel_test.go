package impair

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

func TestAQMConfigRoundTrip(t *testing.T) {
	for _, s := range []string{
		"rate=10mbit,codel",
		"rate=10mbit,codel,ecn",
		"rate=1gbit,queue=5000,codel,target=2ms,interval=50ms,ecn",
	} {
		c, err := ParseConfig(s)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", s, err)
			continue
		}
		if got := c.String(); got != s {
			t.Errorf("ParseConfig(%q).String() = %q", s, got)
		}
	}
	c := mustParse(t, "rate=1mbit,codel,target=1ms,interval=20ms,ecn")
	if want := (AQM{Kind: CoDel, Target: time.Millisecond, Interval: 20 * time.Millisecond, ECN: true}); c.AQM != want {
		t.Errorf("AQM = %+v, want %+v", c.AQM, want)
	}
	if c := mustParse(t, "rate=1mbit,codel,droptail"); c.AQM.Kind != DropTail {
		t.Errorf("droptail after codel: %+v", c.AQM)
	}
	for _, s := range []string{
		"codel",                          // no rate, no queue
		"rate=1mbit,ecn",                 // ecn needs codel
		"rate=1mbit,target=5ms",          // so do target and interval
		"rate=1mbit,codel=yes",           // a flag takes no value
		"rate=1mbit,codel,target=-1ms",   // negative
		"rate=1mbit,codel,interval=fast", // not a duration
		"rate=1mbit,codel,ecn=maybe",
	} {
		if c, err := ParseConfig(s); err == nil {
			t.Errorf("ParseConfig(%q) = %+v, want an error", s, c)
		} else if !strings.HasPrefix(err.Error(), "impair: ") {
			t.Errorf("ParseConfig(%q) error %q lacks the package prefix", s, err)
		}
	}
	bad := Config{Rate: 1, AQM: AQM{Kind: 7}}
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted an unknown queue discipline")
	}
	// New clamps what Validate rejects.
	if m := New(bad, 1); m.Config().AQM.Kind != DropTail {
		t.Errorf("New kept AQM kind 7: %+v", m.Config().AQM)
	}
}

// ipv4Frame returns an Ethernet frame of n bytes carrying an IPv4 packet
// with the given ECN codepoint and a valid header checksum.
func ipv4Frame(n int, ecn uint8) []byte {
	f := make([]byte, n)
	binary.BigEndian.PutUint16(f[12:], uint16(wire.EtherTypeIPv4))
	ip := f[14:]
	ip[0] = 0x45
	ip[1] = 0xb8 | ecn // DSCP EF, to check that the mark keeps it
	binary.BigEndian.PutUint16(ip[2:], uint16(n-14))
	ip[8], ip[9] = 64, wire.ProtoUDP
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip[:20], 0))
	return f
}

// ipv6Frame is ipv4Frame for IPv6, with a VLAN tag when vlan is set.
func ipv6Frame(n int, ecn uint8, vlan bool) []byte {
	f := make([]byte, n)
	off := 14
	if vlan {
		binary.BigEndian.PutUint16(f[12:], 0x8100)
		binary.BigEndian.PutUint16(f[16:], uint16(wire.EtherTypeIPv6))
		off = 18
	} else {
		binary.BigEndian.PutUint16(f[12:], uint16(wire.EtherTypeIPv6))
	}
	ip := f[off:]
	// Version 6, traffic class 0xb8|ecn, flow label 0x12345.
	binary.BigEndian.PutUint32(ip, 6<<28|uint32(0xb8|ecn)<<20|0x12345)
	return f
}

// TestSetCE: a mark sets the ECN field to CE and nothing else, and keeps
// an IPv4 header checksum valid (RFC 3168 §5, RFC 1624 §3); anything that
// is not an IP header is left alone.
func TestSetCE(t *testing.T) {
	for _, ecn := range []uint8{1, 2, 3} {
		f := ipv4Frame(100, ecn)
		off, v6, got, ok := ipHeader(f, 14)
		if !ok || off != 14 || v6 || got != ecn {
			t.Fatalf("ipHeader(IPv4 ECN %d) = %d, %v, %d, %v", ecn, off, v6, got, ok)
		}
		setCE(f, off, v6)
		ip := wire.IPv4(f[14:])
		if ip.TOS() != 0xbb {
			t.Errorf("ECN %d: TOS after the mark %#x, want 0xbb", ecn, ip.TOS())
		}
		if !ip.ChecksumValid() {
			t.Errorf("ECN %d: header checksum invalid after the mark", ecn)
		}
	}
	for _, vlan := range []bool{false, true} {
		f := ipv6Frame(100, 2, vlan)
		off, v6, ecn, ok := ipHeader(f, 14)
		if !ok || !v6 || ecn != 2 {
			t.Fatalf("ipHeader(IPv6, vlan %v) = %d, %v, %d, %v", vlan, off, v6, ecn, ok)
		}
		setCE(f, off, v6)
		if w := binary.BigEndian.Uint32(f[off:]); w != 6<<28|0xbb<<20|0x12345 {
			t.Errorf("IPv6 (vlan %v) first word after the mark %#x", vlan, w)
		}
	}
	// A bare IP packet (TUN, LinkHeader 0).
	p := ipv4Frame(60, 2)[14:]
	if off, v6, ecn, ok := ipHeader(p, 0); !ok || off != 0 || v6 || ecn != 2 {
		t.Errorf("ipHeader(bare IPv4) = %d, %v, %d, %v", off, v6, ecn, ok)
	}
	// Not IP: ARP, runts, a bad IHL, an IPv6 header cut short.
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:], uint16(wire.EtherTypeARP))
	badIHL := ipv4Frame(60, 2)
	badIHL[14] = 0x44
	for name, f := range map[string][]byte{
		"arp": arp, "runt": make([]byte, 10), "ihl": badIHL,
		"short v6": ipv6Frame(100, 2, false)[:40], "vlan runt": ipv6Frame(100, 2, true)[:16],
	} {
		if _, _, _, ok := ipHeader(f, 14); ok {
			t.Errorf("ipHeader(%s) found an IP header", name)
		}
		before := string(f)
		setCE(f, 14, false)
		setCE(f, 14, true)
		if name == "arp" && string(f) != before {
			t.Errorf("setCE changed an ARP frame")
		}
	}
}

// overload offers frames of size bytes to m every gap from 0 to end and
// returns the dequeue times of the frames the AQM dropped or marked
// (a dropped frame's dequeue time is the departure of the frame ahead of
// it; a marked one's is its departure less its serialization).
func overload(t *testing.T, m *Model, frame []byte, gap, end time.Duration) (drops, marks []clock.Instant) {
	t.Helper()
	ser := time.Duration(len(frame)*8) * time.Second / time.Duration(m.Config().Rate)
	var last clock.Instant
	for now := clock.Instant(0); now <= clock.Instant(end); now += clock.Instant(gap) {
		d := m.OfferFrame(now, frame)
		switch {
		case d.Reason == DropAQM:
			drops = append(drops, max(last, now))
		case d.N == 1:
			last = d.Copies[0].Due
			if d.Copies[0].CE {
				marks = append(marks, last.Add(-ser))
			}
		default:
			t.Fatalf("frame at %v: %+v", now, d)
		}
	}
	return drops, marks
}

// TestCoDelControlLaw: a queue that grows without end goes above target;
// CoDel drops the first frame dequeued more than an interval later, and
// then at intervals of interval/√count (RFC 8289 §5.4), each time to
// within one frame's serialization.
func TestCoDelControlLaw(t *testing.T) {
	const rate = 10_000_000 // 1514-byte frames take 1.2112 ms
	cfg := Config{Rate: rate, Queue: 10_000, AQM: AQM{Kind: CoDel}, LinkHeader: 14}
	m := New(cfg, 1)
	frame := ipv4Frame(1514, 0)
	// Offered at 1.5× the rate: every frame waits 0.4 ms longer than the
	// one before it, so the sojourn passes 5 ms at the 13th frame.
	gap := 807 * time.Microsecond
	drops, marks := overload(t, m, frame, gap, 600*time.Millisecond)
	if len(marks) != 0 {
		t.Errorf("%d marks of frames that are not ECN-capable", len(marks))
	}
	ser := 1211200 * time.Nanosecond
	// The first frame above target is dequeued when its sojourn reaches
	// 5 ms: the queue grows by ser-gap per frame.
	above := time.Duration(math.Ceil(float64(5*time.Millisecond)/float64(ser-gap))) * gap // its arrival
	aboveAt := clock.Instant(above).Add(5 * time.Millisecond)
	if len(drops) < 5 {
		t.Fatalf("%d drops in 600 ms of a growing queue: %v", len(drops), drops)
	}
	tol := 2 * ser
	near := func(what string, got clock.Instant, want clock.Instant) {
		t.Helper()
		if d := got.Sub(want); d < -tol || d > tol {
			t.Errorf("%s at %v, want %v ± %v", what, got, want, tol)
		}
	}
	near("first drop", drops[0], aboveAt.Add(100*time.Millisecond))
	next := drops[0]
	for k := 2; k <= 5; k++ {
		next = next.Add(time.Duration(float64(100*time.Millisecond) / math.Sqrt(float64(k-1))))
		near("drop "+string(rune('0'+k)), drops[k-1], next)
	}
	c := m.Counters()
	if c.DroppedAQM != uint64(len(drops)) || c.DroppedQueue != 0 || c.Marked != 0 {
		t.Errorf("counters %+v, %d drops seen", c, len(drops))
	}
	checkInvariant(t, c)
	t.Logf("drops at %v", drops[:5])
}

// TestCoDelECN: with ECN the same queue marks the ECN-capable frames at
// the times it would have dropped them, and still drops frames that are
// not ECN-capable; a marked copy reaches the far end as CE with a valid
// checksum.
func TestCoDelECN(t *testing.T) {
	cfg := Config{Rate: 10_000_000, Queue: 10_000, AQM: AQM{Kind: CoDel}, LinkHeader: 14}
	gap := 807 * time.Microsecond
	drops, _ := overload(t, New(cfg, 1), ipv4Frame(1514, 0), gap, 400*time.Millisecond)
	cfg.AQM.ECN = true
	m := New(cfg, 1)
	_, marks := overload(t, m, ipv4Frame(1514, 2), gap, 400*time.Millisecond)
	// A mark, unlike a drop, leaves the frame on the wire, so the queue
	// (and the next mark) moves by a frame's time per earlier mark.
	if len(marks) < len(drops)-1 || len(marks) > len(drops)+1 {
		t.Errorf("%d marks, %d drops", len(marks), len(drops))
	}
	if d := marks[0].Sub(drops[0]); d < -2*time.Millisecond || d > 2*time.Millisecond {
		t.Errorf("first mark at %v, first drop at %v", marks[0], drops[0])
	}
	if c := m.Counters(); c.Marked != uint64(len(marks)) || c.DroppedAQM != 0 {
		t.Errorf("counters %+v", c)
	}

	// Line.Push applies the mark.
	m = New(cfg, 1)
	line := NewLine[struct{}](0)
	frame := ipv4Frame(1514, 1)
	var marked int
	for now := clock.Instant(0); now < clock.Instant(400*time.Millisecond); now += clock.Instant(gap) {
		d := m.OfferFrame(now, frame)
		for _, c := range d.Deliver() {
			line.Push(c, frame, struct{}{})
		}
	}
	buf := make([]byte, 2048)
	for {
		n, _, ok := line.Pop(clock.Never-1, buf)
		if !ok {
			break
		}
		ip := wire.IPv4(buf[14:n])
		if !ip.ChecksumValid() {
			t.Fatalf("a delivered frame has a bad header checksum: % x", buf[14:34])
		}
		switch ip.TOS() {
		case 0xbb:
			marked++
		case 0xb9:
		default:
			t.Fatalf("TOS %#x delivered", ip.TOS())
		}
	}
	if marked == 0 || uint64(marked) != m.Counters().Marked {
		t.Errorf("%d frames arrived marked, the model marked %d", marked, m.Counters().Marked)
	}
	if frame[15] != 0xb9 {
		t.Errorf("the offered frame itself was marked")
	}

	// Frames that are not ECN-capable are dropped with ECN on; so is
	// everything offered with Offer, which cannot see the ECN field.
	m = New(cfg, 1)
	if drops, marks := overload(t, m, ipv4Frame(1514, 0), gap, 400*time.Millisecond); len(drops) == 0 || len(marks) != 0 {
		t.Errorf("not-ECT with ECN on: %d drops, %d marks", len(drops), len(marks))
	}
	m = New(cfg, 1)
	var dropped int
	for now := clock.Instant(0); now < clock.Instant(400*time.Millisecond); now += clock.Instant(gap) {
		if d := m.Offer(now, 1514); d.Reason == DropAQM {
			dropped++
		}
	}
	if dropped == 0 || m.Counters().Marked != 0 {
		t.Errorf("Offer with ECN on: %d drops, %d marks", dropped, m.Counters().Marked)
	}
}

// TestCoDelBelowTarget: a queue that stays under target, or above it for
// less than an interval, loses nothing; one that drains leaves the
// dropping state, so a new burst starts counting an interval afresh.
func TestCoDelBelowTarget(t *testing.T) {
	cfg := Config{Rate: 10_000_000, Queue: 10_000, AQM: AQM{Kind: CoDel}}
	m := New(cfg, 1)
	// Bursts of 3 frames every 10 ms: at most 3.6 ms of queue.
	for i := range 1000 {
		at := clock.Instant(i/3) * clock.Instant(10*time.Millisecond)
		if d := m.Offer(at, 1514); d.N != 1 {
			t.Fatalf("frame %d dropped below target: %+v", i, d)
		}
	}
	// 60 ms above target (a burst of 60 frames), then idle: no drop.
	m = New(cfg, 1)
	for round := range 5 {
		base := clock.Instant(round) * clock.Instant(time.Second)
		for i := range 60 {
			if d := m.Offer(base+clock.Instant(i)*clock.Instant(100*time.Microsecond), 1514); d.N != 1 {
				t.Fatalf("round %d frame %d: dropped after less than an interval above target", round, i)
			}
		}
	}
	if c := m.Counters(); c.DroppedAQM != 0 || c.MaxQueueDelay < 60*time.Millisecond {
		t.Errorf("counters %+v", c)
	}
	// Above target for longer than an interval: drops; the queue drains
	// and the next burst shorter than an interval is not dropped.
	m = New(cfg, 1)
	for i := range 400 {
		m.Offer(clock.Instant(i)*clock.Instant(100*time.Microsecond), 1514)
	}
	if m.Counters().DroppedAQM == 0 {
		t.Fatal("no drop after 400 frames at 12× the rate")
	}
	before := m.Counters().DroppedAQM
	base := clock.Instant(5 * time.Second)
	for i := range 60 {
		m.Offer(base+clock.Instant(i)*clock.Instant(100*time.Microsecond), 1514)
	}
	if got := m.Counters().DroppedAQM; got != before {
		t.Errorf("%d drops in a short burst after the queue drained", got-before)
	}
}

// TestBacklog: Backlog reports the frames and bytes queued and the wait a
// frame offered now would have, and Counters the mean and largest wait.
func TestBacklog(t *testing.T) {
	m := New(Config{Rate: 8_000_000}, 1) // 1000 bytes per ms
	for range 10 {
		m.Offer(0, 1000)
	}
	if f, b, w := m.Backlog(0); f != 10 || b != 10_000 || w != 10*time.Millisecond {
		t.Errorf("Backlog(0) = %d, %d, %v", f, b, w)
	}
	if f, b, w := m.Backlog(clock.Instant(4500 * time.Microsecond)); f != 6 || b != 6000 || w != 5500*time.Microsecond {
		t.Errorf("Backlog(4.5ms) = %d, %d, %v", f, b, w)
	}
	if f, b, w := m.Backlog(clock.Instant(time.Second)); f != 0 || b != 0 || w != 0 {
		t.Errorf("Backlog(1s) = %d, %d, %v", f, b, w)
	}
	c := m.Counters()
	if c.Queued != 10 || c.QueueDelay != 45*time.Millisecond || c.MaxQueueDelay != 9*time.Millisecond {
		t.Errorf("Queued %d, QueueDelay %v, MaxQueueDelay %v", c.Queued, c.QueueDelay, c.MaxQueueDelay)
	}
	if f, b, w := New(Config{}, 1).Backlog(0); f != 0 || b != 0 || w != 0 {
		t.Errorf("Backlog without a rate = %d, %d, %v", f, b, w)
	}
}

// TestCoDelDeterminism: CoDel draws no randomness; with everything else
// in the model, the same seed gives the same decisions, marks included.
func TestCoDelDeterminism(t *testing.T) {
	cfg := everything
	cfg.Queue = 500
	cfg.AQM = AQM{Kind: CoDel, ECN: true}
	frames := [][]byte{ipv4Frame(1514, 2), ipv4Frame(600, 0), ipv6Frame(1514, 1, false)}
	run := func() ([]Decision, Counters) {
		m := New(cfg, 7)
		out := make([]Decision, 30_000)
		for i := range out {
			out[i] = m.OfferFrame(clock.Instant(i)*clock.Instant(150*time.Microsecond), frames[i%3])
		}
		return out, m.Counters()
	}
	a, ca := run()
	b, cb := run()
	if countEqual(a, b) != len(a) || ca != cb {
		t.Error("two runs with the same seed differ")
	}
	checkInvariant(t, ca)
	if ca.Marked == 0 || ca.DroppedAQM == 0 {
		t.Errorf("want both marks and AQM drops: %+v", ca)
	}
}

func TestOfferFrameAllocs(t *testing.T) {
	cfg := everything
	cfg.AQM = AQM{Kind: CoDel, ECN: true}
	m := New(cfg, 1)
	frame := ipv4Frame(1000, 2)
	var now clock.Instant
	allocs := testing.AllocsPerRun(1000, func() {
		now += clock.Instant(100 * time.Microsecond)
		m.OfferFrame(now, frame)
	})
	if allocs != 0 {
		t.Errorf("OfferFrame allocates %v times per call", allocs)
	}
}

// TestCoDelCountReuse: re-entering the dropping state soon after leaving
// it (within 16 intervals) starts from the drop rate that controlled the
// queue last time — count = count − lastcount when that is above 1
// (RFC 8289 §5.5, Linux's codel_dequeue) — and from 1 after a longer
// pause.
func TestCoDelCountReuse(t *testing.T) {
	q := newCoDel(AQM{Kind: CoDel})
	const mtu = 10 * DefaultCoDelMTU // a backlog CoDel may drop from
	at := func(ms float64) clock.Instant { return clock.Instant(ms * float64(time.Millisecond)) }
	high := 20 * time.Millisecond
	// Stand above target: the first frame starts the interval, the next
	// one after it enters the dropping state (count 1).
	if v := q.decide(at(0), high, mtu, false, false); v != vPass {
		t.Fatalf("first frame above target: %v", v)
	}
	if v := q.decide(at(101), high, mtu, false, false); v != vDrop || q.count != 1 {
		t.Fatalf("after an interval above target: %v, count %d", v, q.count)
	}
	q.decide(at(101), high, mtu, false, false) // the frame after the drop passes
	// Keep dropping at the control law's times until count is 5: a frame
	// a millisecond, and after a drop the one queued behind it at once.
	for now := 102.0; q.count < 5 && now < 1000; now++ {
		for q.decide(at(now), high, mtu, false, false) == vDrop {
		}
	}
	if q.count != 5 {
		t.Fatalf("count %d after a second in the dropping state", q.count)
	}
	last := q.dropNext
	// Below target: leave the dropping state.
	if v := q.decide(at(400), time.Millisecond, mtu, false, false); v != vPass || q.dropping {
		t.Fatalf("below target: %v, dropping %v", v, q.dropping)
	}
	// Back above target for an interval, soon after: count = 5 − 1 = 4,
	// so the next drop is interval/√4 = 50 ms later.
	q.decide(at(410), high, mtu, false, false)
	if v := q.decide(at(511), high, mtu, false, false); v != vDrop || q.count != 4 {
		t.Fatalf("re-entry within 16 intervals: %v, count %d (lastcount %d, drop_next was %v)", v, q.count, q.lastCount, last)
	}
	if want := at(511).Add(50 * time.Millisecond); q.dropNext != want {
		t.Errorf("next drop at %v, want %v", q.dropNext, want)
	}
	// Leave again, and come back only after 16 intervals: count 1.
	q.decide(at(600), time.Millisecond, mtu, false, false)
	q.decide(at(3000), high, mtu, false, false)
	if v := q.decide(at(3101), high, mtu, false, false); v != vDrop || q.count != 1 {
		t.Errorf("re-entry after a long pause: %v, count %d", v, q.count)
	}
	if want := at(3101).Add(100 * time.Millisecond); q.dropNext != want {
		t.Errorf("next drop at %v, want %v", q.dropNext, want)
	}
}
