package tcp

import (
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// allocPath is a path for allocation tests: a FIFO of preallocated
// frames, each delivered delay after it was sent, with the IP codepoint it
// carries. Every 331st data segment from a is lost and every 211th arrives
// marked CE; nothing here allocates once the FIFO's slots exist.
type allocPath struct {
	a, b  *Conn
	now   clock.Instant
	delay time.Duration
	slots [][]byte
	lens  []int
	at    []clock.Instant
	to    []*Conn
	ecn   []ECN
	head  int
	n     int
	data  int // data segments a sent
	f     wire.TCPFields
	rbuf  []byte
	read  int
}

func newAllocPath(a, b *Conn, delay time.Duration) *allocPath {
	const n = 16384
	p := &allocPath{a: a, b: b, delay: delay, lens: make([]int, n), at: make([]clock.Instant, n),
		to: make([]*Conn, n), ecn: make([]ECN, n), rbuf: make([]byte, 1<<20)}
	p.slots = make([][]byte, n)
	for i := range p.slots {
		p.slots[i] = make([]byte, 1600)
	}
	return p
}

// flush queues what c has to send.
func (p *allocPath) flush(c *Conn, to *Conn) {
	for {
		i := (p.head + p.n) % len(p.slots)
		tr := c.PollTransmitBatch(p.now, p.slots[i], 1)
		if tr.Len == 0 {
			return
		}
		ecn := tr.ECN
		if c == p.a && tr.SegmentSize > 0 {
			p.data++
			if p.data%331 == 0 {
				continue // lost
			}
			if p.data%211 == 0 && ecn != NotECT {
				ecn = CE
			}
		}
		if p.n == len(p.slots) {
			panic("allocPath: queue full")
		}
		p.lens[i], p.at[i], p.to[i], p.ecn[i] = tr.Len, p.now.Add(p.delay), to, ecn
		p.n++
	}
}

// round advances 100 µs: a writes what it can, both send, what is due
// arrives, timers run, b reads.
func (p *allocPath) round(data []byte) {
	p.now = p.now.Add(100 * time.Microsecond)
	p.a.Write(data)
	p.flush(p.a, p.b)
	for p.n > 0 && p.at[p.head] <= p.now {
		i := p.head
		p.head = (p.head + 1) % len(p.slots)
		p.n--
		v, _ := wire.ParseTCP(p.slots[i][:p.lens[i]])
		p.f.Decode(v)
		p.to[i].HandleSegmentECN(p.now, &p.f, p.ecn[i])
	}
	for _, c := range []*Conn{p.a, p.b} {
		if c.NextDeadline() <= p.now {
			c.HandleTimeout(p.now)
		}
	}
	for {
		k, _ := p.b.Read(p.rbuf)
		p.read += k
		if k == 0 {
			break
		}
	}
	p.flush(p.a, p.b)
	p.flush(p.b, p.a)
}

// TestZeroAllocsControllers: a bulk transfer with losses (RACK-TLP, PRR)
// and CE marks (RFC 3168) allocates nothing once warm, under each
// registered controller, paced or not: the controllers' per-ACK
// arithmetic, the rate sampler, the send records, the pacing clock and the
// ECN echo all run on what the connection already holds.
func TestZeroAllocsControllers(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, tc := range []struct {
		cc     string
		pacing bool
	}{{"cubic", false}, {"cubic", true}, {"bbr", false}, {"reno", false}} {
		cfg := Config{Congestion: tc.cc, Pacing: tc.pacing, ECN: ECNRequest,
			RcvBuf: 1 << 20, RcvBufMax: 1 << 20, SndBuf: 1 << 20, SndBufMax: 1 << 20}
		a, b := NewConn(NewEnv(cfg)), NewConn(NewEnv(cfg))
		p := newAllocPath(a, b, time.Millisecond)
		if err := a.Connect(p.now, Endpoints{Local: addrA, Remote: addrB, ISS: 1000, MTU: 1500, ECN: true}); err != nil {
			t.Fatal(err)
		}
		n := a.PollTransmit(p.now, p.slots[0])
		v, _ := wire.ParseTCP(p.slots[0][:n])
		var syn wire.TCPFields
		syn.Decode(v)
		if err := b.OpenPassive(p.now, Endpoints{Local: addrB, Remote: addrA, ISS: 5000, MTU: 1500, ECN: true}, &syn); err != nil {
			t.Fatal(err)
		}
		p.flush(b, a)
		data := make([]byte, 256<<10)
		for range 3000 {
			p.round(data)
		}
		if !a.ECNEnabled() {
			t.Fatalf("%+v: ECN not negotiated", tc)
		}
		read, retrans, ecnRed := p.read, a.Info().TotalRetrans, a.env.Stats.ECNReductions
		allocs := testing.AllocsPerRun(2000, func() { p.round(data) })
		read, retrans, ecnRed = p.read-read, a.Info().TotalRetrans-retrans, a.env.Stats.ECNReductions-ecnRed
		if allocs != 0 {
			t.Errorf("%+v: %.2f allocations per round", tc, allocs)
		}
		if read < 1<<20 || retrans == 0 || ecnRed == 0 {
			t.Errorf("%+v: %d bytes read, %d retransmissions, %d ECN reductions while measured: not the transfer meant", tc, read, retrans, ecnRed)
		}
		t.Logf("%+v: %d bytes, %d retransmissions, %d ECN reductions in 2001 rounds", tc, read, retrans, ecnRed)
	}
}
