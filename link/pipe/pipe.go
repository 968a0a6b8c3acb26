package pipe

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/internal/gso"
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
	// QueueLen is the depth, in frames, of each direction's queues; 0
	// means 1000. On a link with a bandwidth limit it is the depth of the
	// drop-tail queue in front of the limit (when Impair does not set
	// one) and, separately, of the receive ring at the far end: a frame
	// that arrives while QueueLen frames wait to be read is dropped and
	// counted (DroppedUnread). Frames on the wire (the delay) count in
	// neither, as on a real link. Without a bandwidth limit there is no
	// queue, and QueueLen bounds the frames held in flight or waiting to
	// be read (TxQueueFull), as netem's limit does.
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
	// NoOffloads makes a link without offloads (Caps 0), which carries
	// frames of at most MTU plus the link header and hands the Offload of
	// each to the reader unchanged. By default a pipe has the offloads of
	// a Linux veth (see the package documentation): Caps is
	// link.CapTxChecksum, CapRxChecksumValid, CapTSO, CapUSO and CapGRO.
	NoOffloads bool
}

// Stats are the counters of one end of a pipe.
type Stats struct {
	// TxFrames and TxBytes count frames this end's WriteBatch accepted.
	TxFrames, TxBytes uint64
	// RxFrames and RxBytes count frames this end's ReadBatch returned,
	// or its link.Receiver function was given.
	RxFrames, RxBytes uint64
	// RxDirect counts the frames of RxFrames that went to this end's
	// link.Receiver function in the writer's goroutine.
	RxDirect uint64
	// TxTooBig counts frames refused with link.ErrFrameTooBig.
	TxTooBig uint64
	// TxQueueFull counts accepted frames dropped because the direction
	// already held QueueLen frames (a link without a bandwidth limit).
	TxQueueFull uint64
	// DroppedUnread counts frames from this end dropped on arrival at the
	// other because QueueLen frames were already waiting there to be
	// read, as a full receive ring drops them (a link with a bandwidth
	// limit; the reader is slower than the link).
	DroppedUnread uint64
	// TxSegmented counts super-frames cut into wire frames in software,
	// because an impairment acts per frame; TxSegments the frames they
	// gave.
	TxSegmented, TxSegments uint64
	// TxBadOffload counts frames dropped because their Offload did not
	// match them (a GSO type for a packet that is not TCP or UDP, a
	// checksum offset outside the frame).
	TxBadOffload uint64
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
	return s.TxTooBig + s.TxQueueFull + s.DroppedUnread + s.TxBadOffload + s.Impair.Dropped(impair.DropNone)
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
	offloads   bool
	// fast: no impairment and no delay, so every frame is due at once and
	// goes through each direction's fifo, buffers exchanged where the
	// caller allows (link.Packet.Swap), instead of the Line's copies.
	fast    bool
	bufSize int // the buffers the fifo makes: the longest frame
	rxMin   int // what a reader's buffers must hold (link.Endpoint)
	clk     clock.Real
	dirs    [2]direction

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
	// perFrame: the impairments act on each wire frame (anything but a
	// fixed delay), so super-frames are cut in software first; csum: they
	// corrupt, so checksums are completed before and verified after.
	perFrame, csum bool
	medium         link.Medium
	seg            gso.Segmenter
	scratch        []byte // one wire frame being cut
	txFrames, txBytes, txTooBig, txQueueFull,
	txSegmented, txSegments, txBadOffload,
	rxFrames, rxBytes, rxTooShort uint64

	// The fast path (wire.fast): frames due at once, in order, each in a
	// buffer of the pipe's or one a writer handed over; and buffers to
	// copy into or exchange, bounded (the rest are left to the GC).
	fifo       []fifoEntry
	fhead, fn  int
	free       [][]byte // buffers of at least bufSize bytes
	freeSmall  [][]byte // buffers of smallBuf bytes
	freeMax    int
	bufSize    int
	fastFrames uint64 // frames that went through the fifo (tests)
	swapped    uint64 // buffers exchanged rather than copied (tests)

	// direct is the reader's link.Receiver function, or nil: on the
	// fast path, frames with nothing queued ahead of them go to it from
	// the writer's goroutine, not through the fifo.
	direct       func([]link.Packet)
	directCalls  uint64 // calls of direct (tests)
	directFrames uint64 // frames given to direct (Stats.RxDirect)
	// parked: the reader waits in ReadBatch with nothing popped in
	// hand, so a frame handed to direct cannot overtake one it holds.
	parked bool
	// delivering counts the calls of direct under way: a frame written
	// the other way meanwhile, most likely the receiver's answer from
	// inside the call, is queued rather than delivered by a call nested
	// in it, so that the writer's goroutine runs at most one stack's
	// input path on top of its own (each level costs a fresh
	// goroutine's stack a copy: connect-request-response-close lost a
	// fifth of its rate to runtime.copystack when they nested).
	delivering atomic.Int32
}

