package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link/tap"
	"github.com/ustack/ustack/stack"
)

func init() {
	commands["forward"] = command{"user-mode networking for a network namespace, like slirp4netns and pasta", runForward}
	commands[helperCommand] = command{"(internal) the helper forward runs inside the namespace", runForwardHelper}
}

// forwardConfig is what `ustack forward` was asked to do; its flags
// follow slirp4netns's where they mean the same (and pasta's -t/-u for
// port forwards).
type forwardConfig struct {
	target      string // PID or path of the namespace
	byPath      bool
	userns      string // --userns-path
	tunName     string
	mtu         int
	cidr        netip.Prefix
	configure   bool
	noLoopback  bool // --disable-host-loopback
	noDNS       bool
	dnsUpstream netip.AddrPort // the host's resolver
	udpMapping  ustack.UDPMapping
	udpTimeout  time.Duration
	maxInFlight int
	noVnet      bool
	readyFD     int
	exitFD      int
	tcpFwds     []portForward
	udpFwds     []portForward
	quiet       bool
	cpuprofile  string
}

// portForward is -t/-u: connections to host on the host reach the
// guest's port guest.
type portForward struct {
	host  netip.AddrPort
	guest uint16
}

// The addresses of the namespace's network, from --cidr as slirp4netns
// numbers them: the gateway .2 (the host's loopback unless
// --disable-host-loopback), the DNS forwarder .3, the guest .100.
func (c *forwardConfig) gateway() netip.Addr { return nth(c.cidr, 2) }
func (c *forwardConfig) dnsAddr() netip.Addr { return nth(c.cidr, 3) }
func (c *forwardConfig) guest() netip.Addr   { return nth(c.cidr, 100) }

func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// parsePortForward parses [ADDR:]HOSTPORT[:GUESTPORT] (pasta's -t/-u
// spec, one port).
func parsePortForward(s string) (portForward, error) {
	parts := strings.Split(s, ":")
	addr := netip.IPv4Unspecified()
	if len(parts) == 3 || (len(parts) == 2 && strings.Contains(parts[0], ".")) {
		a, err := netip.ParseAddr(parts[0])
		if err != nil {
			return portForward{}, fmt.Errorf("port forward %q: %v", s, err)
		}
		addr, parts = a, parts[1:]
	}
	hp, err := strconv.ParseUint(parts[0], 10, 16)
	if err != nil || hp == 0 {
		return portForward{}, fmt.Errorf("port forward %q: bad host port", s)
	}
	gp := hp
	if len(parts) == 2 {
		if gp, err = strconv.ParseUint(parts[1], 10, 16); err != nil || gp == 0 {
			return portForward{}, fmt.Errorf("port forward %q: bad guest port", s)
		}
	}
	return portForward{host: netip.AddrPortFrom(addr, uint16(hp)), guest: uint16(gp)}, nil
}

type portList []portForward

func (l *portList) String() string { return fmt.Sprint(*l) }
func (l *portList) Set(s string) error {
	pf, err := parsePortForward(s)
	if err == nil {
		*l = append(*l, pf)
	}
	return err
}

