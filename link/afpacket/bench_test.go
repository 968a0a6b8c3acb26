package afpacket_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link/afpacket"
)

// benchSetup is setup for benchmarks: a veth pair between two fresh
// namespaces (peer offloads off, RPS on both ends), the endpoint on the
// DUT's end and a stack on it at 10.77.0.2.
func benchSetup(b *testing.B, m afpacket.Mode) (*netns.Pair, *ustack.Stack) {
	p := netnstest.Pair(b, netns.PairConfig{Prefix: "ustack-afpb-"})
	ep, err := afpacket.Open(afpacket.Config{Interface: p.DUTIf, Netns: p.DUT.Name, Mode: m})
	if err != nil {
		b.Fatal(err)
	}
	s, err := ustack.New(ustack.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.AddNIC(ep, ustack.NICConfig{Addrs: []netip.Prefix{stackAddr}}); err != nil {
		b.Fatal(err)
	}
	return p, s
}

// kernelDial connects from the kernel in the peer namespace to the stack.
func kernelDial(b *testing.B, p *netns.Pair, addr string) net.Conn {
	var c net.Conn
	if err := p.Peer.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkKernelToStack: the kernel's TCP sends to a discard server on
// the stack, MTU frames (peer offloads off); one op is 1 MiB.
//
//	go test -run '^$' -bench KernelToStack -benchtime 10s ./link/afpacket
func BenchmarkKernelToStack(b *testing.B) {
	for _, m := range modes {
		b.Run(m.String(), func(b *testing.B) {
			p, s := benchSetup(b, m)
			ln, err := s.Listen("tcp", ":9")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- 0
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				got <- n
			}()
			c := kernelDial(b, p, "10.77.0.2:9")
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			n := <-got
			el := time.Since(start)
			b.StopTimer()
			if n != int64(b.N)*int64(len(buf)) {
				b.Fatalf("stack received %d of %d bytes", n, int64(b.N)*int64(len(buf)))
			}
			b.ReportMetric(float64(n)*8/el.Seconds()/1e9, "Gbit/s")
		})
	}
}

// BenchmarkRR: the kernel sends one byte, a TCP echo server on the stack
// sends it back; one op is one round trip (ns/op is the latency).
//
//	go test -run '^$' -bench RR -benchtime 5s ./link/afpacket
func BenchmarkRR(b *testing.B) {
	for _, m := range modes {
		b.Run(m.String(), func(b *testing.B) {
			p, s := benchSetup(b, m)
			ln, err := s.Listen("tcp", ":7")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(c, c)
				c.Close()
			}()
			c := kernelDial(b, p, "10.77.0.2:7")
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			var one [1]byte
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(one[:]); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one[:]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "trans/s")
		})
	}
}
