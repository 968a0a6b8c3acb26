package network

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/wire"
)

// fuzzOpLen is the size of one operation in FuzzReassembler's input, and
// fuzzMaxOps the most operations it runs.
const (
	fuzzOpLen  = 6
	fuzzMaxOps = 1000
)

// fuzzOp is one operation of FuzzReassembler, as encoded in its input:
//
//	byte 0: bits 7-6 = 3: advance time by byte 1 × 10 ms and run timers;
//	        else bits 1-0 datagram (ID), bit 2 MF, bits 5-3 option words
//	bytes 1-2: fragment offset (13 bits, in 8-byte units)
//	byte 3, byte 4 bits 2-0: payload length (byte3×8 + bits)
//	byte 5: below 16, the payload differs from the datagram's canonical
//	        bytes (an overlap with different content)
type fuzzOp struct {
	tick       bool
	advance    byte
	id         byte
	mf         bool
	optWords   byte
	off8       uint16
	len8, lenR byte
	fill       byte
}

func (o fuzzOp) encode() []byte {
	if o.tick {
		return []byte{0xc0, o.advance, 0, 0, 0, 0}
	}
	b := make([]byte, fuzzOpLen)
	b[0] = o.id&3 | o.optWords&7<<3
	if o.mf {
		b[0] |= 4
	}
	binary.BigEndian.PutUint16(b[1:], o.off8)
	b[3], b[4], b[5] = o.len8, o.lenR&7, o.fill
	return b
}

// canonical is the content of byte x of datagram id's payload.
func canonical(id byte, x int) byte { return byte(x*7+x>>8) ^ id*0x55 }

// fuzzFragment builds the fragment op describes.
func fuzzFragment(op []byte, buf []byte) []byte {
	id := op[0] & 3
	off := int(binary.BigEndian.Uint16(op[1:])&0x1fff) * 8
	n := int(op[3])*8 + int(op[4]&7)
	opts := make([]byte, int(op[0]>>3&7)*4)
	for i := range opts {
		opts[i] = 1 // NOP
	}
	f := wire.IPv4Fields{ID: 1000 + uint16(id), MF: op[0]&4 != 0, FragOffset: uint16(off), TTL: 9,
		Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB, Options: opts}
	hl := f.HeaderLen()
	f.TotalLen = uint16(hl + n)
	pkt := buf[:hl+n]
	f.Encode(pkt)
	for i := range n {
		pkt[hl+i] = canonical(id, off+i)
		if op[5] < 16 {
			pkt[hl+i] ^= op[5] | 1
		}
	}
	return pkt
}

// FuzzReassembler feeds arbitrary fragment sequences (and timer ticks) to a
// Reassembler with a small memory cap. It must not panic; the RFC 815
// bookkeeping and memory accounting must hold after every call (Bytes never
// above MaxBytes); every packet it returns must parse, have a valid header
// checksum, not be a fragment, and, for a datagram that was only ever sent
// its canonical bytes, carry them; every quote must start with an IPv4
// header.
func FuzzReassembler(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(fuzzReassembler)
}

func fuzzReassembler(t *testing.T, data []byte) { runFuzzOps(t, data) }

