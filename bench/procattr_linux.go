package main

import "syscall"

// childAttrs puts a child in its own process group and has the kernel kill it when the
// benchmark's process dies, so an interrupted or crashed run leaves no node or anvil behind.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
