package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
)

// Pair is the two-namespace topology of the environment notes (§1, §9,
// netns-topology.sh, veth mode): the kernel's stack in Peer, with
// PeerAddr on PeerIf, joined by a veth pair to DUTIf in DUT, where the
// user-space stack attaches (link/afpacket) and which has no address, so
// that the DUT namespace's kernel neither answers ARP nor sends resets.
//
//	p, err := netns.NewPair(netns.PairConfig{Prefix: "ustack-x-"})
//	defer p.Close()
//	ep, err := afpacket.Open(afpacket.Config{Interface: p.DUTIf, Netns: p.DUT.Name})
//	// the stack on ep answers as 10.77.0.2; the kernel in p.Peer is 10.77.0.1:
//	p.Peer.Run("ping", "-c", "3", "10.77.0.2")
type Pair struct {
	Peer, DUT     *NS
	PeerIf, DUTIf string
	PeerAddr      netip.Prefix
}

// PairConfig describes a Pair. The zero value gives 10.77.0.1/24 on p0,
// d0 on the other side, MTU 1500, peer offloads off, RPS on.
type PairConfig struct {
	// Prefix starts both namespace names (UniqueName adds the rest);
	// "" means "ustack-".
	Prefix string
	// PeerAddr is the kernel side's address; zero means 10.77.0.1/24.
	PeerAddr netip.Prefix
	// PeerIf and DUTIf name the veth ends; "" means "p0" and "d0".
	PeerIf, DUTIf string
	// MTU of both ends; 0 means 1500.
	MTU int
	// PeerOffloads keeps TSO, GSO and checksum offload on the peer's end
	// (the kernel default). Off (the default), the peer sends MTU-sized
	// frames with complete checksums: what link/afpacket with NoOffloads
	// and `ustack netem` need (its package documentation says why); with
	// its default offloads link/afpacket takes either.
	PeerOffloads bool
	// NoRPS leaves receive packet steering alone. By default both ends
	// steer receive processing to CPU 0, which keeps a flow's frames in
	// order on a veth (environment notes §1).
	NoRPS bool
}

