package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// A Net is a system under test: two ends in this process (or the kernel's
// sockets opened by it) that can reach each other. The server side listens,
// the client side dials the listener's address.
type Net interface {
	// Listen opens a TCP (or stream) listener on the server side.
	Listen() (net.Listener, error)
	// Dial connects from the client side to addr, a listener's Addr.
	Dial(ctx context.Context, addr net.Addr) (net.Conn, error)
	// Close releases everything the Net made: stacks, goroutines, devices,
	// namespaces.
	Close() error
}

// A Setup makes a fresh Net for one measurement.
type Setup func(o Options) (Net, error)

// Unsupported is the error of a cell that cannot run on this machine or
// for this system; Reason is shown in the table instead of a figure.
type Unsupported struct{ Reason string }

func (u *Unsupported) Error() string { return "not run: " + u.Reason }

// unsupported returns an *Unsupported error.
func unsupported(format string, args ...any) error {
	return &Unsupported{Reason: fmt.Sprintf(format, args...)}
}

// isUnsupported reports whether err says the cell cannot run, and why.
func isUnsupported(err error) (string, bool) {
	var u *Unsupported
	if errors.As(err, &u) {
		return u.Reason, true
	}
	return "", false
}

// slabber is implemented by Nets whose connections live in the kernel:
// the memory workload adds the kernel's slab growth to their cost.
type slabber interface{ kernelSockets() }

// closeWriter is the half-close every stream of the bench supports
// (*ustack.TCPConn, *gonet.TCPConn, *net.TCPConn, *net.UnixConn).
type closeWriter interface{ CloseWrite() error }
