package stack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// icmpIn returns the ICMP messages in frames.
func icmpIn(t *testing.T, fs []*stacktest.Frame) []*stacktest.Decoded {
	t.Helper()
	var out []*stacktest.Decoded
	for _, f := range fs {
		if d := decodeOne(t, f); d.ICMP != nil {
			out = append(out, d)
		}
	}
	return out
}

// TestICMPEcho: RFC 792 "Echo or Echo Reply Message": the reply returns
// the identifier, sequence number and data, from the address the request
// was sent to, with a valid checksum (RFC 1122 §3.2.2.6: a host MUST
// answer).
func TestICMPEcho(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	data := payload(3, 1000)
	r.Send(r.ICMPFrame(a.MAC, ipRaw, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 0x1234, Seq: 7, Payload: data}))
	n.RunFor(10 * time.Millisecond)
	in := r.Take()
	if len(in) != 1 {
		t.Fatalf("R got %d frames, want 1", len(in))
	}
	d := decodeOne(t, in[0])
	if d.IP == nil || d.IP.Src != ipA || d.IP.Dst != ipRaw || d.IP.TTL != 64 || d.Eth.Dst != r.MAC {
		t.Fatalf("reply %v", d)
	}
	m := d.ICMP
	if m == nil || m.Type != wire.ICMPv4EchoReply || m.Code != 0 || m.ID != 0x1234 || m.Seq != 7 || !bytes.Equal(m.Payload, data) {
		t.Fatalf("reply %v", d)
	}
	if wire.Checksum(d.IPv4.Payload(), 0) != 0 {
		t.Error("reply checksum invalid")
	}
	st := a.Stack.Stats().Net
	if st.InEchos != 1 || st.OutEchoReps != 1 || st.InMsgs != 1 || st.OutMsgs != 1 {
		all := a.Stack.Stats()
		t.Errorf("counters %+v", all.Map())
	}
}

// TestICMPEchoBroadcastIgnored: RFC 1122 §3.2.2.6: an echo request to a
// broadcast address MAY be silently discarded; Linux does
// (icmp_echo_ignore_broadcasts=1), and so does ustack, for the limited
// broadcast, the subnet's directed broadcast, and a link-level broadcast.
func TestICMPEchoBroadcastIgnored(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	echo := wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 1, Seq: 1}
	r.Send(r.ICMPFrame(wire.BroadcastMAC, ipRaw, netip.MustParseAddr("255.255.255.255"), echo))
	r.Send(r.ICMPFrame(wire.BroadcastMAC, ipRaw, bcast, echo))
	r.Send(r.ICMPFrame(a.MAC, ipRaw, bcast, echo))
	r.Send(r.ICMPFrame(wire.BroadcastMAC, ipRaw, ipA, echo))
	n.RunFor(10 * time.Millisecond)
	if in := r.Take(); len(in) != 0 {
		t.Errorf("broadcast echo answered: %v", in[0])
	}
	if st := a.Stack.Stats().Net; st.InEchos != 4 || st.OutMsgs != 0 {
		t.Errorf("InEchos %d OutMsgs %d, want 4 0", st.InEchos, st.OutMsgs)
	}
}

// TestICMPBadChecksum: a message with a bad checksum is dropped and
// counted (RFC 792; Linux IcmpInCsumErrors).
func TestICMPBadChecksum(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	p := stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoICMP), stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 1}))
	p[len(p)-1] ^= 1
	expectDrop(t, n, a, r.IPFrame(a.MAC, p), map[string]int64{"Net.InDelivers": 1, "Net.InMsgs": 1, "Net.InErrors": 1, "Net.InCsumErrors": 1})
	short := stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoICMP), []byte{8, 0, 0})
	expectDrop(t, n, a, r.IPFrame(a.MAC, short), map[string]int64{"Net.InDelivers": 1, "Net.InMsgs": 1, "Net.InErrors": 1})
}