// NewPair builds a Pair. On error it removes whatever it had made.
func NewPair(cfg PairConfig) (p *Pair, err error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "ustack-"
	}
	if !cfg.PeerAddr.IsValid() {
		cfg.PeerAddr = netip.MustParsePrefix("10.77.0.1/24")
	}
	if cfg.PeerIf == "" {
		cfg.PeerIf = "p0"
	}
	if cfg.DUTIf == "" {
		cfg.DUTIf = "d0"
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	p = &Pair{PeerIf: cfg.PeerIf, DUTIf: cfg.DUTIf, PeerAddr: cfg.PeerAddr}
	defer func() {
		if err != nil {
			p.Close()
			p = nil
		}
	}()
	base := UniqueName(cfg.Prefix)
	if p.Peer, err = Create(base + "-peer"); err != nil {
		return p, err
	}
	if p.DUT, err = Create(base + "-dut"); err != nil {
		return p, err
	}
	if err = AddVeth(p.Peer, cfg.PeerIf, p.DUT, cfg.DUTIf, cfg.MTU); err != nil {
		return p, err
	}
	// Keep the DUT's link quiet: no IPv6 router solicitations or DAD.
	if err = p.DUT.Sysctl("net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
		return p, err
	}
	if err = p.DUT.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
		return p, err
	}
	if err = p.Peer.IP("addr", "add", cfg.PeerAddr.String(), "dev", cfg.PeerIf); err != nil {
		return p, err
	}
	if !cfg.PeerOffloads {
		// The ethtool command turns off every TSO variant by name
		// (tx-tcp*-segmentation); the legacy ioctls of SetOffloads
		// miss ones newer than they are, such as
		// tx-tcp-accecn-segmentation (Linux 6.18).
		if _, lerr := exec.LookPath("ethtool"); lerr == nil {
			_, err = p.Peer.Run("ethtool", "-K", cfg.PeerIf, "tso", "off", "gso", "off", "tx", "off")
		} else {
			err = p.Peer.Do(func() error { return SetOffloads(cfg.PeerIf, false) })
		}
		if err != nil {
			return p, err
		}
	}
	for _, e := range []struct {
		ns     *NS
		ifname string
	}{{p.Peer, cfg.PeerIf}, {p.DUT, cfg.DUTIf}} {
		if err = e.ns.Do(func() error { return SetUp(e.ifname) }); err != nil {
			return p, err
		}
		if !cfg.NoRPS && runtime.NumCPU() > 1 {
			if err = e.ns.SetRPS(e.ifname, "1"); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// Close deletes both namespaces (and with them the veth pair).
func (p *Pair) Close() error {
	if p == nil {
		return nil
	}
	return errors.Join(p.DUT.Delete(), p.Peer.Delete())
}

// AddVeth creates a veth pair with one queue each way, end a in namespace
// na and end b in nb, with the given MTU (0: the kernel's default), and
// leaves both down.
func AddVeth(na *NS, a string, nb *NS, b string, mtu int) error {
	args := []string{"link", "add", a, "numtxqueues", "1", "numrxqueues", "1"}
	if mtu > 0 {
		args = append(args, "mtu", strconv.Itoa(mtu))
	}
	args = append(args, "type", "veth", "peer", "name", b, "numtxqueues", "1", "numrxqueues", "1")
	if mtu > 0 {
		args = append(args, "mtu", strconv.Itoa(mtu))
	}
	args = append(args, "netns", nb.Name)
	if err := na.IP(args...); err != nil {
		return fmt.Errorf("veth %s/%s <-> %s/%s: %w", na.Name, a, nb.Name, b, err)
	}
	return nil
}

// Chain is the three-namespace topology of an impaired link (environment
// notes §5): the kernel's stack in Peer, joined by a veth pair to MidA in
// Mid, and MidB in Mid joined by a second veth pair to DUTIf in DUT. Mid
// has no addresses (and IPv6 off): a bridge there, such as `ustack netem`,
// forwards (and impairs) every frame between MidA and MidB. Segmentation
// and checksum offloads are off on all four ends, so that every frame is
// an MTU-sized frame with complete checksums that a corruption breaks for
// real, and receive processing is steered to one CPU on all of them.
//
//	peer: p0 10.77.0.1/24 ══ mid: ma │ netem │ mb ══ dut: d0 (the stack on AF_PACKET)
//
// The embedded Pair has Peer, DUT, PeerIf, DUTIf and PeerAddr as in a
// Pair, so code written for a Pair runs over a Chain unchanged.
type Chain struct {
	Pair
	Mid        *NS
	MidA, MidB string
}

// ChainConfig describes a Chain: the Pair's settings (PeerOffloads is
// ignored: offloads are always off), and the names of the middle
// namespace's interfaces, "ma" and "mb" by default.
type ChainConfig struct {
	PairConfig
	MidA, MidB string
}

// NewChain builds a Chain. On error it removes whatever it had made.
func NewChain(cfg ChainConfig) (c *Chain, err error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "ustack-"
	}
	if !cfg.PeerAddr.IsValid() {
		cfg.PeerAddr = netip.MustParsePrefix("10.77.0.1/24")
	}
	if cfg.PeerIf == "" {
		cfg.PeerIf = "p0"
	}
	if cfg.DUTIf == "" {
		cfg.DUTIf = "d0"
	}
	if cfg.MidA == "" {
		cfg.MidA = "ma"
	}
	if cfg.MidB == "" {
		cfg.MidB = "mb"
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	c = &Chain{Pair: Pair{PeerIf: cfg.PeerIf, DUTIf: cfg.DUTIf, PeerAddr: cfg.PeerAddr}, MidA: cfg.MidA, MidB: cfg.MidB}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	base := UniqueName(cfg.Prefix)
	if c.Peer, err = Create(base + "-peer"); err != nil {
		return c, err
	}
	if c.Mid, err = Create(base + "-mid"); err != nil {
		return c, err
	}
	if c.DUT, err = Create(base + "-dut"); err != nil {
		return c, err
	}
	if err = AddVeth(c.Peer, cfg.PeerIf, c.Mid, cfg.MidA, cfg.MTU); err != nil {
		return c, err
	}
	if err = AddVeth(c.Mid, cfg.MidB, c.DUT, cfg.DUTIf, cfg.MTU); err != nil {
		return c, err
	}
	for _, ns := range []*NS{c.Mid, c.DUT} {
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
			if err = ns.Sysctl(k, "1"); err != nil {
				return c, err
			}
		}
	}
	if err = c.Peer.IP("addr", "add", cfg.PeerAddr.String(), "dev", cfg.PeerIf); err != nil {
		return c, err
	}
	_, lerr := exec.LookPath("ethtool")
	for _, e := range []struct {
		ns     *NS
		ifname string
	}{{c.Peer, cfg.PeerIf}, {c.Mid, cfg.MidA}, {c.Mid, cfg.MidB}, {c.DUT, cfg.DUTIf}} {
		if lerr == nil {
			// As in NewPair: ethtool knows every TSO variant by name.
			_, err = e.ns.Run("ethtool", "-K", e.ifname, "tso", "off", "gso", "off", "tx", "off", "gro", "off")
		} else {
			err = e.ns.Do(func() error { return errors.Join(SetOffloads(e.ifname, false), SetGRO(e.ifname, false)) })
		}
		if err != nil {
			return c, err
		}
		if err = e.ns.Do(func() error { return SetUp(e.ifname) }); err != nil {
			return c, err
		}
		if !cfg.NoRPS && runtime.NumCPU() > 1 {
			if err = e.ns.SetRPS(e.ifname, "1"); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// Close deletes the three namespaces (and with them both veth pairs).
func (c *Chain) Close() error {
	if c == nil {
		return nil
	}
	return errors.Join(c.Pair.Close(), c.Mid.Delete())
}
