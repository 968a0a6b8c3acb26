package interop

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// synFlooder sends SYNs with spoofed sources from the kernel's namespace
// to the stack's port 80, through a raw IPv4 socket (IPPROTO_RAW: the
// test writes the whole IP header, source included). It sends only to the
// stack's address, which is inside the test's own namespace.
type synFlooder struct {
	fd   int
	dst  netip.AddrPort
	sent atomic.Int64
	stop chan struct{}
	done sync.WaitGroup
}

// newSYNFlooder opens the raw socket in ns; it is closed when the test
// ends.
func newSYNFlooder(t *testing.T, ns *netns.NS, dst netip.AddrPort) *synFlooder {
	t.Helper()
	f := &synFlooder{fd: -1, dst: dst, stop: make(chan struct{})}
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		f.fd = fd
		return err
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		f.halt()
		unix.Close(f.fd)
	})
	return f
}

// start sends rate SYNs a second, in bursts every 5 ms, from random
// sources: half on the link's prefix (10.77.0.3–254, which nobody
// answers ARP for) and half off it (198.18.0.0/15, whose SYN-ACKs go to
// the kernel as the gateway and die there), until halt.
func (f *synFlooder) start(t *testing.T, rate int) {
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		r := rand.New(rand.NewPCG(8, 2))
		sa := &unix.SockaddrInet4{Addr: f.dst.Addr().As4()}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			for range rate / 200 {
				var src netip.Addr
				if r.IntN(2) == 0 {
					src = netip.AddrFrom4([4]byte{10, 77, 0, byte(3 + r.IntN(252))})
				} else {
					src = netip.AddrFrom4([4]byte{198, 18 + byte(r.IntN(2)), byte(r.Uint32()), byte(r.Uint32())})
				}
				from := netip.AddrPortFrom(src, uint16(1024+r.IntN(60000)))
				seg := wire.TCPFields{Seq: wire.Seq(r.Uint32()), Flags: wire.TCPFlagSYN, Window: 64240,
					Options: wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: r.Uint32(), HasWScale: true, WScale: 7}}
				pkt := stacktest.IP(stacktest.IPHeader(src, f.dst.Addr(), wire.ProtoTCP), stacktest.TCPSeg(from, f.dst, seg))
				if err := unix.Sendto(f.fd, pkt, 0, sa); err != nil {
					// ENOBUFS: the device queue is full; the SYN is lost,
					// as on a wire at line rate.
					continue
				}
				f.sent.Add(1)
			}
		}
	}()
}

// halt stops the flood and waits for its goroutine.
func (f *synFlooder) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.done.Wait()
}

