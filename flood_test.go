package ustack

import (
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/internal/flood"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/wire"
)

var (
	macA    = wire.MAC{2, 0, 0, 0, 0, 1}
	macB    = wire.MAC{2, 0, 0, 0, 0, 2}
	spoofed = netip.MustParsePrefix("198.18.0.0/15")
)

// shedBatch returns a full batch of 64 frames: at i%8 == 7 an ACK of an
// established connection, the rest spoofed SYNs.
func shedBatch() []link.Packet {
	syn := flood.New(flood.Config{Kind: flood.SYN, DstMAC: macA, SrcMAC: macB,
		Dst: netip.AddrPortFrom(ipA, 80), Sources: []netip.Prefix{spoofed}})
	ack := flood.New(flood.Config{Kind: flood.ACK, DstMAC: macA, SrcMAC: macB,
		Targets: []flood.Target{{Local: netip.AddrPortFrom(ipA, 80), Remote: netip.AddrPortFrom(ipB, 4000), RcvWnd: 1000}}})
	pkts := make([]link.Packet, 64)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
		if i%8 == 7 {
			pkts[i].N = ack.Frame(pkts[i].Buf)
		} else {
			pkts[i].N = syn.Frame(pkts[i].Buf)
		}
	}
	return pkts
}

// TestShedSYNs: a full batch that arrives while the stack is SYN-flooded
// keeps every frame that is not a connection request, in order, and a
// quarter of the batch's slots' worth of SYNs (the first); the rest are
// dropped and counted. Not flooded, or a batch that is not full (the
// reader calls shed only for full ones), nothing is dropped.
func TestShedSYNs(t *testing.T) {
	ea, eb := pipe.New(pipe.Config{})
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); eb.Close() })
	nic, err := s.AddNIC(ea, NICConfig{MAC: net.HardwareAddr(macA[:]), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	pkts := shedBatch()
	if k := nic.shed(pkts); k != 64 || nic.Stats().RxSYNShed != 0 {
		t.Fatalf("not flooded: kept %d of 64, shed %d", k, nic.Stats().RxSYNShed)
	}
	s.shards[0].synFlooded.Store(true)
	k := nic.shed(pkts)
	if k != 16+8 || nic.Stats().RxSYNShed != 64-24 {
		t.Fatalf("flooded: kept %d, shed %d; want 24 and 40", k, nic.Stats().RxSYNShed)
	}
	// The ACKs were at 7, 15, …, 63, the SYNs between; the first 16
	// SYNs (7 before each of the first two ACKs, 2 before the third)
	// stay in their places, then the ACKs follow one another.
	for i, p := range pkts[:k] {
		isSYN := stack.IsConnRequest(link.Ethernet, p.Frame())
		if wantSYN := i < 7 || i > 7 && i < 15 || i > 15 && i < 18; isSYN != wantSYN {
			t.Fatalf("frame %d: SYN %v, want %v", i, isSYN, wantSYN)
		}
	}
	for _, p := range pkts[k:] {
		if p.N != 0 {
			t.Fatalf("a shed frame keeps its length %d", p.N)
		}
	}
}

// TestShedAllocs: shedding allocates nothing.
func TestShedAllocs(t *testing.T) {
	ea, eb := pipe.New(pipe.Config{})
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); eb.Close() })
	nic, err := s.AddNIC(ea, NICConfig{MAC: net.HardwareAddr(macA[:]), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	s.shards[0].synFlooded.Store(true)
	src := shedBatch()
	pkts := make([]link.Packet, len(src))
	if a := testing.AllocsPerRun(100, func() {
		for i := range src {
			pkts[i] = src[i]
		}
		nic.shed(pkts)
	}); a != 0 {
		t.Fatalf("%v allocations a batch", a)
	}
}

// TestSYNFloodShed: a spoofed SYN flood from outside and inside the
// server's prefix, 512 SYNs a millisecond in bursts (virtual time), comes
// in over the same link as a client's bulk upload and new connections.
// The server's SYN queue overflows, it answers with cookies, and its
// reader, finding full batches, sheds most of the SYNs before the lock.
// Every real client connects (a shed SYN is sent again), the upload
// arrives intact, the connection table never holds more than the SYN
// queue's bound beside the real connections, and the counters show the
// cookies and the shedding.
func TestSYNFloodShed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ea, eb := pipe.New(pipe.Config{QueueLen: 2048})
		cfg := Config{}
		cfg.SynBacklog = 64
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		defer cli.Close()
		nicA, err := srv.AddNIC(flood.Queued(ea), NICConfig{MAC: net.HardwareAddr(macA[:]), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
		if err != nil {
			t.Fatal(err)
		}
		in := flood.NewInjector(eb, spoofed, netip.MustParsePrefix("10.0.0.128/26"))
		nicB, err := cli.AddNIC(in, NICConfig{MAC: net.HardwareAddr(macB[:]), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("10.0.0.254/24")}})
		if err != nil {
			t.Fatal(err)
		}
		_ = nicB
		if err := srv.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.0.0.254"), nicA); err != nil {
			t.Fatal(err)
		}
		ln, err := srv.Listen("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		const upload = 4 << 20
		var wg, srvWG sync.WaitGroup
		var sum [32]byte
		srvWG.Add(1)
		go func() { // the server: the first connection's upload, then accept the rest
			defer srvWG.Done()
			c, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			h := sha256.New()
			if n, err := io.Copy(h, c); n != upload || err != nil {
				t.Errorf("upload: %d bytes, %v", n, err)
			}
			copy(sum[:], h.Sum(nil))
			c.Close()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		up, err := cli.Dial("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := io.Copy(up, newPayload(1, upload)); err != nil {
				t.Error(err)
			}
			up.Close()
		}()

		stop := make(chan struct{})
		var res flood.Result
		wg.Add(1)
		go func() { // the flood: 512 SYNs a millisecond for two seconds
			defer wg.Done()
			g := flood.New(flood.Config{Kind: flood.SYN, DstMAC: macA, SrcMAC: macB,
				Dst: netip.MustParseAddrPort("10.0.0.1:80"), Sources: []netip.Prefix{spoofed, netip.MustParsePrefix("10.0.0.128/26")}, Seed: 3})
			for range 2000 {
				r := in.Flood(g, nil, 64, 512, 0)
				res.Offered += r.Offered
				time.Sleep(time.Millisecond)
			}
			close(stop)
		}()
		maxConns := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				maxConns = max(maxConns, len(srv.Conns()))
			}
		}()
		// Real clients connect during the flood.
		var lat []time.Duration
		for range 8 {
			time.Sleep(200 * time.Millisecond)
			t0 := time.Now()
			c, err := cli.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Errorf("a real client could not connect during the flood: %v", err)
				continue
			}
			lat = append(lat, time.Since(t0))
			c.Close()
		}
		wg.Wait()
		ln.Close()
		srvWG.Wait()
		if sum != payloadSum(1, upload) {
			t.Error("the upload arrived corrupted")
		}
		tc := srv.Stats().TCP
		t.Logf("ARP queue drops for the on-link spoofed sources: %d", srv.Stats().Net.ARPQueueDrops)
		shed := nicA.Stats().RxSYNShed
		t.Logf("offered %d SYNs; shed %d; SyncookiesSent %d SyncookiesRecv %d; answers to spoofed sources %d; connect latencies %v; at most %d connections",
			res.Offered, shed, tc.SyncookiesSent, tc.SyncookiesRecv, in.Answered(), lat, maxConns)
		if res.Offered != 2000*512 {
			t.Errorf("offered %d, want %d", res.Offered, 2000*512)
		}
		if shed == 0 || tc.SyncookiesSent == 0 {
			t.Errorf("shed %d, SyncookiesSent %d: the flood was not shed", shed, tc.SyncookiesSent)
		}
		if shed >= res.Offered {
			t.Errorf("shed %d of %d: nothing reached the listener", shed, res.Offered)
		}
		// The listener's SYN queue (64), the upload, eight clients.
		if maxConns > 64+1+8 {
			t.Errorf("%d connections at once: the flood made state", maxConns)
		}
		if len(lat) != 8 {
			t.Errorf("%d of 8 clients connected", len(lat))
		}
	})
}
