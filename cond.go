package processshared

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/processshared/processshared/internal/futex"
)

// Cond layout. The state word (64 bits, accessed atomically only) packs
//
//	bits 0-31   seq      the futex word: bumped by every Signal and Broadcast
//	                     that finds waiters
//	bits 32-47  waiters  goroutines registered in Wait, in all processes
//	bits 48-63  signals  wake-ups granted by Signal, not yet taken
//
// and at offset 8 (32 bits) bcast: the seq value of the last Broadcast, and
// at offset 12 (32 bits) sleepers: waiters about to sleep or sleeping in the
// kernel. Signal and Broadcast make a FUTEX_WAKE only when sleepers is not 0:
// a waiter still spinning in user space sees seq move without a system call.
// A waiter counts itself before its FUTEX_WAIT checks seq, and a signaller
// changes seq before it reads sleepers, so one of them always sees the
// other.
//
// A waiter registers (waiters+1) and notes seq while it still holds the
// mutex, then unlocks and sleeps while seq is unchanged. A Signal between the
// unlock and the sleep changes seq, so the sleep returns at once: no lost
// wake-up (the Ruby gem's cond registered after unlocking and lost exactly
// these). A woken waiter returns if a Broadcast happened since it registered
// (bcast is newer than its seq), or if it can take one of the signals, which
// it may only once seq has moved past the value it registered at; otherwise
// it sleeps again. Signal grants at most one wake-up per waiter
// (signals ≤ waiters), so a Signal with no waiter is not remembered, and
// extra Signals leave no stray wake-ups behind. Granting a count rather than
// "whoever wakes" keeps a Signal from releasing every waiter of a process.
//
// Only one goroutine per process sleeps in the kernel (see local); Signal
// wakes one process, Broadcast wakes every process once.
const (
	condSize     = 64
	condState    = 0
	condBcast    = 8
	condSleepers = 12

	condWaiter = 1 << 32
	condSignal = 1 << 48
	condMax    = 1<<16 - 1
)

// A Cond is a condition variable shared by processes, bound to a Mutex.
// Obtain one with NewCond; the zero value is not usable. A Cond must not be
// copied.
//
// A Signal or Broadcast synchronizes before the return of any Wait it wakes.
//
// Waits may return spuriously; wait in a loop that checks the condition, as
// with sync.Cond. A waiting process that dies leaves the Cond usable: Signal
// and Broadcast never block. (It stays counted as a waiter, so one later
// Signal may go to nobody or become a spurious wake-up.)
type Cond struct {
	L *Mutex // the mutex held while observing or changing the condition

	s        *Segment
	name     string
	state    *uint64
	seq      *uint32
	bcast    *uint32
	sleepers *uint32
	l        *local
}

// NewCond finds the Cond called name in s, creating it if it does not
// exist, and binds it to m, which must be a Mutex of the same segment.
func NewCond(s *Segment, name string, m *Mutex) (*Cond, error) {
	if m == nil || m.m.s != s {
		return nil, fmt.Errorf("processshared: cond %q: the mutex must belong to the same Segment", name)
	}
	off, err := s.object(name, KindCond, 0, condSize, nil)
	if err != nil {
		return nil, err
	}
	return &Cond{
		L:        m,
		s:        s,
		name:     name,
		state:    u64at(s.mem, off+condState),
		seq:      u32at(s.mem, off+condState), // the low half, on a little-endian machine
		bcast:    u32at(s.mem, off+condBcast),
		sleepers: u32at(s.mem, off+condSleepers),
		l:        s.local(off),
	}, nil
}

// Name returns the Cond's name in its segment.
func (c *Cond) Name() string { return c.name }

// Wait atomically unlocks c.L and suspends the calling goroutine until woken
// by Signal or Broadcast; it locks c.L again before returning. If the
// mutex's previous holder died meanwhile, Wait still returns holding it, and
// c.L.Consistent reports false. It panics if the segment is closed or its
// file was truncated under it; WaitContext returns those as errors.
func (c *Cond) Wait() {
	if err := c.wait(context.Background()); err != nil {
		if _, dead := err.(*OwnerDeadError); !dead {
			panic(fmt.Sprintf("processshared: Wait on cond %q: %v", c.name, err))
		}
	}
}

// WaitContext is Wait that gives up when ctx is done. It returns holding
// c.L, except after Close. It returns nil when woken; ctx.Err() when ctx
// ended first; an *OwnerDeadError (matching ErrOwnerDead) when c.L's
// previous holder died; or ErrClosed when the segment is closed, before or
// during the wait (c.L is then held by a dead owner, to the others).
func (c *Cond) WaitContext(ctx context.Context) error { return c.wait(ctx) }

// WaitTimeout is Wait with a timeout. It reports whether it was woken (true)
// or timed out (false), and always returns holding c.L.
func (c *Cond) WaitTimeout(d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := c.wait(ctx)
	if err == context.DeadlineExceeded {
		return false
	}
	if err != nil {
		if _, dead := err.(*OwnerDeadError); !dead {
			panic(fmt.Sprintf("processshared: WaitTimeout on cond %q: %v", c.name, err))
		}
	}
	return true
}

