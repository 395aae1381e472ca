package processshared

import (
	"context"
	"sync/atomic"
	"time"

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
	token chan struct{} // capacity 1: holding it means "I may sleep in the kernel"
	race  uint64        // address the race detector annotations key on
}

func newLocal() *local { return &local{token: make(chan struct{}, 1)} }

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
// until live (the holder's live word; nil if none) no longer holds liveVal;
// or until ctx is done or the segment is closed. It returns ctx.Err(),
// ErrClosed, or nil; callers re-check their condition after nil, which may
// be spurious. The caller holds s.enter().
func (s *Segment) sleep(ctx context.Context, word *uint32, val uint32, live *uint32, liveVal uint32) error {
	var c waitCancel
	if !s.addCancel(&c) {
		return ErrClosed
	}
	defer s.removeCancel(&c)
	cval := atomic.LoadUint32(&c.word)
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
	if futex.HasWaitv() {
		ws := [3]futex.Waiter{
			futex.Shared(word, val),
			futex.Private(&c.word, cval),
		}
		n := 2
		if live != nil {
			ws[2] = futex.Shared(live, liveVal)
			n = 3
		} else if s.needPoll() {
			deadline = pollDeadline(deadline)
		}
		futex.Waitv(ws[:n], deadline)
	} else {
		futex.Wait(word, val, pollDeadline(deadline))
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
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
