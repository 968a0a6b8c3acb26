package stack

import (
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
)

// The path MTU cache (RFC 1191 for IPv4, RFC 8201 for IPv6): the MTU the
// network reported for a destination, learned from ICMP's "fragmentation
// needed" (type 3 code 4, with the next-hop MTU) and ICMPv6's "packet too
// big", kept per destination until it expires, as Linux keeps it in the
// destination's route exception (net.ipv4.route.mtu_expires, 10 minutes).
// It is consulted where the MTU of a destination matters: the MTU a new
// connection's MSS comes from (Endpoints.MTU: pathMTU), and the size
// above which sendIP fragments (IPv6 datagrams, IPv4 ones without DF).
// A connection's own MSS moves through its tcp.Conn (HandlePacketTooBig
// and PLPMTUD); tcpError learns a TCP packet too big only once the
// connection has checked its sequence number (RFC 5927). Entries live in
// a fixed number of slots found through a map; when every slot is taken
// the oldest-placed entry is evicted, round robin, so a flood of forged
// errors costs O(1) each and evicts (counted) rather than grows.

// PMTUConfig configures the path MTU cache.
type PMTUConfig struct {
	// Expires is how long a learned path MTU holds before the
	// interface's MTU is assumed again (net.ipv4.route.mtu_expires and
	// net.ipv6.route.mtu_expires: 600 s; RFC 1191 §6.3 and RFC 8201 §4
	// ask for at least 10 minutes before the MTU is raised).
	Expires time.Duration
	// MaxEntries bounds the number of destinations kept (4096).
	MaxEntries int
}

func (c *PMTUConfig) setDefaults() {
	if c.Expires <= 0 {
		c.Expires = 10 * time.Minute
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 4096
	}
}

// PMTUStats count the path MTU cache's work.
type PMTUStats struct {
	Entries   uint64 // destinations with a learned path MTU now (gauge)
	Learned   uint64 // path MTUs learned or lowered from ICMP
	Ignored   uint64 // errors that named an MTU no smaller than the path's, or a source not ours: nothing learned (RFC 1191 §6.3: never raised by ICMP)
	Clamped   uint64 // MTUs below the family's minimum, raised to it (IPv4 552 as Linux's min_pmtu, IPv6 1280, RFC 8201 §4)
	Expired   uint64 // entries that expired
	Evictions uint64 // entries dropped to make room: the cache was full
}

// Minimum path MTUs: IPv4's is Linux's ip_rt_min_pmtu (512 + 20 + 20);
// IPv6's is its minimum link MTU (RFC 8200 §5), below which RFC 8201 §4
// forbids going.
const (
	minPMTU4 = 552
	minPMTU6 = 1280
)

type pmtuEntry struct {
	dst     netip.Addr
	mtu     int
	expires clock.Instant
	live    bool
}

// pmtuCache is the cache of learned path MTUs.
type pmtuCache struct {
	cfg   PMTUConfig
	slots []pmtuEntry
	idx   map[netip.Addr]int
	free  []int
	hand  int           // the next slot to evict when full
	next  clock.Instant // the earliest expiry, clock.Never when empty
	st    *PMTUStats
	// gen changes whenever an entry is set or removed: a connection
	// that saw another generation asks again (pollConns, syncPMTU).
	gen uint64
}

func newPMTUCache(cfg PMTUConfig, st *PMTUStats) *pmtuCache {
	cfg.setDefaults()
	return &pmtuCache{cfg: cfg, idx: map[netip.Addr]int{}, next: clock.Never, st: st}
}

// lookup returns dst's learned path MTU, if one holds at now.
func (c *pmtuCache) lookup(now clock.Instant, dst netip.Addr) (int, bool) {
	if len(c.idx) == 0 {
		return 0, false
	}
	i, ok := c.idx[dst]
	if !ok {
		return 0, false
	}
	e := &c.slots[i]
	if e.expires <= now {
		c.remove(i)
		c.st.Expired++
		return 0, false
	}
	return e.mtu, true
}

