//go:build !linux

package tcp

// totalRAM returns 0: the memory is not read on this system, and
// memLimitsFor assumes 4 GiB.
func totalRAM() int64 { return 0 }
