package ustack

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/link/pipe"
	"github.com/ustack/ustack/network"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/stack/stacktest"
	"github.com/ustack/ustack/wire"
)

// wireLog is a link that keeps a copy of every frame written to it.
type wireLog struct {
	link.Endpoint
	mu     sync.Mutex
	frames [][]byte
}

func (r *wireLog) WriteBatch(pkts []link.Packet) (int, error) {
	r.mu.Lock()
	for i := range pkts {
		r.frames = append(r.frames, bytes.Clone(pkts[i].Frame()))
	}
	r.mu.Unlock()
	return r.Endpoint.WriteBatch(pkts)
}

// decoded returns every frame written so far, decoded.
func (r *wireLog) decoded() []*stacktest.Decoded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*stacktest.Decoded
	for _, f := range r.frames {
		out = append(out, stacktest.Decode(f))
	}
	return out
}

// wireCounts counts what a host sent that it should send once, however
// many shards it has: ARP requests, neighbour solicitations by target
// (DAD's, from ::, apart), router solicitations, MLD reports.
type wireCounts struct {
	arpRequests int
	ns, dad     map[netip.Addr]int
	rs, mld     int
}

func countWire(frames []*stacktest.Decoded) wireCounts {
	c := wireCounts{ns: map[netip.Addr]int{}, dad: map[netip.Addr]int{}}
	for _, d := range frames {
		switch {
		case d.ARP != nil && d.ARP.Op == wire.ARPRequest:
			c.arpRequests++
		case d.NDP != nil && d.NDP.Type == wire.ICMPv6NeighborSolicit && d.IP6.Src.IsUnspecified():
			c.dad[d.NDP.Target]++
		case d.NDP != nil && d.NDP.Type == wire.ICMPv6NeighborSolicit:
			c.ns[d.NDP.Target]++
		case d.NDP != nil && d.NDP.Type == wire.ICMPv6RouterSolicit:
			c.rs++
		case d.ICMP6 != nil && (d.ICMP6.Type == wire.ICMPv6MLDv2Report || d.ICMP6.Type == wire.ICMPv6MLDv1Report):
			c.mld++
		}
	}
	return c
}

// sharedNet is a host with some shards on an Ethernet pipe (its frames
// recorded) and a one-shard peer, both with IPv4 and IPv6.
type sharedNet struct {
	many, peer *Stack
	nic        *NIC
	rec        *wireLog
}

func newSharedNet(t *testing.T, shards int) *sharedNet {
	t.Helper()
	ea, eb := pipe.New(pipe.Config{Delay: time.Millisecond})
	n := &sharedNet{rec: &wireLog{Endpoint: ea}}
	var err error
	if n.many, err = newStack(Config{Config: stack.Config{Seed: 11}}, shards); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.many.Close() })
	if n.peer, err = newStack(Config{Config: stack.Config{Seed: 12}}, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.peer.Close() })
	n.nic, err = n.many.AddNIC(n.rec, NICConfig{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1},
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	nicB, err := n.peer.AddNIC(eb, NICConfig{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("2001:db8::2/64")}})
	if err != nil {
		t.Fatal(err)
	}
	waitAddresses(t, n.nic, nicB)
	return n
}

