package stack_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// smallRange is the ephemeral range of the port tests: 10 ports.
var smallRange = stack.Config{EphemeralPorts: [2]uint16{40000, 40009}}

func inRange(p uint16) bool { return p >= 40000 && p <= 40009 }

// TestEphemeralPortsExhausted: RFC 6056 §3.3.3 (Algorithm 3): ports come
// from the configured range (net.ipv4.ip_local_port_range), a 4-tuple is
// never used twice, and when every port of the range is taken towards a
// destination, Connect fails with EADDRNOTAVAIL, as Linux's connect(2)
// does. Another destination can still use the same ports.
func TestEphemeralPortsExhausted(t *testing.T) {
	n, a, b := pair(t, smallRange, stack.Config{})
	if _, err := b.Stack.Listen(ap(ipB, 80), 0); err != nil {
		t.Fatal(err)
	}
	used := map[uint16]bool{}
	for i := range 10 {
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		p := c.LocalAddr().Port()
		if !inRange(p) || used[p] {
			t.Fatalf("connect %d: port %d (used: %v)", i, p, used)
		}
		used[p] = true
		n.Flush()
	}
	_, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
	if !errors.Is(err, stack.ErrNoPorts) || !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("11th connect: %v, want ErrNoPorts (EADDRNOTAVAIL)", err)
	}
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 81))
	if err != nil || !inRange(c.LocalAddr().Port()) {
		t.Fatalf("connect to another port: %v %v", c, err)
	}
	n.RunFor(time.Second)
}

// TestEphemeralPortsAvoidListeners: RFC 6056 §3.3.3 "check_suitable_port":
// a port a listener holds (on the wildcard or on the source address) is
// not chosen for an outgoing connection.
func TestEphemeralPortsAvoidListeners(t *testing.T) {
	n, a, b := pair(t, smallRange, stack.Config{})
	if _, err := b.Stack.Listen(ap(ipB, 80), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stack.Listen(ap(netip.IPv4Unspecified(), 40003), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stack.Listen(ap(ipA, 40005), 0); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		if p := c.LocalAddr().Port(); p == 40003 || p == 40005 || !inRange(p) {
			t.Errorf("connect %d: port %d", i, p)
		}
	}
	if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80)); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("9th connect: %v, want EADDRNOTAVAIL", err)
	}
}

// TestEphemeralPortsAvoidTuplesInUse: a port already used towards the
// same destination by an explicitly bound connection is skipped, and
// dialing an existing 4-tuple explicitly is EADDRINUSE.
func TestEphemeralPortsAvoidTuplesInUse(t *testing.T) {
	n, a, b := pair(t, smallRange, stack.Config{})
	if _, err := b.Stack.Listen(ap(ipB, 80), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stack.Connect(n.Now, ap(ipA, 40002), ap(ipB, 80)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stack.Connect(n.Now, ap(ipA, 40002), ap(ipB, 80)); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second connect from the same 4-tuple: %v, want EADDRINUSE", err)
	}
	for i := range 9 {
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		if p := c.LocalAddr().Port(); p == 40002 {
			t.Errorf("connect %d: port 40002 is in use", i)
		}
	}
	n.RunFor(time.Second)
}

// TestEphemeralPortsFair: RFC 6056 §3.3.3: Algorithm 3 increments
// next_ephemeral after each choice, so connections to one destination
// that come and go use the whole range in turn rather than the same few
// ports (which TIME-WAIT would then block).
func TestEphemeralPortsFair(t *testing.T) {
	n, a, b := pair(t, stack.Config{EphemeralPorts: [2]uint16{40000, 40007}}, stack.Config{})
	l, err := b.Stack.Listen(ap(ipB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	count := map[uint16]int{}
	var prev uint16
	for i := range 80 {
		c, s := connectTo(t, n, a, l, ap(ipB, 80))
		p := c.LocalAddr().Port()
		if p == prev {
			t.Errorf("connect %d reused the port just freed, %d", i, p)
		}
		prev = p
		count[p]++
		c.Abort() // no TIME-WAIT: the port is free again at once
		n.RunUntil(time.Second, func() bool { return s.State() == tcp.Closed })
	}
	if len(count) != 8 {
		t.Errorf("%d ports used, want all 8: %v", len(count), count)
	}
	for p, k := range count {
		if k != 10 {
			t.Errorf("port %d used %d times, want 10 (%v)", p, k, count)
		}
	}
}

// TestEphemeralListenAndUDP: a listener or UDP socket bound to port 0
// gets a free port of the range; a full range is EADDRNOTAVAIL.
func TestEphemeralListenAndUDP(t *testing.T) {
	_, a, _ := pair(t, smallRange, stack.Config{})
	seen := map[uint16]bool{}
	for i := range 10 {
		l, err := a.Stack.Listen(netip.AddrPort{}, 0)
		if err != nil {
			t.Fatalf("listen %d: %v", i, err)
		}
		p := l.Addr().Port()
		if !inRange(p) || seen[p] {
			t.Fatalf("listen %d: port %d", i, p)
		}
		seen[p] = true
	}
	if _, err := a.Stack.Listen(netip.AddrPort{}, 0); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("11th listen: %v, want EADDRNOTAVAIL", err)
	}
	seen = map[uint16]bool{}
	for i := range 10 {
		u, err := a.Stack.BindUDP(netip.AddrPort{})
		if err != nil {
			t.Fatalf("bind %d: %v", i, err)
		}
		p := u.LocalAddr().Port()
		if !inRange(p) || seen[p] {
			t.Fatalf("bind %d: port %d", i, p)
		}
		seen[p] = true
	}
	if _, err := a.Stack.BindUDP(netip.AddrPort{}); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("11th bind: %v, want EADDRNOTAVAIL", err)
	}
}

// TestEphemeralPortsPerDestination: RFC 6056 §3.3.4 (Algorithm 4): each
// destination's searches go on from its own next_ephemeral counter, so
// dials to several destinations, many more than the range in all, each
// find the port after their destination's last one free at once. With
// Algorithm 3's single counter the dials to the others moved every
// destination's start, and after each lap of the range its searches
// began on ports its own connections held (a million connections to 32
// addresses spent half their setup walking past them).
func TestEphemeralPortsPerDestination(t *testing.T) {
	cfg := stack.Config{EphemeralPorts: [2]uint16{40000, 40999}, Seed: 1}
	n, a, _ := pair(t, cfg, stack.Config{})
	const dests, each = 4, 600 // 2,400 dials over a range of 1,000
	last := map[uint16]uint16{}
	for i := range dests * each {
		dst := ap(ipB, uint16(80+i%dests))
		c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, dst)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		p := c.LocalAddr().Port()
		if prev, ok := last[dst.Port()]; ok {
			if want := 40000 + (prev-40000+1)%1000; p != want {
				t.Fatalf("connect %d to %v: port %d, want %d (the one after its destination's last)", i, dst, p, want)
			}
		}
		last[dst.Port()] = p
	}
}
