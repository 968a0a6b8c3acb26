package tap_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/gso/gsotest"
	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/internal/linktest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/tap"
)

// TestOffloadsBulk: with the default offloads, bulk TCP both ways between
// the kernel and a stack arrives byte-exact, with the kernel's view of it
// clean (no retransmission storm, no checksum errors):
//
//   - "kernel TSO": the kernel sends 64 KiB super-frames with partial
//     checksums, which reach the stack whole;
//   - "kernel GSO off": the kernel sends wire-sized segments with complete
//     checksums, which GRO verifies and merges before the stack;
//   - "stack TSO": the stack's segments reach the device as TSO
//     super-frames (merged by linktest.TSO), which the kernel cuts.
func TestOffloadsBulk(t *testing.T) {
	for _, mode := range []string{"kernel TSO", "kernel GSO off", "stack TSO"} {
		for _, tun := range []bool{false, true} {
			name := mode
			if tun {
				name += ", TUN"
			}
			t.Run(name, func(t *testing.T) {
				netnstest.NeedCommands(t, "ping")
				leaktest.Check(t)
				cfg := tap.Config{MTU: 1500}
				if tun {
					cfg = tap.Config{Name: "tun0", TUN: true, MTU: 1500}
				}
				ns, ep := setup(t, cfg)
				if mode == "kernel GSO off" {
					if err := ns.Do(func() error { return netns.SetOffloads(ep.Name(), false) }); err != nil {
						t.Fatal(err)
					}
				}
				var lep link.Endpoint = ep
				var tso *linktest.TSO
				if mode == "stack TSO" {
					tso = linktest.NewTSO(ep)
					lep = tso
				}
				s, _ := linktest.Stack(t, lep, stackAddr)
				before := linktest.Counters(t, ns)
				linktest.TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 32<<20)
				linktest.NoRetransStorm(t, ns, before)
				st := ep.Stats()
				t.Logf("link: %+v", st)
				if st.RxTooBig != 0 || st.RxBadOffload != 0 || st.TxDropped != 0 {
					t.Errorf("stats %+v", st)
				}
				if n := s.Stats().TCP.InCsumErrors; n != 0 {
					t.Errorf("the stack counted %d checksum errors", n)
				}
				switch mode {
				case "kernel TSO":
					if st.RxGSO == 0 {
						t.Error("no super-frame from the kernel")
					}
				case "kernel GSO off":
					if st.RxGSO != 0 || st.RxCoalesced == 0 {
						t.Errorf("%d super-frames from the kernel, %d segments merged here", st.RxGSO, st.RxCoalesced)
					}
				case "stack TSO":
					if n := tso.SuperFrames.Load(); n == 0 || st.TxGSO != n {
						t.Errorf("%d super-frames merged, %d written as such", n, st.TxGSO)
					}
				}
			})
		}
	}
}

// TestUDPSuperDatagramIn: a kernel UDP socket sending with UDP_SEGMENT
// hands the device one super-datagram (USO); the endpoint cuts it into the
// datagrams it stands for, each with its own header, in order, across
// ReadBatch calls when the batch is smaller than the datagrams.
func TestUDPSuperDatagramIn(t *testing.T) {
	leaktest.Check(t)
	ns, ep := setup(t, tap.Config{})
	if !ep.Caps().Has(link.CapUSO) {
		t.Fatalf("caps %b: no USO on kernel 6.18", ep.Caps())
	}
	// The kernel believes 10.77.0.2 is behind the device.
	if err := ns.IP("neigh", "add", stackAddr.Addr().String(), "lladdr", "02:00:00:00:00:02", "dev", ep.Name(), "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	const seg, count = 1000, 23
	payload := gsotest.Bytes(seg*count-17, 5)
	if err := ns.Do(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stackAddr.Addr(), 4000)))
		if err != nil {
			return err
		}
		defer c.Close()
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) })
		if serr != nil {
			return serr
		}
		_, err = c.Write(payload)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	datagrams := 0
	pkts := make([]link.Packet, 5)
	for i := range pkts {
		pkts[i].Buf = make([]byte, link.MaxSuperFrame)
	}
	deadline := time.Now().Add(5 * time.Second)
	for datagrams < count && time.Now().Before(deadline) {
		n, err := ep.ReadBatch(pkts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range pkts[:n] {
			f := pkts[i].Frame()
			l, err := gso.Parse(f, link.Ethernet)
			if err != nil || l.Proto != 17 {
				continue // ARP, IPv6 noise
			}
			if pkts[i].Offload.GSOType != link.GSONone {
				t.Fatalf("a super-datagram reached the reader: %+v", pkts[i].Offload)
			}
			c := append([]byte(nil), f...)
			if !gso.Finish(c, link.Ethernet, pkts[i].Offload) || gsotest.Check(c, link.Ethernet) != nil {
				t.Fatalf("datagram %d: bad checksum", datagrams)
			}
			if ul := int(binary.BigEndian.Uint16(f[l.L4+4:])); ul != l.End-l.L4 {
				t.Fatalf("datagram %d: UDP length %d of %d", datagrams, ul, l.End-l.L4)
			}
			got = append(got, f[l.Payload:l.End]...)
			datagrams++
		}
	}
	if datagrams != count || !bytes.Equal(got, payload) {
		t.Fatalf("%d datagrams (%d bytes), want %d (%d bytes) in order", datagrams, len(got), count, len(payload))
	}
	if st := ep.Stats(); st.RxSplit != 1 || st.RxGSO != 1 {
		t.Errorf("stats %+v: want one super-datagram split", st)
	}
}

