package flood

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/link"
)

// Merge is a link.Endpoint around the victim's own link (a TAP device,
// say) that mixes a flood into the frames the victim receives: one
// receive ring, as a NIC's, which a goroutine of Merge's fills with what
// the wrapped link delivers and Offer fills with flood frames; the
// victim's ReadBatch takes from it in order. A full ring drops what
// arrives, from either side, and counts it (WireDrops, and Result.Refused
// for the flood). Frames the victim sends go to the wrapped link;
// WriteBatch counts those addressed to spoofed prefixes (Answered).
//
// Use it where the flood cannot be written into the link from the far
// side fast enough (a kernel can put far fewer than a million frames a
// second into a TAP device); on an in-memory link use an Injector on the
// far side instead.
type Merge struct {
	inner   link.Endpoint
	spoofed []netip.Prefix

	mu     sync.Mutex
	ready  sync.Cond // signalled when the ring gets frames or closes
	ring   []slot
	head   int
	n      int
	closed bool

	wireDrops, answered atomic.Uint64
	done                sync.WaitGroup
}

type slot struct {
	buf []byte
	n   int
	off link.Offload
}

// NewMerge wraps ep with a receive ring of size frames and starts reading
// ep; Close stops it. Frames the victim sends to an address of spoofed
// are counted as answers to the flood.
func NewMerge(ep link.Endpoint, size int, spoofed ...netip.Prefix) *Merge {
	m := &Merge{inner: ep, spoofed: spoofed, ring: make([]slot, max(size, 1))}
	m.ready.L = &m.mu
	bufLen := ep.MTU() + ep.Medium().HeaderLen() + 4
	if ep.Caps().Has(link.CapGRO) {
		bufLen = link.MaxSuperFrame
	}
	pkts := make([]link.Packet, max(ep.BatchSize(), 1))
	for i := range pkts {
		pkts[i].Buf = make([]byte, bufLen)
	}
	m.done.Add(1)
	go m.readLoop(pkts)
	return m
}

// readLoop moves what the wrapped link receives into the ring.
func (m *Merge) readLoop(pkts []link.Packet) {
	defer m.done.Done()
	for {
		k, err := m.inner.ReadBatch(pkts)
		if err != nil {
			m.mu.Lock()
			m.closed = true
			m.mu.Unlock()
			m.ready.Broadcast()
			return
		}
		m.mu.Lock()
		for i := range k {
			if m.n == len(m.ring) {
				m.wireDrops.Add(1)
				continue
			}
			s := &m.ring[(m.head+m.n)%len(m.ring)]
			s.buf = append(s.buf[:0], pkts[i].Frame()...)
			s.n, s.off = pkts[i].N, pkts[i].Offload
			m.n++
		}
		m.mu.Unlock()
		m.ready.Signal()
	}
}

// Medium returns the wrapped link's medium.
func (m *Merge) Medium() link.Medium { return m.inner.Medium() }

// MTU returns the wrapped link's MTU.
func (m *Merge) MTU() int { return m.inner.MTU() }

// Caps returns the wrapped link's capabilities.
func (m *Merge) Caps() link.Caps { return m.inner.Caps() }

// BatchSize returns the wrapped link's batch size.
func (m *Merge) BatchSize() int { return m.inner.BatchSize() }

// WriteBatch sends the victim's frames on the wrapped link.
func (m *Merge) WriteBatch(pkts []link.Packet) (int, error) {
	if len(m.spoofed) > 0 {
		for i := range pkts {
			if toSpoofed(m.spoofed, pkts[i].Frame()) {
				m.answered.Add(1)
			}
		}
	}
	return m.inner.WriteBatch(pkts)
}

// ReadBatch returns frames from the ring, the wrapped link's and the
// flood's in the order they arrived; it blocks until there is one. A
// frame longer than its buffer is dropped and counted (WireDrops).
func (m *Merge) ReadBatch(pkts []link.Packet) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.n == 0 && !m.closed {
		m.ready.Wait()
	}
	if m.n == 0 {
		return 0, net.ErrClosed
	}
	k := 0
	for k < len(pkts) && m.n > 0 {
		s := &m.ring[m.head]
		m.head = (m.head + 1) % len(m.ring)
		m.n--
		if s.n > len(pkts[k].Buf) {
			m.wireDrops.Add(1)
			continue
		}
		pkts[k].N = copy(pkts[k].Buf, s.buf[:s.n])
		pkts[k].Offload = s.off
		k++
	}
	return k, nil
}

// Close closes the wrapped link and waits for Merge's reader.
func (m *Merge) Close() error {
	err := m.inner.Close()
	m.done.Wait()
	return err
}

// WireDrops returns how many frames from the wrapped link the full ring
// dropped.
func (m *Merge) WireDrops() uint64 { return m.wireDrops.Load() }

// Answered returns how many frames the victim sent to spoofed addresses.
func (m *Merge) Answered() uint64 { return m.answered.Load() }

// Offer puts g's frames into the ring, rate a second (as Injector.Flood
// paces), until stop is closed; frames that find the ring full are
// dropped and counted in Refused. Offered counts those the ring took.
func (m *Merge) Offer(g *Gen, stop <-chan struct{}, rate float64) Result {
	res := Result{Kind: g.cfg.Kind}
	start := time.Now()
	var sent uint64
	for {
		select {
		case <-stop:
			res.Elapsed = time.Since(start)
			return res
		default:
		}
		due := uint64(rate * time.Since(start).Seconds())
		if due <= sent {
			time.Sleep(pacingSleep)
			continue
		}
		burst := due - sent
		if burst > maxBurst {
			sent = due - maxBurst
			burst = maxBurst
		}
		for burst > 0 {
			k := min(burst, 64)
			m.mu.Lock()
			if m.closed {
				m.mu.Unlock()
				res.Elapsed = time.Since(start)
				return res
			}
			for range k {
				if m.n == len(m.ring) {
					res.Refused++
					continue
				}
				s := &m.ring[(m.head+m.n)%len(m.ring)]
				if cap(s.buf) < FrameLen {
					s.buf = make([]byte, FrameLen)
				}
				s.buf = s.buf[:cap(s.buf)]
				s.n, s.off = g.Frame(s.buf), link.Offload{}
				m.n++
				res.Offered++
			}
			m.mu.Unlock()
			m.ready.Signal()
			sent += k
			burst -= k
		}
	}
}
