package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Metric names of the samples.
const (
	MGbps       = "gbit/s"      // bulk: goodput
	MCPUPerGiB  = "cpu s/GiB"   // bulk: process CPU seconds per GiB moved
	MBytes      = "bytes"       // bulk: bytes received (equal to those sent)
	MTPS        = "tx/s"        // rr: transactions per second
	MMean       = "mean µs"     // rr: mean latency
	MP50        = "p50 µs"      // rr
	MP99        = "p99 µs"      // rr
	MP999       = "p999 µs"     // rr
	MCPUPerTx   = "cpu µs/tx"   // rr: process CPU per transaction
	MCount      = "count"       // rr: transactions; crr: connections
	MCPS        = "conn/s"      // crr: connections per second
	MCPUPerConn = "cpu µs/conn" // crr: process CPU per connection
	MBytesEnd   = "B/end"       // mem: heap + stacks per connection end
	MSlabEnd    = "slab B/end"  // mem: kernel slab per connection end
	MPairs      = "pairs"       // mem: connections established
	MFileLimit  = "file limit"  // mem: fewer pairs than asked (open-file limit)
	MNoSlab     = "no slab"     // mem: kernel sockets, but the slab was not readable
)

// grace bounds how long a measurement may run past its Duration before it
// counts as stalled (every conn gets a deadline this far out).
const grace = 30 * time.Second

// connect listens, dials and accepts one connection, with deadlines that
// end a stalled measurement.
func connect(ctx context.Context, n Net, o Options) (ln net.Listener, c, s net.Conn, err error) {
	ln, err = n.Listen()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listen: %w", err)
	}
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		acc <- res{c, err}
	}()
	dctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	c, err = n.Dial(dctx, ln.Addr())
	if err != nil {
		ln.Close()
		<-acc
		return nil, nil, nil, fmt.Errorf("dial: %w", err)
	}
	r := <-acc
	if r.err != nil {
		c.Close()
		ln.Close()
		return nil, nil, nil, fmt.Errorf("accept: %w", r.err)
	}
	dl := time.Now().Add(o.Duration + grace)
	c.SetDeadline(dl)
	r.c.SetDeadline(dl)
	return ln, c, r.c, nil
}

// BulkWrite is the size of each write of the bulk workload (iperf3's).
const BulkWrite = 128 << 10

// Bulk sends data one way over one connection for o.Duration: from the
// client to the server, or the other way when reverse is set. The figure
// is the goodput from the first write to the receiver's EOF, and the whole
// process's CPU time per GiB. It fails unless the receiver got every byte
// sent.
func Bulk(ctx context.Context, n Net, o Options, reverse bool) (Sample, error) {
	ln, c, s, err := connect(ctx, n, o)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	defer c.Close()
	defer s.Close()
	tx, rx := c, s
	if reverse {
		tx, rx = s, c
	}
	type res struct {
		n   int64
		err error
	}
	got := make(chan res, 1)
	go func() {
		buf := make([]byte, BulkWrite)
		k, err := io.CopyBuffer(io.Discard, onlyReader{rx}, buf)
		got <- res{k, err}
	}()
	buf := make([]byte, BulkWrite)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	cpu0, start := cpuTime(), time.Now()
	var sent int64
	for time.Since(start) < o.Duration && ctx.Err() == nil {
		k, err := tx.Write(buf)
		sent += int64(k)
		if err != nil {
			return nil, fmt.Errorf("write after %d bytes: %w", sent, err)
		}
	}
	if err := tx.(closeWriter).CloseWrite(); err != nil {
		return nil, fmt.Errorf("close write: %w", err)
	}
	r := <-got
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	if r.err != nil {
		return nil, fmt.Errorf("read after %d of %d bytes: %w", r.n, sent, r.err)
	}
	if r.n != sent {
		return nil, fmt.Errorf("received %d bytes, sent %d", r.n, sent)
	}
	gib := float64(r.n) / (1 << 30)
	return Sample{
		MGbps:      float64(r.n) * 8 / elapsed.Seconds() / 1e9,
		MCPUPerGiB: cpu.Seconds() / gib,
		MBytes:     float64(r.n),
	}, nil
}

