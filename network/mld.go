package network

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// MLDConfig sets the multicast listener's timers (RFC 3810 §9). Zero
// fields take the RFC's defaults, which are Linux's.
type MLDConfig struct {
	// Robustness is how many times a state change is reported (RFC 3810
	// §9.1: 2; Linux mld_qrv).
	Robustness int
	// UnsolicitedReportInterval is the largest random delay between the
	// reports of one state change (RFC 3810 §9.11: 1 s).
	UnsolicitedReportInterval time.Duration
	// QueryInterval is the querier's interval assumed for the Older
	// Version Querier Present timeout (RFC 3810 §9.2: 125 s).
	QueryInterval time.Duration
}

func (c *MLDConfig) setDefaults() {
	if c.Robustness <= 0 {
		c.Robustness = 2
	}
	if c.UnsolicitedReportInterval <= 0 {
		c.UnsolicitedReportInterval = time.Second
	}
	if c.QueryInterval <= 0 {
		c.QueryInterval = 125 * time.Second
	}
}

// mldMaxRecords bounds the records of one report, so that it fits the
// minimum IPv6 MTU with the hop-by-hop header (RFC 3810 §5.2.15): 40 +
// 8 + 8 + 56 × 20 < 1280.
const mldMaxRecords = 56

// mldGroup is one group a NIC listens to.
type mldGroup struct {
	nic   NICID
	addr  netip.Addr
	users int // joins not yet left: two addresses may share a solicited-node group
	// A state-change report (RFC 3810 §6.1) is due: change says which
	// record, changeLeft how many are still to send (retransmissions
	// included), changeAt when the next one goes.
	change     uint8
	changeLeft int
	changeAt   clock.Instant
	// reportAt is when a response to a query about this group is due
	// (a group-specific query, or any query in MLDv1 mode).
	reportAt clock.Instant
	// due marks records to go in the next report of the NIC: dueChange
	// a state-change record, dueCurrent a current-state one.
	dueChange, dueCurrent bool
}

// mldNIC is a NIC's listener state.
type mldNIC struct {
	// v1Until is when the Older Version Querier Present timer ends: until
	// then the NIC speaks MLDv1 (RFC 3810 §8.2.1).
	v1Until clock.Instant
	// generalAt is when the response to a general query is due (RFC 3810
	// §6.2's interface timer).
	generalAt clock.Instant
}

// MLDReport is a report MLDHost asks the stack to send on NIC. In MLDv2
// (V1 false) it holds Records, to send to ff02::16 (RFC 3810 §5.2.14);
// in MLDv1 compatibility it is one report (or, with Done, a done message
// to ff02::2) about Group (RFC 2710 §3).
type MLDReport struct {
	NIC     NICID
	V1      bool
	Done    bool
	Group   netip.Addr
	Records []wire.MLDv2RecordFields
}

// MLDHost is the listener side of MLDv2 (RFC 3810 §6) with MLDv1
// compatibility (§8), for all of a stack's NICs: the groups each listens
// to, the reports their joins and leaves cause, and the answers to
// queries, so that switches that snoop MLD deliver the groups' packets.
//
// Join reports a group at once as a state-change record
// (CHANGE_TO_EXCLUDE with no sources: every source) and again
// Robustness−1 times at random intervals of up to
// UnsolicitedReportInterval; Leave reports CHANGE_TO_INCLUDE with no
// sources the same way. A general query is answered, after a random
// delay up to its maximum response delay, by one report of every group
// the NIC listens to (MODE_IS_EXCLUDE, no sources); a group-specific
// query by the record of that group. Source-specific queries are
// answered as group-specific ones (the host's filter excludes no source,
// so it wants every source asked about). After an MLDv1 query the NIC
// speaks MLDv1 for the Older Version Querier Present timeout (RFC 3810
// §9.12: Robustness × QueryInterval + the query's response delay):
// one report per group, done messages on leave. The all-nodes group
// (ff02::1) and groups of interface-local scope are never reported (RFC
// 3810 §6).
//
// Random delays come from a generator seeded at construction, so a run
// replays. Nothing allocates once the groups' storage has grown.
type MLDHost struct {
	cfg    MLDConfig
	rng    *rand.Rand
	groups []*mldGroup
	nics   []mldNIC // by NIC ID
	next   clock.Instant
	recs   []wire.MLDv2RecordFields
	v1q    fifo[MLDReport] // MLDv1 reports and done messages due
}

// NewMLDHost returns a listener with no groups, its random delays drawn
// from seed.
func NewMLDHost(cfg MLDConfig, seed uint64) *MLDHost {
	cfg.setDefaults()
	return &MLDHost{cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x6d6c64)), next: clock.Never}
}

