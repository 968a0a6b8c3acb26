package ustack

import (
	"sync"
	"time"
)

// deadline is one direction's deadline of a socket (net.Conn
// SetReadDeadline and SetWriteDeadline, Listener.SetDeadline): an
// absolute time after which pending and future calls fail with
// os.ErrDeadlineExceeded, as in package net.
//
// A blocking call asks check, giving its socket's signal, before it
// tries the operation, then waits on that signal, and asks again when
// woken. When the deadline passes, whether by the timer or by set with a
// time not in the future, it notifies the signal the last check gave
// (sig),
// so a deadline set, moved earlier or into the past while a call waits
// applies to that call, and the call waits on one channel, not a select
// over two (a select cost rr 6 % of its CPU). A deadline moved later or
// cleared notifies nothing: the waiting call goes on waiting until the
// new time, or for good. The channel wait returns (closed when the
// deadline passes) is for callers that select on it themselves.
//
// Every set starts a new generation, and a timer only acts for the
// generation that armed it: a timer that fired but still waits for mu
// when set moves or clears the deadline cannot pass the new one (the
// runtime's netpoll does the same with its sequence numbers). A call
// made once the time has come fails even if the timer has not run yet:
// wait and expired compare the clock with an armed deadline.
type deadline struct {
	mu     sync.Mutex
	gen    uint64        // bumped by every set and by stop
	timer  *time.Timer   // armed for generation gen, or nil
	at     time.Duration // when the armed timer's deadline passes, on monoNow's clock
	passed bool          // the current deadline has passed
	ch     chan struct{} // closed when the deadline passes; made by wait
	sig    signal        // notified when the deadline passes (the waiting calls' signal; set by check)
}

// monoBase and monoNow are a monotonic clock that costs one clock read:
// time.Now reads the wall clock as well, and every blocking call with an
// armed deadline compares it with the time (checkLocked): time.Now there
// was 9 % of rr's CPU (the bench sets deadlines, as net/http does).
var monoBase = time.Now()

func monoNow() time.Duration { return time.Since(monoBase) }

// set arms the deadline at t; the zero time clears it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.passed {
		// The closed channel stays with the calls it woke; the next
		// wait gets a fresh one.
		d.passed = false
		d.ch = nil
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		d.passLocked()
		return
	}
	gen := d.gen
	d.at = monoNow() + dur
	d.timer = time.AfterFunc(dur, func() { d.fire(gen) })
}

// fire is the timer of generation gen.
func (d *deadline) fire(gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen != d.gen || d.passed {
		return // set or stop came first, or a call saw the time had come
	}
	d.timer = nil
	d.passLocked()
}

// passLocked marks the deadline passed and wakes the calls waiting on it.
func (d *deadline) passLocked() {
	d.passed = true
	if d.ch != nil {
		close(d.ch)
	}
	if d.sig != nil {
		d.sig.notify()
	}
}

// checkLocked passes an armed deadline whose time has come before its
// timer ran; it reports whether the deadline has passed.
func (d *deadline) checkLocked() bool {
	if !d.passed && d.timer != nil && monoNow() >= d.at {
		d.timer.Stop()
		d.timer = nil
		d.passLocked()
	}
	return d.passed
}

// wait returns whether the deadline has passed and, if not, the channel
// that will be closed when it does. A caller takes it before it tries
// its operation, so a set between the try and the wait is not missed.
func (d *deadline) wait() (<-chan struct{}, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.checkLocked() {
		return nil, true
	}
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch, false
}

// stop releases the timer (the socket is closing; its close channel wakes
// the callers).
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// check is expired for a call that waits on sig between tries: sig is
// what the deadline notifies when it passes (every call on one deadline
// waits on the same socket signal).
func (d *deadline) check(sig signal) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sig = sig
	return d.checkLocked()
}

// expired reports whether the deadline has passed, for calls that do not
// wait.
func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.checkLocked()
}
