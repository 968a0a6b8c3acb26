package stack_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// bulk drives a bulk transfer from c (on stack a) to s (on stack b) by
// hand, frame by frame, with no harness in between: the steady state of
// "Nothing per packet on the heap" (DESIGN.md).
type bulk struct {
	a, b         *stacktest.Node
	c, s         *stack.TCPConn
	now          clock.Instant
	pa, pb       link.Packet
	data, rbuf   []byte
	sent, recvd  int
	frames, acks int
	supers       int // frames handed over with offloads
	// interleave: the receiver reads and answers after each segment,
	// rather than after the whole batch.
	interleave bool
	// dropEvery loses every so many data segments (SACK, fast
	// retransmit and recovery then run in the steady state too).
	dropEvery int
}

func newBulk(t testing.TB) *bulk { return newBulkCaps(t, 0) }

// newBulkCaps is newBulk with the sender's NIC given offloads: with
// link.CapTSO the sender hands over super-frames, which the receiver
// takes whole, as from a link that coalesces (GRO) or one in the same
// process, their checksums trusted (link.Offload.DataValid).
func newBulkCaps(t testing.TB, caps link.Caps) *bulk {
	n, a, b := offloadPair(t, caps)
	a.Stack.AddNeighbor(a.NIC, ipB, b.MAC)
	b.Stack.AddNeighbor(b.NIC, ipA, a.MAC)
	c, s, _ := connect(t, n, a, b, 80)
	// Warm up through the harness: buffers, chunk pools and every slice
	// the stacks keep reach their steady size.
	transfer(t, n, c, s, payload(1, 4<<20), time.Minute)
	n.RunFor(time.Second)
	return &bulk{
		a: a, b: b, c: c, s: s, now: n.Now,
		pa:   link.Packet{Buf: make([]byte, a.Stack.MaxFrameLen())},
		pb:   link.Packet{Buf: make([]byte, b.Stack.MaxFrameLen())},
		data: payload(2, 64<<10),
		rbuf: make([]byte, 64<<10),
	}
}

// sendSide writes and sends what the windows allow: Write, then
// PollTransmit of data segments into the peer's HandleFrame.
func (x *bulk) sendSide() {
	k, err := x.c.Write(x.data)
	if err != nil && !errors.Is(err, stack.ErrWouldBlock) {
		panic(err)
	}
	x.sent += k
	for {
		_, ok := x.a.Stack.PollTransmit(x.now, &x.pa)
		if !ok {
			break
		}
		x.frames++
		if x.dropEvery > 0 && x.frames%x.dropEvery == 0 {
			continue
		}
		if x.pa.Offload != (link.Offload{}) {
			x.supers++
			x.pa.Offload = link.Offload{DataValid: true}
		}
		x.b.Stack.HandleFrame(x.now, x.b.NIC, &x.pa)
		if x.interleave {
			x.recvSide()
		}
	}
}

// recvSide reads, then sends the receiver's ACKs back to the sender:
// PollTransmit of ACKs into the sender's HandleFrame.
func (x *bulk) recvSide() {
	for {
		k, err := x.s.Read(x.rbuf)
		x.recvd += k
		if k == 0 || err != nil {
			break
		}
	}
	for {
		_, ok := x.b.Stack.PollTransmit(x.now, &x.pb)
		if !ok {
			break
		}
		x.acks++
		x.a.Stack.HandleFrame(x.now, x.a.NIC, &x.pb)
	}
}

func (x *bulk) housekeeping() {
	x.now = x.now.Add(50 * time.Microsecond)
	for _, st := range []*stack.Stack{x.a.Stack, x.b.Stack} {
		if st.NextDeadline() <= x.now {
			st.HandleTimeout(x.now)
		}
		for {
			if _, _, ok := st.PollEvent(); !ok {
				break
			}
		}
	}
}

func (x *bulk) round() {
	x.housekeeping()
	x.sendSide()
	x.recvSide()
}

