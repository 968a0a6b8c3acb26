package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ustack/ustack/impair"
	"github.com/ustack/ustack/link/afpacket"
	"github.com/ustack/ustack/netem"
)

func init() {
	commands["netem"] = command{"impair the traffic between two interfaces (loss, delay, jitter, reordering, duplication, corruption, rate): netem in user space", runNetem}
}

// netemConfig is what the flags of netem say.
type netemConfig struct {
	a, b       string
	netns      string
	ab, ba     impair.Config
	seed       uint64
	limit      int
	afMode     afpacket.Mode
	statsEvery time.Duration
	verbose    bool
	out        io.Writer
	ready      func() // called once the bridge runs (tests)
}

func runNetem(args []string) int {
	fs := flag.NewFlagSet("netem", flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: ustack netem -a IFACE -b IFACE [-netns NS] -impair SPEC [-impair-ab SPEC] [-impair-ba SPEC] [-seed N]")
		fmt.Fprintln(w, "\nForwards every frame between interfaces A and B (an AF_PACKET socket on each) and")
		fmt.Fprintln(w, "impairs each direction, as Linux's netem qdisc would on a kernel that lacks it. Put A and B")
		fmt.Fprintln(w, "in a namespace of their own, without addresses, between two veth pairs (README, \"ustack")
		fmt.Fprintln(w, "netem\"). Runs until SIGINT or SIGTERM, then prints its counters.")
		fmt.Fprintln(w, "\nSPEC is a comma-separated list (package impair):")
		fmt.Fprintln(w, "  loss=1%  ge=p:1%/r:30%[/h:100%][/k:100%]  delay=50ms  jitter=10ms  dist=uniform|normal")
		fmt.Fprintln(w, "  keeporder  reorder=25%  dup=1%  corrupt=0.1%  corruptoff=14  rate=100mbit  queue=1000")
		fmt.Fprintln(w, "  queuebytes=64k  codel  target=5ms  interval=100ms  ecn  mtu=1500")
		fmt.Fprintln(w, "-impair applies to both directions; -impair-ab (A to B) and -impair-ba (B to A) replace")
		fmt.Fprintln(w, "it for one direction. Corruption flips one random bit at or after byte corruptoff of")
		fmt.Fprintln(w, "the frame (0: anywhere; 14 spares the Ethernet header). codel puts CoDel (RFC 8289) on the")
		fmt.Fprintln(w, "rate limit's queue; with ecn it marks ECN-capable packets CE instead of dropping them.")
		fmt.Fprintln(w, "\nNeeds CAP_NET_RAW in the interfaces' namespace (root, or `unshare -rn`).")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	var c netemConfig
	fs.StringVar(&c.a, "a", "", "interface A (required)")
	fs.StringVar(&c.b, "b", "", "interface B (required)")
	fs.StringVar(&c.netns, "netns", "", "open both interfaces inside this named network namespace")
	both := fs.String("impair", "", "impairments of both directions (`SPEC`)")
	ab := fs.String("impair-ab", "", "impairments of frames from A to B (`SPEC`; replaces -impair for that direction)")
	ba := fs.String("impair-ba", "", "impairments of frames from B to A (`SPEC`; replaces -impair for that direction)")
	seed := fs.Uint64("seed", 0, "seed of the random decisions; 0 picks one (printed, to repeat a run)")
	fs.IntVar(&c.limit, "limit", netem.DefaultLimit, "most frames held (delayed or queued) per direction, as netem's limit")
	mode := fs.String("afpacket-mode", "default", "AF_PACKET receive mode: mmsg (recvmmsg) or ring (TPACKET_V3)")
	fs.DurationVar(&c.statsEvery, "stats", 0, "print the counters this often (0: only on exit)")
	fs.BoolVar(&c.verbose, "v", false, "also print the AF_PACKET sockets' counters")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "ustack netem: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if c.a == "" || c.b == "" {
		return usage("-a IFACE and -b IFACE are required")
	}
	if c.a == c.b {
		return usage("-a and -b name the same interface %q", c.a)
	}
	var err error
	if c.ab, err = impair.ParseConfig(*both); err != nil {
		return usage("-impair: %v", err)
	}
	c.ba = c.ab
	if *ab != "" {
		if c.ab, err = impair.ParseConfig(*ab); err != nil {
			return usage("-impair-ab: %v", err)
		}
	}
	if *ba != "" {
		if c.ba, err = impair.ParseConfig(*ba); err != nil {
			return usage("-impair-ba: %v", err)
		}
	}
	if c.afMode, err = afpacket.ParseMode(*mode); err != nil {
		return usage("%v", err)
	}
	c.seed = *seed
	if c.seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		c.seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	c.out = os.Stdout
	stopProfiles, err := startProfiles(*cpuProfile, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ustack netem:", err)
		return 1
	}
	defer stopProfiles()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runBridge(ctx, &c); err != nil {
		fmt.Fprintln(os.Stderr, "ustack netem:", err)
		return 1
	}
	return 0
}

