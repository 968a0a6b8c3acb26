package interop

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPing: the kernel's ping reaches the stack, with small echoes and
// with echoes of 4000 bytes that the kernel fragments and the stack
// reassembles (and fragments back).
func TestPing(t *testing.T) {
	forLinks(t, []linkKind{tapLink, tunLink, afpacketLink}, func(t *testing.T, kind linkKind) {
		need(t, kind, "ping")
		e := newEnv(t, kind, envConfig{})
		for _, size := range []string{"56", "4000"} {
			out, err := run(e.kernel, 30*time.Second, "ping", "-c", "5", "-i", "0.2", "-W", "5", "-s", size, stackAddr.Addr().String())
			if err != nil {
				t.Fatalf("ping -s %s: %v", size, err)
			}
			if !strings.Contains(out, "5 packets transmitted, 5 received") {
				t.Errorf("ping -s %s:\n%s", size, out)
			}
		}
		st := e.s.Stats().Net
		t.Logf("stack: %d echo requests, %d replies; reassembled %d, fragments sent %d", st.InEchos, st.OutEchoReps, st.ReasmOKs, st.FragCreates)
		if st.InEchos < 10 || st.ReasmOKs < 5 || st.FragCreates < 10 {
			t.Errorf("stack counters: %+v", st)
		}
	})
}

// TestUDPPortUnreachable: a kernel UDP client's datagram to a port the
// stack does not listen on draws an ICMP port unreachable, which the
// kernel reports as ECONNREFUSED on the connected socket (RFC 1122
// §4.1.3.1, §3.2.2.1; udp(7)).
func TestUDPPortUnreachable(t *testing.T) {
	forLinks(t, []linkKind{tapLink, afpacketLink}, func(t *testing.T, kind linkKind) {
		need(t, kind)
		e := newEnv(t, kind, envConfig{})
		var c net.Conn
		if err := e.kernel.Do(func() error {
			var err error
			c, err = net.Dial("udp", fmt.Sprintf("%v:9999", stackAddr.Addr()))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The error comes back asynchronously: a later read (or write)
		// on the socket reports it. ICMP errors are rate limited, so a
		// lost one is retried after a pause.
		var err error
		for i := 0; i < 10; i++ {
			c.Write([]byte("anyone there?"))
			c.SetReadDeadline(time.Now().Add(time.Second))
			_, err = c.Read(make([]byte, 100))
			if errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("kernel UDP read after sending to a closed port of the stack: %v, want ECONNREFUSED", err)
		}
		if n := e.s.Stats().Net.OutDestUnreachs; n == 0 {
			t.Errorf("the stack counted no destination unreachable sent")
		}
	})
}
