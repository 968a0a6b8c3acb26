package wire

import (
	"encoding/binary"
	"net/netip"
)

// Lengths of the NDP messages without their options (RFC 4861 §4.1–§4.5).
const (
	NDPRouterSolicitLen   = 8
	NDPRouterAdvertLen    = 16
	NDPNeighborSolicitLen = 24
	NDPNeighborAdvertLen  = 24
	NDPRedirectLen        = 40
)

// Flags of a router advertisement (RFC 4861 §4.2; the rest of the octet is
// the home agent flag of RFC 6275, the default router preference of RFC
// 4191 and the proxy flag of RFC 4389, kept as they are).
const (
	NDPRAManaged = 0x80 // M: addresses from DHCPv6
	NDPRAOther   = 0x40 // O: other configuration from DHCPv6
)

// NDP option types (RFC 4861 §4.6; nonce: RFC 3971 §5.3.2; RDNSS: RFC 8106
// §5.1).
const (
	NDPOptSourceLinkAddr   = 1
	NDPOptTargetLinkAddr   = 2
	NDPOptPrefixInfo       = 3
	NDPOptRedirectedHeader = 4
	NDPOptMTU              = 5
	NDPOptNonce            = 14
	NDPOptRDNSS            = 25
)

// Flags of a prefix information option (RFC 4861 §4.6.2).
const (
	NDPPrefixOnLink     = 0x80 // L: the prefix is on-link
	NDPPrefixAutonomous = 0x40 // A: use it for SLAAC (RFC 4862)
)

// ndpHeaderLen returns the length of NDP message type t without options,
// and 0 if t is not an NDP message.
func ndpHeaderLen(t uint8) int {
	switch t {
	case ICMPv6RouterSolicit:
		return NDPRouterSolicitLen
	case ICMPv6RouterAdvert:
		return NDPRouterAdvertLen
	case ICMPv6NeighborSolicit:
		return NDPNeighborSolicitLen
	case ICMPv6NeighborAdvert:
		return NDPNeighborAdvertLen
	case ICMPv6Redirect:
		return NDPRedirectLen
	}
	return 0
}

// NDP is a view of a Neighbor Discovery message (RFC 4861 §4): router
// solicitation or advertisement, neighbour solicitation or advertisement,
// or redirect, from the ICMPv6 type on. Which accessors mean anything
// depends on Type; on a view ParseNDP returned they are all safe, and
// those of another type read zero.
type NDP []byte

// ParseNDP checks that b, an ICMPv6 message, is an NDP message as RFC 4861
// §6.1 and §7.1 and §8.1 validate them as far as the message alone can
// tell, and returns it as a view. It returns ErrUnsupported for an ICMPv6
// type that is not NDP, ErrTruncated if b is shorter than the message's
// fixed part, ErrBadHeader if the ICMP code is not 0, and ErrBadOptions if
// the options are malformed (see NDPOptions.Decode). The checks on the IP
// header (hop limit 255, addresses) and the checksum are the caller's.
func ParseNDP(b []byte) (NDP, error) {
	if len(b) < ICMPv6HeaderLen {
		return nil, ErrTruncated
	}
	hl := ndpHeaderLen(b[0])
	if hl == 0 {
		return nil, ErrUnsupported
	}
	if len(b) < hl {
		return nil, ErrTruncated
	}
	if b[1] != 0 {
		return nil, ErrBadHeader
	}
	var o NDPOptions
	if err := o.Decode(b[hl:]); err != nil {
		return nil, err
	}
	return NDP(b), nil
}

// Type returns the ICMPv6 type.
func (m NDP) Type() uint8 { return m[0] }

// Checksum returns the checksum field.
func (m NDP) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// CurHopLimit returns a router advertisement's hop limit for outgoing
// packets; 0 means unspecified (RFC 4861 §4.2).
func (m NDP) CurHopLimit() uint8 {
	if m.Type() != ICMPv6RouterAdvert {
		return 0
	}
	return m[4]
}

// RAFlags returns a router advertisement's flags octet (NDPRAManaged,
// NDPRAOther, ...).
func (m NDP) RAFlags() uint8 {
	if m.Type() != ICMPv6RouterAdvert {
		return 0
	}
	return m[5]
}

// RouterLifetime returns a router advertisement's router lifetime in
// seconds; 0 means "not a default router" (RFC 4861 §4.2).
func (m NDP) RouterLifetime() uint16 {
	if m.Type() != ICMPv6RouterAdvert {
		return 0
	}
	return binary.BigEndian.Uint16(m[6:])
}

