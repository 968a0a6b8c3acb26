package stack_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzStackInput and its README from stackSeeds")

// A stackSeed is one seed of FuzzStackInput with what it exercises.
type stackSeed struct {
	name, comment string
	data          []byte
}

// stackSeeds returns the seeds of FuzzStackInput: frames captured from
// the fuzz fixture's own traffic (the fixture is deterministic, so they
// hit the connection's ports and sequence space when replayed) and edits
// of them, plus frames made with stacktest's builders.
func stackSeeds(t testing.TB) []stackSeed {
	x := newFuzzFixture(t)
	a, b := x.a, x.b
	conn := func(d *stacktest.Decoded) bool {
		return d.TCP != nil && (d.TCP.SrcPort == x.c.LocalAddr().Port() || d.TCP.DstPort == x.c.LocalAddr().Port())
	}
	var bData, aData, bSynAck, aSyn, bAck []byte
	var rcvNxt, sndNxt wire.Seq // A's, as far as frames already delivered say
	var seenA, seenB bool
	for _, f := range x.n.Log {
		d := f.Decode()
		if !conn(d) {
			continue
		}
		delivered := f.Sent.Add(x.n.Delay) <= x.n.Now
		end := d.TCP.Seq.Add(d.TCP.SegLen())
		switch {
		case f.From == b && d.IsTCP(wire.TCPFlagSYN):
			bSynAck = f.Data
		case f.From == a && d.IsTCP(wire.TCPFlagSYN):
			aSyn = f.Data
		case f.From == b && len(d.TCP.Payload) > 0 && bData == nil:
			bData = f.Data
		case f.From == a && len(d.TCP.Payload) > 0 && aData == nil:
			aData = f.Data
		case f.From == b && len(d.TCP.Payload) == 0 && bAck == nil:
			bAck = f.Data
		}
		if delivered && f.From == b && (!seenB || end.GreaterThan(rcvNxt)) {
			rcvNxt, seenB = end, true
		}
		if f.From == a && (!seenA || end.GreaterThan(sndNxt)) {
			sndNxt, seenA = end, true
		}
	}
	if bData == nil || aData == nil || bSynAck == nil || aSyn == nil || bAck == nil {
		t.Fatal("fixture traffic lacks a frame kind")
	}
	bp, cp := x.c.RemoteAddr(), x.c.LocalAddr()
	tcpFrom := func(f wire.TCPFields) []byte { return b.TCPFrame(a.MAC, bp, cp, f) }
	irsB := stacktest.Decode(bSynAck).TCP.Seq
	streamAt := func(seq wire.Seq, n int) []byte { // B's bytes at seq
		off := int(seq.Size(irsB.Add(1)))
		return x.ba[off : off+n]
	}
	flip := func(f []byte, i int) []byte { f = slices.Clone(f); f[i] ^= 0x20; return f }
	quote := stacktest.Decode(aData).IPv4
	dgram := stacktest.UDPDgram(ap(ipB, 5353), ap(ipA, 53), payload(5, 200))
	fragH := stacktest.IPHeader(ipB, ipA, wire.ProtoUDP)
	fragH.MF, fragH.ID = true, 77
	frag1 := stacktest.IP(fragH, dgram[:104])
	fragH.MF, fragH.FragOffset = false, 104
	frag2 := stacktest.IP(fragH, dgram[104:])
	echo := wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 9, Seq: 1, Payload: []byte("ping")}
	withOpts := stacktest.IPHeader(ipB, ipA, wire.ProtoICMP)
	withOpts.Options = []byte{1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0} // NOP, record route with room for 2
	badOpts := stacktest.TCPSeg(bp, cp, wire.TCPFields{Seq: rcvNxt, Ack: sndNxt, Flags: wire.TCPFlagACK, Window: 100, Options: wire.TCPOptions{MSS: 1000}})
	badOpts[21] = 0 // an option of length 0
	badOpts[16], badOpts[17] = 0, 0
	binary.BigEndian.PutUint16(badOpts[16:], wire.TCPChecksum(badOpts, ipB, ipA))

	return []stackSeed{
		// Captured from the fixture.
		{"b-synack", "B's SYN-ACK again: its old timestamp fails PAWS (RFC 7323 §5.3), answered by an ACK", bSynAck},
		{"a-syn", "A's own SYN, to B's address: not for A (InAddrErrors)", aSyn},
		{"b-data", "B's first data segment again: old data, a D-SACK", bData},
		{"a-data", "A's own data segment: to B's address, dropped", aData},
		{"b-ack", "a pure ACK from B, now old", bAck},
		// Edits of captured frames.
		{"b-data-bad-csum", "B's data segment with a payload bit flipped: InCsumErrors", flip(bData, len(bData)-1)},
		{"b-data-bad-ip-csum", "B's data segment with its IP header checksum broken", flip(bData, 14+10)},
		{"b-data-truncated", "B's data segment cut short of its IP total length", bData[:len(bData)-10]},
		{"b-data-padded", "B's data segment with trailing link padding", append(slices.Clone(bData), 0, 0, 0, 0)},
		{"b-data-other-mac", "B's data segment to another MAC address: RxNotForUs", otherMAC(bData)},
		{"b-data-vlan", "B's data segment with an 802.1Q tag A is not configured for", stacktest.Ether(a.MAC, b.MAC, 5, wire.EtherTypeIPv4, bData[14:])},
		// Crafted against the connection's state.
		{"b-rst-exact", "RST at A's RCV.NXT: resets the connection (RFC 5961 §3.2)", tcpFrom(wire.TCPFields{Seq: rcvNxt, Flags: wire.TCPFlagRST})},
		{"b-rst-in-window", "RST inside the window but not at RCV.NXT: challenge ACK", tcpFrom(wire.TCPFields{Seq: rcvNxt + 100, Flags: wire.TCPFlagRST})},
		{"b-syn-estab", "SYN on the established connection: challenge ACK (RFC 5961 §4.2)", tcpFrom(wire.TCPFields{Seq: rcvNxt, Flags: wire.TCPFlagSYN, Window: 1000})},
		{"b-ack-too-new", "ACK of data never sent (RFC 5961 §5.2)", tcpFrom(wire.TCPFields{Seq: rcvNxt, Ack: sndNxt + 100000, Flags: wire.TCPFlagACK, Window: 1000})},
		{"b-data-ooo", "B's own future bytes, out of order inside the window (SACK)", tcpFrom(wire.TCPFields{Seq: rcvNxt + 2000, Ack: sndNxt, Flags: wire.TCPFlagACK, Window: 1000, Payload: streamAt(rcvNxt+2000, 500)})},
		{"b-fin-future", "FIN beyond a hole", tcpFrom(wire.TCPFields{Seq: rcvNxt + 3000, Ack: sndNxt, Flags: wire.TCPFlagACK | wire.TCPFlagFIN, Window: 1000})},
		{"b-zero-window", "ACK closing the window", tcpFrom(wire.TCPFields{Seq: rcvNxt, Ack: sndNxt, Flags: wire.TCPFlagACK})},
		{"b-bad-options", "segment of the connection with an option of length 0: InBadHeader", b.IPFrame(a.MAC, stacktest.IP(stacktest.IPHeader(ipB, ipA, wire.ProtoTCP), badOpts))},
		{"icmp-port-unreachable", "port unreachable quoting A's data segment: soft error, ignored", b.ICMPFrame(a.MAC, ipB, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4PortUnreachable, Payload: quote[:28]})},
		{"icmp-frag-needed", "fragmentation needed (MTU 576) quoting A's data segment", b.ICMPFrame(a.MAC, ipB, ipA, wire.ICMPv4Fields{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4FragmentationNeeded, MTU: 576, Payload: quote})},
		// Other sockets and protocols.
		{"syn-listener", "SYN from B to A's listener: a half-open connection that B resets", tcpFromTo(b, a, ap(ipB, 40001), ap(ipA, 80), wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000, Options: wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 7}})},
		{"syn-closed", "SYN to a closed port: RST/ACK", tcpFromTo(b, a, ap(ipB, 40001), ap(ipA, 81), wire.TCPFields{Seq: 1, Flags: wire.TCPFlagSYN, Window: 1000})},
		{"udp-open", "UDP datagram to A's socket on port 53", b.UDPFrame(a.MAC, ap(ipB, 5353), ap(ipA, 53), []byte("query"))},
		{"udp-closed", "UDP datagram to a closed port: ICMP port unreachable", b.UDPFrame(a.MAC, ap(ipB, 5353), ap(ipA, 54), []byte("query"))},
		{"udp-frag-first", "first fragment of a UDP datagram to port 53, left to time out", b.IPFrame(a.MAC, frag1)},
		{"udp-frag-last", "last fragment of that datagram, without the first", b.IPFrame(a.MAC, frag2)},
		{"icmp-echo", "echo request from B: echo reply", b.ICMPFrame(a.MAC, ipB, ipA, echo)},
		{"icmp-echo-ip-options", "echo request with IP options (NOP, record route)", b.IPFrame(a.MAC, stacktest.IP(withOpts, stacktest.ICMPMsg(echo)))},
		{"arp-request", "ARP request from B for A: reply; B's entry is permanent", stacktest.Ether(wire.BroadcastMAC, b.MAC, 0, wire.EtherTypeARP, stacktest.ARP(wire.ARPRequest, b.MAC, ipB, wire.MAC{}, ipA))},
		{"arp-spoof-b", "ARP reply claiming B's address for another MAC: the permanent entry stays", stacktest.Ether(a.MAC, stacktest.MAC(66), 0, wire.EtherTypeARP, stacktest.ARP(wire.ARPReply, stacktest.MAC(66), ipB, a.MAC, ipA))},
		{"arp-gratuitous", "gratuitous ARP of an unknown host: no entry", stacktest.Ether(wire.BroadcastMAC, stacktest.MAC(67), 0, wire.EtherTypeARP, stacktest.ARP(wire.ARPRequest, stacktest.MAC(67), netip.MustParseAddr("10.0.0.67"), wire.MAC{}, netip.MustParseAddr("10.0.0.67")))},
		{"multicast", "IPv4 to a multicast MAC: RxMulticast", stacktest.Ether(wire.MAC{1, 0, 0x5e, 0, 0, 1}, b.MAC, 0, wire.EtherTypeIPv4, bData[14:])},
		{"ipv6", "an IPv6 EtherType: RxUnknownEtherType", stacktest.Ether(a.MAC, b.MAC, 0, 0x86dd, bData[14:])},
		{"runt", "13 bytes: RxRunts", bData[:13]},
		{"empty", "no bytes at all", []byte{}},
		// Found by the fuzzer.
		{"fuzz-ooo-data", "found by the fuzzer (checksums fixed): 19 bytes of URG|ACK data out of order in A's window; A's next data segments carried SACK blocks on top of a full MSS and overran the MTU (RFC 9293 §3.7.1)", []byte("\x02\x00\x00\x00\x00\x01000000\b\x00E0\x00400@\x000\x0600\n\x00\x00\x02\n\x00\x00\x01\x1f\x90\xcaD6B\x14\xdc\xe5\x01B\aX0000000000000000000")},
	}
}

