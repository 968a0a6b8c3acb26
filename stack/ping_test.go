package stack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// echoRequest returns an ICMPv4 echo request with identifier id (which a
// ping socket replaces), sequence number seq and data.
func echoRequest(id, seq uint16, data []byte) []byte {
	return stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: id, Seq: seq, Payload: data})
}

// readPing reads one reply from e, failing the test if none is queued.
func readPing(t *testing.T, e *stack.PingEndpoint) ([]byte, netip.Addr) {
	t.Helper()
	buf := make([]byte, 70000)
	k, from, err := e.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ping ReadFrom: %v", err)
	}
	return buf[:k], from
}

// TestPingSocketEcho: a ping socket's echo request leaves with the
// socket's identifier (not the one written) and a valid checksum (RFC
// 792), the peer's reply comes back to the socket whole — header,
// identifier, sequence number and data — with the peer as its source,
// as Linux's SOCK_DGRAM IPPROTO_ICMP sockets do; the counters say so
// on both sides.
func TestPingSocketEcho(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{})
	e, err := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() == 0 {
		t.Fatal("BindPing picked identifier 0")
	}
	data := payload(5, 56)
	req := echoRequest(0xdead, 7, data)
	orig := bytes.Clone(req)
	i := len(n.Log)
	if k, err := e.WriteTo(n.Now, req, ipB); err != nil || k != len(req) {
		t.Fatalf("WriteTo = %d, %v", k, err)
	}
	if !bytes.Equal(req, orig) {
		t.Error("WriteTo changed the caller's message")
	}
	n.RunFor(10 * time.Millisecond)
	out := icmpIn(t, frames(n, i, from(a)))
	if len(out) != 1 {
		t.Fatalf("A sent %d ICMP messages, want 1", len(out))
	}
	if m := out[0].ICMP; m.Type != wire.ICMPv4EchoRequest || m.ID != e.ID() || m.Seq != 7 || !bytes.Equal(m.Payload, data) ||
		wire.Checksum(out[0].IPv4.Payload(), 0) != 0 || out[0].IP.Src != ipA || out[0].IP.Dst != ipB {
		t.Errorf("request on the wire: %v", out[0])
	}
	got, src := readPing(t, e)
	var f wire.ICMPv4Fields
	f.Decode(wire.ICMPv4(got))
	if src != ipB || f.Type != wire.ICMPv4EchoReply || f.Code != 0 || f.ID != e.ID() || f.Seq != 7 || !bytes.Equal(f.Payload, data) {
		t.Errorf("reply %+v from %v", f, src)
	}
	if _, _, err := e.ReadFrom(make([]byte, 100)); err != stack.ErrWouldBlock {
		t.Errorf("second read: %v, want ErrWouldBlock", err)
	}
	if ev := a.EventsFor(e); len(ev) != 1 || ev[0] != stack.EventReadable {
		t.Errorf("events %v, want one EventReadable", ev)
	}
	sa, sb := a.Stack.Stats(), b.Stack.Stats()
	if sa.Net.OutEchos != 1 || sa.Net.OutMsgs != 1 || sa.Net.InEchoReps != 1 || sa.Ping.OutRequests != 1 || sa.Ping.InReplies != 1 || sa.Ping.NoSocket != 0 {
		t.Errorf("A's counters %v", sa.Map())
	}
	if sb.Net.InEchos != 1 || sb.Net.OutEchoReps != 1 {
		t.Errorf("B's counters %v", sb.Map())
	}
}

// TestPingSocketLoopback: a ping to the stack's own address is answered
// by the stack itself, and the reply reaches the socket without leaving
// it.
func TestPingSocketLoopback(t *testing.T) {
	n, a, _ := knownPair(t, stack.Config{})
	e, err := a.Stack.BindPing(ipA, 0)
	if err != nil {
		t.Fatal(err)
	}
	i := len(n.Log)
	if _, err := e.WriteTo(n.Now, echoRequest(0, 1, []byte("self")), ipA); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	if fs := n.Since(i); len(fs) != 0 {
		t.Errorf("a loopback ping put %d frames on the wire", len(fs))
	}
	got, src := readPing(t, e)
	if src != ipA || got[0] != wire.ICMPv4EchoReply || string(got[8:]) != "self" {
		t.Errorf("reply % x from %v", got, src)
	}
}

