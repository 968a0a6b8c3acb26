package stack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// udpToA is an IP packet from R to A's UDP port 7, 4 bytes of data.
func udpToA() []byte {
	return stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoUDP), stacktest.UDPDgram(ap(ipRaw, 1000), ap(ipA, 7), []byte("data")))
}

// TestIPv4InputDrops: RFC 791 §3.1 and RFC 1122 §3.2.1: a datagram with
// a bad version, header length, checksum or total length is silently
// discarded; so is one from a martian source (§3.2.1.3) or for an address
// that is not ours (a host does not forward, §3.3.1.1). Each is counted
// under its own counter, and none causes an answer.
func TestIPv4InputDrops(t *testing.T) {
	mut := func(f func(p []byte) []byte) []byte { return f(udpToA()) }
	fixsum := func(p []byte) []byte {
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], wire.Checksum(p[:int(p[0]&0xf)*4], 0))
		return p
	}
	withSrc := func(src string) []byte {
		return stacktest.IP(stacktest.IPHeader(netip.MustParseAddr(src), ipA, wire.ProtoUDP),
			stacktest.UDPDgram(ap(netip.MustParseAddr(src), 1000), ap(ipA, 7), []byte("data")))
	}
	withDst := func(dst string) []byte {
		return stacktest.IP(stacktest.IPHeader(ipRaw, netip.MustParseAddr(dst), wire.ProtoUDP),
			stacktest.UDPDgram(ap(ipRaw, 1000), ap(netip.MustParseAddr(dst), 7), []byte("data")))
	}
	tests := []struct {
		name    string
		pkt     []byte
		counter string
	}{
		{"version 6", mut(func(p []byte) []byte { p[0] = 0x65; return fixsum(p) }), "Net.InHdrErrors"},
		{"version 0", mut(func(p []byte) []byte { p[0] = 0x05; return fixsum(p) }), "Net.InHdrErrors"},
		{"IHL 4", mut(func(p []byte) []byte { p[0] = 0x44; return p }), "Net.InHdrErrors"},
		{"IHL 0", mut(func(p []byte) []byte { p[0] = 0x40; return p }), "Net.InHdrErrors"},
		{"IHL past the data", mut(func(p []byte) []byte { p[0] = 0x4f; return p }), "Net.InTruncated"},
		{"bad header checksum", mut(func(p []byte) []byte { p[10] ^= 0xff; return p }), "Net.InHdrErrors"},
		{"shorter than a header", mut(func(p []byte) []byte { return p[:19] }), "Net.InTruncated"},
		{"empty", nil, "Net.InTruncated"},
		{"truncated: total length past the frame", mut(func(p []byte) []byte { return p[:len(p)-1] }), "Net.InTruncated"},
		{"total length below the header", mut(func(p []byte) []byte { binary.BigEndian.PutUint16(p[2:], 16); return fixsum(p) }), "Net.InHdrErrors"},
		{"source multicast", withSrc("224.0.0.1"), "Net.InAddrErrors"},
		{"source limited broadcast", withSrc("255.255.255.255"), "Net.InAddrErrors"},
		{"source directed broadcast", withSrc("10.0.0.255"), "Net.InAddrErrors"},
		{"source loopback", withSrc("127.0.0.1"), "Net.InAddrErrors"},
		{"source this network", withSrc("0.0.0.0"), "Net.InAddrErrors"},
		{"source in 0/8", withSrc("0.1.2.3"), "Net.InAddrErrors"},
		{"not for us", withDst("10.0.0.77"), "Net.InAddrErrors"},
		{"loopback destination", withDst("127.0.0.1"), "Net.InAddrErrors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, a, r := withRaw(t, stack.Config{})
			if _, err := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 7)); err != nil {
				t.Fatal(err)
			}
			expectDrop(t, n, a, r.IPFrame(a.MAC, tt.pkt), map[string]int64{tt.counter: 1})
		})
	}
}

