//go:build !linux || processshared_nofutex

package futex

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Without futex_waitv, Waitv polls: it checks every word, spins a little
// (the word's writer may be running on another CPU and finish within
// microseconds), then naps with a doubling backoff, checking the words after
// every nap. A nap is a Go sleep, which parks the goroutine and holds no OS
// thread; on FreeBSD the nap sleeps in the kernel on the first word instead
// (see nap), so a Wake of that word ends it at once.
const (
	spinChecks = 16                    // checks, with runtime.Gosched between them, before the first nap
	firstNap   = 50 * time.Microsecond // the first nap
	maxNap     = 4 * time.Millisecond  // the longest nap: how late a poller may notice a change
)

// A Waiter is one word of a Waitv call: its address and the value it is
// expected to hold.
type Waiter struct {
	addr *uint32
	val  uint32
}

// Shared returns a Waiter for a word in shared memory.
func Shared(addr *uint32, val uint32) Waiter { return Waiter{addr, val} }

// Private returns a Waiter for a word in this process's private memory.
func Private(addr *uint32, val uint32) Waiter { return Waiter{addr, val} }

// HasWaitv reports whether Waitv may be used: always, here, since it polls.
func HasWaitv() bool { return true }

// Waitv waits until one of the words no longer holds its value, or deadline
// (Now nanoseconds; 0 means none) passes. It polls the words as described
// above, so a change is noticed up to maxNap late; a Wake ends the wait early
// only where nap sleeps in the kernel. Callers re-check their condition after
// every return.
func Waitv(ws []Waiter, deadline int64) Result {
	for range spinChecks {
		if changed(ws) {
			return Changed
		}
		runtime.Gosched()
	}
	for d := firstNap; ; d = min(2*d, maxNap) {
		if changed(ws) {
			return Changed
		}
		t := int64(d)
		if deadline != 0 {
			left := deadline - Now()
			if left <= 0 {
				return TimedOut
			}
			t = min(t, left)
		}
		if nap(&ws[0], t) {
			return Woken
		}
	}
}

func changed(ws []Waiter) bool {
	for i := range ws {
		if atomic.LoadUint32(ws[i].addr) != ws[i].val {
			return true
		}
	}
	return false
}

// start is the origin of Now. It is set once and never changes.
var start = time.Now()

// Now returns the time on a monotonic clock in nanoseconds, the clock the
// deadlines of Wait and Waitv are measured on.
func Now() int64 { return int64(time.Since(start)) }
