package processshared

import (
	"context"
	"fmt"
)

// Once layout, after the locked state's header (lockedwait.go; accessed
// atomically only, written only under the lock, journaled):
//
//	128  state     onceIdle, onceRunning or onceDone
//	132  runner    the identity of the handle running f (onceRunning)
//	136  failures  runs that returned an error, panicked or died
//
// Transitions, each one change under the lock:
//
//	claim     idle → running, runner = self; f runs, told retry if
//	          failures > 0
//	finish    running (self) → done, f returned nil
//	fail      running (self) → idle, failures + 1: f returned an error or
//	          panicked
//	takeover  running, runner dead → idle, failures + 1, by the next caller
//	          that finds it so (then it claims)
//
// Callers that find it running (a live runner) wait for the state to change.
const (
	onceState    = lwData
	onceRunner   = lwData + 4
	onceFailures = lwData + 8
	onceSize     = lwData + 64

	onceIdle    = 0
	onceRunning = 1
	onceDone    = 2
)

// A Once runs a function exactly once successfully among all the processes
// that share it. Obtain one with NewOnce; the zero value is not usable. A
// Once must not be copied.
//
// In the terminology of the Go memory model, the return of the successful
// call of f, in any process, synchronizes before the return of every Do.
//
// If the process running f dies (or closes its Segment) before f returns,
// or f returns an error or panics, f has not run: the next caller, in any
// process, runs it, and is told (retry true), so that it can clean up what
// the failed run left half done. Callers blocked meanwhile keep waiting and
// one of them runs it. A Once is never stuck behind a dead runner.
type Once struct {
	o lockedState
}

// NewOnce finds the Once called name in s, creating it (not done) if it
// does not exist.
func NewOnce(s *Segment, name string) (*Once, error) {
	off, err := s.object(name, KindOnce, 0, onceSize, nil)
	if err != nil {
		return nil, err
	}
	return &Once{o: newLockedState(s, off, onceSize, "once", name)}, nil
}

// Drop releases this handle on o: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Drop is idempotent and returns nil.
func (o *Once) Drop() error { return o.o.drop() }

// Name returns the Once's name in its segment.
func (o *Once) Name() string { return o.o.name }

// Do is DoContext with a context that never ends.
func (o *Once) Do(f func(retry bool) error) error { return o.DoContext(context.Background(), f) }

// DoContext calls f if no call of f has succeeded yet, in any process, and
// none is running; it blocks while another process (or goroutine) runs f,
// then returns nil if that run succeeded, or runs f itself if it failed.
// retry tells f that an earlier run failed (returned an error, panicked,
// or its process died), and may have left work half done.
//
// It returns nil once f has succeeded (here or elsewhere); f's error if
// this call ran f and f failed (the next caller then runs it); ctx.Err()
// if ctx ends while it waits (ctx does not reach f, which runs to its end);
// ErrClosed if the segment is closed. A panic in f counts as a failure and
// is passed on. Calling Do of the same Once from f deadlocks, as with
// sync.Once.
func (o *Once) DoContext(ctx context.Context, f func(retry bool) error) error {
	claimed, retry, err := o.claim(ctx)
	if err != nil || !claimed {
		return err
	}
	return o.run(f, retry)
}

// claim waits until f has succeeded (claimed false) or this call may run
// it (claimed true). f runs outside Segment.enter, so that a Close during
// f does not wait for f.
func (o *Once) claim(ctx context.Context) (claimed, retry bool, err error) {
	if !o.o.s.enter() { // step: lw.wait.enter
		return false, false, ErrClosed
	}
	defer o.o.s.exit()
	if o.o.load(onceState) == onceDone {
		return false, false, o.done()
	}
	if err := ctx.Err(); err != nil {
		return false, false, err
	}
	err = o.o.wait(ctx, func() (bool, error) {
		switch st := o.o.load(onceState); st {
		case onceDone:
			return true, nil
		case onceRunning:
			if o.o.alive(o.o.load(onceRunner)) {
				return false, nil
			}
			o.o.set(onceState, onceIdle)
			o.o.set(onceFailures, o.o.load(onceFailures)+1)
			o.o.commit()
			fallthrough
		case onceIdle:
			retry = o.o.load(onceFailures) != 0
			o.o.set(onceRunner, o.o.s.id)
			o.o.set(onceState, onceRunning)
			o.o.commit()
			claimed = true
			return true, nil
		default:
			return false, fmt.Errorf("%w: once %q has state %d", ErrCorrupt, o.o.name, st)
		}
	}, nil, nil)
	return claimed, retry, err
}

func (o *Once) done() error {
	if raceEnabled {
		raceAcquire(o.o.lock.l.race)
	}
	return nil
}

// run runs f, claimed by this handle, and records how it ended.
func (o *Once) run(f func(bool) error, retry bool) (err error) {
	ok := false
	defer func() {
		end := uint32(onceIdle)
		if ok {
			end = onceDone
		}
		if !o.o.s.enter() {
			if err == nil {
				err = ErrClosed // the others will run f again
			}
			return
		}
		defer o.o.s.exit()
		cerr := o.o.change(func() (bool, error) {
			if o.o.load(onceState) != onceRunning || o.o.load(onceRunner) != o.o.s.id {
				// Taken over: another process judged this one dead
				// (it closed its Segment under f).
				return false, nil
			}
			o.o.set(onceState, end)
			if !ok {
				o.o.set(onceFailures, o.o.load(onceFailures)+1)
			}
			return true, nil
		})
		if err == nil && cerr != nil {
			err = cerr
		}
	}()
	err = f(retry) // step: lw.run
	ok = err == nil
	return err
}

// Done reports whether f has succeeded, at the instant of the call. It
// panics if the segment is closed.
func (o *Once) Done() bool {
	if !o.o.s.enter() {
		closedPanic("Done", "once", o.o.name, o.o.s)
	}
	defer o.o.s.exit()
	return o.o.load(onceState) == onceDone
}
