package ustack

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
)

// shard is one serialised part of the runtime. It owns the lock, the
// protocol core (a stack.Stack) that the lock guards, the output queues in
// which the core's frames wait to be written to the links, the delivery of
// the core's socket events, and the timer that runs the core's deadlines.
// A Stack has Config.Shards of them (GOMAXPROCS by default); input.go and
// shards.go choose among them.
//
// Every call into the core follows one pattern: lock, a non-blocking
// core call, unlock. unlock collects what the call made — frames, socket
// events, a new deadline — while the lock is still held, then releases the
// lock, then wakes the sockets and writes the frames. Nothing blocks while
// the lock is held: a link whose write waits (a full TAP queue waits up to
// 50 ms) delays only the frames behind it, never another socket's calls,
// the readers or the timer; and an owner woken by an event may call into
// the shard at once (the callback API of issue 13 will rely on it).
//
// Frames keep their order. Each NIC has an output queue per shard, and a
// writer token: the goroutine that finds frames queued and no writer takes
// the token, moves the queued batch out (under the lock), and writes it
// with the lock released; it then takes the lock again and goes on while
// frames are queued, so one goroutine at a time writes a queue, in order.
// Goroutines that queue frames meanwhile leave them to the writer. When a
// queue is full the shard stops polling the core (the frame polled last
// waits in spare): TCP keeps its data in its send buffers, so a busy
// writer pushes back on the core instead of growing a queue; the writer
// polls again when it has written. On a stack with several NICs, a
// writer stuck in the link for stallDrop no longer holds the core's output
// back: frames for its queue are dropped, so other NICs' frames go out.
type shard struct {
	s      *Stack
	idx    int        // its place in s.shards
	self   [1]*shard  // this shard, as a slice for block
	mu     sync.Mutex // guards what follows
	core   *stack.Stack
	closed bool

	spare link.Packet // the buffer PollTransmit fills before its NIC is known
	held  *outQueue   // the queue spare's frame waits for room in, or nil
	out   []*outQueue // one per NIC, by NIC ID - 1
	// rxBufLen is the longest read buffer of any NIC (readBufLen);
	// output buffers of big frames are at least as long, so that a link
	// that hands frames over by exchanging buffers (link.Packet.Swap)
	// can give a written frame's buffer to a reader (small frames are
	// copied, by the link too: smallOut).
	rxBufLen int
	// socks are the sockets close must close that the core does not
	// list: listeners, UDP and ping sockets, forwarders, and TCP
	// connections whose core connection ended (EventClosed) while their
	// owner lives on (register). A TCP connection's owner is found
	// through the core's table (stack.Stack.ConnOwners) instead: an
	// entry here for each of them cost about 40 bytes per idle end.
	socks map[sockCloser]struct{}

	// timer runs fire at timerAt, no later than the core's next deadline
	// (rearmLocked moves it only earlier). It is a
	// time.AfterFunc, so each run has a goroutine of its own: one held
	// up writing to a slow link does not hold up the next. Its function
	// reaches the shard through timerRef, which Stack.Close clears: a
	// stopped timer can stay in the runtime's heap for a while, and must
	// not keep a closed stack's memory alive.
	timer    *time.Timer
	timerRef *atomic.Pointer[shard]
	timerAt  clock.Instant

	synFlooded atomic.Bool // the core is SYN-flooded, as last seen (shed.go)

	idle     sync.Cond   // broadcast when a writer returns its token while waitIdle
	waitIdle atomic.Bool // close waits on idle
}

// outQueue holds one NIC's frames from one shard, in the order the core
// made them.
type outQueue struct {
	nic  *NIC
	tx   *txQueue      // the link queue this shard writes the NIC's frames to
	fill []link.Packet // fill[:n] are queued; guarded by the shard lock
	n    int
	// writing is the writer token. It is taken only under the shard
	// lock; its holder may give it back without the lock when more is
	// false: more is set (under the lock) when frames are queued while
	// the token is taken, before the token is read, so either the
	// holder sees more or the goroutine that queued sees the token free
	// and writes itself.
	writing, more atomic.Bool
	since         clock.Instant // when the token was taken; guarded by the shard lock
	flight        []link.Packet // flight[:flightN] are being written by the token's holder
	flightN       int
}

