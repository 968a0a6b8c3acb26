package interop

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link/pcap"
)

// Wireshark's expert-info severities and groups (epan/proto.h: PI_ERROR,
// PI_CHECKSUM, PI_MALFORMED, ...), as tshark prints the _ws.expert.*
// fields.
const (
	expertNote      = 0x00400000
	expertError     = 0x00800000
	expertChecksum  = 0x01000000
	expertMalformed = 0x07000000
)

// pcapCheck is what tshark must not find in a capture of the stack's
// side: a malformed frame, a bad checksum (IP, ICMP, UDP or TCP: the
// links keep offloads off, so every checksum must be complete and right),
// or any other expert item of severity Error. Notes and warnings that
// loss and reordering cause (retransmissions, duplicate ACKs, out of
// order, previous segment not captured, zero window) are normal and only
// counted.
type pcapCheck struct {
	path     string
	stackMAC net.HardwareAddr
	stackIP  netip.Addr
	stackIP6 netip.Addr
	// peerFramesMayBeBroken: frames that did not come from the stack may
	// carry bad checksums or be malformed (a link that corrupts them on
	// purpose); frames from the stack never may.
	peerFramesMayBeBroken bool
}

// expertItem is one expert item tshark reported.
type expertItem struct {
	frame     int
	fromStack bool
	group     int
	severity  int
	message   string
}

func (x expertItem) String() string {
	who := "peer"
	if x.fromStack {
		who = "stack"
	}
	return fmt.Sprintf("frame %d (from the %s): %s", x.frame, who, x.message)
}

// kernelZeroChecksum is Wireshark's complaint about a TCP checksum field
// of 0xffff where its own computation gives 0x0000. The two are the same
// number in one's complement arithmetic (RFC 1624 §3) and receivers
// accept both; Linux writes 0xffff whenever it computes a transport
// checksum in software that comes out as zero (skb_checksum_help's
// CSUM_MANGLED_0), about once in 65536 segments of a peer with checksum
// offload off. The stack itself is held to 0x0000.
const kernelZeroChecksum = "TCP Checksum 0xffff instead of 0x0000"

// bad reports whether the item fails the check.
func (c *pcapCheck) bad(x expertItem) bool {
	if !x.fromStack && (c.peerFramesMayBeBroken || strings.HasPrefix(x.message, kernelZeroChecksum)) {
		return false
	}
	return x.severity >= expertError || x.group == expertChecksum || x.group == expertMalformed
}

// items runs tshark over the capture and returns its expert items.
func (c *pcapCheck) items() ([]expertItem, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const agg = "\x1f" // between the occurrences of a field in one frame
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", c.path,
		"-o", "ip.check_checksum:TRUE",
		"-o", "tcp.check_checksum:TRUE",
		"-o", "udp.check_checksum:TRUE",
		// Check the link, network and transport layers only: payloads
		// are plain data. Application dissectors would reassemble
		// 200 MiB HTTP bodies (minutes of CPU) and misread random
		// payloads on well-known ports as malformed messages of their
		// protocol; none of those bytes are the stack's.
		"-o", "tcp.desegment_tcp_streams:FALSE",
		"-d", "tcp.port==1-65535,data", "-d", "udp.port==1-65535,data",
		"-Y", "_ws.expert",
		"-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator="+agg,
		"-e", "frame.number", "-e", "eth.src", "-e", "ip.src", "-e", "ipv6.src",
		"-e", "_ws.expert.group", "-e", "_ws.expert.severity", "-e", "_ws.expert.message")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return nil, fmt.Errorf("tshark -r %s: %v %s", c.path, err, msg)
	}
	var items []expertItem
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 7 {
			continue
		}
		frame, _ := strconv.Atoi(f[0])
		fromStack := false
		if f[1] != "" {
			fromStack = strings.EqualFold(f[1], c.stackMAC.String())
		} else if ips := strings.Split(f[2], agg); f[2] != "" {
			fromStack = ips[0] == c.stackIP.String()
		} else if ips := strings.Split(f[3], agg); len(ips) > 0 {
			// A TUN's bare IPv6 packet: the stack's addresses are the
			// tests' stackAddr6 and its link-local one.
			a, err := netip.ParseAddr(ips[0])
			fromStack = err == nil && (a == c.stackIP6 || a.IsLinkLocalUnicast() && c.stackIP6.IsValid())
		}
		groups, sevs, msgs := strings.Split(f[4], agg), strings.Split(f[5], agg), strings.Split(f[6], agg)
		for i := range groups {
			x := expertItem{frame: frame, fromStack: fromStack}
			x.group, _ = strconv.Atoi(groups[i])
			if i < len(sevs) {
				x.severity, _ = strconv.Atoi(sevs[i])
			}
			if i < len(msgs) {
				x.message = msgs[i]
			}
			items = append(items, x)
		}
	}
	return items, nil
}

