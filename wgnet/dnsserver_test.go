package wgnet

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsZone is what a test DNS server answers.
type dnsZone struct {
	A, AAAA map[string][]netip.Addr // by fully qualified lower-case name
	// RCode, if not zero, is the code of every response, without
	// records.
	RCode dnsmessage.RCode
	// Silent servers never answer.
	Silent bool
	// Lame servers are neither authoritative nor recursive.
	Lame bool

	mu      sync.Mutex
	queries []string // "udp A www.example.com." for each query, in order
}

// testZone is example.com: www with two IPv4 and one IPv6 address, v6
// with only an IPv6 address, big with 60 IPv4 addresses (more than a
// 512-byte UDP answer holds).
func testZone() *dnsZone {
	z := &dnsZone{
		A: map[string][]netip.Addr{
			"www.example.com.": {netip.MustParseAddr("192.168.4.29"), netip.MustParseAddr("192.168.4.30")},
		},
		AAAA: map[string][]netip.Addr{
			"www.example.com.": {netip.MustParseAddr("fd00::29")},
			"v6.example.com.":  {netip.MustParseAddr("fd00::6")},
		},
	}
	for i := range 60 {
		z.A["big.example.com."] = append(z.A["big.example.com."], netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}))
	}
	return z
}

// Queries returns the queries the server received so far.
func (z *dnsZone) Queries() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]string(nil), z.queries...)
}

// answer builds the response to query q, at most limit bytes long (0:
// no limit): too long a response is truncated (TC, no records). It
// returns nil for a silent server or a message that is not a query.
func (z *dnsZone) answer(q []byte, proto string, limit int) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil || h.Response {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return nil
	}
	qq := qs[0]
	name := strings.ToLower(qq.Name.String())
	z.mu.Lock()
	z.queries = append(z.queries, proto+" "+strings.TrimPrefix(qq.Type.String(), "Type")+" "+name)
	z.mu.Unlock()
	if z.Silent {
		return nil
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: !z.Lame, RecursionDesired: h.RecursionDesired, RecursionAvailable: !z.Lame, RCode: z.RCode}
	a, aaaa := z.A[name], z.AAAA[name]
	if z.RCode == 0 && a == nil && aaaa == nil && !z.Lame {
		rh.RCode = dnsmessage.RCodeNameError
	}
	build := func(h dnsmessage.Header, records bool) []byte {
		b := dnsmessage.NewBuilder(nil, h)
		b.EnableCompression()
		b.StartQuestions()
		b.Question(qq)
		b.StartAnswers()
		if records && h.RCode == 0 {
			rrh := dnsmessage.ResourceHeader{Name: qq.Name, Class: dnsmessage.ClassINET, TTL: 60}
			switch qq.Type {
			case dnsmessage.TypeA:
				for _, ip := range a {
					b.AResource(rrh, dnsmessage.AResource{A: ip.As4()})
				}
			case dnsmessage.TypeAAAA:
				for _, ip := range aaaa {
					b.AAAAResource(rrh, dnsmessage.AAAAResource{AAAA: ip.As16()})
				}
			}
		}
		m, err := b.Finish()
		if err != nil {
			panic(err)
		}
		return m
	}
	m := build(rh, true)
	if limit > 0 && len(m) > limit {
		rh.Truncated = true
		m = build(rh, false)
	}
	return m
}

// serveDNS serves z on n at addr over UDP and TCP until stop is called.
func serveDNS(t testing.TB, n *Net, addr netip.AddrPort, z *dnsZone) (stop func()) {
	t.Helper()
	u, err := n.ListenUDPAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n.ListenTCPAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	stopped := false
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			k, from, err := u.ReadFrom(buf)
			if err != nil {
				return
			}
			if m := z.answer(buf[:k], "udp", 512); m != nil {
				u.WriteTo(m, from)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if stopped {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var l [2]byte
				for {
					if _, err := io.ReadFull(c, l[:]); err != nil {
						return
					}
					q := make([]byte, binary.BigEndian.Uint16(l[:]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					m := z.answer(q, "tcp", 0)
					if m == nil {
						continue
					}
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...))
				}
			}()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			u.Close()
			ln.Close()
			mu.Lock()
			stopped = true
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
}
