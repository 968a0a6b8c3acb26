package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/internal/netns/netnstest"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/afpacket"
	"github.com/ustack/ustack/link/pcap"
	"github.com/ustack/ustack/link/tap"
)

// linkKind is how the stack reaches the kernel.
type linkKind string

const (
	// tapLink: a TAP device in the kernel's namespace; the stack holds its
	// descriptor.
	tapLink linkKind = "tap"
	// tunLink: a TUN device (bare IP packets).
	tunLink linkKind = "tun"
	// afpacketLink: a veth pair between the kernel's namespace and a
	// second one, with the stack on an AF_PACKET socket on its end.
	afpacketLink linkKind = "afpacket"
	// chainLink: afpacketLink with `ustack netem` in a middle namespace
	// (netns.Chain); see impair_test.go.
	chainLink linkKind = "chain"
)

// bothLinks are the link kinds every TCP and HTTP test runs over.
var bothLinks = []linkKind{tapLink, afpacketLink}

// forLinks runs f as a subtest for each kind.
func forLinks(t *testing.T, kinds []linkKind, f func(t *testing.T, kind linkKind)) {
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) { f(t, k) })
	}
}

var (
	kernelAddr = netip.MustParsePrefix("10.77.0.1/24")
	stackAddr  = netip.MustParsePrefix("10.77.0.2/24")
	// The IPv6 addresses of the tests with envConfig.ipv6 (a unique
	// local prefix, RFC 4193).
	kernelAddr6 = netip.MustParsePrefix("fd77::1/64")
	stackAddr6  = netip.MustParsePrefix("fd77::2/64")
	// stackMAC is the stack's Ethernet address on every link.
	stackMAC = net.HardwareAddr{0x02, 0x75, 0x73, 0x00, 0x00, 0x02}
)

// env is one test's topology: a namespace with the kernel's side, and a
// stack on a link to it, captured to a pcap file.
type env struct {
	t      *testing.T
	kind   linkKind
	kernel *netns.NS // where the kernel's side lives
	s      *ustack.Stack
	nic    *ustack.NIC
	ep     link.Endpoint // the stack's link, under the capture
	mtu    int
	pcap   string
	veth   *netns.Pair  // afpacketLink only
	chain  *netns.Chain // chainLink only
	check  pcapCheck
	ipv6   bool // envConfig.ipv6
	// nicIPv6 turns IPv6 on for the stack's NIC without an address
	// (envConfig.slaac).
	nicIPv6 bool
}

// envConfig varies an env.
type envConfig struct {
	// mtu of the link; 0 means 1500.
	mtu int
	// stack is the stack's configuration.
	stack ustack.Config
	// peerFramesMayBeBroken relaxes the capture check for frames that
	// did not come from the stack (a corrupting link).
	peerFramesMayBeBroken bool
	// noStack builds the topology without a stack (newEnv's caller adds
	// one later with startStack).
	noStack bool
	// ipv6 gives both sides IPv6 addresses too: kernelAddr6 (without
	// DAD) and stackAddr6; newEnv returns once the stack's are usable.
	ipv6 bool
	// slaac turns IPv6 on for the stack's NIC with no IPv6 address of
	// its own (it takes one from a router's advertisements).
	slaac bool
}

// need skips t unless the machine can run interop tests over kind: root,
// the ip command, /dev/net/tun for TAP and TUN, and the programs named.
func need(t *testing.T, kind linkKind, programs ...string) {
	t.Helper()
	netnstest.Skip(t, kind == tapLink || kind == tunLink)
	netnstest.NeedCommands(t, append([]string{"tshark", "ethtool"}, programs...)...)
}

