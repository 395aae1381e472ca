package processshared

import (
	"context"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// A local is the process-local side of one shared object.
//
// A goroutine blocked in FUTEX_WAIT holds its OS thread, so if every blocked
// goroutine slept in the kernel, 1000 goroutines blocked on one lock would
// hold 1000 threads. Instead only the goroutine that holds token sleeps in
// the kernel for this object; the others of this process park on the token,
// a channel, which costs no thread. A process thus has at most one sleeper per
// object, and one FUTEX_WAKE wakes one process.
type local struct {
	token chan struct{}  // capacity 1: holding it means "I may sleep in the kernel"
	race  unsafe.Pointer // address the race detector annotations key on (race.go)
}

func newLocal(race unsafe.Pointer) *local {
	return &local{token: make(chan struct{}, 1), race: race}
}

// Spinning before a sleep pays off when the other party runs on another CPU
// and answers within a few microseconds (a sleep and wake-up cost 10–20 µs
// here, up to 70 µs when the sleeper's CPU has gone idle). An adaptive
// budget (halved after each failed spin, as in glibc's adaptive mutex) was
// tried and measured worse: in a ping-pong the answer often comes just after
// the spin, the budget collapses, and every hop pays for a sleep.
//
// The spin is bounded by time, not by a count of rounds, so that it means
// the same on any CPU. Measured with bench (ps_sem_pingpong and
// ps_cond_pingpong in one run with the C peers): 5 µs gave round trips of
// 4.3 and 15 µs, 10 µs gave 1.2 and 4.6 µs, 20 µs gave 1.0 and 3.6 µs. 10 µs
// is about half the cost of a blocking hand-off on this machine (11–22 µs),
// the classic bound for spinning before blocking.
const spinFor = 10 * time.Microsecond

// spin polls ready for up to spinFor and reports whether it became true.
func (l *local) spin(ready func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if ready() {
			return true
		}
		if i%16 == 0 {
			if i == 0 {
				start = time.Now()
			} else if time.Since(start) > spinFor {
				return false
			}
		}
		pause()
	}
}

// pause spends a few tens of nanoseconds inside a spin loop.
func pause() {
	var x uint32
	for range 20 {
		atomic.LoadUint32(&x)
	}
}

// acquire takes l's token. It returns ctx's error if ctx ends first, and
// ErrClosed if the segment is closed.
func (l *local) acquire(ctx context.Context, s *Segment) error {
	select {
	case l.token <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.token <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing():
		return ErrClosed
	}
}

func (l *local) release() { <-l.token }

// A waitCancel is a private futex word that a sleeper includes in its
// futex_waitv set, so that cancellation and Close wake exactly that sleeper.
type waitCancel struct {
	word uint32 // accessed atomically only
}

func (c *waitCancel) fire() {
	atomic.AddUint32(&c.word, 1)
	futex.WakePrivate(&c.word, 1)
}

// pollInterval bounds each kernel sleep when futex_waitv is not available,
// or when the holder's death cannot be observed through a futex: the sleeper
// then checks for cancellation and the holder's liveness this often.
const pollInterval = 10 * time.Millisecond

// sleep blocks until the shared word no longer holds val, or it is woken; or
// until one of lives (the live words of processes whose death the caller
// waits for, at most maxLives) changes; or until ctx is done or the segment
// is closed. It returns ctx.Err(), ErrClosed, or nil; callers re-check their
// condition after nil, which may be spurious. With poll set, or where the
// kernel cannot report deaths, it returns at least every pollInterval. The
// caller holds s.enter().
func (s *Segment) sleep(ctx context.Context, word *uint32, val uint32, lives []liveRef, poll bool) error {
	return s.sleepv(ctx, word, val, lives, poll || s.needPoll())
}

// sleepv is sleep for a caller that watches no holder's death through the
// kernel's robust list, or that does not need to: it polls only when poll
// is set (or without futex_waitv).
func (s *Segment) sleepv(ctx context.Context, word *uint32, val uint32, lives []liveRef, poll bool) error {
	// The word's value is taken before c is published: once addCancel
	// returns, Close (or the context) may fire c at any moment, and a value
	// read after that fire would let the sleep below miss it.
	var c waitCancel
	const cval = 0 // c.word's value as made, before anyone can fire c
	if !s.addCancel(&c) {
		return ErrClosed
	}
	defer s.removeCancel(&c)
	if done := ctx.Done(); done != nil {
		stop := context.AfterFunc(ctx, c.fire)
		defer stop()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var deadline int64
	if d, ok := ctx.Deadline(); ok {
		deadline = futex.Deadline(d)
	}
	if poll || len(lives) > maxLives {
		deadline = pollDeadline(deadline)
		lives = lives[:min(len(lives), maxLives)]
	}
	if futex.HasWaitv() {
		var ws [2 + maxLives]futex.Waiter
		ws[0] = futex.Shared(word, val)
		ws[1] = futex.Private(&c.word, cval)
		for i, l := range lives {
			ws[2+i] = futex.Shared(l.word, l.val)
		}
		futex.Waitv(ws[:2+len(lives)], deadline)
	} else {
		// Without futex_waitv (Linux before 5.16, qemu-user) nothing
		// wakes this sleep when c fires or a watched process dies: poll.
		deadline = pollDeadline(deadline)
		futex.Wait(word, val, deadline)
	}
	if testHookWoken != nil {
		testHookWoken()
	}
	for _, l := range lives {
		if atomic.LoadUint32(l.word) != l.val {
			// The kernel wakes one sleeper on a dead process's word, and
			// this may be it: wake the others, who may wait for other
			// locks it held. Whatever else changed the word (a Close, a
			// newcomer claiming the slot) woke them all already, and
			// waking them again costs only this rare path.
			wakeAll(l.word) // step: wait.pass_death
		}
	}
	if s.isClosed() {
		return ErrClosed
	}
	return ctx.Err()
}

// testHookWoken, if set (by tests only), runs when a sleeper returns from
// the kernel, before it looks at anything.
var testHookWoken func()

// A liveRef is a process's live word and the value it was seen to hold.
type liveRef struct {
	word *uint32
	val  uint32
}

// maxLives bounds the live words one sleep watches.
const maxLives = 8

// watch prepares to sleep until the holder h (an identity found alive by
// lookup) dies: it sets liveWaiters in h's live word, so that the kernel
// wakes a sleeper when it sets liveDied, and then checks that the slot's
// generation is still h's, so that a newcomer claiming the slot meanwhile
// either is seen here or sees liveWaiters and wakes the sleep (see "A
// slot's claim" in proc.go). It returns false if anything changed
// meanwhile (re-check and retry).
func watch(h holder) (liveRef, bool) {
	if h.val&liveWaiters == 0 {
		if !atomic.CompareAndSwapUint32(h.live, h.val, h.val|liveWaiters) { // step: wait.watch_set
			return liveRef{}, false
		}
		h.val |= liveWaiters
	}
	if atomic.LoadUint32(h.gen) != h.g { // step: wait.watch_gen
		return liveRef{}, false
	}
	return liveRef{h.live, h.val}, true
}

func pollDeadline(deadline int64) int64 {
	p := futex.Now() + int64(pollInterval)
	if deadline == 0 || p < deadline {
		return p
	}
	return deadline
}

// needPoll reports whether sleepers must poll for holders' deaths: the kernel
// does not report them through this process's robust list.
func (s *Segment) needPoll() bool { return !theKeeper().robust }

// wakeAll wakes every sleeper on w.
func wakeAll(w *uint32) { futex.Wake(w, 1<<30) }
