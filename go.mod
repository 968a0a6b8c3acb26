module github.com/ustack/ustack

go 1.26.0

require github.com/gopacket/gopacket v1.7.7

require golang.org/x/sys v0.49.0

require golang.org/x/net v0.62.0
