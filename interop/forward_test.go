package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
)

// `ustack forward` end to end (issue 14 items 4 and 5). Three namespaces:
//
//	guest ── TUN ── ustack forward (in host) ── veth ── peer
//	10.0.2.100       host's sockets, 10.77.0.2          10.77.0.1: servers
//	fd00::100                        fd77::2            fd77::1
//
// The guest reaches the peer's servers only through the relay: TCP (curl,
// iperf3, half-close, resets, many at once), UDP, DNS through the
// forwarder at 10.0.2.3, ping; the host reaches the guest through port
// forwards; the gateway 10.0.2.2 is the host's loopback. Over IPv6 the
// same with fd00::100, DNS at fd00::3, the gateway fd00::2 standing for
// the host's ::1.

// forwardEnv is a running `ustack forward` between a guest and a peer.
type forwardEnv struct {
	guest, host, peer *netns.NS
	fwd               *proc
}

const (
	fwdPeer  = "10.77.0.1"
	fwdGuest = "10.0.2.100"
	fwdPeer6 = "fd77::1"
)

func newForwardEnv(t *testing.T, extra ...string) *forwardEnv {
	t.Helper()
	netnstest.Skip(t, true)
	netnstest.NeedCommands(t, "nsenter", "curl", "iperf3", "ping")
	pair := netnstest.Pair(t, netns.PairConfig{Prefix: "ustack-fwd-", PeerOffloads: true})
	e := &forwardEnv{host: pair.DUT, peer: pair.Peer, guest: netnstest.NS(t, "ustack-fwd-g-")}
	if err := e.host.IP("addr", "add", "10.77.0.2/24", "dev", pair.DUTIf); err != nil {
		t.Fatal(err)
	}
	if err := e.host.IP("link", "set", "dev", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	// IPv6 between host and peer (Pair turns it off on the host's
	// side); nodad: usable at once.
	for _, k := range []string{"all", "default", "lo", pair.DUTIf} {
		if err := e.host.Sysctl("net.ipv6.conf."+k+".disable_ipv6", "0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.host.IP("-6", "addr", "add", "fd77::2/64", "dev", pair.DUTIf, "nodad"); err != nil {
		t.Fatal(err)
	}
	if err := e.peer.IP("-6", "addr", "add", fwdPeer6+"/64", "dev", pair.PeerIf, "nodad"); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"forward", "--configure", "--dns-upstream", fwdPeer + ":53"}, extra...)
	args = append(args, netns.Path(e.guest.Name))
	e.fwd = startProc(t, e.host, nil, nil, ustackCommand(t), args...)
	e.fwd.waitOutput(t, `guest 10\.0\.2\.100`, 20*time.Second)
	e.fwd.waitOutput(t, `guest fd00::100`, 20*time.Second)
	return e
}

// stop stops the relay and returns its counters, as it logs them.
func (e *forwardEnv) stop(t *testing.T) map[string]uint64 {
	t.Helper()
	if err := e.fwd.stop(); err != nil {
		t.Fatalf("ustack forward: %v\n%s", err, e.fwd.output())
	}
	m := regexp.MustCompile(`counters: map\[(.*)\]`).FindStringSubmatch(e.fwd.output())
	if m == nil {
		t.Fatalf("no counters in:\n%s", e.fwd.output())
	}
	out := map[string]uint64{}
	for _, kv := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(kv, ":")
		n, _ := strconv.ParseUint(v, 10, 64)
		out[k] = n
	}
	return out
}

// body is what the peer's HTTP server sends for /big: 32 MiB.
func body() []byte { return bytes.Repeat([]byte("ustack forward relays every byte\n"), 1<<20) }

