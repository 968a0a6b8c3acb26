package network

import "errors"

// Errors returned by the configuration and fragmentation calls. Packets
// that fail are not errors: they are counted in Stats and dropped.
var (
	// ErrRouteInvalid means a route's prefix is invalid or has host bits
	// set (it must equal its Masked form).
	ErrRouteInvalid = errors.New("network: route prefix invalid or not masked")
	// ErrRouteExists means an identical route (destination, gateway and
	// NIC) is already in the table.
	ErrRouteExists = errors.New("network: route exists")
	// ErrDontFragment means a packet larger than the MTU has DF set (RFC
	// 791 §3.2). The stack answers with ICMP fragmentation needed (RFC 1191)
	// or EMSGSIZE.
	ErrDontFragment = errors.New("network: packet too big and DF set")
	// ErrMTUTooSmall means an MTU below 68, the minimum every IPv4 module
	// must forward without fragmenting (RFC 791 §3.2, "Fragmentation").
	ErrMTUTooSmall = errors.New("network: MTU below 68")
	// ErrBadPacket means the packet given to Fragmenter.Reset is not a
	// valid IPv4 packet (or its options are malformed, which also wraps
	// wire.ErrBadOptions).
	ErrBadPacket = errors.New("network: bad IPv4 packet")
)
