package netem

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/link"
)

// DefaultLimit is the number of frames a direction holds (delayed, or
// waiting for the rate limit) when Config.Limit is 0: netem's default
// limit. A delay d at a rate r needs about d·r/(8·frame size) frames —
// 1000 frames of 1514 bytes are 50 ms at 240 Mbit/s — so raise it for long
// delays at high rates, as with netem.
const DefaultLimit = 1000

// vlanTag is the room a read buffer keeps for an 802.1Q tag.
const vlanTag = 4

// maxReadErrors is how many failed reads in a row stop a direction (about
// a second of a link that keeps failing).
const maxReadErrors = 1000

// Config describes a Bridge.
type Config struct {
	// AB impairs the frames read from A and written to B; BA the other
	// direction. The zero Config passes frames unchanged. LinkHeader is
	// set from the links' medium (14 for Ethernet, 0 for IP).
	AB, BA impair.Config
	// Seed seeds both directions' random decisions (impair.NewPair): the
	// same seed and the same frames at the same times give the same
	// decisions.
	Seed uint64
	// Limit is the most frames each direction holds at once; a copy
	// beyond it is dropped and counted (DirStats.LimitDrops). 0 means
	// DefaultLimit.
	Limit int
}

// DirStats are the counters of one direction of a Bridge.
type DirStats struct {
	// Impair are the model's counters: offered, delivered, dropped by
	// cause, duplicated, corrupted, reordered.
	Impair impair.Counters
	// RxFrames and RxBytes count the frames read from the source link.
	RxFrames, RxBytes uint64
	// TxFrames and TxBytes count the frames the destination link took.
	TxFrames, TxBytes uint64
	// LimitDrops counts copies dropped because Limit frames were held.
	LimitDrops uint64
	// TxErrors counts frames the destination link refused (too big for
	// its MTU, or an error of the link).
	TxErrors uint64
	// RxErrors counts failed reads of the source link.
	RxErrors uint64
	// Held is the number of frames held at the time of the snapshot.
	Held int
}

// Stats are a Bridge's counters, per direction.
type Stats struct {
	AB, BA DirStats
}

// Bridge forwards frames between two links, impairing each direction.
// Make one with New; Close stops it.
type Bridge struct {
	a, b   link.Endpoint
	ab, ba *dir
	done   chan struct{}
	closed atomic.Bool
	wg     sync.WaitGroup

	failOnce sync.Once
	failed   chan struct{} // closed when a direction stops on an error
	err      error         // that error, set before failed is closed
}

// dir is one direction: frames read from src, impaired, written to dst.
type dir struct {
	br       *Bridge
	name     string
	src, dst link.Endpoint
	clk      clock.Real

	rbuf []link.Packet // the reader goroutine's batch

	mu    sync.Mutex // guards everything below and serialises writes to dst
	model *impair.Model
	line  *impair.Line[struct{}]
	out   []link.Packet // copies to write now, pointing into rbuf
	drain []link.Packet // own buffers for copies taken from line
	st    DirStats

	wake  chan struct{} // tells the releaser that line changed
	timer *time.Timer
}

// New starts a Bridge between links a and b, which must carry the same
// medium. The Bridge owns both links from now on: Close closes them.
func New(a, b link.Endpoint, cfg Config) (*Bridge, error) {
	if a.Medium() != b.Medium() {
		return nil, fmt.Errorf("netem: links of different media (%v, %v)", a.Medium(), b.Medium())
	}
	for _, e := range []link.Endpoint{a, b} {
		// The bridge forwards and impairs wire frames; it does not carry
		// link.Offload from one link to the other.
		if e.Caps() != 0 {
			return nil, fmt.Errorf("netem: a link with offloads (caps %#x): open it without (afpacket.Config.NoOffloads, pipe.Config.NoOffloads)", uint32(e.Caps()))
		}
	}
	for _, c := range []*impair.Config{&cfg.AB, &cfg.BA} {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("netem: %w", err)
		}
		c.LinkHeader = a.Medium().HeaderLen()
	}
	limit := cfg.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	size := max(a.MTU(), b.MTU()) + a.Medium().HeaderLen() + vlanTag
	mab, mba := impair.NewPair(cfg.AB, cfg.BA, cfg.Seed)
	br := &Bridge{a: a, b: b, done: make(chan struct{}), failed: make(chan struct{})}
	br.ab = newDir(br, "a->b", a, b, mab, limit, size)
	br.ba = newDir(br, "b->a", b, a, mba, limit, size)
	for _, d := range []*dir{br.ab, br.ba} {
		br.wg.Add(2)
		go d.reader()
		go d.releaser()
	}
	return br, nil
}

func newDir(br *Bridge, name string, src, dst link.Endpoint, m *impair.Model, limit, size int) *dir {
	d := &dir{
		br: br, name: name, src: src, dst: dst,
		clk:   clock.NewReal(),
		model: m,
		line:  impair.NewLine[struct{}](limit),
		wake:  make(chan struct{}, 1),
		timer: time.NewTimer(time.Hour),
	}
	d.timer.Stop()
	d.rbuf = make([]link.Packet, max(src.BatchSize(), 1))
	for i := range d.rbuf {
		d.rbuf[i].Buf = make([]byte, size)
	}
	wb := max(dst.BatchSize(), 1)
	d.out = make([]link.Packet, 0, wb)
	d.drain = make([]link.Packet, wb)
	for i := range d.drain {
		d.drain[i].Buf = make([]byte, size)
	}
	return d
}