// TestICMPPortUnreachable: RFC 1122 §4.1.3.1: a datagram for a port with
// no socket gets ICMP port unreachable, which quotes its IP header and
// data (RFC 792 asks for 8 bytes; Linux quotes up to 576 bytes in all,
// RFC 1812 §4.3.2.3).
func TestICMPPortUnreachable(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	for _, size := range []int{4, 1000} {
		orig := stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoUDP), stacktest.UDPDgram(ap(ipRaw, 1000), ap(ipA, 9), payload(1, size)))
		r.Send(append(r.IPFrame(a.MAC, orig), 0, 0, 0)) // padding is not quoted
		n.RunFor(10 * time.Millisecond)
		ms := icmpIn(t, r.Take())
		if len(ms) != 1 {
			t.Fatalf("size %d: %d ICMP messages, want 1", size, len(ms))
		}
		d := ms[0]
		if d.IP.Src != ipA || d.IP.Dst != ipRaw || d.ICMP.Type != wire.ICMPv4DestUnreachable || d.ICMP.Code != wire.ICMPv4PortUnreachable {
			t.Fatalf("size %d: %v", size, d)
		}
		want := orig[:min(len(orig), 576-28)]
		if !bytes.Equal(d.ICMP.Payload, want) {
			t.Errorf("size %d: quote of %d bytes, want the first %d of the datagram", size, len(d.ICMP.Payload), len(want))
		}
		if len(d.IPv4) > 576 {
			t.Errorf("size %d: error of %d bytes, more than 576", size, len(d.IPv4))
		}
	}
	if st := a.Stack.Stats(); st.UDP.NoPorts != 2 || st.Net.OutDestUnreachs != 2 {
		t.Errorf("NoPorts %d OutDestUnreachs %d, want 2 2", st.UDP.NoPorts, st.Net.OutDestUnreachs)
	}
}

// TestICMPPortUnreachablePartialChecksum: a datagram whose checksum the
// sender left partial (a kernel with checksum offload behind a TAP:
// link.Offload NeedsCsum and DataValid) is quoted with its checksum
// completed, as the wire would have carried it, so that the error holds
// no bad checksum. (Linux quotes the partial sum as it is.)
func TestICMPPortUnreachablePartialChecksum(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	orig := stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoUDP), stacktest.UDPDgram(ap(ipRaw, 1000), ap(ipA, 9), payload(1, 100)))
	want := append([]byte(nil), orig...)
	// The partial checksum: the pseudo-header sum, not complemented.
	ps := wire.PseudoHeaderSum(ipRaw, ipA, wire.ProtoUDP, len(orig)-20)
	binary.BigEndian.PutUint16(orig[20+6:], ps)
	f := r.IPFrame(a.MAC, orig)
	a.Stack.HandleFrame(n.Now, a.NIC, &link.Packet{Buf: f, N: len(f),
		Offload: link.Offload{NeedsCsum: true, CsumStart: 14 + 20, CsumOffset: 6, DataValid: true}})
	n.RunFor(10 * time.Millisecond)
	ms := icmpIn(t, r.Take())
	if len(ms) != 1 {
		t.Fatalf("%d ICMP messages, want 1", len(ms))
	}
	if !bytes.Equal(ms[0].ICMP.Payload, want) {
		t.Errorf("quote %x, want the datagram with its checksum complete %x", ms[0].ICMP.Payload, want)
	}
}

// TestICMPProtocolUnreachable: RFC 1122 §3.2.2.1: a host SHOULD send
// protocol unreachable for a transport protocol it does not have, and
// counts the datagram in InUnknownProtos (RFC 4293).
func TestICMPProtocolUnreachable(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	orig := stacktest.IP(stacktest.IPHeader(ipRaw, ipA, 47), []byte("GRE, say"))
	r.Send(r.IPFrame(a.MAC, orig))
	n.RunFor(10 * time.Millisecond)
	ms := icmpIn(t, r.Take())
	if len(ms) != 1 || ms[0].ICMP.Type != wire.ICMPv4DestUnreachable || ms[0].ICMP.Code != wire.ICMPv4ProtoUnreachable || !bytes.Equal(ms[0].ICMP.Payload, orig) {
		t.Fatalf("answers %v, want one protocol unreachable quoting the datagram", ms)
	}
	if st := a.Stack.Stats().Net; st.InUnknownProtos != 1 {
		t.Errorf("InUnknownProtos %d, want 1", st.InUnknownProtos)
	}
}

