package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/wire"
)

// nstat6 returns the namespace's IPv6 counters by their names in
// /proc/net/snmp6 ("Ip6ReasmOKs", "Icmp6InEchos", "Udp6InDatagrams").
func nstat6(t *testing.T, e *env) map[string]uint64 {
	t.Helper()
	out, err := e.kernel.Run("cat", "/proc/net/snmp6")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			m[f[0]] = n
		}
	}
	return m
}

// stackLinkLocal is the stack's link-local address: from its MAC (RFC
// 4862 §5.3), on Ethernet links.
func stackLinkLocal() netip.Addr {
	return wire.LinkLocalFromMAC(wire.MAC(stackMAC))
}

// TestPing6: the kernel's ping -6 reaches the stack — its global address
// and, on Ethernet links, its link-local address (with the interface as
// zone) — with small echoes and with echoes of 4000 bytes that the kernel
// fragments and the stack reassembles and fragments back (RFC 8200
// §4.5, RFC 4443 §4.2).
func TestPing6(t *testing.T) {
	forLinks(t, []linkKind{tapLink, tunLink, afpacketLink}, func(t *testing.T, kind linkKind) {
		need(t, kind, "ping")
		e := newEnv(t, kind, envConfig{ipv6: true})
		targets := []string{stackAddr6.Addr().String()}
		if kind != tunLink {
			targets = append(targets, stackLinkLocal().String()+"%"+e.kernelIf())
		}
		for _, dst := range targets {
			for _, size := range []string{"56", "4000"} {
				out, err := run(e.kernel, 30*time.Second, "ping", "-6", "-c", "5", "-i", "0.2", "-W", "5", "-s", size, dst)
				if err != nil {
					t.Fatalf("ping -6 -s %s %s: %v", size, dst, err)
				}
				if !strings.Contains(out, "5 packets transmitted, 5 received") {
					t.Errorf("ping -6 -s %s %s:\n%s", size, dst, out)
				}
			}
		}
		st := e.s.Stats().Net
		t.Logf("stack: %d echo requests, %d replies; reassembled %d, fragments sent %d", st.Icmp6InEchos, st.Icmp6OutEchoReplies, st.Ip6ReasmOKs, st.Ip6FragCreates)
		if st.Icmp6InEchos < uint64(10*len(targets)) || st.Ip6ReasmOKs < uint64(5*len(targets)) || st.Ip6FragCreates < uint64(10*len(targets)) {
			t.Errorf("stack counters: echoes %d, reassembled %d, fragments %d", st.Icmp6InEchos, st.Ip6ReasmOKs, st.Ip6FragCreates)
		}
	})
}

