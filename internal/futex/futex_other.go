//go:build (!linux && !freebsd) || processshared_nofutex

package futex

import "time"

// This system offers no kernel wait on a word of shared memory that Go may
// call without cgo (on macOS the calls that do, os_sync_wait_on_address and
// __ulock_wait, are reached only through libSystem, and Go does not allow raw
// system calls there). Waiting is polling; see poll.go.

// Wait sleeps while *addr == val, until deadline (Now nanoseconds; 0 means
// none). It polls the word (see Waitv): a change is noticed up to 4ms late.
func Wait(addr *uint32, val uint32, deadline int64) Result {
	return Waitv([]Waiter{{addr, val}}, deadline)
}

// Wake does nothing: waiters poll. It returns 0.
func Wake(addr *uint32, n int) int { return 0 }

// WakePrivate does nothing: waiters poll. It returns 0.
func WakePrivate(addr *uint32, n int) int { return 0 }

// nap sleeps for t nanoseconds. It reports false: it does not know whether
// the word was woken.
func nap(w *Waiter, t int64) bool {
	time.Sleep(time.Duration(t))
	return false
}
