package stack_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// neighbor returns st's cache entry for ip, if any.
func neighbor(st *stack.Stack, ip netip.Addr) (network.NeighborEntry, bool) {
	for _, e := range st.Neighbors() {
		if e.IP == ip {
			return e, true
		}
	}
	return network.NeighborEntry{}, false
}

// bare returns a segment with stack A and a raw node R that A does not
// know yet.
func bare(t *testing.T) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	n := stacktest.New(t)
	a := n.AddHost("A", stack.Config{Seed: 1}, "10.0.0.1/24")
	r := n.AddRaw("R", stacktest.MAC(9), ipRaw)
	return n, a, r
}

// TestARPRequestForUs: RFC 826, "Packet Reception": a request whose
// target protocol address is ours is answered with our hardware address,
// sent to the requester; and the requester is added to the table (the
// packet is for us, so the merge flag's "add" applies).
func TestARPRequestForUs(t *testing.T) {
	n, a, r := bare(t)
	r.Send(stacktest.Ether(wire.BroadcastMAC, r.MAC, 0, wire.EtherTypeARP,
		stacktest.ARP(wire.ARPRequest, r.MAC, ipRaw, wire.MAC{}, ipA)))
	n.RunFor(10 * time.Millisecond)
	in := r.Take()
	if len(in) != 1 {
		t.Fatalf("R received %d frames, want 1 reply", len(in))
	}
	d := decodeOne(t, in[0])
	if d.Eth.Dst != r.MAC || d.Eth.Src != a.MAC || d.Eth.EtherType != wire.EtherTypeARP || d.ARP == nil {
		t.Fatalf("reply frame: %v", d)
	}
	want := wire.ARPFields{Op: wire.ARPReply, SenderMAC: a.MAC, SenderIP: ipA, TargetMAC: r.MAC, TargetIP: ipRaw}
	if *d.ARP != want {
		t.Errorf("reply %+v, want %+v", *d.ARP, want)
	}
	if e, ok := neighbor(a.Stack, ipRaw); !ok || e.MAC != r.MAC || e.State != "REACHABLE" {
		t.Errorf("A's entry for the requester: %+v, %v; want REACHABLE at %v", e, ok, r.MAC)
	}
	st := a.Stack.Stats().Net
	if st.ARPInRequests != 1 || st.ARPOutReplies != 1 {
		t.Errorf("ARPInRequests %d ARPOutReplies %d, want 1 1", st.ARPInRequests, st.ARPOutReplies)
	}
}

// TestARPRequestForOther: RFC 826: a request for another host's address
// gets no reply, and — the merge rule — it only updates an entry A
// already has; it does not create one.
func TestARPRequestForOther(t *testing.T) {
	n, a, r := bare(t)
	other := netip.MustParseAddr("10.0.0.77")
	r.Send(stacktest.Ether(wire.BroadcastMAC, r.MAC, 0, wire.EtherTypeARP,
		stacktest.ARP(wire.ARPRequest, r.MAC, ipRaw, wire.MAC{}, other)))
	n.RunFor(10 * time.Millisecond)
	if in := r.Take(); len(in) != 0 {
		t.Errorf("request for another address answered: %v", in[0])
	}
	if e, ok := neighbor(a.Stack, ipRaw); ok {
		t.Errorf("request for another address created an entry: %+v", e)
	}

	// Merge: once A knows R, the same request updates R's entry (here
	// with a new MAC) and still gets no reply.
	a.Stack.AddNeighbor(a.NIC, ipB, stacktest.MAC(2)) // unrelated permanent entry
	r.Send(stacktest.Ether(wire.BroadcastMAC, r.MAC, 0, wire.EtherTypeARP,
		stacktest.ARP(wire.ARPRequest, r.MAC, ipRaw, wire.MAC{}, ipA)))
	n.RunFor(10 * time.Millisecond)
	r.Take()
	newMAC := stacktest.MAC(99)
	r.Send(stacktest.Ether(wire.BroadcastMAC, newMAC, 0, wire.EtherTypeARP,
		stacktest.ARP(wire.ARPRequest, newMAC, ipRaw, wire.MAC{}, other)))
	n.RunFor(10 * time.Millisecond)
	if in := r.Take(); len(in) != 0 {
		t.Errorf("request for another address answered: %v", in[0])
	}
	if e, ok := neighbor(a.Stack, ipRaw); !ok || e.MAC != newMAC {
		t.Errorf("entry not merged: %+v", e)
	}
}

