package tcp

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// pair joins two connections with a simulated path in virtual time: a
// one-way delay and an optional drop function. It is the smallest driver of
// the Handle/Poll contract and is used by the tests in this package.
type pair struct {
	t     testing.TB
	now   clock.Instant
	a, b  *Conn
	delay time.Duration
	drop  func(from *Conn, seg *wire.TCPFields) bool
	queue []inflight
	buf   []byte
	// Segments seen, for assertions.
	sent map[*Conn][]wire.TCPFields
	// parkB makes the pair b's owner in the way of package stack: b is
	// parked (bRec) whenever it is parkable after a timer, and unparked
	// for the next segment or timer (park_test.go).
	parkB bool
	bRec  *Parked
}

type inflight struct {
	at   clock.Instant
	to   *Conn
	data []byte
}

func newPair(t testing.TB, cfgA, cfgB Config, delay time.Duration) *pair {
	p := &pair{t: t, delay: delay, buf: make([]byte, 70000), sent: map[*Conn][]wire.TCPFields{}}
	p.a = NewConn(NewEnv(cfgA))
	p.b = NewConn(NewEnv(cfgB))
	return p
}

var (
	addrA = netip.MustParseAddrPort("10.0.0.1:40000")
	addrB = netip.MustParseAddrPort("10.0.0.2:80")
)

// connect runs the handshake, with b as the passive side.
func (p *pair) connect() {
	p.t.Helper()
	if err := p.a.Connect(p.now, Endpoints{Local: addrA, Remote: addrB, ISS: 1000, MTU: 1500}); err != nil {
		p.t.Fatal(err)
	}
	p.flush(p.a)
	// Deliver the SYN to b by hand: b is "the listener".
	for len(p.queue) > 0 {
		q := p.queue[0]
		p.queue = p.queue[1:]
		p.now = max(p.now, q.at)
		var f wire.TCPFields
		v, _ := wire.ParseTCP(q.data)
		f.Decode(v)
		if q.to == p.b && p.b.State() == Closed && f.Flags == wire.TCPFlagSYN {
			p.b.OpenPassive(p.now, Endpoints{Local: addrB, Remote: addrA, ISS: 5000, MTU: 1500}, &f)
			p.flush(p.b)
			continue
		}
		p.deliver(q)
	}
	p.run(p.now.Add(time.Second))
	if p.a.State() != Established || p.b.State() != Established {
		p.t.Fatalf("after handshake: a %v, b %v", p.a.State(), p.b.State())
	}
}

func (p *pair) peer(c *Conn) *Conn {
	if c == p.a {
		return p.b
	}
	return p.a
}

// flush collects c's output into the path.
func (p *pair) flush(c *Conn) {
	for {
		n := c.PollTransmit(p.now, p.buf)
		if n == 0 {
			return
		}
		p.sendOut(c, append([]byte(nil), p.buf[:n]...))
	}
}

// flushParked collects the parked b's output (Env.PollParked), as
// flush does a Conn's.
func (p *pair) flushParked() {
	if n := p.b.env.PollParked(p.now, p.bRec, addrB.Port(), addrA.Port(), p.buf); n > 0 {
		p.sendOut(p.b, append([]byte(nil), p.buf[:n]...))
	}
}

// sendOut records seg, sent by c, and puts it on the path (unless
// dropped).
func (p *pair) sendOut(c *Conn, seg []byte) {
	v, err := wire.ParseTCP(seg)
	if err != nil {
		p.t.Fatalf("bad segment out: %v", err)
	}
	var f wire.TCPFields
	if err := f.Decode(v); err != nil {
		p.t.Fatalf("bad options out: %v", err)
	}
	p.sent[c] = append(p.sent[c], f)
	if p.drop != nil && p.drop(c, &f) {
		return
	}
	p.queue = append(p.queue, inflight{at: p.now.Add(p.delay), to: p.peer(c), data: seg})
}

func (p *pair) deliver(q inflight) {
	v, _ := wire.ParseTCP(q.data)
	var f wire.TCPFields
	f.Decode(v)
	if q.to == p.b && p.bRec != nil {
		// As the stack's owner: the record takes what it can
		// (Env.HandleParked), and b is unparked for the rest.
		if send, ok := p.b.env.HandleParked(p.now, p.bRec, &f); ok {
			if send {
				p.flushParked()
			}
			return
		}
		p.unparkB()
		q.to = p.b
	}
	q.to.HandleSegment(p.now, &f)
	p.flush(q.to)
}