// newEnv builds the topology of kind and starts a stack on it (unless
// cfg.noStack). Everything is removed when the test ends.
func newEnv(t *testing.T, kind linkKind, cfg envConfig) *env {
	t.Helper()
	if cfg.mtu == 0 {
		cfg.mtu = 1500
	}
	e := &env{t: t, kind: kind, mtu: cfg.mtu, ipv6: cfg.ipv6, nicIPv6: cfg.slaac}
	e.check.peerFramesMayBeBroken = cfg.peerFramesMayBeBroken
	prefix := "ustack-iop-"
	var ep link.Endpoint
	switch kind {
	case tapLink, tunLink:
		e.kernel = netnstest.NS(t, prefix)
	case afpacketLink:
		// The kernel's end keeps its default offloads (TSO, GSO,
		// checksum): link/afpacket takes its super-frames and partial
		// checksums, as it must on a real veth.
		e.veth = netnstest.Pair(t, netns.PairConfig{Prefix: prefix, MTU: cfg.mtu, PeerOffloads: true})
		e.kernel = e.veth.Peer
	case chainLink:
		e.chain = netnstest.Chain(t, netns.ChainConfig{PairConfig: netns.PairConfig{Prefix: prefix, MTU: cfg.mtu}})
		e.kernel = e.chain.Peer
	default:
		t.Fatalf("unknown link kind %q", kind)
	}
	setCongestion(t, e.kernel)
	if kind == tapLink || kind == tunLink {
		// The device exists once opened; its address goes on then.
		var err error
		ep, err = e.openLink()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.kernel.IP("addr", "add", kernelAddr.String(), "dev", string(kind)+"0"); err != nil {
			ep.Close()
			t.Fatal(err)
		}
	}
	if cfg.ipv6 {
		if err := e.kernel.IP("-6", "addr", "add", kernelAddr6.String(), "dev", e.kernelIf(), "nodad"); err != nil {
			if ep != nil {
				ep.Close()
			}
			t.Fatal(err)
		}
	}
	if !cfg.noStack {
		e.startStack(ep, cfg.stack)
	} else if ep != nil {
		ep.Close()
	}
	if cfg.ipv6 {
		e.waitIPv6Settled(t)
	}
	return e
}

// waitIPv6Settled waits until the kernel's interface toward the stack has
// no tentative address left: its link-local address ends duplicate address
// detection (RFC 4862 §5.4) about a second after the link comes up, and
// the kernel reconfigures the interface then (routes, multicast groups, a
// router solicitation). A CI run lost the one echo reply that arrived at
// that instant; a test measures the settled interface, not its bring-up.
func (e *env) waitIPv6Settled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := e.kernel.Run("ip", "-6", "addr", "show", "dev", e.kernelIf(), "tentative")
		if err != nil {
			t.Fatalf("ip -6 addr show tentative: %v", err)
		}
		if strings.TrimSpace(out) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kernel's %s still has tentative addresses after 5 s:\n%s", e.kernelIf(), out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kernelIf is the name of the kernel's interface toward the stack.
func (e *env) kernelIf() string {
	switch e.kind {
	case afpacketLink:
		return e.veth.PeerIf
	case chainLink:
		return e.chain.PeerIf
	}
	return string(e.kind) + "0"
}

// openLink opens the stack's end of the link.
func (e *env) openLink() (link.Endpoint, error) {
	switch e.kind {
	case tapLink, tunLink:
		return tap.Open(tap.Config{Name: string(e.kind) + "0", TUN: e.kind == tunLink, MTU: e.mtu, Netns: e.kernel.Name})
	case afpacketLink:
		return afpacket.Open(afpacket.Config{Interface: e.veth.DUTIf, Netns: e.veth.DUT.Name})
	case chainLink:
		return afpacket.Open(afpacket.Config{Interface: e.chain.DUTIf, Netns: e.chain.DUT.Name})
	}
	return nil, fmt.Errorf("unknown link kind %q", e.kind)
}

// startStack starts a stack on ep (nil: open the link now), capturing it
// to a pcap file that tshark checks when the test ends.
func (e *env) startStack(ep link.Endpoint, cfg ustack.Config) {
	t := e.t
	t.Helper()
	if ep == nil {
		var err error
		if ep, err = e.openLink(); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "ustack-interop-")
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	e.pcap = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+".pcap")
	pe, err := pcap.Create(ep, e.pcap)
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	e.ep = pe
	// Cleanups run last-registered first: the stack closes (flushing the
	// capture), then tshark reads the capture.
	e.check.path = e.pcap
	e.check.stackMAC = stackMAC
	e.check.stackIP = stackAddr.Addr()
	if e.ipv6 {
		e.check.stackIP6 = stackAddr6.Addr()
	}
	t.Cleanup(func() {
		e.check.run(t)
		if !t.Failed() && os.Getenv("USTACK_INTEROP_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			t.Logf("capture of the stack's side kept: %s", e.pcap)
		}
	})
	s, err := ustack.New(cfg)
	if err != nil {
		pe.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addrs := []netip.Prefix{stackAddr}
	if e.ipv6 {
		addrs = append(addrs, stackAddr6)
	}
	nic, err := s.AddNIC(pe, ustack.NICConfig{Name: string(e.kind), MAC: stackMAC, Addrs: addrs, IPv6: e.nicIPv6})
	if err != nil {
		pe.Close()
		t.Fatal(err)
	}
	e.s, e.nic = s, nic
	if e.ipv6 || e.nicIPv6 {
		waitUsable(t, nic)
	}
}