// TestSharedHost: a host of two and four shards does what a host does
// once, once. Duplicate address detection sends one solicitation per
// address, router solicitations and MLD reports are what one shard
// sends; eight connections dialled at once to a neighbour not yet
// resolved, from every shard, make one ARP request (one neighbour
// solicitation for IPv6), and the SYNs the other shards queued while it
// was under way leave when it resolves: every connection is
// established. Each shard's core sees the owner's addresses usable.
func TestSharedHost(t *testing.T) {
	for _, shards := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newSharedNet(t, shards)
				ln, err := n.peer.Listen("tcp", ":80")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						go func() {
							io.Copy(c, c)
							c.Close()
						}()
					}
				}()
				for _, dst := range []string{"10.0.0.2", "2001:db8::2"} {
					const conns = 8
					var wg sync.WaitGroup
					used := make([]bool, shards)
					var mu sync.Mutex
					for i := range conns {
						wg.Add(1)
						go func() {
							defer wg.Done()
							c, err := n.many.DialTCP(t.Context(), netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr(dst), 80))
							if err != nil {
								t.Errorf("dial %d to %s: %v", i, dst, err)
								return
							}
							defer c.Close()
							mu.Lock()
							used[c.sh.idx] = true
							mu.Unlock()
							msg := []byte(fmt.Sprintf("hello %d", i))
							c.Write(msg)
							got := make([]byte, len(msg))
							if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
								t.Errorf("echo %d over %s: %q, %v", i, dst, got, err)
							}
						}()
					}
					wg.Wait()
					for i, u := range used {
						if !u {
							t.Errorf("%s: no dial went to shard %d", dst, i)
						}
					}
				}
				time.Sleep(15 * time.Second) // router solicitations and MLD reports done
				c := countWire(n.rec.decoded())
				if c.arpRequests != 1 {
					t.Errorf("%d ARP requests for one neighbour, want 1", c.arpRequests)
				}
				if got := c.ns[netip.MustParseAddr("2001:db8::2")]; got != 1 {
					t.Errorf("%d neighbour solicitations for 2001:db8::2, want 1", got)
				}
				ll := wire.LinkLocalFromMAC(wire.MAC{2, 0, 0, 0, 0, 1})
				for _, a := range []netip.Addr{ll, netip.MustParseAddr("2001:db8::1")} {
					if got := c.dad[a]; got != 1 {
						t.Errorf("%d DAD solicitations for %v, want 1", got, a)
					}
				}
				// A one-shard host sends three router solicitations
				// (RFC 4861 §10 MAX_RTR_SOLICITATIONS) and its MLD
				// reports (two per group, RFC 3810 §6.1's robustness).
				if c.rs != 3 {
					t.Errorf("%d router solicitations, want 3", c.rs)
				}
				if c.mld == 0 || c.mld > 6 {
					t.Errorf("%d MLD reports, want what one host sends (1 to 6)", c.mld)
				}
				if st := n.many.Stats(); st.Net.ARPOutRequests != 1 {
					t.Errorf("ARPOutRequests %d, want 1", st.Net.ARPOutRequests)
				}
				for i, sh := range n.many.shards {
					sh.mu.Lock()
					info := sh.core.AddrInfo(n.nic.id)
					sh.mu.Unlock()
					usable := 0
					for _, a := range info {
						if a.Prefix.Addr().Is6() && a.State == "preferred" {
							usable++
						}
					}
					if usable != 2 {
						t.Errorf("shard %d: IPv6 addresses %+v, want two preferred", i, info)
					}
				}
			})
		})
	}
}

