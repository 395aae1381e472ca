//go:build race

package processshared

// Lock locks m. If m is held, by this process or another, Lock blocks until
// it is free. If its holder died, Lock acquires it; Consistent then reports
// false. Lock panics if the segment is closed.
func (m *Mutex) Lock() { m.lockSlow() }

// Unlock unlocks m. It panics with a *NotOwnerError if this process does not
// hold m. With no waiters it makes no system call.
func (m *Mutex) Unlock() { m.m.unlock() }