// waitUsable waits until none of the NIC's addresses is tentative (DAD,
// RFC 4862 §5.4, takes a second or two).
func waitUsable(t *testing.T, nic *ustack.NIC) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool {
		for _, a := range nic.Addresses() {
			if a.State == "tentative" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("addresses still tentative: %+v", nic.Addresses())
	}
}

// stopStack closes the stack now (its capture is still checked at the end).
func (e *env) stopStack() {
	if e.s != nil {
		e.s.Close()
	}
}

// setCongestion sets the namespace's default congestion control: CUBIC
// if the host allows it in a namespace, else Reno (never the host's
// default, bbr here). Sockets the tests open themselves set CUBIC on
// their own (kernelDialer, kernelListen).
func setCongestion(t *testing.T, ns *netns.NS) {
	t.Helper()
	if err := ns.Sysctl("net.ipv4.tcp_congestion_control", "cubic"); err == nil {
		return
	}
	// EPERM: cubic is not in the host's tcp_allowed_congestion_control,
	// so only CAP_NET_ADMIN may pick it, per socket.
	if err := ns.Sysctl("net.ipv4.tcp_congestion_control", "reno"); err != nil {
		t.Fatalf("setting the congestion control in %s: %v", ns.Name, err)
	}
}

// cubic sets TCP_CONGESTION=cubic on a kernel socket (root may, whatever
// the host allows unprivileged sockets).
func cubic(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, "cubic")
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("TCP_CONGESTION cubic: %w", serr)
	}
	return nil
}

// kernelDial connects from the kernel's namespace ns to addr, with CUBIC.
func kernelDial(ns *netns.NS, addr string, timeout time.Duration) (*net.TCPConn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		d := net.Dialer{Timeout: timeout, Control: cubic}
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// kernelListen listens in the kernel's namespace ns, with CUBIC on the
// connections it accepts; the listener closes when the test ends.
func kernelListen(t *testing.T, ns *netns.NS, addr string) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		lc := net.ListenConfig{Control: cubic}
		var err error
		ln, err = lc.Listen(context.Background(), "tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// stream returns n pseudo-random bytes determined by seed: a table of
// random bytes for the seed, repeated, with the position stamped into
// every 1 KiB, so that no two kilobytes of a stream are alike. It costs a
// memmove per kilobyte rather than a random generator per byte, which
// matters under the race detector (which instruments the generator, not
// the memmove) for the 200 MiB transfers.
func stream(seed uint64, n int64) io.Reader {
	return io.LimitReader(&patternReader{table: streamTable(seed)}, n)
}

// streamTableLen is the table's length, not a multiple of the stamp
// interval, so the table's bytes meet every stamp in turn.
const streamTableLen = 1<<20 + 13

var (
	tablesMu sync.Mutex
	tables   = map[uint64][]byte{}
)

func streamTable(seed uint64) []byte {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	if t, ok := tables[seed]; ok {
		return t
	}
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	t := make([]byte, streamTableLen)
	rand.NewChaCha8(key).Read(t)
	tables[seed] = t
	return t
}

// patternReader reads the repeated table with position stamps.
type patternReader struct {
	table []byte
	pos   int64
}

func (r *patternReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		// Up to the next kilobyte boundary, from the table.
		off := int(r.pos % int64(len(r.table)))
		k := min(len(b)-n, len(r.table)-off, int(1024-r.pos%1024))
		copy(b[n:n+k], r.table[off:off+k])
		// The first 8 bytes of each kilobyte are its position (whatever
		// the sizes of the reads that cover them).
		var stamp [8]byte
		binary.LittleEndian.PutUint64(stamp[:], uint64(r.pos-r.pos%1024))
		for i := int(r.pos % 1024); i < 8 && i-int(r.pos%1024) < k; i++ {
			b[n+i-int(r.pos%1024)] = stamp[i]
		}
		n += k
		r.pos += int64(k)
	}
	return n, nil
}

// streamSum is the SHA-256 of stream(seed, n).
func streamSum(seed uint64, n int64) [32]byte {
	key := [2]int64{int64(seed), n}
	sumsMu.Lock()
	s, ok := sums[key]
	sumsMu.Unlock()
	if ok {
		return s
	}
	h := sha256.New()
	io.CopyBuffer(h, stream(seed, n), make([]byte, 256<<10))
	h.Sum(s[:0])
	sumsMu.Lock()
	sums[key] = s
	sumsMu.Unlock()
	return s
}

var (
	sumsMu sync.Mutex
	sums   = map[[2]int64][32]byte{}
)

// hashReader reads r to EOF and returns the byte count and SHA-256.
func hashReader(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	var s [32]byte
	h.Sum(s[:0])
	return n, s, err
}

func short(s [32]byte) string { return hex.EncodeToString(s[:6]) }

const (
	kib = 1 << 10
	mib = 1 << 20
)

// proc is a program running in a namespace, started by a test; it is
// killed (by its PID) when the test ends if it has not exited.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // stdout and stderr, unless redirected
	done chan struct{}
	err  error
}

