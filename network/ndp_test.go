package network

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

var (
	ip6N1 = netip.MustParseAddr("fe80::10")
	ip6N2 = netip.MustParseAddr("2001:db8::20")
)

func solicits(n *Neighbors) []Solicit {
	var out []Solicit
	for {
		s, ok := n.PollSolicit()
		if !ok {
			return out
		}
		out = append(out, s)
	}
}

func stateOf(n *Neighbors, nic NICID, ip netip.Addr) string {
	for _, e := range n.Entries() {
		if e.NIC == nic && e.IP == ip {
			return e.State
		}
	}
	return "none"
}

// TestNUDCycle: RFC 4861 §7.3.3 — REACHABLE for the reachable time, then
// STALE; a packet moves STALE to DELAY; without confirmation DELAY goes
// to PROBE after DELAY_FIRST_PROBE_TIME, which sends MAX_UNICAST_SOLICIT
// unicast solicitations RetransTimer apart and then deletes the entry.
func TestNUDCycle(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{}, &st)
	n.Resolve(0, 1, ip6N1, []byte("p1"))
	if s := solicits(n); len(s) != 1 || s[0].Unicast || s[0].IP != ip6N1 {
		t.Fatalf("first solicitation %+v, want one multicast", s)
	}
	if st.ARPOutRequests != 0 {
		t.Fatal("a neighbour solicitation counted as an ARP request")
	}
	n.LearnAdvert(at(100*time.Millisecond), 1, ip6N1, Advert{MAC: macN1, HasMAC: true, Solicited: true, Override: true})
	if got := stateOf(n, 1, ip6N1); got != "REACHABLE" {
		t.Fatalf("after a solicited advertisement: %s", got)
	}
	if r := readies(n); len(r) != 1 || r[0].pkt != "p1" || r[0].mac != macN1 {
		t.Fatalf("queue released %+v", r)
	}
	n.HandleTimeout(at(30*time.Second + 100*time.Millisecond))
	if got := stateOf(n, 1, ip6N1); got != "STALE" {
		t.Fatalf("after the reachable time: %s", got)
	}
	now := at(40 * time.Second)
	if mac, ok := n.Resolve(now, 1, ip6N1, nil); !ok || mac != macN1 {
		t.Fatal("a STALE entry did not answer")
	}
	if got := stateOf(n, 1, ip6N1); got != "DELAY" || len(solicits(n)) != 0 {
		t.Fatalf("after use: %s, want DELAY with no solicitation yet", got)
	}
	if d := n.NextDeadline(); d != now.Add(5*time.Second) {
		t.Fatalf("DELAY ends at %v, want 5 s later", d)
	}
	n.HandleTimeout(now.Add(5 * time.Second))
	if got := stateOf(n, 1, ip6N1); got != "PROBE" {
		t.Fatalf("after DELAY: %s", got)
	}
	var probes []Solicit
	for i := range 4 {
		probes = append(probes, solicits(n)...)
		n.HandleTimeout(now.Add(5*time.Second + time.Duration(i+1)*time.Second))
	}
	if len(probes) != 3 {
		t.Fatalf("%d probes, want 3", len(probes))
	}
	for _, p := range probes {
		if !p.Unicast || p.MAC != macN1 {
			t.Fatalf("probe %+v not unicast to the cached address", p)
		}
	}
	if got := stateOf(n, 1, ip6N1); got != "none" {
		t.Fatalf("after unanswered probes: %s, want deleted", got)
	}
	if nic, ip, ok := n.PollFailed(); !ok || nic != 1 || ip != ip6N1 || st.NDPResolveFailed != 1 {
		t.Fatalf("failure not reported: %v %v %v %+v", nic, ip, ok, st.NDPResolveFailed)
	}
	// The next packet starts over with multicast solicitations.
	n.Resolve(now.Add(10*time.Second), 1, ip6N1, nil)
	if s := solicits(n); len(s) != 1 || s[0].Unicast {
		t.Fatalf("after deletion %+v, want a multicast solicitation", s)
	}
}

