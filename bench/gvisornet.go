package bench

import (
	"context"
	"fmt"
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// GVisorChecksumOffload is what gVisor's in-memory link claims: checksum
// offload both ways, as the kernel's loopback and veth devices do, so that
// neither stack computes or verifies a checksum only it would check. This
// is how the figures of issue 12 were taken (its targets are relative to
// them).
const GVisorChecksumOffload = stack.CapabilityRXChecksumOffload | stack.CapabilityTXChecksumOffload

// GVisorChannel returns a Setup for two gVisor netstack stacks in this
// process, the shape of UstackPipe: each has an Ethernet NIC (ARP, IPv4,
// TCP with SACK on, as wireguard-go's netstack sets it) on a channel link
// of the given MTU, and one goroutine per direction moves each frame from
// one stack's channel into the other's, handing the packet's buffer over
// without copying it. Connections are gonet's net.Conn and net.Listener.
func GVisorChannel(mtu int) Setup {
	return func(o Options) (Net, error) { return newGVisorPair(mtu) }
}

type gvisorPair struct {
	server, client *stack.Stack
	chs, chc       *channel.Endpoint
	cancel         context.CancelFunc
	wg             sync.WaitGroup
}

var (
	gvServerIP = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	gvClientIP = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
)

const gvNIC tcpip.NICID = 1

func newGVisorStack(ch *channel.Endpoint, ip tcpip.Address) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		s.Close()
		return nil, fmt.Errorf("gVisor SACK: %s", err)
	}
	if err := s.CreateNIC(gvNIC, ethernet.New(ch)); err != nil {
		s.Close()
		return nil, fmt.Errorf("gVisor CreateNIC: %s", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: ip.WithPrefix()}
	pa.AddressWithPrefix.PrefixLen = 24
	if err := s.AddProtocolAddress(gvNIC, pa, stack.AddressProperties{}); err != nil {
		s.Close()
		return nil, fmt.Errorf("gVisor address: %s", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: gvNIC}})
	return s, nil
}

func newGVisorPair(mtu int) (*gvisorPair, error) {
	p := &gvisorPair{
		chs: channel.New(PipeQueueLen, uint32(mtu), "\x02\x00\x00\x00\x00\x01"),
		chc: channel.New(PipeQueueLen, uint32(mtu), "\x02\x00\x00\x00\x00\x02"),
	}
	p.chs.LinkEPCapabilities = GVisorChecksumOffload
	p.chc.LinkEPCapabilities = GVisorChecksumOffload
	var err error
	if p.server, err = newGVisorStack(p.chs, gvServerIP); err != nil {
		return nil, err
	}
	if p.client, err = newGVisorStack(p.chc, gvClientIP); err != nil {
		p.server.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(2)
	go p.pump(ctx, p.chs, p.chc)
	go p.pump(ctx, p.chc, p.chs)
	return p, nil
}

// pump moves frames written by one stack into the other until ctx ends.
func (p *gvisorPair) pump(ctx context.Context, from, to *channel.Endpoint) {
	defer p.wg.Done()
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
		pkt.DecRef()
		to.InjectInbound(0, in) // the Ethernet header says what it carries
		in.DecRef()
	}
}

func (p *gvisorPair) Listen() (net.Listener, error) {
	return gonet.ListenTCP(p.server, tcpip.FullAddress{NIC: gvNIC, Addr: gvServerIP}, ipv4.ProtocolNumber)
}

func (p *gvisorPair) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("gVisor dial: %T is not a TCP address", addr)
	}
	ip := ta.AddrPort().Addr().Unmap()
	c, err := gonet.DialContextTCP(ctx, p.client, tcpip.FullAddress{NIC: gvNIC, Addr: tcpip.AddrFrom4(ip.As4()), Port: ta.AddrPort().Port()}, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (p *gvisorPair) Close() error {
	p.client.Close()
	p.server.Close()
	p.cancel()
	p.wg.Wait()
	p.chs.Close()
	p.chc.Close()
	p.client.Wait()
	p.server.Wait()
	return nil
}
