package afpacket_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/afpacket"
)

var (
	kernelAddr = netip.MustParsePrefix("10.77.0.1/24")
	stackAddr  = netip.MustParsePrefix("10.77.0.2/24")
	modes      = []afpacket.Mode{afpacket.ModeMmsg, afpacket.ModeRing}
)

// setup builds a veth pair between two fresh namespaces and opens the
// endpoint on the DUT's end; all of it goes away when the test ends.
func setup(t *testing.T, pc netns.PairConfig, cfg afpacket.Config) (*netns.Pair, *afpacket.Endpoint) {
	t.Helper()
	pc.Prefix = "ustack-afp-"
	p := netnstest.Pair(t, pc)
	cfg.Interface, cfg.Netns = p.DUTIf, p.DUT.Name
	ep, err := afpacket.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return p, ep
}

func TestPingAndTCP(t *testing.T) {
	netnstest.NeedCommands(t, "ping")
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			leaktest.Check(t)
			p, ep := setup(t, netns.PairConfig{}, afpacket.Config{Mode: m})
			caps := link.CapRxChecksumValid | link.CapGRO | link.CapTxChecksum | link.CapTSO | link.CapUSO
			if ep.Mode() != m || ep.MTU() != 1500 || ep.Medium() != link.Ethernet || len(ep.HardwareAddr()) != 6 || ep.Caps() != caps {
				t.Fatalf("mode %v mtu %d medium %v mac %v caps %b", ep.Mode(), ep.MTU(), ep.Medium(), ep.HardwareAddr(), ep.Caps())
			}
			s, _ := linktest.Stack(t, ep, stackAddr)
			linktest.Ping(t, p.Peer, stackAddr.Addr(), 3)
			linktest.TCPBothWays(t, p.Peer, s, kernelAddr.Addr(), stackAddr.Addr(), 8<<20)
			st := ep.Stats()
			if st.RxFrames == 0 || st.TxFrames == 0 || st.RxTooBig != 0 || st.RxGSO != 0 || st.TxDropped != 0 {
				t.Errorf("stats %+v", st)
			}
			if n := s.Stats().TCP.InCsumErrors; n != 0 {
				t.Errorf("%d TCP checksum errors", n)
			}
			t.Logf("endpoint: %+v", st)
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			leaktest.Check(t)
			_, ep := setup(t, netns.PairConfig{}, afpacket.Config{Mode: m})
			done := make(chan error, 1)
			go func() {
				pkts := make([]link.Packet, 8)
				for i := range pkts {
					pkts[i].Buf = make([]byte, 1518)
				}
				for {
					if _, err := ep.ReadBatch(pkts); err != nil {
						done <- err
						return
					}
				}
			}()
			time.Sleep(100 * time.Millisecond)
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
				t.Errorf("WriteBatch after Close: %v", err)
			}
			if err := ep.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestOtherMACs: frames for other MAC addresses arrive too; the stack
// counts and drops them.
func TestOtherMACs(t *testing.T) {
	netnstest.NeedCommands(t, "ping")
	leaktest.Check(t)
	p, ep := setup(t, netns.PairConfig{}, afpacket.Config{})
	s, _ := linktest.Stack(t, ep, stackAddr)
	if err := p.Peer.IP("neigh", "add", "10.77.0.99", "lladdr", "02:00:00:00:00:99", "dev", p.PeerIf, "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	p.Peer.Run("ping", "-c", "5", "-i", "0.05", "-W", "0.2", "10.77.0.99")
	if n := s.Stats().Link.RxNotForUs; n < 5 {
		t.Errorf("RxNotForUs = %d, want at least 5", n)
	}
	linktest.Ping(t, p.Peer, stackAddr.Addr(), 1)
}

// TestPeerChecksumOffload: a peer with transmit checksum offload on (but
// no segmentation offload) sends partial checksums, which an endpoint
// without offloads completes (with offloads they reach the stack as
// partial, and trusted: TestOffloadsBulk).
func TestPeerChecksumOffload(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			leaktest.Check(t)
			p, ep := setup(t, netns.PairConfig{PeerOffloads: true}, afpacket.Config{Mode: m, NoOffloads: true})
			// tx on, tso and gso off: ethtool's order (tso depends on tx).
			if err := p.Peer.Do(func() error {
				if err := netns.SetOffloads(p.PeerIf, false); err != nil {
					return err
				}
				return netns.SetTxChecksum(p.PeerIf, true)
			}); err != nil {
				t.Fatal(err)
			}
			s, _ := linktest.Stack(t, ep, stackAddr)
			linktest.TCPBothWays(t, p.Peer, s, kernelAddr.Addr(), stackAddr.Addr(), 2<<20)
			st := ep.Stats()
			if st.RxCsumCompleted == 0 {
				t.Errorf("no partial checksum completed: %+v", st)
			}
			if n := s.Stats().TCP.InCsumErrors; n != 0 {
				t.Errorf("%d TCP checksum errors", n)
			}
		})
	}
}

// TestPeerGSO: a peer with TSO on sends 64 KiB super-frames; an endpoint
// without offloads counts and drops them, and nothing crashes or hangs
// (with offloads they reach the stack: TestOffloadsBulk).
func TestPeerGSO(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			leaktest.Check(t)
			p, ep := setup(t, netns.PairConfig{PeerOffloads: true}, afpacket.Config{Mode: m, NoOffloads: true})
			s, _ := linktest.Stack(t, ep, stackAddr)
			ln, err := s.Listen("tcp", ":5001")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
			}()
			var c net.Conn
			if err := p.Peer.Do(func() error {
				c, err = net.DialTimeout("tcp", "10.77.0.2:5001", 5*time.Second)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write(make([]byte, 4<<20)) // stalls: the big frames never arrive
			c.Close()
			if st := ep.Stats(); st.RxGSO == 0 || st.RxTooBig < st.RxGSO {
				t.Errorf("no GSO frame counted: %+v", st)
			}
		})
	}
}