// TestZeroAllocsBulk: in an established bulk transfer between two
// stacks, neither the sender (Write, PollTransmit of data segments,
// HandleFrame of ACKs) nor the receiver (HandleFrame of data segments,
// Read, PollTransmit of ACKs) allocates — whether frames are handled in
// batches or one at a time, and with losses (SACK, RFC 2018; fast
// retransmit and recovery, RFC 5681, RFC 6675).
func TestZeroAllocsBulk(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, mode := range []struct {
		interleave bool
		dropEvery  int
	}{{false, 0}, {true, 0}, {false, 53}} {
		x := newBulk(t)
		x.interleave, x.dropEvery = mode.interleave, mode.dropEvery
		for range 500 {
			x.round()
		}
		frames, acks, recvd := x.frames, x.acks, x.recvd
		allocs := testing.AllocsPerRun(200, x.round)
		frames, acks, recvd = x.frames-frames, x.acks-acks, x.recvd-recvd
		if allocs != 0 {
			t.Errorf("%+v: %.2f allocations per round (%d data segments, %d ACKs a round)", mode, allocs, frames/201, acks/201)
		}
		if frames < 1000 || acks < 200 || recvd < 1000*1448 || mode.dropEvery > 0 && x.c.Info().TotalRetrans == 0 {
			t.Errorf("%+v: only %d segments, %d ACKs, %d bytes, %d retransmissions: not the bulk transfer meant", mode, frames, acks, recvd, x.c.Info().TotalRetrans)
		}
		t.Logf("%+v: %d segments, %d ACKs, %d bytes in 201 rounds", mode, frames, acks, recvd)
	}
}

// TestZeroAllocsBulkTSO: the same with the sender on a NIC that segments
// (link.CapTSO): super-segments out, taken whole by the receiver, and
// the ACKs back, allocate nothing either.
func TestZeroAllocsBulkTSO(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	x := newBulkCaps(t, link.CapTSO|link.CapTxChecksum)
	for range 500 {
		x.round()
	}
	frames, supers, recvd := x.frames, x.supers, x.recvd
	allocs := testing.AllocsPerRun(200, x.round)
	frames, supers, recvd = x.frames-frames, x.supers-supers, x.recvd-recvd
	if allocs != 0 {
		t.Errorf("%.2f allocations per round", allocs)
	}
	if supers < 200 || recvd < 200*60000 || recvd/frames < 30000 {
		t.Errorf("%d frames (%d offloaded) carried %d bytes: not a transfer in super-segments", frames, supers, recvd)
	}
	t.Logf("%d frames (%d offloaded), %d bytes in 201 rounds", frames, supers, recvd)
}

// BenchmarkBulk measures the core's bulk transfer between two stacks in
// one goroutine: bytes of payload per second of CPU, and allocations.
// BenchmarkBulkTSO is the same with the sender on a segmenting NIC.
func BenchmarkBulk(b *testing.B) {
	x := newBulk(b)
	b.ReportAllocs()
	start := x.recvd
	b.ResetTimer()
	for range b.N {
		x.round()
	}
	b.SetBytes(int64(x.recvd-start) / int64(b.N))
}

// TestZeroAllocsUDP: a UDP exchange (WriteTo, PollTransmit, HandleFrame,
// ReadFrom), a datagram that travels in fragments (RFC 791 §3.2) and a
// ping (echo request in, reply out) allocate nothing once warm.
func TestZeroAllocsUDP(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	n, a, b := knownPair(t, stack.Config{})
	ua, ub := udpPair(t, a, b)
	pkt := link.Packet{Buf: make([]byte, a.Stack.MaxFrameLen())}
	data := payload(1, 1000)
	big := payload(2, 4000)
	buf := make([]byte, 5000)
	now := n.Now
	echo := stacktest.New(t).AddRaw("R", stacktest.MAC(9), ipRaw).ICMPFrame(a.MAC, ipB, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 1, Payload: data})
	in := link.Packet{Buf: make([]byte, len(echo))}
	round := func() {
		now += 1000
		for _, d := range [][]byte{data, big} {
			if _, err := ua.WriteTo(now, d, ap(ipB, 7)); err != nil {
				panic(err)
			}
		}
		for {
			if _, ok := a.Stack.PollTransmit(now, &pkt); !ok {
				break
			}
			b.Stack.HandleFrame(now, b.NIC, &pkt)
		}
		for _, d := range [][]byte{data, big} {
			if k, _, err := ub.ReadFrom(buf); err != nil || k != len(d) {
				panic(err)
			}
		}
		in.N = copy(in.Buf, echo)
		a.Stack.HandleFrame(now, a.NIC, &in)
		for {
			if _, ok := a.Stack.PollTransmit(now, &pkt); !ok {
				break
			}
		}
		for _, st := range []*stack.Stack{a.Stack, b.Stack} {
			for {
				if _, _, ok := st.PollEvent(); !ok {
					break
				}
			}
		}
	}
	for range 100 {
		round()
	}
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Errorf("%.2f allocations per datagram and ping", allocs)
	}
}

