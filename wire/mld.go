package wire

import (
	"encoding/binary"
	"net/netip"
)

// MLD message lengths (RFC 2710 §3, RFC 3810 §5).
const (
	// MLDv1Len is the length of an MLDv1 query, report or done message,
	// and of the start of an MLDv2 query.
	MLDv1Len = 24
	// MLDv2QueryLen is the length of an MLDv2 query without sources.
	MLDv2QueryLen = 28
	// MLDv2ReportLen is the length of an MLDv2 report without records.
	MLDv2ReportLen = 8
	// MLDv2RecordLen is the length of a multicast address record without
	// sources or auxiliary data.
	MLDv2RecordLen = 20
)

// Types of MLDv2 multicast address records (RFC 3810 §5.2.12).
const (
	MLDModeIsInclude   = 1 // current state: INCLUDE the sources
	MLDModeIsExclude   = 2 // current state: EXCLUDE the sources
	MLDChangeToInclude = 3 // filter mode change to INCLUDE
	MLDChangeToExclude = 4 // filter mode change to EXCLUDE (a join, with no sources)
	MLDAllowNewSources = 5
	MLDBlockOldSources = 6
)

// MLD is a view of an MLD query (version 1 or 2), or of an MLDv1 report or
// done message: the messages whose first 24 bytes have the MLDv1 layout
// (RFC 2710 §3; RFC 3810 §5.1). The MLDv2 fields (S, QRV, QQIC, sources)
// are meaningful when IsV2Query reports true, and read zero otherwise.
type MLD []byte

// ParseMLD checks that b, an ICMPv6 message, is an MLD query, MLDv1 report
// or MLDv1 done message and returns it as a view. It returns ErrUnsupported
// for other types (an MLDv2 report: see ParseMLDv2Report) and ErrTruncated
// if b is shorter than 24 bytes. A query is MLDv1 if it is exactly 24 bytes
// long and MLDv2 if it is at least 28; other lengths give ErrBadHeader
// (RFC 3810 §8.1: they are ignored), and an MLDv2 query whose sources do
// not fit ErrTruncated. Bytes after the sources are allowed and ignored
// (RFC 3810 §5.1.12). The code is not checked: receivers ignore it.
func ParseMLD(b []byte) (MLD, error) {
	if len(b) < ICMPv6HeaderLen {
		return nil, ErrTruncated
	}
	switch b[0] {
	case ICMPv6MLDQuery, ICMPv6MLDv1Report, ICMPv6MLDv1Done:
	default:
		return nil, ErrUnsupported
	}
	if len(b) < MLDv1Len {
		return nil, ErrTruncated
	}
	if b[0] != ICMPv6MLDQuery || len(b) == MLDv1Len {
		return MLD(b), nil
	}
	if len(b) < MLDv2QueryLen {
		return nil, ErrBadHeader
	}
	if MLDv2QueryLen+16*int(binary.BigEndian.Uint16(b[26:])) > len(b) {
		return nil, ErrTruncated
	}
	return MLD(b), nil
}

// Type returns the ICMPv6 type: ICMPv6MLDQuery, ICMPv6MLDv1Report or
// ICMPv6MLDv1Done.
func (m MLD) Type() uint8 { return m[0] }

// Checksum returns the checksum field.
func (m MLD) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// IsV2Query reports whether m is an MLDv2 query (RFC 3810 §8.1: longer than
// 24 bytes).
func (m MLD) IsV2Query() bool { return m[0] == ICMPv6MLDQuery && len(m) >= MLDv2QueryLen }

// MaxRespCode returns the maximum response code field (the maximum
// response delay of MLDv1, RFC 2710 §3.4).
func (m MLD) MaxRespCode() uint16 { return binary.BigEndian.Uint16(m[4:]) }

// MaxRespDelay returns the maximum response delay in milliseconds: the
// code itself in MLDv1 (RFC 2710 §3.4), decoded from its floating-point
// form in an MLDv2 query (RFC 3810 §5.1.3).
func (m MLD) MaxRespDelay() uint32 {
	if m.IsV2Query() {
		return MLDv2MaxRespDelay(m.MaxRespCode())
	}
	return uint32(m.MaxRespCode())
}

