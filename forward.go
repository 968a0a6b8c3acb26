package ustack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// Forwarder mode (docs/ARCHITECTURE.md, "Forwarder mode"): a stack on a
// TUN device that stands for every host behind it, as transparent
// proxies (tun2socks, sing-tun), subnet routers and user-mode networking
// (ustack forward) need. NICConfig.Promiscuous and Spoofing (or
// SetForwarding) open a NIC up; ForwardTCP, ForwardUDP and ForwardEcho
// hand over what no socket matched.

// SetForwarding sets a NIC's promiscuous and spoofing flags while the
// stack runs (see NICConfig).
func (s *Stack) SetForwarding(nic *NIC, promiscuous, spoofing bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nic == nil || nic.s != s {
		return errors.New("ustack: SetForwarding: NIC of another stack")
	}
	return s.core.SetForwarding(nic.id, promiscuous, spoofing)
}

// RemoveAddress removes an address from a NIC (and its prefix's on-link
// route when no other address of the NIC is in it). Connections from
// the address stay until they fail, as in Linux.
func (s *Stack) RemoveAddress(nic *NIC, a netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nic == nil || nic.s != s {
		return errors.New("ustack: RemoveAddress: NIC of another stack")
	}
	return s.core.RemoveAddress(nic.id, a)
}

// RemoveRoute removes the routes to dst on a NIC and reports whether
// there were any. New connections to dst then fail with ENETUNREACH
// (unless another route covers it); established ones keep their path.
func (s *Stack) RemoveRoute(dst netip.Prefix, nic *NIC) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nic == nil || nic.s != s {
		return false
	}
	return s.core.RemoveRoute(dst, nic.id)
}

// Addrs returns a NIC's addresses.
func (s *Stack) Addrs(nic *NIC) []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Addrs(nic.id)
}

// Routes returns the routing table.
func (s *Stack) Routes() []network.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Routes()
}

// Forwarder is a running TCP, UDP or echo forwarder: one goroutine that
// hands what the stack's forwarder queued to the handler. Close stops
// it; so does the stack's Close.
type Forwarder struct {
	s         *Stack
	sig       signal
	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed when the goroutine has ended
	core      interface{ Close() }
	handlers  sync.WaitGroup
	// next pops the next queued item (under the stack's lock); with
	// direct, wake (which the runtime calls under the lock, in
	// flushLocked) starts the handlers itself, sparing a connection the
	// hop through the forwarder's goroutine.
	next   func() (func(), bool)
	direct bool
	// work hands a handler to an idle worker (see spawn).
	work chan func()
}

// workerIdle is how long a worker that ran a handler waits for the next
// before it ends.
const workerIdle = 10 * time.Second

// spawn runs fn on a worker of the forwarder: an idle one if there is
// one, else a new goroutine. A worker waits workerIdle for the next
// handler before it ends, so that under a stream of connections each
// does not start a goroutine whose stack grows anew to a handler's depth
// (a relay's dial and copy loop: stack growth was a tenth of `ustack
// forward`'s CPU at a few thousand connections a second). It never
// blocks, so wake may call it under the stack's lock.
func (f *Forwarder) spawn(fn func()) {
	select {
	case f.work <- fn:
		return
	default:
	}
	f.handlers.Add(1)
	go f.worker(fn)
}

func (f *Forwarder) worker(fn func()) {
	defer f.handlers.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		fn()
		fn = nil
		idle.Reset(workerIdle)
		select {
		case fn = <-f.work:
		case <-idle.C:
			return
		case <-f.stop:
			return
		case <-f.s.done:
			return
		}
	}
}

func (f *Forwarder) wake(stack.Events) {
	if f.direct {
		for {
			run, ok := f.next()
			if !ok {
				break
			}
			run() // starts a goroutine: it does not block
		}
	}
	f.sig.notify()
}

// Close stops the forwarder: the stack answers what no socket matches
// as a host does again (RST, port unreachable, its own echo replies);
// undecided TCP requests are dropped, UDP flows closed. It does not
// wait for handlers still running; Wait does.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		close(f.stop)
		f.s.mu.Lock()
		f.core.Close()
		f.s.flushLocked()
		f.s.mu.Unlock()
	})
	<-f.done
	return nil
}

// Wait waits until the forwarder has stopped (Close, or the stack's
// Close) and every handler it started has returned.
func (f *Forwarder) Wait() {
	<-f.done
	f.handlers.Wait()
}

