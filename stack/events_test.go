package stack_test

import (
	"errors"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
)

const (
	evEst    = stack.EventEstablished
	evRead   = stack.EventReadable
	evWrite  = stack.EventWritable
	evClosed = stack.EventClosed
)

// eventsSince returns the events of so recorded on nd from index i.
func eventsSince(nd *stacktest.Node, i int, so stack.Socket) []stack.Events {
	var out []stack.Events
	for _, e := range nd.Events[i:] {
		if e.Socket == so {
			out = append(out, e.Events)
		}
	}
	return out
}

// TestEventsHandshake: the dialer hears Established (with Writable) once
// the handshake completes (RFC 9293 §3.5), and nothing before; the
// listener hears Readable when a connection is ready to accept; a
// connection waiting in the accept queue is reported to nobody, whatever
// happens to it, until Accept hands it out — then what it missed is due.
func TestEventsHandshake(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	l, err := b.Stack.Listen(ap(ipB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(time.Second, func() bool { return c.State() == tcp.Established })
	if got := a.EventsFor(c); len(got) != 1 || got[0] != evEst|evWrite {
		t.Errorf("dialer events %v, want [Established|Writable]", got)
	}
	// Data and the FIN reach the queued connection before it is accepted.
	if _, err := c.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	n.RunQuiet(settle)
	if got := b.EventsFor(l); len(got) != 1 || got[0] != evRead {
		t.Errorf("listener events %v, want [Readable]", got)
	}
	for _, e := range b.Events {
		if e.Socket != stack.Socket(l) {
			t.Errorf("event %v for %T before Accept", e.Events, e.Socket)
		}
	}
	mark := len(b.Events)
	s := l.Accept()
	n.Flush()
	if got := eventsSince(b, mark, s); len(got) != 1 || got[0]&evRead == 0 {
		t.Errorf("accepted connection's events %v, want one with Readable", got)
	}
	got, err := readAll(s)
	if string(got) != "early" || err != io.EOF {
		t.Errorf("read %q, %v; want \"early\", EOF", got, err)
	}
}

// TestEventsOncePerChange: each change is reported once: new data makes
// the reader Readable once per arrival (not per segment of a batch), an
// ACK that frees send buffer makes the writer Writable, and segments
// that change nothing for the application (pure ACKs at the reader,
// duplicates) report nothing.
func TestEventsOncePerChange(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	c, s, _ := connect(t, n, a, b, 80)
	n.RunQuiet(settle)
	markA, markB := len(a.Events), len(b.Events)
	// Three segments written at once arrive in the same instant.
	if _, err := c.Write(payload(1, 3*1448)); err != nil {
		t.Fatal(err)
	}
	n.RunQuiet(settle)
	if got := eventsSince(b, markB, s); len(got) != 1 || got[0] != evRead {
		t.Errorf("reader events %v, want [Readable]", got)
	}
	if got := eventsSince(a, markA, c); len(got) != 1 || got[0] != evWrite {
		t.Errorf("writer events %v, want [Writable] (the ACK freed the buffer)", got)
	}
	// Nothing read yet: another arrival is another change.
	markB = len(b.Events)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	n.RunQuiet(settle)
	if got := eventsSince(b, markB, s); len(got) != 1 || got[0] != evRead {
		t.Errorf("second arrival: %v, want [Readable]", got)
	}
	// Reading reports nothing to the reader itself.
	markA, markB = len(a.Events), len(b.Events)
	readAll(s)
	n.RunQuiet(settle)
	if got := eventsSince(b, markB, s); len(got) != 0 {
		t.Errorf("read caused events %v", got)
	}
	if got := eventsSince(a, markA, c); len(got) != 0 {
		t.Errorf("peer's read caused events %v at the writer", got)
	}
	// A duplicate of old data changes nothing for the application.
	var dup []byte
	for _, f := range frames(n, 0, from(a)) {
		if d := f.Decode(); d.TCP != nil && len(d.TCP.Payload) > 0 {
			dup = f.Data
			break
		}
	}
	markB = len(b.Events)
	b.Inject(dup)
	n.RunQuiet(settle)
	if got := eventsSince(b, markB, s); len(got) != 0 {
		t.Errorf("duplicate segment caused events %v", got)
	}
}

// TestEventsClose: the peer's FIN makes the reader Readable (EOF is
// readable, RFC 9293 §3.10.7.4 eighth step); a RST reports Closed with
// Readable and Writable, once, and the error is ECONNRESET.
func TestEventsClose(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	c, s, _ := connect(t, n, a, b, 80)
	n.RunQuiet(settle)
	markB := len(b.Events)
	c.CloseWrite()
	n.RunQuiet(settle)
	if got := eventsSince(b, markB, s); len(got) != 1 || got[0] != evRead {
		t.Errorf("FIN: reader events %v, want [Readable]", got)
	}
	if _, err := s.Read(make([]byte, 10)); err != io.EOF {
		t.Errorf("Read after FIN: %v, want EOF", err)
	}
	markB = len(b.Events)
	c.Abort()
	n.RunQuiet(settle)
	if got := eventsSince(b, markB, s); len(got) != 1 || got[0] != evRead|evWrite|evClosed {
		t.Errorf("RST: events %v, want [Readable|Writable|Closed]", got)
	}
	if !errors.Is(s.Err(), syscall.ECONNRESET) || s.State() != tcp.Closed {
		t.Errorf("after RST: %v %v", s.State(), s.Err())
	}
}

// TestEventsUDPAndListenerClose: a UDP socket is Readable once per batch
// of arrivals; closing a listener reports Closed to it.
func TestEventsUDPAndListenerClose(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	ua, ub := udpPair(t, a, b)
	for range 3 {
		if _, err := ua.WriteTo(n.Now, []byte("d"), ap(ipB, 7)); err != nil {
			t.Fatal(err)
		}
	}
	n.RunQuiet(settle)
	if got := b.EventsFor(ub); len(got) != 1 || got[0] != evRead {
		t.Errorf("UDP events %v, want [Readable]", got)
	}
	if len(recvAll(ub)) != 3 {
		t.Error("datagrams lost")
	}
	l, err := b.Stack.Listen(ap(ipB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	n.Flush()
	if got := b.EventsFor(l); len(got) != 1 || got[0]&evClosed == 0 {
		t.Errorf("listener events %v, want [Closed...]", got)
	}
}

// TestEventsQueuedConnReset: a connection reset while it waits in the
// accept queue leaves the queue, and nobody hears of it: the owner never
// saw the socket.
func TestEventsQueuedConnReset(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	l, err := b.Stack.Listen(ap(ipB, 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
	if err != nil {
		t.Fatal(err)
	}
	n.RunUntil(time.Second, func() bool { return l.Pending() == 1 })
	c.Abort()
	n.RunQuiet(settle)
	if l.Pending() != 0 || len(b.Stack.Conns()) != 0 {
		t.Errorf("reset connection still queued: pending %d, conns %d", l.Pending(), len(b.Stack.Conns()))
	}
	for _, e := range b.Events {
		if e.Socket != stack.Socket(l) {
			t.Errorf("event %v for a socket never accepted", e.Events)
		}
	}
	if s := l.Accept(); s != nil {
		t.Errorf("Accept returned the reset connection")
	}
}

// settle is how long the events tests let two stacks run until nothing is
// left to do: an idle connection's idle timer fires once, after ParkIdle
// (1 s) or three RTOs, and parks it (tcp.Config.ParkIdle).
const settle = 5 * time.Second