// TestICMPNoErrorAbout: RFC 1122 §3.2.2: an ICMP error MUST NOT be sent
// about an ICMP error message, a datagram sent to a broadcast address or
// as a link-layer broadcast, or a non-first fragment (nor, §3.2.1.3,
// with a source that does not name a single host).
func TestICMPNoErrorAbout(t *testing.T) {
	unreach := stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4PortUnreachable, Payload: udpToA()})
	tests := []struct {
		name  string
		frame func(a, r *stacktest.Node) []byte
	}{
		{"UDP to a closed port at the directed broadcast", func(a, r *stacktest.Node) []byte {
			return r.UDPFrame(wire.BroadcastMAC, ap(ipRaw, 1), ap(bcast, 9), []byte("x"))
		}},
		{"UDP to a closed port at the limited broadcast", func(a, r *stacktest.Node) []byte {
			return r.UDPFrame(wire.BroadcastMAC, ap(ipRaw, 1), ap(netip.MustParseAddr("255.255.255.255"), 9), []byte("x"))
		}},
		{"UDP to a closed port, link broadcast", func(a, r *stacktest.Node) []byte {
			return r.UDPFrame(wire.BroadcastMAC, ap(ipRaw, 1), ap(ipA, 9), []byte("x"))
		}},
		{"unknown protocol at the broadcast address", func(a, r *stacktest.Node) []byte {
			return r.IPFrame(a.MAC, stacktest.IP(stacktest.IPHeader(ipRaw, bcast, 47), []byte("x")))
		}},
		{"unknown protocol, link broadcast", func(a, r *stacktest.Node) []byte {
			return r.IPFrame(wire.BroadcastMAC, stacktest.IP(stacktest.IPHeader(ipRaw, ipA, 47), []byte("x")))
		}},
		{"ICMP error in an unknown protocol's place", func(a, r *stacktest.Node) []byte {
			// An ICMP error is never answered: here it reaches ICMP
			// input, which has nothing to say about it.
			return r.IPFrame(a.MAC, stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoICMP), unreach))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, a, r := withRaw(t, stack.Config{})
			r.Send(tt.frame(a, r))
			n.RunFor(10 * time.Millisecond)
			if in := r.Take(); len(in) != 0 {
				t.Errorf("answered: %v", in[0])
			}
			if st := a.Stack.Stats().Net; st.OutMsgs != 0 {
				t.Errorf("OutMsgs %d", st.OutMsgs)
			}
		})
	}
}

// TestICMPNoTimeExceededAbout: RFC 1122 §3.2.2 applies to reassembly
// time exceeded too (RFC 792; §3.3.2): no error about an expired ICMP
// error message or datagram to a broadcast address, although their
// first fragment arrived.
func TestICMPNoTimeExceededAbout(t *testing.T) {
	unreach := stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4PortUnreachable, Payload: payload(1, 100)})
	tests := []struct {
		name  string
		first []byte
	}{
		{"ICMP error", firstFragment(ipRaw, ipA, wire.ProtoICMP, unreach)},
		{"to the directed broadcast", firstFragment(ipRaw, bcast, wire.ProtoUDP, stacktest.UDPDgram(ap(ipRaw, 1), ap(bcast, 7), payload(1, 100)))},
		{"to the limited broadcast", firstFragment(ipRaw, netip.MustParseAddr("255.255.255.255"), wire.ProtoUDP, payload(1, 100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, a, r := withRaw(t, stack.Config{})
			r.Send(r.IPFrame(wire.BroadcastMAC, tt.first))
			n.RunFor(time.Minute)
			if in := r.Take(); len(in) != 0 {
				t.Errorf("answered: %v", in[0])
			}
			if st := a.Stack.Stats().Net; st.ReasmTimeout != 1 || st.OutMsgs != 0 {
				t.Errorf("ReasmTimeout %d OutMsgs %d, want 1 0", st.ReasmTimeout, st.OutMsgs)
			}
		})
	}
}

