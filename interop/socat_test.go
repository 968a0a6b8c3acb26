package interop

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/tcp"
)

// socat options for the kernel's side: large buffers, and after one
// direction ends, five minutes for the other one to finish (socat's
// default, half a second, would cut a half-closed stream short).
var socatOpts = []string{"-b", "262144", "-t", "300"}

const (
	// cubicOpt sets TCP_CONGESTION on a socat connection (level 6 =
	// IPPROTO_TCP, option 13 = TCP_CONGESTION).
	cubicOpt = "setsockopt-string=6:13:cubic"
	// cubicListenOpt does it on a socat listener, whose connections
	// inherit it ("cubic" in hex).
	cubicListenOpt = "setsockopt-listen=6:13:x6375626963"
)

// result is what one side of a transfer saw.
type result struct {
	n   int64
	sum [32]byte
	err error
}

// TestSocatBothWays: socat in the kernel's namespace and a server on the
// stack stream 200 MiB to each other at the same time over one
// connection; both directions arrive intact (SHA-256).
func TestSocatBothWays(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "socat")
		e := newEnv(t, kind, envConfig{})
		const size = 200 * mib
		ln, err := e.s.Listen("tcp", ":5001")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan result, 1)
		sent := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- result{err: err}
				sent <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Minute))
			sendDone := make(chan error, 1)
			go func() {
				_, err := io.CopyBuffer(c, stream(2, size), make([]byte, 256<<10))
				if err == nil {
					err = c.(*ustack.TCPConn).CloseWrite()
				}
				sendDone <- err
			}()
			n, sum, err := hashReader(c)
			got <- result{n, sum, err}
			// Close only once our own send is done: the kernel's
			// direction may end first.
			sent <- <-sendDone
		}()

		kh := sha256.New()
		kc := &countWriter{w: kh}
		t0 := time.Now()
		p := startProc(t, e.kernel, stream(1, size), kc, "socat",
			append(socatOpts, "-", fmt.Sprintf("TCP:%v:5001,%s", stackAddr.Addr(), cubicOpt))...)
		if err := p.wait(6 * time.Minute); err != nil {
			t.Fatalf("socat: %v\n%s", err, p.output())
		}
		d := time.Since(t0)
		var ksum [32]byte
		kh.Sum(ksum[:0])
		r := <-got
		if err := <-sent; err != nil {
			t.Errorf("the stack's send: %v", err)
		}
		if r.err != nil || r.n != size || r.sum != streamSum(1, size) {
			t.Errorf("kernel -> stack: the stack got %d of %d bytes (%v), SHA-256 %s, want %s", r.n, size, r.err, short(r.sum), short(streamSum(1, size)))
		}
		if kc.n != size || ksum != streamSum(2, size) {
			t.Errorf("stack -> kernel: socat got %d of %d bytes, SHA-256 %s, want %s", kc.n, size, short(ksum), short(streamSum(2, size)))
		}
		t.Logf("200 MiB each way at once in %v (%.0f Mbit/s each way)", d.Round(time.Millisecond), mbps(size, d))
	})
}

// kernelSockets lists the kernel's TCP sockets in state (an ss state
// filter, e.g. "fin-wait-2") towards the stack.
func kernelSockets(e *env, state string) string {
	out, _ := run(e.kernel, 10*time.Second, "ss", "-Htn", "state", state, "dst", stackAddr.Addr().String())
	return strings.TrimSpace(out)
}

