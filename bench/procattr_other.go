//go:build !linux

package main

import "syscall"

// childAttrs puts a child in its own process group. Outside Linux nothing kills it if the
// benchmark dies; the official stack's server still exits when its standard input closes.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