// reportable reports whether a group is ever reported: not the
// all-nodes group, not of reserved or interface-local scope (RFC 3810
// §6).
func reportable(g netip.Addr) bool {
	if g == wire.IPv6AllNodes || !g.Is6() {
		return false
	}
	scope := g.As16()[1] & 0x0f
	return scope > 1
}

func (h *MLDHost) nic(id NICID) *mldNIC {
	for int(id) >= len(h.nics) {
		h.nics = append(h.nics, mldNIC{generalAt: clock.Never})
	}
	return &h.nics[id]
}

func (h *MLDHost) find(nic NICID, g netip.Addr) *mldGroup {
	for _, x := range h.groups {
		if x.nic == nic && x.addr == g {
			return x
		}
	}
	return nil
}

// v1 reports whether nic speaks MLDv1 at now.
func (h *MLDHost) v1(now clock.Instant, nic NICID) bool { return now < h.nic(nic).v1Until }

// delay returns a random delay in [0, d).
func (h *MLDHost) delay(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(h.rng.Int64N(int64(d)))
}

// Join makes nic listen to group g (again, if it already does: joins are
// counted, and as many Leave calls end the membership) and reports it.
func (h *MLDHost) Join(now clock.Instant, nic NICID, g netip.Addr) {
	if x := h.find(nic, g); x != nil {
		x.users++
		if x.users == 1 {
			h.changed(now, x, wire.MLDChangeToExclude) // left and joined again before the leave was over
		}
		return
	}
	x := &mldGroup{nic: nic, addr: g, users: 1, changeAt: clock.Never, reportAt: clock.Never}
	h.groups = append(h.groups, x)
	h.changed(now, x, wire.MLDChangeToExclude)
}

// Leave ends one Join of group g on nic; the last reports the group
// left.
func (h *MLDHost) Leave(now clock.Instant, nic NICID, g netip.Addr) {
	x := h.find(nic, g)
	if x == nil || x.users == 0 {
		return
	}
	x.users--
	if x.users == 0 {
		x.reportAt = clock.Never
		x.dueCurrent = false
		h.changed(now, x, wire.MLDChangeToInclude)
		h.gc(x)
	}
}

// changed starts the state-change reports of x (RFC 3810 §6.1): one now,
// Robustness−1 later.
func (h *MLDHost) changed(now clock.Instant, x *mldGroup, rec uint8) {
	if !reportable(x.addr) {
		x.change, x.changeLeft, x.changeAt, x.dueChange = 0, 0, clock.Never, false
		return
	}
	x.change = rec
	x.changeLeft = h.cfg.Robustness
	x.changeAt = now
	h.arm(now)
}

// gc forgets a group left and no longer reported.
func (h *MLDHost) gc(x *mldGroup) {
	if x.users > 0 || x.changeLeft > 0 || x.dueChange {
		return
	}
	for i, y := range h.groups {
		if y == x {
			h.groups = append(h.groups[:i], h.groups[i+1:]...)
			return
		}
	}
}

// Joined reports whether nic listens to group g.
func (h *MLDHost) Joined(nic NICID, g netip.Addr) bool {
	x := h.find(nic, g)
	return x != nil && x.users > 0
}

// Groups returns the groups nic listens to, in the order they were
// joined.
func (h *MLDHost) Groups(nic NICID) []netip.Addr {
	var out []netip.Addr
	for _, x := range h.groups {
		if x.nic == nic && x.users > 0 {
			out = append(out, x.addr)
		}
	}
	return out
}

// HandleQuery takes an MLD query that arrived on nic (a view
// wire.ParseMLD accepted, of type ICMPv6MLDQuery; the stack has checked
// its checksum, hop limit, link-local source and Router Alert, RFC 3810
// §5.1.14) and schedules the answer.
func (h *MLDHost) HandleQuery(now clock.Instant, nic NICID, q wire.MLD) {
	n := h.nic(nic)
	maxResp := time.Duration(q.MaxRespDelay()) * time.Millisecond
	if !q.IsV2Query() {
		// RFC 3810 §8.2.1: an MLDv1 querier is present.
		n.v1Until = now.Add(time.Duration(h.cfg.Robustness)*h.cfg.QueryInterval + maxResp)
	}
	g := q.Multicast()
	general := g.IsUnspecified()
	v1 := h.v1(now, nic)
	if general && !v1 {
		// RFC 3810 §6.2 (1): the interface timer, unless one is due
		// sooner.
		at := now.Add(h.delay(maxResp))
		if at < n.generalAt {
			n.generalAt = at
		}
		h.arm(now)
		return
	}
	for _, x := range h.groups {
		if x.nic != nic || x.users == 0 || !reportable(x.addr) || !general && x.addr != g {
			continue
		}
		at := now.Add(h.delay(maxResp))
		if at < x.reportAt {
			x.reportAt = at
		}
	}
	h.arm(now)
}

