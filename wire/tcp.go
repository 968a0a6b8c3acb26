package wire

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// TCP header sizes (RFC 9293 §3.1).
const (
	TCPHeaderLen    = 20 // without options
	TCPMaxHeaderLen = 60 // data offset 15
	TCPMaxOptionLen = TCPMaxHeaderLen - TCPHeaderLen
)

// TCPFlags are the control bits of a TCP header (RFC 9293 §3.1, RFC 3168 for
// ECE and CWR).
type TCPFlags uint8

// The TCP control bits.
const (
	TCPFlagFIN TCPFlags = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

// Has reports whether every bit of g is set in f.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// String formats the flags as tcpdump does: "S", "S.", "F.", "R", "P.", with
// "E", "W" and "U" for ECE, CWR and URG, and "." for ACK; "none" when empty.
func (f TCPFlags) String() string {
	if f == 0 {
		return "none"
	}
	var b strings.Builder
	for _, x := range [...]struct {
		f TCPFlags
		c byte
	}{{TCPFlagSYN, 'S'}, {TCPFlagFIN, 'F'}, {TCPFlagRST, 'R'}, {TCPFlagPSH, 'P'}, {TCPFlagURG, 'U'}, {TCPFlagECE, 'E'}, {TCPFlagCWR, 'W'}, {TCPFlagACK, '.'}} {
		if f&x.f != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// TCP option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const (
	TCPOptEOL           = 0
	TCPOptNOP           = 1
	TCPOptMSS           = 2
	TCPOptWindowScale   = 3
	TCPOptSACKPermitted = 4
	TCPOptSACK          = 5
	TCPOptTimestamp     = 8
)

// TCPMaxSACKBlocks is the most SACK blocks an option list can carry.
const TCPMaxSACKBlocks = 4

// SACKBlock is one block of a SACK option: the bytes Start up to (not
// including) End were received (RFC 2018 §3).
type SACKBlock struct {
	Start, End Seq
}

// TCPOptions are the options ustack understands, decoded. The zero value
// means "no options". Decoding never allocates: SACK blocks live in a fixed
// array.
type TCPOptions struct {
	// MSS is the maximum segment size option (RFC 9293 §3.7.1); 0 when absent.
	MSS uint16
	// WScale is the window scale shift (RFC 7323 §2), valid if HasWScale.
	// It is reported as sent; receivers clamp it to 14.
	WScale    uint8
	HasWScale bool
	// SACKPermitted is the SACK-permitted option (RFC 2018 §2).
	SACKPermitted bool
	// HasTimestamp reports a timestamps option (RFC 7323 §3) with TSVal and
	// TSEcr.
	HasTimestamp bool
	TSVal, TSEcr uint32
	// NumSACK is the number of valid entries in SACK (RFC 2018 §3).
	NumSACK uint8
	SACK    [TCPMaxSACKBlocks]SACKBlock
}

// Decode parses an option list (the bytes between the fixed header and the
// data). Unknown options are skipped by their length. The list is rejected
// with ErrBadOptions when an option's length is below 2 or runs past the end,
// or when a known option has the wrong length (RFC 9293 §3.2: MUST-68 lets a
// receiver reject malformed lists as long as it does not crash).
func (o *TCPOptions) Decode(b []byte) error {
	*o = TCPOptions{}
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case TCPOptEOL:
			return nil
		case TCPOptNOP:
			i++
			continue
		}
		if i+1 >= len(b) {
			return ErrBadOptions
		}
		n := int(b[i+1])
		if n < 2 || i+n > len(b) {
			return ErrBadOptions
		}
		v := b[i+2 : i+n]
		switch kind {
		case TCPOptMSS:
			if n != 4 {
				return ErrBadOptions
			}
			o.MSS = binary.BigEndian.Uint16(v)
		case TCPOptWindowScale:
			if n != 3 {
				return ErrBadOptions
			}
			o.WScale, o.HasWScale = v[0], true
		case TCPOptSACKPermitted:
			if n != 2 {
				return ErrBadOptions
			}
			o.SACKPermitted = true
		case TCPOptTimestamp:
			if n != 10 {
				return ErrBadOptions
			}
			o.HasTimestamp = true
			o.TSVal = binary.BigEndian.Uint32(v[0:4])
			o.TSEcr = binary.BigEndian.Uint32(v[4:8])
		case TCPOptSACK:
			if (n-2)%8 != 0 || n == 2 {
				return ErrBadOptions
			}
			// A repeated SACK option replaces the earlier one
			// entirely, so no stale block is left past NumSACK.
			o.NumSACK = 0
			o.SACK = [TCPMaxSACKBlocks]SACKBlock{}
			for j := 0; j+8 <= len(v) && o.NumSACK < TCPMaxSACKBlocks; j += 8 {
				o.SACK[o.NumSACK] = SACKBlock{
					Start: Seq(binary.BigEndian.Uint32(v[j:])),
					End:   Seq(binary.BigEndian.Uint32(v[j+4:])),
				}
				o.NumSACK++
			}
		}
		i += n
	}
	return nil
}

