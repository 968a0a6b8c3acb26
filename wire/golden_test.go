package wire

import (
	"encoding/hex"
	"strings"
)

// Golden frames captured from the Linux kernel.
//
// Every frame below was captured with tcpdump 4.99.3 (libpcap 1.10.3) on
// Linux 6.18.44 (x86_64, Debian 12 userland: iputils 20221126, socat
// 1.7.4.4, nftables 1.0.6, scapy 2.5.0), in network namespaces made for the
// purpose and deleted afterwards. Bytes are the whole Ethernet frame as
// captured (no FCS). Topology (all veth, one queue, offloads off with
// "ethtool -K DEV tx off tso off gso off gro off txvlan off rxvlan off
// tx-vlan-stag-hw-insert off rx-vlan-stag-hw-parse off", so checksums are
// complete and tags are in the bytes):
//
//	A a0 10.77.1.1 02:00:00:00:01:01 --- r0 10.77.1.2 02:00:00:00:01:02 R
//	A a1 10.77.3.1 02:00:00:00:03:01 --- r2 10.77.3.2 02:00:00:00:03:02 R (mtu 68 both ends)
//	A a2 10.77.4.1 02:00:00:00:04:01 --- r3 10.77.4.2 02:00:00:00:04:02 R
//	R r1 10.77.2.1 02:00:00:00:02:01 --- b0 10.77.2.2 02:00:00:00:02:02 B (mtu 1000 both ends)
//
// R forwards (net.ipv4.ip_forward=1); A and B route through it. Captures
// were taken on a0 and a1 in A ("tcpdump -i a0 -w ...") and on r3 in R.
//
// This kernel has no 8021q support (CONFIG_VLAN_8021Q is off), so VLAN tags
// were pushed by a tc clsact egress program on a2 calling the kernel helper
// bpf_skb_vlan_push (0x8100 tci 5; or 0x8100 tci 7 then 0x88a8 tci 100).
// With tx VLAN offload off the kernel itself writes the tag into the frame
// (validate_xmit_vlan); the frames were captured on r3 with rx VLAN offload
// off, as they crossed the link.
//
// Each variable names the frame, says what it exercises and the command that
// made the kernel send it; the tcpdump -nn -e -v line follows.

// goldenARPRequest: ARP request from A for R, broadcast (Ethernet II untagged, RFC 826).
// Made by: ping -c1 -s 32 10.77.1.2 in A after ip neigh flush.
// tcpdump (a0): 02:00:00:00:01:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Ethernet (len 6), IPv4 (len 4), Request who-has 10.77.1.2 tell 10.77.1.1, length 28
var goldenARPRequest = unhex(`
	ffffffffffff020000000101080600010800060400010200000001010a4d0101
	0000000000000a4d0102
`)

// goldenARPReply: ARP reply from R.
// Made by: same ping.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype ARP (0x0806), length 42: Ethernet (len 6), IPv4 (len 4), Reply 10.77.1.2 is-at 02:00:00:00:01:02, length 28
var goldenARPReply = unhex(`
	020000000101020000000102080600010800060400020200000001020a4d0102
	0200000001010a4d0101
`)

// goldenEchoRequest: ICMP echo request, IPv4 without options, DF set; 32 data bytes: ping's 16-byte timeval, then 0x10..0x1f.
// Made by: ping -c1 -s 32 10.77.1.2 in A.
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 64, id 33510, offset 0, flags [DF], proto ICMP (1), length 60) 10.77.1.1 > 10.77.1.2: ICMP echo request, id 6673, seq 1, length 40
var goldenEchoRequest = unhex(`
	02000000010202000000010108004500003c82e640004001a13e0a4d01010a4d
	0102080075271a110001bb36026b00000000ef63030000000000101112131415
	161718191a1b1c1d1e1f
`)

// goldenEchoReply: ICMP echo reply from R (IPv4 ID from R's counter, DF clear).
// Made by: same ping.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 64, id 51008, offset 0, flags [none], proto ICMP (1), length 60) 10.77.1.2 > 10.77.1.1: ICMP echo reply, id 6673, seq 1, length 40
var goldenEchoReply = unhex(`
	02000000010102000000010208004500003cc740000040019ce40a4d01020a4d
	010100007d271a110001bb36026b00000000ef63030000000000101112131415
	161718191a1b1c1d1e1f
`)

