package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/internal/netns"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/afpacket"
	"github.com/ustack/ustack/link/pcap"
	"github.com/ustack/ustack/link/tap"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tcp"
)

func init() {
	commands["serve"] = command{"run the stack on a TAP/TUN device or an AF_PACKET link and serve HTTP, echo, discard, source, UDP echo", runServe}
}

// serveConfig is what the flags of serve say.
type serveConfig struct {
	link, netns       string
	addrs             []netip.Prefix // IPv4 and IPv6 addresses
	gws               []netip.Addr   // at most one default gateway per family
	mtu               int
	mac               net.HardwareAddr
	http, root        string
	echo, discard     string
	source, udpEcho   string
	pcap              string
	afMode            afpacket.Mode
	persist, offloads bool
	demo, verbose     bool
	statsEvery        time.Duration
	synCookies        stack.SynCookieMode
	mtuProbing        tcp.MTUProbingMode
	out               io.Writer
	ready             func() // called once everything listens (tests)
	kernelAddrForDemo netip.Prefix
}

// The default addresses, and the gateways that go with them (the kernel
// side of the README's and -netns-demo's 10.77.0.0/24 and fd77::/64, a
// unique local prefix, RFC 4193).
const (
	defaultServeAddr  = "10.77.0.2/24"
	defaultServeGW    = "10.77.0.1"
	defaultServeAddr6 = "fd77::2/64"
	defaultServeGW6   = "fd77::1"
)

// listFlag is a flag that may be given more than once; an empty value
// empties the list.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(v string) error {
	l.set = true
	if v == "" {
		l.vals = nil
		return nil
	}
	l.vals = append(l.vals, v)
	return nil
}

// gwFor returns the gateway of a's family, or the zero Addr.
func (c *serveConfig) gwFor(a netip.Addr) netip.Addr {
	for _, g := range c.gws {
		if g.Is4() == a.Is4() {
			return g
		}
	}
	return netip.Addr{}
}

// addrOf returns the first address of the family of v4 (IPv4 if v4), or
// the zero Prefix.
func (c *serveConfig) addrOf(v4 bool) netip.Prefix {
	for _, a := range c.addrs {
		if a.Addr().Is4() == v4 {
			return a
		}
	}
	return netip.Prefix{}
}

func runServe(args []string) int {
	c, code := parseServeFlags(args, os.Stderr)
	if c == nil {
		return code
	}
	c.out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "ustack serve:", err)
		return 1
	}
	return 0
}

