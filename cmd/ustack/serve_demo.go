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
//     end (netns.Pair: peer offloads off, RPS on, IPv6 off on the DUT).
//
// close removes everything; serve defers it right after creating it, so
// it runs on every way out, errors and signals included.
type demoNet struct {
	kind, ifname string
	dutNS        string // namespace of the stack's device or interface
	peer         *netns.NS
	pair         *netns.Pair
	kernelAddr   netip.Prefix
}

func newDemoNet(kind, name string, c *serveConfig) (*demoNet, error) {
	if !c.gw.IsValid() {
		return nil, errors.New("-netns-demo needs -gw, the kernel side's address (with the default -addr it is " + defaultServeGW + ")")
	}
	if c.netns != "" {
		return nil, errors.New("-netns-demo makes its own namespaces; leave out -netns")
	}
	d := &demoNet{kind: kind, kernelAddr: netip.PrefixFrom(c.gw, c.addr.Bits())}
	if !d.kernelAddr.Contains(c.addr.Addr()) || c.gw == c.addr.Addr() {
		return nil, fmt.Errorf("-gw %v must be another address in %v", c.gw, c.addr.Masked())
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
		p, err := netns.NewPair(netns.PairConfig{Prefix: "ustack-demo-", PeerAddr: d.kernelAddr, MTU: c.mtu})
		if err != nil {
			return nil, err
		}
		d.pair, d.peer, d.ifname, d.dutNS = p, p.Peer, p.DUTIf, p.DUT.Name
	}
	return d, nil
}

// configureKernelSide gives the kernel's end its address once the
// stack's device exists.
func (d *demoNet) configureKernelSide() error {
	if d.pair != nil {
		return nil // NewPair did it
	}
	return d.peer.IP("addr", "add", d.kernelAddr.String(), "dev", d.ifname)
}

// printTry prints commands to run against the stack from the kernel's
// namespace.
func (d *demoNet) printTry(w io.Writer, c *serveConfig) {
	ns, ip := d.peer.Name, c.addr.Addr().String()
	host := ip
	if c.http != "" {
		if _, port, _ := strings.Cut(c.http, ":"); port != "" && port != "80" {
			host = ip + ":" + port
		}
	}
	fmt.Fprintf(w, "\nnetns demo: the kernel's side is %v in netns %s", d.kernelAddr, ns)
	if d.pair != nil {
		fmt.Fprintf(w, " (veth %s <-> %s in netns %s)", d.pair.PeerIf, d.pair.DUTIf, d.pair.DUT.Name)
	}
	fmt.Fprintf(w, ". Try, from another terminal:\n\n")
	fmt.Fprintf(w, "  ip netns exec %s ping -c 3 %s\n", ns, ip)
	if c.http != "" {
		fmt.Fprintf(w, "  ip netns exec %s curl -o /dev/null -w '%%{http_code} %%{size_download} bytes in %%{time_total} s\\n' http://%s/bytes/1000000\n", ns, host)
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
