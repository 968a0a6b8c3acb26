package interop

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestUDPFragments: 8 KiB UDP datagrams, which the kernel fragments to
// fit the 1500-byte MTU, are reassembled by the stack (RFC 791 §3.2,
// RFC 815); the stack echoes them, fragmenting them itself, and the
// kernel reassembles them. Both sides' counters show the fragments.
func TestUDPFragments(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind)
		e := newEnv(t, kind, envConfig{})
		pc, err := e.s.ListenPacket("udp", ":7")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() { // UDP echo on the stack
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], from)
			}
		}()
		var kc net.Conn
		if err := e.kernel.Do(func() error {
			var err error
			kc, err = net.Dial("udp", fmt.Sprintf("%v:7", stackAddr.Addr()))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer kc.Close()

		before := nstat(t, e.kernel)
		sb := e.s.Stats().Net
		const count, size = 20, 8192
		got := 0
		buf := make([]byte, 65536)
		for i := range count {
			msg := make([]byte, size)
			io.ReadFull(stream(uint64(100+i), size), msg)
			// A datagram (or a fragment) can be lost on a busy host: try
			// each up to three times.
			for try := 0; try < 3; try++ {
				if _, err := kc.Write(msg); err != nil {
					t.Fatal(err)
				}
				kc.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := kc.Read(buf)
				if err != nil {
					continue
				}
				if !bytes.Equal(buf[:n], msg) {
					t.Fatalf("datagram %d came back as %d different bytes", i, n)
				}
				got++
				break
			}
		}
		after := nstat(t, e.kernel)
		sa := e.s.Stats().Net
		kd := delta(before, after, "IpFragOKs", "IpFragCreates", "IpReasmOKs", "IpReasmFails")
		t.Logf("%d of %d datagrams of %d bytes echoed; kernel %v; stack reassembled %d, fragmented %d into %d",
			got, count, size, kd, sa.ReasmOKs-sb.ReasmOKs, sa.FragOKs-sb.FragOKs, sa.FragCreates-sb.FragCreates)
		if got != count {
			t.Errorf("%d of %d datagrams echoed", got, count)
		}
		if sa.ReasmOKs-sb.ReasmOKs < count || sa.FragOKs-sb.FragOKs < count || kd["IpReasmOKs"] < count || kd["IpFragOKs"] < count {
			t.Errorf("the datagrams were not fragmented and reassembled both ways")
		}
		if sa.ReasmFails != sb.ReasmFails {
			t.Errorf("the stack failed %d reassemblies", sa.ReasmFails-sb.ReasmFails)
		}
	})
}
