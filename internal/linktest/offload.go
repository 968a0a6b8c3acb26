package linktest

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack/internal/gso"
	"github.com/ustack/ustack/internal/gso/gsotest"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/link"
)

// The offload checks below are shared by link/tap and link/afpacket: each
// package opens its device in a namespace beside the kernel's stack and
// hands the check the endpoint, the namespace, and its counters as
// OffloadStats.

// OffloadStats are the counters of a link's offload paths the checks
// read; link/tap's and link/afpacket's Stats have fields of these names
// (RxCsumCompleted is AF_PACKET's alone; zero for a TAP).
type OffloadStats struct {
	RxGSO, RxCoalesced, RxSplit, RxTooBig, RxBadOffload, RxCsumCompleted uint64
	TxGSO, TxDropped                                                     uint64
}

// BulkMode is how segments cross the link in OffloadsBulk.
type BulkMode int

const (
	// PeerTSO: the kernel's end has its offloads on (its default) and
	// sends 64 KiB super-frames with partial checksums.
	PeerTSO BulkMode = iota
	// PeerSegments: the kernel's end has its offloads off and sends
	// wire-sized segments with complete checksums, which GRO verifies
	// and merges before the stack.
	PeerSegments
	// StackTSO: the stack's segments leave as super-frames (merged by
	// TSO), which the kernel cuts.
	StackTSO
)

// BulkModes are every BulkMode, for a test's loop.
var BulkModes = []BulkMode{PeerTSO, PeerSegments, StackTSO}

func (m BulkMode) String() string {
	return [...]string{"peer TSO", "peer segments", "stack TSO"}[m]
}

// OffloadsBulk runs 32 MiB of TCP each way between the kernel in ns and a
// stack on ep (the kernel's end set up for mode by the caller), and
// checks the bytes (SHA-256), the kernel's counters (no retransmission
// storm), the stack's (no checksum error) and the link's: nothing too
// big, no bad offload, no drop, and super-frames or merged segments
// where mode says they come.
func OffloadsBulk(t *testing.T, ns *netns.NS, ep link.Endpoint, stats func() OffloadStats, mode BulkMode, kernelAddr, stackAddr netip.Prefix) {
	t.Helper()
	var tso *TSO
	if mode == StackTSO {
		tso = NewTSO(ep)
		ep = tso
	}
	s, _ := Stack(t, ep, stackAddr)
	before := Counters(t, ns)
	TCPBothWays(t, ns, s, kernelAddr.Addr(), stackAddr.Addr(), 32<<20)
	NoRetransStorm(t, ns, before)
	st := stats()
	t.Logf("link: %+v", st)
	if st.RxTooBig != 0 || st.RxBadOffload != 0 || st.TxDropped != 0 || st.RxCsumCompleted != 0 {
		t.Errorf("stats %+v", st)
	}
	if n := s.Stats().TCP.InCsumErrors; n != 0 {
		t.Errorf("the stack counted %d checksum errors", n)
	}
	switch mode {
	case PeerTSO:
		if st.RxGSO == 0 {
			t.Error("no super-frame from the kernel")
		}
	case PeerSegments:
		if st.RxGSO != 0 || st.RxCoalesced == 0 {
			t.Errorf("%d super-frames from the kernel, %d segments merged here", st.RxGSO, st.RxCoalesced)
		}
	case StackTSO:
		if n := tso.SuperFrames.Load(); n == 0 || st.TxGSO != n {
			t.Errorf("%d super-frames merged, %d written as such", n, st.TxGSO)
		}
	}
}

