package processshared

import (
	"context"
	"sync/atomic"
)

// The word of an Event (32 bits, accessed atomically only; the futex word
// sleepers wait on):
//
//	bit  0     evSet: the event is set
//	bits 1-30  gen: bumped by every Set that finds the event not set (it
//	           wraps; compared for equality only)
//	bit  31    evSleepers: a process may be sleeping on the word
//
// Transitions (steps of internal/model's EventModel, "event."):
//
//	Set      clear → set, gen+1, sleepers cleared (one CAS); then, if
//	         sleepers was set, FUTEX_WAKE all
//	Reset    set → clear (CAS), keeping gen and sleepers
//	Wait     manual-reset: returns once the word is set or gen differs
//	         from the gen it saw first (a Set came, even if a Reset
//	         followed before the waiter ran: everyone waiting at a Set is
//	         released by it); auto-reset: set → clear (CAS) consumes the
//	         Set, and the consumer returns
//	sleep    sleepers bit set (CAS), then futex_waitv on the word with the
//	         value it holds, the cancel word, and the live words of every
//	         other attached process
//
// Why the sleepers bit: a Set with nobody asleep makes no system call. Why
// watch every other process: a setter killed between its CAS and its
// FUTEX_WAKE leaves the word set and the sleepers asleep; its death wakes
// them, and they look again.
//
// Every wake is a wake of all sleepers, and an auto-reset waiter takes a
// Set only by its CAS, as its last step before returning: a sleeper that
// is woken and gives up (cancelled, closed) has taken nothing, and the
// sleepers it leaves asleep were woken with it. Nothing to pass on.
const (
	eventSize  = 8
	evWord     = 0
	evSet      = 1
	evGenOne   = 2
	evGenMask  = 0x7ffffffe
	evSleepers = 0x80000000

	eventManual = 0 // the directory's parameter of a manual-reset Event
	eventAuto   = 1 // of an auto-reset one
)

// An Event is a flag that processes wait for, in the manner of Windows'
// named events and Python's threading.Event. It is manual-reset (Set
// releases every waiter, and the event stays set until Reset) or
// auto-reset (each Set releases one waiter, which resets it; with no
// waiter it stays set until one comes), chosen when it is created. Obtain
// one with NewEvent; the zero value is not usable. An Event must not be
// copied. There is no Pulse: its lost wake-ups are the reason Windows
// deprecated it.
//
// In the terminology of the Go memory model, a call to Set, in any
// process, synchronizes before the return of every Wait that it releases.
//
// Processes that die hold nothing: a setter killed at any instant either
// set the event or did not, and a waiter killed after it consumed an
// auto-reset Set takes that Set with it, as if it had returned.
type Event struct {
	s    *Segment
	name string
	word *uint32
	l    *local
	auto bool
	off  uint64
}

// NewEvent finds the Event called name in s, creating it (not set) if it
// does not exist. autoReset chooses an auto-reset event; an existing event
// opened with the other choice gives an error matching ErrMismatch.
func NewEvent(s *Segment, name string, autoReset bool) (*Event, error) {
	param := uint32(eventManual)
	if autoReset {
		param = eventAuto
	}
	off, err := s.object(name, KindEvent, param, eventSize, nil)
	if err != nil {
		return nil, err
	}
	return &Event{s: s, name: name, word: u32at(s.mem, off+evWord), l: s.local(off), auto: autoReset, off: off}, nil
}

// Drop releases this handle on e: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Drop is idempotent and returns nil.
func (e *Event) Drop() error {
	if s := e.s; !s.drop {
		e.s = s.dropped()
		s.unpin(e.off)
	}
	return nil
}

// Name returns the Event's name in its segment.
func (e *Event) Name() string { return e.name }

// AutoReset reports whether e is an auto-reset event.
func (e *Event) AutoReset() bool { return e.auto }

