//go:build freebsd || linux

package cli

import "syscall"

// deathSignal asks the kernel to kill the command with SIGKILL when the
// thread that started it exits (PR_SET_PDEATHSIG on Linux, PROC_PDEATHSIG_CTL
// on FreeBSD).
func deathSignal() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