// onlyReader hides a conn's WriteTo/ReadFrom so that io.CopyBuffer uses the
// buffer given (the same read size for every system).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func showBulk(ss []Sample) string {
	return show(ss, MGbps, sig) + " Gbit/s; CPU " + show(ss, MCPUPerGiB, sig) + " s/GiB"
}

// RRSize is the request and response size of the rr and crr workloads.
const RRSize = 64

// RR sends a 64-byte request and waits for the 64-byte response, one at a
// time over one connection, for o.Duration, and times every transaction.
func RR(ctx context.Context, n Net, o Options) (Sample, error) {
	ln, c, s, err := connect(ctx, n, o)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	defer c.Close()
	defer s.Close()
	echoed := make(chan error, 1)
	go func() { echoed <- echo(s) }()
	req, resp := make([]byte, RRSize), make([]byte, RRSize)
	lat := make([]time.Duration, 0, 1<<20)
	cpu0, start := cpuTime(), time.Now()
	for time.Since(start) < o.Duration && ctx.Err() == nil {
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return nil, fmt.Errorf("request %d: %w", len(lat), err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil, fmt.Errorf("response %d: %w", len(lat), err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	c.(closeWriter).CloseWrite()
	if err := <-echoed; err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if len(lat) == 0 {
		return nil, errors.New("no transaction completed")
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	k := float64(len(lat))
	return Sample{
		MTPS:      k / elapsed.Seconds(),
		MMean:     us(sum) / k,
		MP50:      us(quantile(lat, 0.5)),
		MP99:      us(quantile(lat, 0.99)),
		MP999:     us(quantile(lat, 0.999)),
		MCPUPerTx: float64(cpu.Microseconds()) / k,
		MCount:    k,
	}, nil
}

// echo answers each RRSize request with as many bytes until EOF.
func echo(s net.Conn) error {
	buf := make([]byte, RRSize)
	for {
		if _, err := io.ReadFull(s, buf); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if _, err := s.Write(buf); err != nil {
			return err
		}
	}
}

func showRR(ss []Sample) string {
	return fmt.Sprintf("%s tx/s; µs: mean %s, p50 %s, p99 %s, p999 %s; CPU %s µs/tx",
		show(ss, MTPS, kilo), show(ss, MMean, sig), show(ss, MP50, sig),
		show(ss, MP99, sig), show(ss, MP999, sig), show(ss, MCPUPerTx, sig))
}

// CRR opens connections from clients goroutines for o.Duration, each one:
// connect, a 64-byte request, a 64-byte response, close (the client closes
// first, as netperf's TCP_CRR does). The server handles each connection on
// its own goroutine, as net/http does.
func CRR(ctx context.Context, n Net, o Options, clients int) (Sample, error) {
	ln, err := n.Listen()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	var handlers sync.WaitGroup
	var mu sync.Mutex
	var serverErr error
	accepted := make(chan error, 1)
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				defer s.Close()
				s.SetDeadline(time.Now().Add(grace))
				err := echo(s)
				if err != nil {
					mu.Lock()
					serverErr = errors.Join(serverErr, err)
					mu.Unlock()
				}
			}()
		}
	}()
	addr := ln.Addr()
	counts := make([]int, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	cpu0, start := cpuTime(), time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, RRSize)
			for time.Since(start) < o.Duration && ctx.Err() == nil {
				dctx, cancel := context.WithTimeout(ctx, grace)
				c, err := n.Dial(dctx, addr)
				cancel()
				if err != nil {
					errs[i] = fmt.Errorf("dial %d: %w", counts[i], err)
					return
				}
				c.SetDeadline(time.Now().Add(grace))
				_, err = c.Write(buf)
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				c.Close()
				if err != nil {
					errs[i] = fmt.Errorf("connection %d: %w", counts[i], err)
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	ln.Close()
	<-accepted
	handlers.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if serverErr != nil {
		return nil, fmt.Errorf("server: %w", serverErr)
	}
	total := 0
	for _, k := range counts {
		total += k
	}
	if total == 0 {
		return nil, errors.New("no connection completed")
	}
	return Sample{
		MCPS:        float64(total) / elapsed.Seconds(),
		MCPUPerConn: float64(cpu.Microseconds()) / float64(total),
		MCount:      float64(total),
	}, nil
}

func showCRR(ss []Sample) string {
	return show(ss, MCPS, kilo) + " conn/s; CPU " + show(ss, MCPUPerConn, sig) + " µs/conn"
}