// serveFwdHTTP serves /big and /echo (the request body back) on the peer.
func serveFwdHTTP(t *testing.T, ns *netns.NS, addr string) {
	ln := kernelListen(t, ns, addr)
	big := body()
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// serveDNS answers A queries for svc.test. with 10.77.0.1 (and NXDOMAIN
// otherwise), over UDP and TCP, on the peer.
func serveDNS(t *testing.T, ns *netns.NS) {
	answer := func(q []byte) []byte {
		var p dnsmessage.Parser
		h, err := p.Start(q)
		if err != nil {
			return nil
		}
		qs, err := p.AllQuestions()
		if err != nil || len(qs) != 1 {
			return nil
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.EnableCompression()
		b.StartQuestions()
		b.Question(qs[0])
		b.StartAnswers()
		if qs[0].Name.String() == "svc.test." && qs[0].Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: qs[0].Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{10, 77, 0, 1}})
		}
		out, _ := b.Finish()
		return out
	}
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp4", fwdPeer+":53"); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if a := answer(buf[:n]); a != nil {
				pc.WriteTo(a, from)
			}
		}
	}()
	ln := kernelListen(t, ns, fwdPeer+":53")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				a := answer(q)
				c.Write(append([]byte{byte(len(a) >> 8), byte(len(a))}, a...))
			}()
		}
	}()
}

// lookup asks the guest's DNS address server (10.0.2.3 or fd00::3) for
// svc.test. over network ("udp" or "tcp") from inside the guest and
// returns the A record.
func lookup(t *testing.T, guest *netns.NS, network, server string) (netip.Addr, error) {
	name := dnsmessage.MustNewName("svc.test.")
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 4242, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	q, _ := b.Finish()
	var c net.Conn
	if err := guest.Do(func() (err error) {
		c, err = net.DialTimeout(network, net.JoinHostPort(server, "53"), 5*time.Second)
		return
	}); err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp := make([]byte, 1500)
	var n int
	var err error
	if network == "tcp" {
		c.Write(append([]byte{byte(len(q) >> 8), byte(len(q))}, q...))
		var l [2]byte
		if _, err = io.ReadFull(c, l[:]); err == nil {
			n, err = io.ReadFull(c, resp[:int(l[0])<<8|int(l[1])])
		}
	} else {
		c.Write(q)
		n, err = c.Read(resp)
	}
	if err != nil {
		return netip.Addr{}, err
	}
	var p dnsmessage.Parser
	h, err := p.Start(resp[:n])
	if err != nil || h.ID != 4242 {
		return netip.Addr{}, fmt.Errorf("bad answer %v %+v", err, h)
	}
	p.SkipAllQuestions()
	rh, err := p.AnswerHeader()
	if err != nil {
		return netip.Addr{}, err
	}
	if rh.Type != dnsmessage.TypeA {
		return netip.Addr{}, fmt.Errorf("answer type %v", rh.Type)
	}
	a, err := p.AResource()
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom4(a.A), nil
}

func guestDial(guest *netns.NS, addr string) (*net.TCPConn, error) {
	return kernelDial(guest, addr, 10*time.Second)
}