// arm recomputes the next deadline.
func (h *MLDHost) arm(now clock.Instant) {
	next := clock.Never
	for i := range h.nics {
		next = clock.Min(next, h.nics[i].generalAt)
	}
	for _, x := range h.groups {
		if x.changeLeft > 0 {
			next = clock.Min(next, x.changeAt)
		}
		next = clock.Min(next, x.reportAt)
	}
	h.next = next
}

// NextDeadline returns when HandleTimeout must next be called, or
// clock.Never.
func (h *MLDHost) NextDeadline() clock.Instant { return h.next }

// HandleTimeout makes the reports due at now ready for PollReport.
func (h *MLDHost) HandleTimeout(now clock.Instant) {
	if now < h.next {
		return
	}
	for id := range h.nics {
		n := &h.nics[id]
		if n.generalAt <= now {
			n.generalAt = clock.Never
			for _, x := range h.groups {
				if x.nic == NICID(id) && x.users > 0 && reportable(x.addr) {
					x.dueCurrent = true
					x.reportAt = clock.Never
				}
			}
		}
	}
	for _, x := range h.groups {
		if x.changeLeft > 0 && x.changeAt <= now {
			x.changeLeft--
			x.dueChange = true
			x.changeAt = clock.Never
			if x.changeLeft > 0 {
				x.changeAt = now.Add(h.delay(h.cfg.UnsolicitedReportInterval))
			}
		}
		if x.reportAt <= now {
			x.reportAt = clock.Never
			x.dueCurrent = true
		}
	}
	h.arm(now)
}

// PollReport returns the next report to send (call HandleTimeout when
// NextDeadline has passed, and after Join, Leave or HandleQuery). In
// MLDv2 a report holds every record due on its NIC, up to what fits the
// minimum MTU; Records is valid until the next call.
func (h *MLDHost) PollReport(now clock.Instant) (MLDReport, bool) {
	if h.next <= now {
		h.HandleTimeout(now)
	}
	if r, ok := h.v1q.pop(); ok {
		return r, true
	}
	for i := 0; i < len(h.groups); i++ {
		x := h.groups[i]
		if !x.dueChange && !x.dueCurrent {
			continue
		}
		nic := x.nic
		if h.v1(now, nic) {
			// One MLDv1 message per group (RFC 2710 §4): a report for a
			// join or a query, a done message for a leave.
			for _, y := range h.groups {
				if y.nic != nic || !y.dueChange && !y.dueCurrent {
					continue
				}
				done := y.dueChange && y.change == wire.MLDChangeToInclude
				if done || y.users > 0 {
					h.v1q.push(MLDReport{NIC: nic, V1: true, Done: done, Group: y.addr})
				}
				y.dueChange, y.dueCurrent = false, false
			}
			h.collect()
			r, _ := h.v1q.pop()
			return r, true
		}
		h.recs = h.recs[:0]
		for _, y := range h.groups {
			if y.nic != nic || !y.dueChange && !y.dueCurrent {
				continue
			}
			if len(h.recs) == mldMaxRecords {
				break // the rest go in the next report
			}
			switch {
			case y.dueChange:
				h.recs = append(h.recs, wire.MLDv2RecordFields{Type: y.change, Multicast: y.addr})
			case y.users > 0:
				h.recs = append(h.recs, wire.MLDv2RecordFields{Type: wire.MLDModeIsExclude, Multicast: y.addr})
			}
			y.dueChange, y.dueCurrent = false, false
		}
		h.collect()
		if len(h.recs) == 0 {
			i = -1 // only stale flags were cleared: look again
			continue
		}
		return MLDReport{NIC: nic, Records: h.recs}, true
	}
	return MLDReport{}, false
}

// collect forgets the groups left whose reports are all sent.
func (h *MLDHost) collect() {
	for i := 0; i < len(h.groups); {
		x := h.groups[i]
		if x.users == 0 && x.changeLeft == 0 && !x.dueChange {
			h.groups = append(h.groups[:i], h.groups[i+1:]...)
			continue
		}
		i++
	}
}

// RemoveNIC forgets nic's groups and state, reporting nothing.
func (h *MLDHost) RemoveNIC(nic NICID) {
	for i := 0; i < len(h.groups); {
		if h.groups[i].nic == nic {
			h.groups = append(h.groups[:i], h.groups[i+1:]...)
			continue
		}
		i++
	}
	if int(nic) < len(h.nics) {
		h.nics[nic] = mldNIC{generalAt: clock.Never}
	}
	h.v1q.filter(func(r MLDReport) bool { return r.NIC != nic })
}