// goldenRecordRouteRequest: ICMP echo request with the IPv4 record-route option: NOP, RR len 39 pointer 8 (IHL 15, 40 option bytes).
// Made by: ping -c1 -s 8 -R 10.77.1.2 in A.
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 90: (tos 0x0, ttl 64, id 33565, offset 0, flags [DF], proto ICMP (1), length 76, options (NOP,RR 10.77.1.1, 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0)) 10.77.1.1 > 10.77.1.2: ICMP echo request, id 6675, seq 1, length 16
var goldenRecordRouteRequest = unhex(`
	02000000010202000000010108004f00004c831d40004001639a0a4d01010a4d
	0102010727080a4d010100000000000000000000000000000000000000000000
	000000000000000000000800d1db1a1300010001020304050607
`)

// goldenRecordRouteReply: Echo reply with record route filled in by R (RR len 39 pointer 16, then EOL).
// Made by: same ping.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 90: (tos 0x0, ttl 64, id 51037, offset 0, flags [none], proto ICMP (1), length 76, options (RR 10.77.1.1, 10.77.1.2, 10.77.1.2, 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0 0.0.0.0,EOL)) 10.77.1.2 > 10.77.1.1: ICMP echo reply, id 6675, seq 1, length 16
var goldenRecordRouteReply = unhex(`
	02000000010102000000010208004f00004cc75d000040018f6e0a4d01020a4d
	01010727100a4d01010a4d01020a4d0102000000000000000000000000000000
	000000000000000000000000d9db1a1300010001020304050607
`)

// goldenTimeExceeded: ICMP time exceeded in transit (type 11 code 0) from router R, quoting A's echo request whole (20 bytes of IP header, 8 of ICMP header, 16 of data).
// Made by: ping -c1 -s 16 -t 1 10.77.2.2 in A (B is behind R).
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 86: (tos 0xc0, ttl 64, id 51069, offset 0, flags [none], proto ICMP (1), length 72) 10.77.1.2 > 10.77.1.1: ICMP time exceeded in-transit, length 52 (tos 0x0, ttl 1, id 28338, offset 0, flags [DF], proto ICMP (1), length 44) 10.77.1.1 > 10.77.2.2: ICMP echo request, id 6677, seq 1, length 24
var goldenTimeExceeded = unhex(`
	020000000101020000000102080045c00048c77d000040019bdb0a4d01020a4d
	01010b00f4ff000000004500002c6eb240000101f3820a4d01010a4d02020800
	db8b1a150001bb36026b0000000038bc0c0000000000
`)

// goldenFragNeeded: ICMP destination unreachable, fragmentation needed (type 3 code 4) with next-hop MTU 1000 (RFC 1191) from R; Linux quotes as much of the datagram as fits in 576 bytes.
// Made by: ping -c1 -s 1200 -M do 10.77.2.2 in A (R's link to B has mtu 1000).
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 590: (tos 0xc0, ttl 64, id 51106, offset 0, flags [none], proto ICMP (1), length 576) 10.77.1.2 > 10.77.1.1: ICMP 10.77.2.2 unreachable - need to frag (mtu 1000), length 556 (tos 0x0, ttl 64, id 0, offset 0, flags [DF], proto ICMP (1), length 1228) 10.77.1.1 > 10.77.2.2: ICMP echo request, id 6679, seq 1, length 1208
var goldenFragNeeded = unhex(`
	020000000101020000000102080045c00240c7a20000400199be0a4d01020a4d
	0101030473e1000003e8450004cc0000400040011e950a4d01010a4d02020800
	9a021a170001bc36026b00000000b42602000000000010111213141516171819
	1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839
	3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859
	5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879
	7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899
	9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9
	babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9
	dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9
	fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213141516171819
	1a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233343536373839
	3a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253545556575859
	5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879
	7a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293949596979899
	9a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9
	babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9
	dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9
	fafbfcfdfeff0001020304050607
`)

// goldenUDP: UDP datagram 10.77.1.1:40000 > 10.77.2.2:9999 carrying "hello".
// Made by: printf hello | socat -u - UDP:10.77.2.2:9999,sourceport=40000 in A.
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 47: (tos 0x0, ttl 64, id 64429, offset 0, flags [DF], proto UDP (17), length 33) 10.77.1.1.40000 > 10.77.2.2.9999: UDP, length 5
var goldenUDP = unhex(`
	020000000102020000000101080045000021fbad4000401127820a4d01010a4d
	02029c40270f000de11568656c6c6f
`)

