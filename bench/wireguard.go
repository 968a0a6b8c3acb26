package bench

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/ustack/ustack/wgnet"
)

// The WireGuard cases: two wireguard-go devices in this process, peers
// over loopback UDP (wireguard-go's default bind, real keys and
// encryption), each on a userspace network stack — wgnet (ustack) or
// wireguard-go's own tun/netstack (gVisor). The server is on one end, the
// client on the other; everything they send crosses the tunnel.

// WGMTU is the tunnel's MTU: wireguard-go's default.
const WGMTU = device.DefaultMTU

// Addresses inside the tunnel: the client's end and the server's.
var (
	wgClientIP = netip.MustParseAddr("192.168.4.28")
	wgServerIP = netip.MustParseAddr("192.168.4.29")
)

// wgStack is what a tunnel end needs of a userspace stack: the device
// for wireguard-go, and TCP listen and dial on its addresses.
type wgStack struct {
	dev    tun.Device
	listen func(netip.AddrPort) (net.Listener, error)
	dial   func(context.Context, netip.AddrPort) (net.Conn, error)
}

// wgCreate makes a stack with one address behind a device of WGMTU.
type wgCreate func(addr netip.Addr) (*wgStack, error)

// createWgnet is wgnet.CreateNetTUN.
func createWgnet(addr netip.Addr) (*wgStack, error) {
	dev, n, err := wgnet.CreateNetTUN([]netip.Addr{addr}, nil, WGMTU)
	if err != nil {
		return nil, err
	}
	return &wgStack{
		dev: dev,
		listen: func(a netip.AddrPort) (net.Listener, error) {
			l, err := n.ListenTCPAddrPort(a)
			if err != nil {
				return nil, err
			}
			return l, nil
		},
		dial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			c, err := n.DialContextTCPAddrPort(ctx, a)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
	}, nil
}

// createNetstack is wireguard-go's netstack.CreateNetTUN.
func createNetstack(addr netip.Addr) (*wgStack, error) {
	dev, n, err := netstack.CreateNetTUN([]netip.Addr{addr}, nil, WGMTU)
	if err != nil {
		return nil, err
	}
	return &wgStack{
		dev: dev,
		listen: func(a netip.AddrPort) (net.Listener, error) {
			l, err := n.ListenTCPAddrPort(a)
			if err != nil {
				return nil, err
			}
			return l, nil
		},
		dial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			c, err := n.DialContextTCPAddrPort(ctx, a)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
	}, nil
}

// WGnet returns a Setup for the tunnel with wgnet on both ends.
func WGnet() Setup { return wgSetup(createWgnet) }

// WGNetstack returns a Setup for the tunnel with wireguard-go's
// netstack (gVisor) on both ends.
func WGNetstack() Setup { return wgSetup(createNetstack) }

func wgSetup(create wgCreate) Setup {
	return func(o Options) (Net, error) { return newWGTunnel(create) }
}

// wgTunnel is the Net of the WireGuard cases.
type wgTunnel struct {
	client, server *wgStack
	devs           []*device.Device
}

func newWGTunnel(create wgCreate) (*wgTunnel, error) {
	t := &wgTunnel{}
	type end struct {
		s         *wgStack
		dev       *device.Device
		priv, pub string
		port      string
		addr      netip.Addr
	}
	var ends [2]*end
	for i, addr := range []netip.Addr{wgClientIP, wgServerIP} {
		s, err := create(addr)
		if err != nil {
			t.Close()
			return nil, err
		}
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			s.dev.Close()
			t.Close()
			return nil, err
		}
		e := &end{s: s, addr: addr, priv: hex.EncodeToString(k.Bytes()), pub: hex.EncodeToString(k.PublicKey().Bytes())}
		e.dev = device.NewDevice(s.dev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
		t.devs = append(t.devs, e.dev)
		if err := e.dev.IpcSet("private_key=" + e.priv + "\nlisten_port=0\n"); err != nil {
			t.Close()
			return nil, err
		}
		if err := e.dev.Up(); err != nil {
			t.Close()
			return nil, err
		}
		cfg, err := e.dev.IpcGet()
		if err != nil {
			t.Close()
			return nil, err
		}
		for _, line := range strings.Split(cfg, "\n") {
			if p, ok := strings.CutPrefix(line, "listen_port="); ok {
				e.port = p
			}
		}
		if e.port == "" || e.port == "0" {
			t.Close()
			return nil, errors.New("wireguard-go: no listen port")
		}
		ends[i] = e
	}
	for i, e := range ends {
		p := ends[1-i]
		if err := e.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%s\nallowed_ip=%s/32\n", p.pub, p.port, p.addr)); err != nil {
			t.Close()
			return nil, err
		}
	}
	t.client, t.server = ends[0].s, ends[1].s
	return t, nil
}

