package stack_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

// TestErrWouldBlock: every socket call that would have to wait — a TCP
// read with nothing received, a TCP write with the send buffer full, a
// UDP read with no datagram — returns the stack's ErrWouldBlock (not the
// TCP core's: the stack translates), which errors.Is matches with
// syscall.EAGAIN and with tcp.ErrWouldBlock.
func TestErrWouldBlock(t *testing.T) {
	n, a, b := pair(t, stack.Config{}, stack.Config{})
	c, s, _ := connect(t, n, b, a, 80)
	check := func(what string, err error) {
		t.Helper()
		if err != stack.ErrWouldBlock {
			t.Errorf("%s: %v (%T), want stack.ErrWouldBlock", what, err, err)
		}
	}
	_, err := c.Read(make([]byte, 10))
	check("TCP read, nothing received", err)
	s.SetWriteBuffer(4096)
	for range 1000 {
		if _, err = s.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	check("TCP write, send buffer full", err)
	u, err := a.Stack.BindUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 53))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = u.ReadFrom(make([]byte, 10))
	check("UDP read, no datagram", err)

	for _, target := range []error{syscall.EAGAIN, tcp.ErrWouldBlock, stack.ErrWouldBlock} {
		if !errors.Is(stack.ErrWouldBlock, target) {
			t.Errorf("errors.Is(stack.ErrWouldBlock, %v) is false", target)
		}
	}
	if errors.Is(stack.ErrWouldBlock, syscall.ECONNRESET) || errors.Is(stack.ErrWouldBlock, tcp.ErrConnReset) {
		t.Error("stack.ErrWouldBlock matches an unrelated error")
	}
}