// startForwarder registers core's owner and runs the loop that pops
// items under the lock (next, until it reports false) and hands each to
// run, outside the lock; with direct, the items' run only starts a
// goroutine, and wake runs them at once, under the lock.
func (s *Stack) startForwarder(core interface {
	Close()
	SetOwner(any)
}, next func() (func(), bool), direct bool) *Forwarder {
	f := &Forwarder{s: s, sig: newSignal(), stop: make(chan struct{}), done: make(chan struct{}), core: core, next: next, direct: direct, work: make(chan func())}
	core.SetOwner(f)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(f.done)
		var batch []func()
		for {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				return
			}
			for {
				run, ok := next()
				if !ok {
					break
				}
				batch = append(batch, run)
			}
			s.mu.Unlock()
			for i, run := range batch {
				run()
				batch[i] = nil
			}
			batch = batch[:0]
			select {
			case <-f.sig:
			case <-f.stop:
				return
			case <-s.done:
				return
			}
		}
	}()
	return f
}

// ForwardTCP makes the stack hand each SYN that no listener matches — to
// any address, on a promiscuous NIC — to handler, in a goroutine of its
// own, before anything is answered: the handler may connect upstream
// first and then Accept (the SYN-ACK goes out only then), Reject (RST or
// ICMP unreachable) or Drop. A request the handler leaves undecided
// when it returns is dropped. At most maxInFlight requests are
// undecided at once (0: 1024); SYNs beyond them are dropped and counted
// in Stats().Fwd.TCPRefusedCap. Without a forwarder such SYNs get a RST.
func (s *Stack) ForwardTCP(maxInFlight int, handler func(*TCPRequest)) (*Forwarder, error) {
	if handler == nil {
		return nil, errors.New("ustack: ForwardTCP: nil handler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	core, err := s.core.ForwardTCP(maxInFlight)
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardTCP: %w", err)
	}
	var f *Forwarder
	f = s.startForwarder(core, func() (func(), bool) {
		r := core.Next()
		if r == nil {
			return nil, false
		}
		req := &TCPRequest{s: s, r: r, local: r.LocalAddr(), remote: r.RemoteAddr(), syn: r.SYN()}
		return func() {
			f.spawn(func() {
				defer req.dropIfUndecided()
				handler(req)
			})
		}, true
	}, true)
	return f, nil
}

// TCPRequest is a client's SYN that no listener matched, held by a TCP
// forwarder with nothing answered yet. Exactly one of Accept, Reject and
// Drop decides it; its methods are safe for concurrent use.
type TCPRequest struct {
	s             *Stack
	r             *stack.TCPRequest
	local, remote netip.AddrPort
	syn           wire.TCPFields
}

// LocalAddr returns the address and port the client connects to (any
// address, on a promiscuous NIC).
func (r *TCPRequest) LocalAddr() netip.AddrPort { return r.local }

// RemoteAddr returns the client's address and port.
func (r *TCPRequest) RemoteAddr() netip.AddrPort { return r.remote }

// Options returns the SYN's options: MSS, window scale, SACK permitted,
// timestamps.
func (r *TCPRequest) Options() wire.TCPOptions { return r.syn.Options }

func (r *TCPRequest) opErr(err error) error {
	return opError("accept", "tcp", net.TCPAddrFromAddrPort(r.local), net.TCPAddrFromAddrPort(r.remote), err)
}

// Accept answers the SYN with a SYN-ACK now and waits for the handshake
// to complete, then returns the connection, with package net's socket
// defaults (as Listener.Accept). It fails if the request was already
// decided (EINVAL), the client reset or never answered (ECONNRESET,
// ETIMEDOUT), the stack closed, or ctx ended first (then the connection
// is reset).
func (r *TCPRequest) Accept(ctx context.Context) (*TCPConn, error) {
	s := r.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, r.opErr(net.ErrClosed)
	}
	sc, err := r.r.Accept(s.now())
	if err != nil {
		s.mu.Unlock()
		return nil, r.opErr(err)
	}
	c := s.newTCPConn(sc)
	s.flushLocked()
	s.mu.Unlock()
	for {
		s.mu.Lock()
		st, cerr := sc.State(), sc.Err()
		if st != tcp.SynReceived {
			if st == tcp.Closed {
				s.unregister(c)
				s.mu.Unlock()
				c.closeFromStack()
				if cerr == nil {
					cerr = tcp.ErrConnReset
				}
				return nil, r.opErr(cerr)
			}
			s.applyDefaults(sc)
			s.flushLocked()
			s.mu.Unlock()
			return c, nil
		}
		s.mu.Unlock()
		select {
		case <-c.wsig:
		case <-c.closing:
			return nil, r.opErr(net.ErrClosed)
		case <-ctx.Done():
			c.SetLinger(0)
			c.Close()
			return nil, r.opErr(ctxError(ctx.Err()))
		}
	}
}