// Multicast returns the multicast address field: the group a report or
// done message is about, or the group a query asks about (:: for a general
// query).
func (m MLD) Multicast() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// v2 returns the octets after the multicast address of an MLDv2 query
// (flags, QQIC, number of sources), zero for other messages, so that the
// MLDv2 accessors read zero instead of panicking.
func (m MLD) v2() (flags, qqic uint8, n int) {
	if !m.IsV2Query() {
		return 0, 0, 0
	}
	return m[24], m[25], int(binary.BigEndian.Uint16(m[26:]))
}

// SuppressRouterProcessing returns the S flag of an MLDv2 query (RFC 3810
// §5.1.7); false for other messages.
func (m MLD) SuppressRouterProcessing() bool {
	flags, _, _ := m.v2()
	return flags&0x08 != 0
}

// QRV returns the querier's robustness variable of an MLDv2 query (RFC 3810
// §5.1.8); 0 means the sender's exceeds 7, or that m is not an MLDv2 query.
func (m MLD) QRV() uint8 {
	flags, _, _ := m.v2()
	return flags & 0x07
}

// QQIC returns the querier's query interval code of an MLDv2 query (RFC
// 3810 §5.1.9); 0 for other messages.
func (m MLD) QQIC() uint8 {
	_, qqic, _ := m.v2()
	return qqic
}

// QQI returns the querier's query interval in seconds, decoded from QQIC.
func (m MLD) QQI() uint32 { return MLDv2QQI(m.QQIC()) }

// NumSources returns the number of sources of an MLDv2 query; 0 for other
// messages.
func (m MLD) NumSources() int {
	_, _, n := m.v2()
	return n
}

// Sources returns the source addresses of an MLDv2 query (RFC 3810
// §5.1.11), empty for other messages.
func (m MLD) Sources() IPv6Addrs {
	if !m.IsV2Query() {
		return nil
	}
	return IPv6Addrs(m[MLDv2QueryLen : MLDv2QueryLen+16*m.NumSources()])
}

// MLDv2MaxRespDelay decodes an MLDv2 maximum response code into
// milliseconds (RFC 3810 §5.1.3): below 32768 the code is the delay;
// otherwise it is a 3-bit exponent and a 12-bit mantissa,
// (mant | 0x1000) << (exp + 3).
func MLDv2MaxRespDelay(code uint16) uint32 {
	if code < 0x8000 {
		return uint32(code)
	}
	return (uint32(code&0x0fff) | 0x1000) << (uint32(code>>12&7) + 3)
}

// MLDv2QQI decodes an MLDv2 querier's query interval code into seconds (RFC
// 3810 §5.1.9): below 128 the code is the interval; otherwise it is a
// 3-bit exponent and a 4-bit mantissa, (mant | 0x10) << (exp + 3).
func MLDv2QQI(code uint8) uint32 {
	if code < 0x80 {
		return uint32(code)
	}
	return (uint32(code&0x0f) | 0x10) << (uint32(code>>4&7) + 3)
}

// MLDFields is a decoded MLD query, MLDv1 report or MLDv1 done message. The
// reserved fields are not kept; Encode writes them as zero. Sources aliases
// the buffer it was decoded from.
type MLDFields struct {
	// Type is ICMPv6MLDQuery, ICMPv6MLDv1Report or ICMPv6MLDv1Done.
	Type uint8
	// Checksum is the checksum as decoded. Encode ignores it and writes
	// the computed one.
	Checksum    uint16
	MaxRespCode uint16
	Multicast   netip.Addr
	// V2 makes a query an MLDv2 query, with the fields below (RFC 3810
	// §5.1); Encode ignores them otherwise.
	V2                       bool
	SuppressRouterProcessing bool
	QRV                      uint8 // 3 bits
	QQIC                     uint8
	Sources                  IPv6Addrs
}

// Decode fills f from a view returned by ParseMLD.
func (f *MLDFields) Decode(m MLD) {
	*f = MLDFields{Type: m.Type(), Checksum: m.Checksum(), MaxRespCode: m.MaxRespCode(), Multicast: m.Multicast()}
	if m.IsV2Query() {
		f.V2 = true
		f.SuppressRouterProcessing, f.QRV, f.QQIC = m.SuppressRouterProcessing(), m.QRV(), m.QQIC()
		f.Sources = m.Sources()
	}
}

