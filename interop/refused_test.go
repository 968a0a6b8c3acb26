package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRefused: a connection to a port nobody listens on is refused with a
// RST both ways (RFC 9293 §3.10.7.1): the kernel's curl reports
// "Connection refused", and the stack's Dial returns ECONNREFUSED.
func TestRefused(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "curl")
		e := newEnv(t, kind, envConfig{})
		out, err := run(e.kernel, 30*time.Second, "curl", "-sS", "-v", "--max-time", "10", fmt.Sprintf("http://%v:81/", stackAddr.Addr()))
		if err == nil || !strings.Contains(out, "Connection refused") {
			t.Errorf("curl to a closed port of the stack: %v\n%s", err, out)
		}
		if n := e.s.Stats().TCP.NoListener; n == 0 {
			t.Error("the stack counted no segment for a closed port")
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := e.s.DialContext(ctx, "tcp", fmt.Sprintf("%v:81", kernelAddr.Addr()))
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("the stack's dial to a closed port of the kernel: %v, want ECONNREFUSED", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("the error is not a *net.OpError from dial: %#v", err)
		}
	})
}

// TestBacklogFull: a kernel listener with a backlog of 1 that never
// accepts. Its accept queue takes backlog+1 connections (Linux's
// sk_acceptq_is_full is "more than backlog"); after that the kernel drops
// SYNs (ListenOverflows, ListenDrops), so the stack's further dials
// retransmit their SYN until their context expires. The first dials
// succeed.
func TestBacklogFull(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind)
		e := newEnv(t, kind, envConfig{})
		var fd int
		if err := e.kernel.Do(func() error {
			var err error
			if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
				return err
			}
			sa := &unix.SockaddrInet4{Port: 5005, Addr: kernelAddr.Addr().As4()}
			if err := unix.Bind(fd, sa); err != nil {
				return err
			}
			return unix.Listen(fd, 1)
		}); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		before := nstat(t, e.kernel)
		const dials = 4
		var ok, timedOut int
		var pattern []string
		for i := range dials {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			c, err := e.s.DialContext(ctx, "tcp", fmt.Sprintf("%v:5005", kernelAddr.Addr()))
			cancel()
			switch {
			case err == nil:
				ok++
				pattern = append(pattern, "ok")
				defer c.Close()
				if i > 0 && timedOut > 0 {
					t.Errorf("dial %d succeeded after an earlier one timed out", i)
				}
			case isTimeout(err):
				timedOut++
				pattern = append(pattern, "timeout")
			default:
				t.Errorf("dial %d: %v, want success or a timeout", i, err)
				pattern = append(pattern, "error")
			}
		}
		after := nstat(t, e.kernel)
		d := delta(before, after, "TcpExtListenOverflows", "TcpExtListenDrops")
		t.Logf("dials: %s; kernel: %v", strings.Join(pattern, ", "), d)
		if ok < 1 || timedOut < 1 || ok+timedOut != dials {
			t.Errorf("dials to a full backlog: %s; want the first to succeed and the last to time out", strings.Join(pattern, ", "))
		}
		if d["TcpExtListenOverflows"] == 0 {
			t.Errorf("the kernel counted no listen overflow: %v", d)
		}
	})
}