// startProc starts name with args in ns. If stdin or stdout is not nil
// the program reads or writes it (cmd.Stdin, cmd.Stdout); its other
// output is collected.
func startProc(t *testing.T, ns *netns.NS, stdin io.Reader, stdout io.Writer, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: ns.Command(name, args...), done: make(chan struct{})}
	p.cmd.Stdin = stdin
	if stdout != nil {
		p.cmd.Stdout = stdout
	} else {
		p.cmd.Stdout = lockedWriter{&p.mu, &p.out}
	}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits up to timeout for the program to exit and returns its error
// (a timeout kills it).
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s still running after %v: killed", p.name, timeout)
	}
}

// stop sends SIGTERM and waits up to 10 s for the program to exit.
func (p *proc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(10 * time.Second)
}

// output returns what the program printed (when not redirected).
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitOutput waits until the program's output matches re.
func (p *proc) waitOutput(t *testing.T, re string, timeout time.Duration) []string {
	t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		if m := r.FindStringSubmatch(p.output()); m != nil {
			return m
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, re, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v:\n%s", p.name, re, timeout, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// run runs a program in ns to completion within timeout and returns its
// combined output.
func run(ns *netns.NS, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: still running after %v: killed", name, timeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// nstat returns the namespace's SNMP and netstat counters by nstat's
// names ("TcpExtTCPWinProbe", "IpReasmOKs", ...), read from
// /proc/net/{snmp,netstat} inside it.
func nstat(t *testing.T, ns *netns.NS) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, f := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		out, err := ns.Run("cat", f)
		if err != nil {
			t.Fatal(err)
		}
		// Pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: v1 v2 ...".
		sc := bufio.NewScanner(strings.NewReader(out))
		var names []string
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			prefix := strings.TrimSuffix(f[0], ":")
			if names == nil || names[0] != prefix {
				names = append([]string{prefix}, f[1:]...)
				continue
			}
			for i, v := range f[1:] {
				if i+1 < len(names) {
					n, _ := strconv.ParseUint(v, 10, 64)
					m[prefix+names[i+1]] = n
				}
			}
			names = nil
		}
	}
	return m
}

// delta returns after[k]-before[k] for each of keys.
func delta(before, after map[string]uint64, keys ...string) map[string]uint64 {
	d := map[string]uint64{}
	for _, k := range keys {
		d[k] = after[k] - before[k]
	}
	return d
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mbps is the goodput of n bytes in d, in Mbit/s.
func mbps(n int64, d time.Duration) float64 {
	return float64(n) * 8 / d.Seconds() / 1e6
}

// isTimeout reports whether err is a dial or I/O timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