// TestPingSocketFragments: a request larger than the MTU leaves in
// fragments (RFC 791 §3.2); the peer reassembles it and its reply,
// fragmented as well, is reassembled into one message for the socket.
func TestPingSocketFragments(t *testing.T) {
	n, a, _ := knownPair(t, stack.Config{})
	e, err := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := payload(9, 4000)
	if _, err := e.WriteTo(n.Now, echoRequest(0, 3, data), ipB); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	got, _ := readPing(t, e)
	if len(got) != 8+len(data) || !bytes.Equal(got[8:], data) || binary.BigEndian.Uint16(got[6:]) != 3 {
		t.Errorf("reply of %d bytes, want %d with the data", len(got), 8+len(data))
	}
	if st := a.Stack.Stats().Net; st.FragCreates != 3 || st.ReasmOKs != 1 {
		t.Errorf("FragCreates %d ReasmOKs %d, want 3 1", st.FragCreates, st.ReasmOKs)
	}
}

// TestPingSocketUnmatched: replies no ping socket takes are counted
// (Ping.NoSocket) and dropped without an answer: an identifier nobody
// has, a socket bound to another of the stack's addresses, and a closed
// socket's identifier; a reply with a bad checksum never reaches the
// sockets (Net.InCsumErrors).
func TestPingSocketUnmatched(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	ipA2 := netip.MustParseAddr("10.0.0.3")
	if err := a.Stack.AddAddress(a.NIC, netip.PrefixFrom(ipA2, 24)); err != nil {
		t.Fatal(err)
	}
	e, err := a.Stack.BindPing(ipA2, 0x4242)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(dst netip.Addr, id uint16) []byte {
		return r.ICMPFrame(a.MAC, ipRaw, dst, wire.ICMPv4Fields{Type: wire.ICMPv4EchoReply, ID: id, Seq: 1, Payload: []byte("x")})
	}
	want := map[string]int64{"Net.InDelivers": 1, "Net.InMsgs": 1, "Net.InEchoReps": 1, "Ping.NoSocket": 1}
	expectDrop(t, n, a, reply(ipA2, 0x4343), want)
	expectDrop(t, n, a, reply(ipA, 0x4242), want)
	bad := reply(ipA2, 0x4242)
	bad[len(bad)-1] ^= 0xff
	expectDrop(t, n, a, bad, map[string]int64{"Net.InDelivers": 1, "Net.InMsgs": 1, "Net.InErrors": 1, "Net.InCsumErrors": 1})
	if e.Readable() {
		t.Fatal("a reply was queued")
	}
	// The right address and identifier: delivered.
	a.Inject(reply(ipA2, 0x4242))
	if got, src := readPing(t, e); src != ipRaw || string(got[8:]) != "x" {
		t.Errorf("reply % x from %v", got, src)
	}
	e.Close()
	expectDrop(t, n, a, reply(ipA2, 0x4242), want)
}

// TestPingSocketReceiveBuffer: replies beyond the receive queue
// (Config.UDPRecvBuffer, net.core.rmem_default for every datagram
// socket) are dropped and counted; reading makes room again.
func TestPingSocketReceiveBuffer(t *testing.T) {
	n, a, _ := knownPair(t, stack.Config{UDPRecvBuffer: 3000})
	e, err := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := e.WriteTo(n.Now, echoRequest(0, uint16(i), make([]byte, 992)), ipB); err != nil {
			t.Fatal(err)
		}
	}
	n.RunFor(10 * time.Millisecond)
	k := 0
	for e.Readable() {
		readPing(t, e)
		k++
	}
	if st := a.Stack.Stats().Ping; k != 3 || st.InReplies != 3 || st.RcvbufErrors != 1 {
		t.Errorf("%d replies read, counters %+v; want 3 and one RcvbufErrors", k, st)
	}
	if _, err := e.WriteTo(n.Now, echoRequest(0, 9, nil), ipB); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	if got, _ := readPing(t, e); binary.BigEndian.Uint16(got[6:]) != 9 {
		t.Errorf("after reading: reply % x", got)
	}
}