// TestZeroAllocsLoopback: a bulk transfer over a connection to the
// stack's own address (Write, PollTransmit, Read) allocates nothing once
// warm either.
func TestZeroAllocsLoopback(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	n, a, _ := knownPair(t, stack.Config{})
	c, s, _ := connect(t, n, a, a, 80)
	transfer(t, n, c, s, payload(1, 1<<20), time.Minute)
	pkt := link.Packet{Buf: make([]byte, a.Stack.MaxFrameLen())}
	data := payload(2, 64<<10)
	buf := make([]byte, 64<<10)
	now := n.Now
	recvd := 0
	round := func() {
		now = now.Add(50 * time.Microsecond)
		if a.Stack.NextDeadline() <= now {
			a.Stack.HandleTimeout(now)
		}
		c.Write(data)
		for {
			if _, ok := a.Stack.PollTransmit(now, &pkt); !ok {
				break
			}
		}
		for {
			k, _ := s.Read(buf)
			recvd += k
			if k == 0 {
				break
			}
		}
		for {
			if _, _, ok := a.Stack.PollEvent(); !ok {
				break
			}
		}
	}
	for range 500 {
		round()
	}
	recvd = 0
	if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
		t.Errorf("%.2f allocations per round", allocs)
	}
	if recvd < 200*64<<10/2 {
		t.Errorf("only %d bytes through loopback", recvd)
	}
}

func BenchmarkBulkTSO(b *testing.B) {
	x := newBulkCaps(b, link.CapTSO|link.CapTxChecksum)
	b.ReportAllocs()
	start := x.recvd
	b.ResetTimer()
	for range b.N {
		x.round()
	}
	b.SetBytes(int64(x.recvd-start) / int64(b.N))
}

