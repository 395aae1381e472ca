package processshared

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// The shared part of Barrier, WaitGroup and Once: a state kept under a
// robust internal lock, a journal that makes each change of it
// all-or-nothing when the changer dies, and a sequence word that sleepers
// wait on. Layout of that part (accessed atomically only):
//
//	0    lock   a mutexCore serializing every change of the state
//	64   seq    bumped, under the lock, by every change a waiter may wait
//	            for; the futex word sleepers wait on
//	68   jn     journal: entries 0 to jn-1 below are valid
//	72   jent   journal: up to lwJournalMax {offset, old value} pairs,
//	            the words a change in progress has written and their values
//	            before it
//	128  the primitive's own words
//
// The protocol (steps of internal/model's LockedModel, "lw."):
//
//	waiter:  watch    watch every other attached process's live word
//	                  (watchAll; it polls while a slot is free or dead)
//	         locked   take the lock
//	         check    look at the state (cond): done → unlock and return;
//	                  else read seq (v)
//	         unlock   release the lock
//	         sleep    futex_waitv on seq = v, the cancel word and the live
//	                  words; when woken, peek (if the primitive has one:
//	                  done without the lock), else back to watch
//	         give up  ctx done: take the lock, look once more (a change
//	                  that came meanwhile wins), else run the primitive's
//	                  giveUp (Barrier: break it), unlock, wake
//	changer: locked   take the lock; change the state (journaled), bump seq
//	         unlock   release the lock
//	         wake     FUTEX_WAKE every sleeper on seq
//
// Why no wake-up is lost: a waiter reads seq under the lock and sleeps only
// while seq still holds that value; a changer bumps seq under the lock, so
// either the waiter's look saw the change, or its sleep sees seq differ, or
// the changer's wake finds it asleep. A changer killed between its unlock
// and its wake is a death the sleeper watches (every other attached process
// is watched, since any of them may be the next changer), and the sleeper
// then looks again; one killed inside the lock leaves a journal, which the
// next locker rolls back (enter), and its death wakes the sleepers too.
//
// Every wake is a wake of all sleepers on seq, and a waiter takes nothing
// from the wake itself: what it waits for is in the state, and it looks at
// the state under the lock. So a waiter that is woken and then gives up
// (cancelled, closed) has consumed no wake-up that another needs: nothing
// to pass on. Each blocked goroutine sleeps in the kernel on its own
// thread: a process-local token (local) would let a goroutine sleep for one
// condition while another of its process, parked on the token, waits for a
// condition already true (a Barrier's parties in two generations).
const (
	lwLock       = 0
	lwSeq        = 64
	lwJN         = 68
	lwJEnt       = 72
	lwJournalMax = 7 // pairs of 8 bytes from lwJEnt up to lwData
	lwData       = 128
)

// lockedState is the process-local view of that part.
type lockedState struct {
	s    *Segment
	name string
	kind string
	base unsafe.Pointer
	size uint64 // bytes of the object, which every offset it journals must lie in
	off  uint64
	lock *mutexCore
	seq  *uint32
}

// drop is Drop for the object: every call enters o.s first, which the
// closed stand-in refuses.
func (o *lockedState) drop() error {
	if s := o.s; !s.drop {
		o.s = s.dropped()
		s.unpin(o.off)
	}
	return nil
}

func newLockedState(s *Segment, off, size uint64, kind, name string) lockedState {
	return lockedState{
		s:    s,
		name: name,
		kind: kind,
		base: unsafe.Pointer(&s.mem[off]),
		size: size,
		off:  off,
		lock: newMutexCore(s, off+lwLock, name),
		seq:  u32at(s.mem, off+lwSeq),
	}
}

func (o *lockedState) w(off uint64) *uint32 { return (*uint32)(unsafe.Add(o.base, off)) }

// load reads the word at off.
func (o *lockedState) load(off uint64) uint32 { return atomic.LoadUint32(o.w(off)) }