// goldenPortUnreachable: ICMP port unreachable (type 3 code 3) from B for that datagram, forwarded by R (TTL 63); quotes the whole datagram.
// Made by: same socat (nothing listens on 9999 in B).
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 75: (tos 0xc0, ttl 63, id 502, offset 0, flags [none], proto ICMP (1), length 61) 10.77.2.2 > 10.77.1.1: ICMP 10.77.2.2 udp port 9999 unreachable, length 41 (tos 0x0, ttl 63, id 64429, offset 0, flags [DF], proto UDP (17), length 33) 10.77.1.1.40000 > 10.77.2.2.9999: UDP, length 5
var goldenPortUnreachable = unhex(`
	020000000101020000000102080045c0003d01f600003f01616e0a4d02020a4d
	0101030314b80000000045000021fbad40003f1128820a4d01010a4d02029c40
	270f000de11568656c6c6f
`)

// goldenTCPSYN: TCP SYN with Linux's option layout: mss 1460, sackOK+TS, nop, wscale 10.
// Made by: python3 client: connect from 10.77.1.1:40001 to socat TCP-LISTEN:5001 in R.
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 64, id 63723, offset 0, flags [DF], proto TCP (6), length 60) 10.77.1.1.40001 > 10.77.1.2.5001: Flags [S], cksum 0xca41 (correct), seq 2785435873, win 64240, options [mss 1460,sackOK,TS val 1166700529 ecr 0,nop,wscale 10], length 0
var goldenTCPSYN = unhex(`
	02000000010202000000010108004500003cf8eb400040062b340a4d01010a4d
	01029c411389a60660e100000000a002faf0ca410000020405b40402080a458a
	6ff1000000000103030a
`)

// goldenTCPSYNACK: TCP SYN-ACK from R, same option layout.
// Made by: same connection.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 64, id 0, offset 0, flags [DF], proto TCP (6), length 60) 10.77.1.2.5001 > 10.77.1.1.40001: Flags [S.], cksum 0x986c (correct), seq 156381590, ack 2785435874, win 65160, options [mss 1460,sackOK,TS val 2207150005 ecr 1166700529,nop,wscale 10], length 0
var goldenTCPSYNACK = unhex(`
	02000000010102000000010208004500003c00004000400624200a4d01020a4d
	010113899c4109523196a60660e2a012fe88986c0000020405b40402080a838e
	6fb5458a6ff10103030a
`)

// goldenTCPACK: TCP ACK completing the handshake: nop, nop, TS.
// Made by: same connection.
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 66: (tos 0x0, ttl 64, id 63724, offset 0, flags [DF], proto TCP (6), length 52) 10.77.1.1.40001 > 10.77.1.2.5001: Flags [.], cksum 0xc585 (correct), ack 1, win 63, options [nop,nop,TS val 1166700529 ecr 2207150005], length 0
var goldenTCPACK = unhex(`
	020000000102020000000101080045000034f8ec400040062b3b0a4d01010a4d
	01029c411389a60660e2095231978010003fc58500000101080a458a6ff1838e
	6fb5
`)

// goldenTCPData: TCP data segment (PSH|ACK) with 100 bytes of 'A' and the timestamps option.
// Made by: same connection, send(b'A'*100) with TCP_NODELAY.
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 166: (tos 0x0, ttl 64, id 63725, offset 0, flags [DF], proto TCP (6), length 152) 10.77.1.1.40001 > 10.77.1.2.5001: Flags [P.], cksum 0x065b (correct), seq 1:101, ack 1, win 63, options [nop,nop,TS val 1166700529 ecr 2207150005], length 100
var goldenTCPData = unhex(`
	020000000102020000000101080045000098f8ed400040062ad60a4d01010a4d
	01029c411389a60660e2095231978018003f065b00000101080a458a6ff1838e
	6fb5414141414141414141414141414141414141414141414141414141414141
	4141414141414141414141414141414141414141414141414141414141414141
	4141414141414141414141414141414141414141414141414141414141414141
	414141414141
`)