// firstFragment returns the first fragment (MF set, offset 0) of a
// datagram with the given payload: its first 48 bytes.
func firstFragment(src, dst netip.Addr, proto uint8, p []byte) []byte {
	h := stacktest.IPHeader(src, dst, proto)
	h.MF = true
	return stacktest.IP(h, p[:48])
}

// TestICMPRateLimit: RFC 1812 §4.3.2.8 and RFC 1122 §3.2.2 let a host
// limit the rate of ICMP errors; ustack uses Linux's global token bucket
// (icmp_msgs_burst 50, icmp_msgs_per_sec 1000). Echo replies are not
// limited.
func TestICMPRateLimit(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	for i := range 60 {
		a.Inject(r.UDPFrame(a.MAC, ap(ipRaw, 1000), ap(ipA, uint16(2000+i)), []byte("x")))
	}
	st := a.Stack.Stats().Net
	if st.OutDestUnreachs != 50 || st.OutRateLimited != 10 {
		t.Errorf("burst: OutDestUnreachs %d OutRateLimited %d, want 50 10", st.OutDestUnreachs, st.OutRateLimited)
	}
	for range 5 {
		a.Inject(r.ICMPFrame(a.MAC, ipRaw, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 1}))
	}
	if st := a.Stack.Stats().Net; st.OutEchoReps != 5 {
		t.Errorf("echo replies %d during the limit, want 5", st.OutEchoReps)
	}
	// 1000 tokens a second: 5 ms later, 5 more errors.
	n.RunFor(5 * time.Millisecond)
	for i := range 10 {
		a.Inject(r.UDPFrame(a.MAC, ap(ipRaw, 1000), ap(ipA, uint16(3000+i)), []byte("x")))
	}
	st = a.Stack.Stats().Net
	if st.OutDestUnreachs != 55 || st.OutRateLimited != 15 {
		t.Errorf("refill: OutDestUnreachs %d OutRateLimited %d, want 55 15", st.OutDestUnreachs, st.OutRateLimited)
	}
}

// TestICMPEchoLarge: RFC 1122 §3.2.2.6: the data of an echo request is
// returned whole, and an echo request may arrive in fragments (ping -s
// 4000); the reply is then larger than the MTU and leaves in fragments
// (RFC 791 §3.2), as Linux's does.
func TestICMPEchoLarge(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	data := payload(4, 4000)
	msg := stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 7, Seq: 1, Payload: data})
	h := stacktest.IPHeader(ipB, ipA, wire.ProtoICMP)
	h.ID = 99
	for off := 0; off < len(msg); off += 1480 {
		end := min(off+1480, len(msg))
		h.FragOffset, h.MF = uint16(off), end < len(msg)
		b.Send(b.IPFrame(a.MAC, stacktest.IP(h, msg[off:end])))
	}
	b.Stack.AddNeighbor(b.NIC, ipA, a.MAC)
	a.Stack.AddNeighbor(a.NIC, ipB, b.MAC)
	n.RunFor(10 * time.Millisecond)
	var frags [][]byte
	for _, f := range frames(n, 0, from(a)) {
		d := decodeOne(t, f)
		if len(f.Data) > 1514 {
			t.Fatalf("frame of %d bytes", len(f.Data))
		}
		if d.IP != nil && d.IP.Protocol == wire.ProtoICMP {
			frags = append(frags, d.IPv4)
		}
	}
	if len(frags) != 3 {
		t.Fatalf("%d reply fragments, want 3", len(frags))
	}
	var reply []byte
	for _, p := range frags {
		reply = append(reply, wire.IPv4(p).Payload()...)
	}
	m, err := wire.ParseICMPv4(reply)
	if err != nil || m.Type() != wire.ICMPv4EchoReply || m.ID() != 7 || !bytes.Equal(m.Payload(), data) || !m.ChecksumValid() {
		t.Errorf("reassembled reply: %v, type %d id %d, data equal %v", err, m.Type(), m.ID(), bytes.Equal(m.Payload(), data))
	}
}