// ReachableTime returns a router advertisement's reachable time in
// milliseconds; 0 means unspecified.
func (m NDP) ReachableTime() uint32 {
	if m.Type() != ICMPv6RouterAdvert {
		return 0
	}
	return binary.BigEndian.Uint32(m[8:])
}

// RetransTimer returns a router advertisement's retransmission timer in
// milliseconds; 0 means unspecified.
func (m NDP) RetransTimer() uint32 {
	if m.Type() != ICMPv6RouterAdvert {
		return 0
	}
	return binary.BigEndian.Uint32(m[12:])
}

// Router reports a neighbour advertisement's R flag: the sender is a router
// (RFC 4861 §4.4).
func (m NDP) Router() bool { return m.naFlags()&0x80 != 0 }

// Solicited reports a neighbour advertisement's S flag: it answers a
// solicitation.
func (m NDP) Solicited() bool { return m.naFlags()&0x40 != 0 }

// Override reports a neighbour advertisement's O flag: it should replace a
// cached link-layer address.
func (m NDP) Override() bool { return m.naFlags()&0x20 != 0 }

// naFlags returns a neighbour advertisement's flags octet, 0 for other
// types.
func (m NDP) naFlags() uint8 {
	if m.Type() != ICMPv6NeighborAdvert {
		return 0
	}
	return m[4]
}

// Target returns the target address of a neighbour solicitation,
// neighbour advertisement or redirect (RFC 4861 §4.3–§4.5); the zero Addr
// for other types.
func (m NDP) Target() netip.Addr {
	switch m.Type() {
	case ICMPv6NeighborSolicit, ICMPv6NeighborAdvert, ICMPv6Redirect:
		return netip.AddrFrom16([16]byte(m[8:24]))
	}
	return netip.Addr{}
}

// Destination returns the destination address of a redirect (RFC 4861
// §4.5); the zero Addr for other types.
func (m NDP) Destination() netip.Addr {
	if m.Type() != ICMPv6Redirect {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(m[24:40]))
}

// Options returns the options after the fixed part, already checked by
// ParseNDP.
func (m NDP) Options() NDPOptionList { return NDPOptionList(m[ndpHeaderLen(m[0]):]) }

// NDPFields is a decoded NDP message. Which fields mean anything depends on
// Type: Decode fills only those, and Encode writes only those (reserved
// fields as zero). Options aliases the buffer it was decoded from.
type NDPFields struct {
	// Type is one of ICMPv6RouterSolicit, ICMPv6RouterAdvert,
	// ICMPv6NeighborSolicit, ICMPv6NeighborAdvert, ICMPv6Redirect.
	Type uint8
	// Checksum is the checksum as decoded. Encode ignores it and writes
	// the computed one.
	Checksum uint16

	// Router advertisement (RFC 4861 §4.2).
	CurHopLimit    uint8
	RAFlags        uint8
	RouterLifetime uint16 // seconds
	ReachableTime  uint32 // milliseconds
	RetransTimer   uint32 // milliseconds

	// Neighbour advertisement flags (RFC 4861 §4.4).
	Router, Solicited, Override bool

	// Target of a neighbour solicitation or advertisement or a redirect;
	// Destination of a redirect (RFC 4861 §4.3–§4.5).
	Target, Destination netip.Addr

	// Options are the raw options (see NDPOptions and NDPOptionList to
	// read and write them).
	Options []byte
}

// Decode fills f from a view returned by ParseNDP.
func (f *NDPFields) Decode(m NDP) {
	*f = NDPFields{
		Type:           m.Type(),
		Checksum:       m.Checksum(),
		CurHopLimit:    m.CurHopLimit(),
		RAFlags:        m.RAFlags(),
		RouterLifetime: m.RouterLifetime(),
		ReachableTime:  m.ReachableTime(),
		RetransTimer:   m.RetransTimer(),
		Router:         m.Router(),
		Solicited:      m.Solicited(),
		Override:       m.Override(),
		Target:         m.Target(),
		Destination:    m.Destination(),
		Options:        m.Options(),
	}
}

// headerLen is the fixed length of f's type: that of a router solicitation
// for a type that is not NDP.
func (f *NDPFields) headerLen() int { return max(ndpHeaderLen(f.Type), NDPRouterSolicitLen) }

