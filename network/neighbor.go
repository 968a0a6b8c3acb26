package network

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// NeighborConfig sets the neighbour cache's timers and limits. Zero fields
// take the defaults, which are Linux's (net.ipv4.neigh.default.*).
type NeighborConfig struct {
	ReachableTime time.Duration // how long a learned entry is trusted (Linux base_reachable_time 30 s); then re-probed on next use
	StaleTime     time.Duration // unused stale entries are removed after this (Linux gc_stale_time 60 s)
	RetransTime   time.Duration // between ARP requests (Linux retrans_time 1 s)
	MaxRequests   int           // requests before giving up (Linux mcast_solicit 3)
	QueueLen      int           // packets held per unresolved neighbour (Linux unres_qlen: 101); oldest dropped when full
	MaxEntries    int           // table size (Linux gc_thresh3 1024); when full, evict the oldest stale/failed entry, else refuse and count ARPTableFull
	// QueueBytes bounds the bytes held per unresolved neighbour as well
	// (Linux unres_qlen_bytes, SK_WMEM_MAX = 212992); the oldest packets are
	// dropped to make room, but a packet alone in the queue is always kept.
	QueueBytes int
	// MaxUnresolved bounds the neighbours being resolved at once
	// (INCOMPLETE entries), over all NICs; default MaxEntries/4. A new
	// resolution beyond it abandons the one that started longest ago (its
	// packets dropped; ARPUnresolvedEvicted): a real neighbour answers
	// within a round trip, so the oldest is the likeliest never to answer,
	// such as a spoofed source a SYN flood made the stack answer. Without
	// this bound such sources fill the table with entries that cannot be
	// evicted, and a real peer's entry cannot be made (ARPTableFull).
	// Linux has no such bound (gc_thresh3 bounds all entries, and its
	// forced GC evicts INCOMPLETE entries older than 5 s).
	MaxUnresolved int
	// MaxQueued bounds the packets held for unresolved neighbours beyond
	// the first of each, over all NICs (default 1024): past it, a packet
	// for a neighbour that already holds some replaces its oldest
	// (ARPQueueFull). A neighbour's first packet is always kept, so the
	// queues of many unanswered neighbours cannot starve a new one.
	MaxQueued int
	// DelayFirstProbe is how long an IPv6 entry stays in DELAY before
	// its first unicast probe (RFC 4861 §10 DELAY_FIRST_PROBE_TIME, Linux
	// delay_first_probe_time: 5 s).
	DelayFirstProbe time.Duration
	// UnicastProbes is how many unicast solicitations an IPv6 entry in
	// PROBE sends before it is deleted (RFC 4861 §10
	// MAX_UNICAST_SOLICIT, Linux ucast_solicit: 3).
	UnicastProbes int
}

// Defaults of NeighborConfig.
const (
	DefaultReachableTime = 30 * time.Second
	DefaultStaleTime     = 60 * time.Second
	DefaultRetransTime   = time.Second
	DefaultMaxRequests   = 3
	DefaultQueueLen      = 101
	DefaultMaxEntries    = 1024
	DefaultQueueBytes    = 212992
	DefaultMaxQueued     = 1024
	// DefaultDelayFirstProbe and DefaultUnicastProbes are RFC 4861 §10's
	// DELAY_FIRST_PROBE_TIME and MAX_UNICAST_SOLICIT.
	DefaultDelayFirstProbe = 5 * time.Second
	DefaultUnicastProbes   = 3
)

