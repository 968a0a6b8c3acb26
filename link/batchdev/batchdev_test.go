package batchdev_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/leaktest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/batchdev"
)

// fakeDev is a device of wireguard-go's shape: packets written to one of
// a pair are read from the other, in batches. Like wireguard-go's Linux
// TUN with a virtio-net header, it writes a header of its own into the
// offset bytes in front of each packet it is given, and checks they are
// there.
type fakeDev struct {
	batch  int
	in     chan []byte // packets for Read
	peer   *fakeDev
	once   sync.Once
	closed chan struct{}
	hdr    int // bytes of "header" it writes before offset
}

func fakePair(batch, hdr int) (*fakeDev, *fakeDev) {
	a := &fakeDev{batch: batch, in: make(chan []byte, 4096), closed: make(chan struct{}), hdr: hdr}
	b := &fakeDev{batch: batch, in: make(chan []byte, 4096), closed: make(chan struct{}), hdr: hdr}
	a.peer, b.peer = b, a
	return a, b
}

var errShortOffset = errors.New("fakedev: offset too small for the header")

func (d *fakeDev) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < d.hdr {
		return 0, errShortOffset
	}
	var p []byte
	select {
	case p = <-d.in:
	case <-d.closed:
		return 0, os.ErrClosed
	}
	n := 0
	for {
		copy(bufs[n][offset-d.hdr:], bytes.Repeat([]byte{0xee}, d.hdr))
		sizes[n] = copy(bufs[n][offset:], p)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case p = <-d.in:
		default:
			return n, nil
		}
	}
}

func (d *fakeDev) Write(bufs [][]byte, offset int) (int, error) {
	if offset < d.hdr {
		return 0, errShortOffset
	}
	for i, b := range bufs {
		copy(b[offset-d.hdr:offset], bytes.Repeat([]byte{0xdd}, d.hdr))
		select {
		case d.peer.in <- bytes.Clone(b[offset:]):
		case <-d.closed:
			return i, os.ErrClosed
		}
	}
	return len(bufs), nil
}

func (d *fakeDev) BatchSize() int    { return d.batch }
func (d *fakeDev) MTU() (int, error) { return 1420, nil }
func (d *fakeDev) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

func stackOn(t *testing.T, dev batchdev.Device, cfg batchdev.Config, addr string) (*ustack.Stack, *batchdev.Endpoint) {
	t.Helper()
	ep, err := batchdev.New(dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ustack.New(ustack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddNIC(ep, ustack.NICConfig{Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}}); err != nil {
		t.Fatal(err)
	}
	return s, ep
}

// TestBatchDevice: two stacks over a pair of wireguard-shaped devices,
// with and without an offset (and a device that needs one), carry
// 8 MiB each way, checked by SHA-256; GRO merges segments where it is
// on; Close ends the readers.
func TestBatchDevice(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  batchdev.Config
		hdr  int
	}{
		{"offset0", batchdev.Config{}, 0},
		{"offset16-hdr10", batchdev.Config{Offset: 16}, 10},
		{"nogro", batchdev.Config{NoGRO: true, Offset: 10}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaktest.Check(t)
			synctest.Test(t, func(t *testing.T) {
				da, db := fakePair(32, tc.hdr)
				a, ea := stackOn(t, da, tc.cfg, "10.1.0.1/24")
				b, eb := stackOn(t, db, tc.cfg, "10.1.0.2/24")
				if ea.Medium() != link.IP || ea.MTU() != 1420 || ea.BatchSize() != 32 {
					t.Fatalf("medium %v mtu %d batch %d", ea.Medium(), ea.MTU(), ea.BatchSize())
				}
				if (ea.Caps() == 0) != tc.cfg.NoGRO {
					t.Fatalf("caps %b with NoGRO %v", ea.Caps(), tc.cfg.NoGRO)
				}
				ln, err := b.Listen("tcp", ":9")
				if err != nil {
					t.Fatal(err)
				}
				data := bytes.Repeat([]byte("0123456789abcdef"), 512<<10) // 8 MiB
				want := sha256.Sum256(data)
				go func() {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					io.Copy(c, c) // echo
					c.Close()
				}()
				c, err := a.Dial("tcp", "10.1.0.2:9")
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					c.Write(data)
					c.(*ustack.TCPConn).CloseWrite()
				}()
				h := sha256.New()
				if n, err := io.Copy(h, c); err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
					t.Fatalf("echo: %d bytes, %v", n, err)
				}
				c.Close()
				ln.Close()
				st := eb.Stats()
				if st.RxBad != 0 || st.TxErrors != 0 || st.RxPackets == 0 {
					t.Fatalf("stats %+v", st)
				}
				if merged := st.RxCoalesced > 0; merged == tc.cfg.NoGRO {
					t.Fatalf("GRO %v but %d segments merged", !tc.cfg.NoGRO, st.RxCoalesced)
				}
				if n := b.Stats().TCP.InCsumErrors; n != 0 {
					t.Fatalf("%d checksum errors", n)
				}
			})
		})
	}
}

