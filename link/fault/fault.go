package fault

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

// Options configures NewWith.
type Options struct {
	// Tx impairs the frames written; nil leaves them alone.
	Tx *impair.Config
	// Rx impairs the frames read; nil leaves them alone.
	Rx *impair.Config
	// Seed seeds both directions' random decisions.
	Seed uint64
	// QueueLen bounds the frames held (delayed) in each direction; 0 means
	// 1000. Frames beyond it are dropped and counted.
	QueueLen int
}

// Stats are an Endpoint's counters.
type Stats struct {
	// Tx and Rx are the two directions' impairment counters.
	Tx, Rx impair.Counters
	// TxQueueFull and RxQueueFull count copies dropped because QueueLen
	// frames were already held in that direction.
	TxQueueFull, RxQueueFull uint64
	// TxTooBig counts frames refused with link.ErrFrameTooBig.
	TxTooBig uint64
	// TxErrors counts frames the wrapped endpoint refused.
	TxErrors uint64
	// RxTooShort counts frames dropped because the read buffer was too
	// small.
	RxTooShort uint64
	// TxSegmented and RxSegmented count super-frames cut into wire
	// frames in software, because the direction's impairments act per
	// frame.
	TxSegmented, RxSegmented uint64
	// TxBadOffload and RxBadOffload count frames dropped because their
	// Offload did not match them.
	TxBadOffload, RxBadOffload uint64
}

// cutter cuts super-frames into wire frames for an impairment that acts
// per frame (see the package documentation).
type cutter struct {
	medium    link.Medium
	perFrame  bool // the impairments act per frame: cut super-frames
	corrupt   bool // they corrupt: complete checksums, trust nothing
	seg       gso.Segmenter
	scratch   []byte
	segmented uint64
	bad       uint64
}

// perFrame reports whether the impairments of c act per frame — loss,
// jitter, reordering, duplication, corruption, a rate, an MTU — rather
// than only delaying every frame alike (the same rule as link/pipe's).
func perFrame(c *impair.Config) bool {
	return c.Loss > 0 || c.GE.Enabled() || c.Jitter > 0 || c.Reorder > 0 || c.Dup > 0 ||
		c.Corrupt > 0 || c.Rate > 0 || c.MTU > 0
}

func newCutter(c *impair.Config, m link.Medium, frame int) cutter {
	k := cutter{medium: m, perFrame: perFrame(c), corrupt: c.Corrupt > 0}
	if k.perFrame {
		k.scratch = make([]byte, frame)
	}
	return k
}

// needs reports whether the frame must be cut (or its checksum completed)
// before the impairments see it.
func (k *cutter) needs(off link.Offload) bool {
	return k.perFrame && (off.GSOType != link.GSONone || off.NeedsCsum || k.corrupt && off.DataValid)
}

// cut calls f with each wire frame of p (in k.scratch, valid during the
// call) and its Offload: a partial checksum the next hop trusts (with
// DataValid if rx), or with corruption a complete one and nothing to
// trust. It reports false, counting it, if p's Offload does not match it.
func (k *cutter) cut(p *link.Packet, rx bool, f func(frame []byte, off link.Offload)) bool {
	if p.Offload.GSOType == link.GSONone && !p.Offload.NeedsCsum {
		// Corrupting, and the frame's checksum was trusted: not any more.
		off := p.Offload
		off.DataValid = false
		f(p.Frame(), off)
		return true
	}
	s := &k.seg
	if s.Init(p.Frame(), k.medium, p.Offload) != nil || s.SegmentLen(0) > len(k.scratch) {
		k.bad++
		return false
	}
	mode, off := gso.Partial, link.Offload{}
	if k.corrupt {
		mode = gso.Complete
	} else {
		l := s.Layout()
		off = link.Offload{NeedsCsum: true, CsumStart: uint16(l.L4), CsumOffset: 6, DataValid: rx}
		if l.Proto == 6 {
			off.CsumOffset = 16
		}
	}
	if s.Count() > 1 {
		k.segmented++
	}
	for {
		n, ok := s.Next(k.scratch, mode)
		if !ok {
			return true
		}
		f(k.scratch[:n], off)
	}
}