// goldenTCPSACK: TCP duplicate ACK from R with one SACK block {201:401}: nop, nop, TS, nop, nop, SACK (RFC 2018).
// Made by: same connection; an nft rule in R dropped the segment holding 'BBBB' once.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 78: (tos 0x0, ttl 64, id 56780, offset 0, flags [DF], proto TCP (6), length 64) 10.77.1.2.5001 > 10.77.1.1.40001: Flags [.], cksum 0x7ead (correct), ack 101, win 64, options [nop,nop,TS val 2207150055 ecr 1166700529,nop,nop,sack 1 {201:401}], length 0
var goldenTCPSACK = unhex(`
	020000000101020000000102080045000040ddcc40004006464f0a4d01020a4d
	010113899c4109523197a6066146b01000407ead00000101080a838e6fe7458a
	6ff10101050aa60661aaa6066272
`)

// goldenTCPSACK2: TCP duplicate ACK from R with two SACK blocks, most recent first (RFC 2018 §4).
// Made by: python3 client with TCP_MAXSEG 112 from 10.77.1.1:40004 to R:5004, one write of five 100-byte runs; nft in R dropped the first 'B' and 'D' segments once.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 86: (tos 0x0, ttl 64, id 56390, offset 0, flags [DF], proto TCP (6), length 72) 10.77.1.2.5004 > 10.77.1.1.40004: Flags [.], cksum 0xc41c (correct), ack 1, win 64, options [nop,nop,TS val 1628946327 ecr 1981280359,nop,nop,sack 2 {301:401}{101:201}], length 0
var goldenTCPSACK2 = unhex(`
	020000000101020000000102080045000048dc464000400647cd0a4d01020a4d
	0101138c9c44ced840d88c83d8e3d0100040c41c00000101080a6117bf977617
	f067010105128c83da0f8c83da738c83d9478c83d9ab
`)

// goldenTCPFIN: TCP FIN|ACK from A after shutdown(SHUT_WR).
// Made by: the :40001 connection.
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 66: (tos 0x0, ttl 64, id 63730, offset 0, flags [DF], proto TCP (6), length 52) 10.77.1.1.40001 > 10.77.1.2.5001: Flags [F.], cksum 0xbd50 (correct), seq 501, ack 1, win 63, options [nop,nop,TS val 1166702079 ecr 2207150055], length 0
var goldenTCPFIN = unhex(`
	020000000102020000000101080045000034f8f2400040062b350a4d01010a4d
	01029c411389a60662d6095231978011003fbd5000000101080a458a75ff838e
	6fe7
`)

// goldenTCPSYNNoTS: TCP SYN with timestamps disabled: mss 1460, nop, nop, sackOK, nop, wscale 10.
// Made by: sysctl net.ipv4.tcp_timestamps=0 in A; connect from :40002 to R:5002 (closed).
// tcpdump (a0): 02:00:00:00:01:01 > 02:00:00:00:01:02, ethertype IPv4 (0x0800), length 66: (tos 0x0, ttl 64, id 3186, offset 0, flags [DF], proto TCP (6), length 52) 10.77.1.1.40002 > 10.77.1.2.5002: Flags [S], cksum 0x9bc8 (correct), seq 3292482988, win 64240, options [mss 1460,nop,nop,sackOK,nop,wscale 10], length 0
var goldenTCPSYNNoTS = unhex(`
	0200000001020200000001010800450000340c724000400617b60a4d01010a4d
	01029c42138ac43f4dac000000008002faf09bc80000020405b4010104020103
	030a
`)

// goldenTCPRSTACK: TCP RST|ACK from R answering that SYN to a closed port (RFC 9293 §3.10.7.1).
// Made by: same connect.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 54: (tos 0x0, ttl 64, id 0, offset 0, flags [DF], proto TCP (6), length 40) 10.77.1.2.5002 > 10.77.1.1.40002: Flags [R.], cksum 0xd77a (correct), seq 0, ack 3292482989, win 0, length 0
var goldenTCPRSTACK = unhex(`
	02000000010102000000010208004500002800004000400624340a4d01020a4d
	0101138a9c4200000000c43f4dad50140000d77a0000
`)

// goldenTCPRST: TCP RST (no ACK) from R answering a bare ACK to a closed port, seq = the ACK's ack (RFC 9293 §3.10.7.1).
// Made by: scapy in A sent IP()/TCP(sport=40003, dport=5003, flags='A', seq=1000, ack=123456789); R's kernel replied.
// tcpdump (a0): 02:00:00:00:01:02 > 02:00:00:00:01:01, ethertype IPv4 (0x0800), length 54: (tos 0x0, ttl 64, id 0, offset 0, flags [DF], proto TCP (6), length 40) 10.77.1.2.5003 > 10.77.1.1.40003: Flags [R], cksum 0x1505 (correct), seq 123456789, win 0, length 0
var goldenTCPRST = unhex(`
	02000000010102000000010208004500002800004000400624340a4d01020a4d
	0101138b9c43075bcd15000000005004000015050000
`)