// SuperDatagramIn sends count datagrams of 1,000 bytes (the last 17
// short) to the stack's address from a kernel UDP socket in ns with
// UDP_SEGMENT: one super-datagram for the device. It reads ep in batches
// of five, fewer than the datagrams, and checks that no super-datagram
// reaches the reader, that each datagram has its own length and a good
// checksum, that they come in order, and that the link split one
// super-datagram. The kernel must know the stack's address on the link
// (a permanent neighbour entry on Ethernet).
func SuperDatagramIn(t *testing.T, ns *netns.NS, ep link.Endpoint, stats func() OffloadStats, stackAddr netip.Addr) {
	t.Helper()
	const seg, count = 1000, 23
	payload := gsotest.Bytes(seg*count-17, 5)
	dialKernelUDP(t, ns, stackAddr, func(c *net.UDPConn) error {
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
	})
	var got []byte
	datagrams := 0
	pkts := make([]link.Packet, 5)
	for i := range pkts {
		pkts[i].Buf = make([]byte, link.MaxSuperFrame)
	}
	m := ep.Medium()
	deadline := time.Now().Add(5 * time.Second)
	for datagrams < count && time.Now().Before(deadline) {
		n, err := ep.ReadBatch(pkts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range pkts[:n] {
			f := pkts[i].Frame()
			l, err := gso.Parse(f, m)
			if err != nil || l.Proto != 17 {
				continue // ARP, IPv6 noise
			}
			if pkts[i].Offload.GSOType != link.GSONone {
				t.Fatalf("a super-datagram reached the reader: %+v", pkts[i].Offload)
			}
			c := append([]byte(nil), f...)
			if !gso.Finish(c, m, pkts[i].Offload) || gsotest.Check(c, m) != nil {
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
	if st := stats(); st.RxSplit != 1 || st.RxGSO != 1 {
		t.Errorf("stats %+v: want one super-datagram split", st)
	}
}

// SuperDatagramOut writes one UDP super-datagram (GSOUDPL4, nine
// segments of 1,200 bytes) through ep from the stack's address to a
// kernel UDP socket in ns, and checks that the kernel's socket reads the
// datagrams it stands for, none longer than a segment, in order, and
// that the link wrote one super-frame. peerIf is the kernel's interface
// on an Ethernet link (its MAC is the frame's destination); it is
// unused on an IP link.
func SuperDatagramOut(t *testing.T, ns *netns.NS, ep link.Endpoint, stats func() OffloadStats, peerIf string, kernelAddr, stackAddr netip.Addr) {
	t.Helper()
	m := ep.Medium()
	var kmac net.HardwareAddr
	var uc *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		if m == link.Ethernet {
			if kmac, err = netns.HardwareAddr(peerIf); err != nil {
				return err
			}
		}
		uc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelAddr, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	port := uint16(uc.LocalAddr().(*net.UDPAddr).Port)
	const seg, count = 1200, 9
	s := gsotest.Seg{Medium: m, UDP: true, Src: stackAddr, Dst: kernelAddr, SrcPort: 4000, DstPort: port,
		Payload: gsotest.Bytes(seg*count-5, 9)}
	f := s.Frame()
	if m == link.Ethernet {
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
	if st := stats(); st.TxGSO != 1 || st.TxDropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// OffloadsAllocs checks that reading the kernel's datagrams from ep (with
// GRO) and writing TSO super-frames allocate nothing per frame. The
// kernel must know the stack's address on the link. The caller skips it
// under the race detector (sync.Pool drops items at random there).
func OffloadsAllocs(t *testing.T, ns *netns.NS, ep link.Endpoint, stats func() OffloadStats, kernelAddr, stackAddr netip.Addr) {
	t.Helper()
	var kc *net.UDPConn
	dialKernelUDP(t, ns, stackAddr, func(c *net.UDPConn) error {
		kc = c
		return nil
	})
	defer kc.Close()
	in := make([]link.Packet, 8)
	for i := range in {
		in[i].Buf = make([]byte, link.MaxSuperFrame)
	}
	seg := gsotest.Seg{Medium: ep.Medium(), Src: stackAddr, Dst: kernelAddr, SrcPort: 9, DstPort: 9, Seq: 1, Payload: gsotest.Bytes(40*1448, 1)}
	f := seg.Frame()
	out := []link.Packet{{Buf: f, N: len(f), Offload: seg.TSO(f, 1448)}}
	msg := make([]byte, 100)
	kc.Write(msg)
	ep.ReadBatch(in) // warm up
	allocs := testing.AllocsPerRun(200, func() {
		kc.Write(msg) // package net allocates nothing on a connected UDP write
		if _, err := ep.ReadBatch(in); err != nil {
			t.Fatal(err)
		}
		if _, err := ep.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read and super-frame write", allocs)
	}
	if st := stats(); st.TxGSO < 200 || st.TxDropped != 0 {
		t.Errorf("the super-frames were not all written: %+v", st)
	}
}

// dialKernelUDP opens a kernel UDP socket in ns connected to
// stackAddr:4000 and hands it to use inside the namespace; use closes
// it or keeps it for its caller to close.
func dialKernelUDP(t *testing.T, ns *netns.NS, stackAddr netip.Addr, use func(*net.UDPConn) error) {
	t.Helper()
	if err := ns.Do(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stackAddr, 4000)))
		if err != nil {
			return err
		}
		return use(c)
	}); err != nil {
		t.Fatal(err)
	}
}
