package stack_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
	"github.com/ustack/ustack/tcp/cc"
)

// halfIW is a controller of this test's own: a fixed window of five
// segments.
type halfIW struct{ cc.Base }

func (halfIW) Name() string { return "stack-test-half" }
func (halfIW) Cwnd() uint32 { return 5 * 1460 }

func init() {
	if err := cc.Register("stack-test-half", func() cc.Controller { return halfIW{} }); err != nil {
		panic(err)
	}
}

// TestCongestionControlByName: the stack's TCP configuration names the
// controller of new connections (net.ipv4.tcp_congestion_control), a
// connection switches with SetCongestionControl (TCP_CONGESTION), an
// unknown name fails with ENOENT and changes nothing, and a stack whose
// configuration names an unknown one falls back to Reno.
func TestCongestionControlByName(t *testing.T) {
	n, a, b := knownPair(t, stack.Config{TCP: tcp.Config{Congestion: "stack-test-half"}})
	if got := a.Stack.TCPConfig().Congestion; got != "stack-test-half" {
		t.Fatalf("TCPConfig().Congestion = %q", got)
	}
	c, s, _ := connect(t, n, a, b, 80)
	if got := c.CongestionControl(); got != "stack-test-half" || c.Info().CongestionControl != got || c.Info().Cwnd != 5*1460 {
		t.Fatalf("client controller %q, Info %q, cwnd %d", got, c.Info().CongestionControl, c.Info().Cwnd)
	}
	err := c.SetCongestionControl("stack-test-none")
	if !errors.Is(err, syscall.ENOENT) || c.CongestionControl() != "stack-test-half" {
		t.Fatalf("unknown name: %v, controller now %q", err, c.CongestionControl())
	}
	data := payload(1, 300<<10)
	if got := transfer(t, n, c, s, data, time.Minute); !bytes.Equal(got, data) {
		t.Fatalf("transfer with the test controller: %d of %d bytes", len(got), len(data))
	}
	if err := c.SetCongestionControl("reno"); err != nil || c.Info().CongestionControl != "reno" {
		t.Fatalf("switch to reno: %v, %q", err, c.Info().CongestionControl)
	}
	if got := transfer(t, n, c, s, data, time.Minute); !bytes.Equal(got, data) {
		t.Fatalf("transfer after the switch: %d of %d bytes", len(got), len(data))
	}
	if got := stack.New(stack.Config{TCP: tcp.Config{Congestion: "stack-test-none"}}).TCPConfig().Congestion; got != cc.Default {
		t.Errorf("unknown configured controller: %q, want %q", got, cc.Default)
	}
}