// v2 reports whether Encode writes an MLDv2 query.
func (f *MLDFields) v2() bool { return f.V2 && f.Type == ICMPv6MLDQuery }

// sources returns Sources cut to whole addresses, at most 65535 of them.
func (f *MLDFields) sources() IPv6Addrs {
	return f.Sources[:16*min(f.Sources.Len(), 0xffff)]
}

// Len returns the length Encode writes: 24, or for an MLDv2 query 28 plus
// 16 per source.
func (f *MLDFields) Len() int {
	if f.v2() {
		return MLDv2QueryLen + len(f.sources())
	}
	return MLDv1Len
}

// Encode writes the message into b, which must hold Len() bytes, computes
// the checksum with the pseudo-header of src and dst (RFC 3810 §5.1.2), and
// returns Len(). The code is 0.
func (f *MLDFields) Encode(b []byte, src, dst netip.Addr) int {
	n := f.Len()
	_ = b[n-1]
	b[0], b[1], b[2], b[3] = f.Type, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:], f.MaxRespCode)
	b[6], b[7] = 0, 0
	putAddr16(b[8:24], f.Multicast)
	if f.v2() {
		b[24] = f.QRV & 7
		if f.SuppressRouterProcessing {
			b[24] |= 0x08
		}
		b[25] = f.QQIC
		binary.BigEndian.PutUint16(b[26:], uint16(f.sources().Len()))
		copy(b[MLDv2QueryLen:n], f.sources())
	}
	binary.BigEndian.PutUint16(b[2:], ICMPv6Checksum(b[:n], src, dst))
	return n
}

// MLDv2Report is a view of an MLDv2 listener report (RFC 3810 §5.2): the
// header and its multicast address records.
type MLDv2Report []byte

// ParseMLDv2Report checks that b, an ICMPv6 message, is an MLDv2 report
// whose records all fit, and returns it as a view. It returns
// ErrUnsupported if the type is not ICMPv6MLDv2Report and ErrTruncated if
// b ends before the header or a record does. Bytes after the last record
// are ignored.
func ParseMLDv2Report(b []byte) (MLDv2Report, error) {
	if len(b) < MLDv2ReportLen {
		return nil, ErrTruncated
	}
	if b[0] != ICMPv6MLDv2Report {
		return nil, ErrUnsupported
	}
	l := MLDv2Records(b[MLDv2ReportLen:])
	for i := int(binary.BigEndian.Uint16(b[6:])); i > 0; i-- {
		var ok bool
		if _, l, ok = l.Next(); !ok {
			return nil, ErrTruncated
		}
	}
	return MLDv2Report(b), nil
}

// Checksum returns the checksum field.
func (r MLDv2Report) Checksum() uint16 { return binary.BigEndian.Uint16(r[2:]) }

// NumRecords returns the number of multicast address records.
func (r MLDv2Report) NumRecords() int { return int(binary.BigEndian.Uint16(r[6:])) }

// Records returns the records, walked with Next; on a view ParseMLDv2Report
// returned, Next yields NumRecords records.
func (r MLDv2Report) Records() MLDv2Records { return MLDv2Records(r[MLDv2ReportLen:]) }

// MLDv2Records is a list of multicast address records.
type MLDv2Records []byte

// Next returns the first record of l and the rest, and false if l does not
// start with a whole record.
func (l MLDv2Records) Next() (r MLDv2Record, rest MLDv2Records, ok bool) {
	if len(l) < MLDv2RecordLen {
		return nil, nil, false
	}
	n := MLDv2RecordLen + 16*int(binary.BigEndian.Uint16(l[2:])) + 4*int(l[1])
	if n > len(l) {
		return nil, nil, false
	}
	return MLDv2Record(l[:n]), l[n:], true
}

// MLDv2Record is a view of one multicast address record (RFC 3810 §5.2.4).
type MLDv2Record []byte

// Type returns the record type (MLDModeIsInclude, ...).
func (r MLDv2Record) Type() uint8 { return r[0] }

// AuxDataLen returns the length of the auxiliary data in 32-bit words.
func (r MLDv2Record) AuxDataLen() int { return int(r[1]) }