// parseServeFlags parses serve's flags and checks them before anything
// is opened. It returns the configuration, or nil and the exit status
// (0 for -h, 2 for a bad flag) after printing why to stderr.
func parseServeFlags(args []string, stderr io.Writer) (*serveConfig, int) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: ustack serve -link tap:NAME|tun:NAME|afpacket:IFACE [flags]")
		fmt.Fprintln(w, "       ustack serve -netns-demo [-link tap|tun|afpacket] [flags]")
		fmt.Fprintln(w, "\nRuns the user-space stack on a real link and serves, on the stack: HTTP (a directory")
		fmt.Fprintln(w, "with -root, and /bytes/N: N pseudo-random bytes with their SHA-256 in the X-Body-Sha256")
		fmt.Fprintln(w, "trailer), TCP echo, discard, an endless source, and UDP echo. An empty address turns a")
		fmt.Fprintln(w, "service off. Runs until SIGINT or SIGTERM, then closes everything and prints a summary.")
		fmt.Fprintln(w, "\n-netns-demo (root) builds a private network namespace with the kernel's side of the")
		fmt.Fprintln(w, "link in it, prints commands to try from there, and removes it on exit.")
		fmt.Fprintln(w, "\n-addr and -gw may be given more than once: IPv4 and IPv6 addresses, and a default gateway")
		fmt.Fprintln(w, "per family. The services listen on both families. Without -addr the stack has "+defaultServeAddr)
		fmt.Fprintln(w, "and "+defaultServeAddr6+", with gateways "+defaultServeGW+" and "+defaultServeGW6+"; with")
		fmt.Fprintln(w, "another -addr there is no gateway unless -gw gives one (on an -addr's prefix, or an IPv6")
		fmt.Fprintln(w, "link-local address).")
		fmt.Fprintln(w, "\nTAP/TUN and AF_PACKET need root or CAP_NET_ADMIN/CAP_NET_RAW (see README,")
		fmt.Fprintln(w, "\"Talking to the kernel\").")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	var c serveConfig
	fs.StringVar(&c.link, "link", "", "the link: tap:NAME, tun:NAME or afpacket:IFACE (with -netns-demo: tap, tun or afpacket)")
	fs.StringVar(&c.netns, "netns", "", "open the device or interface inside this named network namespace")
	var addrFlag, gwFlag listFlag
	fs.Var(&addrFlag, "addr", "the stack's address and prefix, IPv4 or IPv6; repeat for more (default "+defaultServeAddr+" and "+defaultServeAddr6+")")
	fs.Var(&gwFlag, "gw", "default gateway of its family, on an -addr's prefix or IPv6 link-local; repeat for the other family (default "+defaultServeGW+" and "+defaultServeGW6+" with the default -addr, none with another; \"\": none); with -netns-demo, the kernel side's addresses")
	fs.IntVar(&c.mtu, "mtu", 1500, "MTU set on a TAP/TUN device or the demo's link (AF_PACKET uses the interface's)")
	mac := fs.String("mac", "", "the stack's MAC address (default: random, locally administered)")
	fs.StringVar(&c.http, "http", ":80", "HTTP server address")
	fs.StringVar(&c.root, "root", "", "serve this directory over HTTP (besides /bytes/N)")
	fs.StringVar(&c.echo, "echo", ":7", "TCP echo address")
	fs.StringVar(&c.discard, "discard", ":9", "TCP discard (sink) address")
	fs.StringVar(&c.discard, "sink", ":9", "same as -discard")
	fs.StringVar(&c.source, "source", ":19", "TCP source address: sends an endless stream to whoever connects")
	fs.StringVar(&c.udpEcho, "udp-echo", ":7", "UDP echo address")
	fs.StringVar(&c.pcap, "pcap", "", "capture the stack's link to `FILE` (pcap; tcpdump -r, wireshark)")
	mode := fs.String("afpacket-mode", "default", "AF_PACKET receive mode: mmsg (recvmmsg) or ring (TPACKET_V3)")
	fs.BoolVar(&c.persist, "persist", false, "keep a TAP/TUN device this command created after exit")
	fs.BoolVar(&c.offloads, "offloads", true, "link offloads: TSO, checksum offload and GRO (TAP/TUN with the virtio-net header; AF_PACKET with PACKET_VNET_HDR taking and sending super-frames); -offloads=false for plain frames of at most the MTU")
	fs.BoolVar(&c.offloads, "vnet-hdr", true, "same as -offloads (the old name)")
	fs.BoolVar(&c.demo, "netns-demo", false, "build a private namespace with the kernel's side, print commands to try, remove it on exit (root)")
	fs.BoolVar(&c.verbose, "v", false, "print every non-zero counter in summaries")
	fs.DurationVar(&c.statsEvery, "stats", 0, "print a summary this often (0: only on exit)")
	synCookies := fs.Int("syncookies", 1, "SYN cookies, as net.ipv4.tcp_syncookies: 0 off, 1 when a listener's SYN queue is full, 2 always")
	fs.TextVar(&c.mtuProbing, "mtu-probing", tcp.MTUProbingBlackHole, "packetization-layer path MTU discovery (RFC 4821), as net.ipv4.tcp_mtu_probing: 0 off, 1 after a black hole is detected, 2 always (or off, blackhole, always)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	usage := func(format string, a ...any) (*serveConfig, int) {
		fmt.Fprintf(stderr, "ustack serve: "+format+"\n", a...)
		return nil, 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	var err error
	addrs := addrFlag.vals
	if !addrFlag.set {
		addrs = []string{defaultServeAddr, defaultServeAddr6}
	}
	if len(addrs) == 0 {
		return usage("-addr: the stack needs an address")
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return usage("-addr %q: want an IPv4 or IPv6 address with a prefix length, e.g. %s or %s", a, defaultServeAddr, defaultServeAddr6)
		}
		c.addrs = append(c.addrs, p)
	}
	gws := gwFlag.vals
	if !gwFlag.set {
		for _, p := range c.addrs {
			switch p {
			case netip.MustParsePrefix(defaultServeAddr):
				gws = append(gws, defaultServeGW)
			case netip.MustParsePrefix(defaultServeAddr6):
				gws = append(gws, defaultServeGW6)
			}
		}
	}
	for _, g := range gws {
		a, err := netip.ParseAddr(g)
		if err != nil || a.Is4In6() || a.Zone() != "" {
			return usage("-gw %q: want an IPv4 or IPv6 address", g)
		}
		if c.gwFor(a).IsValid() {
			return usage("-gw %v: one default gateway per family (%v already)", a, c.gwFor(a))
		}
		onLink := a.Is6() && a.IsLinkLocalUnicast()
		for _, p := range c.addrs {
			onLink = onLink || p.Contains(a)
		}
		if !onLink {
			return usage("-gw %v is not on an -addr's prefix (%v)", a, prefixes(c.addrs))
		}
		c.gws = append(c.gws, a)
	}
	if *mac != "" {
		if c.mac, err = net.ParseMAC(*mac); err != nil || len(c.mac) != 6 {
			return usage("-mac %q: want a MAC address such as 02:00:00:00:00:02", *mac)
		}
	}
	if c.afMode, err = afpacket.ParseMode(*mode); err != nil {
		return usage("%v", err)
	}
	if c.synCookies, err = stack.SynCookieModeFromSysctl(*synCookies); err != nil {
		return usage("-syncookies %d: want 0, 1 or 2", *synCookies)
	}
	if c.link == "" && !c.demo {
		return usage("-link is required (tap:NAME, tun:NAME or afpacket:IFACE), or -netns-demo")
	}
	if c.root != "" {
		if st, err := os.Stat(c.root); err != nil || !st.IsDir() {
			return usage("-root %q: not a directory", c.root)
		}
	}
	return &c, 0
}

