package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pcap"
	"github.com/ustack/ustack/link/pipe"
)

func init() {
	commands["demo"] = command{"two stacks in one process: net/http download over a simulated link", runDemo}
}

func runDemo(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ustack demo [flags]")
		fmt.Fprintln(fs.Output(), "\nTwo ustack stacks in one process, joined by an in-memory link with a delay and a")
		fmt.Fprintln(fs.Output(), "bandwidth limit. The server is net/http on one stack; the client downloads a body")
		fmt.Fprintln(fs.Output(), "on the other and checks its SHA-256. Needs no privileges.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	size := fs.String("size", "256MiB", "size of the body to download")
	delay := fs.Duration("delay", 5*time.Millisecond, "one-way delay of the link")
	bw := fs.String("bandwidth", "1gbit", "bandwidth of the link in tc units (0: unlimited)")
	mtu := fs.Int("mtu", 1500, "MTU of the link")
	queue := fs.Int("queue", 1000, "depth of the link's drop-tail queue, in frames")
	imp := fs.String("impair", "", `extra impairments, e.g. "loss=1%,jitter=1ms" (see package impair)`)
	pcapFile := fs.String("pcap", "", "write a pcap capture of the client's link to `FILE`")
	seed := fs.Uint64("seed", 1, "seed of the impairments")
	ccName := fs.String("cc", "", "congestion control of both stacks (cubic, reno, bbr; default cubic)")
	pacing := fs.Bool("pacing", false, "pace CUBIC and Reno as Linux does with the fq qdisc (BBR always paces)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `FILE`")
	traceFile := fs.String("trace", "", "write an execution trace to `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	n, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ustack demo:", err)
		return 2
	}
	rate, err := impair.ParseRate(*bw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ustack demo: -bandwidth:", err)
		return 2
	}
	pc := pipe.Config{MTU: *mtu, Delay: *delay, Bandwidth: rate, QueueLen: *queue, Seed: *seed}
	if *imp != "" {
		ic, err := impair.ParseConfig(*imp)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ustack demo: -impair:", err)
			return 2
		}
		if ic.Delay == 0 {
			ic.Delay = *delay
		}
		if ic.Rate == 0 {
			ic.Rate = rate
		}
		if ic.Queue == 0 {
			ic.Queue = *queue
		}
		pc.Impair = &ic
	}
	stop, err := startProfiles(*cpuProfile, *traceFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ustack demo:", err)
		return 2
	}
	defer stop()
	d := demo{size: n, pipe: pc, pcap: *pcapFile, out: os.Stdout}
	d.stack.TCP.Congestion, d.stack.TCP.Pacing = *ccName, *pacing
	if err := d.run(); err != nil {
		fmt.Fprintln(os.Stderr, "ustack demo:", err)
		return 1
	}
	return 0
}

// demo is one run of the demo.
type demo struct {
	size int64
	pipe pipe.Config
	pcap string
	out  io.Writer
	// stack configures both stacks (congestion control, pacing).
	stack ustack.Config
}

var (
	serverAddr = netip.MustParsePrefix("10.0.0.1/24")
	clientAddr = netip.MustParsePrefix("10.0.0.2/24")
)

func (d *demo) run() error {
	ea, eb := pipe.New(d.pipe)
	var clientLink link.Endpoint = eb
	if d.pcap != "" {
		p, err := pcap.Create(eb, d.pcap)
		if err != nil {
			ea.Close()
			return err
		}
		clientLink = p
	}
	server, err := ustack.New(d.stack)
	if err != nil {
		return err
	}
	defer server.Close()
	client, err := ustack.New(d.stack)
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := server.AddNIC(ea, ustack.NICConfig{Name: "a", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Addrs: []netip.Prefix{serverAddr}}); err != nil {
		return err
	}
	if _, err := client.AddNIC(clientLink, ustack.NICConfig{Name: "b", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Addrs: []netip.Prefix{clientAddr}}); err != nil {
		return err
	}

	ln, err := server.Listen("tcp", ":80")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(serveBytes)}
	go srv.Serve(ln)
	defer srv.Close()

	rateStr := "unlimited"
	if d.pipe.Bandwidth > 0 {
		rateStr = impair.FormatRate(d.pipe.Bandwidth)
	}
	fmt.Fprintf(d.out, "ustack demo: two stacks in one process over an in-memory link (%v one-way, %s, MTU %d, queue %d frames)\n",
		d.pipe.Delay, rateStr, d.pipe.MTU, d.pipe.QueueLen)
	if d.pipe.Impair != nil {
		fmt.Fprintf(d.out, "  impairments: %v\n", d.pipe.Impair)
	}
	url := fmt.Sprintf("http://%v/bytes/%d", serverAddr.Addr(), d.size)
	fmt.Fprintf(d.out, "  server %v:80 is net/http on ustack; client %v fetches %s\n", serverAddr.Addr(), clientAddr.Addr(), url)

	var conn *ustack.TCPConn
	var mu sync.Mutex
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := client.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				conn = c.(*ustack.TCPConn)
				mu.Unlock()
			}
			return c, err
		},
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()

	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return err
	}
	h := sha256.New()
	got, err := d.copyWithProgress(h, resp.Body, start)
	resp.Body.Close()
	elapsed := time.Since(start)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	fmt.Fprintln(d.out)
	if err != nil {
		return fmt.Errorf("download failed after %s: %w", formatBytes(got), err)
	}
	cpu := tvDur(ru1.Utime) - tvDur(ru0.Utime) + tvDur(ru1.Stime) - tvDur(ru0.Stime)
	bps := float64(got) * 8 / elapsed.Seconds()
	fmt.Fprintf(d.out, "done: %s in %.2f s = %s; CPU %.2f s (%.0f%% of one core)\n",
		formatBytes(got), elapsed.Seconds(), formatBits(bps), cpu.Seconds(), 100*cpu.Seconds()/elapsed.Seconds())

	mu.Lock()
	c := conn
	mu.Unlock()
	if c != nil {
		ci := c.Info()
		var retrans uint64
		var sender string
		for _, sc := range server.Conns() {
			if sc.Remote == c.LocalAddrPort() {
				si := sc.Info
				retrans = si.TotalRetrans
				sender = fmt.Sprintf("server: %s, cwnd %d segments, ssthresh %d, send buffer %s; client's receive buffer %s\n",
					si.CongestionControl, si.Cwnd/max(si.SndMSS, 1), si.Ssthresh/max(si.SndMSS, 1),
					formatBytes(int64(si.SndBuf)), formatBytes(int64(ci.RcvBuf)))
			}
		}
		defer fmt.Fprint(d.out, sender)
		fmt.Fprintf(d.out, "connection %v -> %v: rtt %v (var %v), mss %d, window scale %d/%d, SACK %v, timestamps %v; server retransmitted %d segments\n",
			c.LocalAddrPort(), c.RemoteAddrPort(), ci.RTT.Round(10*time.Microsecond), ci.RTTVar.Round(10*time.Microsecond),
			ci.RcvMSS, ci.SndWScale, ci.RcvWScale, ci.SACK, ci.Timestamps, retrans)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	want := resp.Trailer.Get("X-Body-Sha256")
	printLink(d.out, "server->client", ea.Stats())
	printLink(d.out, "client->server", eb.Stats())
	printCounters(d.out, client, server)
	if got != d.size {
		return fmt.Errorf("received %d bytes, want %d", got, d.size)
	}
	if sum != want {
		return fmt.Errorf("SHA-256 mismatch: received %s, server sent %s", sum, want)
	}
	fmt.Fprintf(d.out, "SHA-256 %s matches the server's\n", sum)
	return nil
}

