//go:build race

package processshared

import "sync/atomic"

// Lock locks m. If m is held, through this handle or another, Lock blocks
// until it is free. If its holder died, Lock acquires it; Consistent then
// reports false. Lock panics if the segment is closed.
func (m *Mutex) Lock() { m.lockSlow() }

// Unlock unlocks m. It panics with a *NotOwnerError if this handle does not
// hold m, and if the segment is closed. With no waiters it makes no system
// call.
func (m *Mutex) Unlock() {
	if raceEnabled {
		raceReleaseMerge(m.m.l.race)
	}
	if atomic.LoadUint32(m.m.closed) != 0 || !atomic.CompareAndSwapUint32(m.m.word, m.m.id, 0) { // step: mutex.unlock.check_closed, mutex.unlock.fast_cas
		m.unlockSlow()
	}
}
