package wire

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"). In IPv6
// the same numbers fill the Next Header field, which also names the
// extension headers (RFC 8200 §4; IANA "IPv6 Extension Header Types").
const (
	ProtoHopByHop = 0  // IPv6 hop-by-hop options header (RFC 8200 §4.3)
	ProtoICMP     = 1  // ICMP for IPv4 (RFC 792)
	ProtoTCP      = 6  // RFC 9293
	ProtoUDP      = 17 // RFC 768
	ProtoRouting  = 43 // IPv6 routing header (RFC 8200 §4.4)
	ProtoFragment = 44 // IPv6 fragment header (RFC 8200 §4.5)
	ProtoESP      = 50 // IPsec encapsulating security payload (RFC 4303)
	ProtoAH       = 51 // IPsec authentication header (RFC 4302)
	ProtoICMPv6   = 58 // ICMP for IPv6 (RFC 4443)
	ProtoNoNext   = 59 // IPv6 "no next header" (RFC 8200 §4.7)
	ProtoDestOpts = 60 // IPv6 destination options header (RFC 8200 §4.6)
)
