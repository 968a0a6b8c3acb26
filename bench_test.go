package ustack

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/ustack/ustack/link/pipe"
)

// benchConn returns a connected pair of TCPConns over an in-memory pipe
// between two stacks.
func benchConn(b *testing.B) (client, server net.Conn) {
	n := newTestNet(b, pipe.Config{QueueLen: 4096}, Config{})
	ln, err := n.A.Listen("tcp", ":9")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	accepted := acceptOne(b, ln)
	c, err := n.B.Dial("tcp", "10.0.0.1:9")
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// kernelConn returns a connected pair of kernel TCP sockets over loopback:
// the same benchmarks run on them give the kernel's figures in the same
// run, for comparison.
func kernelConn(b *testing.B) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Skipf("no kernel loopback TCP: %v", err)
	}
	defer ln.Close()
	accepted := acceptOne(b, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// BenchmarkBulk measures one TCP stream between two stacks in one process
// (go test -bench Bulk -benchmem): throughput, and allocations per 64 KiB
// written, which must stay near zero (nothing per packet).
func BenchmarkBulk(b *testing.B) {
	c, s := benchConn(b)
	bulk(b, c, s)
}

// BenchmarkKernelBulk is BenchmarkBulk over the kernel's loopback.
func BenchmarkKernelBulk(b *testing.B) {
	c, s := kernelConn(b)
	bulk(b, c, s)
}

func bulk(b *testing.B, c, s net.Conn) {
	done := make(chan int64)
	go func() {
		k, _ := io.Copy(io.Discard, s)
		done <- k
	}()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	if k := <-done; k != int64(b.N)*int64(len(buf)) {
		b.Fatalf("received %d bytes, want %d", k, b.N*len(buf))
	}
}

// BenchmarkRoundTrip measures one-byte request/response round trips over a
// TCP connection between two stacks (the latency of the whole path:
// runtime, stack, pipe and back).
func BenchmarkRoundTrip(b *testing.B) {
	c, s := benchConn(b)
	roundTrip(b, c, s)
}

// BenchmarkKernelRoundTrip is BenchmarkRoundTrip over the kernel's
// loopback.
func BenchmarkKernelRoundTrip(b *testing.B) {
	c, s := kernelConn(b)
	roundTrip(b, c, s)
}

func roundTrip(b *testing.B, c, s net.Conn) {
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCRR measures connect, 64-byte request, 64-byte response, close
// (client first) between two stacks in one process, one connection at a
// time, a server goroutine per connection, as the bench module's crr
// does (go test -bench CRR -benchmem): allocations per op are what one
// connection costs both ends.
func BenchmarkCRR(b *testing.B) {
	for _, shards := range []int{1, 2} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			cfg := Config{Shards: shards}
			cfg.EphemeralPorts = [2]uint16{1024, 65535}
			n := newTestNet(b, pipe.Config{QueueLen: 4096}, cfg)
			ln, err := n.A.Listen("tcp", "10.0.0.1:9")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						buf := make([]byte, 64)
						if _, err := io.ReadFull(c, buf); err == nil {
							c.Write(buf)
						}
					}()
				}
			}()
			req := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := n.B.Dial("tcp", "10.0.0.1:9")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, req); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