// TestSYNFloodTAP: issue 8 §2 against the kernel. The stack serves HTTP
// on a TAP device with its default configuration (SYN queue 1024, SYN
// cookies when it is full, as Linux's tcp_syncookies = 1). From the
// kernel's namespace a raw socket sends 10,000 SYNs a second from
// spoofed sources, on the link's prefix and off it; meanwhile the
// kernel's curl fetches 1 MiB three times, each checked by SHA-256: the
// SYN queue is full, so curl's connections open from SYN cookies. The
// flood goes on until at least 20,000 SYNs have been sent. Afterwards the
// stack still serves, its SYN queue never grew past 1024, and the
// neighbour cache never held more than its bounds.
func TestSYNFloodTAP(t *testing.T) {
	need(t, tapLink, "curl")
	e := newEnv(t, tapLink, envConfig{})
	// The gateway takes the SYN-ACKs to the off-link spoofed sources.
	if err := e.s.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), kernelAddr.Addr(), e.nic); err != nil {
		t.Fatal(err)
	}
	serveHTTP(t, e.s, 1)
	url := fmt.Sprintf("http://%v/bytes/%d", stackAddr.Addr(), 1*mib)
	want := streamSum(uint64(1*mib), 1*mib)
	fetch := func(what string) {
		t.Helper()
		t0 := time.Now()
		n, sum, code, _ := curlBody(t, e, url, 60*time.Second)
		if code != 200 || n != 1*mib || sum != want {
			t.Fatalf("%s: status %d, %d bytes, SHA-256 %s (want %s)", what, code, n, short(sum), short(want))
		}
		t.Logf("%s: 1 MiB in %v", what, time.Since(t0).Round(time.Millisecond))
	}
	fetch("before the flood")

	f := newSYNFlooder(t, e.kernel, netip.AddrPortFrom(stackAddr.Addr(), 80))
	var maxSynQ, maxIncomplete, maxQueued atomic.Int64
	watchDone := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			for _, l := range e.s.Listeners() {
				if int64(l.SynQueue) > maxSynQ.Load() {
					maxSynQ.Store(int64(l.SynQueue))
				}
			}
			inc, q := 0, 0
			for _, n := range e.s.Neighbors() {
				if n.State == "INCOMPLETE" {
					inc++
				}
				q += n.Queued
			}
			maxIncomplete.Store(max(maxIncomplete.Load(), int64(inc)))
			maxQueued.Store(max(maxQueued.Load(), int64(q)))
			select {
			case <-watchDone:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	before := e.s.Stats()
	f.start(t, 10_000)
	// Let the flood fill the SYN queue, then fetch during it.
	for deadline := time.Now().Add(30 * time.Second); maxSynQ.Load() < 1024; {
		if time.Now().After(deadline) {
			t.Fatalf("the SYN queue reached only %d in 30 s (%d SYNs sent)", maxSynQ.Load(), f.sent.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 3 {
		fetch(fmt.Sprintf("during the flood (%d)", i+1))
	}
	for f.sent.Load() < 20_000 {
		time.Sleep(10 * time.Millisecond)
	}
	f.halt()
	sent := f.sent.Load()
	fetch("after the flood")
	close(watchDone)
	watch.Wait()

	after := e.s.Stats()
	tc, tb := after.TCP, before.TCP
	nc := after.Net
	t.Logf("%d spoofed SYNs sent; SYN queue at most %d; TCP: SyncookiesSent %d SyncookiesRecv %d SyncookiesFailed %d ListenOverflows %d ListenDrops %d SynQueueDrops %d PassiveOpens %d; ARP: at most %d resolutions and %d packets waiting, ARPUnresolvedEvicted %d ARPQueueFull %d ARPQueueDrops %d ARPTableFull %d ARPOutRequests %d",
		sent, maxSynQ.Load(), tc.SyncookiesSent-tb.SyncookiesSent, tc.SyncookiesRecv-tb.SyncookiesRecv, tc.SyncookiesFailed-tb.SyncookiesFailed,
		tc.ListenOverflows-tb.ListenOverflows, tc.ListenDrops-tb.ListenDrops, tc.SynQueueDrops-tb.SynQueueDrops, tc.PassiveOpens-tb.PassiveOpens,
		maxIncomplete.Load(), maxQueued.Load(), nc.ARPUnresolvedEvicted, nc.ARPQueueFull, nc.ARPQueueDrops, nc.ARPTableFull, nc.ARPOutRequests)
	if maxSynQ.Load() > 1024 {
		t.Errorf("SYN queue reached %d, beyond SynBacklog 1024", maxSynQ.Load())
	}
	// curl's three connections during the flood came from cookies (the
	// queue was full), and so did the fetch after it (the half-open
	// connections stay 63 s).
	if got := tc.SyncookiesRecv - tb.SyncookiesRecv; got < 4 {
		t.Errorf("SyncookiesRecv grew by %d, want at least 4 (curl's connections)", got)
	}
	if tc.SyncookiesSent-tb.SyncookiesSent < 10_000 || tc.SynQueueDrops != tb.SynQueueDrops || tc.ListenDrops != tb.ListenDrops {
		t.Errorf("SyncookiesSent grew by %d, SynQueueDrops by %d, ListenDrops by %d: want cookies for the SYNs beyond the queue, no drops",
			tc.SyncookiesSent-tb.SyncookiesSent, tc.SynQueueDrops-tb.SynQueueDrops, tc.ListenDrops-tb.ListenDrops)
	}
	if nc.ARPTableFull != 0 || maxIncomplete.Load() > 256 || maxQueued.Load() > 256+1024 {
		t.Errorf("neighbour cache: ARPTableFull %d, at most %d resolutions and %d packets waiting (bounds 256 and 256+1024)",
			nc.ARPTableFull, maxIncomplete.Load(), maxQueued.Load())
	}
	if n := len(e.s.Conns()); n > 1024+8 {
		t.Errorf("%d connections held after the flood", n)
	}
}