// sackFit returns how many of the o.NumSACK blocks fit in the option space
// left by the other options.
func (o *TCPOptions) sackFit() int {
	if o.NumSACK == 0 {
		return 0
	}
	used := o.fixedLen()
	n := int(o.NumSACK)
	for n > 0 && used+4+8*n > TCPMaxOptionLen {
		n--
	}
	return n
}

// fixedLen is the encoded length of every option but SACK blocks.
func (o *TCPOptions) fixedLen() int {
	n := 0
	if o.MSS != 0 {
		n += 4
	}
	if o.HasTimestamp || o.SACKPermitted {
		// Timestamps take 12 with their two-byte lead-in, which holds
		// SACK-permitted when both are present, as Linux lays them out.
		if o.HasTimestamp {
			n += 12
		} else {
			n += 4
		}
	}
	if o.HasWScale {
		n += 4
	}
	return n
}

// EncodedLen returns the length Encode writes: a multiple of 4, at most 40.
// SACK blocks that do not fit are left out (the first ones are kept).
func (o *TCPOptions) EncodedLen() int {
	n := o.fixedLen()
	if k := o.sackFit(); k > 0 {
		n += 4 + 8*k
	}
	return n
}

// Encode writes the options in the order Linux uses (MSS, SACK-permitted and
// timestamps, window scale, SACK blocks), padded with NOPs to a multiple of
// four bytes, and returns the number of bytes written. b must hold
// EncodedLen() bytes.
func (o *TCPOptions) Encode(b []byte) int {
	i := 0
	if o.MSS != 0 {
		b[i], b[i+1] = TCPOptMSS, 4
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += 4
	}
	switch {
	case o.HasTimestamp:
		if o.SACKPermitted {
			b[i], b[i+1] = TCPOptSACKPermitted, 2
		} else {
			b[i], b[i+1] = TCPOptNOP, TCPOptNOP
		}
		b[i+2], b[i+3] = TCPOptTimestamp, 10
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	case o.SACKPermitted:
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACKPermitted, 2
		i += 4
	}
	if o.HasWScale {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptWindowScale, 3, o.WScale
		i += 4
	}
	if k := o.sackFit(); k > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACK, byte(2+8*k)
		i += 4
		for j := 0; j < k; j++ {
			binary.BigEndian.PutUint32(b[i:], uint32(o.SACK[j].Start))
			binary.BigEndian.PutUint32(b[i+4:], uint32(o.SACK[j].End))
			i += 8
		}
	}
	return i
}

// TCP is a view of a TCP header and its payload.
type TCP []byte

// ParseTCP checks that b holds a TCP header whose data offset is at least 5
// and fits in b, and returns it as a view. It does not verify the checksum
// (that needs the pseudo-header: see TCPChecksum) nor decode the options.
func ParseTCP(b []byte) (TCP, error) {
	if len(b) < TCPHeaderLen {
		return nil, ErrTruncated
	}
	off := int(b[12]>>4) * 4
	if off < TCPHeaderLen {
		return nil, ErrBadHeader
	}
	if off > len(b) {
		return nil, ErrTruncated
	}
	return TCP(b), nil
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:]) }

// Seq returns the sequence number.
func (t TCP) Seq() Seq { return Seq(binary.BigEndian.Uint32(t[4:])) }

// Ack returns the acknowledgment number.
func (t TCP) Ack() Seq { return Seq(binary.BigEndian.Uint32(t[8:])) }

// HeaderLen returns the header length in bytes from the data offset field.
func (t TCP) HeaderLen() int { return int(t[12]>>4) * 4 }