// TestHalfClose: each side in turn shuts down its sending direction
// (shutdown(SHUT_WR), CloseWrite) while the other keeps sending; the side
// that closed first keeps receiving until the other closes too (RFC 9293
// §3.6: a half-closed connection).
func TestHalfClose(t *testing.T) {
	const small, big = 1 * mib, 16 * mib
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "socat", "ss")
		e := newEnv(t, kind, envConfig{})

		// 1. The kernel (socat, at the end of its input) closes first;
		// the stack sees EOF while it is still sending, and sends the
		// second half of its data in CLOSE-WAIT.
		t.Run("kernel-first", func(t *testing.T) {
			ln, err := e.s.Listen("tcp", ":5003")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type stackSide struct {
				got           result
				stateAfterEOF tcp.State
				kernelState   string
				sendErr       error
			}
			done := make(chan stackSide, 1)
			go func() {
				var ss stackSide
				defer func() { done <- ss }()
				c, err := ln.Accept()
				if err != nil {
					ss.got.err = err
					return
				}
				tc := c.(*ustack.TCPConn)
				defer tc.Close()
				tc.SetDeadline(time.Now().Add(3 * time.Minute))
				data := stream(3, big)
				if _, err := io.CopyN(tc, data, big/2); err != nil {
					ss.sendErr = err
					return
				}
				ss.got.n, ss.got.sum, ss.got.err = hashReader(tc) // until the kernel's FIN
				ss.stateAfterEOF = tc.Info().State
				ss.kernelState = kernelSockets(e, "fin-wait-2")
				if _, err := io.Copy(tc, data); err != nil {
					ss.sendErr = err
					return
				}
				ss.sendErr = tc.CloseWrite()
			}()
			kh := sha256.New()
			kc := &countWriter{w: kh}
			p := startProc(t, e.kernel, stream(4, small), kc, "socat",
				append(socatOpts, "-", fmt.Sprintf("TCP:%v:5003,%s", stackAddr.Addr(), cubicOpt))...)
			if err := p.wait(4 * time.Minute); err != nil {
				t.Fatalf("socat: %v\n%s", err, p.output())
			}
			ss := <-done
			if ss.got.err != nil || ss.got.n != small || ss.got.sum != streamSum(4, small) {
				t.Errorf("the stack got %d of %d bytes before EOF (%v)", ss.got.n, small, ss.got.err)
			}
			if ss.stateAfterEOF != tcp.CloseWait {
				t.Errorf("the stack's connection after the kernel's FIN: %v, want CLOSE-WAIT", ss.stateAfterEOF)
			}
			if ss.kernelState == "" {
				t.Errorf("the kernel's socket was not in FIN-WAIT-2 while the stack still sent")
			}
			if ss.sendErr != nil {
				t.Errorf("the stack's sending after EOF: %v", ss.sendErr)
			}
			var ksum [32]byte
			kh.Sum(ksum[:0])
			if kc.n != big || ksum != streamSum(3, big) {
				t.Errorf("socat got %d of %d bytes after closing its side", kc.n, big)
			}
		})

		// 2. The stack closes first (CloseWrite after a little data);
		// the kernel (socat, listening) sees EOF while it is still
		// sending, and sends the rest in CLOSE-WAIT.
		t.Run("stack-first", func(t *testing.T) {
			pr, pw := io.Pipe()
			kh := sha256.New()
			kc := &countWriter{w: kh}
			p := startProc(t, e.kernel, pr, kc, "socat",
				append(socatOpts, fmt.Sprintf("TCP-LISTEN:5004,bind=%v,reuseaddr,%s", kernelAddr.Addr(), cubicListenOpt), "-")...)
			// socat's input: half now, the rest once the kernel's
			// socket is in CLOSE-WAIT (it has the stack's FIN).
			closeWait := make(chan string, 1)
			go func() {
				data := stream(5, big)
				io.CopyN(pw, data, big/2)
				var st string
				waitFor(3*time.Minute, func() bool {
					st = kernelSockets(e, "close-wait")
					return st != ""
				})
				closeWait <- st
				io.Copy(pw, data)
				pw.Close()
			}()
			defer pw.Close()
			var c *ustack.TCPConn
			if !waitFor(20*time.Second, func() bool {
				conn, err := e.s.Dial("tcp", fmt.Sprintf("%v:5004", kernelAddr.Addr()))
				if err == nil {
					c = conn.(*ustack.TCPConn)
				}
				return err == nil
			}) {
				t.Fatalf("the stack could not connect to socat:\n%s", p.output())
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Minute))
			if _, err := io.Copy(c, stream(6, small)); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// Until socat has seen the FIN, read what comes.
			h := sha256.New()
			buf := make([]byte, 64<<10)
			var n int64
			var stackState tcp.State
			seen := false
			for {
				k, err := c.Read(buf)
				h.Write(buf[:k])
				n += int64(k)
				if !seen && n > big/2 {
					// The second half flows: ours is in FIN-WAIT-2.
					stackState, seen = c.Info().State, true
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("the stack's read after %d bytes: %v", n, err)
				}
			}
			var sum [32]byte
			h.Sum(sum[:0])
			if n != big || sum != streamSum(5, big) {
				t.Errorf("the stack got %d of %d bytes after closing its side", n, big)
			}
			if st := <-closeWait; st == "" {
				t.Errorf("the kernel's socket did not reach CLOSE-WAIT while it still had data to send")
			}
			if stackState != tcp.FinWait2 {
				t.Errorf("the stack's connection while the kernel still sent: %v, want FIN-WAIT-2", stackState)
			}
			if err := p.wait(time.Minute); err != nil {
				t.Errorf("socat: %v\n%s", err, p.output())
			}
			var ksum [32]byte
			kh.Sum(ksum[:0])
			if kc.n != small || ksum != streamSum(6, small) {
				t.Errorf("socat got %d of %d bytes before EOF", kc.n, small)
			}
		})
	})
}