func (t *wgTunnel) Listen() (net.Listener, error) {
	return t.server.listen(netip.AddrPortFrom(wgServerIP, 0))
}

func (t *wgTunnel) Dial(ctx context.Context, addr net.Addr) (net.Conn, error) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("tunnel dial: %T is not a TCP address", addr)
	}
	ap := ta.AddrPort()
	return t.client.dial(ctx, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// Close takes the wireguard-go devices down, then closes them, which
// closes their tun devices and so the stacks. Down first: Device.Close
// closes the tun before it stops the peers, and netstack's tun closes
// the channel its stack writes to while a peer's receiver may still be
// handing it a packet (whose answer, a RST, is then sent on the closed
// channel: a panic, seen once in make test). Down stops the peers and
// waits for their receivers, so nothing is written to a closing tun.
func (t *wgTunnel) Close() error {
	for _, d := range t.devs {
		d.Down()
	}
	for _, d := range t.devs {
		d.Close()
	}
	return nil
}

// Metric names of the WireGuard workloads.
const (
	MPeakMiB  = "peak MiB"      // HTTP: the most heap and stacks in use during the transfer, above the idle tunnel
	MPeakLive = "peak live MiB" // HTTP: the most heap found live by a collection during the transfer, above the idle tunnel
	MEndMiB   = "MiB/end"       // tunnel: heap and stacks of one idle end, after a first request
)

// HTTPSize returns the body of one HTTP GET measurement: 256 MiB per
// second of o.Duration, at least 8 MiB.
func HTTPSize(o Options) int64 {
	return max(int64(256<<20*o.Duration.Seconds()), 8<<20)
}

// HTTPGet serves net/http on the Net's server side and fetches one body
// of HTTPSize(o) bytes with net/http from its client side, checking its
// SHA-256. The figures are the goodput from the request to the body's
// end, the whole process's CPU per GiB (both stacks, both wireguard-go
// devices and their encryption), and the most heap and goroutine stacks
// in use while it ran, above what the Net held before, sampled every
// 10 ms.
func HTTPGet(ctx context.Context, n Net, o Options) (Sample, error) {
	ln, err := n.Listen()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	size := HTTPSize(o)
	want := bodyHash(size)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, &constReader{size: size})
	})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	defer func() {
		srv.Close()
		<-served
	}()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return n.Dial(ctx, ln.Addr()) }}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: o.Duration*20 + grace}
	base := liveBytes()
	var peak, peakLive atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		ms := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/stack/starting-size:bytes"}}
		for {
			metrics.Read(ms)
			if v := ms[1].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			if v := ms[0].Value.Uint64(); v > peakLive.Load() {
				peakLive.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	cpu0, start := cpuTime(), time.Now()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/", nil)
	resp, err := c.Do(req)
	var got int64
	h := sha256.New()
	if err == nil {
		got, err = io.Copy(h, resp.Body)
		resp.Body.Close()
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	close(stop)
	sampler.Wait()
	if err != nil {
		return nil, fmt.Errorf("GET after %d of %d bytes: %w", got, size, err)
	}
	if got != size || hex.EncodeToString(h.Sum(nil)) != want {
		return nil, fmt.Errorf("GET: %d bytes, SHA-256 %x; want %d bytes, %s", got, h.Sum(nil), size, want)
	}
	gib := float64(got) / (1 << 30)
	return Sample{
		MGbps:      float64(got) * 8 / elapsed.Seconds() / 1e9,
		MCPUPerGiB: cpu.Seconds() / gib,
		MBytes:     float64(got),
		MPeakMiB:   (float64(peak.Load()) - float64(base)) / (1 << 20),
		MPeakLive:  (float64(peakLive.Load()) - float64(base)) / (1 << 20),
	}, nil
}

// constReader is the HTTP body: size bytes of a repeating pattern that
// is cheap to produce, so the server's CPU goes to the stacks and the
// tunnel. Its bytes depend on their position only.
type constReader struct{ pos, size int64 }

var constChunk = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

func (r *constReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.pos < r.size {
		k := copy(p[n:], constChunk[r.pos%int64(len(constChunk)):])
		k = int(min(int64(k), r.size-r.pos))
		n += k
		r.pos += int64(k)
	}
	return n, nil
}

// bodyHash is the SHA-256 of a constReader's size bytes, in hex.
func bodyHash(size int64) string {
	h := sha256.New()
	io.Copy(h, &constReader{size: size})
	return hex.EncodeToString(h.Sum(nil))
}

func showHTTP(ss []Sample) string {
	return show(ss, MGbps, sig) + " Gbit/s; CPU " + show(ss, MCPUPerGiB, sig) + " s/GiB; peak " + show(ss, MPeakMiB, sig) + " MiB (live " + show(ss, MPeakLive, sig) + " MiB)"
}

// TunnelMem measures what an idle tunnel end costs: the heap and
// goroutine stacks in use after collection, once a first connection has
// been made and closed (so the device's and stack's buffers of a
// transfer exist), above what was in use before the tunnel was made,
// divided by its two ends (each a wireguard-go device and a stack).
func TunnelMem(setup Setup) *Cell {
	return &Cell{
		Show: func(ss []Sample) string { return show(ss, MEndMiB, sig) + " MiB" },
		Run: func(ctx context.Context, o Options) (Sample, error) {
			base := settledLiveBytes()
			n, err := setup(o)
			if err != nil {
				return nil, err
			}
			defer n.Close()
			// A small HTTP GET warms the tunnel: handshake, buffers.
			if _, err := HTTPGet(ctx, n, Options{Duration: time.Millisecond}); err != nil {
				return nil, err
			}
			live := settledLiveBytes()
			runtime.KeepAlive(n)
			return Sample{MEndMiB: (float64(live) - float64(base)) / 2 / (1 << 20)}, nil
		},
	}
}

// WireGuardTable is issue 14's comparison: the same workloads through a
// WireGuard tunnel between two wireguard-go devices in one process, on
// wgnet and on wireguard-go's own netstack.
func WireGuardTable() *Table {
	t := &Table{
		Title:  "WireGuard in one process: wgnet (ustack) beside wireguard-go's netstack (gVisor)",
		Corner: "case",
		Cols:   []string{"wgnet", "netstack"},
	}
	setups := []Setup{WGnet(), WGNetstack()}
	row := func(name, target string, show func([]Sample) string, w func(ctx context.Context, n Net, o Options) (Sample, error)) {
		r := &Row{Name: name, Target: target}
		for _, s := range setups {
			r.Cells = append(r.Cells, cell(s, show, w))
		}
		t.Rows = append(t.Rows, r)
	}
	row("HTTP GET, 256 MiB body", "", showHTTP, HTTPGet)
	row("rr 64 B", "", showRR, RR)
	row("crr, 8 clients", "", showCRR, func(ctx context.Context, n Net, o Options) (Sample, error) { return CRR(ctx, n, o, 8) })
	row("idle memory per connection end, no goroutine", "", showMem,
		func(ctx context.Context, n Net, o Options) (Sample, error) { return Mem(ctx, n, o, MemNoReader) })
	t.Rows = append(t.Rows, &Row{Name: "memory of an idle tunnel end (device + stack)", Cells: []*Cell{TunnelMem(setups[0]), TunnelMem(setups[1])}})
	t.Notes = []string{
		"Two wireguard-go devices (" + wgVersion + ") in this process, peers over loopback UDP (its default bind: batches of 128, UDP GSO/GRO), MTU " + itoa(WGMTU) + "; each on wgnet.CreateNetTUN or netstack.CreateNetTUN. The server is one end, the client the other; every byte is encrypted and decrypted once.",
		"HTTP GET: net/http serves a constant body of 256 MiB per second of -duration (the quick run: 8 MiB) on the server end, net/http fetches it through the client end's DialContext and checks its SHA-256; goodput from request to the body's end; CPU is the whole process's (both stacks, both devices, the encryption); peak is the most heap and goroutine stacks in use during it (sampled every 10 ms), above the tunnel's before.",
		"rr, crr and idle memory per connection: the workloads of the in-process table, through the tunnel (memory: " + itoa(Full().Pairs) + " pairs in the full run). wgnet's connections park after a second idle like any ustack connection's, but this row does not wait for them (wgnet does not expose its stack's counters): its figure is of whatever share had parked when it was taken.",
		"Memory of an idle tunnel end: heap and stacks after GC, once a first request has gone through, above what was in use before the tunnel was made, per end (a wireguard-go device with its buffers and a stack).",
	}
	return t
}

// wgVersion is the wireguard-go version both columns run on.
const wgVersion = "golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446"