func newShard(s *Stack, core *stack.Stack) *shard {
	sh := &shard{
		s:       s,
		core:    core,
		socks:   map[sockCloser]struct{}{},
		timerAt: clock.Never,
	}
	sh.self[0] = sh
	core.SetOwner(sh) // a CallbackConn finds its shard through it
	sh.idle.L = &sh.mu
	ref := new(atomic.Pointer[shard])
	ref.Store(sh)
	sh.timerRef = ref
	sh.timer = time.AfterFunc(time.Hour, func() {
		if sh := ref.Load(); sh != nil {
			sh.fire()
		}
	})
	sh.timer.Stop()
	return sh
}

// addNIC gives the shard an output queue for a new NIC. The caller holds
// sh.mu.
func (sh *shard) addNICLocked(n *NIC) {
	size := max(n.ep.BatchSize(), 1)
	q := &outQueue{
		nic:    n,
		tx:     n.txq[sh.idx%len(n.txq)],
		fill:   make([]link.Packet, size),
		flight: make([]link.Packet, size),
	}
	for i := range size {
		// The slots' buffers are used afresh every time: a link may
		// take a frame by exchanging buffers (link/pipe does).
		q.fill[i].Swap = true
		q.flight[i].Swap = true
	}
	sh.out = append(sh.out, q)
	sh.rxBufLen = max(sh.rxBufLen, readBufLen(n.ep))
}

// unlock ends a critical section: it collects the core's output, releases
// sh.mu, wakes the sockets that have events, and writes queued frames if
// no other goroutine is writing them. The caller holds sh.mu, and must
// use unlock (not sh.mu.Unlock) after any call that may have changed the
// core; read-only calls may just unlock.
func (sh *shard) unlock() { sh.unlockAt(sh.s.now()) }

// unlockAt is unlock for a caller that has just read the clock: now
// stands for the first round's time (a clock read costs as much as a
// small core call on some VMs: 14 % of rr's CPU was runtime.nanotime).
func (sh *shard) unlockAt(now clock.Instant) {
	var wakes wakeBatch
	for round := 0; ; round++ {
		if round > 0 {
			now = sh.s.now()
		}
		sh.collectLocked(now)
		more := sh.takeEventsLocked(&wakes)
		q, others := sh.takeWriteLocked(now)
		more = more || others
		if q != nil && sh.held != nil {
			// The move made room for the frame that waited: collect
			// again, and go round once more for what that makes.
			sh.collectLocked(now)
			more = true
		}
		sh.mu.Unlock()
		wakes.deliver()
		if q != nil {
			q.write()
			q.writing.Store(false)
			if q.more.Load() || sh.waitIdle.Load() {
				more = true // frames came meanwhile, or close waits
			}
		}
		if !more {
			break
		}
		sh.mu.Lock()
		if sh.waitIdle.Load() {
			sh.idle.Broadcast()
		}
	}
	if h := sh.s.host; h != nil && h.Pending() {
		sh.s.syncShards()
	}
}

// stallDrop is how long a queue's writer may be in the link's write, with
// the queue full behind it, before frames for that queue are dropped
// rather than waited for (on a stack with more than one NIC). Until then a full queue stops the polling (the
// frames stay in the core, TCP's in its send buffers), which is what a
// busy writer on a fast link needs; past it the link's own queue is full
// (a TAP write waits up to 50 ms for room, then drops what is left, as a
// NIC's full queue does), and holding the core's output for it would hold
// up every other NIC's frames behind the next one for this NIC.
const stallDrop = 10 * time.Millisecond

// stalled reports whether q's frames are to be dropped rather than held:
// its writer has been in the link's write for stallDrop, and the shard has
// other NICs, whose frames may be waiting behind q's. With one NIC there
// is nothing to let through, and the frames wait, as they did when the
// link's write was made under the lock.
func (sh *shard) stalled(q *outQueue, now clock.Instant) bool {
	return len(sh.out) > 1 && q.writing.Load() && now.Sub(q.since) >= stallDrop
}