// TestSharedFragmentedTCP: a TCP segment that comes in fragments, of a
// flow that hashes to a shard other than 0, is reassembled (fragments go
// to shard 0, the host part's owner) and handed to its flow's shard,
// over IPv4 and IPv6: a SYN with 100 bytes of data, cut in two, to a
// listener makes a half-open connection in that shard, which answers
// with a SYN-ACK. Two and four shards.
func TestSharedFragmentedTCP(t *testing.T) {
	for _, shards := range []int{2, 4} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newSharedNet(t, shards)
				ln, err := n.many.Listen("tcp", ":8080")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				us := wire.MAC{2, 0, 0, 0, 0, 1}
				them := wire.MAC{2, 0, 0, 0, 0, 3}
				inject := func(frames ...[]byte) {
					pkts := make([]link.Packet, len(frames))
					for i, f := range frames {
						pkts[i] = link.Packet{Buf: f, N: len(f)}
					}
					n.many.input(n.nic, pkts, &input{})
				}
				for _, fam := range []struct{ local, remote string }{{"10.0.0.1", "10.0.0.3"}, {"2001:db8::1", "2001:db8::3"}} {
					local := netip.AddrPortFrom(netip.MustParseAddr(fam.local), 8080)
					ra := netip.MustParseAddr(fam.remote)
					// A source port whose flow is not shard 0's.
					var remote netip.AddrPort
					for p := uint16(20000); ; p++ {
						remote = netip.AddrPortFrom(ra, p)
						if n.many.shardOfFlow(local, remote) != 0 {
							break
						}
					}
					k := n.many.shardOfFlow(local, remote)
					// Let the host know the remote's MAC, so that the
					// SYN-ACK leaves.
					if ra.Is4() {
						inject(stacktest.Ether(us, them, 0, wire.EtherTypeARP, stacktest.ARP(wire.ARPReply, them, ra, us, local.Addr())))
					} else {
						o := wire.NDPOptions{HasSourceLinkAddr: true, SourceLinkAddr: them}
						f := wire.NDPFields{Type: wire.ICMPv6NeighborSolicit, Target: local.Addr(), Options: make([]byte, o.Len())}
						o.Encode(f.Options)
						g := wire.SolicitedNodeMulticast(local.Addr())
						m := make([]byte, f.Len())
						f.Encode(m, ra, g)
						gm, _ := wire.MulticastMAC(g)
						inject(stacktest.Ether(gm, them, 0, wire.EtherTypeIPv6, stacktest.IP6(wire.IPv6Fields{Src: ra, Dst: g, NextHeader: wire.ProtoICMPv6, HopLimit: 255}, m)))
					}
					seg := stacktest.TCPSeg(remote, local, wire.TCPFields{Seq: 5, Flags: wire.TCPFlagSYN, Window: 65535, Payload: bytes.Repeat([]byte{7}, 100)})
					var frames [][]byte
					if ra.Is4() {
						h := stacktest.IPHeader(ra, local.Addr(), wire.ProtoTCP)
						h.ID, h.MF = 99, true
						frames = append(frames, stacktest.Ether(us, them, 0, wire.EtherTypeIPv4, stacktest.IP(h, seg[:64])))
						h.MF, h.FragOffset = false, 64
						frames = append(frames, stacktest.Ether(us, them, 0, wire.EtherTypeIPv4, stacktest.IP(h, seg[64:])))
					} else {
						for _, part := range []struct {
							off  int
							more bool
						}{{0, true}, {64, false}} {
							fh := wire.IPv6FragmentFields{NextHeader: wire.ProtoTCP, Offset: uint16(part.off), More: part.more, ID: 99}
							b := make([]byte, wire.IPv6FragmentLen)
							fh.Encode(b)
							end := len(seg)
							if part.more {
								end = 64
							}
							b = append(b, seg[part.off:end]...)
							frames = append(frames, stacktest.Ether(us, them, 0, wire.EtherTypeIPv6, stacktest.IP6(wire.IPv6Fields{Src: ra, Dst: local.Addr(), NextHeader: wire.ProtoFragment}, b)))
						}
					}
					if n.many.shardOfFrame(link.Ethernet, frames[0]) != 0 || n.many.shardOfFrame(link.Ethernet, frames[1]) != 0 {
						t.Fatalf("%v: fragments not sent to shard 0", remote)
					}
					inject(frames...)
					time.Sleep(10 * time.Millisecond)
					synctest.Wait()
					found := -1
					for i, sh := range n.many.shards {
						sh.mu.Lock()
						for _, ci := range sh.core.Conns() {
							if ci.Remote == remote {
								found = i
							}
						}
						sh.mu.Unlock()
					}
					if found != k {
						t.Errorf("%v→%v: connection in shard %d, want %d (its flow's)", remote, local, found, k)
					}
					synAcks := 0
					for _, d := range n.rec.decoded() {
						if d.IsTCP(wire.TCPFlagSYN|wire.TCPFlagACK) && d.TCP.DstPort == remote.Port() && d.TCP.Ack == 5+1 {
							synAcks++
						}
					}
					if synAcks == 0 {
						t.Errorf("%v: no SYN-ACK", remote)
					}
				}
				st := n.many.Stats()
				if st.Net.ReasmOKs != 1 || st.Net.Ip6ReasmOKs != 1 || st.Net.ReasmHandoffDrops != 0 {
					t.Errorf("reassembled %d IPv4, %d IPv6, %d hand-off drops; want 1, 1, 0", st.Net.ReasmOKs, st.Net.Ip6ReasmOKs, st.Net.ReasmHandoffDrops)
				}
			})
		})
	}
}