// set stores v at off, journaled: the old value goes into the journal
// first, so that a death before commit rolls the change back. The caller
// holds the lock.
func (o *lockedState) set(off uint64, v uint32) {
	n := atomic.LoadUint32(o.w(lwJN))
	if n >= lwJournalMax {
		// Only garbage written under our lock gets here (enter checked
		// the journal was empty, and no change sets more than
		// lwJournalMax words): start the journal again.
		n = 0
	}
	e := lwJEnt + uint64(n)*8
	atomic.StoreUint32(o.w(e), uint32(off))
	atomic.StoreUint32(o.w(e+4), atomic.LoadUint32(o.w(off)))
	atomic.StoreUint32(o.w(lwJN), n+1)
	atomic.StoreUint32(o.w(off), v)
}

// commit ends a change: the words set since the last commit stay.
func (o *lockedState) commit() { atomic.StoreUint32(o.w(lwJN), 0) }

// changed bumps seq, for the wake after unlock. The caller holds the lock.
func (o *lockedState) changed() { atomic.AddUint32(o.seq, 1) }

// wake wakes every sleeper on seq.
func (o *lockedState) wake() { wakeAll(o.seq) } // step: lw.change.wake

// enter takes the internal lock. If its last holder died, it rolls back
// that holder's journaled change and bumps seq (the sleepers will look
// again anyway: the death wakes them). It returns ctx.Err(), ErrClosed, or
// an error matching ErrCorrupt if the journal names words outside the
// object; it holds the lock only when it returns nil.
func (o *lockedState) enter(ctx context.Context) error {
	err := o.lock.lock(ctx)
	if err == nil {
		if n := atomic.LoadUint32(o.w(lwJN)); n != 0 {
			// A journal left by a holder that did not die: garbage.
			o.lock.unlock()
			return fmt.Errorf("%w: %s %q: journal of %d entries under a consistent lock", ErrCorrupt, o.kind, o.name, n)
		}
		return nil
	}
	if _, dead := err.(*OwnerDeadError); !dead {
		return err
	}
	n := atomic.LoadUint32(o.w(lwJN))
	if n > lwJournalMax {
		o.lock.unlock()
		return fmt.Errorf("%w: %s %q: journal of %d entries", ErrCorrupt, o.kind, o.name, n)
	}
	for i := int(n) - 1; i >= 0; i-- {
		e := lwJEnt + uint64(i)*8
		off := uint64(atomic.LoadUint32(o.w(e)))
		if off < lwData || off+4 > o.size || off%4 != 0 {
			o.lock.unlock()
			return fmt.Errorf("%w: %s %q: journal names offset %d", ErrCorrupt, o.kind, o.name, off)
		}
		atomic.StoreUint32(o.w(off), atomic.LoadUint32(o.w(e+4)))
	}
	o.commit()
	o.changed()
	atomic.AndUint32(o.lock.flags, ^uint32(mutexInconsistent))
	return nil
}

// unlock releases the internal lock.
func (o *lockedState) unlock() { o.lock.unlock() }

