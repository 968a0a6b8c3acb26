package tap_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/tap"
)

var (
	kernelAddr = netip.MustParsePrefix("10.77.0.1/24")
	stackAddr  = netip.MustParsePrefix("10.77.0.2/24")
)

// setup makes a namespace for the kernel's side, opens a device in it
// (cfg.Netns and cfg.Name are filled in), and gives the kernel side its
// address. The namespace, and with it the device, goes away when the test
// ends.
func setup(t *testing.T, cfg tap.Config) (*netns.NS, *tap.Endpoint) {
	t.Helper()
	netnstest.Skip(t, true)
	ns := netnstest.NS(t, "ustack-tap-")
	if cfg.Name == "" {
		cfg.Name = "tap0"
	}
	cfg.Netns = ns.Name
	ep, err := tap.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	if err := ns.IP("addr", "add", kernelAddr.String(), "dev", ep.Name()); err != nil {
		t.Fatal(err)
	}
	return ns, ep
}

// offloadCaps are the capabilities of a device with the virtio-net
// header on this kernel (6.2 or later: USO too).
const offloadCaps = link.CapRxChecksumValid | link.CapGRO | link.CapTxChecksum | link.CapTSO | link.CapUSO

func TestTAPPingAndTCP(t *testing.T) {
	for _, off := range []bool{true, false} {
		t.Run(fmt.Sprintf("offloads=%v", off), func(t *testing.T) {
			netnstest.NeedCommands(t, "ping")
			leaktest.Check(t)
			ns, ep := setup(t, tap.Config{MTU: 1500, NoOffloads: !off})
			want := offloadCaps
			if !off {
				want = 0
			}
			if ep.Medium() != link.Ethernet || ep.MTU() != 1500 || ep.Caps() != want || !ep.Created() {
				t.Fatalf("medium %v mtu %d caps %b (want %b) created %v", ep.Medium(), ep.MTU(), ep.Caps(), want, ep.Created())
			}
			s, _ := linktest.Stack(t, ep, stackAddr)
			linktest.Ping(t, ns, stackAddr.Addr(), 3)
			linktest.TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 8<<20)
			st := ep.Stats()
			if st.RxFrames == 0 || st.TxFrames == 0 || st.RxTooBig != 0 || st.TxDropped != 0 || st.RxBadOffload != 0 {
				t.Errorf("stats %+v", st)
			}
			if off != (st.RxGSO > 0) {
				t.Errorf("offloads %v: %d super-frames from the kernel", off, st.RxGSO)
			}
			if n := s.Stats().TCP.InCsumErrors; n != 0 {
				t.Errorf("%d TCP checksum errors", n)
			}
		})
	}
}

func TestTUNPingAndTCP(t *testing.T) {
	netnstest.NeedCommands(t, "ping")
	leaktest.Check(t)
	ns, ep := setup(t, tap.Config{Name: "tun0", TUN: true, MTU: 1400})
	if ep.Medium() != link.IP || ep.MTU() != 1400 {
		t.Fatalf("medium %v mtu %d", ep.Medium(), ep.MTU())
	}
	s, _ := linktest.Stack(t, ep, stackAddr)
	linktest.Ping(t, ns, stackAddr.Addr(), 3)
	linktest.TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 4<<20)
}