// TestNUDConfirm: RFC 4861 §7.3.1 — a confirmation from an upper layer
// (or a solicited advertisement) in DELAY or PROBE makes the entry
// REACHABLE without more probes.
func TestNUDConfirm(t *testing.T) {
	n := NewNeighbors(NeighborConfig{}, nil)
	n.LearnNDP(0, 1, ip6N1, macN1, false)
	if got := stateOf(n, 1, ip6N1); got != "STALE" {
		t.Fatalf("learned from a solicitation: %s, want STALE", got)
	}
	n.Resolve(at(time.Second), 1, ip6N1, nil)
	n.Confirm(at(2*time.Second), 1, ip6N1)
	if got := stateOf(n, 1, ip6N1); got != "REACHABLE" {
		t.Fatalf("after Confirm in DELAY: %s", got)
	}
	n.HandleTimeout(at(10 * time.Second))
	if len(solicits(n)) != 0 {
		t.Fatal("a confirmed entry probed")
	}
	// PROBE, then a solicited advertisement with the same address.
	n.HandleTimeout(at(33 * time.Second))
	n.Resolve(at(34*time.Second), 1, ip6N1, nil)
	n.HandleTimeout(at(39 * time.Second))
	if got := stateOf(n, 1, ip6N1); got != "PROBE" {
		t.Fatalf("%s, want PROBE", got)
	}
	n.LearnAdvert(at(39*time.Second+time.Millisecond), 1, ip6N1, Advert{Solicited: true})
	if got := stateOf(n, 1, ip6N1); got != "REACHABLE" {
		t.Fatalf("after a solicited advertisement without an address: %s", got)
	}
}

// TestNDPLearnRules: RFC 4861 §7.2.3 and §7.2.5's table.
func TestNDPLearnRules(t *testing.T) {
	var st Stats
	n := NewNeighbors(NeighborConfig{}, &st)
	// An advertisement for no entry is ignored.
	n.LearnAdvert(0, 1, ip6N1, Advert{MAC: macN1, HasMAC: true, Override: true})
	if n.Len() != 0 || st.NDPUnsolicitedIgnored != 1 {
		t.Fatal("unsolicited advertisement made an entry")
	}
	// INCOMPLETE + unsolicited advertisement with the address: STALE.
	n.Resolve(0, 1, ip6N1, []byte("x"))
	n.LearnAdvert(0, 1, ip6N1, Advert{MAC: macN1, HasMAC: true})
	if got := stateOf(n, 1, ip6N1); got != "STALE" || len(readies(n)) != 1 {
		t.Fatalf("INCOMPLETE + unsolicited: %s", got)
	}
	// REACHABLE + advertisement without Override and another address:
	// STALE, address kept.
	n.LearnAdvert(0, 1, ip6N1, Advert{MAC: macN1, HasMAC: true, Solicited: true})
	n.LearnAdvert(0, 1, ip6N1, Advert{MAC: macN2, HasMAC: true, Solicited: true})
	if mac, _ := n.Lookup(1, ip6N1); mac != macN1 || stateOf(n, 1, ip6N1) != "STALE" {
		t.Fatalf("O=0 with a new address: %v %s", mac, stateOf(n, 1, ip6N1))
	}
	// Override with a new address, unsolicited: the address changes,
	// STALE.
	n.LearnAdvert(0, 1, ip6N1, Advert{MAC: macN2, HasMAC: true, Override: true})
	if mac, _ := n.Lookup(1, ip6N1); mac != macN2 || stateOf(n, 1, ip6N1) != "STALE" {
		t.Fatalf("O=1 unsolicited: %v %s", mac, stateOf(n, 1, ip6N1))
	}
	// The router flag: set by an advertisement, reported when cleared.
	n.LearnAdvert(0, 1, ip6N1, Advert{Router: true, Solicited: true})
	if !n.IsRouter(1, ip6N1) {
		t.Fatal("IsRouter not set")
	}
	if was := n.LearnAdvert(0, 1, ip6N1, Advert{Solicited: true}); !was || n.IsRouter(1, ip6N1) {
		t.Fatal("router turning host not reported")
	}
	// A solicitation's source address: an entry made STALE; the same
	// address again changes nothing.
	n.LearnNDP(0, 2, ip6N2, macN3, false)
	n.Confirm(0, 2, ip6N2)
	n.LearnNDP(0, 2, ip6N2, macN3, false)
	if got := stateOf(n, 2, ip6N2); got != "REACHABLE" {
		t.Fatalf("the same address from a solicitation changed the state: %s", got)
	}
	n.LearnNDP(0, 2, ip6N2, macN1, true)
	if got := stateOf(n, 2, ip6N2); got != "STALE" || !n.IsRouter(2, ip6N2) {
		t.Fatalf("a new address from a router advertisement: %s", got)
	}
	// Multicast link-layer addresses are refused.
	n.LearnNDP(0, 2, ip6N1, wire.MAC{0x33, 0x33, 0, 0, 0, 1}, false)
	if st.NDPBad != 1 || st.ARPBad != 0 {
		t.Fatalf("bad address counted %d/%d", st.NDPBad, st.ARPBad)
	}
}

