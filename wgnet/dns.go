package wgnet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Name resolution through the tunnel, as netstack's LookupContextHost
// does it (a stub resolver like the Go runtime's, cut down):
//
//   - a literal address (IPv6 with or without a zone) is returned as it
//     is; anything else must be a domain name (RFC 1035 §2.3.1 with
//     underscores, as package net allows), else "no such host";
//   - the name is asked as a fully qualified name (no search list) for
//     A records if the Net has an IPv4 address and AAAA records if it has
//     an IPv6 one, both at once;
//   - each question goes to the DNS servers in the order given, the whole
//     list twice, until one answers; each exchange goes over UDP, then
//     over TCP if the answer was truncated (RFC 7766 §5), within 5 s;
//   - a name error (NXDOMAIN) or an answer without a record of the type
//     asked ends the search: "no such host", IsNotFound;
//   - the addresses come back IPv6 first if the Net has an IPv6 address,
//     IPv4 first otherwise (no RFC 6724 sorting).
//
// The errors are *net.DNSError values with netstack's texts.

// Texts of the errors, as netstack's.
var (
	errNoSuchHost                   = errors.New("no such host")
	errLameReferral                 = errors.New("lame referral")
	errCannotUnmarshalDNSMessage    = errors.New("cannot unmarshal DNS message")
	errCannotMarshalDNSMessage      = errors.New("cannot marshal DNS message")
	errServerMisbehaving            = errors.New("server misbehaving")
	errInvalidDNSResponse           = errors.New("invalid DNS response")
	errNoAnswerFromDNSServer        = errors.New("no answer from DNS server")
	errServerTemporarilyMisbehaving = errors.New("server misbehaving")
	errCanceled                     = errors.New("operation was canceled")
	errTimeout                      = errors.New("i/o timeout")
	errNumericPort                  = errors.New("port must be numeric")
	errNoSuitableAddress            = errors.New("no suitable address found")
	errMissingAddress               = errors.New("missing address")
)

// dnsTimeout bounds one exchange with one server.
const dnsTimeout = 5 * time.Second

// dnsAttempts is how many times the list of servers is tried.
const dnsAttempts = 2

// LookupHost resolves host through the tunnel (see LookupContextHost).
func (n *Net) LookupHost(host string) ([]string, error) {
	return n.LookupContextHost(context.Background(), host)
}

// LookupContextHost resolves host to addresses by asking the Net's DNS
// servers through the tunnel, as netstack's does (see the comment at the
// top of dns.go); ctx bounds the whole lookup.
func (n *Net) LookupContextHost(ctx context.Context, host string) ([]string, error) {
	if host == "" || !n.hasV4 && !n.hasV6 {
		return nil, &net.DNSError{Err: errNoSuchHost.Error(), Name: host, IsNotFound: true}
	}
	literal := host
	if strings.IndexByte(host, ':') >= 0 {
		if i := strings.LastIndexByte(host, '%'); i >= 0 {
			literal = host[:i]
		}
	}
	if ip, err := netip.ParseAddr(literal); err == nil {
		return []string{ip.String()}, nil
	}
	if !isDomainName(host) {
		return nil, &net.DNSError{Err: errNoSuchHost.Error(), Name: host, IsNotFound: true}
	}
	type lane struct {
		addrs []netip.Addr
		err   error
	}
	var types []dnsmessage.Type
	if n.hasV4 {
		types = append(types, dnsmessage.TypeA)
	}
	if n.hasV6 {
		types = append(types, dnsmessage.TypeAAAA)
	}
	results := make(chan lane, len(types))
	for _, qt := range types {
		go func() {
			addrs, err := n.lookupType(ctx, host+".", qt)
			results <- lane{addrs, err}
		}()
	}
	var v4, v6 []netip.Addr
	var firstErr error
	for range types {
		r := <-results
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		for _, a := range r.addrs {
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
	}
	addrs := append(v4, v6...)
	if n.hasV6 {
		addrs = append(v6, v4...)
	}
	if len(addrs) == 0 && firstErr != nil {
		return nil, firstErr
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out, nil
}

// lookupType asks the servers for the records of type qt of name (fully
// qualified) and returns their addresses. An answer that cannot be
// parsed after some records keeps those and reports the error, as
// netstack does.
func (n *Net) lookupType(ctx context.Context, name string, qt dnsmessage.Type) ([]netip.Addr, error) {
	p, server, err := n.tryOneName(ctx, name, qt)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for {
		h, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			return addrs, nil
		}
		bad := &net.DNSError{Err: errCannotUnmarshalDNSMessage.Error(), Name: strings.TrimSuffix(name, "."), Server: server}
		if err != nil {
			return addrs, bad
		}
		switch h.Type {
		case dnsmessage.TypeA:
			r, err := p.AResource()
			if err != nil {
				return addrs, bad
			}
			addrs = append(addrs, netip.AddrFrom4(r.A))
		case dnsmessage.TypeAAAA:
			r, err := p.AAAAResource()
			if err != nil {
				return addrs, bad
			}
			addrs = append(addrs, netip.AddrFrom16(r.AAAA))
		default:
			if err := p.SkipAnswer(); err != nil {
				return addrs, bad
			}
		}
	}
}

// tryOneName asks each server in turn, the list dnsAttempts times, for
// name's records of type qt, and returns the parser positioned at the
// answers of the first good response and the server that gave it.
func (n *Net) tryOneName(ctx context.Context, name string, qt dnsmessage.Type) (dnsmessage.Parser, string, error) {
	qn, err := dnsmessage.NewName(name)
	if err != nil {
		return dnsmessage.Parser{}, "", errCannotMarshalDNSMessage
	}
	q := dnsmessage.Question{Name: qn, Type: qt, Class: dnsmessage.ClassINET}
	short := strings.TrimSuffix(name, ".")
	var lastErr error
	for range dnsAttempts {
		for _, server := range n.dnsServers {
			srv := server.String()
			p, h, err := n.exchange(ctx, server, q)
			if err != nil {
				de := &net.DNSError{Err: err.Error(), Name: short, Server: srv}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					de.IsTimeout = true
				}
				var oe *net.OpError
				if errors.As(err, &oe) {
					de.IsTemporary = true
				}
				lastErr = de
				continue
			}
			if err := checkHeader(&p, h); err != nil {
				de := &net.DNSError{Err: err.Error(), Name: short, Server: srv}
				if err == errServerTemporarilyMisbehaving {
					de.IsTemporary = true
				}
				if err == errNoSuchHost {
					de.IsNotFound = true
					return p, srv, de
				}
				lastErr = de
				continue
			}
			if err := skipToAnswer(&p, qt); err != nil {
				de := &net.DNSError{Err: err.Error(), Name: short, Server: srv}
				if err == errNoSuchHost {
					de.IsNotFound = true
					return p, srv, de
				}
				lastErr = de
				continue
			}
			return p, srv, nil
		}
	}
	if lastErr == nil {
		// No server to ask.
		lastErr = &net.DNSError{Err: errNoAnswerFromDNSServer.Error(), Name: short}
	}
	return dnsmessage.Parser{}, "", lastErr
}

