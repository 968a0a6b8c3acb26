package tcp

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/chunk"
	"github.com/ustack/ustack/wire"
)

// TestMemLimitsDefaults: the defaults follow Linux's tcp_init_mem (min
// 3/64, pressure 1/16, max 3/32 of memory), zero fields are filled, and
// Validate refuses thresholds out of order.
func TestMemLimitsDefaults(t *testing.T) {
	l := memLimitsFor(16 << 30)
	if l.Pressure != 1<<30 || l.Low != 3<<28 || l.High != 3<<29 {
		t.Errorf("limits for 16 GiB = %+v, want 768 MiB, 1 GiB, 1.5 GiB", l)
	}
	if d := DefaultMemLimits(); d.Low <= 0 || d.Low > d.Pressure || d.Pressure > d.High {
		t.Errorf("DefaultMemLimits() = %+v, out of order", d)
	}
	if got := (MemLimits{Low: 1 << 20}).withDefaults(); got.Low != 1<<20 || got.Pressure < got.Low || got.High < got.Pressure {
		t.Errorf("withDefaults kept Low and ordered the rest: got %+v", got)
	}
	if err := (&Config{Congestion: "cubic", Mem: MemLimits{Low: 3, Pressure: 2, High: 4}}).Validate(); err == nil {
		t.Error("Validate accepted Low > Pressure")
	}
	if err := (&Config{Congestion: "cubic", Mem: MemLimits{High: -1}}).Validate(); err != nil {
		t.Errorf("Validate refused an unlimited budget: %v", err)
	}
}

// TestMemoryAccountBalances is the leak check: connections of several
// Envs sharing one account (as shards do) move data both ways over a
// lossy path (out-of-order data held and pruned), then close; every
// chunk charged was uncharged, and once the Envs give back their forward
// allocation the account is at zero.
func TestMemoryAccountBalances(t *testing.T) {
	m := NewMemory(MemLimits{Low: 256 << 10, Pressure: 512 << 10, High: 768 << 10})
	var envs []*Env
	for seed := range uint64(4) {
		cfg := Config{Memory: m, RcvBuf: 512 << 10}
		p := newPair(t, cfg, cfg, 5*time.Millisecond)
		envs = append(envs, p.a.env, p.b.env)
		rng := rand.New(rand.NewPCG(seed, 7))
		p.drop = func(*Conn, *wire.TCPFields) bool { return rng.Float64() < 0.03 }
		p.connect()
		transferBothWays(t, p, 1<<20, seed)
		if m.Stats().Peak == 0 {
			t.Fatal("nothing was charged")
		}
	}
	for i, e := range envs {
		if e.MemHeld() != 0 {
			t.Errorf("env %d holds %d bytes after every connection closed", i, e.MemHeld())
		}
		e.ReclaimMemory()
	}
	if s := m.Stats(); s.Allocated != 0 {
		t.Errorf("account at %d bytes after every connection closed, want 0 (peak %d)", s.Allocated, s.Peak)
	}
}

// transferBothWays sends n bytes each way with readers that keep up, both
// sides close, and checks the bytes.
func transferBothWays(t *testing.T, p *pair, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var got [2]bytes.Buffer
	var sent [2]int
	rbuf := make([]byte, 64<<10)
	deadline := p.now.Add(10 * time.Minute)
	for p.now < deadline {
		for i, c := range []*Conn{p.a, p.b} {
			if sent[i] < n {
				k, _ := c.Write(data[sent[i]:])
				sent[i] += k
				if sent[i] == n {
					c.CloseWrite()
				}
			}
			for {
				k, _ := c.Read(rbuf)
				got[i].Write(rbuf[:k])
				if k == 0 {
					break
				}
			}
			p.flush(c)
		}
		if got[0].Len() == n && got[1].Len() == n {
			break
		}
		if !p.step(deadline) {
			break
		}
	}
	for i := range got {
		if sha256.Sum256(got[i].Bytes()) != sha256.Sum256(data) {
			t.Fatalf("side %d received %d bytes, want %d identical", i, got[i].Len(), n)
		}
	}
	p.a.Close()
	p.b.Close()
	p.run(p.now.Add(5 * time.Minute))
	if p.a.State() != Closed || p.b.State() != Closed {
		t.Fatalf("end states a %v b %v", p.a.State(), p.b.State())
	}
}