// run checks the capture and fails t on what it finds; it logs a summary
// of the harmless items.
func (c *pcapCheck) run(t *testing.T) {
	t.Helper()
	if c.path == "" {
		return
	}
	if st, err := os.Stat(c.path); err != nil || st.Size() <= 24 {
		t.Errorf("capture %s missing or empty (%v)", c.path, err)
		return
	}
	items, err := c.items()
	if err != nil {
		t.Error(err)
		return
	}
	var bad []expertItem
	counts := map[string]int{}
	for _, x := range items {
		if c.bad(x) {
			bad = append(bad, x)
			continue
		}
		if x.severity < expertNote {
			continue // chats: SYN, FIN, window updates
		}
		// Count by message without the variable parts ("[should be 0x..]", numbers).
		m := x.message
		if i := strings.IndexAny(m, "[(0123456789"); i > 0 {
			m = strings.TrimSpace(m[:i])
		}
		counts[m]++
	}
	if len(counts) > 0 {
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "\n  %6d  %s", counts[k], k)
		}
		t.Logf("tshark expert notes in %s (harmless):%s", filepath.Base(c.path), b.String())
	}
	if len(bad) > 0 {
		var b strings.Builder
		for i, x := range bad {
			if i == 20 {
				fmt.Fprintf(&b, "\n  ... and %d more", len(bad)-20)
				break
			}
			fmt.Fprintf(&b, "\n  %v", x)
		}
		t.Errorf("tshark found %d malformed frames or bad checksums in the capture %s:%s", len(bad), c.path, b.String())
	}
}

