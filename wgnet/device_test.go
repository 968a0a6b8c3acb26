package wgnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// echoPacket returns an IPv4 ICMP echo request from src to dst with
// identifier id, at offset off of a buffer.
func echoPacket(src, dst netip.Addr, id uint16, off int) []byte {
	m := make([]byte, 8+4)
	f := wire.ICMPv4Fields{Type: wire.ICMPv4EchoRequest, ID: id, Seq: 1, Payload: []byte("ping")}
	f.Encode(m)
	h := wire.IPv4Fields{TotalLen: uint16(wire.IPv4HeaderLen + len(m)), TTL: 64, Protocol: wire.ProtoICMP, Src: src, Dst: dst}
	b := make([]byte, off+wire.IPv4HeaderLen+len(m))
	h.Encode(b[off:])
	copy(b[off+wire.IPv4HeaderLen:], m)
	return b
}

// TestDevice: the tun.Device as wireguard-go sees it — Name "go", no
// File, the MTU given, BatchSize DeviceBatchSize, EventUp first; Write takes
// packets at an offset (skipping empty ones) and the stack's answers
// come out of Read at the offset asked, several per call; a packet that
// is neither IPv4 nor IPv6 fails the Write with EAFNOSUPPORT.
func TestDevice(t *testing.T) {
	leaktest.Check(t)
	dev, n, err := CreateNetTUN([]netip.Addr{ip4A}, nil, 1400)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if name, err := dev.Name(); name != "go" || err != nil {
		t.Errorf("Name = %q, %v", name, err)
	}
	if mtu, err := dev.MTU(); mtu != 1400 || err != nil {
		t.Errorf("MTU = %d, %v", mtu, err)
	}
	if dev.File() != nil || dev.BatchSize() != DeviceBatchSize {
		t.Errorf("File %v, BatchSize %d", dev.File(), dev.BatchSize())
	}
	select {
	case ev := <-dev.Events():
		if ev != tun.EventUp {
			t.Errorf("first event %v, want EventUp", ev)
		}
	default:
		t.Error("no EventUp")
	}
	peer := netip.MustParseAddr("10.9.9.9")
	const off = 16
	in := [][]byte{echoPacket(peer, ip4A, 1, off), make([]byte, off), echoPacket(peer, ip4A, 2, off), echoPacket(peer, ip4A, 3, off)}
	if k, err := dev.Write(in, off); k != len(in) || err != nil {
		t.Fatalf("Write = %d, %v", k, err)
	}
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{0xee}, 2000)
	}
	sizes := make([]int, 4)
	var ids []uint16
	for len(ids) < 3 {
		k, err := dev.Read(bufs, sizes, off)
		if err != nil {
			t.Fatal(err)
		}
		for i := range k {
			if !bytes.Equal(bufs[i][:off], bytes.Repeat([]byte{0xee}, off)) {
				t.Fatalf("Read wrote before the offset")
			}
			ip, err := wire.ParseIPv4(bufs[i][off : off+sizes[i]])
			if err != nil || ip.Src() != ip4A || ip.Dst() != peer || ip.Protocol() != wire.ProtoICMP || !ip.ChecksumValid() {
				t.Fatalf("packet %d: % x (%v)", i, bufs[i][off:off+sizes[i]], err)
			}
			m := wire.ICMPv4(ip.Payload())
			if m.Type() != wire.ICMPv4EchoReply || !m.ChecksumValid() {
				t.Fatalf("not an echo reply: % x", m)
			}
			ids = append(ids, m.ID())
		}
	}
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 2 || ids[2] != 3 {
		t.Errorf("replies to %v, want 1 2 3 in order", ids)
	}
	bad := echoPacket(peer, ip4A, 4, off)
	bad[off] = 0x55
	if k, err := dev.Write([][]byte{echoPacket(peer, ip4A, 5, off), bad}, off); k != 0 || !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("Write of a version-5 packet = %d, %v; want EAFNOSUPPORT", k, err)
	}
	// The packet before the bad one was taken: its reply comes.
	if k, err := dev.Read(bufs, sizes, off); err != nil || k != 1 || wire.ICMPv4(bufs[0][off+20:off+sizes[0]]).ID() != 5 {
		t.Errorf("after the bad packet: Read = %d, %v", k, err)
	}
	if st := n.s.Stats().Net; st.InEchos != 4 {
		t.Errorf("the stack got %d echo requests, want 4", st.InEchos)
	}
	// Bad calls fail or drop, and never panic: a negative offset, a
	// buffer shorter than the offset (skipped on Write; on Read, too
	// short for the packet, which is dropped and counted).
	if _, err := dev.Write(in, -1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Write with offset -1: %v", err)
	}
	if _, err := dev.Read(bufs, sizes, -1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Read with offset -1: %v", err)
	}
	if k, err := dev.Write([][]byte{make([]byte, 3), echoPacket(peer, ip4A, 6, off)}, off); k != 2 || err != nil {
		t.Errorf("Write with a short buffer = %d, %v", k, err)
	}
	if k, err := dev.Read([][]byte{make([]byte, 10)}, sizes, off); k != 0 || err != nil {
		t.Errorf("Read into a buffer shorter than the offset = %d, %v; want the packet dropped", k, err)
	}
	if bad := n.dev.l.stats.outBad.Load(); bad != 1 {
		t.Errorf("%d packets dropped for short buffers, want 1", bad)
	}
}

