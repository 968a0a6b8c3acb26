package pipe

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/link"
)

// Config describes a pipe. The zero value is a 1500-byte Ethernet link
// with no delay and unlimited bandwidth.
type Config struct {
	// MTU is the largest IP packet the link carries; 0 means 1500. Frames
	// may be MTU plus the medium's header long. It is capped so that a
	// frame fits in impair.MaxFrame.
	MTU int
	// Medium is the kind of frames; 0 means link.Ethernet.
	Medium link.Medium
	// Delay is the one-way delay, used when Impair does not set one.
	Delay time.Duration
	// Bandwidth is the rate in bits per second (0: unlimited), used when
	// Impair does not set one.
	Bandwidth uint64
	// QueueLen bounds the frames held in each direction, in flight or
	// waiting to be read; 0 means 1000. Frames written beyond it are
	// dropped (drop-tail) and counted. It is also the depth of the queue
	// in front of the bandwidth limit when Impair does not set one.
	QueueLen int
	// BatchSize is what BatchSize reports; 0 means 64.
	BatchSize int
	// Impair, if not nil, impairs both directions (see package impair).
	// Its Delay and Rate, when set, take precedence over Delay and
	// Bandwidth. Its MTU, when set and smaller than the pipe's, silently
	// drops larger frames inside the link (a PMTU black hole), where the
	// pipe's own MTU refuses them in WriteBatch.
	Impair *impair.Config
	// Seed seeds the impairments' random decisions.
	Seed uint64
}

// Stats are the counters of one end of a pipe.
type Stats struct {
	// TxFrames and TxBytes count frames this end's WriteBatch accepted.
	TxFrames, TxBytes uint64
	// RxFrames and RxBytes count frames this end's ReadBatch returned.
	RxFrames, RxBytes uint64
	// TxTooBig counts frames refused with link.ErrFrameTooBig.
	TxTooBig uint64
	// TxQueueFull counts accepted frames dropped because the direction
	// already held QueueLen frames.
	TxQueueFull uint64
	// RxTooShort counts frames dropped because the read buffer was too
	// small for them.
	RxTooShort uint64
	// Impair is the outgoing direction's impairment counters (drops by
	// loss, bottleneck queue, impair MTU and link down; duplicates,
	// corruption, reordering).
	Impair impair.Counters
}

// Dropped returns the frames dropped on their way from this end, for any
// reason (including those refused as too big).
func (s *Stats) Dropped() uint64 {
	return s.TxTooBig + s.TxQueueFull + s.Impair.Dropped(impair.DropNone)
}

// Endpoint is one end of a pipe.
type Endpoint struct {
	w      *wire
	tx, rx *direction
	closed atomic.Bool // this end's Close was called
}

var _ link.Endpoint = (*Endpoint)(nil)

// wire is the state the two ends share.
type wire struct {
	mtu, batch int
	medium     link.Medium
	clk        clock.Real
	dirs       [2]direction

	closed    atomic.Bool
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// direction is one way of the pipe: the frames written at one end and not
// yet read at the other.
type direction struct {
	rmu   sync.Mutex  // serialises readers, who share timer
	timer *time.Timer // made by the first reader that waits; guarded by rmu
	wake  chan struct{}

	mu    sync.Mutex // guards the rest
	model *impair.Model
	line  *impair.Line[link.Offload]
	txFrames, txBytes, txTooBig, txQueueFull,
	rxFrames, rxBytes, rxTooShort uint64
}

// New returns the two ends of a new pipe.
func New(cfg Config) (a, b *Endpoint) {
	w := &wire{
		mtu:    cfg.MTU,
		batch:  cfg.BatchSize,
		medium: cfg.Medium,
		clk:    clock.NewReal(),
		done:   make(chan struct{}),
	}
	if w.medium == 0 {
		w.medium = link.Ethernet
	}
	if w.mtu <= 0 {
		w.mtu = 1500
	}
	w.mtu = min(w.mtu, impair.MaxFrame-w.medium.HeaderLen())
	if w.batch <= 0 {
		w.batch = 64
	}
	qlen := cfg.QueueLen
	if qlen <= 0 {
		qlen = 1000
	}
	var ic impair.Config
	if cfg.Impair != nil {
		ic = *cfg.Impair
	}
	if ic.Delay == 0 {
		ic.Delay = cfg.Delay
	}
	if ic.Rate == 0 {
		ic.Rate = cfg.Bandwidth
	}
	if ic.Queue == 0 {
		ic.Queue = qlen
	}
	ic.LinkHeader = w.medium.HeaderLen()
	ab, ba := impair.NewPair(ic, ic, cfg.Seed)
	for i, m := range []*impair.Model{ab, ba} {
		w.dirs[i] = direction{
			wake:  make(chan struct{}, 1),
			model: m,
			line:  impair.NewLine[link.Offload](qlen),
		}
	}
	a = &Endpoint{w: w, tx: &w.dirs[0], rx: &w.dirs[1]}
	b = &Endpoint{w: w, tx: &w.dirs[1], rx: &w.dirs[0]}
	return a, b
}

// Medium returns the configured medium.
func (e *Endpoint) Medium() link.Medium { return e.w.medium }

// MTU returns the configured MTU.
func (e *Endpoint) MTU() int { return e.w.mtu }

// Caps returns 0: a pipe offers no offloads (it carries Offload metadata
// from writer to reader unchanged).
func (e *Endpoint) Caps() link.Caps { return 0 }

// BatchSize returns the configured batch size.
func (e *Endpoint) BatchSize() int { return e.w.batch }

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "pipe", Err: err}
}