// NumSources returns the number of sources.
func (r MLDv2Record) NumSources() int { return int(binary.BigEndian.Uint16(r[2:])) }

// Multicast returns the multicast address the record is about.
func (r MLDv2Record) Multicast() netip.Addr { return netip.AddrFrom16([16]byte(r[4:20])) }

// Sources returns the source addresses.
func (r MLDv2Record) Sources() IPv6Addrs {
	return IPv6Addrs(r[MLDv2RecordLen : MLDv2RecordLen+16*r.NumSources()])
}

// AuxData returns the auxiliary data (RFC 3810 §5.2.10: none is defined,
// and receivers ignore it).
func (r MLDv2Record) AuxData() []byte { return r[MLDv2RecordLen+16*r.NumSources():] }

// MLDv2RecordFields is a decoded multicast address record, or one to
// encode. Sources and AuxData alias the buffer it was decoded from.
type MLDv2RecordFields struct {
	Type      uint8
	Multicast netip.Addr
	Sources   IPv6Addrs
	// AuxData is padded with zeros to a multiple of 4 bytes by Encode,
	// which writes at most 1020 bytes of it.
	AuxData []byte
}

// Decode fills f from a record returned by MLDv2Records.Next.
func (f *MLDv2RecordFields) Decode(r MLDv2Record) {
	f.Type = r.Type()
	f.Multicast = r.Multicast()
	f.Sources = r.Sources()
	f.AuxData = r.AuxData()
}

func (f *MLDv2RecordFields) sources() IPv6Addrs { return f.Sources[:16*min(f.Sources.Len(), 0xffff)] }

func (f *MLDv2RecordFields) aux() []byte { return f.AuxData[:min(len(f.AuxData), 255*4)] }

// Len returns the record's encoded length: 20, 16 per source, and the
// auxiliary data rounded up to a multiple of 4.
func (f *MLDv2RecordFields) Len() int {
	return MLDv2RecordLen + len(f.sources()) + (len(f.aux())+3)&^3
}

// Encode writes the record into b, which must hold Len() bytes, and returns
// Len().
func (f *MLDv2RecordFields) Encode(b []byte) int {
	n := f.Len()
	_ = b[n-1]
	aux := (len(f.aux()) + 3) / 4
	b[0], b[1] = f.Type, byte(aux)
	binary.BigEndian.PutUint16(b[2:], uint16(f.sources().Len()))
	putAddr16(b[4:20], f.Multicast)
	i := MLDv2RecordLen + copy(b[MLDv2RecordLen:], f.sources())
	k := copy(b[i:n], f.aux())
	clear(b[i+k : n])
	return n
}

// MLDv2ReportFields is an MLDv2 report to encode (RFC 3810 §5.2). Decode a
// received one record by record with MLDv2Report.Records.
type MLDv2ReportFields struct {
	Records []MLDv2RecordFields
}

// records returns Records cut to the 65535 a report can count.
func (f *MLDv2ReportFields) records() []MLDv2RecordFields {
	return f.Records[:min(len(f.Records), 0xffff)]
}

// Len returns the length Encode writes: 8 plus the records.
func (f *MLDv2ReportFields) Len() int {
	n := MLDv2ReportLen
	for i := range f.records() {
		n += f.Records[i].Len()
	}
	return n
}

// Encode writes the report into b, which must hold Len() bytes, computes
// the checksum with the pseudo-header of src and dst (RFC 3810 §5.2.2), and
// returns Len(). It writes at most 65535 records; keeping a report within
// the link MTU (RFC 3810 §5.2.15) is the caller's job.
func (f *MLDv2ReportFields) Encode(b []byte, src, dst netip.Addr) int {
	n := f.Len()
	_ = b[n-1]
	recs := f.records()
	b[0], b[1], b[2], b[3], b[4], b[5] = ICMPv6MLDv2Report, 0, 0, 0, 0, 0
	binary.BigEndian.PutUint16(b[6:], uint16(len(recs)))
	i := MLDv2ReportLen
	for j := range recs {
		i += recs[j].Encode(b[i:])
	}
	binary.BigEndian.PutUint16(b[2:], ICMPv6Checksum(b[:n], src, dst))
	return n
}
