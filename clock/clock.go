// Package clock defines the time values the protocol cores use.
//
// The cores (tcp, network, stack) never read a clock: every entry point takes
// the current time as an Instant, and every timer is reported as a deadline.
// The goroutine runtime passes real monotonic time; the simulator passes
// virtual time. Both use this one type, so a run in the simulator and a run on
// a real link execute the same code.
package clock

import (
	"math"
	"time"
)

// Instant is a point in time: nanoseconds since an epoch chosen by whoever
// drives the core (the runtime's start, or zero in a simulation). Instants are
// comparable with < and ==; the zero value is a valid instant (the epoch).
type Instant int64

// Never is the deadline of a timer that is not armed. It compares after every
// other Instant, so the earliest of several deadlines is a plain minimum.
const Never Instant = math.MaxInt64

// Add returns t+d. Adding to Never, or overflowing, gives Never.
func (t Instant) Add(d time.Duration) Instant {
	if t == Never {
		return Never
	}
	s := t + Instant(d)
	if d > 0 && s < t {
		return Never
	}
	return s
}

// Sub returns the duration t-u.
func (t Instant) Sub(u Instant) time.Duration { return time.Duration(t - u) }

// Before reports whether t is before u.
func (t Instant) Before(u Instant) bool { return t < u }

// After reports whether t is after u.
func (t Instant) After(u Instant) bool { return t > u }

// Min returns the earlier of t and u.
func Min(t, u Instant) Instant {
	if u < t {
		return u
	}
	return t
}

// String formats the instant as seconds since the epoch, or "never".
func (t Instant) String() string {
	if t == Never {
		return "never"
	}
	return time.Duration(t).String()
}

// Real converts wall-clock time to Instants measured from an epoch, using the
// monotonic clock. The zero Real is not usable; make one with NewReal.
type Real struct{ epoch time.Time }

// NewReal returns a Real whose epoch is now.
func NewReal() Real { return Real{epoch: time.Now()} }

// Now returns the current Instant.
func (r Real) Now() Instant { return Instant(time.Since(r.epoch)) }

// Time converts an Instant back to wall-clock time.
func (r Real) Time(t Instant) time.Time { return r.epoch.Add(time.Duration(t)) }

// Until returns how long from now until t (negative if t has passed).
func (r Real) Until(t Instant) time.Duration { return t.Sub(r.Now()) }