// set records mtu as dst's path MTU until now + Expires.
func (c *pmtuCache) set(now clock.Instant, dst netip.Addr, mtu int) {
	exp := now.Add(c.cfg.Expires)
	c.gen++
	if i, ok := c.idx[dst]; ok {
		c.slots[i].mtu, c.slots[i].expires = mtu, exp
		c.next = clock.Min(c.next, exp)
		return
	}
	var i int
	switch {
	case len(c.free) > 0:
		i = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
	case len(c.slots) < c.cfg.MaxEntries:
		c.slots = append(c.slots, pmtuEntry{})
		i = len(c.slots) - 1
	default:
		i = c.hand
		c.hand = (c.hand + 1) % len(c.slots)
		c.remove(i)
		c.st.Evictions++
		c.free = c.free[:len(c.free)-1] // remove gave the slot back
	}
	c.slots[i] = pmtuEntry{dst: dst, mtu: mtu, expires: exp, live: true}
	c.idx[dst] = i
	c.st.Entries++
	c.next = clock.Min(c.next, exp)
}

// remove drops the entry in slot i.
func (c *pmtuCache) remove(i int) {
	e := &c.slots[i]
	if !e.live {
		return
	}
	delete(c.idx, e.dst)
	c.gen++
	*e = pmtuEntry{}
	c.free = append(c.free, i)
	c.st.Entries--
}

// expire drops the entries expired at now: one walk of the slots, at
// most once per second however the expiries spread (those due within the
// second go together).
func (c *pmtuCache) expire(now clock.Instant) {
	if c.next > now {
		return
	}
	c.next = clock.Never
	soon := now.Add(time.Second)
	for i := range c.slots {
		e := &c.slots[i]
		if !e.live {
			continue
		}
		if e.expires <= soon {
			c.remove(i)
			c.st.Expired++
			continue
		}
		c.next = clock.Min(c.next, e.expires)
	}
}

// pathMTU returns the MTU of packets to dst out of NIC n: the NIC's for
// dst's family, or less if the cache learned less.
func (s *Stack) pathMTU(now clock.Instant, n *nic, dst netip.Addr) int {
	m := n.mtuFor(dst)
	if v, ok := s.host.pmtu.lookup(now, dst.WithZone("")); ok && v < m {
		return v
	}
	return m
}

// syncPMTU gives connection c the path MTU the cache now holds for its
// peer, when the cache changed since c last looked: what another
// connection's packet too big taught, or the NIC's MTU again once an
// entry expired (tcp.Conn.SetPathMTU).
func (s *Stack) syncPMTU(now clock.Instant, c *TCPConn) {
	c.pmtuGen = s.host.pmtu.gen
	c.conn.SetPathMTU(now, s.pathMTU(now, c.nic, c.key().remote.Addr()))
}

// rfc1191Plateaus is RFC 1191 §7's table of common MTUs, for an old
// router's "fragmentation needed" that names no next-hop MTU (§5).
var rfc1191Plateaus = [...]int{32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68}

// plateauBelow returns the largest plateau below size (RFC 1191 §5).
func plateauBelow(size int) int {
	for _, p := range rfc1191Plateaus {
		if p < size {
			return p
		}
	}
	return 68
}

// clampPMTU raises an MTU an ICMP error reported to its family's minimum.
func (s *Stack) clampPMTU(dst netip.Addr, mtu int) int {
	least := minPMTU4
	if dst.Is6() {
		least = minPMTU6
	}
	if mtu < least {
		s.host.pmtuStats.Clamped++
		return least
	}
	return mtu
}

// learnPMTU takes mtu (clamped) as the path MTU to dst from a packet too
// big about a packet src sent, if src is ours and mtu is below what the
// path is taken to carry now; it reports whether it learned. The MTU is
// never raised by ICMP (RFC 1191 §6.3, RFC 8201 §4): only expiry does.
func (s *Stack) learnPMTU(now clock.Instant, src, dst netip.Addr, mtu int) bool {
	st := &s.host.pmtuStats
	if !s.isLocal(src) {
		st.Ignored++
		return false
	}
	rt, err := s.routeTo(dst, nil)
	if err != nil {
		st.Ignored++
		return false
	}
	if mtu >= s.pathMTU(now, rt.nic, dst) {
		st.Ignored++
		return false
	}
	s.host.pmtu.set(now, dst.WithZone(""), mtu)
	st.Learned++
	return true
}

// PathMTU returns the MTU the stack uses for packets to dst now: the
// route's NIC's, or the smaller one path MTU discovery learned (RFC 1191,
// RFC 8201). It fails as routing does.
func (s *Stack) PathMTU(now clock.Instant, dst netip.Addr) (int, error) {
	rt, err := s.routeTo(dst, nil)
	if err != nil {
		return 0, err
	}
	return s.pathMTU(now, rt.nic, dst), nil
}