// TestForward: everything a guest does through `ustack forward`, in one
// topology.
func TestForward(t *testing.T) {
	e := newForwardEnv(t, "-t", "18080:8080", "-u", "18053:5353", "--max-pending", "16")
	serveFwdHTTP(t, e.peer, fwdPeer+":8080")
	serveDNS(t, e.peer)
	sum := sha256.Sum256(body())
	want := hex.EncodeToString(sum[:])

	t.Run("ping", func(t *testing.T) {
		if out, err := e.guest.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", fwdPeer); err != nil || !strings.Contains(out, "3 received") {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		// The gateway answers for itself.
		if out, err := e.guest.Run("ping", "-c", "1", "-W", "2", "10.0.2.2"); err != nil {
			t.Fatalf("ping gateway: %v\n%s", err, out)
		}
	})
	t.Run("curl", func(t *testing.T) {
		out, err := e.guest.Run("sh", "-c", "curl -sSf --max-time 60 http://"+fwdPeer+":8080/big | sha256sum")
		if err != nil || !strings.HasPrefix(out, want) {
			t.Fatalf("curl 32 MiB: %v: %s (want %s)", err, out, want)
		}
		// Upload: the body comes back.
		out, err = e.guest.Run("sh", "-c", "head -c 20000000 /dev/zero | curl -sSf --max-time 60 --data-binary @- http://"+fwdPeer+":8080/echo | wc -c")
		if err != nil || strings.TrimSpace(out) != "20000000" {
			t.Fatalf("curl upload: %v: %s", err, out)
		}
	})
	t.Run("dns", func(t *testing.T) {
		for _, network := range []string{"udp", "tcp"} {
			for _, server := range []string{"10.0.2.3", "fd00::3"} {
				a, err := lookup(t, e.guest, network, server)
				if err != nil || a != netip.MustParseAddr(fwdPeer) {
					t.Fatalf("DNS over %s through %s: %v %v", network, server, a, err)
				}
			}
		}
	})
	t.Run("iperf3", func(t *testing.T) {
		srv := startProc(t, e.peer, nil, nil, "iperf3", "-s", "--forceflush", "-B", fwdPeer, "-p", "5201")
		srv.waitOutput(t, "Server listening", 10*time.Second)
		for _, rev := range []bool{false, true} {
			args := []string{"-c", fwdPeer, "-p", "5201", "-t", "3", "-J"}
			if rev {
				args = append(args, "-R")
			}
			out, err := run(e.guest, 60*time.Second, "iperf3", args...)
			if err != nil {
				t.Fatalf("iperf3 %v: %v\n%s", args, err, out)
			}
			var r struct {
				End struct {
					SumReceived struct {
						Bytes         int64
						BitsPerSecond float64 `json:"bits_per_second"`
					} `json:"sum_received"`
				}
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil || r.End.SumReceived.Bytes == 0 {
				t.Fatalf("iperf3 %v: %v\n%s", args, err, out)
			}
			t.Logf("iperf3 reverse=%v: %.0f Mbit/s", rev, r.End.SumReceived.BitsPerSecond/1e6)
		}
	})
	t.Run("halfclose", func(t *testing.T) {
		// Guest → peer: the peer reads to EOF, then answers; and the
		// peer's FIN reaches the guest as EOF.
		ln := kernelListen(t, e.peer, fwdPeer+":9001")
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			in, _ := io.ReadAll(c)
			c.Write([]byte(fmt.Sprintf("got %d", len(in))))
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			c.Close()
		}()
		c, err := guestDial(e.guest, fwdPeer+":9001")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(bytes.Repeat([]byte{1}, 100000))
		c.CloseWrite()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		out, err := io.ReadAll(c)
		if err != nil || string(out) != "got 100000" {
			t.Fatalf("after half-close: %q %v", out, err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		ln := kernelListen(t, e.peer, fwdPeer+":9002")
		accepted := make(chan *net.TCPConn, 2)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c.(*net.TCPConn)
			}
		}()
		// The peer resets: the guest's read fails with ECONNRESET.
		c, err := guestDial(e.guest, fwdPeer+":9002")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p := <-accepted
		p.SetLinger(0)
		p.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("guest after the peer's RST: %v", err)
		}
		// The guest resets: the peer's read fails with ECONNRESET.
		c2, err := guestDial(e.guest, fwdPeer+":9002")
		if err != nil {
			t.Fatal(err)
		}
		p2 := <-accepted
		defer p2.Close()
		c2.SetLinger(0)
		c2.Close()
		p2.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := p2.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("peer after the guest's RST: %v", err)
		}
		// Nothing listening: refused.
		if _, err := guestDial(e.guest, fwdPeer+":9999"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("closed port: %v", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		ln := kernelListen(t, e.peer, fwdPeer+":9003")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		var udp net.PacketConn
		if err := e.peer.Do(func() (err error) { udp, err = net.ListenPacket("udp4", fwdPeer+":9004"); return }); err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		go func() {
			buf := make([]byte, 2000)
			for {
				n, from, err := udp.ReadFrom(buf)
				if err != nil {
					return
				}
				udp.WriteTo(buf[:n], from)
			}
		}()
		var wg sync.WaitGroup
		errs := make(chan error, 300)
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := guestDial(e.guest, fwdPeer+":9003")
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				msg := bytes.Repeat([]byte{byte(i)}, 64<<10)
				go func() { c.Write(msg); c.CloseWrite() }()
				got, err := io.ReadAll(c)
				if err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("conn %d: %d bytes, %v", i, len(got), err)
				}
			}()
		}
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var c net.Conn
				if err := e.guest.Do(func() (err error) { c, err = net.Dial("udp4", fwdPeer+":9004"); return }); err != nil {
					errs <- err
					return
				}
				defer c.Close()
				msg := []byte(fmt.Sprintf("flow %d", i))
				for try := 0; try < 5; try++ {
					c.Write(msg)
					c.SetReadDeadline(time.Now().Add(time.Second))
					buf := make([]byte, 100)
					n, err := c.Read(buf)
					if err == nil && bytes.Equal(buf[:n], msg) {
						return
					}
				}
				errs <- fmt.Errorf("udp flow %d: no echo", i)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("loopback", func(t *testing.T) {
		// The gateway stands for the host's loopback.
		ln := kernelListen(t, e.host, "127.0.0.1:9005")
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte("host loopback"))
				c.Close()
			}
		}()
		c, err := guestDial(e.guest, "10.0.2.2:9005")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if out, err := io.ReadAll(c); err != nil || string(out) != "host loopback" {
			t.Fatalf("%q %v", out, err)
		}
	})
	t.Run("portforward", func(t *testing.T) {
		serveFwdHTTP(t, e.guest, "0.0.0.0:8080")
		out, err := e.host.Run("sh", "-c", "curl -sSf --max-time 60 http://127.0.0.1:18080/big | sha256sum")
		if err != nil || !strings.HasPrefix(out, want) {
			t.Fatalf("curl through -t 18080:8080: %v %s", err, out)
		}
		udpPortForward(t, e, "udp4", ":5353", "127.0.0.1:18053")
	})
	t.Run("synflood", func(t *testing.T) {
		netnstest.NeedCommands(t, "hping3")
		// 10.77.0.99 is on the peer's link but nobody has it: each
		// upstream connect waits for ARP (about 3 s) while the guest's
		// SYNs pile up; --max-pending 16 bounds them.
		out, err := run(e.guest, 60*time.Second, "hping3", "-q", "-S", "-p", "80", "-c", "300", "-i", "u2000", "10.77.0.99")
		if err != nil && !strings.Contains(out, "packets transmitted") {
			t.Fatalf("hping3: %v\n%s", err, out)
		}
		// Meanwhile and after, real connections work.
		out, err = e.guest.Run("sh", "-c", "curl -sSf --max-time 60 http://"+fwdPeer+":8080/big | sha256sum")
		if err != nil || !strings.HasPrefix(out, want) {
			t.Fatalf("curl after the flood: %v %s", err, out)
		}
	})
	t.Run("ipv6", func(t *testing.T) {
		serveFwdHTTP(t, e.peer, "["+fwdPeer6+"]:8080")
		// ping -6: the peer through the relay's ICMPv6 socket, and the
		// gateway, which answers for itself.
		if out, err := e.guest.Run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", fwdPeer6); err != nil || !strings.Contains(out, "3 received") {
			t.Fatalf("ping -6: %v\n%s", err, out)
		}
		if out, err := e.guest.Run("ping", "-6", "-c", "1", "-W", "2", "fd00::2"); err != nil {
			t.Fatalf("ping -6 gateway: %v\n%s", err, out)
		}
		out, err := e.guest.Run("sh", "-c", "curl -6 -sSf --max-time 60 'http://["+fwdPeer6+"]:8080/big' | sha256sum")
		if err != nil || !strings.HasPrefix(out, want) {
			t.Fatalf("curl -6 32 MiB: %v: %s (want %s)", err, out, want)
		}
		out, err = e.guest.Run("sh", "-c", "head -c 20000000 /dev/zero | curl -6 -sSf --max-time 60 --data-binary @- 'http://["+fwdPeer6+"]:8080/echo' | wc -c")
		if err != nil || strings.TrimSpace(out) != "20000000" {
			t.Fatalf("curl -6 upload: %v: %s", err, out)
		}
		// The guest's source is its IPv6 address, relayed from the
		// host's: the peer sees fd77::2.
		ln := kernelListen(t, e.peer, "["+fwdPeer6+"]:9011")
		peerSaw := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peerSaw <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}()
		c, err := guestDial(e.guest, "["+fwdPeer6+"]:9011")
		if err != nil {
			t.Fatal(err)
		}
		if la := c.LocalAddr().(*net.TCPAddr).IP.String(); la != "fd00::100" {
			t.Errorf("guest's source %s, want fd00::100", la)
		}
		c.Close()
		if got := <-peerSaw; got != "fd77::2" {
			t.Errorf("peer saw %s, want the host's fd77::2", got)
		}
		// Refused over IPv6: a RST passed on.
		if _, err := guestDial(e.guest, "["+fwdPeer6+"]:9999"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("closed port over IPv6: %v", err)
		}
		// UDP6 echo, several datagrams of one flow.
		var udp net.PacketConn
		if err := e.peer.Do(func() (err error) { udp, err = net.ListenPacket("udp6", "["+fwdPeer6+"]:9014"); return }); err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		go func() {
			buf := make([]byte, 70000)
			for {
				n, from, err := udp.ReadFrom(buf)
				if err != nil {
					return
				}
				udp.WriteTo(append([]byte("peer6:"), buf[:n]...), from)
			}
		}()
		var uc net.Conn
		if err := e.guest.Do(func() (err error) { uc, err = net.Dial("udp6", "["+fwdPeer6+"]:9014"); return }); err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		for i, size := range []int{1, 1200, 8000} {
			msg := bytes.Repeat([]byte{byte('a' + i)}, size)
			ok := false
			for try := 0; try < 5 && !ok; try++ {
				uc.Write(msg)
				uc.SetReadDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 70000)
				n, err := uc.Read(buf)
				ok = err == nil && bytes.Equal(buf[:n], append([]byte("peer6:"), msg...))
			}
			if !ok {
				t.Fatalf("udp6 echo of %d bytes: no answer", size)
			}
		}
		// The IPv6 gateway stands for the host's ::1.
		hl := kernelListen(t, e.host, "[::1]:9015")
		go func() {
			c, err := hl.Accept()
			if err == nil {
				c.Write([]byte("host loopback6"))
				c.Close()
			}
		}()
		lc, err := guestDial(e.guest, "[fd00::2]:9015")
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		lc.SetDeadline(time.Now().Add(10 * time.Second))
		if out, err := io.ReadAll(lc); err != nil || string(out) != "host loopback6" {
			t.Fatalf("fd00::2 → ::1: %q %v", out, err)
		}
		// Port forwards given no address listen in both families: the
		// host's [::1]:18080 reaches the guest's [fd00::100]:8080, from
		// the gateway fd00::2; and UDP likewise.
		gl := kernelListen(t, e.guest, "[fd00::100]:8080")
		go func() {
			c, err := gl.Accept()
			if err == nil {
				c.Write([]byte("from " + c.RemoteAddr().(*net.TCPAddr).IP.String()))
				c.Close()
			}
		}()
		hc6, err := kernelDial(e.host, "[::1]:18080", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer hc6.Close()
		hc6.SetDeadline(time.Now().Add(10 * time.Second))
		if out, err := io.ReadAll(hc6); err != nil || string(out) != "from fd00::2" {
			t.Fatalf("-t 18080:8080 over IPv6: %q %v", out, err)
		}
		udpPortForward(t, e, "udp6", "[fd00::100]:5353", "[::1]:18053")
	})
	st := e.stop(t)
	t.Logf("counters: %v", st)
	if st["Fwd.TCPRefusedCap"] == 0 {
		t.Errorf("the SYN flood was not refused by the cap: %v", st)
	}
	if st["Fwd.UDPFlows"] < 50 || st["Fwd.TCPAccepted"] < 200 {
		t.Errorf("counters %v", st)
	}
	if st["Net.Icmp6OutEchoReplies"] < 4 || st["UDP6.InDatagrams"] < 3 {
		t.Errorf("IPv6 counters %v: want the ping -6 replies and the UDP6 datagrams", st)
	}
}

