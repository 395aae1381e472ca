//go:build !freebsd && !linux

package cli

import "syscall"

// deathSignal returns nil: this system has no parent-death signal, so a
// command keeps running if pshared is killed.
func deathSignal() *syscall.SysProcAttr { return nil }
