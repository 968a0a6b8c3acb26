// Package wire holds zero-copy views and field structs for the frames ustack
// speaks: Ethernet II (with 802.1Q tags), ARP, IPv4, ICMPv4, IPv6 with its
// extension headers, ICMPv6, NDP, MLD, UDP and TCP with its options, plus
// the Internet checksum (with the IPv4 and IPv6 pseudo-headers) and TCP
// sequence-number arithmetic.
//
// # Two levels
//
// A view (Ethernet, IPv4, TCP, ...) is a []byte with accessors for the raw
// fields. Parse functions (ParseIPv4, ParseTCP, ...) check the lengths a view
// needs, so once ParseX has returned a view without error none of its
// accessors can panic. Views made by conversion (wire.TCP(b)) are unchecked
// and are meant for building frames in buffers whose size the caller chose.
//
// A field struct (IPv4Fields, TCPFields, ...) holds the decoded meaning of a
// header. Decode fills it from a checked view; Encode writes it into a buffer
// of exactly the advertised length. Encoding into a dirty buffer gives the
// same bytes as encoding into a zeroed one.
//
// # Guarantees
//
// Parsing never panics and never allocates, whatever the input: malformed
// input gives one of the sentinel errors below (ErrTruncated, ErrBadHeader,
// ErrBadOptions, ...), which the stack turns into named drop counters.
// Payload slices alias the input buffer; nothing is copied.
//
// # IPv6
//
// ParseIPv6 checks the fixed header only. IPv6Chain.Walk then processes
// the extension headers as a destination does (RFC 8200 §4): bounded by
// IPv6MaxExtHeaders, handling unknown options by the two high-order bits
// of their type (§4.2), stopping at a fragment to reassemble (§4.5) or at
// the upper-layer header; when the packet must be dropped it says which
// ICMPv6 parameter problem to send and its pointer. SkipIPv6Ext walks a
// chain by length only, for quoted packets. Lists whose entries vary in
// number (NDP options, MLDv2 records, source addresses) are walked with a
// Next method or indexed, not decoded into slices, so decoding never
// allocates.
//
// RFCs: 894 (IPv4 over Ethernet), 791 (IPv4), 826 (ARP), 792 (ICMP), 1191
// (next-hop MTU), 768 (UDP), 9293 (TCP), 7323 (window scale, timestamps),
// 2018 (SACK), 1071 and 1624 (checksum), 1982 (serial number arithmetic,
// for Seq); 8200 (IPv6), 2464 (IPv6 over Ethernet), 4291 (addresses), 2711
// (Router Alert), 6946 and 7112 (fragments), 4443 (ICMPv6), 4861 (NDP),
// 3971 §5.3.2 and 7527 (nonce), 8106 (RDNSS), 2710 and 3810 (MLD), 3168
// (ECN); IEEE 802.1Q and 802.1ad for VLAN tags.
//
// # Tests
//
// The tests decode and re-encode frames captured from the Linux kernel
// (golden_test.go says how each IPv4 one was made; testdata/ipv6-golden.txt
// and testdata/capture-ipv6.sh, the IPv6 ones), compare every field with
// gopacket on random frames, fuzz every parser from a seed corpus in
// testdata/fuzz (see testdata/fuzz/README.md), and check that parsing,
// decoding, encoding and checksums do not allocate.
package wire
