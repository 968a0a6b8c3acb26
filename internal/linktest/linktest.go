// Package linktest holds the checks the tests of link/tap and
// link/afpacket run against the Linux kernel: a stack on the link under
// test in one namespace, the kernel's stack in another, and traffic
// between them (ping, TCP both ways with SHA-256 checks).
package linktest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/gro"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/link"
)

// Stack starts a ustack.Stack on ep with addr, closed when the test ends
// (which closes ep too).
func Stack(t testing.TB, ep link.Endpoint, addr netip.Prefix) (*ustack.Stack, *ustack.NIC) {
	t.Helper()
	s, err := ustack.New(ustack.Config{})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nic, err := s.AddNIC(ep, ustack.NICConfig{Name: "test", Addrs: []netip.Prefix{addr}})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	return s, nic
}

// Ping pings addr from namespace ns, count times, and fails the test
// unless every reply came back.
func Ping(t testing.TB, ns *netns.NS, addr netip.Addr, count int) {
	t.Helper()
	out, err := ns.Run("ping", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2", addr.String())
	if err != nil {
		t.Fatalf("ping from the kernel: %v", err)
	}
	want := fmt.Sprintf("%d packets transmitted, %d received", count, count)
	if !bytes.Contains([]byte(out), []byte(want)) {
		t.Fatalf("ping: want %q in:\n%s", want, out)
	}
}

// payload returns size pseudo-random bytes.
func payload(size int, seed uint64) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// TCPBothWays runs three TCP transfers of size bytes between the kernel
// in ns (kernelAddr) and the stack s (stackAddr), checking every byte by
// SHA-256: the kernel uploads to a stack listener, the kernel downloads
// from it, and the stack dials a kernel listener and sends and receives at
// the same time (an echo).
func TCPBothWays(t testing.TB, ns *netns.NS, s *ustack.Stack, kernelAddr, stackAddr netip.Addr, size int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	up, down := payload(size, 1), payload(size, 2)

	ln, err := s.Listen("tcp", ":5001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int
		err error
	}
	srv := make(chan result, 2)
	go func() {
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				srv <- result{err: err}
				return
			}
			c.SetDeadline(deadline)
			// The first byte says what the kernel wants: 'u'pload or
			// 'd'ownload.
			var op [1]byte
			if _, err := io.ReadFull(c, op[:]); err != nil {
				c.Close()
				srv <- result{err: err}
				continue
			}
			if op[0] == 'u' {
				h := sha256.New()
				n, err := io.Copy(h, c)
				var r result
				copy(r.sum[:], h.Sum(nil))
				r.n, r.err = int(n), err
				c.Close()
				srv <- r
			} else {
				_, err := c.Write(down)
				c.Close()
				srv <- result{err: err}
			}
		}
	}()

	dialKernel := func() net.Conn {
		var c net.Conn
		err := ns.Do(func() error {
			var err error
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(stackAddr, 5001).String(), 5*time.Second)
			return err
		})
		if err != nil {
			t.Fatalf("kernel dial to the stack: %v", err)
		}
		c.SetDeadline(deadline)
		return c
	}
	// 1. kernel -> stack
	c := dialKernel()
	if _, err := c.Write(append([]byte{'u'}, up...)); err != nil {
		t.Fatalf("kernel upload: %v", err)
	}
	c.Close()
	r := <-srv
	if r.err != nil || r.n != size || r.sum != sha256.Sum256(up) {
		t.Fatalf("kernel -> stack: stack got %d of %d bytes (err %v), SHA-256 match %v", r.n, size, r.err, r.sum == sha256.Sum256(up))
	}
	// 2. stack -> kernel
	c = dialKernel()
	c.Write([]byte{'d'})
	h := sha256.New()
	n, err := io.Copy(h, c)
	c.Close()
	if err != nil || int(n) != size || !bytes.Equal(h.Sum(nil), sum(down)) {
		t.Fatalf("stack -> kernel: kernel got %d of %d bytes (err %v)", n, size, err)
	}
	if r := <-srv; r.err != nil {
		t.Fatalf("stack -> kernel: stack's write: %v", r.err)
	}

	// 3. the stack dials a kernel echo server: both directions at once.
	var kln net.Listener
	if err := ns.Do(func() error {
		var err error
		kln, err = net.Listen("tcp", netip.AddrPortFrom(kernelAddr, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kln.Close()
	go func() {
		c, err := kln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		io.Copy(c, c)
	}()
	sc, err := s.Dial("tcp", kln.Addr().String())
	if err != nil {
		t.Fatalf("stack dial to the kernel: %v", err)
	}
	defer sc.Close()
	sc.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() {
		_, err := sc.Write(up)
		if err == nil {
			err = sc.(*ustack.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	h = sha256.New()
	n, err = io.Copy(h, sc)
	if err != nil || int(n) != size || !bytes.Equal(h.Sum(nil), sum(up)) {
		t.Fatalf("stack <-> kernel echo: got %d of %d bytes back (err %v)", n, size, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("stack <-> kernel echo: write: %v", err)
	}
}

func sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// Counters returns the kernel's SNMP and netstat counters in namespace ns,
// by nstat's names ("TcpRetransSegs", "TcpExtTCPSackRecovery", ...), read
// from /proc/net/{snmp,netstat} inside it.
func Counters(t testing.TB, ns *netns.NS) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, f := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		out, err := ns.Run("cat", f)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, line := range strings.Split(out, "\n") {
			fs := strings.Fields(line)
			if len(fs) < 2 {
				continue
			}
			prefix := strings.TrimSuffix(fs[0], ":")
			if names == nil || names[0] != prefix {
				names = append([]string{prefix}, fs[1:]...)
				continue
			}
			for i, v := range fs[1:] {
				if i+1 < len(names) {
					n, _ := strconv.ParseUint(v, 10, 64)
					m[prefix+names[i+1]] = n
				}
			}
			names = nil
		}
	}
	return m
}

// NoRetransStorm fails the test if the kernel in ns retransmitted more
// than 1 % of the segments it sent since before (Counters), and at least
// 50, or counted checksum errors, and logs what it did retransmit.
func NoRetransStorm(t testing.TB, ns *netns.NS, before map[string]uint64) {
	t.Helper()
	after := Counters(t, ns)
	d := func(k string) uint64 { return after[k] - before[k] }
	out, re := d("TcpOutSegs"), d("TcpRetransSegs")
	t.Logf("kernel: %d segments out, %d retransmitted, %d timeouts, %d in with bad checksums",
		out, re, d("TcpExtTCPTimeouts"), d("TcpInCsumErrors"))
	if re > 50 && re > out/100 {
		t.Errorf("the kernel retransmitted %d of %d segments", re, out)
	}
	if n := d("TcpInCsumErrors") + d("UdpInCsumErrors"); n != 0 {
		t.Errorf("the kernel counted %d checksum errors", n)
	}
}

// TSO wraps an endpoint with CapTSO so that the frames written to it reach
// it as TSO super-frames: each batch's consecutive TCP segments are merged
// (package internal/gro) and written with the Offload that asks the device
// to cut them again. It lets the tests send super-frames from a stack that
// writes wire-sized segments; SuperFrames counts those written.
type TSO struct {
	link.Endpoint
	out         []link.Packet
	gro         *gro.Coalescer
	SuperFrames atomic.Uint64
}

// NewTSO wraps ep (see TSO).
func NewTSO(ep link.Endpoint) *TSO {
	return &TSO{Endpoint: ep, gro: gro.New(ep.Medium())}
}

// WriteBatch merges what it can of pkts and writes the result.
func (e *TSO) WriteBatch(pkts []link.Packet) (int, error) {
	for len(e.out) < len(pkts) {
		e.out = append(e.out, link.Packet{Buf: make([]byte, link.MaxSuperFrame)})
	}
	out := e.out[:len(pkts)]
	for i := range pkts {
		out[i].N = copy(out[i].Buf, pkts[i].Frame())
		out[i].Offload = pkts[i].Offload
		out[i].Offload.DataValid = true // our own frames: no need to verify
	}
	n := e.gro.Coalesce(out)
	for i := range out[:n] {
		out[i].Offload.DataValid = false
		if out[i].Offload.GSOType != link.GSONone {
			e.SuperFrames.Add(1)
		}
	}
	k, err := e.Endpoint.WriteBatch(out[:n])
	if k == n {
		k = len(pkts)
	}
	return k, err
}

// EchoFlows has the kernel in ns open n connections to an echo server on
// s at once, each writing a message of its own and half-closing, and
// fails the test unless every one echoes its message: many flows, for
// links that spread flows over queues.
func EchoFlows(t testing.TB, ns *netns.NS, s *ustack.Stack, stackAddr netip.Addr, n int) {
	t.Helper()
	ln, err := s.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served sync.WaitGroup
	defer served.Wait()
	served.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	defer ln.Close() // before served.Wait: the accept loop ends
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = net.DialTimeout("tcp", netip.AddrPortFrom(stackAddr, 7).String(), 5*time.Second)
				return err
			})
			if err != nil {
				t.Errorf("flow %d: kernel dial: %v", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			msg := fmt.Sprintf("flow %d, one of many", i)
			c.Write([]byte(msg))
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != msg {
				t.Errorf("flow %d: echo %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
}
