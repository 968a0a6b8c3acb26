package tcptest

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/ustack/ustack/wire"
)

// Pattern returns the byte at offset off of the data stream each side
// sends: the harness writes these bytes for write(N) and fills inbound
// segments with them, so the bytes read and the bytes sent can be checked
// against the stream offsets they claim to be at.
func Pattern(off uint64) byte { return byte(off%251) ^ byte(off/251*29) }

func fillPattern(p []byte, off uint64) {
	for i := range p {
		p[i] = Pattern(off + uint64(i))
	}
}

// encodeOptions encodes a script's option list. peerBase is added to SACK
// blocks (they are written relative to the ISN of the side whose data they
// acknowledge). It also returns a mask of the bytes a wildcard leaves
// unchecked.
func encodeOptions(o *optSpec, sackBase wire.Seq) (b, mask []byte) {
	for _, it := range o.items {
		start := len(b)
		if it.rawLen > 0 {
			b = append(b, it.kind, byte(it.rawLen))
			for len(b) < start+it.rawLen {
				b = append(b, 0)
			}
			for len(mask) < len(b) {
				mask = append(mask, 0xff)
			}
			continue
		}
		switch it.kind {
		case wire.TCPOptNOP, wire.TCPOptEOL:
			b = append(b, it.kind)
		case wire.TCPOptMSS:
			b = append(b, wire.TCPOptMSS, 4, byte(it.mss>>8), byte(it.mss))
		case wire.TCPOptWindowScale:
			b = append(b, wire.TCPOptWindowScale, 3, it.wscale)
		case wire.TCPOptSACKPermitted:
			b = append(b, wire.TCPOptSACKPermitted, 2)
		case wire.TCPOptTimestamp:
			b = append(b, wire.TCPOptTimestamp, 10)
			b = binary.BigEndian.AppendUint32(b, it.tsVal)
			b = binary.BigEndian.AppendUint32(b, it.tsEcr)
		case wire.TCPOptSACK:
			b = append(b, wire.TCPOptSACK, byte(2+8*len(it.sack)))
			for _, blk := range it.sack {
				b = binary.BigEndian.AppendUint32(b, uint32(sackBase.Add(blk[0])))
				b = binary.BigEndian.AppendUint32(b, uint32(sackBase.Add(blk[1])))
			}
		}
		for len(mask) < len(b) {
			mask = append(mask, 0xff)
		}
		if it.kind == wire.TCPOptTimestamp {
			if it.valAny {
				copy(mask[start+2:start+6], []byte{0, 0, 0, 0})
			}
			if it.ecrAny {
				copy(mask[start+6:start+10], []byte{0, 0, 0, 0})
			}
		}
	}
	return b, mask
}

// formatOptions formats raw option bytes in packetdrill's syntax, with SACK
// blocks relative to sackBase.
func formatOptions(b []byte, sackBase wire.Seq) string {
	var parts []string
	for i := 0; i < len(b); {
		kind := b[i]
		if kind == wire.TCPOptEOL {
			parts = append(parts, "eol")
			i++
			continue
		}
		if kind == wire.TCPOptNOP {
			parts = append(parts, "nop")
			i++
			continue
		}
		if i+1 >= len(b) || int(b[i+1]) < 2 || i+int(b[i+1]) > len(b) {
			parts = append(parts, fmt.Sprintf("bad option bytes % x", b[i:]))
			break
		}
		n := int(b[i+1])
		v := b[i+2 : i+n]
		switch {
		case kind == wire.TCPOptMSS && n == 4:
			parts = append(parts, "mss "+strconv.Itoa(int(binary.BigEndian.Uint16(v))))
		case kind == wire.TCPOptWindowScale && n == 3:
			parts = append(parts, "wscale "+strconv.Itoa(int(v[0])))
		case kind == wire.TCPOptSACKPermitted && n == 2:
			parts = append(parts, "sackOK")
		case kind == wire.TCPOptTimestamp && n == 10:
			parts = append(parts, fmt.Sprintf("TS val %d ecr %d", binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])))
		case kind == wire.TCPOptSACK && (n-2)%8 == 0:
			s := "sack"
			for j := 0; j+8 <= len(v); j += 8 {
				s += fmt.Sprintf(" %d:%d", uint32(wire.Seq(binary.BigEndian.Uint32(v[j:]))-sackBase),
					uint32(wire.Seq(binary.BigEndian.Uint32(v[j+4:]))-sackBase))
			}
			parts = append(parts, s)
		default:
			parts = append(parts, fmt.Sprintf("opt %d len %d", kind, n))
		}
		i += n
	}
	return "<" + strings.Join(parts, ",") + ">"
}