// TestARPQueueUntilResolved: RFC 1122 §2.3.2.2: packets to a neighbour
// being resolved are held (Linux keeps unres_qlen of them) and leave once
// the reply arrives, in the order they were sent, none lost; only one
// request goes out meanwhile.
func TestARPQueueUntilResolved(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	// B answers ARP only after 300 ms.
	n.Impair = func(f *stacktest.Frame) stacktest.Action {
		if d := f.Decode(); d.ARP != nil && d.ARP.Op == wire.ARPReply {
			return stacktest.Action{Delay: 300 * time.Millisecond}
		}
		return stacktest.Action{}
	}
	ub, err := b.Stack.BindUDP(ap(ipB, 7))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := a.Stack.BindUDP(ap(ipA, 7))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := ua.WriteTo(n.Now, []byte{byte(i)}, ap(ipB, 7)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := b.Stack.Listen(ap(ipB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
	if err != nil {
		t.Fatal(err)
	}
	// TCP builds its segments when polled: poll now, as the runtime does
	// after every call, so the SYN is handed to IP before the next
	// datagram.
	n.Flush()
	if _, err := ua.WriteTo(n.Now, []byte{3}, ap(ipB, 7)); err != nil {
		t.Fatal(err)
	}
	n.RunUntil(time.Second, func() bool { return c.State() == tcp.Established && l.Pending() == 1 })

	var order []string
	for _, f := range frames(n, 0, from(a)) {
		d := decodeOne(t, f)
		switch {
		case d.ARP != nil:
			order = append(order, "arp")
		case d.UDP != nil:
			order = append(order, "udp"+string('0'+d.UDP.Payload[0]))
		case d.IsTCP(wire.TCPFlagSYN):
			order = append(order, "syn")
		case d.TCP != nil:
			order = append(order, "ack")
		}
		if d.IP != nil && f.Sent < 300*clock1ms {
			t.Errorf("%v left before the neighbour resolved", f)
		}
	}
	want := []string{"arp", "udp0", "udp1", "udp2", "syn", "udp3", "ack"}
	if !equal(order, want) {
		t.Errorf("A sent %v, want %v", order, want)
	}
	for i := range 4 {
		var buf [8]byte
		k, _, err := ub.ReadFrom(buf[:])
		if err != nil || k != 1 || buf[0] != byte(i) {
			t.Errorf("datagram %d: %v %d %v", i, buf[:k], k, err)
		}
	}
	if st := a.Stack.Stats().Net; st.ARPOutRequests != 1 || st.ARPQueueDrops != 0 {
		t.Errorf("ARPOutRequests %d ARPQueueDrops %d, want 1 0", st.ARPOutRequests, st.ARPQueueDrops)
	}
}

const clock1ms = 1_000_000

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestARPResolutionFails: RFC 1122 §2.3.2.1: a host gives up after a few
// unanswered requests (Linux mcast_solicit 3, 1 s apart), and a connect
// to that neighbour then fails with EHOSTUNREACH, as Linux's does.
func TestARPResolutionFails(t *testing.T) {
	n, a, _ := bare(t)
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(netip.MustParseAddr("10.0.0.77"), 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(10*time.Second, func() bool { return c.State() == tcp.Closed })
	if !errors.Is(c.Err(), tcp.ErrHostUnreachable) || !errors.Is(c.Err(), syscall.EHOSTUNREACH) {
		t.Errorf("Err() = %v, want %v", c.Err(), tcp.ErrHostUnreachable)
	}
	if want := 3 * time.Second; n.Now.Sub(0) != want {
		t.Errorf("failed at %v, want %v (three requests a second apart)", n.Now, want)
	}
	var reqs []time.Duration
	for _, f := range n.Log {
		d := decodeOne(t, f)
		if d.ARP == nil || d.ARP.Op != wire.ARPRequest || d.ARP.TargetIP != netip.MustParseAddr("10.0.0.77") {
			t.Errorf("unexpected frame %v", f)
			continue
		}
		reqs = append(reqs, f.Sent.Sub(0))
	}
	if want := []time.Duration{0, time.Second, 2 * time.Second}; !equal(reqs, want) {
		t.Errorf("requests at %v, want %v", reqs, want)
	}
	evs := a.EventsFor(c)
	if len(evs) != 1 || evs[0]&stack.EventClosed == 0 {
		t.Errorf("events %v, want one with EventClosed", evs)
	}
	if st := a.Stack.Stats(); st.Net.ARPResolveFailed != 1 || st.Net.ARPOutRequests != 3 || st.TCP.AttemptFails != 1 {
		t.Errorf("ARPResolveFailed %d ARPOutRequests %d AttemptFails %d, want 1 3 1", st.Net.ARPResolveFailed, st.Net.ARPOutRequests, st.TCP.AttemptFails)
	}
	if cs := a.Stack.Conns(); len(cs) != 0 {
		t.Errorf("connection still in the table: %+v", cs)
	}
}

// TestARPGratuitous: a gratuitous ARP (sender and target address both the
// sender's own, RFC 5227 §3 "ARP Announcement", in request or reply form)
// updates the entry of a neighbour we know (RFC 826 merge), so traffic
// follows the address to its new MAC; it creates no entry for a neighbour
// we do not know.
func TestARPGratuitous(t *testing.T) {
	for _, op := range []uint16{wire.ARPRequest, wire.ARPReply} {
		n, a, r := bare(t)
		// A learns R from R's request.
		r.Send(stacktest.Ether(wire.BroadcastMAC, r.MAC, 0, wire.EtherTypeARP,
			stacktest.ARP(wire.ARPRequest, r.MAC, ipRaw, wire.MAC{}, ipA)))
		// An announcement from an address A does not know.
		stranger := netip.MustParseAddr("10.0.0.66")
		r.Send(stacktest.Ether(wire.BroadcastMAC, stacktest.MAC(66), 0, wire.EtherTypeARP,
			stacktest.ARP(op, stacktest.MAC(66), stranger, wire.MAC{}, stranger)))
		n.RunFor(10 * time.Millisecond)
		r.Take()
		if e, ok := neighbor(a.Stack, stranger); ok {
			t.Errorf("op %d: announcement of an unknown address created %+v", op, e)
		}
		// R moves to a new MAC and announces it.
		moved := stacktest.MAC(10)
		r.Send(stacktest.Ether(wire.BroadcastMAC, moved, 0, wire.EtherTypeARP,
			stacktest.ARP(op, moved, ipRaw, wire.MAC{}, ipRaw)))
		n.RunFor(10 * time.Millisecond)
		if e, ok := neighbor(a.Stack, ipRaw); !ok || e.MAC != moved {
			t.Fatalf("op %d: entry %+v, want MAC %v", op, e, moved)
		}
		if in := r.Take(); len(in) != 0 {
			t.Errorf("op %d: announcement answered: %v", op, in[0])
		}
		u, err := a.Stack.BindUDP(netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.WriteTo(n.Now, []byte("hi"), ap(ipRaw, 9)); err != nil {
			t.Fatal(err)
		}
		n.RunFor(10 * time.Millisecond)
		in := r.Take()
		if len(in) != 1 || decodeOne(t, in[0]).Eth.Dst != moved {
			t.Errorf("op %d: datagram to R: %v, want one frame to %v", op, in, moved)
		}
	}
}

// TestARPBad: ARP packets that cannot be believed (a multicast or zero
// sender MAC: RFC 1812 §3.3.2, Linux arp_process) are dropped and counted.
func TestARPBad(t *testing.T) {
	n, a, r := bare(t)
	_ = n
	for _, mac := range []wire.MAC{wire.BroadcastMAC, {1, 0, 0x5e, 0, 0, 1}, {}} {
		expectDrop(t, n, a, stacktest.Ether(wire.BroadcastMAC, r.MAC, 0, wire.EtherTypeARP,
			stacktest.ARP(wire.ARPRequest, mac, ipRaw, wire.MAC{}, ipA)), map[string]int64{"Net.ARPBad": 1})
	}
	short := stacktest.Ether(wire.BroadcastMAC, r.MAC, 0, wire.EtherTypeARP,
		stacktest.ARP(wire.ARPRequest, r.MAC, ipRaw, wire.MAC{}, ipA)[:20])
	expectDrop(t, n, a, short, map[string]int64{"Net.ARPBad": 1})
	if len(a.Stack.Neighbors()) != 0 {
		t.Errorf("entries from bad ARP: %+v", a.Stack.Neighbors())
	}
}
