package ustack

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link/pipe"
)

// echoRequest returns an ICMPv4 echo request with sequence number seq
// and data, built by golang.org/x/net/icmp as a program would (its
// identifier, 0, is the socket's to fill in).
func echoRequest(seq int, data []byte) []byte {
	b, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{Seq: seq, Data: data}}).Marshal(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// parseReply parses an echo reply read from a ping socket.
func parseReply(t *testing.T, b []byte) *icmp.Echo {
	t.Helper()
	m, err := icmp.ParseMessage(1, b)
	if err != nil {
		t.Fatalf("parse reply: %v", err)
	}
	e, ok := m.Body.(*icmp.Echo)
	if m.Type != ipv4.ICMPTypeEchoReply || !ok {
		t.Fatalf("not an echo reply: %+v", m)
	}
	return e
}

// TestPing: a dialed ping socket's Write and Read, and a listening one's
// WriteTo and ReadFrom (with *net.IPAddr and *net.UDPAddr, as
// golang.org/x/net/icmp passes), each get the peer's echo reply to the
// request they sent, with their own identifier, the sequence number and
// the data; the addresses are *net.IPAddr.
func TestPing(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		d, err := n.B.DialPing(netip.Addr{}, ipA)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if ra, ok := d.RemoteAddr().(*net.IPAddr); !ok || !ra.IP.Equal(net.IP(ipA.AsSlice())) {
			t.Errorf("RemoteAddr %v", d.RemoteAddr())
		}
		data := []byte("gopher burrow")
		if _, err := d.Write(echoRequest(42, data)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		k, err := d.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if e := parseReply(t, buf[:k]); e.ID != int(d.ID()) || e.Seq != 42 || !bytes.Equal(e.Data, data) {
			t.Errorf("reply %+v, want identifier %d, seq 42", e, d.ID())
		}

		l, err := n.B.ListenPing(ipB, 0x7777)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if la, ok := l.LocalAddr().(*net.IPAddr); !ok || !la.IP.Equal(net.IP(ipB.AsSlice())) || l.RemoteAddr() != nil {
			t.Errorf("LocalAddr %v RemoteAddr %v", l.LocalAddr(), l.RemoteAddr())
		}
		for i, to := range []net.Addr{&net.IPAddr{IP: ipA.AsSlice()}, &net.UDPAddr{IP: ipA.AsSlice()}} {
			if _, err := l.WriteTo(echoRequest(i, data), to); err != nil {
				t.Fatalf("WriteTo %T: %v", to, err)
			}
			k, from, err := l.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if fa, ok := from.(*net.IPAddr); !ok || !fa.IP.Equal(net.IP(ipA.AsSlice())) {
				t.Errorf("reply from %v", from)
			}
			if e := parseReply(t, buf[:k]); e.ID != 0x7777 || e.Seq != i {
				t.Errorf("reply %+v, want identifier 0x7777, seq %d", e, i)
			}
		}
		st := n.B.Stats()
		if st.Ping.OutRequests != 3 || st.Ping.InReplies != 3 || st.Net.OutEchos != 3 {
			t.Errorf("B's counters %v", st.Map())
		}
	})
}

