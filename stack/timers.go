package stack

import (
	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/wheel"
)

// connTimers holds every connection's next deadline: the single timer
// structure of the stack's per-flow state, a hierarchical timing wheel
// (internal/wheel). Each connection carries its own wheel entry (TCPConn's
// timer), so arming, moving and disarming allocate nothing and cost the
// same with ten connections or a million; a connection with no armed
// timer is not in it, and an idle one with keep-alive is in a slot of a
// high level that nothing looks at until the slot comes up. Timers fire
// at their exact instant (the wheel's near heap), so the simulator and
// the packet scripts see the same times as with the heap it replaced;
// NextDeadline may come up to a tick (about 1 ms) before the first
// deadline when the wheel must first bring a slot down, and that
// HandleTimeout finds nothing due.
type connTimers struct {
	w wheel.Wheel[*TCPConn]
}

// update puts c at its deadline d, arming, moving or disarming it.
func (t *connTimers) update(c *TCPConn, d clock.Instant) {
	c.timer.Value = c
	t.w.Set(&c.timer, d)
}

// remove disarms c's timer, if armed.
func (t *connTimers) remove(c *TCPConn) { t.w.Stop(&c.timer) }

// pop removes and returns a connection whose deadline is at or before
// now, or nil.
func (t *connTimers) pop(now clock.Instant) *TCPConn {
	e := t.w.Pop(now)
	if e == nil {
		return nil
	}
	return e.Value
}

// next returns when pop must next be called, or clock.Never.
func (t *connTimers) next() clock.Instant { return t.w.Next() }

// len returns the number of connections with an armed deadline.
func (t *connTimers) len() int { return t.w.Len() }