// step advances to the next event (arrival or deadline) before limit and
// handles it; it returns false when nothing is left before limit.
func (p *pair) step(limit clock.Instant) bool {
	bNext := clock.Never
	if p.bRec != nil {
		bNext = p.bRec.NextDeadline()
	} else {
		bNext = p.b.NextDeadline()
	}
	next := clock.Min(p.a.NextDeadline(), bNext)
	// Every segment takes the same delay, so the queue is in order of
	// arrival: the first is the earliest.
	qi := -1
	if len(p.queue) > 0 && p.queue[0].at <= next {
		qi, next = 0, p.queue[0].at
	}
	if next > limit || next == clock.Never {
		return false
	}
	p.now = max(p.now, next)
	if qi >= 0 {
		q := p.queue[0]
		p.queue[0] = inflight{}
		p.queue = p.queue[1:]
		p.deliver(q)
		return true
	}
	if p.a.NextDeadline() <= p.now {
		p.a.HandleTimeout(p.now)
		p.flush(p.a)
	}
	if bNext <= p.now {
		if p.bRec != nil {
			// As the stack's owner: the record runs its keep-alive
			// timer if it can (Env.TimeoutParked).
			if send, ok := p.b.env.TimeoutParked(p.now, p.bRec); ok {
				if send {
					p.flushParked()
				}
				return true
			}
			p.unparkB()
		}
		p.b.HandleTimeout(p.now)
		p.flush(p.b)
		if p.parkB {
			p.b.TakeEvents()
			p.bRec = p.b.Park(p.now)
		}
	}
	return true
}

// unparkB rebuilds the parked b (Env.Unpark), as its owner does.
func (p *pair) unparkB() {
	old := p.b
	p.b = old.env.Unpark(p.now, p.bRec, addrB, addrA)
	p.bRec = nil
	if p.b != old {
		p.sent[p.b] = p.sent[old]
		delete(p.sent, old)
		for i := range p.queue {
			if p.queue[i].to == old {
				p.queue[i].to = p.b
			}
		}
	}
}

func (p *pair) run(limit clock.Instant) {
	for i := 0; p.step(limit); i++ {
		if i > 10_000_000 {
			p.t.Fatal("livelock")
		}
	}
}

func TestPairTransferAndClose(t *testing.T) {
	for _, loss := range []float64{0, 0.02} {
		p := newPair(t, Config{}, Config{RcvBuf: 256 << 10}, 5*time.Millisecond)
		rng := rand.New(rand.NewPCG(1, 2))
		p.drop = func(from *Conn, seg *wire.TCPFields) bool { return rng.Float64() < loss }
		p.connect()
		data := make([]byte, 3<<20)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		var got bytes.Buffer
		sent := 0
		rbuf := make([]byte, 100000)
		deadline := p.now.Add(10 * time.Minute)
		for p.now < deadline {
			if sent < len(data) {
				n, _ := p.a.Write(data[sent:])
				sent += n
				if sent == len(data) {
					p.a.Close()
				}
				p.flush(p.a)
			}
			for {
				n, err := p.b.Read(rbuf)
				got.Write(rbuf[:n])
				if err == io.EOF {
					break
				}
				if n == 0 {
					break
				}
			}
			p.flush(p.b)
			if p.b.State() == CloseWait {
				p.b.Close()
				p.flush(p.b)
			}
			if !p.step(deadline) {
				break
			}
		}
		if sha256.Sum256(got.Bytes()) != sha256.Sum256(data) {
			t.Fatalf("loss %v: received %d bytes, want %d identical", loss, got.Len(), len(data))
		}
		p.run(p.now.Add(5 * time.Minute))
		if p.a.State() != Closed || p.b.State() != Closed {
			t.Fatalf("loss %v: end states a %v b %v", loss, p.a.State(), p.b.State())
		}
		ia := p.a.Info()
		t.Logf("loss %v: virtual time %v, rtt %v, retrans %d, timeouts %d, fastretrans %d", loss, time.Duration(p.now), ia.RTT, ia.TotalRetrans, p.a.env.Stats.Timeouts, p.a.env.Stats.FastRetrans)
		if p.a.BufferedChunks() != 0 || p.b.BufferedChunks() != 0 {
			t.Fatalf("buffers held after close: %d %d", p.a.BufferedChunks(), p.b.BufferedChunks())
		}
	}
}
