package interop

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link/afpacket"
	"github.com/ustack/ustack/link/pcap"
)

// pmtuTopo is the path of the path MTU tests: ustack on AF_PACKET in A
// and the kernel in C, each on a link of MTU 1500 (so each announces an
// MSS the path cannot carry), joined through two routers, B and R, whose
// link between them takes 1280 bytes; and a kernel sender in K beside
// ustack, so that the kernel's TCP can be put in ustack's place on the
// same path. (Routers at both ends of the narrow link make the errors
// come both ways; a veth end with a smaller MTU than its peer drops
// larger frames silently instead.)
//
//	A: d0 (ustack 10.88.1.2, fd88:1::2) ══ b0 ┐
//	                                          B ══(1280)══ R ══ C: c0 10.88.4.2, fd88:4::2
//	K: k0 10.88.3.2, fd88:3::2 ══════════ bk ┘
//
// Offloads are off on every end, so every packet is what crossed the
// wire. With blackHole, nftables in both routers drops their own ICMP
// "fragmentation needed" and ICMPv6 "packet too big".
type pmtuTopo struct {
	A, B, R, C, K *netns.NS
	s             *ustack.Stack
}

var (
	pmtuDst4 = netip.MustParseAddr("10.88.4.2")
	pmtuDst6 = netip.MustParseAddr("fd88:4::2")
)

