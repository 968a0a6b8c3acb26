package ustack

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// TestNilOnError: a call of the net-shaped API that fails returns a nil
// interface, as package net does, not an interface holding a nil pointer
// (which compares non-nil, so `if c != nil { c.Close() }` panicked).
func TestNilOnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.A.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		ln.(*Listener).SetDeadline(time.Now())
		if c, err := ln.Accept(); err == nil || c != nil {
			t.Errorf("Accept past its deadline: %#v, %v; want a nil net.Conn and an error", c, err)
		}
		ln.Close()
		if c, err := ln.Accept(); err == nil || c != nil {
			t.Errorf("Accept on a closed listener: %#v, %v; want a nil net.Conn and an error", c, err)
		}
		if c, err := n.B.Dial("tcp", "10.0.0.1:81"); err == nil || c != nil {
			t.Errorf("Dial of a closed port: %#v, %v; want a nil net.Conn and an error", c, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c, err := n.B.DialContext(ctx, "tcp", "10.0.0.1:80"); err == nil || c != nil {
			t.Errorf("DialContext with a cancelled context: %#v, %v; want a nil net.Conn and an error", c, err)
		}
		if l, err := n.A.Listen("tcp", "192.0.2.1:80"); err == nil || l != nil {
			t.Errorf("Listen on a foreign address: %#v, %v; want a nil net.Listener and an error", l, err)
		}
		u, err := n.A.ListenPacket("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		if p, err := n.A.ListenPacket("udp", ":53"); err == nil || p != nil {
			t.Errorf("ListenPacket on a bound port: %#v, %v; want a nil net.PacketConn and an error", p, err)
		}
		n.B.Close()
		if c, err := n.B.Dial("udp", "10.0.0.1:53"); err == nil || c != nil {
			t.Errorf("Dial udp on a closed stack: %#v, %v; want a nil net.Conn and an error", c, err)
		}
	})
}
