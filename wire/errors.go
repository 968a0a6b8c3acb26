package wire

import "errors"

// Sentinel errors returned by the parsers. The stack counts each one under
// its own name and drops the frame.
var (
	// ErrTruncated means the buffer is shorter than the header (or the
	// length the header claims).
	ErrTruncated = errors.New("wire: truncated")
	// ErrBadHeader means a header field has an impossible value (a bad
	// version, a header length below the minimum, a total length smaller
	// than the header, ...).
	ErrBadHeader = errors.New("wire: bad header")
	// ErrBadOptions means an option list is malformed: an option length
	// below 2, past the end of the list, or wrong for a known option.
	ErrBadOptions = errors.New("wire: bad options")
	// ErrBadChecksum means a checksum did not verify.
	ErrBadChecksum = errors.New("wire: bad checksum")
	// ErrUnsupported means a well-formed header of a kind this package does
	// not decode (an ARP for another protocol, say, or an IPv6 routing
	// header that asks to be forwarded).
	ErrUnsupported = errors.New("wire: unsupported")
	// ErrUnknownOption means an IPv6 hop-by-hop or destination option of a
	// type this package does not recognize, whose two high-order bits say
	// to discard the packet (RFC 8200 §4.2).
	ErrUnknownOption = errors.New("wire: unknown IPv6 option")
	// ErrTooManyHeaders means an IPv6 packet has more extension headers
	// than IPv6MaxExtHeaders.
	ErrTooManyHeaders = errors.New("wire: too many IPv6 extension headers")
)