// Len returns the length Encode writes: the fixed part of the type plus the
// options.
func (f *NDPFields) Len() int { return f.headerLen() + len(f.Options) }

// Encode writes the message into b, which must hold Len() bytes, computes
// the checksum with the pseudo-header of src and dst (RFC 4443 §2.3), and
// returns Len(). The ICMP code is 0. A Type that is not NDP is written with
// a router solicitation's 8-byte fixed part.
func (f *NDPFields) Encode(b []byte, src, dst netip.Addr) int {
	hl, n := f.headerLen(), f.Len()
	_ = b[n-1]
	b[0], b[1] = f.Type, 0
	clear(b[2:hl])
	switch f.Type {
	case ICMPv6RouterAdvert:
		b[4], b[5] = f.CurHopLimit, f.RAFlags
		binary.BigEndian.PutUint16(b[6:], f.RouterLifetime)
		binary.BigEndian.PutUint32(b[8:], f.ReachableTime)
		binary.BigEndian.PutUint32(b[12:], f.RetransTimer)
	case ICMPv6NeighborSolicit:
		putAddr16(b[8:24], f.Target)
	case ICMPv6NeighborAdvert:
		if f.Router {
			b[4] |= 0x80
		}
		if f.Solicited {
			b[4] |= 0x40
		}
		if f.Override {
			b[4] |= 0x20
		}
		putAddr16(b[8:24], f.Target)
	case ICMPv6Redirect:
		putAddr16(b[8:24], f.Target)
		putAddr16(b[24:40], f.Destination)
	}
	copy(b[hl:n], f.Options)
	binary.BigEndian.PutUint16(b[2:], ICMPv6Checksum(b[:n], src, dst))
	return n
}

// NDPOption is a view of one NDP option (RFC 4861 §4.6): type, length in
// 8-byte units, body. Its typed accessors mean something on options of
// their type from a list NDPOptions.Decode accepted; on any option
// NDPOptionList.Next returns they are safe.
type NDPOption []byte

// Type returns the option type.
func (o NDPOption) Type() uint8 { return o[0] }

// Len returns the option's length in bytes.
func (o NDPOption) Len() int { return int(o[1]) * 8 }

// Body returns the bytes after the type and length octets.
func (o NDPOption) Body() []byte { return o[2:o.Len()] }

// LinkAddr returns the address of a source or target link-layer address
// option for Ethernet (RFC 4861 §4.6.1, RFC 2464 §6).
func (o NDPOption) LinkAddr() MAC { return MAC(o[2:8]) }

// MTU returns the MTU of an MTU option (RFC 4861 §4.6.4).
func (o NDPOption) MTU() uint32 { return binary.BigEndian.Uint32(o[4:]) }

// PrefixInfo decodes a prefix information option (RFC 4861 §4.6.2); an
// option shorter than 32 bytes gives the zero value.
func (o NDPOption) PrefixInfo() NDPPrefixInfo {
	if len(o) < NDPPrefixInfoLen {
		return NDPPrefixInfo{}
	}
	return NDPPrefixInfo{
		PrefixLen:         o[2],
		Flags:             o[3],
		ValidLifetime:     binary.BigEndian.Uint32(o[4:]),
		PreferredLifetime: binary.BigEndian.Uint32(o[8:]),
		Prefix:            netip.AddrFrom16([16]byte(o[16:32])),
	}
}

// RedirectedHeader returns the packet a redirected header option quotes
// (RFC 4861 §4.6.3): the bytes after its six reserved ones.
func (o NDPOption) RedirectedHeader() []byte { return o[8:o.Len()] }

// RDNSSLifetime returns the lifetime in seconds of a recursive DNS server
// option (RFC 8106 §5.1).
func (o NDPOption) RDNSSLifetime() uint32 { return binary.BigEndian.Uint32(o[4:]) }

// RDNSSServers returns the addresses of a recursive DNS server option.
func (o NDPOption) RDNSSServers() IPv6Addrs { return IPv6Addrs(o[8:o.Len()]) }

// NDPOptionList is a list of NDP options, walked with Next.
type NDPOptionList []byte

// Next returns the first option of l and the rest of the list, and false at
// the end of the list or at an option that is malformed (length 0 or past
// the end), where the walk stops. Lists that NDPOptions.Decode accepted
// have none.
func (l NDPOptionList) Next() (o NDPOption, rest NDPOptionList, ok bool) {
	if len(l) < 2 || l[1] == 0 || int(l[1])*8 > len(l) {
		return nil, nil, false
	}
	n := int(l[1]) * 8
	return NDPOption(l[:n]), l[n:], true
}

