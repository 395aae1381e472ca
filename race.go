//go:build race

package processshared

import (
	"runtime"
	"unsafe"
)

// The race detector does not see the happens-before edges that atomic
// operations on mmapped memory create, so goroutines of one process that
// synchronize through a shared lock would get false reports. Locks annotate
// their acquire and release edges on a process-local address instead.

const raceEnabled = true

func raceAcquire(addr unsafe.Pointer)      { runtime.RaceAcquire(addr) }
func raceReleaseMerge(addr unsafe.Pointer) { runtime.RaceReleaseMerge(addr) }