// runBridge runs the bridge until ctx is done or a link fails.
func runBridge(ctx context.Context, c *netemConfig) error {
	// The bridge forwards wire frames: no super-frames, no partial
	// checksums (the ends' peers must have segmentation offloads off).
	a, err := afpacket.Open(afpacket.Config{Interface: c.a, Netns: c.netns, Mode: c.afMode, NoOffloads: true})
	if err != nil {
		return err
	}
	b, err := afpacket.Open(afpacket.Config{Interface: c.b, Netns: c.netns, Mode: c.afMode, NoOffloads: true})
	if err != nil {
		a.Close()
		return err
	}
	br, err := netem.New(a, b, netem.Config{AB: c.ab, BA: c.ba, Seed: c.seed, Limit: c.limit})
	if err != nil {
		a.Close()
		b.Close()
		return err
	}
	where := ""
	if c.netns != "" {
		where = " in netns " + c.netns
	}
	fmt.Fprintf(c.out, "ustack netem: bridging %s and %s%s, seed %d, limit %d\n", c.a, c.b, where, c.seed, c.limit)
	fmt.Fprintf(c.out, "  %s -> %s: %v\n", c.a, c.b, c.ab)
	fmt.Fprintf(c.out, "  %s -> %s: %v\n", c.b, c.a, c.ba)
	if c.ready != nil {
		c.ready()
	}
	var tick <-chan time.Time
	if c.statsEvery > 0 {
		t := time.NewTicker(c.statsEvery)
		defer t.Stop()
		tick = t.C
	}
	start := time.Now()
	summary := func() {
		fmt.Fprintf(c.out, "counters after %v:\n", time.Since(start).Round(time.Millisecond))
		st := br.Stats()
		printDir(c.out, c.a+" -> "+c.b, st.AB)
		printDir(c.out, c.b+" -> "+c.a, st.BA)
		if c.verbose {
			fmt.Fprintf(c.out, "  %s socket: %+v\n", c.a, a.Stats())
			fmt.Fprintf(c.out, "  %s socket: %+v\n", c.b, b.Stats())
		}
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.out, "ustack netem: stopping")
			summary()
			return br.Close()
		case <-br.Done():
			summary()
			br.Close()
			return br.Err()
		case <-tick:
			summary()
		}
	}
}

// printDir prints one direction's counters.
func printDir(w io.Writer, name string, s netem.DirStats) {
	c := s.Impair
	fmt.Fprintf(w, "  %s: %d frames in (%s), %d out (%s); dropped: %d loss, %d rate queue, %d aqm, %d limit, %d mtu;\n",
		name, s.RxFrames, formatBytes(int64(s.RxBytes)), s.TxFrames, formatBytes(int64(s.TxBytes)),
		c.DroppedLoss, c.DroppedQueue, c.DroppedAQM, s.LimitDrops, c.DroppedMTU)
	if c.Queued > 0 && c.MaxQueueDelay > 0 {
		fmt.Fprintf(w, "    queue delay mean %v, max %v; %d marked CE\n",
			(c.QueueDelay / time.Duration(c.Queued)).Round(time.Microsecond), c.MaxQueueDelay.Round(time.Microsecond), c.Marked)
	}
	fmt.Fprintf(w, "    %d duplicated, %d corrupted, %d reordered, %d overtaken by jitter or reorder; %d held, %d write errors, %d read errors\n",
		c.Duplicated, c.Corrupted, c.Reordered, c.Overtook, s.Held, s.TxErrors, s.RxErrors)
}