// newBulk6 is newBulk over IPv6, neighbours static and DAD off.
func newBulk6(t testing.TB) *bulk {
	n := stacktest.New(t)
	cfg := stack.Config{Seed: 1, IPv6: stack.IPv6Config{DADTransmits: -1, IgnoreRA: true}}
	a := n.AddStack("A", stack.New(cfg), stack.NICConfig{MAC: stacktest.MAC(1), Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}})
	cfg.Seed = 2
	b := n.AddStack("B", stack.New(cfg), stack.NICConfig{MAC: stacktest.MAC(2), Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::2/64")}})
	a.Stack.AddNeighbor(a.NIC, ip6B, b.MAC)
	b.Stack.AddNeighbor(b.NIC, ip6A, a.MAC)
	l, err := b.Stack.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, s := connectTo(t, n, a, l, netip.AddrPortFrom(ip6B, 80))
	transfer(t, n, c, s, payload(1, 4<<20), time.Minute)
	n.RunFor(time.Second)
	return &bulk{
		a: a, b: b, c: c, s: s, now: n.Now,
		pa:   link.Packet{Buf: make([]byte, a.Stack.MaxFrameLen())},
		pb:   link.Packet{Buf: make([]byte, b.Stack.MaxFrameLen())},
		data: payload(2, 64<<10),
		rbuf: make([]byte, 64<<10),
	}
}

// TestZeroAllocsBulkIPv6: the bulk transfer over IPv6 allocates nothing
// either, reachability confirmations (RFC 4861 §7.3.1) included.
func TestZeroAllocsBulkIPv6(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	x := newBulk6(t)
	for range 500 {
		x.round()
	}
	frames, recvd := x.frames, x.recvd
	allocs := testing.AllocsPerRun(200, x.round)
	frames, recvd = x.frames-frames, x.recvd-recvd
	if allocs != 0 {
		t.Errorf("%.2f allocations per round", allocs)
	}
	if frames < 1000 || recvd < 1000*1428 {
		t.Errorf("only %d segments, %d bytes: not the bulk transfer meant", frames, recvd)
	}
}

// TestZeroAllocsParkedKeepAlive: a parked connection's answer to the
// peer's keep-alive probe (HandleFrame, the record's answer, PollTransmit)
// allocates nothing, and does not unpark it; nor does a whole keep-alive
// exchange between parked ends (the prober's timer, its probe, the
// answer, the prober taking it).
func TestZeroAllocsParkedKeepAlive(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	x := newBulk(t)
	x.c.SetKeepAlive(x.now, true, 3*time.Second, time.Second, 5)
	var probe []byte
	for i := 0; probe == nil && i < 1000; i++ {
		x.now = x.now.Add(10 * time.Millisecond)
		for _, st := range []*stack.Stack{x.a.Stack, x.b.Stack} {
			if st.NextDeadline() <= x.now {
				st.HandleTimeout(x.now)
			}
		}
		if _, ok := x.a.Stack.PollTransmit(x.now, &x.pa); ok {
			probe = append([]byte(nil), x.pa.Buf[:x.pa.N]...)
		}
	}
	before := x.b.Stack.Stats().TCP
	if probe == nil || before.Parked != 1 {
		t.Fatalf("no probe (%v) or the peer not parked (%d)", probe == nil, before.Parked)
	}
	answer := func() {
		x.now = x.now.Add(time.Second)
		x.pa.N = copy(x.pa.Buf, probe)
		x.pa.Offload = link.Offload{}
		x.b.Stack.HandleFrame(x.now, x.b.NIC, &x.pa)
		if _, ok := x.b.Stack.PollTransmit(x.now, &x.pb); !ok {
			t.Fatal("the probe got no answer")
		}
	}
	answer()
	if allocs := testing.AllocsPerRun(200, answer); allocs != 0 {
		t.Errorf("%.2f allocations per probe answered", allocs)
	}
	st := x.b.Stack.Stats().TCP
	if st.Unparks != before.Unparks || st.KeepAliveParked != before.KeepAliveParked+202 {
		t.Errorf("unparks %d → %d, answered parked %d → %d: want 202 answers (AllocsPerRun runs once more) without unparking",
			before.Unparks, st.Unparks, before.KeepAliveParked, st.KeepAliveParked)
	}

	beforeA, beforeB := x.a.Stack.Stats().TCP, x.b.Stack.Stats().TCP
	exchange := func() {
		x.now = max(x.now.Add(time.Second), x.a.Stack.NextDeadline())
		x.a.Stack.HandleTimeout(x.now)
		if _, ok := x.a.Stack.PollTransmit(x.now, &x.pa); !ok {
			return // the timer re-armed after the last answer
		}
		x.b.Stack.HandleFrame(x.now, x.b.NIC, &x.pa)
		if _, ok := x.b.Stack.PollTransmit(x.now, &x.pb); !ok {
			t.Fatal("the probe got no answer")
		}
		x.a.Stack.HandleFrame(x.now, x.a.NIC, &x.pb)
	}
	exchange()
	if allocs := testing.AllocsPerRun(200, exchange); allocs != 0 {
		t.Errorf("%.2f allocations per keep-alive exchange", allocs)
	}
	stA, stB := x.a.Stack.Stats().TCP, x.b.Stack.Stats().TCP
	if probes := stA.KeepAliveProbes - beforeA.KeepAliveProbes; probes < 50 || stA.Unparks != beforeA.Unparks || stB.Unparks != beforeB.Unparks ||
		stB.KeepAliveParked-beforeB.KeepAliveParked != probes || stA.KeepAliveParked-beforeA.KeepAliveParked != 2*probes {
		t.Errorf("%d probes; unparks %d → %d and %d → %d; parked keep-alive segments %d → %d and %d → %d: want every probe sent, answered and taken parked",
			probes, beforeA.Unparks, stA.Unparks, beforeB.Unparks, stB.Unparks,
			beforeA.KeepAliveParked, stA.KeepAliveParked, beforeB.KeepAliveParked, stB.KeepAliveParked)
	}
}
