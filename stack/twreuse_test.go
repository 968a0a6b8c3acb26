package stack_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/wire"
)

// crrOnce opens a connection from client to l's port 80 on server,
// sends and answers one byte, and closes it client first, as the crr
// benchmark does; it runs until the server's end is gone, leaving the
// client's in TIME-WAIT, and returns the client's local port.
func crrOnce(t testing.TB, n *stacktest.Net, client *stacktest.Node, l *stack.TCPListener, raddr netip.AddrPort) uint16 {
	t.Helper()
	c, err := client.Stack.Connect(n.Now, netip.AddrPort{}, raddr)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	n.RunUntil(10*time.Second, func() bool { return c.State() == tcp.Established && l.Pending() > 0 })
	s := l.Accept()
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	n.RunUntil(10*time.Second, func() bool { k, _ := s.Read(b[:]); return k == 1 })
	if _, err := s.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	n.RunUntil(10*time.Second, func() bool { k, _ := c.Read(b[:]); return k == 1 })
	c.Close()
	n.RunUntil(10*time.Second, func() bool { _, err := s.Read(b[:]); return err != nil && !errors.Is(err, stack.ErrWouldBlock) })
	s.Close()
	n.RunUntil(10*time.Second, func() bool { return s.State() == tcp.Closed && c.State() == tcp.TimeWait })
	return c.LocalAddr().Port()
}

// TestTimeWaitReuse100k: 100,000 connections one after the other from one
// client to one server, each closed by the client first (so its end stays
// in TIME-WAIT for 60 s), through an ephemeral range of 1,000 ports: every
// port is taken over from TIME-WAIT about a hundred times (Linux's
// tcp_tw_reuse, Config.TimeWaitReuse), and every connection completes
// without a reset, a retransmission or a refused connect.
func TestTimeWaitReuse100k(t *testing.T) {
	const conns = 100_000
	n, a, b := pair(t, stack.Config{EphemeralPorts: [2]uint16{40000, 40999}}, stack.Config{})
	// Each connection takes a few round trips: a port comes back to the
	// range's turn after more than the 1 s reuse delay, and well before
	// its TIME-WAIT (60 s) has ended.
	n.Delay = time.Millisecond
	l, err := b.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]int{}
	for i := range conns {
		seen[crrOnce(t, n, a, l, ap(ipB, 80))]++
		if len(n.Log) > 1<<14 {
			n.Log = n.Log[:0] // only memory: nothing below reads it
		}
		if t.Failed() {
			t.Fatalf("connection %d failed", i)
		}
	}
	if len(seen) > 1000 {
		t.Fatalf("%d ports used, the range has 1000", len(seen))
	}
	ca, cb := a.Stack.Stats().TCP, b.Stack.Stats().TCP
	// Every connection after the first 60 s of TIME-WAIT-free ports took
	// one over.
	if ca.TWRecycled < conns-1000 {
		t.Errorf("client TWRecycled = %d, want at least %d", ca.TWRecycled, conns-1000)
	}
	if ca.ActiveOpens != conns || cb.PassiveOpens != conns {
		t.Errorf("ActiveOpens %d, PassiveOpens %d, want %d", ca.ActiveOpens, cb.PassiveOpens, conns)
	}
	for name, st := range map[string]tcp.Stats{"client": ca, "server": cb} {
		if st.OutRsts != 0 || st.AttemptFails != 0 || st.RetransSegs != 0 || st.PAWSEstab != 0 {
			t.Errorf("%s: OutRsts %d, AttemptFails %d, RetransSegs %d, PAWSEstab %d; want all 0",
				name, st.OutRsts, st.AttemptFails, st.RetransSegs, st.PAWSEstab)
		}
	}
}