// fifoEntry is a frame in a direction's fifo.
type fifoEntry struct {
	buf []byte
	n   int
	off link.Offload
}

// perFrame reports whether the impairments of c act per frame — loss,
// jitter, reordering, duplication, corruption, a rate, an MTU — rather
// than only delaying every frame alike.
func perFrame(c *impair.Config) bool {
	return c.Loss > 0 || c.GE.Enabled() || c.Jitter > 0 || c.Reorder > 0 || c.Dup > 0 ||
		c.Corrupt > 0 || c.Rate > 0 || c.MTU > 0
}

// New returns the two ends of a new pipe.
func New(cfg Config) (a, b *Endpoint) {
	w := &wire{
		mtu:      cfg.MTU,
		batch:    cfg.BatchSize,
		medium:   cfg.Medium,
		offloads: !cfg.NoOffloads,
		clk:      clock.NewReal(),
		done:     make(chan struct{}),
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
	w.fast = ic == impair.Config{Queue: ic.Queue, LinkHeader: ic.LinkHeader}
	w.bufSize = w.mtu + w.medium.HeaderLen()
	w.rxMin = w.bufSize
	if w.offloads {
		w.bufSize, w.rxMin = link.MaxSuperFrame, link.MaxSuperFrame
	}
	ab, ba := impair.NewPair(ic, ic, cfg.Seed)
	for i, m := range []*impair.Model{ab, ba} {
		// Behind a bandwidth limit the model's queue bounds the frames in
		// flight, and the line only bounds those waiting to be read (a
		// receive ring); counting the frames on the wire too would shrink
		// the queue by the bandwidth-delay product. Without one, the line
		// bounds everything it holds.
		line := impair.NewLine[link.Offload](qlen)
		if ic.Rate > 0 {
			line = impair.NewLineRing[link.Offload](qlen)
		}
		w.dirs[i] = direction{
			wake:     make(chan struct{}, 1),
			model:    m,
			line:     line,
			perFrame: w.offloads && perFrame(&ic),
			csum:     w.offloads && ic.Corrupt > 0,
			medium:   w.medium,
		}
		if w.dirs[i].perFrame {
			w.dirs[i].scratch = make([]byte, w.mtu+w.medium.HeaderLen())
		}
		if w.fast {
			w.dirs[i].fifo = make([]fifoEntry, qlen)
			// As many spares as frames can be in flight (and the callers'
			// batches): buffers are conserved, so this keeps what the
			// busiest moment made, and a steady stream allocates nothing.
			w.dirs[i].freeMax = qlen + 2*w.batch + 16
			w.dirs[i].bufSize = w.bufSize
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

// Caps returns the offloads of a veth — link.CapTxChecksum,
// CapRxChecksumValid, CapTSO, CapUSO and CapGRO — or 0 with
// Config.NoOffloads.
func (e *Endpoint) Caps() link.Caps {
	if e.w.offloads {
		return link.CapTxChecksum | link.CapRxChecksumValid | link.CapTSO | link.CapUSO | link.CapGRO
	}
	return 0
}

// ConcurrentWrites reports true: WriteBatch may be called by several
// goroutines at once (link.ConcurrentWriter). Each call's frames keep
// their order; the direction's lock is released while frames go to the
// other end's receive function, so no writer waits for another's
// delivery.
func (e *Endpoint) ConcurrentWrites() bool { return true }

// BatchSize returns the configured batch size.
func (e *Endpoint) BatchSize() int { return e.w.batch }

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "pipe", Err: err}
}

// errBadPacket is returned for a Packet whose N is negative or beyond its
// Buf.
var errBadPacket = errors.New("pipe: packet length out of range")

// WriteBatch sends the frames pkts[i].Buf[:pkts[i].N] with their Offload
// metadata to the other end. It copies them and keeps no buffer — except
// that, on a pipe without impairments and delay, it may take a large
// frame's buffer in exchange for another where the packet allows it
// (link.Packet.Swap; see the package documentation). Frames
// the link loses (impairments, full queue) count as accepted, as on a
// wire. A frame longer than MTU plus the link header stops the batch: the
// frames before it are sent and the error wraps link.ErrFrameTooBig —
// unless it is a super-frame (Offload.GSOType) of at most
// link.MaxSuperFrame bytes on a pipe with offloads. Where the impairments
// act per frame, super-frames are cut into wire frames first (package
// internal/gso), and with corruption every partial checksum is completed.
func (e *Endpoint) WriteBatch(pkts []link.Packet) (int, error) {
	w, d := e.w, e.tx
	maxLen := w.mtu + w.medium.HeaderLen()
	now := w.clk.Now()
	d.mu.Lock()
	if w.closed.Load() {
		d.mu.Unlock()
		return 0, opError("write", net.ErrClosed)
	}
	d.line.Advance(now) // frames no reader takes do not pile up in flight
	run, queued := 0, 0 // pkts[run:i] go to d.direct; queued frames wake the reader
	for i := range pkts {
		p := &pkts[i]
		if p.N < 0 || p.N > len(p.Buf) {
			d.flushDirect(pkts[run:i])
			d.mu.Unlock()
			e.signal(queued)
			return i, opError("write", errBadPacket)
		}
		super := w.offloads && p.Offload.GSOType != link.GSONone
		if p.N > maxLen && !(super && p.N <= link.MaxSuperFrame) {
			d.txTooBig++
			d.flushDirect(pkts[run:i])
			d.mu.Unlock()
			e.signal(queued)
			return i, opError("write", link.ErrFrameTooBig)
		}
		d.txFrames++
		d.txBytes += uint64(p.N)
		if w.fast && d.direct != nil && d.fn == 0 && d.parked && e.rx.delivering.Load() == 0 {
			// Nothing queued ahead: the frame goes to the receiver
			// with the run it is part of (flushDirect).
			if !d.admit(now, p) {
				d.flushDirect(pkts[run:i]) // the link is down: lost
				run = i + 1
				continue
			}
			if w.offloads && p.Offload.NeedsCsum {
				p.Offload.DataValid = true // as in ReadBatch
			}
			d.rxFrames++
			d.rxBytes += uint64(p.N)
			d.fastFrames++
			d.directFrames++
			continue
		}
		d.flushDirect(pkts[run:i])
		run = i + 1
		queued++
		if d.perFrame && (super || p.Offload.NeedsCsum) {
			if err := d.cut(now, p, maxLen); err != nil {
				d.mu.Unlock()
				e.signal(queued)
				return i, opError("write", err)
			}
			continue
		}
		if w.fast {
			d.pushFast(now, p, w.rxMin)
			continue
		}
		d.offer(now, p.Buf[:p.N], p.Offload)
	}
	d.flushDirect(pkts[run:])
	d.mu.Unlock()
	e.signal(queued)
	return len(pkts), nil
}

// admit runs the model on a frame bound for the receiver function (it
// counts the frame, and drops it while the link is down) and reports
// whether to deliver it. It is out of line so that the model's Decision
// is not in WriteBatch's frame: with a receiver, a writer's goroutine
// runs the peer's input below WriteBatch, and a fresh goroutine's stack
// grows (a copy each time) with every byte of the path.
//
//go:noinline
func (d *direction) admit(now clock.Instant, p *link.Packet) bool {
	dec := d.model.OfferFrame(now, p.Buf[:p.N])
	return len(dec.Deliver()) > 0
}

// flushDirect hands pkts, a run of frames that were to go straight to the
// reader, to its link.Receiver function, with d.mu released meanwhile
// (the function may write the other way). d.mu is held. Each writer
// calls it for its own runs, in order; several writers (the pipe is a
// link.ConcurrentWriter) may be in it at once, each with its own frames.
func (d *direction) flushDirect(pkts []link.Packet) {
	if len(pkts) == 0 || d.direct == nil {
		return
	}
	f := d.direct
	d.directCalls++
	d.delivering.Add(1)
	d.mu.Unlock()
	f(pkts)
	d.mu.Lock()
	d.delivering.Add(-1)
}

// SetReceiver hands the frames written to this end straight to f in the
// writer's goroutine, where the pipe has no impairment and nothing is
// queued (link.Receiver); nil turns it off. Frames that are queued still
// go to ReadBatch. f may be called by several writers at once, each with
// its own frames, if the other end is written from several goroutines
// at once (ConcurrentWrites).
func (e *Endpoint) SetReceiver(f func(pkts []link.Packet)) {
	d := e.rx
	d.mu.Lock()
	d.direct = f
	d.mu.Unlock()
}

// smallBuf is the size of the buffers small frames are copied into (an
// ACK does not hold a 64 KiB buffer while it waits to be read).
const smallBuf = 2048

// pushFast puts one frame in the fifo (the model, which has nothing to
// impair, still counts it, and drops it while the link is down): in the
// writer's own buffer if the writer allows an exchange, the frame is not
// small, the buffer can serve a reader (room for rxMin bytes) and a free
// buffer at least as long can take its place; otherwise in a copy. d.mu
// is held.
//
// Buffers circulate: the writer's go to the reader, the reader's to the
// free list, from which writers take their replacements and copies their
// room. Only buffers of at least bufSize bytes (or exactly smallBuf)
// enter the free lists, and a reader's is exchanged only if it is that
// long, so in steady state nothing is allocated, whatever the callers'
// sizes.
func (d *direction) pushFast(now clock.Instant, p *link.Packet, rxMin int) {
	dec := d.model.OfferFrame(now, p.Buf[:p.N])
	if len(dec.Deliver()) == 0 {
		return
	}
	if d.fn == len(d.fifo) {
		d.txQueueFull++
		return
	}
	e := &d.fifo[(d.fhead+d.fn)%len(d.fifo)]
	var b []byte
	if p.Swap && p.N > smallBuf && len(p.Buf) >= rxMin {
		b = d.takeFree(len(p.Buf))
	}
	if b != nil {
		e.buf, p.Buf = p.Buf, b
		d.swapped++
	} else {
		b = d.takeFree(p.N)
		if b == nil {
			b = make([]byte, d.sizeFor(p.N))
		}
		copy(b, p.Buf[:p.N])
		e.buf = b
	}
	e.n, e.off = p.N, p.Offload
	d.fn++
	d.fastFrames++
}

// sizeFor is the length of a new buffer for a frame of n bytes.
func (d *direction) sizeFor(n int) int {
	if n <= smallBuf {
		return smallBuf
	}
	return max(d.bufSize, n)
}

// takeFree returns a free buffer for n bytes — a small one if n is
// small — or nil.
func (d *direction) takeFree(n int) []byte {
	if n <= smallBuf && d.bufSize > smallBuf {
		if len(d.freeSmall) == 0 {
			return nil
		}
		last := len(d.freeSmall) - 1
		b := d.freeSmall[last]
		d.freeSmall[last] = nil
		d.freeSmall = d.freeSmall[:last]
		return b
	}
	for i := len(d.free) - 1; i >= 0; i-- {
		if b := d.free[i]; len(b) >= n {
			last := len(d.free) - 1
			d.free[i] = d.free[last]
			d.free[last] = nil
			d.free = d.free[:last]
			return b
		}
	}
	return nil
}

// putFree keeps b for later frames, up to freeMax buffers of each kind.
func (d *direction) putFree(b []byte) {
	switch {
	case len(b) == smallBuf && d.bufSize > smallBuf:
		if len(d.freeSmall) < d.freeMax {
			d.freeSmall = append(d.freeSmall, b)
		}
	case len(b) >= d.bufSize:
		if len(d.free) < d.freeMax {
			d.free = append(d.free, b)
		}
	}
}

// popFast moves frames from the fifo into pkts, exchanging buffers where
// the reader allows it and the frame's buffer has room for what readers'
// buffers must hold; it returns how many packets it filled. d.mu is held.
func (d *direction) popFast(pkts []link.Packet, rxMin int, offloads bool) int {
	n := 0
	for n < len(pkts) && d.fn > 0 {
		e := &d.fifo[d.fhead]
		p := &pkts[n]
		d.fhead = (d.fhead + 1) % len(d.fifo)
		d.fn--
		off := e.off
		if offloads && off.NeedsCsum {
			off.DataValid = true // as in ReadBatch
		}
		switch {
		case p.Swap && len(e.buf) >= rxMin && len(p.Buf) >= d.bufSize:
			p.Buf, e.buf = e.buf, p.Buf
			d.swapped++
		case e.n > len(p.Buf):
			d.rxTooShort++
			d.putFree(e.buf)
			e.buf = nil
			continue
		default:
			copy(p.Buf, e.buf[:e.n])
		}
		d.putFree(e.buf)
		p.N, p.Offload = e.n, off
		e.buf, e.off = nil, link.Offload{}
		d.rxFrames++
		d.rxBytes += uint64(p.N)
		n++
	}
	return n
}

// offer passes one frame through the impairments into the line; d.mu is
// held.
func (d *direction) offer(now clock.Instant, frame []byte, off link.Offload) {
	dec := d.model.OfferFrame(now, frame)
	for _, c := range dec.Deliver() {
		if !d.line.Push(c, frame, off) {
			d.txQueueFull++
		}
	}
}

// cut offers the wire frames of a super-frame, or of a frame whose
// checksum is partial, one by one, as a NIC doing TSO and checksum
// offload puts them on an impaired wire. Checksums stay partial (the
// reader trusts them) unless the link corrupts; d.mu is held.
func (d *direction) cut(now clock.Instant, p *link.Packet, maxLen int) error {
	s := &d.seg
	if err := s.Init(p.Frame(), d.medium, p.Offload); err != nil {
		d.txBadOffload++
		return nil // dropped, as a device drops a frame it cannot parse
	}
	if s.SegmentLen(0) > maxLen {
		d.txTooBig++
		return link.ErrFrameTooBig
	}
	mode, off := gso.Partial, link.Offload{}
	if d.csum {
		mode = gso.Complete
	} else {
		l := s.Layout()
		off = link.Offload{NeedsCsum: true, CsumStart: uint16(l.L4), CsumOffset: 6} // UDP
		if l.Proto == 6 {
			off.CsumOffset = 16 // TCP
		}
	}
	if s.Count() > 1 {
		d.txSegmented++
	}
	for {
		n, ok := s.Next(d.scratch, mode)
		if !ok {
			return nil
		}
		d.txSegments++
		d.offer(now, d.scratch[:n], off)
	}
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
// should have room for MTU plus the link header (link.MaxSuperFrame with
// the default offloads); a frame that does not fit is dropped and counted
// (RxTooShort). Where a packet allows it (link.Packet.Swap), the frame may
// arrive in a buffer exchanged for the packet's.
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
		n := d.popFast(pkts, w.rxMin, w.offloads)
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
			if w.offloads && off.NeedsCsum {
				// Checksum partial on one side is data valid on the
				// other, as on a veth.
				off.DataValid = true
			}
			p.N, p.Offload = size, off
			d.rxFrames++
			d.rxBytes += uint64(size)
			n++
		}
		next, pending := d.line.Next()
		d.parked = n == 0 && !pending
		d.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		if !pending {
			select {
			case <-d.wake:
			case <-w.done:
			}
			d.mu.Lock()
			d.parked = false
			d.mu.Unlock()
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
			for d.fn > 0 {
				d.fifo[d.fhead] = fifoEntry{}
				d.fhead = (d.fhead + 1) % len(d.fifo)
				d.fn--
			}
			d.free, d.freeSmall = nil, nil
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
	s.DroppedUnread = e.tx.line.Overruns()
	s.TxSegmented, s.TxSegments, s.TxBadOffload = e.tx.txSegmented, e.tx.txSegments, e.tx.txBadOffload
	s.Impair = e.tx.model.Counters()
	e.tx.mu.Unlock()
	e.rx.mu.Lock()
	s.RxFrames, s.RxBytes, s.RxTooShort = e.rx.rxFrames, e.rx.rxBytes, e.rx.rxTooShort
	s.RxDirect = e.rx.directFrames
	e.rx.mu.Unlock()
	return s
}
