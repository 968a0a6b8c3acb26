package stack

import "net/netip"

// SourceAddr returns the local address a connection to dst would be sent
// from (the route's preferred source, as Connect picks it), or the error
// Connect would give (ErrNetUnreachable, ErrAFNoSupport). A runtime with
// several shards asks it before choosing a port whose flow hashes to a
// shard, which needs the whole 4-tuple.
func (s *Stack) SourceAddr(dst netip.Addr) (netip.Addr, error) {
	rt, err := s.routeTo(dst, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	return rt.src, nil
}