// prefixes returns the masked prefixes of addrs, for messages.
func prefixes(addrs []netip.Prefix) string {
	var s []string
	for _, p := range addrs {
		s = append(s, p.Masked().String())
	}
	return strings.Join(s, ", ")
}

// addrsString returns addrs for the first line of serve's output.
func addrsString(addrs []netip.Prefix) string {
	var s []string
	for _, p := range addrs {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// parseLink splits "kind:name".
func parseLink(s string) (kind, name string, err error) {
	kind, name, _ = strings.Cut(s, ":")
	switch kind {
	case "tap", "tun", "afpacket":
		return kind, name, nil
	}
	return "", "", fmt.Errorf("-link %q: want tap:NAME, tun:NAME or afpacket:IFACE", s)
}

// serve runs until ctx is done. Everything it sets up, it tears down
// before returning, on every path (deferred calls run in reverse order:
// services, stack and link, then the demo's namespaces).
func serve(ctx context.Context, c *serveConfig) (err error) {
	kind, name, err := parseLink(c.link)
	if c.link == "" && c.demo {
		kind, err = "tap", nil
	}
	if err != nil {
		return err
	}
	nsName := c.netns
	var demo *demoNet
	if c.demo {
		if why := netns.Why(kind != "afpacket"); why != "" {
			return errors.New("-netns-demo " + why)
		}
		if demo, err = newDemoNet(kind, name, c); err != nil {
			return err
		}
		defer demo.close(c.out)
		kind, name, nsName = demo.kind, demo.ifname, demo.dutNS
	}
	if name == "" {
		if kind == "afpacket" {
			return errors.New("-link afpacket:IFACE needs an interface name")
		}
	}

	var ep link.Endpoint
	var linkStats func() string
	switch kind {
	case "tap", "tun":
		t, err := tap.Open(tap.Config{Name: name, TUN: kind == "tun", MTU: c.mtu, Netns: nsName, Persist: c.persist, NoOffloads: !c.offloads})
		if err != nil {
			return err
		}
		ep, name = t, t.Name()
		linkStats = func() string { return fmt.Sprintf("%+v", t.Stats()) }
	case "afpacket":
		a, err := afpacket.Open(afpacket.Config{Interface: name, Netns: nsName, Mode: c.afMode, NoOffloads: !c.offloads})
		if err != nil {
			return err
		}
		ep = a
		linkStats = func() string { return fmt.Sprintf("%+v", a.Stats()) }
	}
	if c.pcap != "" {
		p, err := pcap.Create(ep, c.pcap)
		if err != nil {
			ep.Close()
			return err
		}
		ep = p
	}
	if demo != nil {
		// The kernel side's address goes on once the device exists.
		if err := demo.configureKernelSide(); err != nil {
			ep.Close()
			return err
		}
	}

	s, err := ustack.New(ustack.Config{Config: stack.Config{SynCookies: c.synCookies, TCP: tcp.Config{MTUProbing: c.mtuProbing}}})
	if err != nil {
		ep.Close()
		return err
	}
	defer s.Close()
	nic, err := s.AddNIC(ep, ustack.NICConfig{Name: name, MAC: c.mac, Addrs: c.addrs})
	if err != nil {
		ep.Close()
		return err
	}
	for _, gw := range c.gws { // parseServeFlags put them on the prefixes
		def := netip.MustParsePrefix("0.0.0.0/0")
		if gw.Is6() {
			def = netip.MustParsePrefix("::/0")
		}
		if err := s.AddRoute(def, gw, nic); err != nil {
			return err
		}
	}

	// IPv6 addresses are usable once duplicate address detection is
	// done (RFC 4862 §5.4: a second or two); wait for it, so that the
	// services answer on every address when serve says they do.
	if err := waitDAD(ctx, nic, c.out); err != nil {
		return err
	}

	sv := &services{s: s, nic: nic, out: c.out}
	defer sv.close()
	if err := sv.start(c); err != nil {
		return err
	}
	where := ""
	if nsName != "" {
		where = " in netns " + nsName
	}
	fmt.Fprintf(c.out, "ustack serve: %s on %s:%s%s (MTU %d), gateway %s\n", addrsString(c.addrs), kind, name, where, ep.MTU(), gwsString(c.gws))
	for _, l := range sv.lines {
		fmt.Fprintln(c.out, "  "+l)
	}
	if demo != nil {
		demo.printTry(c.out, c)
	}
	if c.ready != nil {
		c.ready()
	}

	var tick <-chan time.Time
	if c.statsEvery > 0 {
		t := time.NewTicker(c.statsEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.out, "ustack serve: shutting down")
			sv.close()
			sv.summary(c.out, c.verbose, linkStats)
			return nil
		case <-tick:
			sv.summary(c.out, c.verbose, linkStats)
		}
	}
}

// waitDAD waits until none of the NIC's addresses is tentative, and
// says which DAD found to be another node's.
func waitDAD(ctx context.Context, nic *ustack.NIC, out io.Writer) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		tentative := false
		for _, a := range nic.Addresses() {
			tentative = tentative || a.State == "tentative"
		}
		if !tentative {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("IPv6 addresses still tentative after 10 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, a := range nic.Addresses() {
		if a.State == "dadfailed" {
			fmt.Fprintf(out, "ustack serve: %v is in use on the link (duplicate address detection): not used\n", a.Prefix)
		}
	}
	return nil
}

func gwString(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}

func gwsString(gws []netip.Addr) string {
	if len(gws) == 0 {
		return "none"
	}
	var s []string
	for _, g := range gws {
		s = append(s, g.String())
	}
	return strings.Join(s, ", ")
}

// counter counts a service's connections and bytes.
type counter struct {
	name       string
	conns      atomic.Uint64
	in, out    atomic.Uint64
	datagrams  atomic.Uint64
	listenAddr string
}

// countConn counts the bytes through a connection.
type countConn struct {
	net.Conn
	c *counter
}

func (cc countConn) Read(b []byte) (int, error) {
	n, err := cc.Conn.Read(b)
	cc.c.in.Add(uint64(n))
	return n, err
}

func (cc countConn) Write(b []byte) (int, error) {
	n, err := cc.Conn.Write(b)
	cc.c.out.Add(uint64(n))
	return n, err
}

// countListener counts accepted connections and wraps them.
type countListener struct {
	net.Listener
	c *counter
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.conns.Add(1)
	return countConn{c, l.c}, nil
}

// services are the servers running on the stack.
type services struct {
	s        *ustack.Stack
	nic      *ustack.NIC
	out      io.Writer
	counters []*counter
	lines    []string
	closers  []io.Closer
	wg       sync.WaitGroup
	once     sync.Once
	start0   time.Time
}

func (sv *services) listen(name, addr string) (net.Listener, *counter, error) {
	ln, err := sv.s.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s on %s: %w", name, addr, err)
	}
	c := &counter{name: name, listenAddr: addr}
	sv.counters = append(sv.counters, c)
	sv.closers = append(sv.closers, ln)
	return countListener{ln, c}, c, nil
}

