// Package vnet reads and writes struct virtio_net_hdr, the header in
// front of every frame on a TUN/TAP device opened with IFF_VNET_HDR and on
// an AF_PACKET socket with PACKET_VNET_HDR, and maps it onto link.Offload.
//
// The layout is the virtio specification's (v1.2 §5.1.6, "Device
// Operation"), without num_buffers:
//
//	u8  flags        VIRTIO_NET_HDR_F_NEEDS_CSUM 1, _DATA_VALID 2
//	u8  gso_type     _GSO_NONE 0, _TCPV4 1, _UDP 3, _TCPV6 4, _UDP_L4 5, | _ECN 0x80
//	u16 hdr_len      length of the headers (a hint)
//	u16 gso_size     payload bytes per segment
//	u16 csum_start   where checksumming starts
//	u16 csum_offset  where, after csum_start, the checksum goes
//
// TUN/TAP and AF_PACKET use the host's byte order unless told otherwise
// (TUNSETVNETLE; include/linux/virtio_net.h, "virtio16 legacy"), so this
// package uses binary.NativeEndian.
package vnet

import (
	"encoding/binary"

	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/wire"
)

// Len is the size of struct virtio_net_hdr.
const Len = 10

// Flags and GSO types of the header.
const (
	FlagNeedsCsum = 1
	FlagDataValid = 2
	GSOECN        = 0x80
)

// Decode returns the Offload a received header describes. A frame with
// NEEDS_CSUM carries a partial checksum (the pseudo-header sum) that the
// sending side left for the hardware: its data is intact, so DataValid is
// set for it too, as Linux's virtio_net driver marks such a frame
// CHECKSUM_PARTIAL rather than verifying it. ECN is dropped from GSOType.
func Decode(h []byte) link.Offload {
	_ = h[Len-1]
	o := link.Offload{
		GSOType:    h[1] &^ GSOECN,
		HdrLen:     binary.NativeEndian.Uint16(h[2:]),
		GSOSize:    binary.NativeEndian.Uint16(h[4:]),
		CsumStart:  binary.NativeEndian.Uint16(h[6:]),
		CsumOffset: binary.NativeEndian.Uint16(h[8:]),
		NeedsCsum:  h[0]&FlagNeedsCsum != 0,
		DataValid:  h[0]&(FlagDataValid|FlagNeedsCsum) != 0,
	}
	if o.GSOType == link.GSONone {
		o.GSOSize = 0
	}
	if !o.NeedsCsum {
		o.CsumStart, o.CsumOffset = 0, 0
	}
	return o
}

// Encode writes the header for a frame to send with Offload o. The zero
// Offload gives the all-zero header: a complete frame.
func Encode(h []byte, o link.Offload) {
	_ = h[Len-1]
	var flags uint8
	if o.NeedsCsum {
		flags |= FlagNeedsCsum
	}
	h[0] = flags
	h[1] = o.GSOType
	binary.NativeEndian.PutUint16(h[2:], o.HdrLen)
	binary.NativeEndian.PutUint16(h[4:], o.GSOSize)
	binary.NativeEndian.PutUint16(h[6:], o.CsumStart)
	binary.NativeEndian.PutUint16(h[8:], o.CsumOffset)
}

// CompleteChecksum finishes a partial checksum in frame: the one's
// complement sum of frame[start:], which already holds the pseudo-header
// sum in its checksum field, goes at start+offset (virtio spec §5.1.6.2,
// "the driver ... must set csum_start and csum_offset ... the checksum of
// the packet from csum_start to the end, stored at csum_start +
// csum_offset"). It reports false if the offsets lie outside the frame.
func CompleteChecksum(frame []byte, start, offset int) bool {
	if start < 0 || offset < 0 || start+offset+2 > len(frame) {
		return false
	}
	c := wire.Checksum(frame[start:], 0)
	if c == 0 && offset == 6 {
		c = 0xffff // UDP: a computed zero is sent as all ones (RFC 768)
	}
	binary.BigEndian.PutUint16(frame[start+offset:], c)
	return true
}
