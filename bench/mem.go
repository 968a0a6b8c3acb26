package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemKind says what holds an idle connection open in the memory workload.
type MemKind int

const (
	// MemNoReader: the program keeps the net.Conn and nothing else.
	MemNoReader MemKind = iota
	// MemBlockedReader: a goroutine per connection end is blocked in Read,
	// as in a server with a goroutine per connection (its stack counts).
	MemBlockedReader
)

func (k MemKind) String() string {
	if k == MemBlockedReader {
		return "with a blocked reader goroutine"
	}
	return "no goroutine"
}

// liveBytes returns the heap in use and the goroutine stacks after a full
// collection: what the program's live state costs.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// settledLiveBytes is liveBytes once it has stayed put for a second: what
// an earlier measurement frees in the background (gVisor releases about
// 15 MB in steps up to 1.2 s after a crr measurement's stacks are closed)
// would otherwise count as a negative cost of this one's connections.
func settledLiveBytes() uint64 {
	const step, steady, most = 100 * time.Millisecond, 10, 100
	prev := liveBytes()
	same := 0
	for range most {
		time.Sleep(step)
		cur := liveBytes()
		if max(cur, prev)-min(cur, prev) < 64<<10 {
			same++
			if same == steady {
				return cur
			}
			continue
		}
		prev, same = cur, 0
	}
	return prev
}

// slabBytes returns the kernel's slab memory in use, the sum over
// /proc/slabinfo of active objects times their size (root only).
func slabBytes() (uint64, error) {
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name <active_objs> <num_objs> <objsize> ...
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || strings.HasPrefix(fs[0], "#") || fs[0] == "slabinfo" {
			continue
		}
		active, err1 := strconv.ParseUint(fs[1], 10, 64)
		size, err2 := strconv.ParseUint(fs[3], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		total += active * size
	}
	return total, sc.Err()
}

// Mem establishes o.Pairs idle connections and reports what each
// connection end costs: the growth of heap and goroutine stacks after
// garbage collection, divided by the number of ends (two per pair: both
// ends live in this process). For the kernel's sockets it also reports the
// growth of the kernel's slab (root only; the slab is machine-wide, so
// other activity on the machine adds noise).
//
// A measurement that shows no growth is made again, up to memAttempts
// times in all: memory that something else frees meanwhile (a closed
// stack's goroutines ending, finalizers of an earlier measurement's
// sockets) can outweigh the growth of a few hundred cheap connections.
func Mem(ctx context.Context, n Net, o Options, kind MemKind) (Sample, error) {
	return retryNoGrowth(func() (Sample, error) { return memOnce(ctx, n, o, kind) })
}

// memAttempts is how many times a memory measurement that shows no growth
// is made before that is reported as a failure.
const memAttempts = 3

// errNoGrowth is a memory measurement's failure when the connections
// seemed to cost nothing.
var errNoGrowth = errors.New("no memory growth measured: the connections cannot be free")

// retryNoGrowth runs measure until it succeeds, fails otherwise than by
// errNoGrowth, or has failed by errNoGrowth memAttempts times.
func retryNoGrowth(measure func() (Sample, error)) (s Sample, err error) {
	for range memAttempts {
		s, err = measure()
		if !errors.Is(err, errNoGrowth) {
			break
		}
	}
	return s, err
}

// memOnce is one attempt of Mem.
func memOnce(ctx context.Context, n Net, o Options, kind MemKind) (Sample, error) {
	ln, err := n.Listen()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	conns := make([]net.Conn, 0, 2*o.Pairs+2)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 64)
	go func() {
		for {
			c, err := ln.Accept()
			acc <- res{c, err}
			if err != nil {
				return
			}
		}
	}()
	// One pair first, not counted: what a stack allocates on its first
	// connection (tables, pools) is not a per-connection cost.
	_, kernel := n.(slabber)
	pairs := o.Pairs
	if kernel {
		// Two descriptors a pair: stay within the open-file limit
		// (which RaiseFileLimit could not lift far enough).
		var lim syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(2*pairs+512) {
			pairs = max(1, (int(lim.Cur)-512)/2)
		}
	}
	var base, slab0 uint64
	var slabErr error
	pw, parks := n.(parkWaiter)
	for i := -1; i < pairs; i++ {
		if i == 0 {
			if kernel {
				slab0, slabErr = slabBytes()
			}
			if parks {
				if _, err := pw.waitParked(ctx, 2); err != nil {
					return nil, err
				}
			}
			base = settledLiveBytes()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		dctx, cancel := context.WithTimeout(ctx, grace)
		c, err := n.Dial(dctx, ln.Addr())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("dial %d: %w", i, err)
		}
		conns = append(conns, c)
		r := <-acc
		if r.err != nil {
			return nil, fmt.Errorf("accept %d: %w", i, r.err)
		}
		conns = append(conns, r.c)
	}
	var readers sync.WaitGroup
	if kind == MemBlockedReader {
		started := make(chan struct{}, len(conns))
		for _, c := range conns {
			readers.Add(1)
			go func() {
				defer readers.Done()
				started <- struct{}{}
				var b [1]byte
				c.Read(b[:]) // returns when the conn is closed
			}()
		}
		for range conns {
			<-started
		}
		// The readers have started; give them a moment to reach the
		// blocking point inside Read.
		time.Sleep(50 * time.Millisecond)
	}
	var parked uint64
	if parks {
		if parked, err = pw.waitParked(ctx, uint64(2*pairs+2)); err != nil {
			return nil, err
		}
	}
	live := liveBytes()
	ends := float64(2 * pairs)
	s := Sample{
		MBytesEnd: (float64(live) - float64(base)) / ends,
		MPairs:    float64(pairs),
	}
	if parks {
		s[MParked] = float64(parked)
	}
	if pairs < o.Pairs {
		s[MFileLimit] = 1
	}
	if kernel {
		slab1, err := slabBytes()
		if slabErr == nil && err == nil {
			s[MSlabEnd] = (float64(slab1) - float64(slab0)) / ends
		} else {
			s[MNoSlab] = 1
		}
	}
	runtime.KeepAlive(conns)
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	readers.Wait()
	if s[MBytesEnd] <= 0 {
		return nil, errNoGrowth
	}
	return s, nil
}

func showMem(ss []Sample) string {
	out := show(ss, MBytesEnd, bytesInt) + " B"
	if _, ok := ss[0][MSlabEnd]; ok {
		out += " + " + show(ss, MSlabEnd, bytesInt) + " B kernel slab"
	}
	if ss[0][MNoSlab] == 1 {
		out += " + kernel slab not measured (/proc/slabinfo needs root)"
	}
	if p, ok := ss[0][MParked]; ok {
		out += " (" + bytesInt(p) + " ends parked)"
	}
	if ss[0][MFileLimit] == 1 {
		out += " (" + bytesInt(ss[0][MPairs]) + " pairs: the open-file limit)"
	}
	return out
}