// serveConns accepts connections and runs handle on each in its own
// goroutine, until the listener closes.
func (sv *services) serveConns(ln net.Listener, handle func(net.Conn)) {
	sv.wg.Add(1)
	go func() {
		defer sv.wg.Done()
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

func (sv *services) start(c *serveConfig) error {
	sv.start0 = time.Now()
	if c.http != "" {
		ln, _, err := sv.listen("http", c.http)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/bytes/", serveBytes)
		if c.root != "" {
			mux.Handle("/", http.FileServer(http.Dir(c.root)))
		} else {
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprintln(w, "ustack serve: a user-space TCP/IP stack answering.")
				fmt.Fprintln(w, "GET /bytes/N for N pseudo-random bytes (SHA-256 in the X-Body-Sha256 trailer).")
			})
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
		sv.closers = append(sv.closers, srv)
		sv.wg.Add(1)
		go func() {
			defer sv.wg.Done()
			srv.Serve(ln)
		}()
		what := "/bytes/N"
		if c.root != "" {
			what = c.root + " and /bytes/N"
		}
		sv.lines = append(sv.lines, fmt.Sprintf("http     tcp %-6s %s", c.http, what))
	}
	if c.echo != "" {
		ln, _, err := sv.listen("echo", c.echo)
		if err != nil {
			return err
		}
		sv.serveConns(ln, func(conn net.Conn) { io.Copy(conn, conn) })
		sv.lines = append(sv.lines, fmt.Sprintf("echo     tcp %-6s", c.echo))
	}
	if c.discard != "" {
		ln, _, err := sv.listen("discard", c.discard)
		if err != nil {
			return err
		}
		sv.serveConns(ln, func(conn net.Conn) { io.Copy(io.Discard, conn) })
		sv.lines = append(sv.lines, fmt.Sprintf("discard  tcp %-6s (sink)", c.discard))
	}
	if c.source != "" {
		ln, _, err := sv.listen("source", c.source)
		if err != nil {
			return err
		}
		sv.serveConns(ln, func(conn net.Conn) {
			buf := make([]byte, 64<<10)
			for i := range buf {
				buf[i] = byte('a' + i%26)
			}
			for {
				if _, err := conn.Write(buf); err != nil {
					return
				}
			}
		})
		sv.lines = append(sv.lines, fmt.Sprintf("source   tcp %-6s (endless stream)", c.source))
	}
	if c.udpEcho != "" {
		pc, err := sv.s.ListenPacket("udp", c.udpEcho)
		if err != nil {
			return fmt.Errorf("udp-echo on %s: %w", c.udpEcho, err)
		}
		ct := &counter{name: "udp-echo", listenAddr: c.udpEcho}
		sv.counters = append(sv.counters, ct)
		sv.closers = append(sv.closers, pc)
		sv.wg.Add(1)
		go func() {
			defer sv.wg.Done()
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				ct.datagrams.Add(1)
				ct.in.Add(uint64(n))
				if _, err := pc.WriteTo(buf[:n], from); err == nil {
					ct.out.Add(uint64(n))
				}
			}
		}()
		sv.lines = append(sv.lines, fmt.Sprintf("udp-echo udp %-6s", c.udpEcho))
	}
	return nil
}

