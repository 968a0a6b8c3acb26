package stack

import (
	"syscall"

	"github.com/ustack/ustack/tcp"
)

// Events are what a socket — a TCP connection, a TCP listener or a UDP
// socket — reports to its owner through PollEvent, so that the owner can
// wake the calls waiting on it. The names say nothing of the protocol:
// the TCP core has its own (tcp.Events), which the stack translates in
// one place, tcpEvents.
type Events uint8

// The events.
const (
	// EventEstablished: a connection's handshake completed.
	EventEstablished Events = 1 << iota
	// EventReadable: something to read arrived — data or the peer's
	// FIN on a connection, a datagram on a UDP socket, a connection to
	// accept on a listener.
	EventReadable
	// EventWritable: room to write was freed.
	EventWritable
	// EventClosed: the socket reached its end (a connection CLOSED, a
	// listener or UDP socket closed). The owner may forget it once the
	// application has too.
	EventClosed
)

// ErrWouldBlock is the error of a socket call that would have to wait:
// nothing to read, no room to write, no connection established yet. It
// matches syscall.EAGAIN with errors.Is, and tcp.ErrWouldBlock (which the
// stack's TCP calls translate to it, in sockErr).
var ErrWouldBlock error = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string { return "operation would block" }

// Errno returns EAGAIN.
func (wouldBlockError) Errno() syscall.Errno { return syscall.EAGAIN }

// Temporary reports true: a retry can succeed (net.Error).
func (wouldBlockError) Temporary() bool { return true }

// Timeout reports false (net.Error).
func (wouldBlockError) Timeout() bool { return false }

func (wouldBlockError) Is(target error) bool {
	return target == syscall.EAGAIN || target == tcp.ErrWouldBlock
}

// tcpEvents translates the TCP core's events into the socket layer's.
func tcpEvents(ev tcp.Events) Events {
	var out Events
	if ev&tcp.EventEstablished != 0 {
		out |= EventEstablished
	}
	if ev&tcp.EventReadable != 0 {
		out |= EventReadable
	}
	if ev&tcp.EventWritable != 0 {
		out |= EventWritable
	}
	if ev&tcp.EventClosed != 0 {
		out |= EventClosed
	}
	return out
}

// sockErr translates the TCP core's errors for the socket layer: its
// ErrWouldBlock becomes the stack's; the others, which carry their errno,
// pass unchanged.
func sockErr(err error) error {
	if err == tcp.ErrWouldBlock {
		return ErrWouldBlock
	}
	return err
}
