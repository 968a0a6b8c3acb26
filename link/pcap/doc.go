// Package pcap captures frames in the classic libpcap file format, which
// tcpdump, tshark and Wireshark read.
//
// Endpoint is middleware: it wraps any link.Endpoint and records every
// frame read from it and written to it, time-stamped with the wall clock.
// Writer is the bare file writer, for callers with their own timestamps
// (the simulator writes virtual time).
//
// # Format
//
// Files use the nanosecond variant of the classic format (magic
// 0xa1b23c4d, version 2.4), which libpcap has read since 1.5 and Wireshark
// since 1.10, with a snapshot length of 262144 bytes (frames longer than
// that are truncated, keeping their original length). The link type is
// LINKTYPE_ETHERNET (1) for link.Ethernet and LINKTYPE_RAW (101) for
// link.IP: raw IPv4 or IPv6, told apart by the version nibble.
//
// Frames are recorded as they would cross a wire: a super-frame
// (link.Offload with a GSO type: TSO frames the stack writes, GRO frames a
// link hands up) becomes the segments a device would cut from it (package
// internal/gso: the IPv4 ID, lengths, sequence numbers and flags of each),
// and a partial checksum (Offload.NeedsCsum) is completed, in a copy. So a
// capture reads like one taken on the far side of a NIC with offloads,
// not like tcpdump on the Linux interface itself, which shows 64 KiB
// frames with "incorrect" checksums; tshark finds nothing to flag in it.
package pcap
