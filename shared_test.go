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