// runFuzzOps runs FuzzReassembler's operations and checks, and returns the
// counters, the number of datagrams reassembled and of quotes.
func runFuzzOps(t *testing.T, data []byte) (st Stats, done, quotes int) {
	// Bound the work per input: the mutator grows inputs to a megabyte,
	// and minimizing one that takes a second per run stalls the fuzzer.
	if len(data) > fuzzMaxOps*fuzzOpLen {
		data = data[:fuzzMaxOps*fuzzOpLen]
	}
	{
		r := NewReassembler(ReassemblyConfig{MaxBytes: 24 << 10, Timeout: time.Second}, &st)
		now := clock.Instant(0)
		var tainted [4]bool // a datagram was sent non-canonical bytes
		buf := make([]byte, 2*65536)
		for ; len(data) >= fuzzOpLen; data = data[fuzzOpLen:] {
			op := data[:fuzzOpLen]
			if op[0]&0xc0 == 0xc0 {
				now = now.Add(time.Duration(op[1]) * 10 * time.Millisecond)
				if now >= r.NextDeadline() {
					r.HandleTimeout(now)
				}
				for {
					q, ok := r.PollExpired()
					if !ok {
						break
					}
					if len(q) < wire.IPv4HeaderLen || q[0]>>4 != 4 || int(q[0]&0xf)*4+8 != len(q) {
						t.Fatalf("bad quote %x", q)
					}
					quotes++
				}
				checkHoles(t, r)
				continue
			}
			frag := fuzzFragment(op, buf)
			id := op[0] & 3
			if op[5] < 16 {
				tainted[id] = true
			}
			p, err := wire.ParseIPv4(frag)
			if err != nil {
				t.Fatalf("fuzzFragment built a bad packet: %v", err)
			}
			pkt, ok := r.Add(now, p)
			checkHoles(t, r)
			if !ok {
				continue
			}
			done++
			out, err := wire.ParseIPv4(pkt)
			if err != nil || !out.ChecksumValid() || out.IsFragment() || int(out.TotalLen()) != len(pkt) {
				t.Fatalf("bad reassembled packet: %v, checksum %v", err, err == nil && out.ChecksumValid())
			}
			if out.ID() != 1000+uint16(id) {
				t.Fatalf("reassembled ID %d after adding a fragment of %d", out.ID(), 1000+uint16(id))
			}
			if !tainted[id] {
				for i, b := range out.Payload() {
					if b != canonical(id, i) {
						t.Fatalf("payload byte %d = %#x, want %#x", i, b, canonical(id, i))
					}
				}
			}
		}
		if r.Bytes() > 24<<10 {
			t.Fatalf("Bytes = %d", r.Bytes())
		}
		r.HandleTimeout(now.Add(time.Second))
		if r.Bytes() != 0 || r.Pending() != 0 {
			t.Fatalf("after every timeout: Bytes %d, Pending %d", r.Bytes(), r.Pending())
		}
	}
	return st, done, quotes
}

// TestFuzzSeedsDoWhatTheySay checks that the seeds reach the paths their
// comments name, so the fuzzer starts from them.
func TestFuzzSeedsDoWhatTheySay(t *testing.T) {
	seeds := fuzzSeeds()
	for i, c := range []func(st Stats, done, quotes int) bool{
		func(st Stats, done, _ int) bool { return done == 1 && st.ReasmOKs == 1 },
		func(st Stats, done, _ int) bool { return done == 1 },
		func(st Stats, done, _ int) bool { return done == 1 && st.ReasmOverlaps == 0 },
		func(st Stats, done, _ int) bool { return done == 0 && st.ReasmOverlaps == 1 },
		func(st Stats, _, quotes int) bool { return quotes == 1 && st.ReasmTimeout == 1 },
		func(st Stats, _, _ int) bool { return st.ReasmFails > st.ReasmTimeout && st.ReasmReqds == 12 },
		func(st Stats, _, _ int) bool { return st.ReasmFails == 2 && st.ReasmTimeout == 0 },
		func(st Stats, _, _ int) bool { return st.InHdrErrors == 2 },
	} {
		st, done, quotes := runFuzzOps(t, seeds[i])
		if !c(st, done, quotes) {
			t.Errorf("seed %d: done %d quotes %d stats %+v", i, done, quotes, st)
		}
	}
}