func newPMTUTopo(t *testing.T, blackHole bool, kernelProbing int) *pmtuTopo {
	t.Helper()
	p := &pmtuTopo{}
	prefix := "ustack-pmtu-"
	p.A, p.B, p.R, p.C, p.K = netnstest.NS(t, prefix), netnstest.NS(t, prefix), netnstest.NS(t, prefix), netnstest.NS(t, prefix), netnstest.NS(t, prefix)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netns.AddVeth(p.A, "d0", p.B, "b0", 1500))
	must(netns.AddVeth(p.K, "k0", p.B, "bk", 1500))
	must(netns.AddVeth(p.B, "bm", p.R, "rm", 1280))
	must(netns.AddVeth(p.R, "rc", p.C, "c0", 1500))
	must(p.A.Sysctl("net.ipv6.conf.all.disable_ipv6", "1"))
	must(p.A.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"))
	for _, r := range []*netns.NS{p.B, p.R} {
		must(r.Sysctl("net.ipv4.ip_forward", "1"))
		must(r.Sysctl("net.ipv6.conf.all.forwarding", "1"))
	}
	for _, a := range []struct {
		ns       *netns.NS
		ifname   string
		v4, v6   string
		gw4, gw6 string
	}{
		{p.B, "b0", "10.88.1.1/24", "fd88:1::1/64", "", ""},
		{p.B, "bk", "10.88.3.1/24", "fd88:3::1/64", "", ""},
		{p.B, "bm", "10.88.2.1/24", "fd88:2::1/64", "", ""},
		{p.R, "rm", "10.88.2.2/24", "fd88:2::2/64", "", ""},
		{p.R, "rc", "10.88.4.1/24", "fd88:4::1/64", "", ""},
		{p.K, "k0", "10.88.3.2/24", "fd88:3::2/64", "10.88.3.1", "fd88:3::1"},
		{p.C, "c0", "10.88.4.2/24", "fd88:4::2/64", "10.88.4.1", "fd88:4::1"},
	} {
		must(a.ns.IP("addr", "add", a.v4, "dev", a.ifname))
		must(a.ns.IP("-6", "addr", "add", a.v6, "dev", a.ifname, "nodad"))
	}
	for _, e := range []struct {
		ns     *netns.NS
		ifname string
	}{{p.A, "d0"}, {p.B, "b0"}, {p.B, "bk"}, {p.B, "bm"}, {p.R, "rm"}, {p.R, "rc"}, {p.K, "k0"}, {p.C, "c0"}} {
		_, err := e.ns.Run("ethtool", "-K", e.ifname, "tso", "off", "gso", "off", "tx", "off", "gro", "off")
		must(err)
		must(e.ns.Do(func() error { return netns.SetUp(e.ifname) }))
	}
	for _, r := range []struct {
		ns       *netns.NS
		gw4, gw6 string
	}{{p.K, "10.88.3.1", "fd88:3::1"}, {p.C, "10.88.4.1", "fd88:4::1"}, {p.R, "10.88.2.1", "fd88:2::1"}} {
		must(r.ns.IP("route", "add", "default", "via", r.gw4))
		must(r.ns.IP("-6", "route", "add", "default", "via", r.gw6))
	}
	must(p.B.IP("route", "add", "10.88.4.0/24", "via", "10.88.2.2"))
	must(p.B.IP("-6", "route", "add", "fd88:4::/64", "via", "fd88:2::2"))
	for _, ns := range []*netns.NS{p.K, p.C} {
		setCongestion(t, ns)
		// Per namespace (environment notes): the kernel's probing as
		// the test asks, on both kernels.
		must(ns.Sysctl("net.ipv4.tcp_mtu_probing", fmt.Sprint(kernelProbing)))
	}
	if blackHole {
		rules := strings.Join([]string{
			"table inet pmtu {",
			"  chain out {",
			"    type filter hook output priority 0; policy accept;",
			"    icmp type destination-unreachable icmp code frag-needed counter drop",
			"    icmpv6 type packet-too-big counter drop",
			"  }",
			"}",
		}, "\n")
		for _, r := range []*netns.NS{p.B, p.R} {
			cmd := r.Command("nft", "-f", "-")
			cmd.Stdin = strings.NewReader(rules)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nft: %v: %s", err, out)
			}
		}
	}
	raw, err := afpacket.Open(afpacket.Config{Interface: "d0", Netns: p.A.Name})
	must(err)
	// The stack's side is captured and tshark checks it when the test
	// ends, as every interop test's (pcapcheck_test.go).
	dir, err := os.MkdirTemp("", "ustack-pmtu-")
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	check := &pcapCheck{path: filepath.Join(dir, "pmtu.pcap"), stackMAC: stackMAC,
		stackIP: netip.MustParseAddr("10.88.1.2"), stackIP6: netip.MustParseAddr("fd88:1::2"),
		// The routers' errors quote the first 548 bytes (IPv4) or
		// 1232 (IPv6) of a full-sized segment, and tshark checks the
		// quoted TCP checksum against those bytes alone: every
		// "fragmentation needed" would read as a bad checksum. The
		// stack's own frames are still held to every check.
		peerFramesMayBeBroken: true}
	ep, err := pcap.Create(raw, check.path)
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		check.run(t)
		if !t.Failed() && os.Getenv("USTACK_INTEROP_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			t.Logf("capture of the stack's side kept: %s", check.path)
		}
	})
	s, err := ustack.New(ustack.Config{})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nic, err := s.AddNIC(ep, ustack.NICConfig{Name: "d0", MAC: stackMAC, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.88.1.2/24"), netip.MustParsePrefix("fd88:1::2/64")}})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	must(s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.88.1.1"), nic))
	must(s.AddRoute(netip.MustParsePrefix("::/0"), netip.MustParseAddr("fd88:1::1"), nic))
	waitUsable(t, nic)
	p.s = s
	return p
}

// nftDrops returns the packets the router's rule for the family dropped
// (its counter).
func nftDrops(t *testing.T, ns *netns.NS, v4 bool) int {
	t.Helper()
	out, err := ns.Run("nft", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	key := "packet-too-big"
	if v4 {
		key = "frag-needed"
	}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, key) {
			continue
		}
		f := strings.Fields(line)
		for i := range f {
			if f[i] == "packets" && i+1 < len(f) {
				var n int
				fmt.Sscan(f[i+1], &n)
				return n
			}
		}
	}
	t.Fatalf("no rule for %s in\n%s", key, out)
	return 0
}

// sinkResult is what the receiver of one transfer saw.
type sinkResult struct {
	n   int64
	err error
	at  time.Time // when the last byte arrived (EOF)
}

// sink accepts connections on ln and reads each to EOF, reporting each
// on the channel.
func sink(ln net.Listener) <-chan sinkResult {
	out := make(chan sinkResult, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(out)
				return
			}
			go func() {
				defer c.Close()
				n, err := io.Copy(io.Discard, c)
				out <- sinkResult{n: n, err: err, at: time.Now()}
			}()
		}
	}()
	return out
}