func forwardFlags(args []string, stderr io.Writer) (*forwardConfig, error) {
	c := &forwardConfig{readyFD: -1, exitFD: -1}
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: ustack forward [flags] PID|PATH [TUNNAME]

User-mode networking for a network namespace, like slirp4netns: a TUN
device in the namespace (the process PID's, or the one at PATH such as
/var/run/netns/NAME) whose TCP connections, UDP flows and pings are
relayed through this process's own sockets. With --configure the device
gets the guest address (.100 of --cidr), a default route via the gateway
(.2, which stands for the host's loopback) and the DNS forwarder (.3).
It needs no root: run it as the owner of a user namespace (unshare -rn,
rootless containers); it enters the namespaces with nsenter.

flags:`)
		fs.PrintDefaults()
	}
	var cidr string
	var tcpF, udpF portList
	var mapping string
	var dnsUp string
	bindBoth := func(short, long string, p *bool, usage string) {
		fs.BoolVar(p, short, false, usage+" (short for --"+long+")")
		fs.BoolVar(p, long, false, usage)
	}
	bindBoth("c", "configure", &c.configure, "bring the device up and give it the guest address, the default route and the DNS address")
	fs.IntVar(&c.mtu, "m", 1500, "MTU (short for --mtu)")
	fs.IntVar(&c.mtu, "mtu", 1500, "MTU of the device")
	fs.StringVar(&cidr, "cidr", "10.0.2.0/24", "the namespace's network: gateway .2, DNS .3, guest .100")
	fs.BoolVar(&c.noLoopback, "disable-host-loopback", false, "refuse connections to the gateway address (the host's loopback)")
	fs.BoolVar(&c.noDNS, "disable-dns", false, "no DNS forwarder at .3")
	fs.StringVar(&dnsUp, "dns-upstream", "", "the resolver DNS queries go to (default: the first IPv4 nameserver of /etc/resolv.conf)")
	fs.StringVar(&c.userns, "userns-path", "", "the user namespace to enter with a PATH target (a PID target's own is entered when it differs from ours)")
	fs.StringVar(&mapping, "udp-mapping", "eim", "UDP mapping: eim (endpoint-independent, full cone, RFC 4787) or tuple (per 4-tuple)")
	fs.DurationVar(&c.udpTimeout, "udp-timeout", 60*time.Second, "a UDP flow ends after this long without traffic")
	fs.IntVar(&c.maxInFlight, "max-pending", 1024, "TCP connections being opened upstream at once; SYNs beyond are dropped")
	fs.BoolVar(&c.noVnet, "no-vnet-hdr", false, "open the TUN without the virtio-net header (no offloads)")
	fs.IntVar(&c.readyFD, "r", -1, "short for --ready-fd")
	fs.IntVar(&c.readyFD, "ready-fd", -1, "write \"1\" to this descriptor and close it when ready")
	fs.IntVar(&c.exitFD, "e", -1, "short for --exit-fd")
	fs.IntVar(&c.exitFD, "exit-fd", -1, "exit when this descriptor is closed (or becomes readable)")
	fs.Var(&tcpF, "t", "forward TCP [ADDR:]HOSTPORT[:GUESTPORT] on the host to the guest (repeatable)")
	fs.Var(&udpF, "u", "forward UDP [ADDR:]HOSTPORT[:GUESTPORT] on the host to the guest (repeatable)")
	fs.BoolVar(&c.quiet, "q", false, "log nothing but errors")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile to this file until exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return nil, errors.New("forward: want PID|PATH [TUNNAME]")
	}
	c.target = fs.Arg(0)
	c.tunName = "tun0"
	if fs.NArg() == 2 {
		c.tunName = fs.Arg(1)
	}
	if _, err := strconv.Atoi(c.target); err != nil {
		c.byPath = true
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
		return nil, fmt.Errorf("forward: --cidr %q: want an IPv4 prefix of /24 or shorter", cidr)
	}
	c.cidr = p.Masked()
	if c.mtu < 576 || c.mtu > 65520 {
		return nil, fmt.Errorf("forward: --mtu %d out of range 576..65520", c.mtu)
	}
	switch mapping {
	case "eim":
		c.udpMapping = stack.UDPEndpointIndependent
	case "tuple":
		c.udpMapping = stack.UDPPerTuple
	default:
		return nil, fmt.Errorf("forward: --udp-mapping %q: want eim or tuple", mapping)
	}
	if !c.noDNS {
		if dnsUp == "" {
			a, err := resolvConfNameserver("/etc/resolv.conf")
			if err != nil {
				return nil, fmt.Errorf("forward: %v (or give --dns-upstream, or --disable-dns)", err)
			}
			c.dnsUpstream = netip.AddrPortFrom(a, 53)
		} else if c.dnsUpstream, err = netip.ParseAddrPort(dnsUp); err != nil {
			a, err2 := netip.ParseAddr(dnsUp)
			if err2 != nil {
				return nil, fmt.Errorf("forward: --dns-upstream %q: want ADDR or ADDR:PORT", dnsUp)
			}
			c.dnsUpstream = netip.AddrPortFrom(a, 53)
		}
	}
	c.tcpFwds, c.udpFwds = tcpF, udpF
	return c, nil
}

// resolvConfNameserver returns the first IPv4 nameserver of a
// resolv.conf.
func resolvConfNameserver(path string) (netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil && a.Is4() {
				return a, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no IPv4 nameserver in %s", path)
}

func runForward(args []string) int {
	cfg, err := forwardFlags(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "ustack:", err)
		return 2
	}
	logf := log.New(os.Stderr, "ustack forward: ", 0).Printf
	if cfg.quiet {
		logf = func(string, ...any) {}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.exitFD >= 0 {
		ctx = exitOnFD(ctx, cfg.exitFD)
	}
	stopProf, err := startProfiles(cfg.cpuprofile, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ustack forward:", err)
		return 1
	}
	defer stopProf()
	f, err := startForward(cfg, logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ustack forward:", err)
		return 1
	}
	logf("%s in %s: guest %v, gateway %v, DNS %v, MTU %d", cfg.tunName, cfg.target, cfg.guest(), cfg.gateway(), cfg.dnsAddr(), cfg.mtu)
	if cfg.readyFD >= 0 {
		rf := os.NewFile(uintptr(cfg.readyFD), "ready-fd")
		rf.Write([]byte("1"))
		rf.Close()
	}
	<-ctx.Done()
	st := f.s.Stats()
	f.Close()
	logf("stopped; counters: %v", st.Map())
	return 0
}

// exitOnFD returns a context that ends when fd is closed by its other
// end (or becomes readable), as slirp4netns's --exit-fd.
func exitOnFD(ctx context.Context, fd int) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	f := os.NewFile(uintptr(fd), "exit-fd")
	go func() {
		defer cancel()
		var b [1]byte
		f.Read(b[:])
	}()
	return ctx
}

// startForward opens the TUN in the namespace (through the helper) and
// starts the stack and its relays.
func startForward(cfg *forwardConfig, logf func(string, ...any)) (*forwarder, error) {
	fd, err := openTUNInNamespace(cfg)
	if err != nil {
		return nil, err
	}
	ep, err := tap.FromFD(fd, tap.FDConfig{MTU: cfg.mtu})
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return newForwarder(cfg, ep, logf)
}

// isReset reports whether err is a connection reset (or abort) by the
// peer, which the relay passes on as a RST.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}
