//go:build !race

package processshared

import "sync/atomic"

// Lock and Unlock come in two builds: here, fast paths small enough for the
// compiler to inline (one load and one CAS each); in mutex_race.go, the same
// with the race detector's annotations.

// Lock locks m. If m is held, by this process or another, Lock blocks until
// it is free. If its holder died, Lock acquires it; Consistent then reports
// false. Lock panics if the segment is closed.
func (m *Mutex) Lock() {
	if (atomic.LoadUint32(m.m.closed) != 0) || !atomic.CompareAndSwapUint32(m.m.word, 0, m.m.tid) {
		m.lockSlow()
	}
}

// Unlock unlocks m. It panics with a *NotOwnerError if this process does not
// hold m. With no waiters it makes no system call.
func (m *Mutex) Unlock() {
	if (atomic.LoadUint32(m.m.closed) != 0) || !atomic.CompareAndSwapUint32(m.m.word, m.m.tid, 0) {
		m.m.unlock()
	}
}
