module github.com/ustack/ustack/bench

go 1.26.0

require github.com/ustack/ustack v0.0.0

require (
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/sys v0.49.0
	golang.org/x/time v0.7.0 // indirect
	gvisor.dev/gvisor v0.0.0-20250503011706-39ed1f5ac29c
)

replace github.com/ustack/ustack => ../
