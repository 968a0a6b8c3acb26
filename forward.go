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
	if nic == nil || nic.s != s {
		return errors.New("ustack: SetForwarding: NIC of another stack")
	}
	return s.eachShard(func(sh *shard) error { return sh.core.SetForwarding(nic.id, promiscuous, spoofing) })
}

// RemoveAddress removes an address from a NIC (and its prefix's on-link
// route when no other address of the NIC is in it). Connections from
// the address stay until they fail, as in Linux.
func (s *Stack) RemoveAddress(nic *NIC, a netip.Addr) error {
	if nic == nil || nic.s != s {
		return errors.New("ustack: RemoveAddress: NIC of another stack")
	}
	return s.eachShard(func(sh *shard) error { return sh.core.RemoveAddress(nic.id, a) })
}

// RemoveRoute removes the routes to dst on a NIC and reports whether
// there were any. New connections to dst then fail with ENETUNREACH
// (unless another route covers it); established ones keep their path.
func (s *Stack) RemoveRoute(dst netip.Prefix, nic *NIC) bool {
	if nic == nil || nic.s != s {
		return false
	}
	var removed bool
	s.eachShard(func(sh *shard) error {
		removed = sh.core.RemoveRoute(dst, nic.id) // the same in every shard
		return nil
	})
	return removed
}

// Addrs returns a NIC's addresses.
func (s *Stack) Addrs(nic *NIC) []netip.Prefix {
	sh := s.shards[0] // every shard holds the same host configuration
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.core.Addrs(nic.id)
}

// Routes returns the routing table.
func (s *Stack) Routes() []network.Route {
	sh := s.shards[0] // every shard holds the same host configuration
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.core.Routes()
}

