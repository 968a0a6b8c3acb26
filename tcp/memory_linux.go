package tcp

import "syscall"

// totalRAM returns the machine's memory in bytes (sysinfo(2)), or 0.
func totalRAM() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(uint64(si.Totalram) * uint64(si.Unit))
}
