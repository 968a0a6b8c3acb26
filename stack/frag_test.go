package stack_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// udpPair binds port 7 on A and B.
func udpPair(t *testing.T, a, b *stacktest.Node) (ua, ub *stack.UDPEndpoint) {
	t.Helper()
	ua, err := a.Stack.BindUDP(ap(ipA, 7))
	if err != nil {
		t.Fatal(err)
	}
	ub, err = b.Stack.BindUDP(ap(ipB, 7))
	if err != nil {
		t.Fatal(err)
	}
	return ua, ub
}

// recvAll reads every queued datagram of u.
func recvAll(u *stack.UDPEndpoint) [][]byte {
	var out [][]byte
	buf := make([]byte, 70000)
	for {
		k, _, err := u.ReadFrom(buf)
		if err != nil {
			return out
		}
		out = append(out, bytes.Clone(buf[:k]))
	}
}

// TestFragmentUDP: RFC 791 §2.3 and §3.2 "Fragmentation": a datagram
// larger than the MTU leaves in fragments that fit it, DF clear, payloads
// multiples of 8 bytes but the last, MF on all but the last, one ID; the
// peer reassembles it (RFC 815), whatever the MTU.
func TestFragmentUDP(t *testing.T) {
	for _, tc := range []struct{ mtu, size int }{{1500, 4000}, {576, 3000}, {1500, 1473}, {68, 200}, {1500, 65507}} {
		n := stacktest.New(t)
		a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{MAC: stacktest.MAC(1), MTU: tc.mtu, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
		b := n.AddHost("B", stack.Config{Seed: 2}, "10.0.0.2/24")
		ua, ub := udpPair(t, a, b)
		data := payload(uint64(tc.size), tc.size)
		if _, err := ua.WriteTo(n.Now, data, ap(ipB, 7)); err != nil {
			t.Fatalf("MTU %d size %d: %v", tc.mtu, tc.size, err)
		}
		n.RunFor(10 * time.Millisecond)
		got := recvAll(ub)
		if len(got) != 1 || !bytes.Equal(got[0], data) {
			t.Fatalf("MTU %d size %d: received %d datagrams", tc.mtu, tc.size, len(got))
		}
		var frags []*stacktest.Decoded
		for _, f := range frames(n, 0, from(a)) {
			if d := decodeOne(t, f); d.IP != nil {
				frags = append(frags, d)
			}
		}
		total := 8 + tc.size
		want := (total + (tc.mtu-20)&^7 - 1) / ((tc.mtu - 20) &^ 7)
		if len(frags) != want {
			t.Errorf("MTU %d size %d: %d fragments, want %d", tc.mtu, tc.size, len(frags), want)
		}
		off := 0
		for i, d := range frags {
			last := i == len(frags)-1
			plen := len(d.IPv4) - 20
			if d.IP.DF || d.IP.MF == last || int(d.IP.FragOffset) != off || d.IP.ID != frags[0].IP.ID || len(d.IPv4) > tc.mtu || !last && plen%8 != 0 {
				t.Errorf("MTU %d size %d: fragment %d: %v", tc.mtu, tc.size, i, d.IP)
			}
			off += plen
		}
		if off != total {
			t.Errorf("MTU %d size %d: fragments carry %d bytes, want %d", tc.mtu, tc.size, off, total)
		}
		if sa, sb := a.Stack.Stats().Net, b.Stack.Stats().Net; sa.FragOKs != 1 || sa.FragCreates != uint64(want) || sb.ReasmOKs != 1 || sb.ReasmReqds != uint64(want) {
			t.Errorf("MTU %d size %d: FragOKs %d FragCreates %d ReasmOKs %d ReasmReqds %d", tc.mtu, tc.size, sa.FragOKs, sa.FragCreates, sb.ReasmOKs, sb.ReasmReqds)
		}
	}
}

// TestFragmentUDPTooBig: a datagram over 65535 bytes cannot be sent
// (EMSGSIZE, as Linux); one of exactly 65507 payload bytes can (above).
func TestFragmentUDPTooBig(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	ua, _ := udpPair(t, a, b)
	if _, err := ua.WriteTo(n.Now, make([]byte, 65508), ap(ipB, 7)); !isErr(err, stack.ErrMsgSize) {
		t.Errorf("WriteTo of 65508 bytes: %v, want EMSGSIZE", err)
	}
}

// TestReassemblyOutOfOrderAndDuplicates: RFC 791 §3.2 and RFC 815: the
// fragments may arrive in any order and more than once; the datagram is
// delivered once and whole.
func TestReassemblyOutOfOrderAndDuplicates(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	ua, ub := udpPair(t, a, b)
	// Resolve first, so that the fragments leave back to back.
	if _, err := ua.WriteTo(n.Now, []byte("hello"), ap(ipB, 7)); err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Millisecond)
	recvAll(ub)
	k := 0
	n.Impair = func(f *stacktest.Frame) stacktest.Action {
		d := f.Decode()
		if d.IP == nil || !(d.IP.MF || d.IP.FragOffset > 0) {
			return stacktest.Action{}
		}
		k++
		switch k {
		case 1: // the first fragment arrives last, twice
			return stacktest.Action{Delay: 5 * time.Millisecond, Dups: 1}
		case 3: // the third one three times
			return stacktest.Action{Dups: 2}
		case 4: // the fourth before the second and the third
			return stacktest.Action{Delay: -500 * time.Microsecond}
		}
		return stacktest.Action{}
	}
	data := payload(9, 5000)
	if _, err := ua.WriteTo(n.Now, data, ap(ipB, 7)); err != nil {
		t.Fatal(err)
	}
	n.RunFor(20 * time.Millisecond)
	got := recvAll(ub)
	if k != 4 || len(got) != 1 || !bytes.Equal(got[0], data) {
		t.Fatalf("%d fragments sent, %d datagrams received", k, len(got))
	}
	if st := b.Stack.Stats().Net; st.ReasmOKs != 1 || st.ReasmFails != 0 {
		t.Errorf("ReasmOKs %d ReasmFails %d, want 1 0", st.ReasmOKs, st.ReasmFails)
	}
}