// TestNDPWithKernelNeighbour: the kernel and the stack resolve each other
// with Neighbor Discovery (RFC 4861 §7.2): the kernel's neighbour table
// holds the stack's MAC for its global and link-local addresses, the
// stack's holds the kernel's; each answered the other's solicitations;
// and the stack's duplicate address detection saw nothing to object to.
func TestNDPWithKernelNeighbour(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "ping")
		e := newEnv(t, kind, envConfig{ipv6: true})
		// The stack resolves the kernel (our solicitation, its
		// advertisement): a connection from the stack, before the kernel
		// has sent it anything to learn from.
		ln := kernelListen(t, e.kernel, fmt.Sprintf("[%v]:5007", kernelAddr6.Addr()))
		go func() {
			c, err := ln.Accept()
			if err == nil {
				io.Copy(c, c)
				c.Close()
			}
		}()
		c, err := e.s.Dial("tcp", fmt.Sprintf("[%v]:5007", kernelAddr6.Addr()))
		if err != nil {
			t.Fatalf("the stack's connection to the kernel over IPv6: %v", err)
		}
		io.WriteString(c, "ndp")
		buf := make([]byte, 3)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ndp" {
			t.Fatalf("echo: %q %v", buf, err)
		}
		c.Close()
		// The kernel resolves the stack's link-local address (its
		// solicitation, our advertisement); its global one it learned
		// from our solicitation.
		if _, err := run(e.kernel, 20*time.Second, "ping", "-6", "-c", "2", "-W", "5", stackLinkLocal().String()+"%"+e.kernelIf()); err != nil {
			t.Fatal(err)
		}
		if _, err := run(e.kernel, 20*time.Second, "ping", "-6", "-c", "2", "-W", "5", stackAddr6.Addr().String()); err != nil {
			t.Fatal(err)
		}
		out, err := run(e.kernel, 10*time.Second, "ip", "-6", "neigh", "show", "dev", e.kernelIf())
		if err != nil {
			t.Fatal(err)
		}
		mac := strings.ToLower(stackMAC.String())
		for _, a := range []netip.Addr{stackAddr6.Addr(), stackLinkLocal()} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a.String()) + ` lladdr ` + mac + ` (REACHABLE|STALE|DELAY|PROBE)`).MatchString(out) {
				t.Errorf("the kernel's neighbour table lacks %v at %s:\n%s", a, mac, out)
			}
		}
		var kernelMAC string
		if m := regexp.MustCompile(`link/ether (\S+)`).FindStringSubmatch(mustRun(t, e, "ip", "link", "show", "dev", e.kernelIf())); m != nil {
			kernelMAC = m[1]
		}
		found := false
		for _, n := range e.s.Neighbors() {
			if n.IP == kernelAddr6.Addr() && strings.EqualFold(n.MAC.String(), kernelMAC) {
				found = true
			}
		}
		if !found {
			t.Errorf("the stack's neighbour table %+v lacks %v at %s", e.s.Neighbors(), kernelAddr6.Addr(), kernelMAC)
		}
		st := e.s.Stats().Net
		// Our solicitations: one per address for DAD, then the
		// resolution of the kernel's address.
		if st.Icmp6InNeighborSolicits == 0 || st.Icmp6OutNeighborAdvertisements == 0 || st.Icmp6OutNeighborSolicits < 3 || st.Icmp6InNeighborAdvertisements == 0 {
			t.Errorf("NDP counters: in NS %d, out NA %d, out NS %d, in NA %d", st.Icmp6InNeighborSolicits, st.Icmp6OutNeighborAdvertisements, st.Icmp6OutNeighborSolicits, st.Icmp6InNeighborAdvertisements)
		}
		if st.Ip6DADFailures != 0 || st.Icmp6OutMLDv2Reports == 0 {
			t.Errorf("DAD failures %d, MLD reports %d", st.Ip6DADFailures, st.Icmp6OutMLDv2Reports)
		}
		for _, a := range e.nic.Addresses() {
			if a.Prefix.Addr().Is6() && a.State != "preferred" {
				t.Errorf("address %v is %s", a.Prefix, a.State)
			}
		}
	})
}

func mustRun(t *testing.T, e *env, name string, args ...string) string {
	t.Helper()
	out, err := run(e.kernel, 10*time.Second, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// radvdConf advertises fd78::/64 for SLAAC, an MTU of 1400 and a hop
// limit of 42, every few seconds and in answer to solicitations.
const radvdConf = `interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvCurHopLimit 42;
	AdvLinkMTU 1400;
	AdvDefaultLifetime 600;
	prefix fd78::/64 {
		AdvOnLink on;
		AdvAutonomous on;
		AdvValidLifetime 3600;
		AdvPreferredLifetime 1800;
	};
};
`

// TestNDPWithKernelRouter: the kernel as the stack's router (radvd
// advertising on its side, forwarding on): the stack solicits routers
// when it starts, and from the advertisement (RFC 4861 §6.3.4, RFC 4862
// §5.5.3) forms an address in fd78::/64, takes the kernel as default
// router, the hop limit and the MTU; the kernel reaches the stack's new
// address, and the stack reaches an address behind the router. (The
// kernel sends no advertisements of its own, forwarding or not: radvd
// does, as on a real router.)
func TestNDPWithKernelRouter(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "radvd", "curl")
		e := newEnv(t, kind, envConfig{slaac: true})
		if err := e.kernel.Sysctl("net.ipv6.conf.all.forwarding", "1"); err != nil {
			t.Fatal(err)
		}
		// An address behind the router: on the kernel's loopback.
		if err := e.kernel.IP("link", "set", "dev", "lo", "up"); err != nil {
			t.Fatal(err)
		}
		if err := e.kernel.IP("-6", "addr", "add", "fd79::1/128", "dev", "lo"); err != nil {
			t.Fatal(err)
		}
		// radvd advertises every few seconds, whether or not it heard
		// the stack's solicitations, which start with the stack.
		startRadvd(t, e)
		// A router has an address on the prefix it advertises (and so a
		// route to it).
		if err := e.kernel.IP("-6", "addr", "add", "fd78::1/64", "dev", e.kernelIf(), "nodad"); err != nil {
			t.Fatal(err)
		}
		var auto netip.Addr
		if !waitFor(30*time.Second, func() bool {
			for _, a := range e.nic.Addresses() {
				if a.Auto && a.State == "preferred" {
					auto = a.Prefix.Addr()
					return true
				}
			}
			return false
		}) {
			t.Fatalf("no address from the router's prefix: %+v", e.nic.Addresses())
		}
		if want := netip.MustParsePrefix("fd78::/64"); !want.Contains(auto) {
			t.Fatalf("autoconfigured %v, not in %v", auto, want)
		}
		if st := e.s.Stats().Net; st.Icmp6OutRouterSolicits == 0 || st.Icmp6InRouterAdvertisements == 0 {
			t.Errorf("router solicitations sent %d, advertisements received %d", st.Icmp6OutRouterSolicits, st.Icmp6InRouterAdvertisements)
		}
		// The kernel reaches the new address.
		serveHTTP(t, e.s, 1)
		if n, _, code, _ := curlBody(t, e, fmt.Sprintf("http://[%v]/bytes/100000", auto), time.Minute); code != 200 || n != 100000 {
			t.Fatalf("curl to the autoconfigured address: status %d, %d bytes", code, n)
		}
		// The stack reaches fd79::1 through its default router, with the
		// advertised hop limit and an MSS for the advertised MTU.
		ln := kernelListen(t, e.kernel, "[fd79::1]:5008")
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		c, err := e.s.Dial("tcp6", "[fd79::1]:5008")
		if err != nil {
			t.Fatalf("dial through the router: %v", err)
		}
		defer c.Close()
		kc := <-accepted
		defer kc.Close()
		if ra := kc.RemoteAddr().(*net.TCPAddr).IP; !ra.Equal(auto.AsSlice()) {
			t.Errorf("the kernel sees the connection from %v, want %v", ra, auto)
		}
		for _, ci := range e.s.Conns() {
			if ci.Remote.Addr() == netip.MustParseAddr("fd79::1") && ci.Info.SndMSS > 1400-60 {
				t.Errorf("MSS %d toward the router's link MTU of 1400", ci.Info.SndMSS)
			}
		}
	})
}