// smallOut is the length of the buffers an output slot keeps for small
// frames, and the longest frame copied into one; copySmallMin is the
// frame buffer length (the core's MaxFrameLen) from which small frames
// are copied.
//
// The rule: where the core's frames may be long (a link with TSO/GSO
// offloads: 64 KiB super-frames, so 64 KiB buffers), a frame of at most
// smallOut bytes — a SYN, an ACK, an rr request — is copied from the
// spare into a small buffer of its slot's, and the spare stays for the
// next poll; a longer frame changes places with the slot's buffer
// (zero-copy, what bulk needs), and a slot whose buffer is short gets a
// full one. So a slot holds a full buffer only once a big frame has used
// it: a queue that carries only small frames holds at most 2 ×
// BatchSize small buffers (fill and flight), not 2 × BatchSize × 64 KiB
// (per shard per NIC). A slot's buffer never shrinks: a slot that has
// carried a big frame copies small ones into its full buffer, and a
// link that exchanges buffers (link.Packet.Swap) hands back one at least
// as long; so no mix of frames allocates once every slot has what it
// needs. Where MaxFrameLen is below copySmallMin (no offloads, an MTU up
// to about 8,000 bytes), every frame keeps the exchange: a full buffer
// is about a small one's size already (1,518 bytes at MTU 1500), so
// copying every frame of a bulk transfer would save nothing.
const (
	smallOut     = 2048
	copySmallMin = 4 * smallOut
)

// collectLocked moves the frames the core has ready into the output
// queues, until the core has none or the queue of the next one is full,
// and points the timer at the core's next deadline. A frame for a queue
// whose writer has stalled (stallDrop) is dropped and counted. Small
// frames are copied into small buffers, big ones exchanged (smallOut).
func (sh *shard) collectLocked(now clock.Instant) {
	size := sh.core.MaxFrameLen()
	copySmall := size >= copySmallMin
	if size > 16384 {
		size = max(size, sh.rxBufLen) // see rxBufLen
	}
	for {
		if sh.held == nil {
			if len(sh.spare.Buf) < size {
				sh.spare.Buf = make([]byte, size)
			}
			id, ok := sh.core.PollTransmit(now, &sh.spare)
			if !ok {
				break
			}
			sh.held = sh.out[id-1]
		}
		q := sh.held
		if q.n == len(q.fill) {
			if sh.stalled(q, now) {
				q.nic.txStallDrops.Add(1)
				sh.held = nil
				continue
			}
			break // full: its writer collects again when it has written
		}
		if q.writing.Load() {
			q.more.Store(true)
		}
		slot := &q.fill[q.n]
		if n := sh.spare.N; copySmall && n <= smallOut {
			// A small frame is copied: the slot keeps (or makes)
			// a buffer of its own and the spare stays for the next
			// poll (see smallOut).
			if len(slot.Buf) < n {
				slot.Buf = make([]byte, smallOut)
			}
			copy(slot.Buf, sh.spare.Buf[:n])
		} else {
			// A big frame changes places with the slot's buffer,
			// without a copy; a slot whose buffer is short (small,
			// or none yet) has a full one made for the spare.
			if len(slot.Buf) < size {
				slot.Buf = make([]byte, size)
			}
			slot.Buf, sh.spare.Buf = sh.spare.Buf, slot.Buf
		}
		slot.N, slot.Offload = sh.spare.N, sh.spare.Offload
		q.n++
		sh.held = nil
	}
	sh.rearmLocked(now)
}

// takeWriteLocked gives the caller the writer token of a queue that has
// frames and no writer, with those frames moved to its flight batch (nil
// if there is none), and reports whether another such queue remains.
func (sh *shard) takeWriteLocked(now clock.Instant) (q *outQueue, others bool) {
	for _, o := range sh.out {
		if o.n == 0 || o.writing.Load() {
			continue
		}
		if q != nil {
			return q, true
		}
		q = o
		q.writing.Store(true)
		q.more.Store(false)
		q.since = now
		q.fill, q.flight = q.flight, q.fill
		q.flightN, q.n = q.n, 0
	}
	return q, false
}

// writingLocked reports whether a goroutine holds a writer token or
// frames wait to be written.
func (sh *shard) writingLocked() bool {
	for _, q := range sh.out {
		if q.writing.Load() || q.n > 0 {
			return true
		}
	}
	return sh.held != nil
}

