// Package futex is the kernel wait/wake interface processshared builds on: a
// goroutine sleeps while a 32-bit word in shared memory holds an expected
// value, and another process wakes it after changing the word.
//
// Each system gets what it offers:
//
//   - Linux (futex_linux.go): FUTEX_WAIT_BITSET and FUTEX_WAKE on words in
//     MAP_SHARED memory, futex_waitv(2) to sleep on several words at once, and
//     set_robust_list(2). None of the shared-word operations use
//     FUTEX_PRIVATE_FLAG: the words live in memory mapped by several
//     processes, so the kernel must key them on the backing page, not on this
//     process's address space. The cancellation words of Waitv are
//     process-private and say so in their flags.
//   - FreeBSD (futex_freebsd.go): _umtx_op(2) UMTX_OP_WAIT_UINT and
//     UMTX_OP_WAKE, the process-shared forms, for Wait and Wake; Waitv sleeps
//     in the kernel on its first word and polls the others (poll.go).
//   - Every other system, and Linux built with the processshared_nofutex tag
//     (futex_other.go, poll.go): no kernel wait at all. Wait and Waitv poll
//     the words, spinning briefly and then sleeping with a backoff from 50µs
//     to 4ms, and keep every deadline; Wake does nothing.
//
// Every caller re-checks its condition after a wait returns, so a spurious
// return, or a late one by up to one backoff step, is correct everywhere.
package futex

import "time"

// Result says why a wait returned.
type Result int

const (
	Woken    Result = iota // woken by a Wake, a signal, or spuriously
	Changed                // a word no longer held the expected value (EAGAIN)
	TimedOut               // the deadline passed
)

// Deadline converts a wall-clock deadline (as from context.Context.Deadline) to
// a time on the clock Now reads. The zero time gives 0 (no deadline).
func Deadline(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	d := time.Until(t)
	if d < 0 {
		d = 0
	}
	return Now() + int64(d) + 1
}