// wait blocks until cond, which runs under the lock, reports done, and
// returns cond's error. If ctx ends or the segment is closed first, it
// looks once more; if still not done it runs giveUp (if not nil) under the
// lock, with the reason, and returns what giveUp returns (the reason if
// giveUp is nil). The caller holds o.s.enter().
//
// peek, if not nil, is a look without the lock after each wake-up: if it
// reports true, wait returns nil at once. It may only report what no later
// change can undo (a Barrier's generation has completed), and it must read
// the words it looks at atomically, as the changer wrote them before it
// bumped seq. It spares the woken waiters a fight for the lock.
func (o *lockedState) wait(ctx context.Context, cond func() (bool, error), peek func() bool, giveUp func(reason error) error) (err error) {
	defer o.s.guard(&err, guarded())
	var lives []liveRef
	for woken := false; ; woken = true {
		if woken && peek != nil && peek() { // step: lw.wait.peek
			if raceEnabled {
				raceAcquire(o.lock.l.race) // the changer's unlock released it
			}
			return nil
		}
		// The watches come before the look: a process that dies after
		// its watch changes a word the sleep names, and one that died
		// before is dead to cond's lookups. (In the other order, a party
		// found alive by cond and dead by watchAll would be neither:
		// internal/model, BugCheckFirst.) They need no lock, and are
		// taken outside it, which keeps the critical section short.
		var ok, poll bool
		lives, ok, poll = o.s.watchAll(lives[:0]) // step: lw.wait.watch
		if !ok {
			continue
		}
		if err := o.enter(ctx); err != nil { // step: lw.wait.locked
			return o.abandon(err, cond, giveUp)
		}
		done, err := cond() // step: lw.wait.check
		if done || err != nil {
			o.unlock()
			return err
		}
		v := atomic.LoadUint32(o.seq)
		o.unlock() // step: lw.wait.unlock
		if err := o.s.sleep(ctx, o.seq, v, lives, poll); err != nil {
			return o.abandon(err, cond, giveUp)
		}
	}
}

// abandon is wait's give-up path, for reason (ctx.Err() or ErrClosed).
func (o *lockedState) abandon(reason error, cond func() (bool, error), giveUp func(error) error) error {
	if reason == ErrClosed || o.s.isClosed() {
		// Closing: to the others this handle is now dead, which a
		// Barrier's parties and a WaitGroup's waiters see for themselves.
		return ErrClosed
	}
	if err := o.enter(context.Background()); err != nil { // step: lw.wait.giveup
		return err
	}
	done, err := cond()
	if done || err != nil {
		o.unlock()
		return err
	}
	if giveUp == nil {
		o.unlock()
		return reason
	}
	err = giveUp(reason)
	o.unlock()
	o.wake()
	return err
}

// change runs f under the lock: f makes a journaled change and reports
// whether waiters must look (then seq is bumped and they are woken after
// the unlock). It returns f's error, or the lock's. The caller holds
// o.s.enter().
func (o *lockedState) change(f func() (bool, error)) (err error) {
	defer o.s.guard(&err, guarded())
	if err := o.enter(context.Background()); err != nil { // step: lw.change.locked
		return err
	}
	wake, err := f()
	o.commit()
	if wake {
		o.changed()
	}
	o.unlock() // step: lw.change.unlock
	if wake {
		o.wake()
	}
	return err
}

// alive reports whether the identity id, found in the object's memory,
// names a live handle.
func (o *lockedState) alive(id identity) bool { return id != 0 && o.s.lookup(id).alive }

// watchAll is watchOthers for a sleeper whose wake-up may come from a
// process that attaches after it fell asleep: a newcomer that changes the
// state and dies before its wake. If the table has a free or dead slot
// (where a newcomer may attach), the sleep polls (pollInterval), so that
// such a death is seen within that bound. Watching those slots' live words
// instead (a claim changes the word and wakes its sleepers: A1, A3 of "A
// slot's claim") was tried: with the default table most slots are free,
// every sleep went past maxLives and polled anyway, and its futex_waitv
// on 64 words made ps_barrier_8p slower.
//
// A procHigh below procCap means the slot at procHigh is free (see "The
// high-water mark" in proc.go): the sleep polls, with no scan for one.
// Only a table whose every slot has been claimed is scanned, to its end.
func (s *Segment) watchAll(lives []liveRef) (_ []liveRef, ok, poll bool) {
	lives, ok, poll = s.watchOthers(lives, 0)
	if !ok || poll {
		return lives, ok, poll
	}
	procOff, procCap := s.lay.procOff, s.lay.procCap
	if s.procHigh() < procCap {
		return lives, true, true
	}
	for i := range procCap {
		off := procOff + i*procSlotSize
		if off == s.slot {
			continue
		}
		if v := atomic.LoadUint32(u32at(s.mem, off+slotLive)); v == 0 || v&liveDied != 0 {
			return lives, true, true
		}
	}
	return lives, true, false
}
