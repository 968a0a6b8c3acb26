package flood

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/link"
)

// Injector is a link.Endpoint around another (the attacker's side of a
// link to the victim) that a real peer's stack may use as its own link
// while Flood writes spoofed frames into the same link: the two writers
// take turns (the link takes one at a time). What the victim sends back
// to a spoofed source never reaches the peer's stack: ReadBatch takes it
// out and counts it (Answered), as the router in front of a spoofed
// network would swallow it. The Injector is not a link.Receiver, so the
// peer's stack reads it from a goroutine of its own.
type Injector struct {
	inner   link.Endpoint
	wmu     sync.Mutex
	spoofed []netip.Prefix

	answered atomic.Uint64
}

// NewInjector wraps ep. Frames the victim sends to an address of spoofed
// (IPv4 or ARP) are answers to the flood.
func NewInjector(ep link.Endpoint, spoofed ...netip.Prefix) *Injector {
	return &Injector{inner: ep, spoofed: spoofed}
}

// Medium returns the wrapped link's medium.
func (in *Injector) Medium() link.Medium { return in.inner.Medium() }

// MTU returns the wrapped link's MTU.
func (in *Injector) MTU() int { return in.inner.MTU() }

// Caps returns the wrapped link's capabilities.
func (in *Injector) Caps() link.Caps { return in.inner.Caps() }

// BatchSize returns the wrapped link's batch size.
func (in *Injector) BatchSize() int { return in.inner.BatchSize() }

// Close closes the wrapped link.
func (in *Injector) Close() error { return in.inner.Close() }

// WriteBatch writes the peer's frames, in turn with the flood's.
func (in *Injector) WriteBatch(pkts []link.Packet) (int, error) {
	in.wmu.Lock()
	defer in.wmu.Unlock()
	return in.inner.WriteBatch(pkts)
}

// Answered returns how many frames the victim sent to spoofed addresses
// (SYN-ACKs, RSTs, challenge ACKs, ARP requests).
func (in *Injector) Answered() uint64 { return in.answered.Load() }

// ReadBatch reads frames for the peer, without those the victim sent to
// spoofed addresses. It blocks until it has at least one for the peer.
func (in *Injector) ReadBatch(pkts []link.Packet) (int, error) {
	for {
		n, err := in.inner.ReadBatch(pkts)
		if err != nil {
			return 0, err
		}
		k := 0
		for i := range n {
			if toSpoofed(in.spoofed, pkts[i].Frame()) {
				in.answered.Add(1)
				continue
			}
			if k != i {
				pkts[k], pkts[i] = pkts[i], pkts[k]
			}
			k++
		}
		if k > 0 {
			return k, nil
		}
	}
}

// toSpoofed reports whether an Ethernet frame is an IPv4 packet or an
// ARP request for an address of the spoofed prefixes.
func toSpoofed(spoofed []netip.Prefix, f []byte) bool {
	if len(spoofed) == 0 || len(f) < 34 {
		return false
	}
	var a [4]byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		copy(a[:], f[30:34])
	case 0x0806:
		if len(f) < 42 {
			return false
		}
		copy(a[:], f[38:42]) // the target protocol address
	default:
		return false
	}
	addr := netip.AddrFrom4(a)
	for _, p := range spoofed {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Result is what one Flood call offered.
type Result struct {
	Kind    Kind
	Offered uint64        // frames written (WriteBatch accepted them)
	Refused uint64        // frames WriteBatch did not accept (a full queue)
	Elapsed time.Duration // from the first write to the last
}

// Rate returns the frames offered a second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Offered) / r.Elapsed.Seconds()
}

// Flood writes g's frames into the link, a batch of batch frames at a
// time, until stop is closed or limit frames are offered (0: no limit).
// With rate 0 it writes as fast as it can; otherwise it offers rate
// frames a second: it sleeps between bursts and writes what is due since
// the start, at most maxBurst frames a burst, so that a sleep longer than
// asked for (the runtime's timers, a busy machine) makes the next burst
// larger rather than leaving the offer short, within bounds. It measures
// what it offered — the frames the link's WriteBatch accepted, and the
// time it took — rather than assuming the rate. It allocates its batch
// once.
func (in *Injector) Flood(g *Gen, stop <-chan struct{}, batch int, limit uint64, rate float64) Result {
	batch = max(1, min(batch, in.inner.BatchSize()))
	pkts := make([]link.Packet, batch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, FrameLen)
	}
	res := Result{Kind: g.cfg.Kind}
	start := time.Now()
	var sent uint64 // frames written or refused: what the pacing counts
	for limit == 0 || res.Offered < limit {
		select {
		case <-stop:
			res.Elapsed = time.Since(start)
			return res
		default:
		}
		burst := uint64(batch)
		if rate > 0 {
			due := uint64(rate * time.Since(start).Seconds())
			if due <= sent {
				time.Sleep(pacingSleep)
				continue
			}
			burst = due - sent
			if burst > maxBurst {
				// Behind by more than a burst: give up the rest, as a
				// sender whose queue is full would.
				sent = due - maxBurst
				burst = maxBurst
			}
		}
		for burst > 0 && (limit == 0 || res.Offered < limit) {
			k := int(min(uint64(batch), burst))
			if limit != 0 {
				k = int(min(uint64(k), limit-res.Offered))
			}
			for i := range k {
				pkts[i].N = g.Frame(pkts[i].Buf)
			}
			in.wmu.Lock()
			n, err := in.inner.WriteBatch(pkts[:k])
			in.wmu.Unlock()
			if err != nil {
				res.Elapsed = time.Since(start)
				return res
			}
			res.Offered += uint64(n)
			res.Refused += uint64(k - n)
			sent += uint64(k)
			burst -= uint64(k)
		}
	}
	res.Elapsed = time.Since(start)
	return res
}

// pacingSleep is how long a paced Flood sleeps when nothing is due, and
// maxBurst the most frames it writes at once when it is behind.
const (
	pacingSleep = 100 * time.Microsecond
	maxBurst    = 2048
)

// Queued hides everything of an endpoint but link.Endpoint, so that a
// stack attached to it reads it from its own reader goroutine even when
// the endpoint could deliver frames in the writer's goroutine
// (link.Receiver): a flood then queues in the link's receive queue, as
// in a NIC's ring, instead of running the victim's input on the
// attacker's goroutine.
func Queued(ep link.Endpoint) link.Endpoint { return queued{ep} }

type queued struct{ link.Endpoint }
