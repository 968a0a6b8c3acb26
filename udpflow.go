package ustack

import (
	"net"
	"net/netip"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/stack"
)

// UDPFlow is a flow of a UDP forwarder: the datagrams of one client
// (RFC 4787 endpoint-independent mapping) or of one client to one
// destination (per-tuple mapping), which no socket of the stack took.
// ReadTo and WriteFrom work with either mapping; as a net.Conn (Read,
// Write) it is the client's conversation with its first destination,
// which is the whole flow under per-tuple mapping. Its methods are safe
// for concurrent use.
type UDPFlow struct {
	dgramSock
	ep     *stack.UDPEndpoint
	client netip.AddrPort
	dst    netip.AddrPort
}

var _ net.Conn = (*UDPFlow)(nil)

// newUDPFlow wraps a forwarder's flow; the caller holds sh.mu.
func (sh *shard) newUDPFlow(ep *stack.UDPEndpoint) *UDPFlow {
	f := &UDPFlow{ep: ep, client: ep.Client(), dst: ep.LocalAddr()}
	f.init(sh, "udp", net.UDPAddrFromAddrPort(f.dst), net.UDPAddrFromAddrPort(f.client))
	ep.SetOwner(f)
	sh.register(f)
	return f
}

// Client returns the client's address and port: where the flow's
// datagrams come from.
func (f *UDPFlow) Client() netip.AddrPort { return f.client }

// Dst returns the destination of the flow's first datagram (under
// per-tuple mapping, of all of them).
func (f *UDPFlow) Dst() netip.AddrPort { return f.dst }

// ReadTo reads the client's next datagram into p (truncating it if p is
// short) and returns its length and destination.
func (f *UDPFlow) ReadTo(p []byte) (int, netip.AddrPort, error) {
	var n int
	var to netip.AddrPort
	var err error
	if werr := f.read(func(int) tryResult {
		n, _, to, err = f.ep.ReadFromTo(p)
		if wouldBlock(err) {
			return tryWait
		}
		return tryDone
	}); werr != nil {
		return 0, netip.AddrPort{}, werr
	}
	if err != nil {
		return 0, netip.AddrPort{}, f.opErr("read", nil, err)
	}
	return n, to, nil
}

// WriteFrom sends p to the client as one datagram from src: under
// endpoint-independent mapping, whichever address and port the answer
// came from. Src must be the stack's or leave through a NIC with
// Spoofing.
func (f *UDPFlow) WriteFrom(p []byte, src netip.AddrPort) (int, error) {
	n, err := f.write(func(now clock.Instant) (int, error) { return f.ep.WriteFrom(now, p, src, f.client) })
	if err != nil {
		return n, f.opErr("write", nil, err)
	}
	return n, nil
}

// Read reads the client's next datagram (net.Conn); under
// endpoint-independent mapping, whatever its destination (ReadTo says).
func (f *UDPFlow) Read(p []byte) (int, error) {
	n, _, err := f.ReadTo(p)
	return n, err
}

// Write sends p to the client from Dst (net.Conn).
func (f *UDPFlow) Write(p []byte) (int, error) { return f.WriteFrom(p, f.dst) }

// Close ends the flow: its later datagrams open a new one. A blocked
// ReadTo returns net.ErrClosed.
func (f *UDPFlow) Close() error { return f.close(f, f.ep) }

// LocalAddr returns Dst (net.Conn).
func (f *UDPFlow) LocalAddr() net.Addr { return f.laddr }

// RemoteAddr returns the client (net.Conn).
func (f *UDPFlow) RemoteAddr() net.Addr { return f.remote }