func (c *NeighborConfig) setDefaults() {
	if c.ReachableTime <= 0 {
		c.ReachableTime = DefaultReachableTime
	}
	if c.StaleTime <= 0 {
		c.StaleTime = DefaultStaleTime
	}
	if c.RetransTime <= 0 {
		c.RetransTime = DefaultRetransTime
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = DefaultMaxRequests
	}
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.MaxUnresolved <= 0 {
		c.MaxUnresolved = max(c.MaxEntries/4, 1)
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.DelayFirstProbe <= 0 {
		c.DelayFirstProbe = DefaultDelayFirstProbe
	}
	if c.UnicastProbes <= 0 {
		c.UnicastProbes = DefaultUnicastProbes
	}
}

// neighState is the state of a cache entry: Linux's neighbour states
// (NUD_*), simplified (see Neighbors).
type neighState uint8

const (
	stateIncomplete neighState = iota // requests outstanding, packets queued
	stateReachable                    // learned less than ReachableTime ago
	stateStale                        // learned longer ago: used, refreshed on use
	stateFailed                       // resolution gave up; kept RetransTime
	statePermanent                    // static, never expires
	stateDelay                        // IPv6: STALE and used; a probe follows unless confirmed (RFC 4861 §7.3.2)
	stateProbe                        // IPv6: unicast solicitations outstanding
)

var neighStateNames = [...]string{"INCOMPLETE", "REACHABLE", "STALE", "FAILED", "PERMANENT", "DELAY", "PROBE"}

// String returns the state as `ip neigh` prints it ("REACHABLE", ...).
func (s neighState) String() string { return neighStateNames[s] }

type neighKey struct {
	nic NICID
	ip  netip.Addr
}

type neighEntry struct {
	key   neighKey
	idx   int // position in Neighbors.ents
	state neighState
	mac   wire.MAC
	// deadline is the entry's next timer: the next request (INCOMPLETE),
	// going STALE (REACHABLE), removal (STALE, FAILED). A STALE entry's
	// real removal time is idle+StaleTime, which use moves later; the
	// timer then fires early and is re-armed.
	deadline clock.Instant
	// idle is when the entry was last used, or went STALE if later: the
	// start of the unused period that ends in removal. For FAILED entries
	// it is when they failed. Eviction takes the smallest.
	idle clock.Instant
	// refresh is when a STALE entry may next send a refresh request.
	refresh    clock.Instant
	probes     int  // requests scheduled in this resolution (or unicast probes, in PROBE)
	reqPending bool // in Neighbors.reqs and not yet polled
	router     bool // IPv6: the neighbour is a router (RFC 4861 §5.1, IsRouter)
	queue      [][]byte
	qbytes     int
	// pending says e is in the list of INCOMPLETE entries, oldest first
	// (Neighbors.pendHead), linked by pprev and pnext.
	pending      bool
	pprev, pnext *neighEntry
}

type readyPkt struct {
	nic NICID
	mac wire.MAC
	buf []byte
	v6  bool
}

// neighCounters are the counters of one family's entries: ARP's for
// IPv4, NDP's for IPv6 (a nil outRequests: the stack counts the
// solicitations it sends).
type neighCounters struct {
	outRequests, resolveFailed, queueDrops, bad, tableFull, unresolvedEvicted, queueFull *uint64
}

// nicTimes are a NIC's IPv6 timers as router advertisements set them
// (RFC 4861 §6.3.4: ReachableTime, RetransTimer); zero fields take the
// configuration's.
type nicTimes struct {
	reachable, retrans time.Duration
}

// Solicit is a solicitation Neighbors asks the stack to send: an ARP
// request, or a neighbour solicitation (RFC 4861 §7.2.2) to the
// solicited-node multicast address of IP or, for an IPv6 entry in PROBE,
// to its cached link-layer address MAC (Unicast).
type Solicit struct {
	NIC     NICID
	IP      netip.Addr
	MAC     wire.MAC
	Unicast bool
}

// Neighbors is the neighbour cache of a stack and the resolution state
// machines of ARP (RFC 826; RFC 1122 §2.3.2.1 and §2.3.2.2) and of IPv6
// Neighbor Discovery (RFC 4861 §7.2, §7.3), for all its NICs.
//
// The stack calls Resolve for every datagram it sends to a next hop. Known
// neighbours answer at once. Unknown ones get an INCOMPLETE entry, the
// datagram is copied into the entry's queue (RFC 1122 §2.3.2.2: "SHOULD
// save at least one"; Linux keeps unres_qlen), and solicitations are
// scheduled: one at once, then one every RetransTime, at most MaxRequests
// in all (RFC 1122 §2.3.2.1: no flooding; RFC 4861 §7.2.2
// MAX_MULTICAST_SOLICIT; Linux mcast_solicit, retrans_time). The stack
// sends the solicitations it takes from PollSolicit (ARP requests, or
// neighbour solicitations for IPv6 addresses). When an ARP packet or an
// NDP message teaches the address (Learn, LearnNDP, LearnAdvert), the
// queued datagrams become available from PollReady, in order, with the
// MAC. If MaxRequests solicitations go unanswered, the queue is dropped
// (ARPQueueDrops or NDPQueueDrops), the failure counted and PollFailed
// reports the address, so the stack can fail connects with EHOSTUNREACH,
// as Linux does.
//
// IPv6 entries follow RFC 4861 §7.3's reachability state machine:
//
//   - INCOMPLETE: multicast solicitations outstanding.
//   - REACHABLE: confirmed — by a solicited advertisement or an upper
//     layer's hint (Confirm) — less than ReachableTime ago. RFC 4861
//     §6.3.2 randomises the time between 0.5 and 1.5 times the base
//     value; the stack does (SetTimes), this cache uses what it is given.
//   - STALE: learned without confirmation (an unsolicited message) or no
//     longer confirmed; the first use moves it to DELAY.
//   - DELAY: used while STALE; after DelayFirstProbe without a
//     confirmation it goes to PROBE.
//   - PROBE: UnicastProbes unicast solicitations to the cached address
//     (Solicit.Unicast), RetransTime apart; unanswered, the entry is
//     deleted (counted as NDPResolveFailed and reported by PollFailed),
//     and the next packet starts over with multicast solicitations.
//   - PERMANENT: added with Add.
//
// Packets to an entry in STALE, DELAY or PROBE go to its cached address
// at once (RFC 4861 §7.3.3).
//
// IPv4 entries keep ARP's simpler cycle:
//
//   - INCOMPLETE, REACHABLE as above (REACHABLE: learned from an ARP
//     packet less than ReachableTime ago, or confirmed).
//   - STALE: still used. The first Resolve of a STALE entry (and then at
//     most one every ReachableTime) schedules one refresh request while the
//     MAC goes on being used; an answer makes it REACHABLE again. Linux
//     instead runs the same DELAY and PROBE states as for IPv6
//     (delay_first_probe_time 5 s, ucast_solicit 3 unicast probes) and
//     fails the entry if they go unanswered; here an unanswered refresh
//     leaves the entry STALE, and a neighbour whose address moved to
//     another host is relearnt from the new host's answer to the
//     (broadcast) request.
//   - FAILED: resolution gave up. Kept RetransTime so that a burst of
//     packets to a dead address does not restart resolution for each (they
//     are dropped and counted in ARPQueueDrops); then removed, and the next
//     Resolve starts over.
//   - PERMANENT: added with Add; never changes or expires.
//
// In both families an entry unused for StaleTime after it went STALE is
// removed (gc_stale_time; Linux only collects above gc_thresh1 entries,
// this cache always does).
//
// Neighbors counts ARPOutRequests (in PollSolicit), ARPResolveFailed,
// ARPQueueDrops, ARPTableFull, and ARPBad for Learn calls with unusable
// addresses, and their NDP counterparts for IPv6 entries (but not the
// neighbour solicitations sent, which the stack counts as
// Icmp6OutNeighborSolicits). The other ARP counters are the stack's.
type Neighbors struct {
	cfg   NeighborConfig
	stats *Stats
	c4    neighCounters // ARP's counters
	c6    neighCounters // NDP's counters
	times []nicTimes    // by NIC ID: IPv6 timers from router advertisements

	m    map[neighKey]*neighEntry
	ents []*neighEntry // every entry, in a deterministic order for timers and eviction
	free []*neighEntry

	next clock.Instant // no entry's deadline is earlier

	reqs      fifo[neighKey]
	ready     fifo[readyPkt]
	failed    fifo[neighKey]
	lastReady []byte // returned by the last PollReady; recycled by the next

	// The INCOMPLETE entries, in the order their resolutions started
	// (MaxUnresolved), and the packets queued beyond the first of each
	// entry (MaxQueued).
	pendHead, pendTail *neighEntry
	npending           int
	extra              int

	pool bufPool
}

// NewNeighbors returns an empty cache with cfg (zero fields take the
// defaults) counting into stats (which may be nil: the counts are then
// kept privately).
func NewNeighbors(cfg NeighborConfig, stats *Stats) *Neighbors {
	cfg.setDefaults()
	if stats == nil {
		stats = new(Stats)
	}
	n := &Neighbors{
		cfg:   cfg,
		stats: stats,
		m:     make(map[neighKey]*neighEntry),
		next:  clock.Never,
	}
	n.c4 = neighCounters{
		outRequests: &stats.ARPOutRequests, resolveFailed: &stats.ARPResolveFailed, queueDrops: &stats.ARPQueueDrops,
		bad: &stats.ARPBad, tableFull: &stats.ARPTableFull, unresolvedEvicted: &stats.ARPUnresolvedEvicted, queueFull: &stats.ARPQueueFull,
	}
	n.c6 = neighCounters{
		resolveFailed: &stats.NDPResolveFailed, queueDrops: &stats.NDPQueueDrops,
		bad: &stats.NDPBad, tableFull: &stats.NDPTableFull, unresolvedEvicted: &stats.NDPUnresolvedEvicted, queueFull: &stats.NDPQueueFull,
	}
	return n
}

// ctr returns the counters of ip's family.
func (n *Neighbors) ctr(ip netip.Addr) *neighCounters {
	if ip.Is6() {
		return &n.c6
	}
	return &n.c4
}

// Config returns the configuration with defaults filled in.
func (n *Neighbors) Config() NeighborConfig { return n.cfg }

// SetTimes sets the reachable time and the retransmission timer of the
// IPv6 entries of nic (RFC 4861 §6.3.4: what router advertisements
// announce; the caller randomises the reachable time, §6.3.2). Zero keeps
// the configuration's value. Timers already armed keep their deadline.
func (n *Neighbors) SetTimes(nic NICID, reachable, retrans time.Duration) {
	if nic < 0 {
		return
	}
	for int(nic) >= len(n.times) {
		n.times = append(n.times, nicTimes{})
	}
	n.times[nic] = nicTimes{reachable: reachable, retrans: retrans}
}

// reachable returns the reachable time of k's entry.
func (n *Neighbors) reachable(k neighKey) time.Duration {
	if k.ip.Is6() && int(k.nic) < len(n.times) && n.times[k.nic].reachable > 0 {
		return n.times[k.nic].reachable
	}
	return n.cfg.ReachableTime
}

// retrans returns the time between solicitations of k's entry.
func (n *Neighbors) retrans(k neighKey) time.Duration {
	if k.ip.Is6() && int(k.nic) < len(n.times) && n.times[k.nic].retrans > 0 {
		return n.times[k.nic].retrans
	}
	return n.cfg.RetransTime
}

// Resolve returns ip's MAC on nic if known. Otherwise it queues a COPY of
// pkt (an IP packet without link header; nil means nothing to queue) to go
// out when the address resolves, schedules solicitations (one is due at
// once, see PollSolicit) and returns ok=false.
//
// REACHABLE, STALE, DELAY, PROBE and PERMANENT entries answer (a STALE
// IPv4 entry may schedule a refresh request, a STALE IPv6 entry goes to
// DELAY: see Neighbors). While an entry is FAILED, pkt is dropped. If the
// table is full and nothing can be evicted, pkt is dropped and
// ARPTableFull (NDPTableFull) counted. Dropped packets count in
// ARPQueueDrops (NDPQueueDrops). An invalid ip resolves to nothing and
// queues nothing.
func (n *Neighbors) Resolve(now clock.Instant, nic NICID, ip netip.Addr, pkt []byte) (mac wire.MAC, ok bool) {
	k := neighKey{nic, ip}
	e := n.m[k]
	if e == nil {
		if !ip.IsValid() {
			return mac, false
		}
		if n.npending >= n.cfg.MaxUnresolved {
			// Make room: abandon the oldest resolution.
			*n.ctr(n.pendHead.key.ip).unresolvedEvicted++
			n.remove(n.pendHead)
		}
		e = n.create(now, k, false)
		if e == nil {
			if pkt != nil {
				*n.ctr(ip).queueDrops++
			}
			return mac, false
		}
		e.state = stateIncomplete
		n.pendPush(e)
		e.probes = 1
		n.request(e)
		n.arm(e, now.Add(n.retrans(k)))
	}
	switch e.state {
	case stateReachable, statePermanent, stateDelay, stateProbe:
		e.idle = now
		return e.mac, true
	case stateStale:
		e.idle = now
		if ip.Is6() {
			// RFC 4861 §7.3.3: a packet sent to a STALE entry moves it
			// to DELAY.
			e.state = stateDelay
			n.arm(e, now.Add(n.cfg.DelayFirstProbe))
		} else if now >= e.refresh {
			e.refresh = now.Add(n.reachable(k))
			n.request(e)
		}
		return e.mac, true
	case stateIncomplete:
		if pkt != nil {
			n.enqueue(e, pkt)
		}
	default: // stateFailed
		if pkt != nil {
			*n.ctr(ip).queueDrops++
		}
	}
	return mac, false
}

// Lookup returns ip's MAC on nic if the cache holds a usable one
// (REACHABLE, STALE, DELAY, PROBE or PERMANENT), without the side effects
// of Resolve.
func (n *Neighbors) Lookup(nic NICID, ip netip.Addr) (wire.MAC, bool) {
	e := n.m[neighKey{nic, ip}]
	if e == nil {
		return wire.MAC{}, false
	}
	switch e.state {
	case stateReachable, stateStale, statePermanent, stateDelay, stateProbe:
		return e.mac, true
	}
	return wire.MAC{}, false
}

// Learn records ip→mac on nic from an ARP packet (RFC 826 "merge" rule:
// update an existing entry; create one only if create is true — the stack
// passes create=true when the ARP packet is addressed to one of its
// addresses). A resolved entry makes its queued packets available from
// PollReady.
//
// The entry becomes REACHABLE, whatever its state, except that PERMANENT
// entries are left alone (Linux does not let ARP override them). A
// multicast, broadcast or zero mac, or an ip that cannot be a neighbour
// (invalid, unspecified, multicast, limited broadcast), is refused and
// counted in ARPBad (RFC 1812 §3.3.2: do not believe ARP replies claiming a
// broadcast or multicast Ethernet address; Linux arp_process drops them).
func (n *Neighbors) Learn(now clock.Instant, nic NICID, ip netip.Addr, mac wire.MAC, create bool) {
	if !n.usable(ip, mac) {
		return
	}
	k := neighKey{nic, ip}
	e := n.m[k]
	if e == nil {
		if !create {
			return
		}
		if e = n.create(now, k, false); e == nil {
			return
		}
	}
	if e.state == statePermanent {
		return
	}
	n.confirm(now, e, mac)
}

// usable reports whether ip→mac can be a neighbour entry, counting the
// refusal (ARPBad or NDPBad) if not.
func (n *Neighbors) usable(ip netip.Addr, mac wire.MAC) bool {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip == limitedBroadcast ||
		mac.IsMulticast() || mac.IsZero() {
		*n.ctr(ip).bad++
		return false
	}
	return true
}

// confirm makes e REACHABLE at mac and releases its queue.
func (n *Neighbors) confirm(now clock.Instant, e *neighEntry, mac wire.MAC) {
	n.unpend(e)
	e.state = stateReachable
	e.mac = mac
	e.probes = 0
	e.reqPending = false // a request still waiting in reqs is no longer needed
	n.arm(e, now.Add(n.reachable(e.key)))
	n.release(e)
}

// stale puts e in STALE at mac (RFC 4861 §7.2.3, §7.2.5, §6.3.4) and
// releases its queue: the address is known but not confirmed.
func (n *Neighbors) stale(now clock.Instant, e *neighEntry, mac wire.MAC) {
	n.unpend(e)
	e.state = stateStale
	e.mac = mac
	e.probes = 0
	e.reqPending = false
	e.refresh = now
	e.idle = max(e.idle, now)
	n.arm(e, e.idle.Add(n.cfg.StaleTime))
	n.release(e)
}

// LearnNDP records ip→mac on nic from the source link-layer address
// option of a neighbour solicitation or a router advertisement (RFC 4861
// §7.2.3, §6.3.4): an entry is made if there is none, STALE; an entry
// whose address differs takes the new one and goes STALE (an INCOMPLETE
// one sends its queue); one with the same address is left as it is.
// router sets the entry's IsRouter flag (a router advertisement's
// sender); false leaves it. PERMANENT entries are left alone; unusable
// addresses are refused (NDPBad).
func (n *Neighbors) LearnNDP(now clock.Instant, nic NICID, ip netip.Addr, mac wire.MAC, router bool) {
	if !n.usable(ip, mac) {
		return
	}
	k := neighKey{nic, ip}
	e := n.m[k]
	if e == nil {
		if e = n.create(now, k, false); e == nil {
			return
		}
		e.router = router
		n.stale(now, e, mac)
		return
	}
	if router {
		e.router = true
	}
	if e.state == statePermanent || e.state != stateIncomplete && e.state != stateFailed && e.mac == mac {
		return
	}
	n.stale(now, e, mac)
}

// Advert is what a neighbour advertisement says about its target (RFC
// 4861 §4.4), as LearnAdvert takes it.
type Advert struct {
	// MAC is the target link-layer address option; HasMAC says whether
	// the advertisement carried one.
	MAC    wire.MAC
	HasMAC bool
	// The R, S and O flags.
	Router, Solicited, Override bool
}

// LearnAdvert applies a neighbour advertisement for ip on nic (RFC 4861
// §7.2.5) and reports whether the entry had its IsRouter flag set before
// (so that the stack can drop the neighbour from its default router list
// when a router turns host, §7.2.5's last paragraph). An advertisement
// for no entry is ignored (NDPUnsolicitedIgnored). For an INCOMPLETE entry
// it must carry the address: the entry goes REACHABLE if solicited, else
// STALE, and sends its queue. For any other entry, an advertisement
// without Override whose address differs from the cached one only turns
// a REACHABLE entry STALE; otherwise a new address is recorded, and the
// entry goes REACHABLE if solicited, STALE if the address changed, or
// stays as it is. PERMANENT entries keep their address.
func (n *Neighbors) LearnAdvert(now clock.Instant, nic NICID, ip netip.Addr, a Advert) (wasRouter bool) {
	if a.HasMAC && !n.usable(ip, a.MAC) {
		return false
	}
	e := n.m[neighKey{nic, ip}]
	if e == nil {
		n.stats.NDPUnsolicitedIgnored++
		return false
	}
	wasRouter = e.router
	if e.state == statePermanent {
		e.router = a.Router
		return wasRouter
	}
	if e.state == stateIncomplete || e.state == stateFailed {
		if !a.HasMAC {
			return wasRouter
		}
		e.router = a.Router
		if a.Solicited {
			n.confirm(now, e, a.MAC)
		} else {
			n.stale(now, e, a.MAC)
		}
		return wasRouter
	}
	changed := a.HasMAC && a.MAC != e.mac
	if !a.Override && changed {
		if e.state == stateReachable {
			n.stale(now, e, e.mac)
		}
		return wasRouter
	}
	e.router = a.Router
	switch {
	case a.Solicited:
		mac := e.mac
		if changed {
			mac = a.MAC
		}
		n.confirm(now, e, mac)
	case changed:
		n.stale(now, e, a.MAC)
	}
	return wasRouter
}

// Confirm is an upper layer's reachability confirmation (RFC 4861
// §7.3.1: TCP saw its data acknowledged): an entry in REACHABLE, STALE,
// DELAY or PROBE becomes REACHABLE for another reachable time. Others
// are left alone.
func (n *Neighbors) Confirm(now clock.Instant, nic NICID, ip netip.Addr) {
	e := n.m[neighKey{nic, ip}]
	if e == nil {
		return
	}
	switch e.state {
	case stateReachable, stateStale, stateDelay, stateProbe:
		n.confirm(now, e, e.mac)
	}
}

// IsRouter reports whether the entry for ip on nic has its IsRouter flag
// set (RFC 4861 §5.1).
func (n *Neighbors) IsRouter(nic NICID, ip netip.Addr) bool {
	e := n.m[neighKey{nic, ip}]
	return e != nil && e.router
}

// Add records a permanent (static) entry ip→mac on nic, as `ip neigh add
// ... nud permanent` does. It replaces any dynamic entry, releasing that
// entry's queued packets to PollReady. Permanent entries do not count
// against MaxEntries. An invalid ip is ignored.
func (n *Neighbors) Add(nic NICID, ip netip.Addr, mac wire.MAC) {
	if !ip.IsValid() {
		return
	}
	k := neighKey{nic, ip}
	e := n.m[k]
	if e == nil {
		e = n.create(0, k, true)
	}
	n.unpend(e)
	e.state = statePermanent
	e.mac = mac
	e.probes = 0
	e.reqPending = false
	e.deadline = clock.Never
	n.release(e)
}

// Remove deletes the entry for ip on nic, whatever its state (`ip neigh
// del`), dropping its queued packets (ARPQueueDrops), and reports whether
// there was one.
func (n *Neighbors) Remove(nic NICID, ip netip.Addr) bool {
	e := n.m[neighKey{nic, ip}]
	if e == nil {
		return false
	}
	n.remove(e)
	return true
}

// RemoveNIC deletes every entry of nic, permanent ones included, drops
// their queued packets and those waiting in PollReady (ARPQueueDrops), and
// forgets pending requests and failures for it.
func (n *Neighbors) RemoveNIC(nic NICID) {
	for i := 0; i < len(n.ents); {
		if e := n.ents[i]; e.key.nic == nic {
			n.remove(e) // moves the last entry to i
			continue
		}
		i++
	}
	n.ready.filter(func(r readyPkt) bool {
		if r.nic != nic {
			return true
		}
		if r.v6 {
			n.stats.NDPQueueDrops++
		} else {
			n.stats.ARPQueueDrops++
		}
		n.pool.put(r.buf)
		return false
	})
	n.failed.filter(func(k neighKey) bool { return k.nic != nic })
	n.reqs.filter(func(k neighKey) bool { return k.nic != nic })
}

// PollRequest returns the next solicitation to send, as PollSolicit,
// without saying whether it is unicast: the form of the ARP-only cache.
func (n *Neighbors) PollRequest() (nic NICID, ip netip.Addr, ok bool) {
	s, ok := n.PollSolicit()
	return s.NIC, s.IP, ok
}

// HasOutput reports whether PollReady or PollSolicit may have something
// (a request queued and cancelled since counts too: a poll then finds
// nothing). A cache shared by several cores is read under its lock and
// the answer published, so that a poller can skip the lock when there is
// nothing (stack.Shared).
func (n *Neighbors) HasOutput() bool { return n.ready.len() > 0 || n.reqs.len() > 0 }

// PollSolicit returns the next solicitation to send: an ARP request
// (who-has IP, on NIC; counted in ARPOutRequests) or a neighbour
// solicitation for an IPv6 address, multicast, or unicast to MAC for an
// entry in PROBE.
func (n *Neighbors) PollSolicit() (Solicit, bool) {
	for {
		k, ok := n.reqs.pop()
		if !ok {
			return Solicit{}, false
		}
		if e := n.m[k]; e != nil && e.reqPending {
			e.reqPending = false
			if c := n.ctr(k.ip).outRequests; c != nil {
				*c++
			}
			s := Solicit{NIC: k.nic, IP: k.ip}
			if e.state == stateProbe {
				s.MAC, s.Unicast = e.mac, true
			}
			return s, true
		}
	}
}

// PollReady returns the next queued packet whose neighbour has resolved,
// with the MAC to send it to. Packets come out in the order they were
// queued, per neighbour, and neighbours in the order they resolved. pkt is
// valid until the next PollReady call.
func (n *Neighbors) PollReady() (nic NICID, mac wire.MAC, pkt []byte, ok bool) {
	if n.lastReady != nil {
		n.pool.put(n.lastReady)
		n.lastReady = nil
	}
	r, ok := n.ready.pop()
	if !ok {
		return 0, wire.MAC{}, nil, false
	}
	n.lastReady = r.buf
	return r.nic, r.mac, r.buf, true
}

// PollFailed returns the next resolution that gave up (their queued
// packets were dropped and counted), and IPv6 entries deleted after
// unanswered probes; the stack uses this to fail connects with
// EHOSTUNREACH as Linux does.
func (n *Neighbors) PollFailed() (nic NICID, ip netip.Addr, ok bool) {
	k, ok := n.failed.pop()
	return k.nic, k.ip, ok
}

// NextDeadline returns when HandleTimeout must next be called, or
// clock.Never. It may be earlier than necessary (HandleTimeout then does
// nothing but find the next one), never later.
func (n *Neighbors) NextDeadline() clock.Instant { return n.next }

// HandleTimeout runs the timers due at now: request retransmissions and
// give-ups of INCOMPLETE entries, REACHABLE→STALE, DELAY→PROBE, probes
// and deletion of PROBE entries, and removal of unused STALE and of
// FAILED entries.
func (n *Neighbors) HandleTimeout(now clock.Instant) {
	if now < n.next {
		return
	}
	next := clock.Never
	for i := 0; i < len(n.ents); {
		e := n.ents[i]
		if e.deadline <= now && n.expire(now, e) {
			continue // removed: ents[i] is now another entry
		}
		next = clock.Min(next, e.deadline)
		i++
	}
	n.next = next
}

// expire runs e's timer, due at now, and reports whether e was removed.
func (n *Neighbors) expire(now clock.Instant, e *neighEntry) bool {
	switch e.state {
	case stateIncomplete:
		if e.probes < n.cfg.MaxRequests {
			e.probes++
			n.request(e)
			e.deadline = now.Add(n.retrans(e.key))
			return false
		}
		// RFC 1122 §2.3.2.1, RFC 4861 §7.2.2: give up; the queued
		// packets are lost.
		*n.ctr(e.key.ip).resolveFailed++
		n.dropQueue(e)
		n.failed.push(e.key)
		n.unpend(e)
		e.state = stateFailed
		e.reqPending = false
		e.idle = now
		e.deadline = now.Add(n.retrans(e.key))
		return false
	case stateReachable:
		e.state = stateStale
		e.refresh = now
		e.idle = max(e.idle, now)
		e.deadline = e.idle.Add(n.cfg.StaleTime)
		return false
	case stateDelay:
		// RFC 4861 §7.3.3: no confirmation within DELAY_FIRST_PROBE_TIME.
		e.state = stateProbe
		e.probes = 1
		n.request(e)
		e.deadline = now.Add(n.retrans(e.key))
		return false
	case stateProbe:
		if e.probes < n.cfg.UnicastProbes {
			e.probes++
			n.request(e)
			e.deadline = now.Add(n.retrans(e.key))
			return false
		}
		// RFC 4861 §7.3.3: the probes went unanswered; the entry
		// "SHOULD be deleted".
		*n.ctr(e.key.ip).resolveFailed++
		n.failed.push(e.key)
	case stateStale:
		if end := e.idle.Add(n.cfg.StaleTime); end > now {
			e.deadline = end // used since: not idle long enough
			return false
		}
	case statePermanent:
		e.deadline = clock.Never
		return false
	}
	n.remove(e) // unused STALE, FAILED after its hold time, unanswered PROBE
	return true
}

// NeighborEntry is one entry of the cache, as Entries reports it.
type NeighborEntry struct {
	NIC   NICID
	IP    netip.Addr
	MAC   wire.MAC // zero while INCOMPLETE or FAILED
	State string   // "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT" as `ip neigh` prints
	// Router is the IsRouter flag of an IPv6 entry (`ip neigh`'s
	// "router").
	Router bool
	// Queued is the number of packets waiting for resolution.
	Queued int
}

// Entries returns a snapshot of the cache sorted by NIC and address, for
// `ip neigh`-like listings and tests.
func (n *Neighbors) Entries() []NeighborEntry {
	out := make([]NeighborEntry, 0, len(n.ents))
	for _, e := range n.ents {
		ne := NeighborEntry{NIC: e.key.nic, IP: e.key.ip, State: e.state.String(), Router: e.router, Queued: len(e.queue)}
		if e.state != stateIncomplete && e.state != stateFailed {
			ne.MAC = e.mac
		}
		out = append(out, ne)
	}
	slices.SortFunc(out, func(a, b NeighborEntry) int {
		if c := cmp.Compare(a.NIC, b.NIC); c != 0 {
			return c
		}
		return a.IP.Compare(b.IP)
	})
	return out
}

// Len returns the number of entries.
func (n *Neighbors) Len() int { return len(n.ents) }

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// create adds an entry for k, evicting if the table is full (unless force,
// for static entries). It returns nil, counting ARPTableFull
// (NDPTableFull), if the table is full of entries that cannot be evicted.
func (n *Neighbors) create(now clock.Instant, k neighKey, force bool) *neighEntry {
	if !force && n.dynamicLen() >= n.cfg.MaxEntries {
		// Evict the stale or failed entry idle longest (Linux
		// neigh_forced_gc); ties go to the earliest in ents.
		var victim *neighEntry
		for _, e := range n.ents {
			if (e.state == stateStale || e.state == stateFailed) && (victim == nil || e.idle < victim.idle) {
				victim = e
			}
		}
		if victim == nil {
			*n.ctr(k.ip).tableFull++
			return nil
		}
		n.remove(victim)
	}
	var e *neighEntry
	if l := len(n.free); l > 0 {
		e = n.free[l-1]
		n.free[l-1] = nil
		n.free = n.free[:l-1]
	} else {
		e = new(neighEntry)
	}
	q := e.queue[:0]
	*e = neighEntry{key: k, idx: len(n.ents), idle: now, deadline: clock.Never, queue: q}
	n.ents = append(n.ents, e)
	n.m[k] = e
	return e
}

// dynamicLen returns the number of entries that count against MaxEntries.
func (n *Neighbors) dynamicLen() int {
	c := 0
	if len(n.ents) < n.cfg.MaxEntries {
		return len(n.ents) // fast path: cannot be full
	}
	for _, e := range n.ents {
		if e.state != statePermanent {
			c++
		}
	}
	return c
}

// remove deletes e, dropping its queue, and recycles it.
func (n *Neighbors) remove(e *neighEntry) {
	n.unpend(e)
	n.dropQueue(e)
	last := n.ents[len(n.ents)-1]
	n.ents[e.idx] = last
	last.idx = e.idx
	n.ents[len(n.ents)-1] = nil
	n.ents = n.ents[:len(n.ents)-1]
	delete(n.m, e.key)
	e.reqPending = false
	n.free = append(n.free, e)
}

// arm sets e's deadline to t and lowers the cache's next deadline to it.
func (n *Neighbors) arm(e *neighEntry, t clock.Instant) {
	e.deadline = t
	n.next = clock.Min(n.next, t)
}

// request schedules one solicitation for e, unless one is already
// waiting.
func (n *Neighbors) request(e *neighEntry) {
	if !e.reqPending {
		e.reqPending = true
		n.reqs.push(e.key)
	}
}

// enqueue appends a copy of pkt to e's queue, first dropping the oldest
// packets that would exceed QueueLen or QueueBytes (Linux
// __neigh_event_send: unres_qlen_bytes, counted as unresolved_discards).
func (n *Neighbors) enqueue(e *neighEntry, pkt []byte) {
	c := n.ctr(e.key.ip)
	old := len(e.queue)
	drop := 0
	if old > 0 && n.extra >= n.cfg.MaxQueued {
		// The stack's queues are at MaxQueued: e's grows no longer.
		e.qbytes -= len(e.queue[0])
		n.pool.put(e.queue[0])
		*c.queueDrops++
		*c.queueFull++
		drop++
	}
	for len(e.queue)-drop > 0 && (len(e.queue)-drop >= n.cfg.QueueLen || e.qbytes+len(pkt) > n.cfg.QueueBytes) {
		e.qbytes -= len(e.queue[drop])
		n.pool.put(e.queue[drop])
		*c.queueDrops++
		drop++
	}
	if drop > 0 {
		m := copy(e.queue, e.queue[drop:])
		clear(e.queue[m:])
		e.queue = e.queue[:m]
	}
	b := n.pool.get(len(pkt))
	copy(b, pkt)
	e.queue = append(e.queue, b)
	e.qbytes += len(pkt)
	n.extra += extraOf(len(e.queue)) - extraOf(old)
}

// extraOf is how many of a queue of k packets count against MaxQueued.
func extraOf(k int) int { return max(k-1, 0) }

// pendPush appends e, which just became INCOMPLETE, to the pending list.
func (n *Neighbors) pendPush(e *neighEntry) {
	e.pending = true
	e.pprev, e.pnext = n.pendTail, nil
	if n.pendTail != nil {
		n.pendTail.pnext = e
	} else {
		n.pendHead = e
	}
	n.pendTail = e
	n.npending++
}

// unpend takes e off the pending list, if it is on it.
func (n *Neighbors) unpend(e *neighEntry) {
	if !e.pending {
		return
	}
	if e.pprev != nil {
		e.pprev.pnext = e.pnext
	} else {
		n.pendHead = e.pnext
	}
	if e.pnext != nil {
		e.pnext.pprev = e.pprev
	} else {
		n.pendTail = e.pprev
	}
	e.pending, e.pprev, e.pnext = false, nil, nil
	n.npending--
}

// release moves e's queued packets to the ready queue with e's MAC.
func (n *Neighbors) release(e *neighEntry) {
	n.extra -= extraOf(len(e.queue))
	v6 := e.key.ip.Is6()
	for i, b := range e.queue {
		n.ready.push(readyPkt{nic: e.key.nic, mac: e.mac, buf: b, v6: v6})
		e.queue[i] = nil
	}
	e.queue = e.queue[:0]
	e.qbytes = 0
}

// dropQueue drops e's queued packets, counting them in ARPQueueDrops
// (NDPQueueDrops).
func (n *Neighbors) dropQueue(e *neighEntry) {
	n.extra -= extraOf(len(e.queue))
	for i, b := range e.queue {
		n.pool.put(b)
		e.queue[i] = nil
	}
	*n.ctr(e.key.ip).queueDrops += uint64(len(e.queue))
	e.queue = e.queue[:0]
	e.qbytes = 0
}