// write writes the flight batch to the NIC's link. The caller holds q's
// writer token, not the shard lock. A link error drops the rest of the
// batch, as a NIC's full queue would; TCP retransmits.
func (q *outQueue) write() {
	n := q.nic
	if !q.tx.concurrent {
		q.tx.wmu.Lock() // links take one writer at a time (link.Endpoint)
	}
	for done := 0; done < q.flightN; {
		k, err := q.tx.ep.WriteBatch(q.flight[done:q.flightN])
		if err != nil {
			n.txErrs.Add(1)
			break
		}
		if k <= 0 {
			break
		}
		done += k
	}
	if !q.tx.concurrent {
		q.tx.wmu.Unlock()
	}
	q.flightN = 0
}

// rearmLocked makes sure the timer runs no later than the core's next
// deadline, or the time a frame waiting for a full queue is to be dropped
// (stallDrop) if that comes first; now is the time of the caller's clock
// read. The timer is moved only earlier: a deadline that moves later (a
// retransmission timer pushed back by every ACK, a connection's deadline
// cleared) leaves it where it is, and a run that comes early finds
// nothing due and sets it again. A round trip pushes the retransmission
// timer back every time, and a time.Timer's Reset takes the runtime's
// timer lock and reads the clock: in rr the timer was reset on almost
// every unlock; now it is reset about once per retransmission timeout.
// Every run of fire the timer is set for is counted in the stack's
// WaitGroup (Add here, under the lock and before Close waits; Done when
// the run ends or Stop cancels it), so Close returns only when no run is
// left.
func (sh *shard) rearmLocked(now clock.Instant) {
	d := sh.core.NextDeadline()
	if q := sh.held; q != nil && len(sh.out) > 1 && q.writing.Load() {
		d = clock.Min(d, q.since.Add(stallDrop))
	}
	if d >= sh.timerAt || sh.closed {
		return // armed no later than d, or nothing to run
	}
	sh.timerAt = d
	if !sh.timer.Reset(max(d.Sub(now), 0)) {
		sh.s.wg.Add(1) // not pending: Reset set up a new run
	}
}

// fire is the timer's run: when the earliest deadline of any connection,
// neighbour or reassembly passes, it runs the core's timeouts.
func (sh *shard) fire() {
	defer sh.s.wg.Done()
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return
	}
	sh.timerAt = clock.Never
	now := sh.s.now()
	sh.core.HandleTimeout(now)
	sh.unlockAt(now)
}

// input hands received frames to the core; it reports false once the
// shard is closed.
func (sh *shard) input(id stack.NICID, pkts []link.Packet) bool {
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return false
	}
	now := sh.s.now()
	for i := range pkts {
		sh.core.HandleFrame(now, id, &pkts[i])
		pkts[i].N = 0
		pkts[i].Offload = link.Offload{}
	}
	sh.noteSynFlood(now)
	sh.unlockAt(now)
	return true
}

// close marks the shard closed, closes its sockets (their blocked calls
// return net.ErrClosed), resets its connections, and returns when the
// frames that made have been written.
func (sh *shard) close() {
	sh.mu.Lock()
	sh.closed = true
	// Sockets are marked closed before the core resets their
	// connections, so a woken Read reports net.ErrClosed, not the reset;
	// they are woken after the lock, as always.
	//
	// The TCP connections' owners (a CallbackConn, the net.Conn
	// adapter) are those of the core's connections, TIME-WAIT, accept
	// queues and parked ones included (ConnOwners does not unpark); a
	// connection whose core connection ended and left the table is in
	// socks if its owner still needs closing (takeEventsLocked). One
	// found both ways is closed twice: closeFromStack and wake are
	// idempotent.
	socks := make([]sockCloser, 0, len(sh.socks))
	add := func(so sockCloser) {
		so.closeFromStack()
		socks = append(socks, so)
	}
	for so := range sh.socks {
		add(so)
	}
	sh.core.ConnOwners(func(o any) {
		if so, ok := o.(sockCloser); ok {
			add(so)
		}
	})
	sh.core.Close()
	sh.unlock()
	for _, so := range socks {
		so.wake(stack.EventClosed)
	}
	sh.mu.Lock()
	if sh.timer.Stop() {
		sh.s.wg.Done()
	}
	sh.waitIdle.Store(true) // before writingLocked reads the tokens
	for sh.writingLocked() {
		sh.idle.Wait()
	}
	sh.waitIdle.Store(false)
	sh.mu.Unlock()
}

