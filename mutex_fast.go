//go:build !race

package processshared

import "sync/atomic"

// Lock and Unlock come in two builds: here, fast paths small enough for the
// compiler to inline (a CAS and a load each); in mutex_race.go, the same
// with the race detector's annotations.
//
// The fast paths do not enter the segment (see Segment.enter): a Close may
// run at any point of them, and replace the mapping with its placeholder.
// Lock's CAS then succeeds on a zero page, so Lock checks closed after the
// CAS and never reports success on a closed segment. (A CAS that reached
// the segment before the placeholder took a real lock for a handle that is
// now closed: the others take it over as from a dead owner, as for a Lock
// that returned just before Close.) Unlock checks closed first; its CAS
// cannot succeed on a zero page, since an identity is never 0.

// Lock locks m. If m is held, through this handle or another, Lock blocks
// until it is free. If its holder died, Lock acquires it; Consistent then
// reports false. Lock panics if the segment is closed.
func (m *Mutex) Lock() {
	if !atomic.CompareAndSwapUint32(m.m.word, 0, m.m.id) || atomic.LoadUint32(m.m.closed) != 0 { // step: mutex.lock.fast_cas, mutex.lock.check_closed
		m.lockSlow()
	}
}

// Unlock unlocks m. It panics with a *NotOwnerError if this handle does not
// hold m, and if the segment is closed. With no waiters it makes no system
// call.
func (m *Mutex) Unlock() {
	if atomic.LoadUint32(m.m.closed) != 0 || !atomic.CompareAndSwapUint32(m.m.word, m.m.id, 0) { // step: mutex.unlock.check_closed, mutex.unlock.fast_cas
		m.unlockSlow()
	}
}