// Endpoint impairs the frames of a wrapped link.Endpoint.
type Endpoint struct {
	ep       link.Endpoint
	clk      clock.Real
	maxFrame int // the longest frame held: a super-frame if the link takes them
	wireMax  int // the longest frame that is not a super-frame
	tso      bool

	done   chan struct{}
	closed atomic.Bool
	wg     sync.WaitGroup // the goroutines; each is started under its direction's mu after checking closed

	tx *txDir // nil without Tx impairment
	rx *rxDir // nil without Rx impairment
}

var _ link.Endpoint = (*Endpoint)(nil)

// txDir is the transmit direction.
type txDir struct {
	mu                        sync.Mutex // guards the fields and serialises writes to ep
	model                     *impair.Model
	line                      *impair.Line[link.Offload]
	cut                       cutter
	now                       clock.Instant              // for holdNow
	held                      bool                       // holdNow held a frame
	holdNow                   func([]byte, link.Offload) // t.hold at t.now, made once
	out                       []link.Packet              // frames due now, written at the end of WriteBatch
	drain                     []link.Packet              // buffers for held frames that have come due
	started                   bool                       // the release goroutine runs
	wake                      chan struct{}
	queueFull, tooBig, errors uint64
}

// rxDir is the receive direction.
type rxDir struct {
	rmu   sync.Mutex // serialises readers, who share timer
	timer *time.Timer
	wake  chan struct{}

	mu        sync.Mutex
	model     *impair.Model
	line      *impair.Line[link.Offload]
	cut       cutter
	started   bool  // the reader goroutine runs
	err       error // the error that stopped the reader goroutine
	queueFull uint64
	tooShort  uint64
	now       clock.Instant              // for offerNow
	offerNow  func([]byte, link.Offload) // r.offer at r.now, made once
}

// New wraps ep, impairing the frames written to it with cfg (seeded by
// seed). Frames read pass unchanged.
func New(ep link.Endpoint, cfg impair.Config, seed uint64) *Endpoint {
	return NewWith(ep, Options{Tx: &cfg, Seed: seed})
}

// NewWith wraps ep, impairing either or both directions.
func NewWith(ep link.Endpoint, opts Options) *Endpoint {
	e := &Endpoint{
		ep:       ep,
		clk:      clock.NewReal(),
		maxFrame: ep.MTU() + ep.Medium().HeaderLen(),
		wireMax:  ep.MTU() + ep.Medium().HeaderLen(),
		tso:      ep.Caps()&(link.CapTSO|link.CapUSO) != 0,
		done:     make(chan struct{}),
	}
	if e.tso {
		e.maxFrame = impair.MaxFrame
	}
	e.maxFrame = min(e.maxFrame, impair.MaxFrame)
	qlen := opts.QueueLen
	if qlen <= 0 {
		qlen = 1000
	}
	hdr := ep.Medium().HeaderLen()
	var txc, rxc impair.Config
	if opts.Tx != nil {
		txc = *opts.Tx
		txc.LinkHeader = hdr
	}
	if opts.Rx != nil {
		rxc = *opts.Rx
		rxc.LinkHeader = hdr
	}
	txm, rxm := impair.NewPair(txc, rxc, opts.Seed)
	batch := max(ep.BatchSize(), 1)
	wireFrame := ep.MTU() + hdr + 4 // an 802.1Q tag
	if opts.Tx != nil {
		t := &txDir{
			model: txm,
			line:  impair.NewLine[link.Offload](qlen),
			cut:   newCutter(&txc, ep.Medium(), wireFrame),
			out:   make([]link.Packet, 0, batch),
			wake:  make(chan struct{}, 1),
		}
		t.holdNow = func(f []byte, off link.Offload) { t.hold(t.now, f, off) }
		e.tx = t
	}
	if opts.Rx != nil {
		r := &rxDir{
			model: rxm,
			line:  impair.NewLine[link.Offload](qlen),
			cut:   newCutter(&rxc, ep.Medium(), wireFrame),
			wake:  make(chan struct{}, 1),
		}
		r.offerNow = func(f []byte, off link.Offload) { r.offer(r.now, f, off) }
		e.rx = r
	}
	return e
}