// TestNDPTimes: RFC 4861 §6.3.4 — a router's reachable time and
// retransmission timer apply to that NIC's IPv6 entries only.
func TestNDPTimes(t *testing.T) {
	n := NewNeighbors(NeighborConfig{}, nil)
	n.SetTimes(2, 10*time.Second, 300*time.Millisecond)
	n.Resolve(0, 2, ip6N1, nil)
	if d := n.NextDeadline(); d != at(300*time.Millisecond) {
		t.Fatalf("retransmission at %v, want 300 ms", d)
	}
	n.LearnAdvert(0, 2, ip6N1, Advert{MAC: macN1, HasMAC: true, Solicited: true})
	n.HandleTimeout(at(10 * time.Second))
	if got := stateOf(n, 2, ip6N1); got != "STALE" {
		t.Fatalf("after the router's reachable time: %s", got)
	}
	n.Resolve(0, 1, ip6N2, nil) // another NIC: the defaults
	n.Resolve(0, 2, ipN1, nil)  // IPv4 on the same NIC: the defaults
	n.HandleTimeout(at(10*time.Second + 500*time.Millisecond))
	if s := solicits(n); len(s) != 2 {
		t.Fatalf("%d solicitations, want the first of each", len(s))
	}
}

func mldRecords(t *testing.T, h *MLDHost, now int64) []MLDReport {
	t.Helper()
	var out []MLDReport
	for {
		r, ok := h.PollReport(at(time.Duration(now)))
		if !ok {
			return out
		}
		r.Records = slices.Clone(r.Records)
		out = append(out, r)
	}
}

// TestMLDJoinLeave: RFC 3810 §6.1 — a join is reported at once and again
// within the unsolicited report interval (robustness 2), a leave the
// same way; ff02::1 is never reported.
func TestMLDJoinLeave(t *testing.T) {
	h := NewMLDHost(MLDConfig{}, 1)
	g := wire.SolicitedNodeMulticast(ip6N2)
	h.Join(0, 1, wire.IPv6AllNodes)
	h.Join(0, 1, g)
	r := mldRecords(t, h, 0)
	if len(r) != 1 || len(r[0].Records) != 1 || r[0].Records[0].Multicast != g || r[0].Records[0].Type != wire.MLDChangeToExclude {
		t.Fatalf("join reports %+v", r)
	}
	d := h.NextDeadline()
	if d <= 0 || d > at(time.Second) {
		t.Fatalf("retransmission at %v, want within 1 s", d)
	}
	h.HandleTimeout(d)
	if r := mldRecords(t, h, int64(d)); len(r) != 1 {
		t.Fatalf("retransmission %+v", r)
	}
	if h.NextDeadline() != clock.Never {
		t.Fatalf("more reports due at %v", h.NextDeadline())
	}
	// A second join of the same group (two addresses, one group) is not
	// reported; the first leave is not either.
	h.Join(at(2*time.Second), 1, g)
	h.Leave(at(2*time.Second), 1, g)
	if r := mldRecords(t, h, int64(2*time.Second)); len(r) != 0 {
		t.Fatalf("shared group reported %+v", r)
	}
	h.Leave(at(3*time.Second), 1, g)
	r = mldRecords(t, h, int64(3*time.Second))
	if len(r) != 1 || r[0].Records[0].Type != wire.MLDChangeToInclude {
		t.Fatalf("leave reports %+v", r)
	}
	if h.Joined(1, g) || !h.Joined(1, wire.IPv6AllNodes) {
		t.Fatal("membership wrong after leave")
	}
}