// errBadPacket is returned for a Packet whose N is negative or beyond its
// Buf.
var errBadPacket = errors.New("pipe: packet length out of range")

// WriteBatch sends the frames pkts[i].Buf[:pkts[i].N] with their Offload
// metadata to the other end. It copies them and keeps no buffer. Frames
// the link loses (impairments, full queue) count as accepted, as on a
// wire. A frame longer than MTU plus the link header stops the batch: the
// frames before it are sent and the error wraps link.ErrFrameTooBig.
func (e *Endpoint) WriteBatch(pkts []link.Packet) (int, error) {
	w, d := e.w, e.tx
	maxLen := w.mtu + w.medium.HeaderLen()
	now := w.clk.Now()
	d.mu.Lock()
	if w.closed.Load() {
		d.mu.Unlock()
		return 0, opError("write", net.ErrClosed)
	}
	for i := range pkts {
		p := &pkts[i]
		if p.N < 0 || p.N > len(p.Buf) {
			d.mu.Unlock()
			e.signal(i)
			return i, opError("write", errBadPacket)
		}
		if p.N > maxLen {
			d.txTooBig++
			d.mu.Unlock()
			e.signal(i)
			return i, opError("write", link.ErrFrameTooBig)
		}
		d.txFrames++
		d.txBytes += uint64(p.N)
		dec := d.model.OfferFrame(now, p.Buf[:p.N])
		for _, c := range dec.Deliver() {
			if !d.line.Push(c, p.Buf[:p.N], p.Offload) {
				d.txQueueFull++
			}
		}
	}
	d.mu.Unlock()
	e.signal(len(pkts))
	return len(pkts), nil
}

// signal wakes the reader of the outgoing direction if n frames were
// written.
func (e *Endpoint) signal(n int) {
	if n > 0 {
		select {
		case e.tx.wake <- struct{}{}:
		default:
		}
	}
}

// ReadBatch blocks until at least one frame is due, then fills up to
// len(pkts) packets with the due frames, in order of due time. Each Buf
// should have room for MTU plus the link header; a frame that does not fit
// is dropped and counted (RxTooShort).
func (e *Endpoint) ReadBatch(pkts []link.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	w, d := e.w, e.rx
	d.rmu.Lock()
	defer d.rmu.Unlock()
	for {
		now := w.clk.Now()
		d.mu.Lock()
		if w.closed.Load() {
			d.mu.Unlock()
			return 0, opError("read", net.ErrClosed)
		}
		n := 0
		for n < len(pkts) {
			p := &pkts[n]
			size, off, ok := d.line.Pop(now, p.Buf)
			if !ok {
				break
			}
			if size > len(p.Buf) {
				d.rxTooShort++
				continue
			}
			p.N, p.Offload = size, off
			d.rxFrames++
			d.rxBytes += uint64(size)
			n++
		}
		next, pending := d.line.Next()
		d.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		if !pending {
			select {
			case <-d.wake:
			case <-w.done:
			}
			continue
		}
		wait := next.Sub(now)
		if d.timer == nil {
			d.timer = time.NewTimer(wait)
		} else {
			d.timer.Reset(wait)
		}
		select {
		case <-d.timer.C:
		case <-d.wake:
		case <-w.done:
		}
		d.timer.Stop()
	}
}

// Close closes the pipe, both ends (see the package documentation). It
// returns an error wrapping net.ErrClosed if this end was already closed.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return opError("close", net.ErrClosed)
	}
	w := e.w
	w.closeOnce.Do(func() {
		for i := range w.dirs {
			d := &w.dirs[i]
			d.mu.Lock()
			w.closed.Store(true)
			d.line.Clear()
			d.mu.Unlock()
		}
		close(w.done)
	})
	return nil
}

// SetUp brings the link up or down in both directions. While it is down,
// written frames are dropped and counted (Impair.DroppedDown); frames
// already in flight still arrive.
func (e *Endpoint) SetUp(up bool) {
	for i := range e.w.dirs {
		d := &e.w.dirs[i]
		d.mu.Lock()
		d.model.SetUp(up)
		d.mu.Unlock()
	}
}

// Stats returns this end's counters.
func (e *Endpoint) Stats() Stats {
	var s Stats
	e.tx.mu.Lock()
	s.TxFrames, s.TxBytes = e.tx.txFrames, e.tx.txBytes
	s.TxTooBig, s.TxQueueFull = e.tx.txTooBig, e.tx.txQueueFull
	s.Impair = e.tx.model.Counters()
	e.tx.mu.Unlock()
	e.rx.mu.Lock()
	s.RxFrames, s.RxBytes, s.RxTooShort = e.rx.rxFrames, e.rx.rxBytes, e.rx.rxTooShort
	e.rx.mu.Unlock()
	return s
}