// Set sets e, releasing every waiter (manual-reset) or one (auto-reset). It
// makes no system call when nobody sleeps on e. It returns ErrClosed if the
// segment is closed.
func (e *Event) Set() error {
	if !e.s.enter() { // step: event.set.enter
		return ErrClosed
	}
	defer e.s.exit()
	if raceEnabled {
		raceReleaseMerge(e.l.race)
	}
	for {
		v := atomic.LoadUint32(e.word) // step: event.set.load
		if v&evSet != 0 {
			return nil
		}
		nv := (v+evGenOne)&evGenMask | evSet
		if atomic.CompareAndSwapUint32(e.word, v, nv) { // step: event.set.cas
			if testHookEventSet != nil {
				testHookEventSet()
			}
			if v&evSleepers != 0 {
				wakeAll(e.word) // step: event.set.wake
			}
			return nil
		}
	}
}

// Reset clears e. It returns ErrClosed if the segment is closed.
func (e *Event) Reset() error {
	if !e.s.enter() {
		return ErrClosed
	}
	defer e.s.exit()
	atomic.AndUint32(e.word, ^uint32(evSet)) // step: event.reset
	return nil
}

// IsSet reports whether e is set, at the instant of the call. It panics if
// the segment is closed.
func (e *Event) IsSet() bool {
	if !e.s.enter() {
		closedPanic("IsSet", "event", e.name, e.s)
	}
	defer e.s.exit()
	return atomic.LoadUint32(e.word)&evSet != 0
}

// Wait is WaitContext with a context that never ends.
func (e *Event) Wait() error { return e.WaitContext(context.Background()) }

// WaitContext blocks until e is set (manual-reset), or until it takes a Set
// (auto-reset: the event is then clear again). A manual-reset waiter is
// released by any Set that comes while it waits, even if a Reset follows
// at once. It returns ctx.Err() if ctx ends first (having taken no Set),
// and ErrClosed if the segment is closed.
func (e *Event) WaitContext(ctx context.Context) (err error) {
	if !e.s.enter() { // step: event.wait.enter
		return ErrClosed
	}
	defer e.s.exit()
	defer e.s.guard(&err, guarded())
	v := atomic.LoadUint32(e.word) // step: event.wait.load
	if e.take(v) {                 // step: event.wait.take
		return e.acquired()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	gen := v & evGenMask
	ready := func() bool {
		v := atomic.LoadUint32(e.word)
		return v&evSet != 0 || !e.auto && v&evGenMask != gen
	}
	// Spin briefly: a Set from another CPU usually comes soon. The loop
	// looks again whatever the spin saw.
	e.l.spin(ready) // step: event.wait.spin
	var lives []liveRef
	for {
		v := atomic.LoadUint32(e.word)                  // step: event.wait.load
		if e.take(v) || !e.auto && v&evGenMask != gen { // step: event.wait.take
			return e.acquired()
		}
		if v&evSleepers == 0 {
			if !atomic.CompareAndSwapUint32(e.word, v, v|evSleepers) { // step: event.wait.set_sleepers
				continue
			}
			v |= evSleepers
		}
		var ok, poll bool
		lives, ok, poll = e.s.watchAll(lives[:0]) // step: event.wait.watch
		if !ok {
			continue
		}
		if err := e.s.sleep(ctx, e.word, v, lives, poll); err != nil {
			return err
		}
	}
}

// take reports whether the word v lets a waiter return: it is set, and,
// for an auto-reset event, this waiter's CAS cleared it.
func (e *Event) take(v uint32) bool {
	if v&evSet == 0 {
		return false
	}
	if !e.auto {
		return true
	}
	return atomic.CompareAndSwapUint32(e.word, v, v&^evSet)
}

func (e *Event) acquired() error {
	if raceEnabled {
		raceAcquire(e.l.race)
	}
	return nil
}

// testHookEventSet, if set (by tests only), runs in Set between its CAS and
// its wake.
var testHookEventSet func()