// NDPPrefixInfo is a decoded prefix information option (RFC 4861 §4.6.2).
type NDPPrefixInfo struct {
	PrefixLen uint8
	// Flags holds NDPPrefixOnLink and NDPPrefixAutonomous (and the bits
	// after them as sent).
	Flags uint8
	// Lifetimes in seconds; 0xffffffff is infinity.
	ValidLifetime, PreferredLifetime uint32
	Prefix                           netip.Addr
}

// NDPPrefixInfoLen is the length of a prefix information option.
const NDPPrefixInfoLen = 32

// Encode writes the option into b, which must hold NDPPrefixInfoLen bytes,
// and returns NDPPrefixInfoLen.
func (p *NDPPrefixInfo) Encode(b []byte) int {
	_ = b[NDPPrefixInfoLen-1]
	b[0], b[1], b[2], b[3] = NDPOptPrefixInfo, NDPPrefixInfoLen/8, p.PrefixLen, p.Flags
	binary.BigEndian.PutUint32(b[4:], p.ValidLifetime)
	binary.BigEndian.PutUint32(b[8:], p.PreferredLifetime)
	clear(b[12:16])
	putAddr16(b[16:32], p.Prefix)
	return NDPPrefixInfoLen
}

// NDPRDNSS is a recursive DNS server option to encode (RFC 8106 §5.1).
type NDPRDNSS struct {
	Lifetime uint32 // seconds; 0xffffffff is infinity
	Servers  IPv6Addrs
}

// Len returns the length Encode writes: 8 plus 16 per whole address.
func (r *NDPRDNSS) Len() int { return 8 + 16*r.Servers.Len() }

// Encode writes the option into b, which must hold Len() bytes, and returns
// Len().
func (r *NDPRDNSS) Encode(b []byte) int {
	n := r.Len()
	_ = b[n-1]
	b[0], b[1], b[2], b[3] = NDPOptRDNSS, byte(n/8), 0, 0
	binary.BigEndian.PutUint32(b[4:], r.Lifetime)
	copy(b[8:n], r.Servers)
	return n
}

// NDPOptions are the options of an NDP message that occur at most once,
// decoded, and the count of those that may repeat (prefix information and
// RDNSS, read with NDPOptionList.Next). The zero value means "no options".
type NDPOptions struct {
	// SourceLinkAddr and TargetLinkAddr are the link-layer address
	// options (RFC 4861 §4.6.1), for Ethernet.
	SourceLinkAddr, TargetLinkAddr       MAC
	HasSourceLinkAddr, HasTargetLinkAddr bool
	// MTU is the MTU option (RFC 4861 §4.6.4), valid if HasMTU.
	MTU    uint32
	HasMTU bool
	// Nonce is the body of a nonce option (RFC 3971 §5.3.2; Linux sends
	// 6 bytes for duplicate address detection, RFC 7527), nil if absent.
	// Encode pads it with zeros to fill whole 8-byte units.
	Nonce []byte
	// RedirectedHeader is the quoted packet of a redirected header option
	// (RFC 4861 §4.6.3), nil if absent. Encode pads it with zeros to fill
	// whole 8-byte units and writes at most 2032 bytes.
	RedirectedHeader []byte
	// Prefixes and RDNSS count the prefix information and RDNSS options.
	Prefixes, RDNSS int
}