// Flags returns the control bits (the NS bit of RFC 3540 is ignored).
func (t TCP) Flags() TCPFlags { return TCPFlags(t[13]) }

// Window returns the raw (unscaled) window field.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[14:]) }

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:]) }

// Urgent returns the urgent pointer.
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t[18:]) }

// Options returns the raw option bytes.
func (t TCP) Options() []byte { return t[TCPHeaderLen:t.HeaderLen()] }

// Payload returns the data after the header.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// SetSrcPort sets the source port.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t[0:], p) }

// SetDstPort sets the destination port.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t[2:], p) }

// SetSeq sets the sequence number.
func (t TCP) SetSeq(s Seq) { binary.BigEndian.PutUint32(t[4:], uint32(s)) }

// SetAck sets the acknowledgment number.
func (t TCP) SetAck(s Seq) { binary.BigEndian.PutUint32(t[8:], uint32(s)) }

// SetFlags sets the control bits.
func (t TCP) SetFlags(f TCPFlags) { t[13] = byte(f) }

// SetWindow sets the window field.
func (t TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(t[14:], w) }

// SetChecksum sets the checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[16:], c) }

// TCPFields is a decoded TCP header. Payload aliases the buffer it was
// decoded from.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         Seq
	Flags            TCPFlags
	Window           uint16
	Checksum         uint16
	Urgent           uint16
	Options          TCPOptions
	Payload          []byte
}

// Decode fills f from a view returned by ParseTCP, decoding the options.
func (f *TCPFields) Decode(t TCP) error {
	f.SrcPort = t.SrcPort()
	f.DstPort = t.DstPort()
	f.Seq = t.Seq()
	f.Ack = t.Ack()
	f.Flags = t.Flags()
	f.Window = t.Window()
	f.Checksum = t.Checksum()
	f.Urgent = t.Urgent()
	f.Payload = t.Payload()
	return f.Options.Decode(t.Options())
}

// HeaderLen returns the length of the encoded header with its options.
func (f *TCPFields) HeaderLen() int { return TCPHeaderLen + f.Options.EncodedLen() }

// SegLen returns the segment's length in sequence space: its payload plus
// one for SYN and one for FIN (RFC 9293 §3.4).
func (f *TCPFields) SegLen() uint32 {
	n := uint32(len(f.Payload))
	if f.Flags&TCPFlagSYN != 0 {
		n++
	}
	if f.Flags&TCPFlagFIN != 0 {
		n++
	}
	return n
}

// EncodeHeader writes the header and options (not the payload) into b, which
// must hold HeaderLen() bytes, and returns HeaderLen(). The checksum field is
// set to f.Checksum; compute the real one over the whole segment with
// TCPChecksum.
func (f *TCPFields) EncodeHeader(b []byte) int {
	hl := f.HeaderLen()
	_ = b[hl-1]
	binary.BigEndian.PutUint16(b[0:], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:], f.DstPort)
	binary.BigEndian.PutUint32(b[4:], uint32(f.Seq))
	binary.BigEndian.PutUint32(b[8:], uint32(f.Ack))
	b[12] = byte(hl/4) << 4
	b[13] = byte(f.Flags)
	binary.BigEndian.PutUint16(b[14:], f.Window)
	binary.BigEndian.PutUint16(b[16:], f.Checksum)
	binary.BigEndian.PutUint16(b[18:], f.Urgent)
	f.Options.Encode(b[TCPHeaderLen:hl])
	return hl
}

// Encode writes the header and then the payload into b, which must hold
// HeaderLen()+len(Payload) bytes, and returns that length. The checksum is
// left as f.Checksum.
func (f *TCPFields) Encode(b []byte) int {
	hl := f.EncodeHeader(b)
	return hl + copy(b[hl:], f.Payload)
}

// TCPChecksum returns the checksum of the TCP segment seg (header with a zero
// checksum field, and payload) for addresses src and dst, IPv4 or IPv6 (RFC
// 9293 §3.1, RFC 8200 §8.1; see PseudoHeaderSum). Over a segment whose checksum field is already correct it returns 0,
// which is how a receiver verifies it.
func TCPChecksum(seg []byte, src, dst netip.Addr) uint16 {
	return Checksum(seg, PseudoHeaderSum(src, dst, ProtoTCP, len(seg)))
}