// startRadvd runs radvd on the kernel's interface until the test ends.
func startRadvd(t *testing.T, e *env) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(radvdConf, e.kernelIf())), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, e.kernel, nil, nil, "radvd", "-n", "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr")
	// radvd may refuse an interface that is down or without a link-local
	// address yet; it says so and exits.
	time.Sleep(200 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("radvd exited: %v\n%s", p.err, p.output())
	default:
	}
}

// TestCurl6: the kernel's curl -6 fetches from an HTTP server on the
// stack (1 KiB and 50 MiB, SHA-256 checked), and the stack's net/http
// client fetches from nginx listening on the kernel's IPv6 address.
func TestCurl6(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "curl", "nginx")
		e := newEnv(t, kind, envConfig{ipv6: true})
		serveHTTP(t, e.s, 1)
		for _, size := range []int64{1 * kib, 50 * mib} {
			t0 := time.Now()
			n, sum, code, _ := curlBody(t, e, fmt.Sprintf("http://[%v]/bytes/%d", stackAddr6.Addr(), size), 5*time.Minute)
			if code != 200 || n != size || sum != streamSum(uint64(size), size) {
				t.Fatalf("curl -6 /bytes/%d: status %d, %d bytes", size, code, n)
			}
			t.Logf("curl -6: %d bytes from the stack in %v (%.0f Mbit/s)", size, time.Since(t0).Round(time.Millisecond), mbps(n, time.Since(t0)))
		}
		sums := startNginxAt(t, e, "["+kernelAddr6.Addr().String()+"]", 1*kib, 50*mib)
		client := &http.Client{Transport: &http.Transport{DialContext: e.s.DialContext, DisableCompression: true}, Timeout: 5 * time.Minute}
		for _, size := range []int64{1 * kib, 50 * mib} {
			resp, err := client.Get(fmt.Sprintf("http://[%v]:8080/%d.bin", kernelAddr6.Addr(), size))
			if err != nil {
				t.Fatal(err)
			}
			n, sum, err := hashReader(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || n != size || sum != sums[size] {
				t.Fatalf("the stack's GET of %d.bin from nginx over IPv6: status %d, %d bytes, %v", size, resp.StatusCode, n, err)
			}
		}
		for _, ci := range e.s.Conns() {
			if !ci.Remote.Addr().Is6() {
				t.Errorf("connection %v -> %v not over IPv6", ci.Local, ci.Remote)
			}
		}
	})
}

