package wgnet

import (
	"bufio"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// tunnel is two wireguard-go devices in this process, peers of each
// other over loopback UDP (wireguard-go's default bind), each on a wgnet
// device: A and B are their Nets.
type tunnel struct {
	A, B       *Net
	devA, devB *device.Device
}

// side describes one end of a tunnel.
type side struct {
	addrs []netip.Addr // the Net's addresses
	dns   []netip.Addr // its DNS servers
	mtu   int          // 0: wireguard-go's default, 1420
}

// wgKey is a WireGuard key pair in the hex form of wireguard-go's UAPI.
type wgKey struct{ priv, pub string }

func newKey(t testing.TB) wgKey {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return wgKey{hex.EncodeToString(k.Bytes()), hex.EncodeToString(k.PublicKey().Bytes())}
}

// testLogger passes wireguard-go's errors to the test log while the
// test runs (a log after the test ends would panic).
func testLogger(t testing.TB, name string) *device.Logger {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				t.Logf("wireguard-go %s: %s", name, fmt.Sprintf(format, args...))
			}
		},
	}
}

// newTunnel makes the two ends, brings them up and makes them peers.
// Everything is closed by t.Cleanup.
func newTunnel(t testing.TB, a, b side) *tunnel {
	t.Helper()
	tn := &tunnel{}
	type end struct {
		s    side
		key  wgKey
		dev  *device.Device
		net  *Net
		port int
	}
	ends := []*end{{s: a, key: newKey(t)}, {s: b, key: newKey(t)}}
	for i, e := range ends {
		mtu := e.s.mtu
		if mtu == 0 {
			mtu = device.DefaultMTU
		}
		td, n, err := CreateNetTUN(e.s.addrs, e.s.dns, mtu)
		if err != nil {
			t.Fatalf("CreateNetTUN: %v", err)
		}
		e.net = n
		e.dev = device.NewDevice(td, conn.NewDefaultBind(), testLogger(t, string(rune('A'+i))))
		t.Cleanup(e.dev.Close)
		if err := e.dev.IpcSet("private_key=" + e.key.priv + "\nlisten_port=0\n"); err != nil {
			t.Fatal(err)
		}
		if err := e.dev.Up(); err != nil {
			t.Fatal(err)
		}
		e.port = listenPort(t, e.dev)
	}
	for i, e := range ends {
		peer := ends[1-i]
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "public_key=%s\nendpoint=127.0.0.1:%d\n", peer.key.pub, peer.port)
		for _, a := range peer.s.addrs {
			fmt.Fprintf(&cfg, "allowed_ip=%s\n", netip.PrefixFrom(a, a.BitLen()))
		}
		if err := e.dev.IpcSet(cfg.String()); err != nil {
			t.Fatal(err)
		}
	}
	tn.A, tn.B, tn.devA, tn.devB = ends[0].net, ends[1].net, ends[0].dev, ends[1].dev
	return tn
}

// listenPort reads the UDP port a device's bind took.
func listenPort(t testing.TB, d *device.Device) int {
	t.Helper()
	cfg, err := d.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(cfg))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "listen_port="); ok {
			p, err := strconv.Atoi(v)
			if err != nil || p == 0 {
				t.Fatalf("listen_port %q", v)
			}
			return p
		}
	}
	t.Fatalf("no listen_port in %q", cfg)
	return 0
}

// directPair joins two wgnet devices without wireguard-go: a goroutine
// per direction reads a batch from one device and writes it to the
// other, with wireguard-go's batch shape and offset. It runs in a
// testing/synctest bubble (nothing in it touches the operating system),
// which makes DNS timeouts exact and instant. stop ends the pumps and
// closes the devices.
type directPair struct {
	A, B       *Net
	devA, devB tun.Device
	wg         sync.WaitGroup

	mu   sync.Mutex // guards drop, and is held while it runs
	drop func(pkt []byte) bool
}

// SetDrop makes f see each packet from A to B (under p.mu); true loses
// it.
func (p *directPair) SetDrop(f func(pkt []byte) bool) {
	p.mu.Lock()
	p.drop = f
	p.mu.Unlock()
}

// pumpOffset is where wireguard-go puts the packet in its buffers (the
// room for its transport header, device.MessageTransportHeaderSize).
const pumpOffset = 16

func newDirectPair(t testing.TB, a, b side) *directPair {
	t.Helper()
	p := &directPair{}
	var err error
	mtu := func(s side) int {
		if s.mtu == 0 {
			return device.DefaultMTU
		}
		return s.mtu
	}
	if p.devA, p.A, err = CreateNetTUN(a.addrs, a.dns, mtu(a)); err != nil {
		t.Fatal(err)
	}
	if p.devB, p.B, err = CreateNetTUN(b.addrs, b.dns, mtu(b)); err != nil {
		t.Fatal(err)
	}
	p.wg.Add(2)
	go p.pump(p.devA, p.devB, true)
	go p.pump(p.devB, p.devA, false)
	t.Cleanup(p.stop)
	return p
}

func (p *directPair) pump(from, to tun.Device, aToB bool) {
	defer p.wg.Done()
	bs := from.BatchSize()
	bufs := make([][]byte, bs)
	for i := range bufs {
		bufs[i] = make([]byte, pumpOffset+65535)
	}
	sizes := make([]int, bs)
	out := make([][]byte, 0, bs)
	for {
		k, err := from.Read(bufs, sizes, pumpOffset)
		if err != nil {
			return
		}
		out = out[:0]
		p.mu.Lock()
		for i := range k {
			pkt := bufs[i][:pumpOffset+sizes[i]]
			if aToB && p.drop != nil && p.drop(pkt[pumpOffset:]) {
				continue
			}
			out = append(out, pkt)
		}
		p.mu.Unlock()
		if _, err := to.Write(out, pumpOffset); err != nil {
			return
		}
	}
}

func (p *directPair) stop() {
	p.devA.Close()
	p.devB.Close()
	p.wg.Wait()
}

// body is a deterministic stream of n pseudo-random bytes.
type body struct {
	r    *mrand.ChaCha8
	left int64
}

func newBody(seed uint64, n int64) *body {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return &body{r: mrand.NewChaCha8(key), left: n}
}

func (b *body) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	b.r.Read(p)
	b.left -= int64(len(p))
	return len(p), nil
}

// bodySum is the SHA-256 of newBody(seed, n).
func bodySum(seed uint64, n int64) string {
	h := sha256.New()
	io.Copy(h, newBody(seed, n))
	return hex.EncodeToString(h.Sum(nil))
}
