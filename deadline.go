package ustack

import (
	"sync"
	"time"
)

// deadline is one direction's deadline of a socket (net.Conn
// SetReadDeadline, SetWriteDeadline): an absolute time after which waiting
// calls fail with os.ErrDeadlineExceeded. Waiters select on wait(); set
// replaces the channel, so a stale timer can never cancel a new deadline
// (the same problem the runtime's netpoll solves with sequence numbers).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes; nil: none set
}

// set arms the deadline at t; the zero time clears it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	// A channel that already fired stays closed for an expired deadline;
	// otherwise make a fresh one.
	if d.cancel != nil {
		select {
		case <-d.cancel:
			d.cancel = nil
		default:
		}
	}
	if t.IsZero() {
		return
	}
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.cancel)
		return
	}
	ch := d.cancel
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.cancel == ch {
			close(ch)
			d.timer = nil
		}
	})
}

// wait returns a channel closed when the deadline passes, or nil (never
// ready) if none is set.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	ch := d.wait()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
