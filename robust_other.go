//go:build !linux || processshared_nofutex

package processshared

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// Without a robust futex list (every system but Linux, and Linux built with
// the processshared_nofutex tag) no kernel tells anyone that a process died.
// A process's identity in lock words and process-table slots is its pid, its
// slots are not flagged slotRobust, and waiters find a dead holder by polling
// its liveness (processAlive: kill(pid, 0), and its start time where the
// system gives one) every pollInterval. The keeper here has the Linux one's
// shape, so that proc.go serves both; it has no thread and no list.
type keeper struct {
	tid    uint32 // this process's identity: its pid
	robust bool   // always false

	mu sync.Mutex // serializes attach and detach, as on Linux
}

var theKeeper = sync.OnceValue(func() *keeper {
	pid := os.Getpid()
	if pid <= 0 || pid > tidMask {
		// Linux, macOS and FreeBSD keep pids below 2^30.
		panic(fmt.Sprintf("processshared: pid %d does not fit in a lock word", pid))
	}
	return &keeper{tid: uint32(pid)}
})

func (k *keeper) link(node unsafe.Pointer)       {}
func (k *keeper) unlink(node unsafe.Pointer)     {}
func (k *keeper) setPending(node unsafe.Pointer) {}

// armPending does nothing: no kernel reports deaths here.
func armPending(word *uint32) (disarm func()) { return func() {} }
