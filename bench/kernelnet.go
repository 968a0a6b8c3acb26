package bench

import (
	"context"
	"net"
	"os"
	"path/filepath"
)

// KernelTCP returns a Setup for the kernel's TCP over loopback
// (127.0.0.1, the loopback device's MTU of 65536).
func KernelTCP() Setup {
	return func(o Options) (Net, error) { return kernelTCP{}, nil }
}

type kernelTCP struct{}

func (kernelTCP) Listen() (net.Listener, error) { return net.Listen("tcp4", "127.0.0.1:0") }

func (kernelTCP) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, addr.Network(), addr.String())
}

func (kernelTCP) Close() error   { return nil }
func (kernelTCP) kernelSockets() {}

// KernelUnix returns a Setup for a Unix-domain stream socket: the kernel's
// fastest way between two programs on one host, the bar for round trips.
func KernelUnix() Setup {
	return func(o Options) (Net, error) {
		dir, err := os.MkdirTemp("", "ustack-bench-uds")
		if err != nil {
			return nil, err
		}
		return &kernelUnix{dir: dir}, nil
	}
}

type kernelUnix struct {
	dir string
	n   int
}

func (k *kernelUnix) Listen() (net.Listener, error) {
	k.n++
	return net.Listen("unix", filepath.Join(k.dir, "s"+itoa(k.n)))
}

func (k *kernelUnix) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", addr.String())
}

func (k *kernelUnix) Close() error   { return os.RemoveAll(k.dir) }
func (k *kernelUnix) kernelSockets() {}