// TestReassemblyTimeout: RFC 1122 §3.3.2 and RFC 792: when reassembly
// times out (Linux: 30 s after the first fragment to arrive) and the
// first fragment was there, the host sends time exceeded, code 1
// ("fragment reassembly time exceeded"), quoting that fragment's header
// and 8 bytes; without the first fragment it sends nothing.
func TestReassemblyTimeout(t *testing.T) {
	for _, haveFirst := range []bool{true, false} {
		n, a, r := withRaw(t, stack.Config{})
		dgram := stacktest.UDPDgram(ap(ipRaw, 1000), ap(ipA, 7), payload(1, 100))
		first := firstFragment(ipRaw, ipA, wire.ProtoUDP, dgram)
		h := stacktest.IPHeader(ipRaw, ipA, wire.ProtoUDP)
		h.FragOffset = 48
		second := stacktest.IP(h, dgram[48:])
		if haveFirst {
			r.Send(r.IPFrame(a.MAC, first))
		} else {
			r.Send(r.IPFrame(a.MAC, second))
		}
		n.RunFor(29 * time.Second)
		if in := r.Take(); len(in) != 0 {
			t.Fatalf("first %v: early answer %v", haveFirst, in[0])
		}
		n.RunFor(2 * time.Second)
		ms := icmpIn(t, r.Take())
		st := a.Stack.Stats().Net
		if st.ReasmTimeout != 1 || st.ReasmFails != 1 {
			t.Errorf("first %v: ReasmTimeout %d ReasmFails %d, want 1 1", haveFirst, st.ReasmTimeout, st.ReasmFails)
		}
		if !haveFirst {
			if len(ms) != 0 {
				t.Errorf("time exceeded without the first fragment: %v", ms[0])
			}
			continue
		}
		if len(ms) != 1 {
			t.Fatalf("%d ICMP messages, want 1", len(ms))
		}
		m := ms[0]
		if m.ICMP.Type != wire.ICMPv4TimeExceeded || m.ICMP.Code != wire.ICMPv4ReassemblyTimeExceeded || m.IP.Dst != ipRaw || m.IP.Src != ipA {
			t.Errorf("got %v", m)
		}
		if !bytes.Equal(m.ICMP.Payload, first[:28]) {
			t.Errorf("quote %x, want the first fragment's header and 8 bytes %x", m.ICMP.Payload, first[:28])
		}
		if st.OutTimeExcds != 1 {
			t.Errorf("OutTimeExcds %d", st.OutTimeExcds)
		}
	}
}

// TestFragmentedTCPSegment: a TCP segment that arrives in fragments is
// reassembled before TCP sees it (here a SYN to a closed port, answered
// with one RST).
func TestFragmentedTCPSegment(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	seg := stacktest.TCPSeg(ap(ipRaw, 1000), ap(ipA, 80), wire.TCPFields{Seq: 5, Flags: wire.TCPFlagSYN, Payload: payload(1, 100)})
	h := stacktest.IPHeader(ipRaw, ipA, wire.ProtoTCP)
	h.MF = true
	r.Send(r.IPFrame(a.MAC, stacktest.IP(h, seg[:64])))
	h.MF, h.FragOffset = false, 64
	r.Send(r.IPFrame(a.MAC, stacktest.IP(h, seg[64:])))
	n.RunFor(10 * time.Millisecond)
	in := r.Take()
	if len(in) != 1 {
		t.Fatalf("%d answers", len(in))
	}
	if d := decodeOne(t, in[0]); !d.IsTCP(wire.TCPFlagRST) || d.TCP.Ack != 5+1+100 {
		t.Errorf("answer %v, want RST ack 106", d)
	}
	_ = tcp.Closed
}