// Decode fills o from the option list b (RFC 4861 §4.6). Of each option
// that should occur once the first is kept, as Linux does
// (ndisc_parse_options); unknown options are skipped (RFC 4861 §4.6). It
// returns ErrBadOptions, and the message must be discarded (RFC 4861 §6.1,
// §7.1.1, §8.1), when an option has length 0 or runs past the end, or when
// a known option has a length its type does not allow: link-layer address
// options other than the 8 bytes of Ethernet (Linux drops such messages
// too), an MTU option not 8 bytes long, a prefix information option not 32
// bytes, an RDNSS option shorter than 24 bytes or with an even length in
// units (RFC 8106 §5.1).
func (o *NDPOptions) Decode(b []byte) error {
	*o = NDPOptions{}
	for l := NDPOptionList(b); len(l) > 0; {
		opt, rest, ok := l.Next()
		if !ok {
			return ErrBadOptions
		}
		units := opt[1]
		switch opt.Type() {
		case NDPOptSourceLinkAddr, NDPOptTargetLinkAddr:
			if units != 1 {
				return ErrBadOptions
			}
			if opt.Type() == NDPOptSourceLinkAddr && !o.HasSourceLinkAddr {
				o.SourceLinkAddr, o.HasSourceLinkAddr = opt.LinkAddr(), true
			}
			if opt.Type() == NDPOptTargetLinkAddr && !o.HasTargetLinkAddr {
				o.TargetLinkAddr, o.HasTargetLinkAddr = opt.LinkAddr(), true
			}
		case NDPOptMTU:
			if units != 1 {
				return ErrBadOptions
			}
			if !o.HasMTU {
				o.MTU, o.HasMTU = opt.MTU(), true
			}
		case NDPOptPrefixInfo:
			if units != NDPPrefixInfoLen/8 {
				return ErrBadOptions
			}
			o.Prefixes++
		case NDPOptRDNSS:
			if units < 3 || units%2 == 0 {
				return ErrBadOptions
			}
			o.RDNSS++
		case NDPOptNonce:
			if o.Nonce == nil {
				o.Nonce = opt.Body()
			}
		case NDPOptRedirectedHeader:
			if o.RedirectedHeader == nil {
				o.RedirectedHeader = opt.RedirectedHeader()
			}
		}
		l = rest
	}
	return nil
}

// ndpMaxRedirected is the most of a packet a redirected header option
// holds: 255 units less the 8-byte option header.
const ndpMaxRedirected = 255*8 - 8

// redirected returns RedirectedHeader cut to what one option holds.
func (o *NDPOptions) redirected() []byte {
	if len(o.RedirectedHeader) > ndpMaxRedirected {
		return o.RedirectedHeader[:ndpMaxRedirected]
	}
	return o.RedirectedHeader
}

// nonce returns Nonce cut to what one option holds.
func (o *NDPOptions) nonce() []byte {
	if len(o.Nonce) > 255*8-2 {
		return o.Nonce[:255*8-2]
	}
	return o.Nonce
}

// Len returns the length Encode writes, a multiple of 8. Prefixes and
// RDNSS are not written: encode those options with NDPPrefixInfo and
// NDPRDNSS.
func (o *NDPOptions) Len() int {
	n := 0
	if o.HasSourceLinkAddr {
		n += 8
	}
	if o.HasTargetLinkAddr {
		n += 8
	}
	if o.Nonce != nil {
		n += (2 + len(o.nonce()) + 7) &^ 7
	}
	if o.HasMTU {
		n += 8
	}
	if o.RedirectedHeader != nil {
		n += (8 + len(o.redirected()) + 7) &^ 7
	}
	return n
}

// Encode writes the options into b, which must hold Len() bytes, in the
// order Linux writes those it sends (source link-layer address, target
// link-layer address, nonce, MTU, redirected header), and returns Len().
func (o *NDPOptions) Encode(b []byte) int {
	n := o.Len()
	_ = b[:n]
	i := 0
	if o.HasSourceLinkAddr {
		b[i], b[i+1] = NDPOptSourceLinkAddr, 1
		copy(b[i+2:i+8], o.SourceLinkAddr[:])
		i += 8
	}
	if o.HasTargetLinkAddr {
		b[i], b[i+1] = NDPOptTargetLinkAddr, 1
		copy(b[i+2:i+8], o.TargetLinkAddr[:])
		i += 8
	}
	if o.Nonce != nil {
		l := (2 + len(o.nonce()) + 7) &^ 7
		b[i], b[i+1] = NDPOptNonce, byte(l/8)
		k := copy(b[i+2:i+l], o.nonce())
		clear(b[i+2+k : i+l])
		i += l
	}
	if o.HasMTU {
		b[i], b[i+1], b[i+2], b[i+3] = NDPOptMTU, 1, 0, 0
		binary.BigEndian.PutUint32(b[i+4:], o.MTU)
		i += 8
	}
	if o.RedirectedHeader != nil {
		l := (8 + len(o.redirected()) + 7) &^ 7
		b[i], b[i+1] = NDPOptRedirectedHeader, byte(l/8)
		clear(b[i+2 : i+8])
		k := copy(b[i+8:i+l], o.redirected())
		clear(b[i+8+k : i+l])
		i += l
	}
	return i
}
