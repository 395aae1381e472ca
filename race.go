//go:build race

package processshared

import (
	"runtime"
	"sync"
	"unsafe"
)

// The race detector does not see the happens-before edges that atomic
// operations on mmapped memory create, so goroutines of one process that
// synchronize through a shared lock would get false reports. Locks annotate
// their acquire and release edges on a process-local address instead: one
// per shared object, whichever handle reaches it, so that two Segment
// handles on one segment (which lock each other out like two processes)
// synchronize for the race detector too.

const raceEnabled = true

func raceAcquire(addr unsafe.Pointer)      { runtime.RaceAcquire(addr) }
func raceReleaseMerge(addr unsafe.Pointer) { runtime.RaceReleaseMerge(addr) }

// raceAddrs maps an object (its segment's file and its offset) to the
// address its annotations key on. Entries are never removed: this state
// exists only in race-enabled builds, and costs a word per object ever
// opened.
var raceAddrs sync.Map // raceKey → *uint64

type raceKey struct {
	file fileID
	off  uint64
}

// raceAddr returns the address the annotations of the object at off in the
// file fid key on.
func raceAddr(fid fileID, off uint64) unsafe.Pointer {
	if fid == (fileID{}) {
		return unsafe.Pointer(new(uint64)) // the file's identity is unknown
	}
	a, _ := raceAddrs.LoadOrStore(raceKey{fid, off}, new(uint64))
	return unsafe.Pointer(a.(*uint64))
}