// TestPingSocketTruncates: a buffer shorter than the reply gets its
// start, as recvfrom(2) without MSG_TRUNC.
func TestPingSocketTruncates(t *testing.T) {
	n, a, _ := knownPair(t, stack.Config{})
	e, _ := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
	if _, err := e.WriteTo(n.Now, echoRequest(0, 1, []byte("0123456789")), ipB); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	buf := make([]byte, 12)
	if k, _, err := e.ReadFrom(buf); err != nil || k != 12 || string(buf[8:]) != "0123" {
		t.Errorf("ReadFrom = %d %v % x", k, err, buf)
	}
	if e.Readable() {
		t.Error("the rest of a truncated reply was kept")
	}
}

// TestPingSocketWriteErrors: what Linux refuses, ustack refuses with the
// same errno: anything but an echo request with code 0, or shorter than
// its header (EINVAL); more than an IPv4 packet holds (EMSGSIZE); an
// address of another family (EAFNOSUPPORT); no route (ENETUNREACH); a
// closed socket (EBADF). Nothing leaves for any of them.
func TestPingSocketWriteErrors(t *testing.T) {
	n, a, _ := knownPair(t, stack.Config{})
	e, _ := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
	i := len(n.Log)
	reply := stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4EchoReply, ID: 1})
	code1 := echoRequest(1, 1, nil)
	code1[1] = 1
	for _, tc := range []struct {
		name string
		msg  []byte
		to   netip.Addr
		want error
	}{
		{"echo reply", reply, ipB, syscall.EINVAL},
		{"code 1", code1, ipB, syscall.EINVAL},
		{"7 bytes", echoRequest(1, 1, nil)[:7], ipB, syscall.EINVAL},
		{"65516 bytes", echoRequest(1, 1, make([]byte, 65516-8)), ipB, syscall.EMSGSIZE},
		{"IPv6 destination", echoRequest(1, 1, nil), netip.MustParseAddr("2001:db8::1"), syscall.EAFNOSUPPORT},
		{"unspecified destination", echoRequest(1, 1, nil), netip.IPv4Unspecified(), syscall.EINVAL},
		{"no route", echoRequest(1, 1, nil), netip.MustParseAddr("192.0.2.1"), syscall.ENETUNREACH},
	} {
		if k, err := e.WriteTo(n.Now, tc.msg, tc.to); k != 0 || !isErr(err, tc.want) {
			t.Errorf("%s: WriteTo = %d, %v; want %v", tc.name, k, err, tc.want)
		}
	}
	// The largest request that fits an IPv4 packet goes.
	if _, err := e.WriteTo(n.Now, echoRequest(1, 1, make([]byte, 65515-8)), ipB); err != nil {
		t.Errorf("65515 bytes: %v", err)
	}
	n.Flush()
	if k := len(n.Since(i)); k != 45 {
		t.Errorf("%d frames sent, want the 45 fragments of the largest request", k)
	}
	e.Close()
	if _, err := e.WriteTo(n.Now, echoRequest(1, 1, nil), ipB); !isErr(err, syscall.EBADF) {
		t.Errorf("WriteTo after Close: %v", err)
	}
	if _, _, err := e.ReadFrom(nil); !isErr(err, syscall.EBADF) {
		t.Errorf("ReadFrom after Close: %v", err)
	}
}

