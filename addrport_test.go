package ustack

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link/pipe"
)

// TestAddrPortAPI: the netip forms of Listen and Dial. An invalid
// address listens on every IPv4 address, an IPv4-mapped IPv6 address is
// its IPv4 address (as package net treats them), port 0 picks a port;
// DialUDPAddrPort binds the local address and port asked for and is
// connected (datagrams from others are not read); it needs a remote
// address and port.
func TestAddrPortAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newTestNet(t, pipe.Config{Delay: time.Millisecond}, Config{})
		ln, err := n.A.ListenTCPAddrPort(netip.AddrPortFrom(netip.Addr{}, 80), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if got := ln.Addr().(*net.TCPAddr).AddrPort(); got != netip.MustParseAddrPort("0.0.0.0:80") {
			t.Errorf("listener on %v, want 0.0.0.0:80", got)
		}
		accepted := acceptOne(t, ln)
		c, err := n.B.DialTCP(t.Context(), netip.AddrPort{}, netip.AddrPortFrom(netip.AddrFrom16(ipA.As16()), 80))
		if err != nil {
			t.Fatalf("dial the IPv4-mapped address: %v", err)
		}
		defer c.Close()
		(<-accepted).Close()

		ln2, err := n.A.ListenTCPAddrPort(netip.AddrPortFrom(netip.AddrFrom16(ipA.As16()), 0), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ln2.Close()
		if got := ln2.Addr().(*net.TCPAddr).AddrPort(); got.Addr() != ipA || got.Port() == 0 {
			t.Errorf("listener on %v, want 10.0.0.1 and a port", got)
		}

		srv, err := n.A.ListenUDPAddrPort(netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		sa := srv.LocalAddr().(*net.UDPAddr).AddrPort()
		if !sa.Addr().IsUnspecified() || !sa.Addr().Is4() || sa.Port() == 0 {
			t.Fatalf("UDP socket on %v", sa)
		}
		to := netip.AddrPortFrom(ipA, sa.Port())
		u, err := n.B.DialUDPAddrPort(netip.AddrPortFrom(ipB, 4000), to)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		if got := u.LocalAddr().(*net.UDPAddr).AddrPort(); got != netip.AddrPortFrom(ipB, 4000) {
			t.Errorf("dialed socket on %v", got)
		}
		if _, err := u.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		k, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:k]) != "hi" || from != netip.AddrPortFrom(ipB, 4000) {
			t.Fatalf("server read %q from %v: %v", buf[:k], from, err)
		}
		other, err := n.A.ListenUDPAddrPort(netip.AddrPortFrom(ipA, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		other.WriteToUDPAddrPort([]byte("stranger"), netip.AddrPortFrom(ipB, 4000))
		srv.WriteToUDPAddrPort([]byte("peer"), from)
		u.SetReadDeadline(time.Now().Add(time.Second))
		if k, err := u.Read(buf); err != nil || string(buf[:k]) != "peer" {
			t.Errorf("dialed socket read %q, %v; want only the peer's datagram", buf[:k], err)
		}
		if _, err := n.B.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(ipA, 0)); err == nil {
			t.Error("DialUDPAddrPort without a remote port succeeded")
		}
		if _, err := n.B.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPort{}); err == nil {
			t.Error("DialUDPAddrPort without a remote address succeeded")
		}
	})
}