// exchange sends question q to server and returns the parser positioned
// after the question of the response: over UDP, then over TCP if the
// UDP answer was truncated.
func (n *Net) exchange(ctx context.Context, server netip.Addr, q dnsmessage.Question) (dnsmessage.Parser, dnsmessage.Header, error) {
	id, msg, err := newQuery(q)
	if err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, errCannotMarshalDNSMessage
	}
	to := netip.AddrPortFrom(server, 53)
	for _, overTCP := range []bool{false, true} {
		p, h, err := n.roundTrip(ctx, to, id, q, msg, overTCP)
		if err != nil {
			return dnsmessage.Parser{}, dnsmessage.Header{}, err
		}
		if err := p.SkipQuestion(); err != dnsmessage.ErrSectionDone {
			return dnsmessage.Parser{}, dnsmessage.Header{}, errInvalidDNSResponse
		}
		if !h.Truncated {
			return p, h, nil
		}
	}
	return dnsmessage.Parser{}, dnsmessage.Header{}, errNoAnswerFromDNSServer
}

// roundTrip sends the query msg (id, question q) to `to` over UDP or TCP
// and returns the response, parsed up to its question, within
// dnsTimeout and ctx.
func (n *Net) roundTrip(ctx context.Context, to netip.AddrPort, id uint16, q dnsmessage.Question, msg []byte, overTCP bool) (dnsmessage.Parser, dnsmessage.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	var c net.Conn
	var err error
	if overTCP {
		c, err = n.DialContextTCPAddrPort(ctx, to)
	} else {
		c, err = n.DialUDPAddrPort(netip.AddrPort{}, to)
	}
	if err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, ctxErr(err)
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	// A cancelled context wakes the exchange at once.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var p dnsmessage.Parser
	var h dnsmessage.Header
	if overTCP {
		p, h, err = streamRoundTrip(c, id, q, msg)
	} else {
		p, h, err = packetRoundTrip(c, id, q, msg)
	}
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The read woke up because ctx was cancelled (a deadline that
		// passed is the conn's own timeout error already, as netstack's).
		err = errCanceled
	}
	return p, h, err
}

// ctxErr gives a cancelled dial netstack's text.
func ctxErr(err error) error {
	if errors.Is(err, context.Canceled) {
		return errCanceled
	}
	return err
}

