package tcp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/ustack/ustack/clock"
	"github.com/ustack/ustack/internal/siphash"
	"github.com/ustack/ustack/wire"
)

// ISNGenerator makes initial sequence numbers per RFC 6528 §3:
// ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M
// is a clock ticking every 4 µs and F is SipHash-2-4 under a secret key. It
// also makes the per-connection timestamp offset (as Linux does since 4.10),
// so TSval does not reveal the host's uptime.
type ISNGenerator struct {
	key siphash.Key
}

// NewISNGenerator returns a generator keyed by key; the stack derives key
// from its random seed.
func NewISNGenerator(key siphash.Key) *ISNGenerator { return &ISNGenerator{key: key} }

func (g *ISNGenerator) hash(local, remote netip.AddrPort, salt byte) uint64 {
	var b [37]byte
	l, r := local.Addr().As16(), remote.Addr().As16()
	copy(b[0:], l[:])
	copy(b[16:], r[:])
	binary.BigEndian.PutUint16(b[32:], local.Port())
	binary.BigEndian.PutUint16(b[34:], remote.Port())
	b[36] = salt
	return g.key.Sum64(b[:])
}

// ISN returns the initial sequence number for a connection between local and
// remote at time now.
func (g *ISNGenerator) ISN(now clock.Instant, local, remote netip.AddrPort) wire.Seq {
	m := uint32(time.Duration(now) / (4 * time.Microsecond))
	return wire.Seq(m + uint32(g.hash(local, remote, 0)))
}

// TSOffset returns the random offset added to this connection's TSval.
func (g *ISNGenerator) TSOffset(local, remote netip.AddrPort) uint32 {
	return uint32(g.hash(local, remote, 1))
}