// TestDeviceClose: Close wakes a blocked Read with os.ErrClosed, makes
// Write fail the same way, closes the events channel, closes every
// socket of the Net (a blocked Accept returns), refuses new ones, and
// leaves no goroutine; a second Close does nothing.
func TestDeviceClose(t *testing.T) {
	leaktest.Check(t)
	dev, n, err := CreateNetTUN([]netip.Addr{ip4A}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n.ListenTCP(&net.TCPAddr{Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, err := dev.Read([][]byte{make([]byte, 2000)}, []int{0}, 0)
		errs <- err
	}()
	go func() {
		defer wg.Done()
		_, err := ln.Accept()
		errs <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := dev.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	var got []error
	for err := range errs {
		got = append(got, err)
	}
	if !(errors.Is(got[0], os.ErrClosed) && errors.Is(got[1], net.ErrClosed) || errors.Is(got[1], os.ErrClosed) && errors.Is(got[0], net.ErrClosed)) {
		t.Errorf("blocked Read and Accept returned %v", got)
	}
	if _, err := dev.Write([][]byte{echoPacket(ip4B, ip4A, 1, 0)}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	for range dev.Events() { // EventUp, then the channel is closed
	}
	if _, err := n.DialTCPAddrPort(netip.AddrPortFrom(ip4B, 80)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("DialTCP after Close: %v", err)
	}
	if _, err := n.ListenUDP(nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ListenUDP after Close: %v", err)
	}
	if err := dev.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCreateNetTUNErrors: what CreateNetTUN refuses, it refuses with an
// error and nothing left running: an address that is not one, an MTU
// no link can have.
func TestCreateNetTUNErrors(t *testing.T) {
	leaktest.Check(t)
	for _, tc := range []struct {
		addrs []netip.Addr
		mtu   int
	}{
		{[]netip.Addr{{}}, 1420},
		{[]netip.Addr{ip4A}, 0},
		{[]netip.Addr{ip4A}, 67},
		{[]netip.Addr{ip4A}, 65536},
		{[]netip.Addr{ip4A, ip4A}, 1420},
	} {
		if dev, _, err := CreateNetTUN(tc.addrs, nil, tc.mtu); err == nil {
			dev.Close()
			t.Errorf("CreateNetTUN(%v, %d) succeeded", tc.addrs, tc.mtu)
		}
	}
}

// TestDeviceOffloads: what the stack sends as 64 KiB super-segments
// comes out of Read as packets of at most the MTU, each with complete,
// valid IPv4 and TCP checksums (what must cross the tunnel), and the
// receiving device merges them back (GRO): the receiving stack handles
// far fewer segments than the tunnel carried, and every byte arrives.
func TestDeviceOffloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const mtu = 1420
		p := newDirectPair(t, side{addrs: []netip.Addr{ip4A}, mtu: mtu}, side{addrs: []netip.Addr{ip4B}, mtu: mtu})
		var packets, bad, big int
		p.SetDrop(func(pkt []byte) bool {
			packets++
			ip, err := wire.ParseIPv4(pkt)
			switch {
			case err != nil || !ip.ChecksumValid():
				bad++
			case len(pkt) > mtu:
				big++
			case ip.Protocol() == wire.ProtoTCP && wire.TCPChecksum(ip.Payload(), ip.Src(), ip.Dst()) != 0:
				bad++
			}
			return false
		})
		ln, err := p.B.ListenTCP(&net.TCPAddr{Port: 80})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		const size = 8 << 20
		got := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			got <- b
		}()
		c, err := p.A.DialTCPAddrPort(netip.AddrPortFrom(ip4B, 80))
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size)
		newBody(1, size).Read(data)
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("received %d bytes, not the %d sent", len(b), size)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if bad != 0 || big != 0 || packets < size/mtu {
			t.Errorf("%d packets through the tunnel, %d with a bad checksum, %d longer than the MTU", packets, bad, big)
		}
		segs := p.B.s.Stats().TCP.InSegs
		if merged := p.B.dev.l.gro.Merged; merged < uint64(packets)/2 || segs > uint64(packets)/4 {
			t.Errorf("B's stack handled %d segments of %d packets (%d merged)", segs, packets, merged)
		}
		if st := p.A.dev.l.stats.outBad.Load() + p.B.dev.l.stats.outBad.Load(); st != 0 {
			t.Errorf("%d frames could not be cut", st)
		}
	})
}