// TestEthernetPadding: Ethernet pads frames to 60 bytes; the IP layer
// uses its total length and ignores what follows (RFC 894; RFC 1122
// §3.2.1.1 hands the datagram of the total length up). The padding must
// not reach UDP's checksum or data, ICMP's echo data, or TCP.
func TestEthernetPadding(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	u, err := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 7))
	if err != nil {
		t.Fatal(err)
	}
	pad := func(f []byte) []byte { return append(f, bytes.Repeat([]byte{0xee}, 60-len(f)+6)...) }
	r.Send(pad(r.IPFrame(a.MAC, stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoUDP), stacktest.UDPDgram(ap(ipRaw, 1000), ap(ipA, 7), []byte("ab"))))))
	r.Send(pad(r.ICMPFrame(a.MAC, ipRaw, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 1, Seq: 2, Payload: []byte("xy")})))
	r.Send(pad(r.TCPFrame(a.MAC, ap(ipRaw, 1000), ap(ipA, 80), wire.TCPFields{Seq: 100, Flags: wire.TCPFlagSYN, Window: 1000})))
	n.RunFor(10 * time.Millisecond)

	var buf [100]byte
	k, from, err := u.ReadFrom(buf[:])
	if err != nil || string(buf[:k]) != "ab" || from != ap(ipRaw, 1000) {
		t.Errorf("UDP: %q from %v, %v; want \"ab\" from R", buf[:k], from, err)
	}
	in := r.Take()
	if len(in) != 2 {
		t.Fatalf("R got %d frames, want an echo reply and a RST", len(in))
	}
	if d := decodeOne(t, in[0]); d.ICMP == nil || d.ICMP.Type != wire.ICMPv4EchoReply || string(d.ICMP.Payload) != "xy" {
		t.Errorf("echo reply: %v (payload %q)", d, d.ICMP.Payload)
	}
	if d := decodeOne(t, in[1]); !d.IsTCP(wire.TCPFlagRST|wire.TCPFlagACK) || d.TCP.Ack != 101 {
		t.Errorf("answer to the SYN: %v, want RST/ACK ack 101", d)
	}
	if st := a.Stack.Stats(); st.UDP.InCsumErrors != 0 || st.TCP.InCsumErrors != 0 || st.Net.InCsumErrors != 0 {
		t.Errorf("padding counted as checksum errors: %v", counters(st))
	}
}

// TestLinkDrops: frames not for the stack are counted at the link
// boundary and dropped: unicast to another MAC, multicast (ustack joins
// no group), runts, unknown EtherTypes, and 802.1Q tags the NIC is not
// configured for.
func TestLinkDrops(t *testing.T) {
	n, a, r := withRaw(t, stack.Config{})
	if _, err := a.Stack.BindUDP(ap(netip.IPv4Unspecified(), 7)); err != nil {
		t.Fatal(err)
	}
	pkt := udpToA()
	tests := []struct {
		name    string
		frame   []byte
		counter string
	}{
		{"other MAC", stacktest.Ether(stacktest.MAC(50), r.MAC, 0, wire.EtherTypeIPv4, pkt), "Link.RxNotForUs"},
		{"multicast", stacktest.Ether(wire.MAC{1, 0, 0x5e, 0, 0, 1}, r.MAC, 0, wire.EtherTypeIPv4, pkt), "Link.RxMulticast"},
		{"runt", stacktest.Ether(a.MAC, r.MAC, 0, wire.EtherTypeIPv4, pkt)[:13], "Link.RxRunts"},
		{"empty", []byte{}, "Link.RxRunts"},
		{"runt VLAN tag", stacktest.Ether(a.MAC, r.MAC, 5, wire.EtherTypeIPv4, pkt)[:16], "Link.RxRunts"},
		{"IPv6", stacktest.Ether(a.MAC, r.MAC, 0, 0x86dd, pkt), "Link.RxUnknownEtherType"},
		{"EtherType 0", stacktest.Ether(a.MAC, r.MAC, 0, 0, pkt), "Link.RxUnknownEtherType"},
		{"tagged, NIC untagged", stacktest.Ether(a.MAC, r.MAC, 5, wire.EtherTypeIPv4, pkt), "Link.RxVLANMismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.Stack.Stats()
			i := len(n.Log)
			a.Inject(tt.frame)
			if len(n.Since(i)) != 0 {
				t.Errorf("answered: %v", n.Since(i)[0])
			}
			d := diff(before, a.Stack.Stats())
			delete(d, "Link.RxBytes")
			if d[tt.counter] != 1 || len(d) != 2 || d["Link.RxFrames"] != 1 {
				t.Errorf("counters changed %v, want %s, RxFrames and RxBytes", d, tt.counter)
			}
		})
	}
	// A frame for a NIC that does not exist.
	before := a.Stack.Stats()
	var p = stacktest.Ether(a.MAC, r.MAC, 0, wire.EtherTypeIPv4, pkt)
	pk := newPacket(p)
	a.Stack.HandleFrame(n.Now, 7, pk)
	if d := diff(before, a.Stack.Stats()); d["Link.RxNoNIC"] != 1 || len(d) != 1 {
		t.Errorf("frame for NIC 7: counters %v, want Link.RxNoNIC", d)
	}
}