// TestUDPSuperDatagramOut: a UDP super-datagram written with GSOUDPL4
// reaches a kernel UDP socket as the datagrams it stands for.
func TestUDPSuperDatagramOut(t *testing.T) {
	leaktest.Check(t)
	for _, tun := range []bool{false, true} {
		t.Run(fmt.Sprintf("tun=%v", tun), func(t *testing.T) {
			cfg := tap.Config{}
			if tun {
				cfg = tap.Config{Name: "tun0", TUN: true}
			}
			ns, ep := setup(t, cfg)
			var kmac net.HardwareAddr
			var uc *net.UDPConn
			if err := ns.Do(func() error {
				var err error
				if !tun {
					if kmac, err = netns.HardwareAddr(ep.Name()); err != nil {
						return err
					}
				}
				uc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelAddr.Addr(), 0)))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			port := uint16(uc.LocalAddr().(*net.UDPAddr).Port)
			const seg, count = 1200, 9
			m := link.Ethernet
			if tun {
				m = link.IP
			}
			s := gsotest.Seg{Medium: m, UDP: true, Src: stackAddr.Addr(), Dst: kernelAddr.Addr(), SrcPort: 4000, DstPort: port,
				Payload: gsotest.Bytes(seg*count-5, 9)}
			f := s.Frame()
			if !tun {
				copy(f[0:6], kmac)
			}
			off := s.TSO(f, seg)
			if n, err := ep.WriteBatch([]link.Packet{{Buf: f, N: len(f), Offload: off}}); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			var got []byte
			buf := make([]byte, 65536)
			uc.SetReadDeadline(time.Now().Add(3 * time.Second))
			for i := 0; i < count; i++ {
				n, err := uc.Read(buf)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if n > seg {
					t.Fatalf("datagram %d: %d bytes, want at most %d", i, n, seg)
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, s.Payload) {
				t.Error("the datagrams put together differ from the super-datagram")
			}
			if st := ep.Stats(); st.TxGSO != 1 || st.TxDropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestSuperFrameChecks: a super-frame is refused as too big on a device
// without offloads, and a frame above the MTU without a GSO type is
// refused on one with.
func TestSuperFrameChecks(t *testing.T) {
	_, ep := setup(t, tap.Config{})
	s := gsotest.Seg{Seq: 1, Payload: gsotest.Bytes(3000, 1)}
	f := s.Frame()
	if _, err := ep.WriteBatch([]link.Packet{{Buf: f, N: len(f)}}); err == nil || !isTooBig(err) {
		t.Errorf("a frame above the MTU without a GSO type: %v", err)
	}
	_, plain := setup(t, tap.Config{Name: "tap1", NoOffloads: true})
	off := s.TSO(f, 1000)
	if _, err := plain.WriteBatch([]link.Packet{{Buf: f, N: len(f), Offload: off}}); err == nil || !isTooBig(err) {
		t.Errorf("a super-frame on a device without offloads: %v", err)
	}
}

func isTooBig(err error) bool {
	for e := err; e != nil; {
		if e == link.ErrFrameTooBig {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// TestOffloadsAllocs: reading the kernel's frames with GRO and writing
// super-frames allocate nothing per frame.
func TestOffloadsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	ns, ep := setup(t, tap.Config{})
	if err := ns.IP("neigh", "add", stackAddr.Addr().String(), "lladdr", "02:00:00:00:00:02", "dev", ep.Name(), "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	var kc *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		kc, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stackAddr.Addr(), 4000)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	in := make([]link.Packet, 8)
	for i := range in {
		in[i].Buf = make([]byte, link.MaxSuperFrame)
	}
	seg := gsotest.Seg{Src: stackAddr.Addr(), Dst: kernelAddr.Addr(), SrcPort: 9, DstPort: 9, Seq: 1, Payload: gsotest.Bytes(40*1448, 1)}
	f := seg.Frame()
	out := []link.Packet{{Buf: f, N: len(f), Offload: seg.TSO(f, 1448)}}
	msg := make([]byte, 100)
	ep.ReadBatch(in) // warm up
	allocs := testing.AllocsPerRun(200, func() {
		kc.Write(msg)
		if _, err := ep.ReadBatch(in); err != nil {
			t.Fatal(err)
		}
		if _, err := ep.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
	})
	// kc.Write is the kernel socket's: package net allocates nothing on a
	// connected UDP write either.
	if allocs != 0 {
		t.Errorf("%v allocations per read and super-frame write", allocs)
	}
	if st := ep.Stats(); st.TxGSO < 200 || st.TxDropped != 0 {
		t.Errorf("the super-frames were not all written: %+v", st)
	}
}
