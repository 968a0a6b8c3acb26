package ustack

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// errnoer is implemented by the errors of packages tcp and stack.
type errnoer interface {
	Errno() syscall.Errno
}

// opError wraps err the way package net does: a *net.OpError whose Err is
// an *os.SyscallError carrying the errno (so the message reads like the
// kernel's: "read tcp 10.0.0.1:80->10.0.0.2:4000: read: connection reset
// by peer"), and errors.Is(err, syscall.ECONNRESET) holds. io.EOF is
// returned unwrapped, as net does.
func opError(op, network string, source, addr net.Addr, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var e errnoer
	if errors.As(err, &e) {
		err = os.NewSyscallError(syscallName(op), e.Errno())
	}
	return &net.OpError{Op: op, Net: network, Source: source, Addr: addr, Err: err}
}

// syscallName is the system call the kernel's socket would have failed in.
func syscallName(op string) string {
	switch op {
	case "dial":
		return "connect"
	case "listen":
		return "bind"
	case "read":
		return "read"
	case "write":
		return "write"
	case "set":
		return "setsockopt"
	}
	return op
}

// ctxError maps a dial context's error as package net does (its mapErr):
// a passed deadline is an "i/o timeout" that matches both
// context.DeadlineExceeded and os.ErrDeadlineExceeded (the error of
// every other ustack timeout), a cancel is "operation was canceled",
// matching context.Canceled.
func ctxError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errDialTimeout
	case errors.Is(err, context.Canceled):
		return errCanceled
	}
	return err
}

var (
	errDialTimeout error = dialTimeoutError{}
	errCanceled    error = canceledError{}
)

// dialTimeoutError is a dial whose context's deadline passed.
type dialTimeoutError struct{}

func (dialTimeoutError) Error() string   { return "i/o timeout" }
func (dialTimeoutError) Timeout() bool   { return true }
func (dialTimeoutError) Temporary() bool { return true }
func (dialTimeoutError) Is(err error) bool {
	return err == context.DeadlineExceeded || err == os.ErrDeadlineExceeded
}

// canceledError is a dial whose context was cancelled.
type canceledError struct{}

func (canceledError) Error() string     { return "operation was canceled" }
func (canceledError) Is(err error) bool { return err == context.Canceled }
