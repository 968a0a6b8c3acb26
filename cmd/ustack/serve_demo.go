package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/ustack/ustack/internal/netns"
)

// demoNet is the private topology of `serve -netns-demo`: a network
// namespace for the kernel's side, with a name unique to this run, and
// the stack's link toward it:
//
//   - tap/tun: the device is created inside that namespace (the stack
//     keeps its descriptor), and the kernel side's address goes on it;
//   - afpacket: a veth pair between that namespace (with the address) and
//     a second one, where the stack's AF_PACKET socket binds the other
//     end (netns.Pair: peer offloads off, RPS on, IPv6 off on the DUT's
//     kernel, which leaves the link to the stack).
//
// The kernel side gets the gateway address of each family the stack
// has (10.77.0.1/24 and fd77::1/64 by default; the IPv6 one without DAD,
// so that it answers at once).
//
// close removes everything; serve defers it right after creating it, so
// it runs on every way out, errors and signals included.
type demoNet struct {
	kind, ifname string
	dutNS        string // namespace of the stack's device or interface
	peer         *netns.NS
	pair         *netns.Pair
	kernelAddr   netip.Prefix // IPv4, if the stack has IPv4
	kernelAddr6  netip.Prefix // IPv6, if the stack has IPv6
}

func newDemoNet(kind, name string, c *serveConfig) (*demoNet, error) {
	if c.netns != "" {
		return nil, errors.New("-netns-demo makes its own namespaces; leave out -netns")
	}
	d := &demoNet{kind: kind}
	for _, v4 := range []bool{true, false} {
		a := c.addrOf(v4)
		if !a.IsValid() {
			continue
		}
		gw := c.gwFor(a.Addr())
		if !gw.IsValid() {
			return nil, fmt.Errorf("-netns-demo needs a -gw for %v, the kernel side's address (with the default -addr it is %s and %s)", a, defaultServeGW, defaultServeGW6)
		}
		k := netip.PrefixFrom(gw, a.Bits())
		if !k.Contains(a.Addr()) || gw == a.Addr() {
			return nil, fmt.Errorf("-gw %v must be another address in %v", gw, a.Masked())
		}
		if v4 {
			d.kernelAddr = k
		} else {
			d.kernelAddr6 = k
		}
	}
	peerAddr := d.kernelAddr
	if !peerAddr.IsValid() {
		peerAddr = d.kernelAddr6
	}
	switch kind {
	case "tap", "tun":
		d.ifname = name
		if d.ifname == "" {
			d.ifname = "ustack0"
		}
		ns, err := netns.Create(netns.UniqueName("ustack-demo-"))
		if err != nil {
			return nil, err
		}
		d.peer, d.dutNS = ns, ns.Name
	case "afpacket":
		p, err := netns.NewPair(netns.PairConfig{Prefix: "ustack-demo-", PeerAddr: peerAddr, MTU: c.mtu})
		if err != nil {
			return nil, err
		}
		d.pair, d.peer, d.ifname, d.dutNS = p, p.Peer, p.DUTIf, p.DUT.Name
	}
	return d, nil
}

// configureKernelSide gives the kernel's end its addresses once the
// stack's device exists.
func (d *demoNet) configureKernelSide() error {
	ifname := d.ifname
	if d.pair != nil {
		ifname = d.pair.PeerIf
	}
	if d.kernelAddr.IsValid() && d.pair == nil {
		if err := d.peer.IP("addr", "add", d.kernelAddr.String(), "dev", ifname); err != nil {
			return err
		}
	}
	if d.kernelAddr6.IsValid() && (d.pair == nil || d.kernelAddr.IsValid()) {
		// NewPair gave the peer its first address; the IPv6 one goes on
		// here, without DAD.
		if err := d.peer.IP("-6", "addr", "add", d.kernelAddr6.String(), "dev", ifname, "nodad"); err != nil {
			return err
		}
	}
	return nil
}

// printTry prints commands to run against the stack from the kernel's
// namespace.
func (d *demoNet) printTry(w io.Writer, c *serveConfig) {
	ns := d.peer.Name
	var kernel []string
	for _, k := range []netip.Prefix{d.kernelAddr, d.kernelAddr6} {
		if k.IsValid() {
			kernel = append(kernel, k.String())
		}
	}
	fmt.Fprintf(w, "\nnetns demo: the kernel's side is %s in netns %s", strings.Join(kernel, " and "), ns)
	if d.pair != nil {
		fmt.Fprintf(w, " (veth %s <-> %s in netns %s)", d.pair.PeerIf, d.pair.DUTIf, d.pair.DUT.Name)
	}
	fmt.Fprintf(w, ". Try, from another terminal:\n\n")
	a4, a6 := c.addrOf(true), c.addrOf(false)
	ip := a4.Addr().String()
	if !a4.IsValid() {
		ip = "[" + a6.Addr().String() + "]"
	}
	httpHost := func(h string) string {
		if c.http != "" {
			if p := port(c.http); p != "" && p != "80" {
				return h + ":" + p
			}
		}
		return h
	}
	if a4.IsValid() {
		fmt.Fprintf(w, "  ip netns exec %s ping -c 3 %s\n", ns, a4.Addr())
	}
	if a6.IsValid() {
		fmt.Fprintf(w, "  ip netns exec %s ping -6 -c 3 %s\n", ns, a6.Addr())
	}
	if c.http != "" {
		if a4.IsValid() {
			fmt.Fprintf(w, "  ip netns exec %s curl -o /dev/null -w '%%{http_code} %%{size_download} bytes in %%{time_total} s\\n' http://%s/bytes/1000000\n", ns, httpHost(a4.Addr().String()))
		}
		if a6.IsValid() {
			fmt.Fprintf(w, "  ip netns exec %s curl -6 -o /dev/null -w '%%{http_code} %%{size_download} bytes in %%{time_total} s\\n' 'http://%s/bytes/1000000'\n", ns, httpHost("["+a6.Addr().String()+"]"))
		}
	}
	if c.echo != "" {
		fmt.Fprintf(w, "  echo hello | ip netns exec %s socat - TCP:%s:%s\n", ns, ip, port(c.echo))
	}
	if c.discard != "" {
		fmt.Fprintf(w, "  ip netns exec %s sh -c 'head -c 100000000 /dev/zero | socat -u - TCP:%s:%s'\n", ns, ip, port(c.discard))
	}
	if c.source != "" {
		fmt.Fprintf(w, "  ip netns exec %s sh -c 'socat -u TCP:%s:%s - | head -c 100000000 | wc -c'\n", ns, ip, port(c.source))
	}
	if c.udpEcho != "" {
		fmt.Fprintf(w, "  echo hello | ip netns exec %s socat - UDP:%s:%s\n", ns, ip, port(c.udpEcho))
		if a6.IsValid() && a4.IsValid() {
			fmt.Fprintf(w, "  echo hello | ip netns exec %s socat - UDP6:[%s]:%s\n", ns, a6.Addr(), port(c.udpEcho))
		}
	}
	fmt.Fprintf(w, "\nCtrl-C stops the stack and removes the namespace.\n")
}

func port(addr string) string {
	_, p, _ := strings.Cut(addr, ":")
	return p
}

// close removes the demo's namespaces (and with them the devices).
func (d *demoNet) close(w io.Writer) {
	var err error
	if d.pair != nil {
		err = d.pair.Close()
	} else if d.peer != nil {
		err = d.peer.Delete()
	}
	if err != nil {
		fmt.Fprintln(w, "ustack serve: removing the demo's namespace:", err)
		return
	}
	fmt.Fprintf(w, "netns demo: removed netns %s\n", d.peer.Name)
}