// udpPortForward checks a UDP port forward (-u 18053:5353) of network:
// a datagram from the host to hostAddr reaches a guest socket on
// guestAddr, whose answer comes back.
func udpPortForward(t *testing.T, e *forwardEnv, network, guestAddr, hostAddr string) {
	t.Helper()
	var gu net.PacketConn
	if err := e.guest.Do(func() (err error) { gu, err = net.ListenPacket(network, guestAddr); return }); err != nil {
		t.Fatal(err)
	}
	defer gu.Close()
	go func() {
		buf := make([]byte, 100)
		n, from, err := gu.ReadFrom(buf)
		if err == nil {
			gu.WriteTo(append([]byte("guest:"), buf[:n]...), from)
		}
	}()
	var hc net.Conn
	if err := e.host.Do(func() (err error) { hc, err = net.Dial(network, hostAddr); return }); err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hc.Write([]byte("hi"))
	hc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	if n, err := hc.Read(buf); err != nil || string(buf[:n]) != "guest:hi" {
		t.Fatalf("%s through -u %s: %q %v", network, hostAddr, buf[:n], err)
	}
}

// TestForwardUserNamespace: the rootless recipe — a shell in a new user
// and network namespace (`unshare -Urn`), given networking by `ustack
// forward PID` run from outside, which enters both namespaces through its
// helper (a multithreaded Go program cannot setns into a user
// namespace). It runs as root here, in a user namespace of root's own;
// README shows the same for an unprivileged user.
func TestForwardUserNamespace(t *testing.T) {
	netnstest.Skip(t, true)
	netnstest.NeedCommands(t, "nsenter", "unshare", "curl")
	pair := netnstest.Pair(t, netns.PairConfig{Prefix: "ustack-fwdu-", PeerOffloads: true})
	host, peer := pair.DUT, pair.Peer
	if err := host.IP("addr", "add", "10.77.0.2/24", "dev", pair.DUTIf); err != nil {
		t.Fatal(err)
	}
	serveFwdHTTP(t, peer, fwdPeer+":8080")
	// The "container": a shell waiting in its own user and network
	// namespaces, started inside host (so its traffic, relayed by the
	// host's sockets, leaves through host's veth).
	sh := startProc(t, host, nil, nil, "unshare", "-Urn", "sh", "-c", "echo pid=$$; exec sleep 600")
	pid, _ := strconv.Atoi(sh.waitOutput(t, `pid=(\d+)`, 10*time.Second)[1])
	fwd := startProc(t, host, nil, nil, ustackCommand(t), "forward", "--configure", "--disable-dns", strconv.Itoa(pid))
	fwd.waitOutput(t, `guest 10\.0\.2\.100`, 20*time.Second)
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-U", "-n", "--preserve-credentials",
		"sh", "-c", "curl -sSf --max-time 60 http://"+fwdPeer+":8080/big | sha256sum").CombinedOutput()
	sum := sha256.Sum256(body())
	if err != nil || !strings.HasPrefix(string(out), hex.EncodeToString(sum[:])) {
		t.Fatalf("curl in the user namespace: %v %s\nforward: %s", err, out, fwd.output())
	}
	if err := fwd.stop(); err != nil {
		t.Fatalf("forward: %v\n%s", err, fwd.output())
	}
}