// pmtuSize is the bytes each transfer sends.
const pmtuSize = 4 << 20

// send writes pmtuSize bytes on c and closes its sending half; the
// receiver's sinkResult says when they arrived.
func send(c net.Conn, seed uint64) error {
	c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.Copy(c, stream(seed, pmtuSize)); err != nil {
		return err
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// timedTransfer dials addr with dial, sends pmtuSize bytes, and waits up
// to limit for the receiver to have them all; it returns the time from
// the dial to the last byte, or an error (the bytes that arrived).
func timedTransfer(t *testing.T, dial func() (net.Conn, error), results <-chan sinkResult, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	c, err := dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	go send(c, 11)
	select {
	case r := <-results:
		if r.err != nil || r.n != pmtuSize {
			return 0, fmt.Errorf("received %d of %d bytes: %v", r.n, pmtuSize, r.err)
		}
		return r.at.Sub(start), nil
	case <-time.After(limit):
		return 0, fmt.Errorf("not complete after %v", limit)
	}
}

// warm sends a few bytes with dial and waits for them to arrive, so that
// the neighbour entries along the path exist before a transfer is timed
// (a freshly built path of kernel routers lost the first IPv6 SYN, a
// second's retransmission, which is no part of what is measured).
func warm(t *testing.T, dial func() (net.Conn, error), results <-chan sinkResult) {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatalf("warming the path: %v", err)
	}
	defer c.Close()
	c.Write([]byte("warm"))
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	select {
	case r := <-results:
		if r.n != 4 {
			t.Fatalf("warming the path: %d bytes arrived, %v", r.n, r.err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("warming the path: nothing arrived in 90 s")
	}
}

// TestPMTUInterop: path MTU discovery against Linux through a router
// whose far link takes 1280 bytes. With the router's ICMP allowed,
// ustack's transfers to the kernel complete in both families through
// RFC 1191 / RFC 8201 (it counts the errors and caches the path MTU),
// and the kernel's to ustack complete too. With nftables in the router
// dropping "fragmentation needed" and "packet too big", the kernel with
// net.ipv4.tcp_mtu_probing = 0 stalls while ustack, with its default
// (probing after a black hole), completes through PLPMTUD; the kernel
// with tcp_mtu_probing = 1 completes too, and both times are logged for
// BENCHMARKS.md.
func TestPMTUInterop(t *testing.T) {
	netnstest.Skip(t, false)
	netnstest.NeedCommands(t, "ethtool", "nft", "tshark")

	t.Run("icmp", func(t *testing.T) {
		p := newPMTUTopo(t, false, 0)
		var ln net.Listener
		if err := p.C.Do(func() (err error) { ln, err = net.Listen("tcp", "[::]:9000"); return }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		results := sink(ln)
		for _, dst := range []netip.Addr{pmtuDst4, pmtuDst6} {
			addr := netip.AddrPortFrom(dst, 9000).String()
			warm(t, func() (net.Conn, error) { return p.s.Dial("tcp", addr) }, results)
			d, err := timedTransfer(t, func() (net.Conn, error) { return p.s.Dial("tcp", addr) }, results, time.Minute)
			if err != nil {
				t.Fatalf("ustack to %s: %v", addr, err)
			}
			st := p.s.Stats().TCP
			t.Logf("ustack to %s through PMTUD: %v (PTB %d accepted, %d RTOs, %d retransmitted segments)", addr, d, st.PTBAccepted, st.Timeouts, st.RetransSegs)
			if m, err := p.s.PathMTU(dst); err != nil || m != 1280 {
				t.Errorf("ustack's path MTU to %v: %d, %v", dst, m, err)
			}
		}
		st := p.s.Stats()
		if st.TCP.PTBAccepted < 2 || st.PMTU.Learned < 2 || st.TCP.MTUBlackHoles != 0 {
			t.Errorf("ustack: PTB %d received, %d accepted; %d learned; %d black holes", st.TCP.PTBReceived, st.TCP.PTBAccepted, st.PMTU.Learned, st.TCP.MTUBlackHoles)
		}
		// The kernel's way back to ustack: R's errors teach it the
		// path MTU (this test does not look inside the kernel to check
		// that; it checks the bytes arrive).
		var back net.Listener
		back, err := p.s.Listen("tcp", "[::]:9001")
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		backResults := sink(back)
		for _, dst := range []string{"10.88.1.2", "[fd88:1::2]"} {
			warm(t, func() (net.Conn, error) { return kernelDial(p.C, dst+":9001", 10*time.Second) }, backResults)
			d, err := timedTransfer(t, func() (net.Conn, error) { return kernelDial(p.C, dst+":9001", 10*time.Second) }, backResults, time.Minute)
			if err != nil {
				t.Fatalf("kernel to ustack at %s: %v", dst, err)
			}
			t.Logf("kernel to ustack at %s: %v", dst, d)
		}
	})

	t.Run("blackhole", func(t *testing.T) {
		var ustackTimes, kernelTimes []time.Duration
		for _, dst := range []netip.Addr{pmtuDst4, pmtuDst6} {
			p := newPMTUTopo(t, true, 1)
			var ln net.Listener
			if err := p.C.Do(func() (err error) { ln, err = net.Listen("tcp", "[::]:9000"); return }); err != nil {
				t.Fatal(err)
			}
			results := sink(ln)
			addr := netip.AddrPortFrom(dst, 9000).String()
			// ustack and the kernel with probing on, one after the
			// other on the same path.
			warm(t, func() (net.Conn, error) { return p.s.Dial("tcp", addr) }, results)
			warm(t, func() (net.Conn, error) { return kernelDial(p.K, addr, 10*time.Second) }, results)
			du, err := timedTransfer(t, func() (net.Conn, error) { return p.s.Dial("tcp", addr) }, results, time.Minute)
			if err != nil {
				t.Fatalf("ustack through the black hole to %s: %v", addr, err)
			}
			dk, err := timedTransfer(t, func() (net.Conn, error) { return kernelDial(p.K, addr, 10*time.Second) }, results, time.Minute)
			if err != nil {
				t.Fatalf("kernel (tcp_mtu_probing=1) through the black hole to %s: %v", addr, err)
			}
			t.Logf("black hole to %s: ustack %v, kernel (tcp_mtu_probing=1) %v", addr, du, dk)
			ustackTimes, kernelTimes = append(ustackTimes, du), append(kernelTimes, dk)
			st := p.s.Stats().TCP
			t.Logf("ustack: %d RTOs, %d black holes, %d probes (%d succeeded, %d failed), %d recoveries, %d retransmitted segments", st.Timeouts, st.MTUBlackHoles, st.MTUProbes, st.MTUProbeSuccess, st.MTUProbeFail, st.Recoveries, st.RetransSegs)
			if st.MTUBlackHoles == 0 || st.MTUProbeSuccess == 0 || st.PTBReceived != 0 {
				t.Errorf("ustack: black holes %d, probes %d (%d succeeded, %d failed), PTB %d", st.MTUBlackHoles, st.MTUProbes, st.MTUProbeSuccess, st.MTUProbeFail, st.PTBReceived)
			}
			if n := nftDrops(t, p.B, dst.Is4()); n == 0 {
				t.Errorf("the router dropped none of its ICMP errors about %v", dst)
			}
			// The kernel with probing off stalls on the same path.
			if err := p.K.Sysctl("net.ipv4.tcp_mtu_probing", "0"); err != nil {
				t.Fatal(err)
			}
			if _, err := timedTransfer(t, func() (net.Conn, error) { return kernelDial(p.K, addr, 10*time.Second) }, results, 20*time.Second); err == nil {
				t.Errorf("kernel (tcp_mtu_probing=0) got through the black hole to %s", addr)
			} else {
				t.Logf("kernel (tcp_mtu_probing=0) to %s: %v", addr, err)
			}
			ln.Close()
		}
		t.Logf("black-hole completion of %d MiB, IPv4 then IPv6: ustack %v, kernel with tcp_mtu_probing=1 %v", pmtuSize>>20, ustackTimes, kernelTimes)
	})
}