// fuzzSeeds are the starting points of FuzzReassembler (also committed
// under testdata/fuzz/FuzzReassembler).
func fuzzSeeds() [][]byte {
	cat := func(ops ...fuzzOp) []byte {
		var b []byte
		for _, o := range ops {
			b = append(b, o.encode()...)
		}
		return b
	}
	const canon = 0xff
	return [][]byte{
		// Three fragments in order, then reversed, with options.
		cat(fuzzOp{id: 0, mf: true, optWords: 2, off8: 0, len8: 10, fill: canon},
			fuzzOp{id: 0, mf: true, off8: 10, len8: 10, fill: canon},
			fuzzOp{id: 0, off8: 20, len8: 3, lenR: 5, fill: canon}),
		cat(fuzzOp{id: 1, off8: 20, len8: 3, lenR: 5, fill: canon},
			fuzzOp{id: 1, mf: true, off8: 10, len8: 10, fill: canon},
			fuzzOp{id: 1, mf: true, off8: 0, len8: 10, fill: canon}),
		// Duplicates and an equal overlap.
		cat(fuzzOp{id: 2, mf: true, off8: 0, len8: 4, fill: canon},
			fuzzOp{id: 2, mf: true, off8: 0, len8: 4, fill: canon},
			fuzzOp{id: 2, mf: true, off8: 2, len8: 6, fill: canon},
			fuzzOp{id: 2, off8: 8, len8: 1, fill: canon}),
		// An overlap with different bytes, then the rest.
		cat(fuzzOp{id: 3, mf: true, off8: 0, len8: 4, fill: canon},
			fuzzOp{id: 3, mf: true, off8: 2, len8: 4, fill: 3},
			fuzzOp{id: 3, off8: 6, len8: 1, fill: canon}),
		// First fragment, then time runs out: a quote.
		cat(fuzzOp{id: 0, mf: true, optWords: 10, off8: 0, len8: 1, fill: canon},
			fuzzOp{tick: true, advance: 50},
			fuzzOp{tick: true, advance: 60}),
		// Memory pressure: large fragments of all four datagrams.
		func() []byte {
			var b []byte
			for i := range 12 {
				b = append(b, fuzzOp{id: byte(i), mf: true, off8: uint16(i/4) * 255, len8: 255, fill: canon}.encode()...)
			}
			return b
		}(),
		// Oversize: a fragment at the highest offset.
		cat(fuzzOp{id: 1, mf: true, off8: 0x1fff, len8: 2, fill: canon},
			fuzzOp{id: 1, off8: 8100, len8: 100, fill: canon}),
		// Bad lengths: MF with 5 bytes; an empty fragment.
		cat(fuzzOp{id: 2, mf: true, off8: 0, len8: 0, lenR: 5, fill: canon},
			fuzzOp{id: 2, mf: true, off8: 1, len8: 0, fill: canon}),
	}
}

// FuzzFragmenter splits arbitrary packets at arbitrary MTUs: every fragment
// must fit the MTU, parse, have a valid checksum and an offset that is a
// multiple of 8, and the fragments must reassemble to the packet.
func FuzzFragmenter(f *testing.F) {
	f.Add(uint16(3000), uint16(1500), uint8(2), uint8(0x83), false)
	f.Add(uint16(65515), uint16(68), uint8(10), uint8(0x07), false)
	f.Add(uint16(100), uint16(576), uint8(0), uint8(0), true)
	f.Fuzz(func(t *testing.T, n, mtu uint16, optWords, optType uint8, df bool) {
		optWords %= 11
		payload := make([]byte, min(int(n), 65535-60))
		for i := range payload {
			payload[i] = byte(i * 13)
		}
		opts := make([]byte, int(optWords)*4)
		if len(opts) >= 4 {
			opts[0], opts[1] = optType|2, 4 // one option, maybe copied
		}
		fl := wire.IPv4Fields{ID: 42, DF: df, TTL: 64, Protocol: wire.ProtoUDP, Src: srcA, Dst: dstB, Options: opts}
		pkt := buildIPv4(fl, payload)
		var fr Fragmenter
		err := fr.Reset(pkt, int(mtu))
		switch {
		case mtu < MinMTU:
			if err != ErrMTUTooSmall {
				t.Fatalf("mtu %d: err %v", mtu, err)
			}
			return
		case df && len(pkt) > int(mtu):
			if err != ErrDontFragment {
				t.Fatalf("DF: err %v", err)
			}
			return
		case err != nil:
			t.Fatalf("Reset: %v", err)
		}
		r := NewReassembler(ReassemblyConfig{}, nil)
		dst := make([]byte, mtu)
		count := 0
		var got []byte
		for {
			k := fr.Next(dst)
			if k == 0 {
				break
			}
			count++
			p, err := wire.ParseIPv4(dst[:k])
			if err != nil || !p.ChecksumValid() || k > int(mtu) || int(p.TotalLen()) != k {
				t.Fatalf("fragment %d: %v, len %d, mtu %d", count, err, k, mtu)
			}
			if !p.IsFragment() {
				got = append([]byte(nil), dst[:k]...)
				continue
			}
			if p.MF() && len(p.Payload())%8 != 0 {
				t.Fatalf("fragment %d: non-final payload of %d bytes", count, len(p.Payload()))
			}
			if out, ok := r.Add(0, p); ok {
				got = append([]byte(nil), out...)
			}
		}
		if count != fr.NumFragments() {
			t.Fatalf("%d fragments, NumFragments said %d", count, fr.NumFragments())
		}
		if string(got) != string(pkt) {
			t.Fatalf("fragments of %d bytes at mtu %d did not reassemble to the packet", len(pkt), mtu)
		}
	})
}
