package ustack

import (
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/tcp"
)

// parkWait is how long the parking tests leave connections idle: past
// ParkIdle (1 s) and three RTOs (200 ms each at least).
const parkWait = 3 * time.Second

// parked returns how many connections s has parked now.
func parked(s *Stack) uint64 { return s.Stats().TCP.Parked }

// TestParkedNetConn: idle net.Conns are parked after a second (the stack
// counts them), and every call works on a parked one as on any: a read
// with a deadline times out (without unparking it: nothing is there to
// read), a write goes through and the peer reads it, TCP_INFO reports the
// connection as it was, SetNoDelay and SetKeepAlive apply, and a close
// reaches the peer as EOF. Between the calls the connections park again.
func TestParkedNetConn(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		c, srv := connPair(t, n)
		if _, err := c.Write([]byte("before")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		if k, err := io.ReadFull(srv, buf[:6]); k != 6 || err != nil {
			t.Fatalf("read %d, %v", k, err)
		}
		time.Sleep(100 * time.Millisecond) // the ACK of "before" arrives
		infoBefore := c.Info()
		time.Sleep(parkWait)
		synctest.Wait()
		if parked(n.A) != 1 || parked(n.B) != 1 {
			t.Fatalf("parked: A %d, B %d; want 1 each", parked(n.A), parked(n.B))
		}
		// A read with a deadline: the parked record answers EAGAIN, the
		// deadline ends the wait; the connection stays parked.
		unparks := n.B.Stats().TCP.Unparks
		srv.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := srv.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read with a deadline on a parked connection: %v", err)
		}
		srv.SetReadDeadline(time.Time{})
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read with a deadline on a parked connection: %v", err)
		}
		c.SetReadDeadline(time.Time{})
		if got := n.B.Stats().TCP.Unparks; got != unparks {
			t.Errorf("a read that found nothing unparked the connection (%d unparks, was %d)", got, unparks)
		}
		// TCP_INFO: unparks; the connection is what it was.
		info := c.Info()
		if info.State != tcp.Established || info.SndUna != infoBefore.SndUna || info.RcvNxt != infoBefore.RcvNxt ||
			info.BytesSent != infoBefore.BytesSent || info.RTT != infoBefore.RTT || info.CongestionControl != infoBefore.CongestionControl {
			t.Errorf("TCP_INFO of the parked connection %+v\nbefore parking %+v", info, infoBefore)
		}
		if n.B.Stats().TCP.Unparks == unparks {
			t.Errorf("TCP_INFO did not unpark the connection")
		}
		time.Sleep(parkWait)
		synctest.Wait()
		if parked(n.B) != 1 {
			t.Fatalf("not parked again after TCP_INFO: %d", parked(n.B))
		}
		// Options and a write: the peer reads it.
		if err := c.SetNoDelay(true); err != nil {
			t.Error(err)
		}
		if err := c.SetKeepAlive(true); err != nil {
			t.Error(err)
		}
		if _, err := c.Write([]byte("after")); err != nil {
			t.Fatal(err)
		}
		if k, err := io.ReadFull(srv, buf[:5]); k != 5 || err != nil || string(buf[:5]) != "after" {
			t.Fatalf("read %q, %v after the parked connection wrote", buf[:k], err)
		}
		time.Sleep(parkWait)
		synctest.Wait()
		if parked(n.A) != 1 || parked(n.B) != 1 {
			t.Fatalf("parked: A %d, B %d; want 1 each", parked(n.A), parked(n.B))
		}
		// Close: the parked peer reads EOF.
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if k, err := srv.Read(buf); k != 0 || err != io.EOF {
			t.Errorf("read after the peer closed: %d, %v; want EOF", k, err)
		}
		srv.Close()
		time.Sleep(parkWait)
		synctest.Wait()
		if parked(n.A) != 0 || parked(n.B) != 0 {
			t.Errorf("parked after close: A %d, B %d", parked(n.A), parked(n.B))
		}
	})
}

// TestParkedCallbackConn: a callback connection parks when idle and its
// peer's data unparks it and reaches OnReadable; a Write from outside the
// handler unparks it.
func TestParkedCallbackConn(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		r := newRecorder(t)
		r.echo()
		ln, err := n.A.ListenCallback("tcp", ":7", r)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := n.B.Dial("tcp", "10.0.0.1:7")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 10)
		for i := range 3 {
			time.Sleep(parkWait)
			synctest.Wait()
			if parked(n.A) != 1 || parked(n.B) != 1 {
				t.Fatalf("round %d: parked A %d, B %d; want 1 each", i, parked(n.A), parked(n.B))
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if k, err := io.ReadFull(c, buf[:4]); k != 4 || err != nil || string(buf[:4]) != "ping" {
				t.Fatalf("round %d: echo %q, %v", i, buf[:k], err)
			}
		}
		if st := n.A.Stats().TCP; st.Parks < 3 || st.Unparks < 3 {
			t.Errorf("server: %d parks, %d unparks; want 3 each at least", st.Parks, st.Unparks)
		}
	})
}

// TestParkRace: parking and unparking under the race detector, with
// concurrent calls from several goroutines on parked connections (reads
// with deadlines, writes, TCP_INFO, options) while the stacks' goroutines
// park and unpark them.
func TestParkRace(t *testing.T) {
	leaktest.Check(t)
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		const pairs = 4
		type pr struct{ c, srv *TCPConn }
		var ps []pr
		ln, err := n.A.ListenTCP("tcp", ":80", 0)
		if err != nil {
			t.Fatal(err)
		}
		for range pairs {
			accepted := acceptOne(t, ln)
			cc, err := n.B.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			sc := <-accepted
			ps = append(ps, pr{cc.(*TCPConn), sc.(*TCPConn)})
		}
		ln.Close()
		var wg sync.WaitGroup
		for i, p := range ps {
			// The reader echoes what arrives until EOF.
			wg.Go(func() {
				buf := make([]byte, 64)
				for {
					p.srv.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
					k, err := p.srv.Read(buf)
					if k > 0 {
						p.srv.Write(buf[:k])
					}
					if errors.Is(err, os.ErrDeadlineExceeded) {
						continue
					}
					if err != nil {
						return
					}
				}
			})
			// Another goroutine reads TCP_INFO and sets options now and
			// then.
			wg.Go(func() {
				for range 20 {
					time.Sleep(time.Duration(300+100*i) * time.Millisecond)
					p.c.Info()
					p.c.SetNoDelay(true)
					p.srv.Info()
				}
			})
			// The writer sends a ping at idle intervals that let both
			// ends park in between, and checks the echo.
			wg.Go(func() {
				buf := make([]byte, 8)
				for k := range 5 {
					time.Sleep(parkWait)
					msg := []byte{byte(i), byte(k), 'p', 'i', 'n', 'g'}
					if _, err := p.c.Write(msg); err != nil {
						t.Error(err)
						return
					}
					if m, err := io.ReadFull(p.c, buf[:len(msg)]); m != len(msg) || err != nil || string(buf[:m]) != string(msg) {
						t.Errorf("pair %d round %d: echo %q, %v", i, k, buf[:m], err)
						return
					}
				}
				p.c.Close()
			})
		}
		wg.Wait()
		for _, p := range ps {
			p.srv.Close()
		}
		if st := n.B.Stats().TCP; st.Parks == 0 || st.Unparks == 0 {
			t.Errorf("client stack: %d parks, %d unparks: nothing was parked", st.Parks, st.Unparks)
		}
	})
}