// Stats returns a snapshot of the counters.
func (br *Bridge) Stats() Stats {
	return Stats{AB: br.ab.stats(), BA: br.ba.stats()}
}

func (d *dir) stats() DirStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.Impair = d.model.Counters()
	s.Held = d.line.Len()
	return s
}

// Done is closed when a direction stops because its link keeps failing
// (Err says why). It is not closed by Close.
func (br *Bridge) Done() <-chan struct{} { return br.failed }

// Err returns the error that stopped a direction, or nil.
func (br *Bridge) Err() error {
	select {
	case <-br.failed:
		return br.err
	default:
		return nil
	}
}

func (br *Bridge) fail(err error) {
	br.failOnce.Do(func() {
		br.err = err
		close(br.failed)
	})
}

// Close stops forwarding, drops the frames still held, closes both links
// and waits for the Bridge's goroutines. A second Close returns an error
// wrapping net.ErrClosed.
func (br *Bridge) Close() error {
	if br.closed.Swap(true) {
		return &net.OpError{Op: "close", Net: "netem", Err: net.ErrClosed}
	}
	close(br.done)
	err := errors.Join(br.a.Close(), br.b.Close())
	br.wg.Wait()
	for _, d := range []*dir{br.ab, br.ba} {
		d.mu.Lock()
		d.line.Clear()
		d.mu.Unlock()
	}
	return err
}

// reader reads batches from src and impairs them until the link closes.
func (d *dir) reader() {
	defer d.br.wg.Done()
	errs := 0
	for {
		n, err := d.src.ReadBatch(d.rbuf)
		if err != nil {
			if d.br.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			d.mu.Lock()
			d.st.RxErrors++
			d.mu.Unlock()
			if errs++; errs >= maxReadErrors {
				d.br.fail(fmt.Errorf("netem: %s: reading: %w", d.name, err))
				return
			}
			time.Sleep(time.Millisecond) // a failing link must not spin
			continue
		}
		errs = 0
		d.mu.Lock()
		d.handle(n)
		d.mu.Unlock()
	}
}

// handle impairs the first n frames of rbuf and writes those due now; d.mu
// is held.
func (d *dir) handle(n int) {
	now := d.clk.Now()
	held := false
	for i := 0; i < n; i++ {
		p := &d.rbuf[i]
		d.st.RxFrames++
		d.st.RxBytes += uint64(p.N)
		dec := d.model.OfferFrame(now, p.Buf[:p.N])
		for _, c := range dec.Deliver() {
			if c.Due <= now && !c.Corrupt && !c.CE && d.line.Len() == 0 {
				// Straight through, from the read buffer.
				if len(d.out) == cap(d.out) {
					d.flushOut()
				}
				d.out = append(d.out, link.Packet{Buf: p.Buf, N: p.N})
				continue
			}
			if !d.line.Push(c, p.Buf[:p.N], struct{}{}) {
				d.st.LimitDrops++
				continue
			}
			held = true
		}
	}
	d.flushOut()
	// Copies that were pushed but are due already (corrupted ones, or
	// any behind a held frame) leave now; the releaser sleeps until the
	// rest are due.
	d.release(now)
	if held || d.line.Len() > 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// flushOut writes d.out and forgets the read buffers it pointed to; d.mu
// is held.
func (d *dir) flushOut() {
	d.write(d.out)
	for i := range d.out {
		d.out[i] = link.Packet{}
	}
	d.out = d.out[:0]
}

// release writes every held copy due at now, in order; d.mu is held.
func (d *dir) release(now clock.Instant) {
	for {
		k := 0
		for k < len(d.drain) {
			p := &d.drain[k]
			n, _, ok := d.line.Pop(now, p.Buf)
			if !ok {
				break
			}
			if n > len(p.Buf) { // cannot happen: buffers fit the largest frame read
				d.st.TxErrors++
				continue
			}
			p.N = n
			k++
		}
		d.write(d.drain[:k])
		if k < len(d.drain) {
			return
		}
	}
}

// write hands pkts to dst, counting what it takes and what it refuses; a
// refused frame is skipped. d.mu is held.
func (d *dir) write(pkts []link.Packet) {
	for len(pkts) > 0 {
		k, err := d.dst.WriteBatch(pkts)
		k = max(0, min(k, len(pkts)))
		for _, p := range pkts[:k] {
			d.st.TxFrames++
			d.st.TxBytes += uint64(p.N)
		}
		pkts = pkts[k:]
		if err == nil {
			if k == 0 {
				d.st.TxErrors += uint64(len(pkts))
				return
			}
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if len(pkts) > 0 {
			d.st.TxErrors++
			pkts = pkts[1:]
		}
	}
}

// releaser writes held copies when they come due.
func (d *dir) releaser() {
	defer d.br.wg.Done()
	for {
		d.mu.Lock()
		if d.br.closed.Load() {
			d.mu.Unlock()
			return
		}
		d.release(d.clk.Now())
		next, ok := d.line.Next()
		d.mu.Unlock()
		if ok {
			d.timer.Reset(max(d.clk.Until(next), 0))
		} else {
			d.timer.Stop()
		}
		select {
		case <-d.br.done:
			d.timer.Stop()
			return
		case <-d.wake:
		case <-d.timer.C:
		}
	}
}
