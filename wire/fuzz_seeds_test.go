package wire

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A fuzzSeed is one seed input with the reason it is in the corpus.
type fuzzSeed struct {
	name    string // file name under testdata/fuzz/<target>/
	comment string // what it exercises
	data    []byte
}

// fuzzSeeds holds every fuzz target's seeds, commented (net/netip's habit).
// The targets add them with f.Add; testdata/fuzz holds the same bytes in
// Go's corpus format and testdata/fuzz/README.md lists them, both generated
// from this table by "go test ./wire -run TestFuzzCorpus -update-corpus".
// The "linux-" seeds are the kernel captures of golden_test.go.
var fuzzSeeds = map[string][]fuzzSeed{
	"FuzzParseEthernet": {
		{"linux-arp-request", "untagged broadcast frame carrying an ARP request", goldenARPRequest},
		{"linux-arp-reply", "unicast frame carrying an ARP reply", goldenARPReply},
		{"linux-icmp-echo-request", "IPv4 without options, ICMP echo request", goldenEchoRequest},
		{"linux-icmp-echo-reply", "ICMP echo reply", goldenEchoReply},
		{"linux-ipv4-record-route-request", "IPv4 with IHL 15 (NOP + record route), echo request", goldenRecordRouteRequest},
		{"linux-ipv4-record-route-reply", "record route filled in and ended by EOL", goldenRecordRouteReply},
		{"linux-icmp-time-exceeded", "ICMP time exceeded quoting a whole echo request", goldenTimeExceeded},
		{"linux-icmp-frag-needed", "ICMP fragmentation needed, MTU 1000, 548 quoted bytes", goldenFragNeeded},
		{"linux-udp", "UDP datagram with a 5-byte payload", goldenUDP},
		{"linux-icmp-port-unreachable", "ICMP port unreachable quoting a UDP datagram", goldenPortUnreachable},
		{"linux-tcp-syn", "TCP SYN: mss, sackOK+TS, nop, wscale", goldenTCPSYN},
		{"linux-tcp-synack", "TCP SYN-ACK", goldenTCPSYNACK},
		{"linux-tcp-ack", "TCP pure ACK with timestamps", goldenTCPACK},
		{"linux-tcp-data", "TCP data segment, 100 bytes", goldenTCPData},
		{"linux-tcp-sack", "TCP ACK with one SACK block", goldenTCPSACK},
		{"linux-tcp-sack2", "TCP ACK with two SACK blocks", goldenTCPSACK2},
		{"linux-tcp-fin", "TCP FIN|ACK", goldenTCPFIN},
		{"linux-tcp-syn-nots", "TCP SYN without timestamps", goldenTCPSYNNoTS},
		{"linux-tcp-rstack", "TCP RST|ACK, no options", goldenTCPRSTACK},
		{"linux-tcp-rst", "TCP bare RST", goldenTCPRST},
		{"linux-ipv4-frag-first", "first IPv4 fragment (MF): a truncated ICMP message", goldenFragFirst},
		{"linux-ipv4-frag-last", "last IPv4 fragment (offset 48): no transport header", goldenFragLast},
		{"linux-vlan-arp", "802.1Q tag (VLAN 5) before an ARP request", goldenVLANARP},
		{"linux-vlan-echo", "802.1Q tag before IPv4", goldenVLANEcho},
		{"linux-qinq-echo", "802.1ad S-tag outside an 802.1Q C-tag (QinQ)", goldenQinQEcho},
		{"empty", "no bytes at all: ErrTruncated", []byte{}},
		{"short-13", "one byte short of a header", goldenEchoRequest[:13]},
		{"tag-without-type", "an 802.1Q TPID and TCI with no type after them", goldenVLANEcho[:16]},
		{"ipv4-padded", "a 40-byte RST padded to the 60-byte Ethernet minimum", append(slices.Clone(goldenTCPRST), 0, 0, 0, 0, 0, 0)},
	},
	"FuzzParseARP": {
		{"linux-request", "ARP request, target hardware address zero", mustL3(goldenARPRequest)},
		{"linux-reply", "ARP reply", mustL3(goldenARPReply)},
		{"linux-vlan-request", "ARP request sent on VLAN 5", mustL3(goldenVLANARP)},
		{"padded", "ARP with the 18 padding bytes of a minimum Ethernet frame", append(slices.Clone(mustL3(goldenARPRequest)), make([]byte, 18)...)},
		{"htype-ieee802", "hardware type 6: ErrUnsupported", edit(mustL3(goldenARPRequest), func(b []byte) { b[1] = 6 })},
		{"ptype-ipv6", "protocol type 0x86dd: ErrUnsupported", edit(mustL3(goldenARPRequest), func(b []byte) { b[2], b[3] = 0x86, 0xdd })},
		{"op-rarp", "operation 3 (RARP request): ErrBadHeader", edit(mustL3(goldenARPRequest), func(b []byte) { b[7] = 3 })},
		{"short-27", "one byte short: ErrTruncated", mustL3(goldenARPRequest)[:27]},
	},
	"FuzzParseIPv4": {
		{"linux-icmp-echo", "20-byte header, DF, ICMP", mustL3(goldenEchoRequest)},
		{"linux-record-route-request", "IHL 15 with NOP and record route", mustL3(goldenRecordRouteRequest)},
		{"linux-record-route-reply", "record route ended by EOL", mustL3(goldenRecordRouteReply)},
		{"linux-frag-first", "MF set, offset 0", mustL3(goldenFragFirst)},
		{"linux-frag-last", "offset 48, MF clear", mustL3(goldenFragLast)},
		{"linux-time-exceeded", "TOS 0xc0, ICMP error", mustL3(goldenTimeExceeded)},
		{"linux-frag-needed", "576-byte ICMP error", mustL3(goldenFragNeeded)},
		{"linux-udp", "UDP", mustL3(goldenUDP)},
		{"linux-tcp-syn", "TCP with options", mustL3(goldenTCPSYN)},
		{"linux-tcp-rst-padded", "total length 40 in 46 bytes (Ethernet padding)", append(slices.Clone(mustL3(goldenTCPRST)), 0, 0, 0, 0, 0, 0)},
		{"ihl-4", "IHL below 5: ErrBadHeader", edit(mustL3(goldenEchoRequest), func(b []byte) { b[0] = 0x44 })},
		{"version-6", "version 6: ErrBadHeader", edit(mustL3(goldenEchoRequest), func(b []byte) { b[0] = 0x65 })},
		{"total-length-short", "total length below the header: ErrBadHeader", edit(mustL3(goldenEchoRequest), func(b []byte) { b[2], b[3] = 0, 19 })},
		{"total-length-long", "total length past the buffer: ErrTruncated", edit(mustL3(goldenEchoRequest), func(b []byte) { b[3]++ })},
		{"reserved-flag", "the reserved (evil) bit set, which Encode drops", edit(mustL3(goldenEchoRequest), func(b []byte) { b[6] |= 0x80 })},
	},
	"FuzzParseICMPv4": {
		{"linux-echo-request", "echo request: ID and sequence number", mustL4(goldenEchoRequest)},
		{"linux-echo-reply", "echo reply", mustL4(goldenEchoReply)},
		{"linux-echo-8-bytes", "echo request with 8 data bytes, no timestamp", mustL4(goldenRecordRouteRequest)},
		{"linux-time-exceeded", "time exceeded: unused word, quoted header", mustL4(goldenTimeExceeded)},
		{"linux-frag-needed", "fragmentation needed: next-hop MTU, long quote", mustL4(goldenFragNeeded)},
		{"linux-port-unreachable", "port unreachable quoting UDP", mustL4(goldenPortUnreachable)},
		{"parameter-problem", "parameter problem, pointer 1 (built by Encode)", encodeICMP(ICMPv4Fields{Type: ICMPv4ParameterProblem, Pointer: 1, Payload: mustL3(goldenUDP)})},
		{"header-only", "8 bytes, no payload", mustL4(goldenEchoRequest)[:8]},
		{"short-7", "ErrTruncated", mustL4(goldenEchoRequest)[:7]},
		{"quote-ihl-15", "an error quoting a header that claims 60 bytes", edit(mustL4(goldenTimeExceeded), func(b []byte) { b[8] = 0x4f })},
	},
	"FuzzParseUDP": {
		{"linux-udp", "5-byte payload", mustL4(goldenUDP)},
		{"empty-payload", "length 8", edit(mustL4(goldenUDP)[:8], func(b []byte) { b[5] = 8 })},
		{"trailing", "length 13 in 16 bytes", append(slices.Clone(mustL4(goldenUDP)), 1, 2, 3)},
		{"length-7", "length below the header: ErrBadHeader", edit(mustL4(goldenUDP), func(b []byte) { b[5] = 7 })},
		{"length-14", "length past the buffer: ErrTruncated", edit(mustL4(goldenUDP), func(b []byte) { b[5] = 14 })},
	},
	"FuzzParseTCP": {
		{"linux-syn", "SYN: mss, sackOK+TS, nop, wscale", mustL4(goldenTCPSYN)},
		{"linux-synack", "SYN-ACK", mustL4(goldenTCPSYNACK)},
		{"linux-ack", "ACK: nop, nop, TS", mustL4(goldenTCPACK)},
		{"linux-data", "data segment", mustL4(goldenTCPData)},
		{"linux-sack", "one SACK block", mustL4(goldenTCPSACK)},
		{"linux-sack2", "two SACK blocks", mustL4(goldenTCPSACK2)},
		{"linux-fin", "FIN|ACK", mustL4(goldenTCPFIN)},
		{"linux-syn-nots", "SYN without timestamps: nop, nop, sackOK", mustL4(goldenTCPSYNNoTS)},
		{"linux-rstack", "RST|ACK, 20-byte header", mustL4(goldenTCPRSTACK)},
		{"linux-rst", "bare RST", mustL4(goldenTCPRST)},
		{"data-offset-4", "data offset below 5: ErrBadHeader", edit(mustL4(goldenTCPRST), func(b []byte) { b[12] = 0x40 })},
		{"data-offset-15", "data offset past the buffer: ErrTruncated", edit(mustL4(goldenTCPSYN), func(b []byte) { b[12] = 0xf0 })},
		{"option-length-0", "MSS with length 0: ErrBadOptions", edit(mustL4(goldenTCPSYN), func(b []byte) { b[21] = 0 })},
		{"four-sack-blocks", "the most SACK blocks a header holds, no timestamps", encodeTCP(TCPFields{Flags: TCPFlagACK, Options: TCPOptions{NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}})},
	},
	"FuzzTCPOptions": {
		{"linux-syn", "mss, sackOK+TS, nop, wscale", mustTCPOptions(goldenTCPSYN)},
		{"linux-syn-nots", "mss, nop, nop, sackOK, nop, wscale", mustTCPOptions(goldenTCPSYNNoTS)},
		{"linux-ts", "nop, nop, TS", mustTCPOptions(goldenTCPACK)},
		{"linux-sack", "nop, nop, TS, nop, nop, SACK(1)", mustTCPOptions(goldenTCPSACK)},
		{"linux-sack2", "nop, nop, TS, nop, nop, SACK(2)", mustTCPOptions(goldenTCPSACK2)},
		{"sack-4", "four SACK blocks, unpadded", append([]byte{5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...)},
		{"sack-twice", "a SACK option repeated: the second replaces the first", append(append([]byte{5, 18}, seqBytes(1, 2, 3, 4)...), append([]byte{5, 10}, seqBytes(9, 10)...)...)},
		{"sackperm-ws-sack4", "unpadded options whose SACK blocks do not all fit once padded", append([]byte{4, 2, 3, 3, 7, 5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...)},
		{"unknown-mptcp", "an unknown option (MPTCP, 30) skipped by length", []byte{30, 4, 0x01, 0x81, 2, 4, 5, 0xb4}},
		{"eol-garbage", "EOL then bytes that would be malformed", []byte{2, 4, 5, 0xb4, 0, 0xff, 0x01, 0xff}},
		{"length-0", "length 0: ErrBadOptions", []byte{2, 0, 5, 0xb4}},
		{"length-1", "length 1: ErrBadOptions", []byte{8, 1, 0, 0}},
		{"mss-overrun", "MSS running past the end: ErrBadOptions", []byte{1, 2, 4, 5}},
		{"ws-length-4", "window scale of length 4: ErrBadOptions", []byte{3, 4, 7, 0}},
		{"ts-length-8", "timestamps of length 8: ErrBadOptions", []byte{8, 8, 0, 0, 0, 0, 0, 0}},
		{"sack-length-11", "SACK not a multiple of 8 plus 2: ErrBadOptions", []byte{5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"kind-without-length", "a kind in the last byte: ErrBadOptions", []byte{1, 1, 1, 2}},
	},
}

// mustL3 returns the Ethernet payload of a golden frame; it panics on a bad
// frame, which can only come from an edit to golden_test.go.
func mustL3(frame []byte) []byte {
	e, err := ParseEthernet(frame)
	if err != nil {
		panic(err)
	}
	return e.Payload()
}

// mustTCPOptions returns the option bytes of a golden TCP frame.
func mustTCPOptions(frame []byte) []byte {
	s, err := ParseTCP(mustL4(frame))
	if err != nil {
		panic(err)
	}
	return s.Options()
}

// edit returns a copy of b changed by f.
func edit(b []byte, f func(b []byte)) []byte {
	b = slices.Clone(b)
	f(b)
	return b
}

func encodeICMP(f ICMPv4Fields) []byte {
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

func encodeTCP(f TCPFields) []byte {
	b := make([]byte, f.HeaderLen()+len(f.Payload))
	f.Encode(b)
	return b
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz from fuzzSeeds")

// corpusFile is the content of a Go fuzz corpus file holding one []byte.
func corpusFile(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}

// corpusReadme lists every seed file and what it exercises.
func corpusReadme() []byte {
	var b bytes.Buffer
	b.WriteString(`# Fuzz seed corpora of package wire

Each directory holds the seeds of one fuzz target in Go's corpus format
("go test fuzz v1"). Plain ` + "`go test ./wire`" + ` runs every file as a test case;
` + "`go test ./wire -fuzz FuzzParseTCP`" + ` (one target at a time) fuzzes from them.

Corpus files cannot hold comments, so this list says what each seed
exercises. The files and this README are generated from the commented table
` + "`fuzzSeeds`" + ` in ` + "`wire/fuzz_seeds_test.go`" + `, which the targets also pass to f.Add;
after editing the table run

    go test ./wire -run TestFuzzCorpus -update-corpus

and TestFuzzCorpus fails while they differ. Seeds named ` + "`linux-*`" + ` are frames
captured from Linux 6.18 in network namespaces (see ` + "`wire/golden_test.go`" + `
for how each was made); the rest are edits of them or hand-made edge cases.
A failing input the fuzzer finds is written here under a hash name: add it
to the table with a comment (TestFuzzCorpus insists).
`)
	for _, target := range slices.Sorted(maps.Keys(fuzzSeeds)) {
		fmt.Fprintf(&b, "\n## %s\n\n| file | bytes | exercises |\n| --- | ---: | --- |\n", target)
		for _, s := range fuzzSeeds[target] {
			fmt.Fprintf(&b, "| `%s` | %d | %s |\n", s.name, len(s.data), s.comment)
		}
	}
	return b.Bytes()
}

// TestFuzzCorpus checks that testdata/fuzz holds exactly the seeds of
// fuzzSeeds and that README.md lists them; with -update-corpus it rewrites
// them.
func TestFuzzCorpus(t *testing.T) {
	root := filepath.Join("testdata", "fuzz")
	if *updateCorpus {
		for target, seeds := range fuzzSeeds {
			dir := filepath.Join(root, target)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, s := range seeds {
				if err := os.WriteFile(filepath.Join(dir, s.name), corpusFile(s.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(root, "README.md"), corpusReadme(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil || !bytes.Equal(readme, corpusReadme()) {
		t.Errorf("testdata/fuzz/README.md is stale (%v); run go test ./wire -run TestFuzzCorpus -update-corpus", err)
	}
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() {
			if _, ok := fuzzSeeds[d.Name()]; !ok {
				t.Errorf("testdata/fuzz/%s: no such target in fuzzSeeds", d.Name())
			}
		}
	}
	for target, seeds := range fuzzSeeds {
		dir := filepath.Join(root, target)
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Errorf("%s: %v", target, err)
			continue
		}
		want := map[string][]byte{}
		for _, s := range seeds {
			if _, dup := want[s.name]; dup || s.comment == "" || strings.ContainsAny(s.name, "/ ") {
				t.Errorf("%s/%s: duplicate, uncommented or badly named seed", target, s.name)
			}
			want[s.name] = corpusFile(s.data)
		}
		for _, f := range files {
			got, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				t.Error(err)
				continue
			}
			w, ok := want[f.Name()]
			if !ok {
				t.Errorf("%s/%s is not in fuzzSeeds: add it there with a comment", target, f.Name())
				continue
			}
			if !bytes.Equal(got, w) {
				t.Errorf("%s/%s differs from fuzzSeeds; run with -update-corpus", target, f.Name())
			}
			delete(want, f.Name())
		}
		for name := range want {
			t.Errorf("%s/%s is missing; run with -update-corpus", target, name)
		}
	}
}
