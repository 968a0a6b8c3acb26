package bench

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
)

// PipeQueueLen is the frames each direction of the in-memory pipe holds:
// room for a whole default window of full-sized frames, as the root
// package's benchmarks use, so that a reader short of CPU for a moment
// does not turn a benchmark into a loss-recovery test.
const PipeQueueLen = 4096

// UstackPipe returns a Setup for two ustack stacks in this process joined
// by link/pipe (Ethernet, no delay, unlimited bandwidth) with the given
// MTU: the server is 10.0.0.1, the client 10.0.0.2.
func UstackPipe(mtu int) Setup {
	return func(o Options) (Net, error) {
		a, b := pipe.New(pipe.Config{MTU: mtu, QueueLen: PipeQueueLen})
		return newUstackPair(a, b)
	}
}

// UstackPipe6 is UstackPipe over IPv6: the server is 2001:db8::1, the
// client 2001:db8::2. Duplicate address detection and router
// solicitation are off, so that a measurement starts at once rather than
// a second or two later; nothing else differs from IPv4's case.
func UstackPipe6(mtu int) Setup {
	return func(o Options) (Net, error) {
		a, b := pipe.New(pipe.Config{MTU: mtu, QueueLen: PipeQueueLen})
		return newUstackPair6(a, b)
	}
}

type ustackPair struct {
	server, client *ustack.Stack
	ip             netip.Addr
}

func newUstackPair(a, b *pipe.Endpoint) (*ustackPair, error) {
	return newUstackPairOf(a, b, ustack.Config{}, "10.0.0.1/24", "10.0.0.2/24")
}

func newUstackPair6(a, b *pipe.Endpoint) (*ustackPair, error) {
	cfg := ustack.Config{Config: stack.Config{IPv6: stack.IPv6Config{DADTransmits: -1, IgnoreRA: true}}}
	return newUstackPairOf(a, b, cfg, "2001:db8::1/64", "2001:db8::2/64")
}

// newUstackPairOf makes the two stacks with cfg on a and b, the server at
// serverAddr and the client at clientAddr.
func newUstackPairOf(a, b *pipe.Endpoint, cfg ustack.Config, serverAddr, clientAddr string) (*ustackPair, error) {
	cfg.Shards = scaleShards
	server, err := ustack.New(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	// The client closes first, so each connection leaves its port in
	// TIME-WAIT; a port is taken over from TIME-WAIT 1 s after its last
	// timestamp (stack.Config.TimeWaitReuse, as the kernel's tcp_tw_reuse
	// on loopback), so at more than 28,232 connections a second the
	// kernel's default range would run dry: the client uses every port
	// above the well-known ones, as a host tuned for it would
	// (net.ipv4.ip_local_port_range = 1024 65535).
	ccfg := cfg
	ccfg.EphemeralPorts = [2]uint16{1024, 65535}
	client, err := ustack.New(ccfg)
	if err != nil {
		server.Close()
		a.Close()
		return nil, err
	}
	sp := netip.MustParsePrefix(serverAddr)
	p := &ustackPair{server: server, client: client, ip: sp.Addr()}
	if _, err := server.AddNIC(a, ustack.NICConfig{Addrs: []netip.Prefix{sp}}); err != nil {
		p.Close()
		return nil, err
	}
	if _, err := client.AddNIC(b, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix(clientAddr)}}); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *ustackPair) Listen() (net.Listener, error) {
	return p.server.Listen("tcp", netip.AddrPortFrom(p.ip, 0).String())
}

func (p *ustackPair) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	return p.client.DialContext(ctx, "tcp", addr.String())
}

func (p *ustackPair) Close() error {
	return errors.Join(p.client.Close(), p.server.Close())
}