func (c *Cond) wait(ctx context.Context) (err error) {
	if !c.s.enter() {
		return ErrClosed
	}
	defer c.s.exit()
	defer c.s.guard(&err, guarded())
	var st uint64
	for {
		st = atomic.LoadUint64(c.state)
		if st>>32&condMax == condMax {
			// No room to register: 65535 waiters, or a count corrupted
			// by another process. Wait unregistered, as a spurious
			// wake-up after a short sleep: callers re-check their
			// condition, so they poll rather than fail.
			return c.waitUnregistered(ctx)
		}
		if atomic.CompareAndSwapUint64(c.state, st, st+condWaiter) {
			break
		}
	}
	c.L.m.unlock()
	err = c.sleep(ctx, uint32(st))
	if err == ErrClosed {
		return err // the handle is gone, and its locks with it
	}
	if lerr := c.L.m.lock(context.Background()); lerr != nil && err == nil {
		err = lerr
	}
	return err
}

// waitUnregistered unlocks c.L, sleeps for pollInterval or until ctx is
// done, and locks c.L again.
func (c *Cond) waitUnregistered(ctx context.Context) error {
	c.L.m.unlock()
	t := time.NewTimer(pollInterval)
	defer t.Stop()
	var err error
	select {
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if lerr := c.L.m.lock(context.Background()); lerr != nil {
		return lerr
	}
	return err
}

// sleep waits, registered at seq s0, until this waiter may return.
func (c *Cond) sleep(ctx context.Context, s0 uint32) error {
	// Spin briefly first: the signaller may be running on the other CPU.
	if c.l.spin(func() bool { return atomic.LoadUint32(c.seq) != s0 }) && c.try(s0) {
		return nil
	}
	if !c.s.enter() {
		c.leave()
		return ErrClosed
	}
	defer c.s.exit()
	if err := c.l.acquire(ctx, c.s); err != nil {
		c.leave()
		return err
	}
	defer c.l.release()
	for {
		// try and the sleep must judge the same state: a Signal between
		// a separate check and a later read of seq would be lost.
		ok, st := c.tryState(s0)
		if ok {
			return nil
		}
		atomic.AddUint32(c.sleepers, 1)
		err := c.s.sleep(ctx, c.seq, uint32(st), nil, false)
		atomic.AddUint32(c.sleepers, ^uint32(0))
		if err != nil {
			if c.try(s0) { // woken and cancelled at once: take the wake-up
				return nil
			}
			c.leave()
			return err
		}
	}
}

// try returns true, unregistering the caller, if a Broadcast happened since
// the caller registered at seq s0 or a signal can be taken.
func (c *Cond) try(s0 uint32) bool {
	ok, _ := c.tryState(s0)
	return ok
}

// tryState is try that also returns the state it last judged by, when it
// returns false.
func (c *Cond) tryState(s0 uint32) (bool, uint64) {
	for {
		st := atomic.LoadUint64(c.state)
		if int32(atomic.LoadUint32(c.bcast)-s0) > 0 {
			if atomic.CompareAndSwapUint64(c.state, st, st-condWaiter) {
				c.acquired()
				return true, st
			}
			continue
		}
		// Only a waiter that registered before the latest Signal may take
		// a signal: otherwise a goroutine that signals and then waits
		// again would take back its own signal, and the waiter it was
		// meant for would sleep on (a lost wake-up in all but name).
		if st>>48 == 0 || uint32(st) == s0 {
			return false, st
		}
		if atomic.CompareAndSwapUint64(c.state, st, st-condWaiter-condSignal) {
			c.acquired()
			return true, st
		}
	}
}

func (c *Cond) acquired() {
	if raceEnabled {
		raceAcquire(c.l.race)
	}
}

// leave unregisters a waiter that gives up. If signals remain for the
// waiters left, it passes a wake-up on, since it may have been the one woken.
func (c *Cond) leave() {
	for {
		st := atomic.LoadUint64(c.state)
		w := st>>32&condMax - 1
		sig := min(st>>48, w)
		nst := uint64(uint32(st)) | w<<32 | sig<<48
		if atomic.CompareAndSwapUint64(c.state, st, nst) {
			if sig > 0 {
				c.wake(1)
			}
			return
		}
	}
}

// Signal wakes one goroutine waiting on c, in any process, if there is one.
// It is allowed but not required for the caller to hold c.L. It panics if
// the segment is closed.
func (c *Cond) Signal() {
	if !c.s.enter() {
		closedPanic("Signal", "cond", c.name, c.s)
	}
	defer c.s.exit()
	if raceEnabled {
		raceReleaseMerge(c.l.race)
	}
	for {
		st := atomic.LoadUint64(c.state)
		w, sig := st>>32&condMax, st>>48
		if sig >= w {
			return // nobody waiting, or every waiter already granted a wake-up
		}
		nst := st&^0xffffffff | uint64(uint32(st)+1)
		if atomic.CompareAndSwapUint64(c.state, st, nst+condSignal) {
			c.wake(1)
			return
		}
	}
}

// Broadcast wakes all goroutines waiting on c, in every process. It is
// allowed but not required for the caller to hold c.L. It panics if the
// segment is closed.
func (c *Cond) Broadcast() {
	if !c.s.enter() {
		closedPanic("Broadcast", "cond", c.name, c.s)
	}
	defer c.s.exit()
	if raceEnabled {
		raceReleaseMerge(c.l.race)
	}
	for {
		st := atomic.LoadUint64(c.state)
		if st>>32&condMax == 0 {
			return
		}
		seq := uint32(st) + 1
		atomic.StoreUint32(c.bcast, seq)
		nst := st>>32&condMax<<32 | uint64(seq) // signals cleared: everyone goes
		if atomic.CompareAndSwapUint64(c.state, st, nst) {
			c.wake(1 << 30)
			return
		}
	}
}

// wake wakes up to n sleepers in the kernel, if there are any.
func (c *Cond) wake(n int) {
	if atomic.LoadUint32(c.sleepers) != 0 {
		futex.Wake(c.seq, n)
	}
}
