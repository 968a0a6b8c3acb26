package stack

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// flowTable is the flow table: a stack's TCP connections by 4-tuple
// (RFC 9293 §3.10.7's demultiplexing; docs/ARCHITECTURE.md, "Memory per
// connection").
//
// A map of 4-tuples (map[tuple]*TCPConn, a 64-byte key) cost about 130 B
// per connection with Go's load factor and doubling. Each TCPConn holds
// its 4-tuple already (connAddrs), so the table keeps only a pointer
// under a keyed 64-bit hash of it: byHash, 16 B a slot, about 30 B per
// connection averaged over a doubling (22-39 B; TestFlowTableMemory).
// Lookups compare the connection's own 4-tuple, so nothing depends on
// the hash being free of collisions: a connection whose hash another
// holds in byHash goes to coll, a map keyed by the full 4-tuple (nil
// while empty; with a 64-bit hash it holds something about once in 2^25
// tables of a million connections). Even a hash made constant (the
// tests' mask) leaves every operation O(1), coll being a Go map with its
// own seeded hash.
//
// The hash (hash) is wyhash's mixing under a key drawn at random for
// each table (math/rand/v2's runtime-seeded source): a peer cannot
// choose 4-tuples that collide, even knowing Config.Seed, and would
// gain only coll's cost if it could. The key shows only in which map a
// connection sits, never in what the stack does: nothing iterates the
// table in its order without sorting (sortedConns), so a seed still
// replays exactly (DESIGN.md).
//
// Growth is Go's map's: its tables split one at a time (at most 1,024
// slots), so an insert at a million connections never rehashes them all.
//
// Invariant: a 4-tuple is at most once in byHash and coll together, and
// only under its own hash in byHash.
type flowTable struct {
	key    [6]uint64
	byHash map[uint64]*TCPConn
	coll   map[connAddrs]*TCPConn
	// mask is ANDed with every hash: all ones but in tests, where 0
	// makes every connection but one collide, 1 all but two.
	mask uint64
}

func newFlowTable() flowTable {
	t := flowTable{byHash: map[uint64]*TCPConn{}, mask: ^uint64(0)}
	for i := range t.key {
		t.key[i] = rand.Uint64()
	}
	return t
}

// flowWords is a 4-tuple as five words, to hash and compare: the
// addresses (IPv4 mapped) as big-endian words of connAddrs' bytes, and
// the ports and family.
type flowWords struct{ l0, l1, r0, r1, p uint64 }

// addrWords returns a's 16 bytes (IPv4 mapped, as As16; the zero Addr
// as zeros; a zone ignored) as two big-endian words. Not through As16:
// the [16]byte it returns is copied as one 16-byte block just after
// being stored as two words, a store-forwarding stall each time, and
// lookups are per segment; As4 and AppendBinary store and load alike.
func addrWords(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	var buf [16]byte
	b, _ := a.AppendBinary(buf[:0])
	if len(b) < 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])
}

func (a *connAddrs) words() flowWords {
	return flowWords{
		l0: binary.BigEndian.Uint64(a.l[:8]), l1: binary.BigEndian.Uint64(a.l[8:]),
		r0: binary.BigEndian.Uint64(a.r[:8]), r1: binary.BigEndian.Uint64(a.r[8:]),
		p: uint64(a.lport)<<16 | uint64(a.rport) | uint64(a.v4)<<32,
	}
}

// hash returns the keyed hash of a 4-tuple's words. It is wyhash's
// mixing (a 128-bit product folded) of word pairs under a random key,
// in three independent lanes (their products overlap), as Go's maps hash
// where the CPU has no AES.
func (t *flowTable) hash(l0, l1, r0, r1, p uint64) uint64 {
	k := &t.key
	return (mix(l0^k[0], l1^k[1]) ^ mix(r0^k[2], r1^k[3]) ^ mix(p^k[4], k[5])) & t.mask
}

func (t *flowTable) hashWords(w *flowWords) uint64 {
	return t.hash(w.l0, w.l1, w.r0, w.r1, w.p)
}

// mix folds the 128-bit product of a and b into 64 bits.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// lookup returns the connection of 4-tuple k, or nil. (The words stay
// in registers: a flowWords made and compared whole would go through
// memory.)
func (t *flowTable) lookup(k tuple) *TCPConn {
	la, ra := k.local.Addr(), k.remote.Addr()
	l0, l1 := addrWords(la)
	r0, r1 := addrWords(ra)
	p := uint64(k.local.Port())<<16 | uint64(k.remote.Port())
	if la.Is4() {
		p |= 1 << 32
	}
	if c := t.byHash[t.hash(l0, l1, r0, r1, p)]; c != nil {
		a := &c.addrs
		if binary.BigEndian.Uint64(a.l[8:]) == l1 && binary.BigEndian.Uint64(a.r[8:]) == r1 &&
			uint64(a.lport)<<16|uint64(a.rport)|uint64(a.v4)<<32 == p &&
			binary.BigEndian.Uint64(a.l[:8]) == l0 && binary.BigEndian.Uint64(a.r[:8]) == r0 {
			return c
		}
	}
	if len(t.coll) > 0 {
		var a connAddrs
		a.set(k)
		return t.coll[a]
	}
	return nil
}

// add enters c under its 4-tuple (c.addrs, set), replacing any
// connection the table had under it (a TIME-WAIT connection whose tuple
// a new one reuses), as a map assignment does.
func (t *flowTable) add(c *TCPConn) {
	w := c.addrs.words()
	h := t.hashWords(&w)
	switch cur := t.byHash[h]; {
	case cur == nil:
		// The tuple may be in coll, from when another held h.
		if len(t.coll) > 0 {
			t.dropColl(&c.addrs)
		}
		t.byHash[h] = c
	case cur.addrs == c.addrs:
		t.byHash[h] = c
	default:
		if t.coll == nil {
			t.coll = map[connAddrs]*TCPConn{}
		}
		t.coll[c.addrs] = c
	}
}

// remove takes c out of the table if it is there (and not a connection
// that replaced it under the same 4-tuple).
func (t *flowTable) remove(c *TCPConn) {
	w := c.addrs.words()
	h := t.hashWords(&w)
	if t.byHash[h] == c {
		delete(t.byHash, h)
		return
	}
	if t.coll[c.addrs] == c {
		t.dropColl(&c.addrs)
	}
}

// dropColl deletes a from coll, and coll itself once empty: a Go map
// does not shrink, and collisions are rare.
func (t *flowTable) dropColl(a *connAddrs) {
	delete(t.coll, *a)
	if len(t.coll) == 0 {
		t.coll = nil
	}
}

// len returns the number of connections in the table.
func (t *flowTable) len() int { return len(t.byHash) + len(t.coll) }

// all yields every connection once, in no particular order (sort for
// anything a run's output depends on: sortedConns). The loop body may
// remove the connection it is given, as with a map.
func (t *flowTable) all() iter.Seq[*TCPConn] {
	return func(yield func(*TCPConn) bool) {
		for _, c := range t.byHash {
			if !yield(c) {
				return
			}
		}
		for _, c := range t.coll {
			if !yield(c) {
				return
			}
		}
	}
}
