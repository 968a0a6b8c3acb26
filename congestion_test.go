package ustack

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// TestSetCongestionControl: TCPConn.SetCongestionControl is
// TCP_CONGESTION — a registered name switches the connection's
// controller, an unknown one fails as setsockopt does (ENOENT in a
// *net.OpError) and changes nothing — and a stack configured with an
// unknown controller is refused by New.
func TestSetCongestionControl(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.A.Listen("tcp", ":7")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := acceptOne(t, ln)
		nc, err := n.B.Dial("tcp", "10.0.0.1:7")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c := nc.(*TCPConn)
		srv := <-accepted
		defer srv.Close()
		if got := c.CongestionControl(); got != "cubic" {
			t.Fatalf("default controller %q, want Linux's, cubic", got)
		}
		err = c.SetCongestionControl("no-such-cc")
		var op *net.OpError
		if !errors.Is(err, syscall.ENOENT) || !errors.As(err, &op) || op.Op != "set" || !strings.Contains(err.Error(), "setsockopt") {
			t.Fatalf("unknown controller: %v", err)
		}
		if err := c.SetCongestionControl("reno"); err != nil || c.Info().CongestionControl != "reno" {
			t.Fatalf("SetCongestionControl(reno) = %v, Info %q", err, c.Info().CongestionControl)
		}
		msg := bytes.Repeat([]byte("congestion "), 10_000)
		go func() {
			c.Write(msg)
			c.CloseWrite()
		}()
		got, err := io.ReadAll(srv)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	})
	_, err := New(Config{Config: stack.Config{TCP: tcp.Config{Congestion: "no-such-cc"}}})
	if !errors.Is(err, tcp.ErrUnknownCongestion) {
		t.Fatalf("New with an unknown controller: %v", err)
	}
}