// TestMLDQueries: RFC 3810 §6.2 — a general query is answered by one
// report of every group within the maximum response delay; a
// group-specific query by that group's record; an MLDv1 query turns the
// NIC to MLDv1 (§8.2.1).
func TestMLDQueries(t *testing.T) {
	h := NewMLDHost(MLDConfig{}, 2)
	g1, g2 := wire.SolicitedNodeMulticast(ip6N1), wire.SolicitedNodeMulticast(ip6N2)
	h.Join(0, 1, wire.IPv6AllNodes)
	h.Join(0, 1, g1)
	h.Join(0, 1, g2)
	h.Join(0, 2, g1)
	for range 2 {
		h.HandleTimeout(h.NextDeadline())
		mldRecords(t, h, int64(h.NextDeadline()))
	}
	h.HandleTimeout(at(5 * time.Second))
	mldRecords(t, h, int64(5*time.Second))
	now := at(10 * time.Second)
	q := make([]byte, wire.MLDv2QueryLen)
	(&wire.MLDFields{Type: wire.ICMPv6MLDQuery, MaxRespCode: 1000, Multicast: netip.IPv6Unspecified(), V2: true}).Encode(q, ip6N1, wire.IPv6AllNodes)
	h.HandleQuery(now, 1, wire.MLD(q))
	d := h.NextDeadline()
	if d < now || d >= now.Add(time.Second) {
		t.Fatalf("response at %v, want within 1 s of %v", d, now)
	}
	h.HandleTimeout(d)
	r := mldRecords(t, h, int64(d))
	if len(r) != 1 || r[0].NIC != 1 || len(r[0].Records) != 2 {
		t.Fatalf("general query answered by %+v", r)
	}
	for _, rec := range r[0].Records {
		if rec.Type != wire.MLDModeIsExclude || rec.Multicast == wire.IPv6AllNodes {
			t.Fatalf("record %+v", rec)
		}
	}
	// Group-specific.
	now = at(20 * time.Second)
	(&wire.MLDFields{Type: wire.ICMPv6MLDQuery, MaxRespCode: 1000, Multicast: g2, V2: true}).Encode(q, ip6N1, g2)
	h.HandleQuery(now, 1, wire.MLD(q))
	h.HandleTimeout(now.Add(time.Second))
	r = mldRecords(t, h, int64(now.Add(time.Second)))
	if len(r) != 1 || len(r[0].Records) != 1 || r[0].Records[0].Multicast != g2 {
		t.Fatalf("group query answered by %+v", r)
	}
	// MLDv1.
	now = at(30 * time.Second)
	q1 := make([]byte, wire.MLDv1Len)
	(&wire.MLDFields{Type: wire.ICMPv6MLDQuery, MaxRespCode: 500, Multicast: netip.IPv6Unspecified()}).Encode(q1, ip6N1, wire.IPv6AllNodes)
	h.HandleQuery(now, 1, wire.MLD(q1))
	h.HandleTimeout(now.Add(time.Second))
	r = mldRecords(t, h, int64(now.Add(time.Second)))
	if len(r) != 2 || !r[0].V1 || !r[1].V1 {
		t.Fatalf("MLDv1 query answered by %+v", r)
	}
	// A leave in MLDv1 mode is a done message.
	h.Leave(now.Add(2*time.Second), 1, g1)
	r = mldRecords(t, h, int64(now.Add(2*time.Second)))
	if len(r) != 1 || !r[0].Done || r[0].Group != g1 {
		t.Fatalf("leave in MLDv1 mode %+v", r)
	}
	// After the Older Version Querier Present timeout, MLDv2 again.
	later := now.Add(261 * time.Second)
	h.Join(later, 1, g1)
	r = mldRecords(t, h, int64(later))
	if len(r) != 1 || r[0].V1 {
		t.Fatalf("after the v1 timeout %+v", r)
	}
}

func TestMLDAllocs(t *testing.T) {
	h := NewMLDHost(MLDConfig{}, 3)
	for i := range 8 {
		h.Join(0, 1, wire.SolicitedNodeMulticast(netip.AddrFrom16([16]byte{0x20, 1, 15: byte(i)})))
	}
	q := make([]byte, wire.MLDv2QueryLen)
	(&wire.MLDFields{Type: wire.ICMPv6MLDQuery, MaxRespCode: 1000, Multicast: netip.IPv6Unspecified(), V2: true}).Encode(q, ip6N1, wire.IPv6AllNodes)
	now := at(time.Hour)
	run := func() {
		h.HandleQuery(now, 1, wire.MLD(q))
		now = now.Add(2 * time.Second)
		h.HandleTimeout(now)
		for {
			if _, ok := h.PollReport(now); !ok {
				break
			}
		}
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Errorf("answering a query allocates %v", a)
	}
}
