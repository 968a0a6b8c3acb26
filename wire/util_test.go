package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
)

// Addresses of the capture topology (see golden_test.go).
var (
	macA0 = MAC{0x02, 0, 0, 0, 0x01, 0x01}
	macR0 = MAC{0x02, 0, 0, 0, 0x01, 0x02}
	macA1 = MAC{0x02, 0, 0, 0, 0x03, 0x01}
	macR2 = MAC{0x02, 0, 0, 0, 0x03, 0x02}
	macA2 = MAC{0x02, 0, 0, 0, 0x04, 0x01}
	macR3 = MAC{0x02, 0, 0, 0, 0x04, 0x02}

	ipA  = netip.MustParseAddr("10.77.1.1")
	ipR  = netip.MustParseAddr("10.77.1.2")
	ipB  = netip.MustParseAddr("10.77.2.2")
	ipA1 = netip.MustParseAddr("10.77.3.1")
	ipR2 = netip.MustParseAddr("10.77.3.2")
	ipA2 = netip.MustParseAddr("10.77.4.1")
	ipR3 = netip.MustParseAddr("10.77.4.2")
)

// randAddr4 returns a random IPv4 address.
func randAddr4(r *rand.Rand) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], r.Uint32())
	return netip.AddrFrom4(a)
}

// poison is the byte Construct tests pre-fill buffers with (smoltcp's
// habit): an encoder that forgets a byte leaves 0xa5 behind and the
// comparison with the golden bytes fails.
const poison = 0xa5

// poisoned returns n bytes of poison.
func poisoned(n int) []byte { return bytes.Repeat([]byte{poison}, n) }

// l3 returns the Ethernet payload of a golden frame.
func l3(t testing.TB, frame []byte) []byte {
	t.Helper()
	e, err := ParseEthernet(frame)
	if err != nil {
		t.Fatalf("ParseEthernet: %v", err)
	}
	return e.Payload()
}

// l4 returns the IPv4 payload of a golden frame.
func l4(t testing.TB, frame []byte) []byte {
	t.Helper()
	p, err := ParseIPv4(l3(t, frame))
	if err != nil {
		t.Fatalf("ParseIPv4: %v", err)
	}
	return p.Payload()
}

// ipHeader returns the decoded IPv4 header of a golden frame.
func ipHeader(t testing.TB, frame []byte) IPv4Fields {
	t.Helper()
	p, err := ParseIPv4(l3(t, frame))
	if err != nil {
		t.Fatalf("ParseIPv4: %v", err)
	}
	var f IPv4Fields
	f.Decode(p)
	return f
}

// sameBytes compares slices by content, treating nil and empty alike.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }

// The eq functions compare field structs by value, slices by content.

func eqIPv4(a, b IPv4Fields) bool {
	ao, bo := a.Options, b.Options
	a.Options, b.Options = nil, nil
	return reflect.DeepEqual(a, b) && sameBytes(ao, bo)
}

func eqICMPv4(a, b ICMPv4Fields) bool {
	ap, bp := a.Payload, b.Payload
	a.Payload, b.Payload = nil, nil
	return reflect.DeepEqual(a, b) && sameBytes(ap, bp)
}

func eqUDP(a, b UDPFields) bool {
	ap, bp := a.Payload, b.Payload
	a.Payload, b.Payload = nil, nil
	return reflect.DeepEqual(a, b) && sameBytes(ap, bp)
}

func eqTCP(a, b TCPFields) bool {
	ap, bp := a.Payload, b.Payload
	a.Payload, b.Payload = nil, nil
	return reflect.DeepEqual(a, b) && sameBytes(ap, bp)
}

// diffBytes reports the first difference between got and want, or "".
func diffBytes(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("lengths %d/%d, first difference at byte %d\n got: %x\nwant: %x", len(got), len(want), i, got, want)
}