// goldenFragFirst: First IPv4 fragment (MF set, offset 0, 48 data bytes) of a 72-byte ICMP echo request on a link with mtu 68.
// Made by: ping -c1 -s 64 -M dont 10.77.3.2 in A (a1 and r2 have mtu 68).
// tcpdump (a1): 02:00:00:00:03:01 > 02:00:00:00:03:02, ethertype IPv4 (0x0800), length 82: (tos 0x0, ttl 64, id 892, offset 0, flags [+], proto ICMP (1), length 68) 10.77.3.1 > 10.77.3.2: ICMP echo request, id 7351, seq 1, length 48
var goldenFragFirst = unhex(`
	020000000302020000000301080045000044037c200040013ca10a4d03010a4d
	030208009f1f1cb70001c436026b00000000c7c2020000000000101112131415
	161718191a1b1c1d1e1f2021222324252627
`)

// goldenFragLast: Last fragment of the same datagram: MF clear, offset 48, 24 data bytes.
// Made by: same ping.
// tcpdump (a1): 02:00:00:00:03:01 > 02:00:00:00:03:02, ethertype IPv4 (0x0800), length 58: (tos 0x0, ttl 64, id 892, offset 48, flags [none], proto ICMP (1), length 44) 10.77.3.1 > 10.77.3.2: ip-proto-1
var goldenFragLast = unhex(`
	02000000030202000000030108004500002c037c000640015cb30a4d03010a4d
	030228292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
`)

// goldenVLANARP: 802.1Q-tagged (VLAN 5, priority 0) ARP request; no padding on veth.
// Made by: ping -c1 -s 32 10.77.4.2 in A with the tag-5 program on a2.
// tcpdump (r3): 02:00:00:00:04:01 > ff:ff:ff:ff:ff:ff, ethertype 802.1Q (0x8100), length 46: vlan 5, p 0, ethertype ARP (0x0806), Ethernet (len 6), IPv4 (len 4), Request who-has 10.77.4.2 tell 10.77.4.1, length 28
var goldenVLANARP = unhex(`
	ffffffffffff0200000004018100000508060001080006040001020000000401
	0a4d04010000000000000a4d0402
`)

// goldenVLANEcho: 802.1Q-tagged (VLAN 5) ICMP echo request.
// Made by: same, after ip neigh replace 10.77.4.2 lladdr 02:00:00:00:04:02.
// tcpdump (r3): 02:00:00:00:04:01 > 02:00:00:00:04:02, ethertype 802.1Q (0x8100), length 78: vlan 5, p 0, ethertype IPv4 (0x0800), (tos 0x0, ttl 64, id 42350, offset 0, flags [DF], proto ICMP (1), length 60) 10.77.4.1 > 10.77.4.2: ICMP echo request, id 7451, seq 1, length 40
var goldenVLANEcho = unhex(`
	0200000004020200000004018100000508004500003ca56e4000400178b60a4d
	04010a4d0402080092d61d1b0001c536026b00000000bcaa0b00000000001011
	12131415161718191a1b1c1d1e1f
`)

// goldenQinQEcho: QinQ: 802.1ad S-tag (0x88a8, VLAN 100) outside an 802.1Q C-tag (VLAN 7), then an ICMP echo request.
// Made by: ping -c1 -s 32 10.77.4.2 in A with the two-tag program on a2.
// tcpdump (r3): 02:00:00:00:04:01 > 02:00:00:00:04:02, ethertype 802.1Q-QinQ (0x88a8), length 82: vlan 100, p 0, ethertype 802.1Q (0x8100), vlan 7, p 0, ethertype IPv4 (0x0800), (tos 0x0, ttl 64, id 42508, offset 0, flags [DF], proto ICMP (1), length 60) 10.77.4.1 > 10.77.4.2: ICMP echo request, id 7455, seq 1, length 40
var goldenQinQEcho = unhex(`
	02000000040202000000040188a800648100000708004500003ca60c40004001
	78180a4d04010a4d040208008d481d1f0001c736026b00000000bf340c000000
	0000101112131415161718191a1b1c1d1e1f
`)

// unhex decodes a hex literal, ignoring white space. It panics on bad
// input, which can only come from an edit to this file.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}
