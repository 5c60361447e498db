//go:build unix

package httpguard

import "syscall"

// OpenFileLimit raises the process's soft limit on open files to its hard limit, if it is
// lower (the Go runtime already does this at start on most systems), and returns the limit now
// in force; ok is false when it cannot be read.
func OpenFileLimit() (limit uint64, ok bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		}
	}
	return uint64(lim.Cur), true
}