// otherMAC returns frame sent to 02:00:00:00:00:4d instead.
func otherMAC(frame []byte) []byte {
	f := slices.Clone(frame)
	m := stacktest.MAC(77)
	copy(f, m[:])
	return f
}

func tcpFromTo(from, to *stacktest.Node, src, dst netip.AddrPort, f wire.TCPFields) []byte {
	return from.TCPFrame(to.MAC, src, dst, f)
}

// multiSeeds are seeds of several frames.
func multiSeeds(t testing.TB) []stackSeed {
	x := newFuzzFixture(t)
	a, b := x.a, x.b
	// A ping of 4000 bytes in three fragments.
	msg := stacktest.ICMPMsg(wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: 7, Seq: 1, Payload: payload(4, 4000)})
	ping := fragments(b, a, wire.ProtoICMP, 1480, msg)
	// A UDP datagram to port 53 in 8-byte... 64-byte fragments, last first.
	dgram := stacktest.UDPDgram(ap(ipB, 5353), ap(ipA, 53), payload(5, 300))
	udp := fragments(b, a, wire.ProtoUDP, 84, dgram)
	slices.Reverse(udp)
	// Overlapping fragments with different bytes (RFC 5722 rules).
	over := fragments(b, a, wire.ProtoUDP, 84, dgram)
	alt := slices.Clone(dgram)
	alt[100] ^= 0xff
	over = append(over[:2], fragments(b, a, wire.ProtoUDP, 164, alt)...)
	// A whole handshake to the listener, then data and a FIN.
	cl, srv := ap(ipB, 40002), ap(ipA, 80)
	syn := tcpFromTo(b, a, cl, srv, wire.TCPFields{Seq: 1000, Flags: wire.TCPFlagSYN, Window: 65535, Options: wire.TCPOptions{MSS: 1460}})
	// A's SYN-ACK carries its ISS, which the fuzzer cannot know: the ACK
	// is a guess, answered with a RST unless it is right.
	ack := tcpFromTo(b, a, cl, srv, wire.TCPFields{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK, Window: 65535})
	fin := tcpFromTo(b, a, cl, srv, wire.TCPFields{Seq: 1001, Ack: 1, Flags: wire.TCPFlagACK | wire.TCPFlagFIN, Window: 65535, Payload: []byte("hello")})
	rst := tcpFromTo(b, a, cl, srv, wire.TCPFields{Seq: 1001, Flags: wire.TCPFlagRST})
	return []stackSeed{
		{"multi-ping-fragments", "a 4000-byte echo request in three fragments: the reply must leave in fragments (this crashed the stack)", joinFrames(ping...)},
		{"multi-udp-fragments-reversed", "a UDP datagram to port 53 in five fragments, last first", joinFrames(udp...)},
		{"multi-udp-fragments-overlap", "fragments overlapping earlier ones with different bytes: the datagram is dropped", joinFrames(over...)},
		{"multi-syn-ack-data-fin", "SYN to the listener, a guessed ACK, data with FIN", joinFrames(syn, ack, fin)},
		{"multi-syn-rst", "SYN to the listener, then RST for the half-open connection", joinFrames(syn, rst)},
		{"multi-syn-twice", "SYN to the listener, retransmitted", joinFrames(syn, syn)},
	}
}