// TestPingSocketIdentifiers: identifier 0 picks a free one, never 0;
// an identifier belongs to one socket at a time whatever its address
// (Linux's ping_get_port: EADDRINUSE), and is free again after Close;
// a socket binds only to the stack's own addresses or the unspecified
// one (EADDRNOTAVAIL), not after the stack's Close (EBADF).
func TestPingSocketIdentifiers(t *testing.T) {
	_, a, _ := knownPair(t, stack.Config{})
	seen := map[uint16]bool{}
	for range 100 {
		e, err := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID() == 0 || seen[e.ID()] {
			t.Fatalf("picked identifier %d (seen before: %v)", e.ID(), seen[e.ID()])
		}
		seen[e.ID()] = true
	}
	e, err := a.Stack.BindPing(ipA, 7)
	if err != nil || e.ID() != 7 || e.LocalAddr() != ipA {
		t.Fatalf("BindPing(%v, 7) = %v, %v", ipA, e, err)
	}
	if _, err := a.Stack.BindPing(netip.IPv4Unspecified(), 7); !isErr(err, syscall.EADDRINUSE) {
		t.Errorf("identifier 7 again: %v", err)
	}
	e.Close()
	if _, err := a.Stack.BindPing(netip.IPv4Unspecified(), 7); err != nil {
		t.Errorf("identifier 7 after Close: %v", err)
	}
	if _, err := a.Stack.BindPing(netip.MustParseAddr("10.0.0.99"), 0); !isErr(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("foreign address: %v", err)
	}
	if _, err := a.Stack.BindPing(netip.Addr{}, 0); !isErr(err, syscall.EINVAL) {
		t.Errorf("invalid address: %v", err)
	}
	a.Stack.Close()
	if _, err := a.Stack.BindPing(netip.IPv4Unspecified(), 0); !isErr(err, syscall.EBADF) {
		t.Errorf("after the stack's Close: %v", err)
	}
}

// TestPingSocketStackClose: the stack's Close closes its ping sockets:
// reads fail with EBADF and the owner hears EventClosed.
func TestPingSocketStackClose(t *testing.T) {
	_, a, _ := knownPair(t, stack.Config{})
	e, _ := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
	a.Stack.Close()
	if _, _, err := e.ReadFrom(make([]byte, 10)); !isErr(err, syscall.EBADF) {
		t.Errorf("read after the stack's Close: %v", err)
	}
	var closed bool
	for {
		so, ev, ok := a.Stack.PollEvent()
		if !ok {
			break
		}
		closed = closed || so == e && ev&stack.EventClosed != 0
	}
	if !closed {
		t.Error("no EventClosed for the ping socket")
	}
}

