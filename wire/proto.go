package wire

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)
