package ustack

import (
	"net"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/ustack/ustack/link/pipe"
)

// TestNetConnConformance runs golang.org/x/net/nettest's conformance
// suite for net.Conn (written by the Go team for package net's own conns)
// on a pair of TCPConns between two stacks over an in-memory pipe: basic
// I/O, ping-pong, racy reads and writes under deadlines, deadlines in the
// past, present (set while a call blocks) and future, Close unblocking,
// and concurrent use of every method. It runs in real time (the suite
// calls t.Run, which a synctest bubble does not allow); its timings are
// the suite's own.
func TestNetConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		n := newTestNet(t, pipe.Config{QueueLen: 4096}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			return nil, nil, nil, err
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}()
		c1, err = n.B.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		c2 = <-accepted
		stop = func() {
			c1.Close()
			if c2 != nil {
				c2.Close()
			}
			ln.Close()
			n.A.Close()
			n.B.Close()
		}
		return c1, c2, stop, nil
	})
}