// newQuery builds a query for q with a random ID, recursion desired.
func newQuery(q dnsmessage.Question) (uint16, []byte, error) {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, nil, err
	}
	id := binary.BigEndian.Uint16(b[:])
	bld := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	bld.EnableCompression()
	if err := bld.StartQuestions(); err != nil {
		return 0, nil, err
	}
	if err := bld.Question(q); err != nil {
		return 0, nil, err
	}
	msg, err := bld.Finish()
	return id, msg, err
}

// packetRoundTrip sends msg as one datagram and reads datagrams until
// one is the response to it (RFC 5452 §9.1: ID and question match);
// others are ignored.
func packetRoundTrip(c net.Conn, id uint16, q dnsmessage.Question, msg []byte) (dnsmessage.Parser, dnsmessage.Header, error) {
	if _, err := c.Write(msg); err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, err
	}
	buf := make([]byte, 512) // RFC 1035 §4.2.1: longer answers are truncated
	for {
		k, err := c.Read(buf)
		if err != nil {
			return dnsmessage.Parser{}, dnsmessage.Header{}, err
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:k])
		if err != nil {
			continue
		}
		rq, err := p.Question()
		if err != nil || !isResponse(id, q, h, rq) {
			continue
		}
		return p, h, nil
	}
}

// streamRoundTrip sends msg with its 2-byte length (RFC 1035 §4.2.2) and
// reads one response the same way.
func streamRoundTrip(c net.Conn, id uint16, q dnsmessage.Question, msg []byte) (dnsmessage.Parser, dnsmessage.Header, error) {
	framed := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(framed, uint16(len(msg)))
	copy(framed[2:], msg)
	if _, err := c.Write(framed); err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, err
	}
	var p dnsmessage.Parser
	h, err := p.Start(buf)
	if err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, errCannotUnmarshalDNSMessage
	}
	rq, err := p.Question()
	if err != nil {
		return dnsmessage.Parser{}, dnsmessage.Header{}, errCannotUnmarshalDNSMessage
	}
	if !isResponse(id, q, h, rq) {
		return dnsmessage.Parser{}, dnsmessage.Header{}, errInvalidDNSResponse
	}
	return p, h, nil
}

// isResponse reports whether a message with header h and question rq
// answers the query id for q: a response, the same ID, type, class, and
// name up to ASCII case (RFC 4343).
func isResponse(id uint16, q dnsmessage.Question, h dnsmessage.Header, rq dnsmessage.Question) bool {
	if !h.Response || h.ID != id || rq.Type != q.Type || rq.Class != q.Class || rq.Name.Length != q.Name.Length {
		return false
	}
	return strings.EqualFold(string(rq.Name.Data[:rq.Name.Length]), string(q.Name.Data[:q.Name.Length]))
}

// checkHeader turns a response's header into the error it means, if any
// (the Go resolver's rules): a name error is "no such host"; success
// without answers from a server neither authoritative nor recursive is a
// lame referral; a server failure is temporary; other codes are
// misbehaviour.
func checkHeader(p *dnsmessage.Parser, h dnsmessage.Header) error {
	if h.RCode == dnsmessage.RCodeNameError {
		return errNoSuchHost
	}
	_, err := p.AnswerHeader()
	if err != nil && err != dnsmessage.ErrSectionDone {
		return errCannotUnmarshalDNSMessage
	}
	if h.RCode == dnsmessage.RCodeSuccess && !h.Authoritative && !h.RecursionAvailable && err == dnsmessage.ErrSectionDone {
		return errLameReferral
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
		return nil
	case dnsmessage.RCodeServerFailure:
		return errServerTemporarilyMisbehaving
	}
	return errServerMisbehaving
}

// skipToAnswer moves p to the first answer of type qt; none is "no such
// host".
func skipToAnswer(p *dnsmessage.Parser, qt dnsmessage.Type) error {
	for {
		h, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			return errNoSuchHost
		}
		if err != nil {
			return errCannotUnmarshalDNSMessage
		}
		if h.Type == qt {
			return nil
		}
		if err := p.SkipAnswer(); err != nil {
			return errCannotUnmarshalDNSMessage
		}
	}
}

// isDomainName reports whether s is a syntactically valid domain name
// (RFC 1035 §2.3.1, with underscores and all-numeric labels but not
// all-numeric names, as package net's isDomainName): labels of 1 to 63
// letters, digits, hyphens and underscores, not starting or ending with
// a hyphen, at most 253 characters without the final dot.
func isDomainName(s string) bool {
	if len(s) == 0 || len(s) > 254 || len(s) == 254 && s[253] != '.' {
		return false
	}
	prev := byte('.')
	label := 0
	letters := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
			letters = true
			label++
		case '0' <= c && c <= '9':
			label++
		case c == '-':
			if prev == '.' {
				return false
			}
			letters = true
			label++
		case c == '.':
			if prev == '.' || prev == '-' || label == 0 || label > 63 {
				return false
			}
			label = 0
		default:
			return false
		}
		prev = c
	}
	return prev != '-' && label <= 63 && letters
}