// register and unregister track the sockets close must close that the
// core does not list (socks). The caller holds sh.mu.
func (sh *shard) register(so sockCloser) { sh.socks[so] = struct{}{} }

func (sh *shard) unregister(so sockCloser) { delete(sh.socks, so) }

// waker is what a socket's owner object does when the core reports
// events. It is called with no lock held.
type waker interface {
	wake(ev stack.Events)
}

// wakeBatch carries socket events from the core, taken under the lock, to
// their owners, woken after it.
type wakeBatch struct {
	n  int
	w  [16]waker
	ev [16]stack.Events
}

// takeEventsLocked moves the core's socket events into b; it reports
// whether b filled up before the core ran out (then there may be more).
func (sh *shard) takeEventsLocked(b *wakeBatch) (more bool) {
	for b.n < len(b.w) {
		so, ev, ok := sh.core.PollEvent()
		if !ok {
			return false
		}
		if w, ok := so.Owner().(waker); ok {
			if ev&stack.EventClosed != 0 {
				sh.endedLocked(w)
			}
			b.w[b.n], b.ev[b.n] = w, ev
			b.n++
		}
	}
	return true
}

// endedLocked is told of an owner whose core connection reached CLOSED
// (EventClosed), under the lock that polled the event: the core
// connection leaves the table (stack.Stack.ConnOwners) now or once its
// last frames are polled. A net.Conn adapter lives on until the program
// closes it, and a Stack.Close before then must still close it (its
// calls then return net.ErrClosed): it goes into socks until its Close.
// If the shard closed before the event was polled (the core's Close, or
// an event left for a later round of unlock), it is closed here, before
// it is woken. A CallbackConn needs neither: the event it is woken with
// ends it (OnClose, with the connection's own error).
func (sh *shard) endedLocked(w waker) {
	c, ok := w.(*TCPConn)
	if !ok {
		return
	}
	switch {
	case sh.closed:
		c.closeFromStack()
	case !c.closed.Load() && !c.listed:
		c.listed = true
		sh.register(c)
	}
}

// deliver wakes the owners and empties b.
func (b *wakeBatch) deliver() {
	for i := 0; i < b.n; i++ {
		b.w[i].wake(b.ev[i])
		b.w[i] = nil
	}
	b.n = 0
}

// signal is a one-slot wake-up: a send never blocks and is never lost.
type signal chan struct{}

func newSignal() signal { return make(signal, 1) }

func (c signal) notify() {
	select {
	case c <- struct{}{}:
	default:
	}
}

// isDone reports whether ch is closed (a socket's close channel).
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitOn is what a blocking call waits on between tries: its socket's
// signal, its deadline (nil: none) and its socket's close channel, and a
// dial's context (nil: none). Closing a socket closes its close channel
// and then notifies its signals, and a passing deadline notifies its
// signal (deadline.sig), so a waiting call needs only the signal to see
// either.
//
// A socket that keeps its deadline or its close lazily gives dlp (the
// deadline, loaded on every round: nil while none was ever set) or
// closed (a flag, set before its signals are notified) instead.
//
// A call that seldom waits (a TCP Write) gives lazy, its socket's signal
// made on demand, instead of sig: the signal is made only when the call
// first has to wait (or has a deadline to check), and the call then
// tries once more before it waits on it, since a wake-up before the
// signal existed was not kept (lazySignal.notify).
type waitOn struct {
	sig     signal
	lazy    *lazySignal
	dl      *deadline
	dlp     *atomic.Pointer[deadline]
	closing <-chan struct{}
	closed  *atomic.Bool
	cancel  <-chan struct{}
}

// isClosed reports whether the socket waited on is closing.
func (w *waitOn) isClosed() bool {
	return w.closed != nil && w.closed.Load() || isDone(w.closing)
}

// deadline returns the deadline waited on, or nil.
func (w *waitOn) deadline() *deadline {
	if w.dl == nil && w.dlp != nil {
		return w.dlp.Load()
	}
	return w.dl
}

// errWaitCanceled is block's report that waitOn.cancel fired; the caller
// turns it into its context's error.
var errWaitCanceled = errors.New("ustack: wait canceled")

// tryResult is what a blocking call's try reports to block.
type tryResult uint8

