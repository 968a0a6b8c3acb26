package tcp

import "syscall"

// Error is a TCP connection error. Each one also matches its syscall.Errno
// with errors.Is, so callers can test errors.Is(err, syscall.ECONNRESET) as
// they would with the kernel's sockets.
type Error struct {
	msg   string
	errno syscall.Errno
}

func (e *Error) Error() string { return e.msg }

// Is reports whether target is this error or its errno.
func (e *Error) Is(target error) bool {
	if e.errno != 0 {
		if errno, ok := target.(syscall.Errno); ok {
			return errno == e.errno
		}
	}
	return false
}

// Errno returns the syscall error number the error corresponds to.
func (e *Error) Errno() syscall.Errno { return e.errno }

// Timeout reports whether the error is a timeout (net.Error).
func (e *Error) Timeout() bool { return e.errno == syscall.ETIMEDOUT }

// Temporary reports whether the error is ErrWouldBlock, the only one a
// retry can cure (net.Error); every other TCP error is permanent.
func (e *Error) Temporary() bool { return e == ErrWouldBlock }

// The errors a Conn reports.
var (
	// ErrWouldBlock means the call would have to wait: no data to read,
	// no room to write, or the connection is not established yet.
	ErrWouldBlock = &Error{msg: "operation would block", errno: syscall.EAGAIN}
	// ErrConnRefused: the peer answered our SYN with a RST.
	ErrConnRefused = &Error{msg: "connection refused", errno: syscall.ECONNREFUSED}
	// ErrConnReset: the peer reset an established connection.
	ErrConnReset = &Error{msg: "connection reset by peer", errno: syscall.ECONNRESET}
	// ErrConnAborted: this side aborted the connection (Abort, or Close
	// with unread data or linger 0).
	ErrConnAborted = &Error{msg: "connection aborted", errno: syscall.ECONNABORTED}
	// ErrTimedOut: retransmissions, SYN retries or keep-alive probes ran
	// out (RFC 9293 §3.8.3, RFC 1122 §4.2.3.6).
	ErrTimedOut = &Error{msg: "connection timed out", errno: syscall.ETIMEDOUT}
	// ErrBrokenPipe: a write after this side closed its sending half.
	ErrBrokenPipe = &Error{msg: "broken pipe", errno: syscall.EPIPE}
	// ErrNotConnected: the call needs a connection that is not there.
	ErrNotConnected = &Error{msg: "transport endpoint is not connected", errno: syscall.ENOTCONN}
	// ErrHostUnreachable: ICMP reported the peer unreachable while
	// connecting (RFC 1122 §4.2.3.9).
	ErrHostUnreachable = &Error{msg: "no route to host", errno: syscall.EHOSTUNREACH}
	// ErrInvalid: a call that makes no sense in the current state (Connect
	// on an open connection, say).
	ErrInvalid = &Error{msg: "invalid argument", errno: syscall.EINVAL}
	// ErrUnknownCongestion: no congestion controller is registered under
	// the name given (SetCongestionControl, Config.Congestion); Linux's
	// TCP_CONGESTION answers ENOENT.
	ErrUnknownCongestion = &Error{msg: "unknown congestion control", errno: syscall.ENOENT}
)