// flagString formats flags as packetdrill writes them: F S R P . U E W.
func flagString(f wire.TCPFlags) string {
	var b strings.Builder
	for _, x := range [...]struct {
		f wire.TCPFlags
		c byte
	}{{wire.TCPFlagFIN, 'F'}, {wire.TCPFlagSYN, 'S'}, {wire.TCPFlagRST, 'R'}, {wire.TCPFlagPSH, 'P'},
		{wire.TCPFlagACK, '.'}, {wire.TCPFlagURG, 'U'}, {wire.TCPFlagECE, 'E'}, {wire.TCPFlagCWR, 'W'}} {
		if f&x.f != 0 {
			b.WriteByte(x.c)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// formatSegment formats a segment in script syntax, with its sequence
// numbers relative to seqBase and its acknowledgment and SACK blocks
// relative to ackBase.
func formatSegment(dir string, seg []byte, seqBase, ackBase wire.Seq) string {
	t, err := wire.ParseTCP(seg)
	if err != nil {
		return dir + " (malformed: " + err.Error() + ")"
	}
	start := uint32(t.Seq() - seqBase)
	n := uint32(len(t.Payload()))
	s := fmt.Sprintf("%s %s %d:%d(%d)", dir, flagString(t.Flags()), start, start+n, n)
	if t.Flags()&wire.TCPFlagACK != 0 {
		s += fmt.Sprintf(" ack %d", uint32(t.Ack()-ackBase))
	}
	s += fmt.Sprintf(" win %d", t.Window())
	if opts := t.Options(); len(opts) > 0 {
		s += " " + formatOptions(opts, ackBase)
	}
	return s
}

// buildInbound makes the bytes of a segment the script says arrives.
// Sequence numbers are made absolute with seqBase (the peer's ISN) and
// ackBase (the connection's ISS); the payload is the peer's stream pattern
// from offset dataOff.
func buildInbound(s *segSpec, srcPort, dstPort uint16, seqBase, ackBase wire.Seq, dataOff uint64) ([]byte, error) {
	var opts []byte
	if s.opts != nil {
		opts, _ = encodeOptions(s.opts, ackBase)
	}
	if len(opts)%4 != 0 {
		return nil, fmt.Errorf("options take %d bytes, not a multiple of 4: pad them with nop", len(opts))
	}
	if len(opts) > wire.TCPMaxOptionLen {
		return nil, fmt.Errorf("options take %d bytes, more than %d", len(opts), wire.TCPMaxOptionLen)
	}
	n := s.end - s.start
	hl := wire.TCPHeaderLen + len(opts)
	b := make([]byte, hl+int(n))
	t := wire.TCP(b)
	t.SetSrcPort(srcPort)
	t.SetDstPort(dstPort)
	t.SetSeq(seqBase.Add(s.start))
	if s.flags&wire.TCPFlagACK != 0 {
		t.SetAck(ackBase.Add(s.ack))
	}
	b[12] = byte(hl/4) << 4
	t.SetFlags(s.flags)
	t.SetWindow(s.win)
	if s.hasUrg {
		binary.BigEndian.PutUint16(b[18:], s.urg)
	}
	copy(b[wire.TCPHeaderLen:], opts)
	fillPattern(b[hl:], dataOff)
	return b, nil
}
