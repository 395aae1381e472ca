package processshared

import (
	"fmt"
	"runtime/debug"
)

// Another process may truncate a named segment's file while this process
// has it mapped; touching a page past the new end of file raises SIGBUS.
// Calls that walk shared memory (the directory, slots, byte regions, the
// slow paths of the locks) run under guard, which turns that fault into an
// error wrapping ErrTruncated instead of a crash. The single-instruction
// fast paths (an uncontended Lock or Unlock, an uncontended Semaphore
// Acquire or Release, Array element access) are not
// guarded, to keep them one load and one CAS; see the package's Caveats.
// Anonymous segments are sealed against shrinking on Linux (memfd seals)
// and cannot fault so there; macOS and FreeBSD have no seals.

// guarded enables panics on faults for the calling goroutine. Use it as
//
//	defer s.guard(&err, guarded())
//
// at the start of a method with a named error result.
func guarded() bool { return debug.SetPanicOnFault(true) }

// guard recovers a memory fault, sets *err to an error wrapping
// ErrTruncated, and restores the goroutine's previous fault setting.
func (s *Segment) guard(err *error, old bool) {
	r := recover()
	debug.SetPanicOnFault(old)
	if r == nil {
		return
	}
	if _, fault := r.(interface{ Addr() uintptr }); fault {
		*err = fmt.Errorf("%w: %v: a page of the mapping is gone (was the file truncated?)", ErrTruncated, s)
		return
	}
	panic(r)
}