// TestMemoryPressureShrinksWindow: a receiver that does not read, with a
// large locked buffer and a small budget. Before pressure its windows
// track the free buffer; under pressure the right edge it advertised
// never moves back (RFC 9293 §3.8.6) while new advertisements are four
// segments at most, so the window shrinks as the peer fills it; the
// account never goes above High by more than a quantum; what does not
// fit is dropped (RcvQDrop) and sent again. When the reader resumes,
// pressure ends (TimeInPressure counted) and every byte arrives intact.
func TestMemoryPressureShrinksWindow(t *testing.T) {
	lim := MemLimits{Low: 128 << 10, Pressure: 256 << 10, High: 384 << 10}
	p := newPair(t, Config{}, Config{Mem: lim}, 5*time.Millisecond)
	p.b.SetReadBuffer(2 << 20)
	p.connect()
	m := p.b.env.Memory()
	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sent, maxAlloc := 0, int64(0)
	var got bytes.Buffer
	rbuf := make([]byte, 64<<10)
	floor := 4 * uint32(p.b.advMSS)
	// Watch b's advertisements: edge = ACK + window.
	var lastEdge wire.Seq
	seen := 0
	var pressuredAds, smallAds int
	check := func() {
		for _, f := range p.sent[p.b][seen:] {
			if f.Flags&wire.TCPFlagSYN != 0 || f.Flags&wire.TCPFlagACK == 0 {
				continue
			}
			w := uint32(f.Window) << p.b.rcvWScale
			edge := f.Ack.Add(w)
			if lastEdge != 0 && edge.LessThan(lastEdge) {
				t.Fatalf("right edge retracted: %v after %v", edge, lastEdge)
			}
			lastEdge = edge
		}
		seen = len(p.sent[p.b])
		if m.UnderPressure() {
			pressuredAds++
			if p.b.rcvOffer() <= floor {
				smallAds++
			}
		}
		maxAlloc = max(maxAlloc, m.Stats().Allocated)
	}
	resume := p.now.Add(3 * time.Second)
	deadline := p.now.Add(10 * time.Minute)
	for p.now < deadline && got.Len() < len(data) {
		if sent < len(data) {
			k, _ := p.a.Write(data[sent:])
			sent += k
			p.flush(p.a)
		}
		if p.now >= resume {
			for {
				k, _ := p.b.Read(rbuf)
				got.Write(rbuf[:k])
				if k == 0 {
					break
				}
			}
			p.flush(p.b)
		}
		check()
		limit := deadline
		if p.now < resume {
			limit = resume
		}
		if !p.step(limit) {
			p.now = max(p.now, limit)
		}
	}
	check()
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("received %d bytes, want %d identical", got.Len(), len(data))
	}
	s := m.Stats()
	st := &p.b.env.Stats
	t.Logf("peak %d, entries %d, in pressure %v, RcvQDrop %d, OFOPruned %d, ads under pressure %d (%d at most 4 segments)",
		s.Peak, s.PressureEntries, s.TimeInPressure, st.RcvQDrop, st.OFOPruned, pressuredAds, smallAds)
	if s.PressureEntries == 0 || s.TimeInPressure <= 0 {
		t.Errorf("no pressure recorded: %+v", s)
	}
	if s.Pressure {
		t.Error("still under pressure after the reader drained everything")
	}
	if maxAlloc > lim.High+memQuantum || s.Peak > lim.High+memQuantum {
		t.Errorf("account reached %d (peak %d), above High %d + a quantum", maxAlloc, s.Peak, lim.High)
	}
	if st.RcvQDrop == 0 {
		t.Error("nothing dropped although the window promised more than High")
	}
	if smallAds == 0 {
		t.Error("under pressure the offered window never came down to four segments")
	}
	if p.b.Info().RcvBuf != 2<<20 {
		t.Errorf("locked buffer changed to %d", p.b.Info().RcvBuf)
	}
}

// TestMemoryWriteBlocks: above High, Write takes only what fits in the
// chunks the send buffer holds and then reports ErrWouldBlock (Writable
// false), rather than queueing; an empty send buffer may still take one
// chunk. The account stays within High plus a quantum, and everything is
// delivered once the peer reads.
func TestMemoryWriteBlocks(t *testing.T) {
	lim := MemLimits{Low: 64 << 10, Pressure: 128 << 10, High: 256 << 10}
	p := newPair(t, Config{Mem: lim, SndBuf: 4 << 20}, Config{}, 5*time.Millisecond)
	p.b.SetReadBuffer(64 << 10)
	p.connect()
	p.a.SetWriteBuffer(4 << 20)
	m := p.a.env.Memory()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	n, err := p.a.Write(data)
	if err != nil || n <= 0 || n > int(lim.High)+chunk.Size {
		t.Fatalf("first Write = %d, %v: want some and at most High+chunk", n, err)
	}
	if k, err := p.a.Write(data[n:]); k != 0 || err != ErrWouldBlock || p.a.Writable() {
		t.Fatalf("Write over High = %d, %v (Writable %v), want 0, ErrWouldBlock, false", k, err, p.a.Writable())
	}
	if a := m.Stats().Allocated; a > lim.High+memQuantum {
		t.Fatalf("account at %d, above High %d + a quantum", a, lim.High)
	}
	// A second connection of the same stack with an empty buffer still
	// gets a chunk (the tcp_wmem[0] guarantee).
	q := newPair(t, Config{Memory: m}, Config{}, 5*time.Millisecond)
	q.connect()
	if k, err := q.a.Write(data[:100]); k != 100 || err != nil {
		t.Fatalf("Write on an empty buffer over High = %d, %v, want 100, nil", k, err)
	}
	sent := n
	var got bytes.Buffer
	rbuf := make([]byte, 64<<10)
	deadline := p.now.Add(5 * time.Minute)
	for p.now < deadline && got.Len() < len(data) {
		if sent < len(data) {
			k, _ := p.a.Write(data[sent:])
			sent += k
		}
		p.flush(p.a)
		for {
			k, _ := p.b.Read(rbuf)
			got.Write(rbuf[:k])
			if k == 0 {
				break
			}
		}
		p.flush(p.b)
		if a := m.Stats().Allocated; a > lim.High+memQuantum+chunk.Size {
			t.Fatalf("account at %d, above High %d + a quantum + q's chunk", a, lim.High)
		}
		if !p.step(deadline) {
			break
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("received %d bytes, want %d identical", got.Len(), len(data))
	}
}