// TestTimeWaitReuseOldDuplicate: with one ephemeral port, a second
// connection to the same server must wait for Config.TimeWaitReuse (1 s)
// after the first's last timestamp, then takes the 4-tuple over from
// TIME-WAIT with an ISS above the old SND.NXT (Linux: + 65537); a data
// segment of the old incarnation arriving then is dropped by PAWS and
// never reaches the reader, and the new connection's data still flows.
func TestTimeWaitReuseOldDuplicate(t *testing.T) {
	n, a, b := pair(t, stack.Config{EphemeralPorts: [2]uint16{40000, 40000}}, stack.Config{})
	l, err := b.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	start := len(n.Log)
	crrOnce(t, n, a, l, ap(ipB, 80))
	// The server's data segment of the first incarnation.
	old := frames(n, start, func(f *stacktest.Frame, d *stacktest.Decoded) bool {
		return f.From == b && d.TCP != nil && len(d.TCP.Payload) == 1
	})
	if len(old) != 1 {
		t.Fatalf("%d data segments from the server, want 1", len(old))
	}
	var firstSndNxt wire.Seq
	for _, c := range a.Stack.Conns() {
		firstSndNxt = c.Info.SndMax
	}
	if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80)); !errors.Is(err, stack.ErrNoPorts) {
		t.Fatalf("connect at once: %v, want ErrNoPorts (the port is in TIME-WAIT)", err)
	}
	n.RunFor(time.Second)
	c, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80))
	if err != nil {
		t.Fatalf("connect after 1 s: %v", err)
	}
	if got := a.Stack.Stats().TCP.TWRecycled; got != 1 {
		t.Errorf("TWRecycled = %d, want 1", got)
	}
	if iss := c.Info().SndUna; iss != firstSndNxt.Add(65537) {
		t.Errorf("ISS %v, want the old SND.NXT %v + 65537", iss, firstSndNxt)
	}
	n.RunUntil(10*time.Second, func() bool { return c.State() == tcp.Established && l.Pending() > 0 })
	s := l.Accept()
	pawsBefore := a.Stack.Stats().TCP.PAWSEstab
	a.Inject(old[0].Data)
	if got := a.Stack.Stats().TCP.PAWSEstab - pawsBefore; got != 1 {
		t.Errorf("PAWSEstab grew by %d for the old duplicate, want 1", got)
	}
	var buf [8]byte
	if k, err := c.Read(buf[:]); k != 0 || !errors.Is(err, stack.ErrWouldBlock) {
		t.Fatalf("read after the old duplicate: %d bytes (%v), want none", k, err)
	}
	if _, err := s.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	n.RunUntil(10*time.Second, func() bool {
		k, _ := c.Read(buf[:])
		got = append(got, buf[:k]...)
		return len(got) >= 3
	})
	if string(got) != "new" {
		t.Fatalf("read %q, want %q", got, "new")
	}
}

// TestTimeWaitReuseNeedsTimestamps: without timestamps PAWS cannot keep
// the old incarnation out, so a connection in TIME-WAIT keeps its 4-tuple
// (as in Linux); a negative Config.TimeWaitReuse turns reuse off.
func TestTimeWaitReuseNeedsTimestamps(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  stack.Config
	}{
		{"no timestamps", stack.Config{TCP: tcp.Config{NoTimestamps: true}}},
		{"reuse off", stack.Config{TimeWaitReuse: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.EphemeralPorts = [2]uint16{40000, 40000}
			n, a, b := pair(t, cfg, stack.Config{})
			l, err := b.Stack.Listen(ap(netip.IPv4Unspecified(), 80), 0)
			if err != nil {
				t.Fatal(err)
			}
			crrOnce(t, n, a, l, ap(ipB, 80))
			n.RunFor(10 * time.Second)
			if _, err := a.Stack.Connect(n.Now, netip.AddrPort{}, ap(ipB, 80)); !errors.Is(err, stack.ErrNoPorts) {
				t.Fatalf("connect after 10 s: %v, want ErrNoPorts", err)
			}
			// An explicit local port is refused the same way.
			conns := a.Stack.Conns()
			if len(conns) != 1 || conns[0].Info.State != tcp.TimeWait {
				t.Fatalf("conns %v, want one in TIME-WAIT", conns)
			}
			if _, err := a.Stack.Connect(n.Now, conns[0].Local, ap(ipB, 80)); !errors.Is(err, stack.ErrAddrInUse) {
				t.Fatalf("connect from the same port: %v, want ErrAddrInUse", err)
			}
			if got := a.Stack.Stats().TCP.TWRecycled; got != 0 {
				t.Errorf("TWRecycled = %d", got)
			}
		})
	}
}