// TestCloseUnblocksRead: a ReadBatch blocked on an idle device returns
// net.ErrClosed when the endpoint is closed, and nothing is left running.
func TestCloseUnblocksRead(t *testing.T) {
	leaktest.Check(t)
	netnstest.Skip(t, true)
	ns := netnstest.NS(t, "ustack-tap-")
	ep, err := tap.Open(tap.Config{Name: "tap0", Netns: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	// Keep the device quiet: no address, and IPv6 off, so nothing is read.
	ns.Sysctl("net.ipv6.conf.all.disable_ipv6", "1")
	done := make(chan error, 1)
	go func() {
		pkts := []link.Packet{{Buf: make([]byte, 1514)}}
		for {
			if _, err := ep.ReadBatch(pkts); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("ReadBatch returned before Close: %v", err)
	default:
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReadBatch still blocked 2 s after Close")
	}
	if _, err := ep.WriteBatch([]link.Packet{{Buf: make([]byte, 60), N: 60}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
	if err := ep.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	// The device Open created is gone with the descriptor.
	if err := ns.Do(func() error { _, err := netns.Index("tap0"); return err }); err == nil {
		t.Error("tap0 still exists after Close without Persist")
	}
}

// TestOtherMACs: frames for another MAC address reach the stack (a TAP
// device hands over everything the kernel sends) and are counted and
// dropped.
func TestOtherMACs(t *testing.T) {
	netnstest.NeedCommands(t, "ping")
	leaktest.Check(t)
	ns, ep := setup(t, tap.Config{})
	s, _ := linktest.Stack(t, ep, stackAddr)
	// The kernel believes 10.77.0.99 lives at another MAC on this link.
	if err := ns.IP("neigh", "add", "10.77.0.99", "lladdr", "02:00:00:00:00:99", "dev", "tap0", "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	ns.Run("ping", "-c", "5", "-i", "0.05", "-W", "0.2", "10.77.0.99") // no answer expected
	if n := s.Stats().Link.RxNotForUs; n < 5 {
		t.Errorf("RxNotForUs = %d, want at least 5", n)
	}
	linktest.Ping(t, ns, stackAddr.Addr(), 1) // and the stack still works
}

// TestPersistentAttach: attaching without offloads to a persistent device
// whose previous user had them on still gives complete frames
// (TUNSETOFFLOAD 0),
// Persist keeps a created device after Close, and a device Open attached
// to is left in place.
func TestPersistentAttach(t *testing.T) {
	netnstest.NeedCommands(t, "ping")
	leaktest.Check(t)
	netnstest.Skip(t, true)
	ns := netnstest.NS(t, "ustack-tap-")
	// A previous user with offloads on, keeping the device.
	ep, err := tap.Open(tap.Config{Name: "ptap", Netns: ns.Name, Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	if !ep.Created() || !ep.Caps().Has(link.CapTSO|link.CapGRO) {
		t.Fatalf("created %v caps %v", ep.Created(), ep.Caps())
	}
	ep.Close()
	out := netnstest.MustRun(t, ns, "ip", "-d", "link", "show", "dev", "ptap")
	if !strings.Contains(out, "ptap") {
		t.Fatalf("persistent device gone after Close:\n%s", out)
	}
	if err := ns.IP("addr", "add", kernelAddr.String(), "dev", "ptap"); err != nil {
		t.Fatal(err)
	}
	ep, err = tap.Open(tap.Config{Name: "ptap", Netns: ns.Name, NoOffloads: true})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Created() || ep.Caps() != 0 {
		t.Fatalf("attach: created %v caps %v", ep.Created(), ep.Caps())
	}
	s, _ := linktest.Stack(t, ep, stackAddr)
	linktest.Ping(t, ns, stackAddr.Addr(), 2)
	linktest.TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 2<<20)
	if n := s.Stats().TCP.InCsumErrors; n != 0 {
		t.Errorf("%d TCP checksum errors after attaching: TUNSETOFFLOAD 0 missing?", n)
	}
	s.Close()
	if _, err := ns.Run("ip", "link", "show", "dev", "ptap"); err != nil {
		t.Errorf("device attached to was removed by Close: %v", err)
	}
}

func TestMTUAndName(t *testing.T) {
	netnstest.Skip(t, true)
	ns := netnstest.NS(t, "ustack-tap-")
	ep, err := tap.Open(tap.Config{Netns: ns.Name, MTU: 9000})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if !strings.HasPrefix(ep.Name(), "tap") || ep.MTU() != 9000 {
		t.Fatalf("name %q mtu %d", ep.Name(), ep.MTU())
	}
	out := netnstest.MustRun(t, ns, "ip", "link", "show", "dev", ep.Name())
	if !strings.Contains(out, "mtu 9000") || !strings.Contains(out, ",UP") {
		t.Errorf("device not up with MTU 9000:\n%s", out)
	}
	if _, err := ep.WriteBatch([]link.Packet{{Buf: make([]byte, 9100), N: 9100}}); !errors.Is(err, link.ErrFrameTooBig) {
		t.Errorf("oversize write: %v, want link.ErrFrameTooBig", err)
	}
	if _, err := tap.Open(tap.Config{Name: "a-name-that-is-far-too-long"}); err == nil {
		t.Error("Open with a 27-byte name succeeded")
	}
}

// TestBurstNotDropped: a burst from the kernel larger than the kernel's
// default TUN/TAP queue (500 frames) waits, whole, for a reader that is
// busy elsewhere: Open gives a device it creates DefaultTxQueueLen. With
// the old depth the same burst loses most of its frames, which is what
// made TCP transfers over a TAP stall in loss recovery and retransmission
// timeouts when the reader fell behind.
func TestBurstNotDropped(t *testing.T) {
	for _, c := range []struct {
		qlen     int
		wantLoss bool
	}{{0, false}, {500, true}} {
		t.Run(fmt.Sprintf("txqueuelen=%d", c.qlen), func(t *testing.T) {
			ns, ep := setup(t, tap.Config{Name: "tun0", TUN: true, TxQueueLen: c.qlen})
			var qlen int
			if err := ns.Do(func() error {
				var err error
				qlen, err = netns.TxQueueLen("tun0")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			want := c.qlen
			if want == 0 {
				want = tap.DefaultTxQueueLen
			}
			if qlen != want {
				t.Errorf("txqueuelen %d, want %d", qlen, want)
			}
			// Nobody reads while the kernel sends 3000 datagrams.
			const burst = 3000
			if err := ns.Do(func() error {
				c, err := net.Dial("udp", stackAddr.Addr().String()+":9")
				if err != nil {
					return err
				}
				defer c.Close()
				for i := 0; i < burst; i++ {
					if _, err := c.Write([]byte("burst")); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			pkts := make([]link.Packet, 64)
			for i := range pkts {
				pkts[i].Buf = make([]byte, 1600)
			}
			got := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				for got < burst {
					n, err := ep.ReadBatch(pkts)
					if err != nil {
						return
					}
					for _, p := range pkts[:n] {
						if f := p.Frame(); len(f) >= 28 && f[0]>>4 == 4 && f[9] == 17 {
							got++
						}
					}
				}
			}()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				ep.Close() // what was there has been read
				<-done
			}
			if lost := got < burst; lost != c.wantLoss {
				t.Errorf("%d of %d datagrams waited for the reader", got, burst)
			}
		})
	}
}