// fragments returns the frames of an IP packet from node from to node to
// with payload p cut into fragments of at most mtu bytes.
func fragments(from, to *stacktest.Node, proto uint8, mtu int, p []byte) [][]byte {
	h := stacktest.IPHeader(from.Addr, to.Addr, proto)
	h.ID = 4242
	step := (mtu - 20) &^ 7
	var out [][]byte
	for off := 0; off < len(p); off += step {
		end := min(off+step, len(p))
		h.FragOffset, h.MF = uint16(off), end < len(p)
		out = append(out, from.IPFrame(to.MAC, stacktest.IP(h, p[off:end])))
	}
	return out
}

func corpusFile(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}

const (
	corpusDir = "testdata/fuzz/FuzzStackInput"
	// The README sits beside the corpus: go test would take a file in it
	// for a corpus entry.
	corpusReadmePath = "testdata/fuzz/README.md"
)

func corpusReadme(seeds []stackSeed) []byte {
	var b bytes.Buffer
	b.WriteString(`# Seeds of FuzzStackInput

Each file is an input in Go's corpus format ("go test fuzz v1"): a
sequence of frames, each preceded by its length in two bytes (big-endian),
fed one by one to stack A of the fuzz fixture (fuzz_test.go), 100 µs
apart. Most seeds are one frame; those named multi-* are several. A holds an established
connection to B with data in flight both ways, a listener on port 80 and a
UDP socket on port 53. Plain ` + "`go test ./stack`" + ` runs every file as a test
case; ` + "`go test ./stack -fuzz FuzzStackInput`" + ` fuzzes from them.

The fixture is deterministic, so frames captured from its traffic hit the
connection's ports and sequence numbers when replayed. Corpus files cannot
hold comments: this list says what each seed exercises. The files and this
README are generated from ` + "`stackSeeds`" + ` in ` + "`stack/fuzz_seeds_test.go`" + ` by

    go test ./stack -run TestFuzzStackInputCorpus -update-corpus

A failing input the fuzzer finds is written here under a hash name: add
the frame to stackSeeds with a comment and regenerate (the test insists
that every file is listed here).

| file | bytes | exercises |
| --- | ---: | --- |
`)
	for _, s := range seeds {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", s.name, len(s.data), s.comment)
	}
	return b.Bytes()
}

// TestFuzzStackInputCorpus checks that every file of the seed corpus is
// listed, with a comment, in testdata/fuzz/README.md; with -update-corpus it rewrites
// both from stackSeeds.
func TestFuzzStackInputCorpus(t *testing.T) {
	var seeds []stackSeed
	for _, s := range stackSeeds(t) {
		s.data = joinFrames(s.data) // one frame
		seeds = append(seeds, s)
	}
	seeds = append(seeds, multiSeeds(t)...)
	if *updateCorpus {
		if err := os.RemoveAll(corpusDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			if err := os.WriteFile(filepath.Join(corpusDir, s.name), corpusFile(s.data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(corpusReadmePath, corpusReadme(seeds), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	readme, err := os.ReadFile(corpusReadmePath)
	if err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.Contains(string(readme), "| `"+f.Name()+"` |") {
			t.Errorf("%s/%s is not listed in testdata/fuzz/README.md: add it to stackSeeds with a comment", corpusDir, f.Name())
		}
	}
	names := map[string]bool{}
	for _, s := range seeds {
		if names[s.name] || s.comment == "" || strings.ContainsAny(s.name, "/ ") {
			t.Errorf("seed %q: duplicate, uncommented or badly named", s.name)
		}
		names[s.name] = true
	}
}
