package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/ustack/ustack"
)

// callbackMemer is a Net with a callback API (ustack's), whose idle
// connections can be measured without a net.Conn.
type callbackMemer interface {
	memCallback(ctx context.Context, o Options) (Sample, error)
}

// MemCallback is Mem for connections made through a callback API
// (ustack.ListenCallback and DialCallback): the program keeps each end's
// *ustack.CallbackConn and nothing else. Systems without such an API are
// unsupported. Like Mem, it measures again when it saw no growth.
func MemCallback(ctx context.Context, n Net, o Options) (Sample, error) {
	m, ok := n.(callbackMemer)
	if !ok {
		return nil, unsupported("no callback API")
	}
	return retryNoGrowth(func() (Sample, error) { return m.memCallback(ctx, o) })
}

// openCounter is a Handler that counts OnOpens and keeps the connections;
// it never blocks (handlers must not: they run on the stack's
// goroutines), it signals instead.
type openCounter struct {
	ustack.NopHandler
	mu     sync.Mutex
	conns  []*ustack.CallbackConn
	failed error
	sig    chan struct{} // one slot: "look again"
}

func (h *openCounter) OnOpen(c *ustack.CallbackConn) {
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	h.notify()
}

func (h *openCounter) OnClose(c *ustack.CallbackConn, err error) {
	if err != nil {
		h.mu.Lock()
		h.failed = err
		h.mu.Unlock()
		h.notify()
	}
}

func (h *openCounter) notify() {
	select {
	case h.sig <- struct{}{}:
	default:
	}
}

// state returns how many connections opened, and the last failure.
func (h *openCounter) state() (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns), h.failed
}

// memCallback establishes o.Pairs idle connections through the callback
// API, a window of them at a time, and reports the growth of heap and
// goroutine stacks after GC per connection end.
func (p *ustackPair) memCallback(ctx context.Context, o Options) (Sample, error) {
	pairs := o.Pairs
	// Dials in flight at a time: within the SYN and link queues.
	window := min(256, pairs)
	// The handlers' slices of connections are made to their full length
	// before the base, as memOnce's is: grown during the measurement,
	// they were counted as the stack's (about 10 B per end).
	srv := &openCounter{sig: make(chan struct{}, 1), conns: make([]*ustack.CallbackConn, 0, window+pairs)}
	cli := &openCounter{sig: make(chan struct{}, 1), conns: make([]*ustack.CallbackConn, 0, window+pairs)}
	ln, err := p.server.ListenCallback("tcp", netip.AddrPortFrom(p.ip, 0).String(), srv)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	opened := 0 // pairs dialled and waited for so far
	// wait waits until k more pairs have opened on both sides.
	wait := func(k int) error {
		opened += k
		t := time.NewTimer(grace)
		defer t.Stop()
		for _, h := range []*openCounter{srv, cli} {
			for {
				n, err := h.state()
				if _, cerr := cli.state(); cerr != nil {
					return fmt.Errorf("dial: %w", cerr)
				}
				if err != nil {
					return err
				}
				if n >= opened {
					break
				}
				select {
				case <-h.sig:
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
					return errors.New("connections not established in time")
				}
			}
		}
		return nil
	}
	dial := func(k int) error {
		for range k {
			if _, err := p.client.DialCallback(netip.AddrPort{}, ln.Addr(), cli); err != nil {
				return fmt.Errorf("dial: %w", err)
			}
		}
		return wait(k)
	}
	// One window first, not counted: what a stack allocates on its first
	// connections (tables, pools) and the links' buffers for as many
	// frames in flight as a window makes (the pipe and the runtime
	// exchange 64 KiB buffers, and keep as many as were in flight) are
	// not per-connection costs.
	if err := dial(window); err != nil {
		return nil, err
	}
	// The connections are measured parked (they park a second after
	// their handshake): the first window's too, before the base.
	if _, err := p.waitParked(ctx, uint64(2*window)); err != nil {
		return nil, err
	}
	base := settledLiveBytes()
	for done := 0; done < pairs; {
		k := min(window, pairs-done)
		if err := dial(k); err != nil {
			return nil, err
		}
		done += k
	}
	parked, err := p.waitParked(ctx, uint64(2*(window+pairs)))
	if err != nil {
		return nil, err
	}
	live := liveBytes()
	runtime.KeepAlive(srv)
	runtime.KeepAlive(cli)
	s := Sample{
		MBytesEnd: (float64(live) - float64(base)) / float64(2*pairs),
		MPairs:    float64(pairs),
		MParked:   float64(parked),
	}
	if s[MBytesEnd] <= 0 {
		return nil, errNoGrowth
	}
	return s, nil
}