func tvDur(tv syscall.Timeval) time.Duration {
	return time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
}

// copyWithProgress copies src to dst, printing a progress line a few
// times a second.
func (d *demo) copyWithProgress(dst hash.Hash, src io.Reader, start time.Time) (int64, error) {
	buf := make([]byte, 256<<10)
	var got int64
	last := start
	for {
		k, err := src.Read(buf)
		dst.Write(buf[:k])
		got += int64(k)
		if now := time.Now(); now.Sub(last) >= 250*time.Millisecond || err == io.EOF {
			last = now
			pct := 100.0
			if d.size > 0 {
				pct = 100 * float64(got) / float64(d.size)
			}
			fmt.Fprintf(d.out, "\r  %s / %s  %3.0f%%  %s   ", formatBytes(got), formatBytes(d.size), pct,
				formatBits(float64(got)*8/now.Sub(start).Seconds()))
		}
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// serveBytes answers /bytes/N with N pseudo-random bytes and their
// SHA-256 in the X-Body-Sha256 trailer.
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/bytes/"), 10, 64)
	if err != nil || n < 0 {
		http.Error(w, "usage: /bytes/N", http.StatusBadRequest)
		return
	}
	w.Header().Set("Trailer", "X-Body-Sha256")
	w.Header().Set("Content-Type", "application/octet-stream")
	h := sha256.New()
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(n))
	src := rand.NewChaCha8(key)
	buf := make([]byte, 256<<10)
	for left := n; left > 0; {
		k := int64(len(buf))
		if left < k {
			k = left
		}
		src.Read(buf[:k])
		h.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		left -= k
	}
	w.Header().Set("X-Body-Sha256", hex.EncodeToString(h.Sum(nil)))
}

// printLink prints one direction of the demo's link: the frames its
// writer handed over, the wire frames they became, and every drop by
// reason — the link's queue (drop-tail in front of the bandwidth limit),
// the receiver's ring (frames arrived but not yet read), the bound on
// frames held by a link without a bandwidth limit, the impairments — with the
// mean and longest time a frame waited in the queue.
func printLink(w io.Writer, dir string, s pipe.Stats) {
	c := &s.Impair
	fmt.Fprintf(w, "link %s: %d frames written (%d super-frames cut into %d wire frames), %d delivered; dropped: queue %d, receiver's ring %d, held-frames limit %d, loss %d, AQM %d, other %d",
		dir, s.TxFrames, s.TxSegmented, s.TxSegments, c.Delivered,
		c.DroppedQueue, s.DroppedUnread, s.TxQueueFull, c.DroppedLoss, c.DroppedAQM,
		s.TxTooBig+s.TxBadOffload+c.DroppedMTU+c.DroppedDown)
	if c.Queued > 0 {
		fmt.Fprintf(w, "; queue delay mean %v, max %v",
			(c.QueueDelay / time.Duration(c.Queued)).Round(time.Microsecond), c.MaxQueueDelay.Round(time.Microsecond))
	}
	fmt.Fprintln(w)
}

// printCounters prints the non-zero counters of both stacks side by side.
func printCounters(w io.Writer, client, server *ustack.Stack) {
	cs, ss := client.Stats(), server.Stats()
	cm, sm := cs.Map(), ss.Map()
	names := map[string]bool{}
	for k := range cm {
		names[k] = true
	}
	for k := range sm {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "counters:%30s %14s\n", "client", "server")
	for _, k := range keys {
		fmt.Fprintf(w, "  %-32s %12d %14d\n", k, cm[k], sm[k])
	}
}