// TestUDP6Fragments: 8 KiB UDP datagrams over IPv6 both ways, which the
// kernel and the stack each fragment at the source to fit the MTU and
// the other reassembles (RFC 8200 §4.5); the counters of both show it.
func TestUDP6Fragments(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind)
		e := newEnv(t, kind, envConfig{ipv6: true})
		pc, err := e.s.ListenPacket("udp6", ":7")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], from)
			}
		}()
		var kc net.Conn
		if err := e.kernel.Do(func() error {
			var err error
			kc, err = net.Dial("udp6", fmt.Sprintf("[%v]:7", stackAddr6.Addr()))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		before := nstat6(t, e)
		sb := e.s.Stats()
		const count, size = 20, 8192
		got := 0
		buf := make([]byte, 65536)
		for i := range count {
			msg := make([]byte, size)
			io.ReadFull(stream(uint64(200+i), size), msg)
			for try := 0; try < 3; try++ {
				if _, err := kc.Write(msg); err != nil {
					t.Fatal(err)
				}
				kc.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := kc.Read(buf)
				if err != nil {
					continue
				}
				if !bytes.Equal(buf[:n], msg) {
					t.Fatalf("datagram %d came back as %d different bytes", i, n)
				}
				got++
				break
			}
		}
		after := nstat6(t, e)
		sa := e.s.Stats()
		kd := delta(before, after, "Ip6FragOKs", "Ip6FragCreates", "Ip6ReasmOKs", "Ip6ReasmFails")
		t.Logf("%d of %d datagrams echoed; kernel %v; stack reassembled %d, fragmented %d into %d",
			got, count, kd, sa.Net.Ip6ReasmOKs-sb.Net.Ip6ReasmOKs, sa.Net.Ip6FragOKs-sb.Net.Ip6FragOKs, sa.Net.Ip6FragCreates-sb.Net.Ip6FragCreates)
		if got != count {
			t.Errorf("%d of %d datagrams echoed", got, count)
		}
		if sa.Net.Ip6ReasmOKs-sb.Net.Ip6ReasmOKs < count || sa.Net.Ip6FragOKs-sb.Net.Ip6FragOKs < count || kd["Ip6ReasmOKs"] < count || kd["Ip6FragOKs"] < count {
			t.Errorf("the datagrams were not fragmented and reassembled both ways")
		}
		if sa.UDP6.InDatagrams-sb.UDP6.InDatagrams < count {
			t.Errorf("UDP6 counted %d datagrams", sa.UDP6.InDatagrams-sb.UDP6.InDatagrams)
		}
	})
}

// TestKernelView6: the kernel's `ss` lists its IPv6 connections with the
// stack, with what the handshake negotiated: the MSS the stack announced
// for IPv6 (the MTU less 60, RFC 8200 §8.3, less the timestamp option),
// timestamps, SACK and window scaling — both directions of opening.
func TestKernelView6(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "ss")
		e := newEnv(t, kind, envConfig{ipv6: true})
		ln, err := e.s.Listen("tcp6", ":5010")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		kc, err := kernelDial(e.kernel, fmt.Sprintf("[%v]:5010", stackAddr6.Addr()), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		kln := kernelListen(t, e.kernel, fmt.Sprintf("[%v]:5011", kernelAddr6.Addr()))
		go func() {
			c, err := kln.Accept()
			if err == nil {
				io.Copy(io.Discard, c)
				c.Close()
			}
		}()
		sc, err := e.s.Dial("tcp6", fmt.Sprintf("[%v]:5011", kernelAddr6.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		// ss prints each socket's information on a line of its own
		// after the socket's: one filter per connection, output joined.
		for _, filter := range [][]string{
			{"dst", fmt.Sprintf("[%v]:5010", stackAddr6.Addr())},
			{"src", fmt.Sprintf("[%v]:5011", kernelAddr6.Addr())},
		} {
			out, err := run(e.kernel, 10*time.Second, "ss", append([]string{"-6", "-Htino", "state", "established"}, filter...)...)
			if err != nil {
				t.Fatal(err)
			}
			l := strings.Join(strings.Fields(out), " ")
			if !strings.Contains(l, "["+stackAddr6.Addr().String()+"]") {
				t.Errorf("ss -6 %v shows no connection with the stack:\n%s", filter, out)
				continue
			}
			m := reMSS.FindStringSubmatch(l)
			if m == nil || m[1] != strconv.Itoa(e.mtu-60-12) || !strings.Contains(l, " ts ") || !strings.Contains(l, " sack ") || !reWScale.MatchString(l) {
				t.Errorf("ss line %q: want mss:%d, ts, sack and wscale", l, e.mtu-60-12)
			}
		}
	})
}
