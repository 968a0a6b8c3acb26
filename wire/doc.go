// Package wire holds zero-copy views and field structs for the frames ustack
// speaks: Ethernet II (with 802.1Q tags), ARP, IPv4, ICMPv4, UDP and TCP with
// its options, plus the Internet checksum and TCP sequence-number arithmetic.
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
// RFCs: 894 (IPv4 over Ethernet), 791 (IPv4), 826 (ARP), 792 (ICMP), 1191
// (next-hop MTU), 768 (UDP), 9293 (TCP), 7323 (window scale, timestamps),
// 2018 (SACK), 1071 and 1624 (checksum), 1982 (serial number arithmetic,
// for Seq); IEEE 802.1Q and 802.1ad for VLAN tags.
//
// # Tests
//
// The tests decode and re-encode frames captured from the Linux kernel
// (golden_test.go says how each was made), compare every field with
// gopacket on random frames, fuzz every parser from a seed corpus in
// testdata/fuzz (see testdata/fuzz/README.md), and check that parsing,
// decoding, encoding and checksums do not allocate.
package wire