const (
	// tryWait: nothing changed (the call would block); wait and try
	// again.
	tryWait tryResult = iota
	// tryMoved: the call changed the core (a partial write) but is not
	// done; send what it made, wait and try again.
	tryMoved
	// tryDone: the call is done.
	tryDone
)

// block is the loop every blocking call shares (TCP Read and Write,
// Accept, UDP reads, dials). A socket has a part in one shard, or in each
// of several (a listener): shards lists them, and try(i) is the
// non-blocking call on the part in shards[i]. Each round checks that the
// socket is open and its deadline has not passed before it tries (a
// deadline that passes between the try and the wait notifies the signal,
// which keeps it, so it is not missed); then, for each shard from
// shards[first] on, it runs try(i) under the shard's lock and unlocks,
// which sends what try made and wakes sockets (a try that changed nothing
// just releases the lock); then, unless a try was done, it waits for the
// socket's signal (which a close and a passing deadline notify too) or
// the cancellation, and tries again. It returns nil when a try is done,
// net.ErrClosed, os.ErrDeadlineExceeded or errWaitCanceled.
//
// Goroutines blocked in Read sit in this frame, one per idle connection
// that has a reader: so it is kept small, and, deadline or not, the wait
// is a plain receive on the signal (one sudog, and a stack that stays at
// its first 2 KiB) rather than a select; only a dial, which has a
// context, selects.
func block(shards []*shard, first int, w *waitOn, try func(i int) tryResult) error {
	for {
		if w.isClosed() {
			return net.ErrClosed
		}
		if dl := w.deadline(); dl != nil {
			if w.sig == nil {
				w.sig = w.lazy.get() // the deadline notifies it
			}
			if dl.check(w.sig) {
				// Another call waiting on the same signal may not
				// have been woken by the deadline's notify: pass it
				// on.
				w.sig.notify()
				return os.ErrDeadlineExceeded
			}
		}
		for k := range shards {
			i := (first + k) % len(shards)
			sh := shards[i]
			sh.mu.Lock()
			if w.isClosed() {
				sh.mu.Unlock()
				return net.ErrClosed
			}
			r := try(i)
			if r == tryWait {
				sh.mu.Unlock()
			} else {
				sh.unlock()
			}
			if r == tryDone {
				return nil
			}
		}
		if w.sig == nil {
			w.sig = w.lazy.get() // and try again before waiting on it
			continue
		}
		if w.cancel == nil {
			<-w.sig // a passing deadline notifies it too (deadline.sig)
		} else if w.sleep() {
			return errWaitCanceled
		}
	}
}

// sleep waits for the signal or the cancellation; it reports whether the
// call was cancelled. It is out of line so that the select's room is not
// in block's frame.
//
//go:noinline
func (w *waitOn) sleep() (canceled bool) {
	select {
	case <-w.sig:
	case <-w.cancel:
		return true
	}
	return false
}

// applyDefaults gives a new connection package net's socket defaults
// (TCP_NODELAY, keep-alive every 15 s) unless the Config says otherwise.
// The caller holds sh.mu.
func (sh *shard) applyDefaults(sc *stack.TCPConn) {
	cfg := &sh.s.cfg
	sc.SetNoDelay(!cfg.Nagle)
	if ka := cfg.KeepAlive; ka >= 0 {
		if ka == 0 {
			ka = 15 * time.Second
		}
		sc.SetKeepAlive(sh.s.now(), true, ka, ka, 9)
	}
}

// wouldBlock reports whether err is the core's "would block". It
// compares with the sentinel before it asks errors.Is, so that the call
// a blocked reader makes on every wake-up stays shallow (see block).
func wouldBlock(err error) bool {
	if err == nil {
		return false
	}
	return err == stack.ErrWouldBlock || errors.Is(err, stack.ErrWouldBlock)
}

// closeFlag is claimed by whichever of a socket's Close and its
// closeFromStack (Stack.Close) comes first; the other returns at once.
// It is not a sync.Once: Close takes the shard lock inside its once-only
// work while Stack.Close calls closeFromStack with that lock held, so a
// Once's mutex would be taken in both orders and the two could deadlock.
type closeFlag struct{ b atomic.Bool }

// claim reports whether the caller is the first to close.
func (f *closeFlag) claim() bool { return f.b.CompareAndSwap(false, true) }
