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
// GSO super-frames and GRO-coalesced frames (link.Offload) are written as
// they are, one record each; like a capture on a Linux interface with
// offloads on, their transport checksums may be partial (tcpdump reports
// "incorrect cksum").
package pcap
