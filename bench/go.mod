module github.com/ustack/ustack/bench

go 1.26.0

require (
	github.com/ustack/ustack v0.0.0
	github.com/ustack/ustack/wgnet v0.0.0
	golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446
)

require (
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.zx2c4.com/wintun v0.0.0-20230126152724-0fa3db229ce2 // indirect
)

require (
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/sys v0.49.0
	golang.org/x/time v0.7.0 // indirect
	gvisor.dev/gvisor v0.0.0-20250503011706-39ed1f5ac29c
)

replace github.com/ustack/ustack => ../

replace github.com/ustack/ustack/wgnet => ../wgnet
