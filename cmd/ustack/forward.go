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
	cidr6       netip.Prefix // the IPv6 network; invalid with --disable-ipv6
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
// guest's port guest. anyAddr says no address was given: the host port
// is listened on in both families (0.0.0.0 and, with IPv6, [::]), each
// reaching the guest's address of its own family.
type portForward struct {
	host    netip.AddrPort
	guest   uint16
	anyAddr bool
}

// The addresses of the namespace's network, from --cidr as slirp4netns
// numbers them: the gateway .2 (the host's loopback unless
// --disable-host-loopback), the DNS forwarder .3, the guest .100.
func (c *forwardConfig) gateway() netip.Addr { return nth(c.cidr, 2) }
func (c *forwardConfig) dnsAddr() netip.Addr { return nth(c.cidr, 3) }
func (c *forwardConfig) guest() netip.Addr   { return nth(c.cidr, 100) }

// The IPv6 addresses in --cidr6 (fd00::/64, slirp4netns's IPv6 network:
// gateway fd00::2, DNS fd00::3; the guest fd00::100, the IPv4 guest's
// .100 written in IPv6's hexadecimal).
func (c *forwardConfig) ipv6() bool           { return c.cidr6.IsValid() }
func (c *forwardConfig) gateway6() netip.Addr { return nth(c.cidr6, 2) }
func (c *forwardConfig) dnsAddr6() netip.Addr { return nth(c.cidr6, 3) }
func (c *forwardConfig) guest6() netip.Addr   { return nth(c.cidr6, 0x100) }

// isGateway reports whether a is the gateway address of its family.
func (c *forwardConfig) isGateway(a netip.Addr) bool {
	return a == c.gateway() || c.ipv6() && a == c.gateway6()
}

// inNetwork reports whether a is in the namespace's network of its
// family.
func (c *forwardConfig) inNetwork(a netip.Addr) bool {
	return c.cidr.Contains(a) || c.ipv6() && c.cidr6.Contains(a)
}

// nth returns the address n after p's network address, in either family.
func nth(p netip.Prefix, n int) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	carry := n
	for i := len(b) - 1; i >= 0 && carry > 0; i-- {
		v := int(b[i]) + carry
		b[i], carry = byte(v), v>>8
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// parsePortForward parses [ADDR:]HOSTPORT[:GUESTPORT] (pasta's -t/-u
// spec, one port), an IPv6 ADDR in brackets.
func parsePortForward(s string) (portForward, error) {
	parts := strings.Split(s, ":")
	addr := netip.IPv4Unspecified()
	anyAddr := true
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return portForward{}, fmt.Errorf("port forward %q: want [IPV6]:HOSTPORT[:GUESTPORT]", s)
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return portForward{}, fmt.Errorf("port forward %q: bad IPv6 address", s)
		}
		addr, anyAddr, parts = a, false, strings.Split(s[end+2:], ":")
		if len(parts) > 2 {
			return portForward{}, fmt.Errorf("port forward %q: too many ports", s)
		}
	} else if len(parts) == 3 || (len(parts) == 2 && strings.Contains(parts[0], ".")) {
		a, err := netip.ParseAddr(parts[0])
		if err != nil {
			return portForward{}, fmt.Errorf("port forward %q: %v", s, err)
		}
		addr, anyAddr, parts = a, false, parts[1:]
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
	return portForward{host: netip.AddrPortFrom(addr, uint16(hp)), guest: uint16(gp), anyAddr: anyAddr}, nil
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
	var cidr6 string
	var enable6, disable6 bool
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
(.2, which stands for the host's loopback) and the DNS forwarder (.3);
and, unless --disable-ipv6, the same in IPv6 from --cidr6 (fd00::100,
default route via fd00::2, DNS at fd00::3).
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
	fs.StringVar(&cidr6, "cidr6", "fd00::/64", "the namespace's IPv6 network: gateway ::2, DNS ::3, guest ::100")
	bindBoth("6", "enable-ipv6", &enable6, "IPv6 too (the default; accepted for slirp4netns's sake)")
	fs.BoolVar(&disable6, "disable-ipv6", false, "IPv4 only: no IPv6 addresses, routes or relaying")
	fs.BoolVar(&c.noLoopback, "disable-host-loopback", false, "refuse connections to the gateway address (the host's loopback)")
	fs.BoolVar(&c.noDNS, "disable-dns", false, "no DNS forwarder at .3")
	fs.StringVar(&dnsUp, "dns-upstream", "", "the resolver DNS queries go to (default: the first IPv4 nameserver of /etc/resolv.conf, else its first IPv6 one)")
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
	if !disable6 {
		p, err := netip.ParsePrefix(cidr6)
		if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() > 112 || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			return nil, fmt.Errorf("forward: --cidr6 %q: want an IPv6 prefix of /112 or shorter, not link-local or multicast", cidr6)
		}
		c.cidr6 = p.Masked()
		if c.mtu < 1280 {
			// RFC 8200 §5: IPv6 needs links of 1280 bytes or more.
			return nil, fmt.Errorf("forward: --mtu %d is below IPv6's 1280 (give --disable-ipv6 for a smaller one)", c.mtu)
		}
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
	for _, pf := range append(tcpF, udpF...) {
		if pf.host.Addr().Is6() && !c.ipv6() {
			return nil, fmt.Errorf("forward: port forward from %v needs IPv6 (no --disable-ipv6)", pf.host)
		}
	}
	return c, nil
}

// resolvConfNameserver returns the first IPv4 nameserver of a
// resolv.conf, or, if it has none, the first IPv6 one (the upstream is
// asked over its own family, whichever the guest asked in).
func resolvConfNameserver(path string) (netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	var v6 netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			a, err := netip.ParseAddr(fields[1])
			switch {
			case err != nil:
			case a.Is4() || a.Is4In6():
				return a.Unmap(), nil
			case !v6.IsValid():
				v6 = a
			}
		}
	}
	if v6.IsValid() {
		return v6, nil
	}
	return netip.Addr{}, fmt.Errorf("no nameserver in %s", path)
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
	if cfg.ipv6() {
		logf("%s in %s: guest %v, gateway %v, DNS %v", cfg.tunName, cfg.target, cfg.guest6(), cfg.gateway6(), cfg.dnsAddr6())
	}
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