// TestPingErrors: what the kernel refuses fails with its errno wrapped in
// a *net.OpError: a message that is not an echo request (EINVAL), an
// identifier in use (EADDRINUSE), an address of the other family
// (EAFNOSUPPORT); WriteTo on a dialed socket and Write on an undialed
// one fail as with package net's sockets; a passed write deadline fails
// with os.ErrDeadlineExceeded, a read deadline wakes a waiting read at
// its time; Close twice, calls after Close, and the stack's Close give
// net.ErrClosed.
func TestPingErrors(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		l, err := n.B.ListenPing(netip.Addr{}, 9)
		if err != nil {
			t.Fatal(err)
		}
		reply := echoRequest(1, nil)
		reply[0] = 0 // an echo reply
		_, err = l.WriteTo(reply, &net.IPAddr{IP: ipA.AsSlice()})
		checkErr(t, "WriteTo an echo reply", err, syscall.EINVAL)
		_, err = n.B.ListenPing(netip.Addr{}, 9)
		checkErr(t, "identifier in use", err, syscall.EADDRINUSE)
		_, err = n.B.DialPing(netip.IPv4Unspecified(), netip.MustParseAddr("2001:db8::1"))
		checkErr(t, "IPv4 socket to IPv6", err, syscall.EAFNOSUPPORT)
		_, err = l.WriteTo(echoRequest(1, nil), &net.IPAddr{IP: net.ParseIP("2001:db8::1")})
		checkErr(t, "WriteTo IPv6 from IPv4", err, syscall.EAFNOSUPPORT)
		if _, err := l.Write(echoRequest(1, nil)); err == nil {
			t.Error("Write on an undialed socket succeeded")
		}
		if _, err := l.WriteTo(echoRequest(1, nil), &net.TCPAddr{IP: ipA.AsSlice()}); err == nil {
			t.Error("WriteTo a *net.TCPAddr succeeded")
		}
		d, err := n.B.DialPing(netip.Addr{}, ipA)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.WriteTo(echoRequest(1, nil), &net.IPAddr{IP: ipA.AsSlice()}); err == nil {
			t.Error("WriteTo on a dialed socket succeeded")
		}
		d.SetWriteDeadline(time.Now())
		_, err = d.Write(echoRequest(1, nil))
		checkErr(t, "Write past the deadline", err, os.ErrDeadlineExceeded)

		start := time.Now()
		l.SetReadDeadline(start.Add(3 * time.Second))
		_, _, err = l.ReadFrom(make([]byte, 100))
		checkErr(t, "ReadFrom with nothing to read", err, os.ErrDeadlineExceeded)
		if waited := time.Since(start); waited != 3*time.Second {
			t.Errorf("read deadline passed after %v, want 3s", waited)
		}

		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkErr(t, "Close again", l.Close(), net.ErrClosed)
		_, _, err = l.ReadFrom(make([]byte, 10))
		checkErr(t, "ReadFrom after Close", err, net.ErrClosed)
		_, err = l.WriteTo(echoRequest(1, nil), &net.IPAddr{IP: ipA.AsSlice()})
		checkErr(t, "WriteTo after Close", err, net.ErrClosed)
		if _, err := n.B.ListenPing(netip.Addr{}, 9); err != nil {
			t.Errorf("identifier 9 after Close: %v", err)
		}

		errc := make(chan error, 1)
		go func() {
			_, err := d.Read(make([]byte, 100))
			errc <- err
		}()
		synctest.Wait()
		n.B.Close()
		checkErr(t, "Read across the stack's Close", <-errc, net.ErrClosed)
		_, err = n.B.ListenPing(netip.Addr{}, 0)
		checkErr(t, "ListenPing after the stack's Close", err, net.ErrClosed)
	})
}

// TestPingAllocs: a round trip through a ping socket's WriteToAddr and
// ReadFromAddr allocates nothing once warm (the stack's part is
// stack.TestZeroAllocsPingSocket; this is the runtime's).
func TestPingAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	n := newTestNet(t, pipe.Config{}, Config{})
	p, err := n.B.ListenPing(netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := echoRequest(1, make([]byte, 56))
	buf := make([]byte, 1500)
	round := func() {
		binary.BigEndian.PutUint16(req[6:], binary.BigEndian.Uint16(req[6:])+1)
		if _, err := p.WriteToAddr(req, ipA); err != nil {
			panic(err)
		}
		for {
			// Replies to earlier rounds may come first.
			k, _, err := p.ReadFromAddr(buf)
			if err != nil {
				panic(err)
			}
			if k == len(req) && bytes.Equal(buf[6:8], req[6:8]) {
				return
			}
		}
	}
	for range 100 {
		round()
	}
	if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
		t.Errorf("%.2f allocations per ping", allocs)
	}
}