// TestBatchDeviceBadInput: packets that are empty or not IP are dropped
// and counted; ReadBatch goes on with the rest; after Close, ReadBatch
// and WriteBatch fail with net.ErrClosed; a packet over the MTU is
// refused.
func TestBatchDeviceBadInput(t *testing.T) {
	da, db := fakePair(8, 0)
	ea, err := batchdev.New(da, batchdev.Config{})
	if err != nil {
		t.Fatal(err)
	}
	good := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	db.Write([][]byte{{}, {0x00, 1, 2}, good}, 0)
	pkts := make([]link.Packet, 8)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	n, err := ea.ReadBatch(pkts)
	if err != nil || n != 1 || !bytes.Equal(pkts[0].Frame(), good) {
		t.Fatalf("read %d, %v, %x", n, err, pkts[0].Frame())
	}
	if st := ea.Stats(); st.RxBad != 2 {
		t.Fatalf("stats %+v", st)
	}
	big := link.Packet{Buf: make([]byte, 2000), N: 1500}
	if _, err := ea.WriteBatch([]link.Packet{big}); !errors.Is(err, link.ErrFrameTooBig) {
		t.Fatalf("oversized write: %v", err)
	}
	done := make(chan error)
	go func() {
		_, err := ea.ReadBatch(pkts)
		done <- err
	}()
	ea.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadBatch after Close: %v", err)
	}
	if _, err := ea.WriteBatch(pkts[:1]); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v", err)
	}
}

// loopDev hands out the same batch of packets on every Read and takes
// every Write, allocating nothing: for the allocation check.
type loopDev struct{ pkt []byte }

func (d *loopDev) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for i := range bufs {
		sizes[i] = copy(bufs[i][offset:], d.pkt)
	}
	return len(bufs), nil
}
func (d *loopDev) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (d *loopDev) BatchSize() int                               { return 16 }
func (d *loopDev) MTU() (int, error)                            { return 1500, nil }
func (d *loopDev) Close() error                                 { return nil }

// TestBatchDeviceAllocs: reading and writing a batch allocates nothing
// once the staging buffers exist, with and without an offset.
func TestBatchDeviceAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (make allocs runs this)")
	}
	pkt := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	for _, off := range []int{0, 16} {
		ep, err := batchdev.New(&loopDev{pkt: pkt}, batchdev.Config{Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		pkts := make([]link.Packet, 16)
		for i := range pkts {
			pkts[i].Buf = make([]byte, link.MaxSuperFrame)
		}
		run := func() {
			n, err := ep.ReadBatch(pkts)
			if err != nil || n != 16 {
				t.Fatalf("read %d %v", n, err)
			}
			if _, err := ep.WriteBatch(pkts[:n]); err != nil {
				t.Fatal(err)
			}
		}
		run()
		if a := testing.AllocsPerRun(100, run); a != 0 {
			t.Errorf("offset %d: %.1f allocations per batch", off, a)
		}
	}
}