// Reject refuses the request: stack.RejectReset answers with a RST (the
// client's connect fails with ECONNREFUSED), the others with an ICMP
// destination unreachable of their code (port: ECONNREFUSED; host, net,
// administratively prohibited: EHOSTUNREACH at a Linux client).
func (r *TCPRequest) Reject(how stack.Reject) error {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return r.opErr(net.ErrClosed)
	}
	if err := r.r.Reject(s.now(), how); err != nil {
		return r.opErr(err)
	}
	s.flushLocked()
	return nil
}

// Drop forgets the request without an answer, as a full SYN queue
// does; the client's next SYN makes a new request.
func (r *TCPRequest) Drop() {
	r.s.mu.Lock()
	r.r.Drop()
	r.s.mu.Unlock()
}

func (r *TCPRequest) dropIfUndecided() {
	r.s.mu.Lock()
	if !r.r.Decided() {
		r.r.Drop()
	}
	r.s.mu.Unlock()
}

// UDPMapping says how a UDP forwarder groups datagrams into flows (RFC
// 4787 §4.1): stack.UDPEndpointIndependent or stack.UDPPerTuple.
type UDPMapping = stack.UDPMapping

// ForwardUDP makes the stack group the UDP datagrams no socket matches
// into flows by mapping, and call handler, in a goroutine of its own,
// with each new flow (its first datagram queued on it). At most maxFlows
// flows are open at once (0: 4096); datagrams that would open more are
// dropped and counted in Stats().Fwd.UDPRefusedCap. A flow lives until
// it is closed: the handler (or whoever it hands the flow to) closes it,
// typically after a time without traffic.
func (s *Stack) ForwardUDP(mapping UDPMapping, maxFlows int, handler func(*UDPFlow)) (*Forwarder, error) {
	if handler == nil {
		return nil, errors.New("ustack: ForwardUDP: nil handler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	core, err := s.core.ForwardUDP(mapping, maxFlows)
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardUDP: %w", err)
	}
	var f *Forwarder
	f = s.startForwarder(core, func() (func(), bool) {
		ep := core.Next()
		if ep == nil {
			return nil, false
		}
		fl := s.newUDPFlow(ep)
		return func() { f.spawn(func() { handler(fl) }) }, true
	}, true)
	return f, nil
}

// ForwardEcho makes the stack hand echo requests to addresses it does
// not hold (a promiscuous NIC's) to handler instead of answering them;
// the handler may answer with SendEchoReply, now or later. The handler
// runs on the forwarder's goroutine, one request after another, so it
// must not block. At most maxQueue requests wait for it (0: 256); more
// are dropped and counted in Stats().Fwd.EchoQueueDrops. Echo requests to
// the stack's own addresses are answered by the stack as ever.
func (s *Stack) ForwardEcho(maxQueue int, handler func(stack.EchoRequest)) (*Forwarder, error) {
	if handler == nil {
		return nil, errors.New("ustack: ForwardEcho: nil handler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	core, err := s.core.ForwardEcho(maxQueue)
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardEcho: %w", err)
	}
	return s.startForwarder(core, func() (func(), bool) {
		req, ok := core.Next()
		if !ok {
			return nil, false
		}
		return func() { handler(req) }, true
	}, false), nil
}

// SendEchoReply sends an ICMP echo reply (RFC 792) from `from` to `to`:
// the answer to an echo request a forwarder handed over, from the
// address that was pinged (which needs a NIC with Spoofing unless it is
// the stack's).
func (s *Stack) SendEchoReply(from, to netip.Addr, id, seq uint16, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if err := s.core.SendEchoReply(s.now(), from, to, id, seq, data); err != nil {
		return opError("write", "ip4:icmp", nil, &net.IPAddr{IP: to.AsSlice()}, err)
	}
	s.flushLocked()
	return nil
}