// TestZeroAllocsPingSocket: a ping socket's round trip (WriteTo,
// PollTransmit, the peer's reply, HandleFrame, ReadFrom) allocates
// nothing once warm.
func TestZeroAllocsPingSocket(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	n, a, b := knownPair(t, stack.Config{})
	e, err := a.Stack.BindPing(netip.IPv4Unspecified(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pkt := link.Packet{Buf: make([]byte, a.Stack.MaxFrameLen())}
	req := echoRequest(0, 1, payload(1, 56))
	buf := make([]byte, 1500)
	now := n.Now
	round := func() {
		now += 1000
		if _, err := e.WriteTo(now, req, ipB); err != nil {
			panic(err)
		}
		for _, hop := range [][2]*stacktest.Node{{a, b}, {b, a}} {
			for {
				if _, ok := hop[0].Stack.PollTransmit(now, &pkt); !ok {
					break
				}
				hop[1].Stack.HandleFrame(now, hop[1].NIC, &pkt)
			}
		}
		if k, _, err := e.ReadFrom(buf); err != nil || k != len(req) {
			panic(err)
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
		t.Errorf("%.2f allocations per ping", allocs)
	}
}

// TestPingSocketForeign: on a promiscuous NIC (forwarder mode) an echo
// reply to an address that is not the stack's reaches no ping socket,
// even one bound to every address: it was not sent from here.
func TestPingSocketForeign(t *testing.T) {
	_, a, r := withRaw(t, stack.Config{})
	if err := a.Stack.SetForwarding(a.NIC, true, false); err != nil {
		t.Fatal(err)
	}
	e, err := a.Stack.BindPing(netip.IPv4Unspecified(), 0x5151)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(dst netip.Addr) []byte {
		return r.ICMPFrame(a.MAC, ipRaw, dst, wire.ICMPv4Fields{Type: wire.ICMPv4EchoReply, ID: 0x5151, Seq: 1})
	}
	a.Inject(reply(netip.MustParseAddr("198.51.100.7")))
	if e.Readable() || a.Stack.Stats().Ping.NoSocket != 1 {
		t.Errorf("a reply to a foreign address was queued (NoSocket %d)", a.Stack.Stats().Ping.NoSocket)
	}
	a.Inject(reply(ipA))
	if !e.Readable() {
		t.Error("the reply to the stack's own address was not queued")
	}
}

// TestPingSocketEcho6: an IPv6 ping socket (Linux's SOCK_DGRAM
// IPPROTO_ICMPV6) sends an ICMPv6 echo request with its identifier and
// a checksum over the pseudo-header (RFC 4443 §2.3), and the reply comes
// back to it; to a link-local address the zone names the NIC, and the
// reply's source carries it. An IPv4 destination is refused.
func TestPingSocketEcho6(t *testing.T) {
	n, a, b := pair6(t, stack.Config{}, stack.Config{})
	e, err := a.Stack.BindPing(netip.IPv6Unspecified(), 0)
	if err != nil {
		t.Fatal(err)
	}
	llB := wire.LinkLocalFromMAC(b.MAC)
	data := payload(6, 56)
	for k, to := range []netip.Addr{ip6B, llB.WithZone("A")} {
		req := stacktest.ICMP6Msg(wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, ID: 0xbeef, Seq: uint16(k), Payload: data}, ip6A, to.WithZone(""))
		i := len(n.Log)
		if w, err := e.WriteTo(n.Now, req, to); err != nil || w != len(req) {
			t.Fatalf("WriteTo %v = %d, %v", to, w, err)
		}
		n.RunFor(10 * time.Millisecond)
		var sent []*stacktest.Decoded
		for _, f := range frames(n, i, from(a)) {
			if d := f.Decode(); d.ICMP6 != nil && d.ICMP6.Type == wire.ICMPv6EchoRequest {
				sent = append(sent, d)
			}
		}
		if len(sent) != 1 || sent[0].ICMP6.ID != e.ID() || sent[0].IP6.Dst != to.WithZone("") ||
			wire.ICMPv6Checksum(sent[0].Chain.Upper(sent[0].IPv6), sent[0].IP6.Src, sent[0].IP6.Dst) != 0 {
			t.Fatalf("to %v: requests on the wire %v", to, sent)
		}
		got, src := readPing(t, e)
		var f wire.ICMPv6Fields
		f.Decode(wire.ICMPv6(got))
		if src != to || f.Type != wire.ICMPv6EchoReply || f.ID != e.ID() || f.Seq != uint16(k) || !bytes.Equal(f.Payload, data) {
			t.Errorf("to %v: reply %+v from %v", to, f, src)
		}
	}
	if _, err := e.WriteTo(n.Now, echoRequest(1, 1, nil), ipB); !isErr(err, syscall.EAFNOSUPPORT) {
		t.Errorf("IPv4 destination: %v, want EAFNOSUPPORT", err)
	}
	sa := a.Stack.Stats()
	if sa.Net.Icmp6OutEchos != 2 || sa.Net.Icmp6InEchoReplies != 2 || sa.Ping.OutRequests != 2 || sa.Ping.InReplies != 2 || sa.Ping.NoSocket != 0 {
		t.Errorf("A's counters %v", sa.Map())
	}
}
