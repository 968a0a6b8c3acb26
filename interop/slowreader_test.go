package interop

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack"
)

// TestSlowReader: a reader that stops reading, on each side in turn,
// closes the window; the sender probes the zero window (RFC 9293
// §3.8.6.1, persist timer) until the reader resumes, and the transfer
// then completes intact.
func TestSlowReader(t *testing.T) {
	const size = 16 * mib
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "ss")
		e := newEnv(t, kind, envConfig{})

		// 1. The stack stops reading; the kernel probes.
		t.Run("stack-reads-slowly", func(t *testing.T) {
			ln, err := e.s.ListenTCP("tcp", ":5006", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			kc, err := kernelDial(e.kernel, fmt.Sprintf("%v:5006", stackAddr.Addr()), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			kc.SetDeadline(time.Now().Add(3 * time.Minute))
			sent := make(chan error, 1)
			go func() {
				_, err := io.Copy(kc, stream(7, size))
				if err == nil {
					err = kc.CloseWrite()
				}
				sent <- err
			}()
			c, err := ln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Minute))
			before := nstat(t, e.kernel)
			if !waitFor(time.Minute, func() bool { return c.Info().RcvWnd == 0 }) {
				t.Fatalf("the stack's window did not close: %+v", c.Info())
			}
			// The kernel's persist timer runs and its probes go out.
			var ss string
			probes := waitFor(time.Minute, func() bool {
				out, _ := run(e.kernel, 10*time.Second, "ss", "-tino", "state", "established", "dst", stackAddr.Addr().String())
				if strings.Contains(out, "persist") {
					ss = out
				}
				return ss != "" && nstat(t, e.kernel)["TcpExtTCPWinProbe"] > before["TcpExtTCPWinProbe"]+1
			})
			d := delta(before, nstat(t, e.kernel), "TcpExtTCPWinProbe")
			if !probes {
				t.Errorf("the kernel did not probe the zero window: ss shows %q, %v", ss, d)
			}
			t.Logf("kernel while the stack does not read: %v; ss: %s", d, strings.Join(strings.Fields(ss), " "))
			n, sum, err := hashReader(c)
			if err != nil || n != size || sum != streamSum(7, size) {
				t.Errorf("after resuming, the stack read %d of %d bytes (%v)", n, size, err)
			}
			if err := <-sent; err != nil {
				t.Errorf("the kernel's send: %v", err)
			}
		})

		// 2. The kernel stops reading; the stack probes.
		t.Run("kernel-reads-slowly", func(t *testing.T) {
			kln := kernelListen(t, e.kernel, fmt.Sprintf("%v:5007", kernelAddr.Addr()))
			before := e.s.Stats().TCP
			kbefore := nstat(t, e.kernel)
			conn, err := e.s.Dial("tcp", kln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := conn.(*ustack.TCPConn)
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Minute))
			sent := make(chan error, 1)
			go func() {
				_, err := io.Copy(c, stream(8, size))
				if err == nil {
					err = c.CloseWrite()
				}
				sent <- err
			}()
			kc, err := kln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			kc.SetDeadline(time.Now().Add(3 * time.Minute))
			if !waitFor(time.Minute, func() bool {
				return c.Info().SndWnd == 0 && e.s.Stats().TCP.ZeroWindowProbes >= before.ZeroWindowProbes+2
			}) {
				t.Errorf("the stack did not probe the kernel's zero window: %+v, %d probes", c.Info(), e.s.Stats().TCP.ZeroWindowProbes-before.ZeroWindowProbes)
			}
			kd := delta(kbefore, nstat(t, e.kernel), "TcpExtTCPToZeroWindowAdv", "TcpExtTCPWantZeroWindowAdv")
			if kd["TcpExtTCPToZeroWindowAdv"] == 0 {
				t.Errorf("the kernel did not advertise a zero window: %v", kd)
			}
			t.Logf("while the kernel does not read: the stack sent %d zero-window probes; kernel %v",
				e.s.Stats().TCP.ZeroWindowProbes-before.ZeroWindowProbes, kd)
			n, sum, err := hashReader(kc)
			if err != nil || n != size || sum != streamSum(8, size) {
				t.Errorf("after resuming, the kernel read %d of %d bytes (%v)", n, size, err)
			}
			if err := <-sent; err != nil {
				t.Errorf("the stack's send: %v", err)
			}
		})
	})
}