// close stops every service: the listeners and servers, then the stack,
// which ends the connections still open; then it waits for the services'
// goroutines.
func (sv *services) close() {
	sv.once.Do(func() {
		for _, c := range sv.closers {
			c.Close()
		}
		sv.s.Close()
		sv.wg.Wait()
	})
}

// summary prints the connections and bytes per service and the stack's
// main counters (all non-zero ones with verbose).
func (sv *services) summary(w io.Writer, verbose bool, linkStats func() string) {
	fmt.Fprintf(w, "summary after %v:\n", time.Since(sv.start0).Round(time.Second))
	for _, c := range sv.counters {
		if c.name == "udp-echo" {
			fmt.Fprintf(w, "  %-9s %6d datagrams  in %-12s out %s\n", c.name, c.datagrams.Load(), formatBytes(int64(c.in.Load())), formatBytes(int64(c.out.Load())))
			continue
		}
		fmt.Fprintf(w, "  %-9s %6d connections  in %-12s out %s\n", c.name, c.conns.Load(), formatBytes(int64(c.in.Load())), formatBytes(int64(c.out.Load())))
	}
	st := sv.s.Stats()
	m := st.Map()
	if !verbose {
		fmt.Fprintf(w, "  link: rx %d frames, tx %d frames; tcp: %d segments in, %d out, %d retransmitted, %d resets sent\n",
			m["Link.RxFrames"], m["Link.TxFrames"], m["TCP.InSegs"], m["TCP.OutSegs"], m["TCP.RetransSegs"], m["TCP.OutRsts"])
		var shed uint64
		if sv.nic != nil {
			shed = sv.nic.Stats().RxSYNShed
		}
		if m["TCP.SyncookiesSent"]+m["TCP.ListenDrops"]+shed > 0 {
			fmt.Fprintf(w, "  listeners: %d SYN cookies sent, %d valid, %d refused; %d SYNs or handshakes dropped; %d SYNs of a flood shed on arrival\n",
				m["TCP.SyncookiesSent"], m["TCP.SyncookiesRecv"], m["TCP.SyncookiesFailed"], m["TCP.ListenDrops"], shed)
		}
		if m["TCP.MTUProbes"]+m["TCP.MTUBlackHoles"] > 0 {
			fmt.Fprintf(w, "  path MTU: %d probes sent, %d acknowledged, %d lost; %d black holes detected\n",
				m["TCP.MTUProbes"], m["TCP.MTUProbeSuccess"], m["TCP.MTUProbeFail"], m["TCP.MTUBlackHoles"])
		}
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-34s %d\n", k, m[k])
	}
	if linkStats != nil {
		fmt.Fprintf(w, "  endpoint: %s\n", linkStats())
	}
}
