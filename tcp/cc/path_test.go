package cc_test

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/tcp/cc"
	"github.com/ustack/ustack/wire"
)

// path joins a sender and a receiver (tcp.Conn, public API only) over a
// bottleneck in virtual time: the sender's segments queue for a link of
// rate bytes per second (a drop-tail queue of queueLen bytes, counted in
// whole segments), then take delay to arrive; ACKs take delay back. A
// segment may also be dropped at random (loss). It measures what the
// controllers under test do with a real connection's ACK clock, loss
// recovery (RACK) and rate samples.
type path struct {
	t        *testing.T
	now      clock.Instant
	snd, rcv *tcp.Conn
	rate     uint64 // bytes per second
	delay    time.Duration
	queueLen int // bytes
	loss     float64
	rng      *rand.Rand

	events  eventHeap
	linkAt  clock.Instant // when the link finishes its current segment
	queued  int           // bytes waiting or being sent
	buf     []byte
	rbuf    []byte
	written int64

	// Measurements.
	delivered  int64 // bytes the receiver read
	drops      int
	queueDelay time.Duration // sum over segments of their wait
	segs       int
	maxQueue   int
}

type event struct {
	at   clock.Instant
	seq  int
	to   *tcp.Conn
	data []byte
	done int // bytes leaving the queue (link departures)
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newPath(t *testing.T, cfg tcp.Config, rateBits uint64, rtt time.Duration, queueBDPs float64) *path {
	p := &path{
		t:     t,
		snd:   tcp.NewConn(tcp.NewEnv(cfg)),
		rcv:   tcp.NewConn(tcp.NewEnv(tcp.Config{})),
		rate:  rateBits / 8,
		delay: rtt / 2,
		rng:   rand.New(rand.NewPCG(1, 2)),
		buf:   make([]byte, 70000),
		rbuf:  make([]byte, 1<<20),
	}
	p.queueLen = max(int(queueBDPs*float64(p.rate)*rtt.Seconds()), 3000)
	if err := p.snd.Connect(p.now, tcp.Endpoints{Local: sndAddr, Remote: rcvAddr, ISS: 1, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	n := p.snd.PollTransmit(p.now, p.buf)
	var syn wire.TCPFields
	v, _ := wire.ParseTCP(p.buf[:n])
	syn.Decode(v)
	p.now = p.now.Add(p.delay)
	if err := p.rcv.OpenPassive(p.now, tcp.Endpoints{Local: rcvAddr, Remote: sndAddr, ISS: 1000, MTU: 1500}, &syn); err != nil {
		t.Fatal(err)
	}
	p.flush(p.rcv)
	p.run(p.now.Add(time.Second), func() bool { return p.snd.State() == tcp.Established && p.rcv.State() == tcp.Established })
	if p.snd.State() != tcp.Established {
		t.Fatalf("handshake: %v", p.snd.State())
	}
	return p
}

func (p *path) push(e event) {
	e.seq = len(p.events) + p.segs + p.drops
	heap.Push(&p.events, e)
}

// flush sends what c has: the sender's data through the bottleneck, ACKs
// straight back.
func (p *path) flush(c *tcp.Conn) {
	to := p.snd
	if c == p.snd {
		to = p.rcv
	}
	for {
		n := c.PollTransmit(p.now, p.buf)
		if n == 0 {
			return
		}
		data := append([]byte(nil), p.buf[:n]...)
		if c != p.snd || n <= 60 {
			p.push(event{at: p.now.Add(p.delay), to: to, data: data})
			continue
		}
		if p.loss > 0 && p.rng.Float64() < p.loss || p.queued+n > p.queueLen {
			p.drops++
			continue
		}
		start := max(p.now, p.linkAt)
		p.linkAt = start.Add(time.Duration(uint64(n) * uint64(time.Second) / p.rate))
		p.queued += n
		p.maxQueue = max(p.maxQueue, p.queued)
		p.queueDelay += start.Sub(p.now)
		p.segs++
		p.push(event{at: p.linkAt, done: n})
		p.push(event{at: p.linkAt.Add(p.delay), to: to, data: data})
	}
}

// run delivers segments and fires timers until limit, or until done.
func (p *path) run(limit clock.Instant, done func() bool) {
	for done == nil || !done() {
		next := clock.Min(p.snd.NextDeadline(), p.rcv.NextDeadline())
		if len(p.events) > 0 && p.events[0].at <= next {
			next = p.events[0].at
		}
		if next > limit || next == clock.Never {
			p.now = max(p.now, limit)
			return
		}
		p.now = max(p.now, next)
		for len(p.events) > 0 && p.events[0].at <= p.now {
			e := heap.Pop(&p.events).(event)
			if e.done > 0 {
				p.queued -= e.done
				continue
			}
			var f wire.TCPFields
			v, _ := wire.ParseTCP(e.data)
			f.Decode(v)
			e.to.HandleSegment(p.now, &f)
		}
		for _, c := range []*tcp.Conn{p.snd, p.rcv} {
			if c.NextDeadline() <= p.now {
				c.HandleTimeout(p.now)
			}
		}
		for {
			n, _ := p.rcv.Read(p.rbuf)
			if n == 0 {
				break
			}
			p.delivered += int64(n)
		}
		p.flush(p.rcv)
		p.write()
		p.flush(p.snd)
	}
}

// write keeps the sender's buffer full (a bulk transfer).
func (p *path) write() {
	for {
		n, err := p.snd.Write(p.rbuf[:64<<10])
		p.written += int64(n)
		if n == 0 || err != nil {
			return
		}
	}
}

// goodput returns the payload rate over [from, now] given the bytes
// delivered at from, as a fraction of the link's payload rate (the link
// carries TCP segments: a full one is the MSS plus a 32-byte header with
// timestamps).
func (p *path) goodput(from clock.Instant, deliveredAtFrom int64) float64 {
	secs := p.now.Sub(from).Seconds()
	return float64(p.delivered-deliveredAtFrom) / secs / p.payloadRate()
}

func (p *path) payloadRate() float64 {
	mss := float64(p.snd.Info().SndMSS)
	return float64(p.rate) * mss / (mss + 32)
}

var bbrSpy *cc.BBR

func init() {
	if err := cc.Register("test-bbr", func() cc.Controller { bbrSpy = &cc.BBR{}; return bbrSpy }); err != nil {
		panic(err)
	}
}

// TestBBROnPath runs BBR (draft-ietf-ccwg-bbr) over a 100 Mbit/s path
// with a 20 ms RTT and a one-BDP buffer for 12 s: it leaves Startup for
// ProbeBW and cycles through its four phases (Drain, always entered from
// Startup, may end on the same ACK — when Startup ended on losses, loss
// recovery has already brought the flight under the BDP — so it is not
// sampled), estimates the bottleneck bandwidth within 5% and the
// propagation delay within a millisecond, keeps the link busy (over 90%
// of its payload rate) with a small queue (under a quarter BDP on
// average, where a loss-based controller fills the buffer), without
// losses once Startup is over, and visits ProbeRTT (every 5 s without a
// lower RTT, §5.3.4).
func TestBBROnPath(t *testing.T) {
	p := newPath(t, tcp.Config{Congestion: "test-bbr"}, 100_000_000, 20*time.Millisecond, 1)
	b := bbrSpy
	states := map[string]bool{}
	deadline := p.now.Add(12 * time.Second)
	var from clock.Instant
	var atFrom int64
	for p.now < deadline {
		p.run(p.now.Add(10*time.Millisecond), nil)
		states[b.State()] = true
		if from == 0 && p.now > clock.Instant(2*time.Second) {
			from, atFrom = p.now, p.delivered
			p.queueDelay, p.segs, p.drops = 0, 0, 0
		}
	}
	for _, s := range []string{"Startup", "ProbeBW_DOWN", "ProbeBW_CRUISE", "ProbeBW_REFILL", "ProbeBW_UP", "ProbeRTT"} {
		if !states[s] {
			t.Errorf("state %s never seen (seen: %v)", s, states)
		}
	}
	payloadRate := p.payloadRate()
	if bw := float64(b.BtlBw()); bw < 0.95*payloadRate || bw > 1.05*payloadRate {
		t.Errorf("BBR.bw %.0f bytes/s, want within 5%% of the payload rate %.0f", bw, payloadRate)
	}
	if rtt := b.MinRTT(); rtt < 20*time.Millisecond || rtt > 21*time.Millisecond {
		t.Errorf("BBR.min_rtt %v, want 20 ms", rtt)
	}
	if g := p.goodput(from, atFrom); g < 0.90 {
		t.Errorf("goodput %.1f%% of the link after Startup, want over 90%%", 100*g)
	}
	bdpWait := 20 * time.Millisecond
	if avg := p.queueDelay / time.Duration(max(p.segs, 1)); avg > bdpWait/4 {
		t.Errorf("average queueing delay %v, want under a quarter of the RTT", avg)
	}
	if p.drops != 0 {
		t.Errorf("%d segments dropped at the bottleneck after Startup", p.drops)
	}
	t.Logf("bw %d B/s, min_rtt %v, goodput %.1f%%, average queue wait %v, max queue %d bytes, drops %d",
		b.BtlBw(), b.MinRTT(), 100*p.goodput(from, atFrom), p.queueDelay/time.Duration(max(p.segs, 1)), p.maxQueue, p.drops)
}

// TestBBRRandomLoss checks BBR's tolerance of random loss below its 2%
// threshold (BBRLossThresh, §5.5.10.2): with 0.5% of segments dropped at
// random on the same path, BBR still carries over 70% of the link (its
// short-term bounds back off a little in every round with a loss), where
// CUBIC, which takes every loss for congestion, manages a few percent
// (about 1.22/√p segments per round trip, Mathis et al.).
func TestBBRRandomLoss(t *testing.T) {
	var got [2]float64
	for i, name := range []string{"bbr", "cubic"} {
		p := newPath(t, tcp.Config{Congestion: name}, 100_000_000, 20*time.Millisecond, 1)
		p.loss = 0.005
		p.run(p.now.Add(2*time.Second), nil)
		from, atFrom := p.now, p.delivered
		p.run(p.now.Add(8*time.Second), nil)
		got[i] = p.goodput(from, atFrom)
		t.Logf("%s: goodput %.1f%%, drops %d", name, 100*got[i], p.drops)
	}
	if got[0] < 0.70 || got[1] > got[0]/3 {
		t.Errorf("goodput with 0.5%% random loss: BBR %.1f%%, CUBIC %.1f%%; want BBR over 70%% and three times CUBIC", 100*got[0], 100*got[1])
	}
}

// TestCubicOnPath runs the default controller, CUBIC with HyStart++, over
// the same path: HyStart (the ACK train) ends slow start before the
// one-BDP buffer overflows, so slow start loses nothing, and the link
// stays busy through the cubic's probing, its losses and recoveries.
func TestCubicOnPath(t *testing.T) {
	p := newPath(t, tcp.Config{}, 100_000_000, 20*time.Millisecond, 1)
	p.run(p.now.Add(time.Second), nil)
	if p.drops != 0 {
		t.Errorf("%d segments dropped in the first second: slow start overshot the buffer", p.drops)
	}
	from, atFrom := p.now, p.delivered
	p.run(p.now.Add(5*time.Second), nil)
	if g := p.goodput(from, atFrom); g < 0.95 {
		t.Errorf("goodput %.1f%%, want over 95%%", 100*g)
	}
	if i := p.snd.Info(); i.CongestionControl != "cubic" {
		t.Errorf("default controller %q", i.CongestionControl)
	}
	t.Logf("goodput %.1f%%, drops %d, cwnd %d", 100*p.goodput(from, atFrom), p.drops, p.snd.Info().Cwnd)
}