// TestLinkAllocs: the device's paths allocate nothing per packet once
// warm: a super-frame the stack hands over (WriteBatch), cut into
// packets by the device's Read; the packets given back by Write, merged
// by ReadBatch into super-frames again, with the same payload.
func TestLinkAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; make test runs this without it")
	}
	l := newTunLink(1420)
	defer l.Close()
	// A TCP super-frame of 40 segments, as the stack sends it.
	const mss, segs = 1380, 40
	payload := make([]byte, mss*segs)
	newBody(3, int64(len(payload))).Read(payload)
	src, dst := ip4A, ip4B
	tcpHdr := wire.TCPFields{SrcPort: 1000, DstPort: 80, Seq: 1, Ack: 1, Flags: wire.TCPFlagACK, Window: 1000}
	frame := make([]byte, 20+20+len(payload))
	h := wire.IPv4Fields{TotalLen: uint16(len(frame)), ID: 7, DF: true, TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
	h.Encode(frame)
	tcpHdr.Payload = payload
	tl := tcpHdr.Encode(frame[20:])
	if 20+tl != len(frame) {
		t.Fatalf("frame of %d bytes, TCP %d", len(frame), tl)
	}
	binary.BigEndian.PutUint16(frame[20+16:], wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, tl))
	out := []link.Packet{{Buf: frame, N: len(frame), Offload: link.Offload{
		GSOType: link.GSOTCPv4, GSOSize: mss, HdrLen: 40, NeedsCsum: true, CsumStart: 20, CsumOffset: 16}}}
	const off = 16
	bufs := make([][]byte, 128) // wireguard-go's batch
	for i := range bufs {
		bufs[i] = make([]byte, off+65535)
	}
	sizes := make([]int, 128)
	wbufs := make([][]byte, 128)
	in := make([]link.Packet, linkBatch)
	for i := range in {
		in[i].Buf = make([]byte, link.MaxSuperFrame)
	}
	round := func() {
		if k, err := l.WriteBatch(out); k != 1 || err != nil {
			panic(err)
		}
		// Read returns at most DeviceBatchSize packets a call.
		for got := 0; got < segs; {
			k, err := l.get(bufs, sizes, off)
			if err != nil || k != min(segs-got, DeviceBatchSize) {
				t.Fatalf("Read gave %d packets, %v; want %d", k, err, min(segs-got, DeviceBatchSize))
			}
			for i := range k {
				wbufs[i] = bufs[i][:off+sizes[i]]
			}
			if _, err := l.put(wbufs[:k], off); err != nil {
				panic(err)
			}
			got += k
		}
		// ReadBatch takes linkBatch packets at a time, each batch merged
		// into one super-frame: the payload comes back in order.
		for got := 0; got < len(payload); {
			n, err := l.ReadBatch(in)
			if err != nil || n != 1 {
				t.Fatalf("ReadBatch gave %d frames, %v; want one super-frame", n, err)
			}
			seg := in[0].Buf[40:in[0].N]
			if !bytes.Equal(seg, payload[got:got+len(seg)]) || in[0].Offload.GSOSize != mss {
				t.Fatalf("super-frame of %d bytes at %d: not the payload sent", len(seg), got)
			}
			got += len(seg)
		}
	}
	round()
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Errorf("%.2f allocations per round of %d packets", allocs, segs)
	}
}