// TestVLANMismatch: a NIC on VLAN 5 takes only frames tagged 5 (the
// priority bits do not matter).
func TestVLANMismatch(t *testing.T) {
	n := stacktest.New(t)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{MAC: stacktest.MAC(1), VLAN: 5, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	r := n.AddRaw("R", stacktest.MAC(9), ipRaw)
	a.Stack.AddNeighbor(a.NIC, ipRaw, r.MAC)
	echo := stacktest.IP(stacktest.IPHeader(ipRaw, ipA, wire.ProtoICMP), stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 1}))
	for _, tc := range []struct {
		tci  uint16
		drop bool
	}{{0, true}, {6, true}, {5, false}, {5 | 3<<13, false}, {4096 + 5, false}} {
		i := len(n.Log)
		before := a.Stack.Stats().Link.RxVLANMismatch
		a.Inject(stacktest.Ether(a.MAC, r.MAC, tc.tci, wire.EtherTypeIPv4, echo))
		out := n.Since(i)
		dropped := a.Stack.Stats().Link.RxVLANMismatch - before
		if tc.drop && (dropped != 1 || len(out) != 0) || !tc.drop && (dropped != 0 || len(out) != 1) {
			t.Errorf("TCI %#x: mismatch counted %d, answers %d", tc.tci, dropped, len(out))
			continue
		}
		if !tc.drop {
			d := decodeOne(t, out[0])
			if !d.Eth.HasVLAN || wire.VLANID(d.Eth.VLAN) != 5 {
				t.Errorf("TCI %#x: reply %v not tagged with VLAN 5", tc.tci, d)
			}
		}
	}
}

// TestVLANEndToEnd: two stacks on VLAN 7 resolve each other, connect and
// transfer, and every frame they send carries the tag (IEEE 802.1Q).
func TestVLANEndToEnd(t *testing.T) {
	n := stacktest.New(t)
	a := n.AddStack("A", stack.New(stack.Config{Seed: 1}), stack.NICConfig{MAC: stacktest.MAC(1), VLAN: 7, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	b := n.AddStack("B", stack.New(stack.Config{Seed: 2}), stack.NICConfig{MAC: stacktest.MAC(2), VLAN: 7, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	c, s, _ := connect(t, n, a, b, 80)
	transfer(t, n, c, s, payload(1, 200000), time.Minute)
	transfer(t, n, s, c, payload(2, 5000), time.Minute)
	for _, f := range n.Log {
		d := decodeOne(t, f)
		if !d.Eth.HasVLAN || wire.VLANID(d.Eth.VLAN) != 7 {
			t.Fatalf("untagged frame %v", f)
		}
		if len(f.Data) > 1500+18 {
			t.Fatalf("frame of %d bytes: larger than MTU + tagged header", len(f.Data))
		}
	}
	if st := b.Stack.Stats().Link; st.RxVLANMismatch != 0 {
		t.Errorf("RxVLANMismatch %d", st.RxVLANMismatch)
	}
	if c.Info().SndMSS != 1448 {
		t.Errorf("MSS %d: the tag must not eat into the IP MTU", c.Info().SndMSS)
	}
	_ = tcp.Established
}