// Forwarder is a running TCP, UDP or echo forwarder: one goroutine that
// hands what the stack's forwarder queued to the handler. Close stops
// it; so does the stack's Close.
type Forwarder struct {
	s *Stack
	// parts are a TCP forwarder's parts, one per shard, when the stack
	// has several (ForwardTCP); the fields below are then unused.
	parts     []*Forwarder
	sh        *shard // the shard whose core queues what it hands over
	sig       signal
	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed when the goroutine has ended
	core      interface{ Close() }
	handlers  sync.WaitGroup
	// next pops the next queued item (under the shard's lock); with
	// direct, wake (which the shard calls after its lock, as every
	// wake-up) takes the lock and starts the handlers itself, sparing a
	// connection the hop through the forwarder's goroutine.
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
// blocks, so wake may call it under the shard's lock.
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

// wake implements waker: the shard calls it after its lock when the
// forwarder's core has queued something. With direct it calls back into
// the shard (which a wake-up after the lock allows) to pop the items and
// start their handlers.
func (f *Forwarder) wake(stack.Events) {
	if f.direct {
		sh := f.sh
		sh.mu.Lock()
		if !sh.closed {
			for {
				run, ok := f.next()
				if !ok {
					break
				}
				run() // starts a goroutine: it does not block
			}
		}
		sh.unlock()
	}
	f.sig.notify()
}

// Close stops the forwarder: the stack answers what no socket matches
// as a host does again (RST, port unreachable, its own echo replies);
// undecided TCP requests are dropped, UDP flows closed. It does not
// wait for handlers still running; Wait does.
func (f *Forwarder) Close() error {
	for _, p := range f.parts {
		p.Close()
	}
	if f.parts != nil {
		return nil
	}
	f.closeOnce.Do(func() {
		close(f.stop)
		f.sh.mu.Lock()
		f.core.Close()
		f.sh.unlock()
	})
	<-f.done
	return nil
}

// Wait waits until the forwarder has stopped (Close, or the stack's
// Close) and every handler it started has returned.
func (f *Forwarder) Wait() {
	for _, p := range f.parts {
		p.Wait()
	}
	<-f.done
	f.handlers.Wait()
}

// startForwarder registers core's owner and runs the loop that pops
// items under the lock (next, until it reports false) and hands each to
// run, outside the lock; with direct, the items' run only starts a
// goroutine, and wake runs them at once, under the lock. The caller
// holds sh.mu.
func (sh *shard) startForwarder(core interface {
	Close()
	SetOwner(any)
}, next func() (func(), bool), direct bool) *Forwarder {
	s := sh.s
	f := &Forwarder{s: s, sh: sh, sig: newSignal(), stop: make(chan struct{}), done: make(chan struct{}), core: core, next: next, direct: direct, work: make(chan func())}
	core.SetOwner(f)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(f.done)
		var batch []func()
		for {
			sh.mu.Lock()
			if sh.closed {
				sh.mu.Unlock()
				return
			}
			for {
				run, ok := next()
				if !ok {
					break
				}
				batch = append(batch, run)
			}
			sh.unlock()
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
//
// With several shards (Config.Shards) the forwarder has a part in each,
// as a listener does: a SYN reaches the part of the shard its flow
// hashes to, so the handler is called from any shard's goroutine, for
// different requests at once; maxInFlight is shared out over the parts
// (each holds its share, at least one).
func (s *Stack) ForwardTCP(maxInFlight int, handler func(*TCPRequest)) (*Forwarder, error) {
	if handler == nil {
		return nil, errors.New("ustack: ForwardTCP: nil handler")
	}
	if len(s.shards) == 1 {
		return s.forwardTCPIn(s.shards[0], maxInFlight, handler)
	}
	if maxInFlight <= 0 {
		maxInFlight = 1024 // stack.ForwardTCP's default
	}
	f := &Forwarder{s: s, done: make(chan struct{})}
	close(f.done)
	for i, sh := range s.shards {
		part, err := s.forwardTCPIn(sh, partBacklog(maxInFlight, i, len(s.shards)), handler)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.parts = append(f.parts, part)
	}
	return f, nil
}

// forwardTCPIn is ForwardTCP in one shard.
func (s *Stack) forwardTCPIn(sh *shard, maxInFlight int, handler func(*TCPRequest)) (*Forwarder, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, net.ErrClosed
	}
	core, err := sh.core.ForwardTCP(maxInFlight)
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardTCP: %w", err)
	}
	var f *Forwarder
	f = sh.startForwarder(core, func() (func(), bool) {
		r := core.Next()
		if r == nil {
			return nil, false
		}
		req := &TCPRequest{sh: sh, r: r, local: r.LocalAddr(), remote: r.RemoteAddr(), syn: r.SYN()}
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
	sh            *shard
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
	sh := r.sh
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return nil, r.opErr(net.ErrClosed)
	}
	sc, err := r.r.Accept(sh.s.now())
	if err != nil {
		sh.mu.Unlock()
		return nil, r.opErr(err)
	}
	c := sh.newTCPConn(sc, true)
	sh.unlock()
	var cerr error // the handshake failed: reset, timed out
	err = block(sh.self[:], 0, &waitOn{sig: c.wsig.get(), closed: &c.closed, cancel: ctx.Done()}, func(int) tryResult {
		switch st := sc.State(); st {
		case tcp.SynReceived:
			return tryWait
		case tcp.Closed:
			if cerr = sc.Err(); cerr == nil {
				cerr = tcp.ErrConnReset
			}
			c.abandonLocked()
		default:
			sh.applyDefaults(sc)
		}
		c.wsig.drop() // made for the handshake; the first Write that waits makes another
		return tryDone
	})
	switch {
	case err == errWaitCanceled:
		c.SetLinger(0)
		c.Close()
		return nil, r.opErr(ctxError(ctx.Err()))
	case err != nil:
		return nil, r.opErr(err)
	case cerr != nil:
		c.closeFromStack()
		return nil, r.opErr(cerr)
	}
	return c, nil
}

// Reject refuses the request: stack.RejectReset answers with a RST (the
// client's connect fails with ECONNREFUSED), the others with an ICMP
// destination unreachable of their code (port: ECONNREFUSED; host, net,
// administratively prohibited: EHOSTUNREACH at a Linux client).
func (r *TCPRequest) Reject(how stack.Reject) error {
	sh := r.sh
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return r.opErr(net.ErrClosed)
	}
	err := r.r.Reject(sh.s.now(), how)
	sh.unlock()
	if err != nil {
		return r.opErr(err)
	}
	return nil
}

// Drop forgets the request without an answer, as a full SYN queue
// does; the client's next SYN makes a new request.
func (r *TCPRequest) Drop() {
	r.sh.mu.Lock()
	r.r.Drop()
	r.sh.unlock()
}

func (r *TCPRequest) dropIfUndecided() {
	r.sh.mu.Lock()
	if !r.r.Decided() {
		r.r.Drop()
	}
	r.sh.unlock()
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
	sh, err := s.shardForForwarder()
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardUDP: %w", err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, net.ErrClosed
	}
	core, err := sh.core.ForwardUDP(mapping, maxFlows)
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardUDP: %w", err)
	}
	var f *Forwarder
	f = sh.startForwarder(core, func() (func(), bool) {
		ep := core.Next()
		if ep == nil {
			return nil, false
		}
		fl := sh.newUDPFlow(ep)
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
	sh, err := s.shardForForwarder()
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardEcho: %w", err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, net.ErrClosed
	}
	core, err := sh.core.ForwardEcho(maxQueue)
	if err != nil {
		return nil, fmt.Errorf("ustack: ForwardEcho: %w", err)
	}
	return sh.startForwarder(core, func() (func(), bool) {
		req, ok := core.Next()
		if !ok {
			return nil, false
		}
		return func() { handler(req) }, true
	}, false), nil
}

// SendEchoReply sends an ICMP echo reply (RFC 792; ICMPv6's, RFC 4443
// §4.2, for IPv6 addresses) from `from` to `to`:
// the answer to an echo request a forwarder handed over, from the
// address that was pinged (which needs a NIC with Spoofing unless it is
// the stack's).
func (s *Stack) SendEchoReply(from, to netip.Addr, id, seq uint16, data []byte) error {
	sh := s.shards[0] // the shard host traffic goes to (input)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return net.ErrClosed
	}
	err := sh.core.SendEchoReply(s.now(), from, to, id, seq, data)
	sh.unlock()
	if err != nil {
		network := "ip4:icmp"
		if to.Is6() {
			network = "ip6:ipv6-icmp"
		}
		return opError("write", network, nil, &net.IPAddr{IP: to.AsSlice(), Zone: to.Zone()}, err)
	}
	return nil
}
