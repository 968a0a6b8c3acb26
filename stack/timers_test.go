package stack_test

import (
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/chunk"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
)

// knownPair is pair with permanent neighbour entries both ways, so the
// neighbour cache has no timers of its own.
func knownPair(t *testing.T, cfg stack.Config) (*stacktest.Net, *stacktest.Node, *stacktest.Node) {
	n, a, b := pair(t, cfg, cfg)
	a.Stack.AddNeighbor(a.NIC, ipB, b.MAC)
	b.Stack.AddNeighbor(b.NIC, ipA, a.MAC)
	return n, a, b
}

// TestIdleConnectionsHaveNoTimer: an established connection with nothing
// in flight, no delayed ACK and no keep-alive has no timer (RFC 6298
// §5.2 stops the retransmission timer when all data is acknowledged), so
// it is not in the stack's timer wheel: once quiet, NextDeadline is
// clock.Never however many connections are open — once they parked,
// a second (ParkIdle) or three RTOs after their last segment: until then
// the idle timer that parks them is armed. Keep-alive (RFC 1122
// §4.2.3.6) arms a timer again (the call unparks the connection, which
// parks again a second later); the parked record sends the probe itself
// (tcp.Env.TimeoutParked), the peer's record answers it
// (tcp.Env.HandleParked) and the first takes the answer: neither
// unparks.
func TestIdleConnectionsHaveNoTimer(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	var conns [][2]*stack.TCPConn
	for i := range 20 {
		c, s, l := connect(t, n, a, b, uint16(80+i))
		l.Close()
		transfer(t, n, c, s, payload(uint64(i), 5000), time.Second)
		transfer(t, n, s, c, payload(uint64(i), 3000), time.Second)
		conns = append(conns, [2]*stack.TCPConn{c, s})
	}
	n.RunQuiet(5 * time.Second)
	for _, nd := range []*stacktest.Node{a, b} {
		if st := nd.Stack.Stats().TCP; st.Parked != 20 {
			t.Errorf("%s: %d connections parked, want 20 (%d parks, %d unparks)", nd.Name, st.Parked, st.Parks, st.Unparks)
		}
	}
	for _, nd := range []*stacktest.Node{a, b} {
		if d := nd.Stack.NextDeadline(); d != clock.Never {
			t.Errorf("%s: NextDeadline %v with 20 idle connections, want never", nd.Name, d)
		}
	}
	for _, p := range conns {
		if p[0].State() != tcp.Established || p[1].State() != tcp.Established {
			t.Fatalf("connection %v-%v: %v %v", p[0].LocalAddr(), p[1].LocalAddr(), p[0].State(), p[1].State())
		}
		if p[0].BufferedChunks() != 0 || p[1].BufferedChunks() != 0 {
			t.Errorf("idle connection holds %d+%d chunks", p[0].BufferedChunks(), p[1].BufferedChunks())
		}
	}
	// Keep-alive: the connection is in the heap again, due the idle time
	// after it last heard from the peer, and probes keep it there.
	c := conns[3][0]
	beforeA := a.Stack.Stats().TCP
	c.SetKeepAlive(n.Now, true, 10*time.Second, 2*time.Second, 3)
	if d := a.Stack.NextDeadline(); d <= n.Now || d > n.Now.Add(10*time.Second) {
		t.Errorf("with keep-alive: NextDeadline %v at %v, want within the idle time", d, n.Now)
	}
	mark := len(n.Log)
	before := b.Stack.Stats().TCP
	n.RunFor(11 * time.Second)
	if got := len(n.Log) - mark; got != 2 {
		t.Errorf("%d frames after the idle time, want a probe and its answer", got)
	}
	if st := b.Stack.Stats().TCP; st.Unparks != before.Unparks || st.KeepAliveParked != before.KeepAliveParked+1 || st.Parked != 20 {
		t.Errorf("the peer: %d unparks (was %d), %d probes answered parked (was %d), %d parked: want the probe answered by the record",
			st.Unparks, before.Unparks, st.KeepAliveParked, before.KeepAliveParked, st.Parked)
	}
	if st := a.Stack.Stats().TCP; st.Unparks != beforeA.Unparks+1 || st.KeepAliveParked != beforeA.KeepAliveParked+2 || st.Parked != 20 {
		t.Errorf("the prober: %d unparks (was %d; the call unparks once), %d keep-alive segments parked (was %d), %d parked: want the probe sent and its answer taken by the record",
			st.Unparks, beforeA.Unparks, st.KeepAliveParked, beforeA.KeepAliveParked, st.Parked)
	}
	c.SetKeepAlive(n.Now, false, 0, 0, 0)
	n.RunQuiet(5 * time.Second)
	if d := a.Stack.NextDeadline(); d != clock.Never {
		t.Errorf("keep-alive off: NextDeadline %v, want never", d)
	}
}

// TestEverythingEnds: after bulk transfers both ways and an orderly close
// (RFC 9293 §3.6), every connection leaves the table once TIME-WAIT's
// 2×MSL is over (§3.10.8), every buffer chunk is given back, and the
// stacks have nothing left to do.
func TestEverythingEnds(t *testing.T) {
	before := chunk.InUse()
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	l, err := b.Stack.Listen(ap(ipB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	var all []*stack.TCPConn
	for i := range 5 {
		c, s := connectTo(t, n, a, l, ap(ipB, 80))
		transfer(t, n, c, s, payload(uint64(i), 300000), time.Minute)
		transfer(t, n, s, c, payload(uint64(i), 200000), time.Minute)
		// Alternate which side closes first.
		if i%2 == 0 {
			c.Close()
			n.RunFor(10 * time.Millisecond)
			s.Close()
		} else {
			s.Close()
			c.Close()
		}
		all = append(all, c, s)
	}
	l.Close()
	n.RunFor(time.Second)
	tw := 0
	for _, c := range all {
		if c.State() == tcp.TimeWait {
			tw++
		}
	}
	if tw < 5 {
		t.Errorf("%d connections in TIME-WAIT, want at least 5", tw)
	}
	n.RunQuiet(5 * time.Minute)
	for _, nd := range []*stacktest.Node{a, b} {
		if cs := nd.Stack.Conns(); len(cs) != 0 {
			t.Errorf("%s: %d connections left: %+v", nd.Name, len(cs), cs)
		}
		if st := nd.Stack.Stats().TCP; st.CurrEstab != 0 {
			t.Errorf("%s: CurrEstab %d", nd.Name, st.CurrEstab)
		}
	}
	for _, c := range all {
		if c.State() != tcp.Closed || c.BufferedChunks() != 0 || c.Err() != nil {
			t.Errorf("%v: %v, %d chunks, err %v", c.LocalAddr(), c.State(), c.BufferedChunks(), c.Err())
		}
	}
	if got := chunk.InUse(); got != before {
		t.Errorf("%d chunks in use, %d before", got, before)
	}
}