// TestSharedSLAAC: a router advertisement with an autonomous prefix
// reaches the owner of the host part; the address it forms goes through
// DAD once (one solicitation on the wire), is counted once, and every
// shard's core has it, usable, with the default route and the on-link
// prefix; when the router's lifetime runs out, every core drops the
// default route.
func TestSharedSLAAC(t *testing.T) {
	for _, shards := range []int{2, 4} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newSharedNet(t, shards)
				router := netip.MustParseAddr("fe80::99")
				rmac := wire.MAC{2, 0, 0, 0, 0, 0x99}
				pi := wire.NDPPrefixInfo{PrefixLen: 64, Flags: wire.NDPPrefixOnLink | wire.NDPPrefixAutonomous,
					ValidLifetime: 3600, PreferredLifetime: 1800, Prefix: netip.MustParseAddr("2001:db8:1::")}
				o := wire.NDPOptions{HasSourceLinkAddr: true, SourceLinkAddr: rmac}
				opts := make([]byte, o.Len())
				o.Encode(opts)
				b := make([]byte, wire.NDPPrefixInfoLen)
				pi.Encode(b)
				ra := wire.NDPFields{Type: wire.ICMPv6RouterAdvert, CurHopLimit: 77, RouterLifetime: 30, Options: append(opts, b...)}
				m := make([]byte, ra.Len())
				ra.Encode(m, router, wire.IPv6AllNodes)
				gm, _ := wire.MulticastMAC(wire.IPv6AllNodes)
				frame := stacktest.Ether(gm, rmac, 0, wire.EtherTypeIPv6, stacktest.IP6(wire.IPv6Fields{Src: router, Dst: wire.IPv6AllNodes, NextHeader: wire.ProtoICMPv6, HopLimit: 255}, m))
				if got := n.many.shardOfFrame(link.Ethernet, frame); got != 0 {
					t.Fatalf("router advertisement to shard %d, want 0", got)
				}
				n.many.input(n.nic, []link.Packet{{Buf: frame, N: len(frame)}}, &input{})
				time.Sleep(5 * time.Second)
				auto := netip.MustParseAddr("2001:db8:1::ff:fe00:1") // the prefix and the MAC's interface ID
				if got := countWire(n.rec.decoded()).dad[auto]; got != 1 {
					t.Errorf("%d DAD solicitations for %v, want 1", got, auto)
				}
				if st := n.many.Stats(); st.Net.Ip6AutoconfAddrs != 1 {
					t.Errorf("Ip6AutoconfAddrs %d, want 1", st.Net.Ip6AutoconfAddrs)
				}
				hasDefault := func(rs []network.Route) bool {
					for _, r := range rs {
						if r.Dst.Bits() == 0 && r.Dst.Addr().Is6() && r.Gateway == router {
							return true
						}
					}
					return false
				}
				for i, sh := range n.many.shards {
					sh.mu.Lock()
					info := sh.core.AddrInfo(n.nic.id)
					routes := sh.core.Routes()
					hop := sh.core.HopLimit()
					sh.mu.Unlock()
					ok := false
					for _, a := range info {
						ok = ok || a.Prefix.Addr() == auto && a.Auto && a.State == "preferred"
					}
					if !ok {
						t.Errorf("shard %d: addresses %+v, want %v preferred", i, info, auto)
					}
					if !hasDefault(routes) || hop != 77 {
						t.Errorf("shard %d: routes %v, hop limit %d; want a default route via %v, 77", i, routes, hop, router)
					}
				}
				time.Sleep(30 * time.Second) // the router's lifetime
				for i, sh := range n.many.shards {
					sh.mu.Lock()
					routes := sh.core.Routes()
					sh.mu.Unlock()
					if hasDefault(routes) {
						t.Errorf("shard %d: default route via %v outlived the router's lifetime: %v", i, router, routes)
					}
				}
			})
		})
	}
}