// Medium returns the wrapped endpoint's medium.
func (e *Endpoint) Medium() link.Medium { return e.ep.Medium() }

// MTU returns the wrapped endpoint's MTU.
func (e *Endpoint) MTU() int { return e.ep.MTU() }

// Caps returns the wrapped endpoint's capabilities.
func (e *Endpoint) Caps() link.Caps { return e.ep.Caps() }

// BatchSize returns the wrapped endpoint's batch size.
func (e *Endpoint) BatchSize() int { return e.ep.BatchSize() }

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "fault", Err: err}
}

var errBadPacket = errors.New("fault: packet length out of range")

// WriteBatch impairs the frames and passes those due now to the wrapped
// endpoint, holding the others until they are due. It keeps no buffer of
// the caller's. A frame longer than the wrapped endpoint's MTU plus link
// header stops the batch with an error wrapping link.ErrFrameTooBig, as in
// link/pipe; frames the impairments drop count as accepted. If the wrapped
// endpoint fails, its error is returned (and the refused frames counted in
// TxErrors); n still counts the frames this layer accepted.
func (e *Endpoint) WriteBatch(pkts []link.Packet) (int, error) {
	if e.closed.Load() {
		return 0, opError("write", net.ErrClosed)
	}
	t := e.tx
	if t == nil {
		return e.ep.WriteBatch(pkts)
	}
	now := e.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.closed.Load() {
		return 0, opError("write", net.ErrClosed)
	}
	var n int
	var err error
	var held bool
	for n = 0; n < len(pkts); n++ {
		p := &pkts[n]
		if p.N < 0 || p.N > len(p.Buf) {
			err = opError("write", errBadPacket)
			break
		}
		if p.N > e.wireMax && !(e.tso && p.Offload.GSOType != link.GSONone && p.N <= min(e.maxFrame, link.MaxSuperFrame)) {
			t.tooBig++
			err = opError("write", link.ErrFrameTooBig)
			break
		}
		if t.cut.needs(p.Offload) {
			// Each wire frame goes through the line (a copy), which
			// keeps them in order with what follows in the batch.
			t.now, t.held = now, false
			t.cut.cut(p, false, t.holdNow)
			held = held || t.held
			continue
		}
		dec := t.model.OfferFrame(now, p.Buf[:p.N])
		for _, c := range dec.Deliver() {
			if c.Due <= now && !c.Corrupt && !c.CE && t.line.Len() == 0 {
				// Straight through, in the caller's buffer.
				if len(t.out) == cap(t.out) {
					e.flushOut(t)
				}
				t.out = append(t.out, link.Packet{Buf: p.Buf, N: p.N, Offload: p.Offload})
				continue
			}
			if !t.line.Push(c, p.Buf[:p.N], p.Offload) {
				t.queueFull++
				continue
			}
			held = true
		}
	}
	werr := e.flushOut(t)
	if derr := e.writeDue(t, now); werr == nil {
		werr = derr
	}
	if held {
		e.startReleaser(t)
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	if err == nil {
		err = werr
	}
	return n, err
}

// hold passes one wire frame through the transmit impairments into the
// line; t.mu is held.
func (t *txDir) hold(now clock.Instant, frame []byte, off link.Offload) {
	dec := t.model.OfferFrame(now, frame)
	for _, c := range dec.Deliver() {
		if !t.line.Push(c, frame, off) {
			t.queueFull++
			continue
		}
		t.held = true
	}
}

// flushOut writes t.out to the wrapped endpoint; t.mu is held.
func (e *Endpoint) flushOut(t *txDir) error {
	if len(t.out) == 0 {
		return nil
	}
	err := e.write(t, t.out)
	for i := range t.out {
		t.out[i] = link.Packet{} // keep no caller buffer
	}
	t.out = t.out[:0]
	return err
}

// write writes all of pkts to the wrapped endpoint, counting what it
// refuses; t.mu is held.
func (e *Endpoint) write(t *txDir, pkts []link.Packet) error {
	var first error
	for len(pkts) > 0 {
		n, err := e.ep.WriteBatch(pkts)
		if err == nil && n == len(pkts) {
			return first
		}
		if first == nil {
			first = err
		}
		if errors.Is(err, net.ErrClosed) {
			t.errors += uint64(len(pkts) - n)
			return first
		}
		// Skip the refused frame and carry on with the rest.
		n = min(n+1, len(pkts))
		t.errors++
		pkts = pkts[n:]
	}
	return first
}

// writeDue writes the held frames due at now, in order; t.mu is held.
func (e *Endpoint) writeDue(t *txDir, now clock.Instant) error {
	var first error
	for {
		if next, ok := t.line.Next(); !ok || next > now {
			return first
		}
		if t.drain == nil {
			k := min(max(e.ep.BatchSize(), 1), 64)
			if e.maxFrame > 16384 {
				k = min(k, 8)
			}
			t.drain = make([]link.Packet, k)
			for i := range t.drain {
				t.drain[i].Buf = make([]byte, e.maxFrame)
			}
		}
		k := 0
		for k < len(t.drain) {
			n, off, ok := t.line.Pop(now, t.drain[k].Buf)
			if !ok {
				break
			}
			t.drain[k].N, t.drain[k].Offload = n, off
			k++
		}
		if err := e.write(t, t.drain[:k]); first == nil {
			first = err
		}
	}
}

// startReleaser starts the goroutine that writes held frames when they
// come due, once; t.mu is held.
func (e *Endpoint) startReleaser(t *txDir) {
	if t.started {
		return
	}
	t.started = true
	e.wg.Add(1)
	go e.release(t)
}

func (e *Endpoint) release(t *txDir) {
	defer e.wg.Done()
	var timer *time.Timer
	for {
		t.mu.Lock()
		now := e.clk.Now()
		e.writeDue(t, now)
		next, ok := t.line.Next()
		t.mu.Unlock()
		if !ok {
			select {
			case <-t.wake:
				continue
			case <-e.done:
				return
			}
		}
		if timer == nil {
			timer = time.NewTimer(next.Sub(now))
		} else {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-timer.C:
		case <-t.wake:
		case <-e.done:
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

// ReadBatch returns frames read from the wrapped endpoint, after the
// receive impairments if there are any (see the package documentation).
func (e *Endpoint) ReadBatch(pkts []link.Packet) (int, error) {
	if e.closed.Load() {
		return 0, opError("read", net.ErrClosed)
	}
	r := e.rx
	if r == nil {
		return e.ep.ReadBatch(pkts)
	}
	if len(pkts) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	if !r.started && !e.closed.Load() {
		r.started = true
		e.wg.Add(1)
		go e.receive(r)
	}
	r.mu.Unlock()
	r.rmu.Lock()
	defer r.rmu.Unlock()
	for {
		now := e.clk.Now()
		r.mu.Lock()
		if e.closed.Load() {
			r.mu.Unlock()
			return 0, opError("read", net.ErrClosed)
		}
		n := 0
		for n < len(pkts) {
			p := &pkts[n]
			size, off, ok := r.line.Pop(now, p.Buf)
			if !ok {
				break
			}
			if size > len(p.Buf) {
				r.tooShort++
				continue
			}
			p.N, p.Offload = size, off
			n++
		}
		next, pending := r.line.Next()
		rerr := r.err
		r.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		if !pending {
			if rerr != nil {
				return 0, rerr
			}
			select {
			case <-r.wake:
			case <-e.done:
			}
			continue
		}
		if r.timer == nil {
			r.timer = time.NewTimer(next.Sub(now))
		} else {
			r.timer.Reset(next.Sub(now))
		}
		select {
		case <-r.timer.C:
		case <-r.wake:
		case <-e.done:
		}
		r.timer.Stop()
	}
}

// receive is the reader goroutine of an impaired receive direction.
func (e *Endpoint) receive(r *rxDir) {
	defer e.wg.Done()
	pkts := make([]link.Packet, max(e.ep.BatchSize(), 1))
	size := e.ep.MTU() + e.ep.Medium().HeaderLen()
	if e.ep.Caps().Has(link.CapGRO) {
		size = impair.MaxFrame
	}
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
	}
	for {
		n, err := e.ep.ReadBatch(pkts)
		now := e.clk.Now()
		r.mu.Lock()
		for i := range pkts[:n] {
			p := &pkts[i]
			if r.cut.needs(p.Offload) {
				r.cut.cut(p, true, r.offerFn(now))
				continue
			}
			r.offer(now, p.Frame(), p.Offload)
		}
		if err != nil {
			r.err = err
		}
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// offer passes one frame read through the receive impairments; r.mu is
// held.
func (r *rxDir) offer(now clock.Instant, frame []byte, off link.Offload) {
	dec := r.model.OfferFrame(now, frame)
	for _, c := range dec.Deliver() {
		if !r.line.Push(c, frame, off) {
			r.queueFull++
		}
	}
}

// offerFn returns r.offer at now as a function for cutter.cut.
func (r *rxDir) offerFn(now clock.Instant) func([]byte, link.Offload) {
	r.now = now
	return r.offerNow
}

// Close closes the wrapped endpoint, stops the endpoint's goroutines and
// discards held frames. A second Close returns an error wrapping
// net.ErrClosed.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return opError("close", net.ErrClosed)
	}
	// Goroutines are started under their direction's lock after checking
	// closed; taking each lock once orders every start before wg.Wait.
	if e.tx != nil {
		e.tx.mu.Lock()
		e.tx.mu.Unlock()
	}
	if e.rx != nil {
		e.rx.mu.Lock()
		e.rx.mu.Unlock()
	}
	close(e.done)
	err := e.ep.Close() // unblocks the reader goroutine
	e.wg.Wait()
	if e.tx != nil {
		e.tx.mu.Lock()
		e.tx.line.Clear()
		e.tx.mu.Unlock()
	}
	if e.rx != nil {
		e.rx.mu.Lock()
		e.rx.line.Clear()
		e.rx.mu.Unlock()
	}
	return err
}

// SetUp brings the impaired link up or down (both impaired directions).
// While it is down, frames are dropped and counted (DroppedDown).
func (e *Endpoint) SetUp(up bool) {
	if e.tx != nil {
		e.tx.mu.Lock()
		e.tx.model.SetUp(up)
		e.tx.mu.Unlock()
	}
	if e.rx != nil {
		e.rx.mu.Lock()
		e.rx.model.SetUp(up)
		e.rx.mu.Unlock()
	}
}

// Stats returns the counters.
func (e *Endpoint) Stats() Stats {
	var s Stats
	if t := e.tx; t != nil {
		t.mu.Lock()
		s.Tx = t.model.Counters()
		s.TxQueueFull, s.TxTooBig, s.TxErrors = t.queueFull, t.tooBig, t.errors
		s.TxSegmented, s.TxBadOffload = t.cut.segmented, t.cut.bad
		t.mu.Unlock()
	}
	if r := e.rx; r != nil {
		r.mu.Lock()
		s.Rx = r.model.Counters()
		s.RxQueueFull, s.RxTooShort = r.queueFull, r.tooShort
		s.RxSegmented, s.RxBadOffload = r.cut.segmented, r.cut.bad
		r.mu.Unlock()
	}
	return s
}
