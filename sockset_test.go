package ustack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/tcp"
)

// socksLen returns how many sockets s's shards keep in their socket sets
// (shard.socks) for Stack.Close.
func socksLen(s *Stack) int {
	k := 0
	for _, sh := range s.shards {
		sh.mu.Lock()
		k += len(sh.socks)
		sh.mu.Unlock()
	}
	return k
}

// TestCallbackConnSize pins CallbackConn to the 48-byte size class: an
// idle callback end pays for all of it (docs/ARCHITECTURE.md, "Memory per
// connection"). It was 72 bytes (the 80-byte class) with a shard pointer
// and its close cause an error field.
func TestCallbackConnSize(t *testing.T) {
	if n := unsafe.Sizeof(CallbackConn{}); n > 48 {
		t.Errorf("CallbackConn is %d bytes, over its 48-byte budget (the next size class is 64)", n)
	}
	if n := unsafe.Sizeof(TCPConn{}); n > 96 {
		t.Errorf("TCPConn is %d bytes, over its 96-byte budget (the next size class is 112)", n)
	}
}

// TestStackCloseParkedEnds: the shards keep no socket-set entry per TCP
// connection (only listeners, and a net.Conn whose connection ended
// before the program closed it), and Stack.Close still closes every end
// through the core's table: parked callback ends (accepted and dialled)
// hear OnClose(net.ErrClosed) by its return, readers blocked on parked
// net.Conns return net.ErrClosed, and so do later calls on a net.Conn in
// TIME-WAIT and on one the peer reset (out of the core's table, not
// closed by the program); a callback end in TIME-WAIT hears
// OnClose(net.ErrClosed) too. A dial that fails leaves nothing in the
// set. No goroutine is left.
func TestStackCloseParkedEnds(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		const ends = 16 // of each kind
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		var (
			mu     sync.Mutex
			bConns []net.Conn // B's ends, closed at the end
		)
		keep := func(c net.Conn) {
			mu.Lock()
			bConns = append(bConns, c)
			mu.Unlock()
		}
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range bConns {
				c.Close()
			}
		}()
		// B: :82 accepts and keeps, :83 reads to EOF and closes (its
		// peer on A, which closed first, goes to TIME-WAIT).
		serve := func(port string, each func(c net.Conn)) {
			ln, err := n.B.Listen("tcp", port)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return // Stack.Close of B
					}
					keep(c)
					go each(c)
				}
			}()
		}
		serve(":82", func(net.Conn) {})
		serve(":83", func(c net.Conn) {
			io.Copy(io.Discard, c)
			c.Close()
		})

		// A: callback ends accepted on :80 and dialled to B:82; net.Conn
		// ends accepted on :81, each with a blocked reader.
		acc, dialled := newRecorder(t), newRecorder(t)
		if _, err := n.A.ListenCallback("tcp", ":80", acc); err != nil {
			t.Fatal(err)
		}
		ln, err := n.A.ListenTCP("tcp", ":81", 0)
		if err != nil {
			t.Fatal(err)
		}
		for range ends {
			c, err := n.B.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			keep(c)
			if _, err := n.A.DialCallback(netip.AddrPort{}, netip.AddrPortFrom(ipB, 82), dialled); err != nil {
				t.Fatal(err)
			}
		}
		var aConns, peers []*TCPConn
		for range ends + 2 {
			c, err := n.B.Dial("tcp", "10.0.0.1:81")
			if err != nil {
				t.Fatal(err)
			}
			keep(c)
			peers = append(peers, c.(*TCPConn))
			s, err := ln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			aConns = append(aConns, s)
		}
		// Two of them are reset by the peer: one the program then
		// closes, one it keeps.
		resetKept, resetClosed := aConns[ends], aConns[ends+1]
		aConns = aConns[:ends]
		for _, c := range peers[ends:] {
			c.SetLinger(0)
			c.Close()
		}
		for _, c := range []*TCPConn{resetKept, resetClosed} {
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after the peer's reset: %v, want ECONNRESET", err)
			}
		}
		resetClosed.Close()
		// TIME-WAIT on A: a net.Conn and a callback end close their
		// sending half first, the peer then closes.
		tw, err := n.A.DialTCP(t.Context(), netip.AddrPort{}, netip.AddrPortFrom(ipB, 83))
		if err != nil {
			t.Fatal(err)
		}
		tw.CloseWrite()
		twRec := newRecorder(t)
		twRec.open = func(c *CallbackConn) { c.CloseWrite() }
		if _, err := n.A.DialCallback(netip.AddrPort{}, netip.AddrPortFrom(ipB, 83), twRec); err != nil {
			t.Fatal(err)
		}
		// A dial that fails leaves nothing behind.
		if _, err := n.A.Dial("tcp", "10.0.0.2:9"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial to a closed port: %v, want ECONNREFUSED", err)
		}

		readErrs := make(chan error, ends)
		for _, c := range aConns {
			go func() {
				_, err := c.Read(make([]byte, 1))
				readErrs <- err
			}()
		}
		time.Sleep(parkWait)
		synctest.Wait()
		if got := parked(n.A); got < 3*ends {
			t.Fatalf("A parked %d connections, want %d at least", got, 3*ends)
		}
		if info := tw.Info(); info.State != tcp.TimeWait {
			t.Fatalf("net.Conn that closed first: %v, want TIME-WAIT", info.State)
		}
		if len(twRec.closed) != 0 || len(acc.closed) != 0 || len(dialled.closed) != 0 {
			t.Fatalf("OnClose before Stack.Close")
		}
		// Two listeners with a part in each shard, and the net.Conn
		// whose connection the peer reset, which the program keeps.
		if got, want := socksLen(n.A), 2*len(n.A.shards)+1; got != want {
			t.Errorf("A's shards keep %d sockets in their sets, want %d (listeners and the ended net.Conn)", got, want)
		}

		n.A.Close()
		for _, r := range []*recorder{acc, dialled, twRec} {
			want := ends
			if r == twRec {
				want = 1
			}
			if len(r.closed) != want {
				t.Fatalf("%d callback ends heard OnClose by Stack.Close's return, want %d", len(r.closed), want)
			}
			for range want {
				if err := r.closeErr[<-r.closed]; !errors.Is(err, net.ErrClosed) {
					t.Errorf("OnClose(%v), want net.ErrClosed", err)
				}
			}
		}
		for range ends {
			if err := <-readErrs; !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked read on a parked net.Conn after Stack.Close: %v, want net.ErrClosed", err)
			}
		}
		for _, c := range []*TCPConn{tw, resetKept} {
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("read after Stack.Close: %v, want net.ErrClosed", err)
			}
			if err := c.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Close after Stack.Close: %v, want net.ErrClosed", err)
			}
		}
	})
}
