package bench

import "syscall"

// RaiseFileLimit raises the soft limit on open files to the hard limit, and
// as root the hard limit too, so that the memory cases can hold tens of
// thousands of kernel sockets.
func RaiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	want := lim
	want.Cur = lim.Max
	if want.Max < 1<<20 {
		up := want
		up.Max, up.Cur = 1<<20, 1<<20
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return nil
		}
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
}