// TestPcapCheck: the capture check finds what it must — bad IP, UDP and
// TCP checksums, a truncated IP packet — and nothing in good frames; with
// peerFramesMayBeBroken it still finds the stack's own bad frames.
func TestPcapCheck(t *testing.T) {
	netnstest.NeedCommands(t, "tshark")
	peer := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	kip, sip := kernelAddr.Addr(), stackAddr.Addr()
	type fr struct {
		b   []byte
		bad bool
	}
	frames := []fr{
		{ethFrame(peer, stackMAC, ipPacket(kip, sip, 17, udpDatagram(kip, sip, 1000, 2000, []byte("hello"), false), false, 0)), false},
		{ethFrame(stackMAC, peer, ipPacket(sip, kip, 6, tcpSegment(sip, kip, 80, 1234, []byte("data"), false), false, 0)), false},
		{ethFrame(peer, stackMAC, ipPacket(kip, sip, 17, udpDatagram(kip, sip, 1000, 2000, []byte("hello"), true), false, 0)), true},
		{ethFrame(stackMAC, peer, ipPacket(sip, kip, 6, tcpSegment(sip, kip, 80, 1234, []byte("data"), true), false, 0)), true},
		{ethFrame(peer, stackMAC, ipPacket(kip, sip, 6, tcpSegment(kip, sip, 1234, 80, []byte("data"), false), true, 0)), true},
		{ethFrame(stackMAC, peer, ipPacket(sip, kip, 17, udpDatagram(sip, kip, 1000, 2000, []byte("hello"), false), false, 200)), true},
		// A zero TCP checksum written as 0xffff: harmless from the
		// kernel, not from the stack.
		{ethFrame(peer, stackMAC, ipPacket(kip, sip, 6, tcpZeroSum(kip, sip), false, 0)), false},
		{ethFrame(stackMAC, peer, ipPacket(sip, kip, 6, tcpZeroSum(sip, kip), false, 0)), true},
	}
	path := filepath.Join(t.TempDir(), "check.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcap.NewWriter(f, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range frames {
		if err := w.WritePacket(time.Now(), x.b); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	c := pcapCheck{path: path, stackMAC: stackMAC, stackIP: sip}
	items, err := c.items()
	if err != nil {
		t.Fatal(err)
	}
	found := map[int]bool{}
	for _, x := range items {
		if c.bad(x) {
			found[x.frame] = true
		}
	}
	for i, x := range frames {
		if found[i+1] != x.bad {
			t.Errorf("frame %d: found bad %v, want %v (items %v)", i+1, found[i+1], x.bad, items)
		}
	}
	c.peerFramesMayBeBroken = true
	found = map[int]bool{}
	for _, x := range items {
		if c.bad(x) {
			found[x.frame] = true
		}
	}
	if !found[4] || !found[6] || !found[8] || found[3] || found[5] || found[7] {
		t.Errorf("with peer frames allowed broken: found %v, want frames 4, 6 and 8 only", found)
	}
	for _, x := range items {
		if x.frame == 7 && !strings.HasPrefix(x.message, kernelZeroChecksum) {
			t.Errorf("frame 7: %q, want %q", x.message, kernelZeroChecksum)
		}
	}
}

// Hand-made frames for TestPcapCheck.

func ethFrame(src, dst net.HardwareAddr, payload []byte) []byte {
	b := append(append(append([]byte{}, dst...), src...), 0x08, 0x00)
	return append(b, payload...)
}

func sum16(b []byte, initial uint32) uint16 {
	s := initial
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func pseudo(src, dst netip.Addr, proto byte, n int) uint32 {
	s, d := src.As4(), dst.As4()
	var b [12]byte
	copy(b[0:], s[:])
	copy(b[4:], d[:])
	b[9] = proto
	binary.BigEndian.PutUint16(b[10:], uint16(n))
	return uint32(^sum16(b[:], 0))
}

func ipPacket(src, dst netip.Addr, proto byte, payload []byte, badSum bool, totalLen int) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	if totalLen == 0 {
		totalLen = 20 + len(payload)
	}
	binary.BigEndian.PutUint16(h[2:], uint16(totalLen))
	binary.BigEndian.PutUint16(h[6:], 0x4000)
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	c := sum16(h, 0)
	if badSum {
		c ^= 0x1234
	}
	binary.BigEndian.PutUint16(h[10:], c)
	return append(h, payload...)
}

func udpDatagram(src, dst netip.Addr, sp, dp uint16, data []byte, badSum bool) []byte {
	u := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(u[0:], sp)
	binary.BigEndian.PutUint16(u[2:], dp)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], data)
	c := sum16(u, pseudo(src, dst, 17, len(u)))
	if badSum {
		c ^= 0x0101
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return u
}

func tcpSegment(src, dst netip.Addr, sp, dp uint16, data []byte, badSum bool) []byte {
	s := make([]byte, 20+len(data))
	binary.BigEndian.PutUint16(s[0:], sp)
	binary.BigEndian.PutUint16(s[2:], dp)
	binary.BigEndian.PutUint32(s[4:], 1)
	binary.BigEndian.PutUint32(s[8:], 1)
	s[12], s[13] = 0x50, 0x18
	binary.BigEndian.PutUint16(s[14:], 1000)
	copy(s[20:], data)
	c := sum16(s, pseudo(src, dst, 6, len(s)))
	if badSum {
		c ^= 0x0101
	}
	binary.BigEndian.PutUint16(s[16:], c)
	return s
}

// tcpZeroSum returns a TCP segment whose checksum computes to 0x0000 (two
// bytes of payload make the sum so) and carries 0xffff instead.
func tcpZeroSum(src, dst netip.Addr) []byte {
	seg := tcpSegment(src, dst, 80, 1234, []byte{0, 0}, false)
	// With the payload 0000 the checksum is c = ^S; a payload of c makes
	// the sum 0xffff, so the checksum 0.
	copy(seg[20:], seg[16:18])
	binary.BigEndian.PutUint16(seg[16:], 0)
	if c := sum16(seg, pseudo(src, dst, 6, len(seg))); c != 0 && c != 0xffff {
		panic(fmt.Sprintf("checksum %#x", c))
	}
	binary.BigEndian.PutUint16(seg[16:], 0xffff)
	return seg
}
