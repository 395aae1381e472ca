package processshared

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// The memory of an RWMutex: a header line, then a reader line of 8 bytes
// per slot of the segment's process table (P of them), spread over C =
// max(P/8, min(P, 16)) cache lines: slot i's line is word pair i/C of cache
// line i%C, so that the readers of the first 16 slots (attach fills the
// lowest free slot first) never share a cache line. One 64-byte line per
// slot would cost 8 KiB per RWMutex with the default 128 slots; this costs
// 1 KiB.
//
// Header (accessed atomically only):
//
//	offset 0   word      the writer word:
//	                       bits 0-30  the identity of the writer handle
//	                                  (see proc.go), 0 when no writer
//	                                  holds or is draining
//	                       bit  31    lockWaiters: a process may sleep on
//	                                  the word (a reader or a writer)
//	offset 4   flags     mutexInconsistent: a writer died holding it
//	offset 8   deaths    number of writer deaths recovered from
//	offset 12  deadPID   pid of the last writer that died holding it
//	offset 16  high      one more than the highest reader line ever claimed
//	offset 24  waited    lock calls that slept in the kernel (uint64)
//	offset 32  waitNs    their total time from the first sleep to the
//	                     return, nanoseconds (uint64)
//	offset 40  timeouts  calls whose deadline passed while they waited
//	offset 44  cancels   calls cancelled while they waited
//
// The statistics (offsets 24 to 47) are written only by calls that slept.
//
// Reader line i (for the handle in process-table slot i):
//
//	offset 0   count     bits 0-30  read locks held through the handle
//	                     bit  31    rdWaiter: the draining writer may sleep
//	                                on this word
//	offset 4   owner     the identity of the handle the count belongs to
//
// Only the owner handle changes its count (the writer only sets rdWaiter).
// A reader's RLock is the Dekker half "add to my count, then load the
// writer word"; a writer's Lock is "set the writer word, then load every
// count". Go's atomics are sequentially consistent, so at least one of the
// two sees the other: either the reader sees the writer and backs out, or
// the writer sees the count and waits for it to drop to 0.
//
// Transitions of the writer word:
//
//	0          → id              Lock (CAS): new readers now wait, so the
//	                             writer waits only for the readers inside
//	h          → h|waiters       a waiter (reader or writer), before it sleeps
//	id|w       → 0 + wake all    Unlock, or a writer that gives up draining
//	dead|w     → id|w            a writer that found the writer dead
//	dead|w     → id|w → 0        a reader that found the writer dead: it
//	                             marks the state inconsistent in between,
//	                             then wakes all
//
// Unlock wakes every sleeper on the word, not one: the readers all may go
// in. So no wake is ever consumed by one sleeper for the others, and a
// sleeper that gives up (cancelled, closed) has nothing to pass on; nor
// does one killed after its wake-up, so the sleeps need no pending robust
// op (the Mutex's armPending), which exists for a wake-up that went to one
// sleeper only. The draining writer is the only sleeper on a reader line.
// Every sleeper watches the live word of every other attached process
// (watchOthers): the kernel wakes one sleeper of a dead process's live
// word, and that sleeper may die before it wakes the others
// (internal/model, BugWatchHolderOnly).
//
// The naive design, one shared reader count, makes every RLock of every
// process write the same cache line: 2 reader processes then run slower
// than 1 (pthread_rwlock does so: see bench, c_pthread_rwlock_read_2p).
//
// Transitions of reader line i, by its owner handle h:
//
//	count → 0, owner: dead → h   the first RLock through h (claim): a dead
//	                             owner's holds are dropped, waking the
//	                             writer if rdWaiter was set, then the line
//	                             becomes h's
//	count: n → n+1               RLock; back to n if a writer is seen
//	count: rdWaiter → 0 + wake   the last RUnlock while the writer sleeps
//
// and by the draining writer: count n → n|rdWaiter before it sleeps. The
// writer skips a line whose owner is dead: a dead reader's holds are
// returned without anyone writing them. high is raised before a line's
// owner is set, so a writer that loaded high before it misses only lines
// whose first RLock comes after its word is set, and backs out.
const (
	rwHdr     = 64
	rwLine    = 64
	rwWord    = 0
	rwFlags   = 4
	rwDeaths  = 8
	rwDeadPID = 12
	rwHigh    = 16
	rwWaited  = 24
	rwWaitNs  = 32
	rwTimeout = 40
	rwCancels = 44

	rdCount = 0
	rdOwner = 4

	rdWaiter = 0x80000000
	rdMask   = 0x7fffffff
)

// rwCacheLines returns the cache lines of reader lines of an RWMutex in a
// segment of procCap slots.
func rwCacheLines(procCap uint64) uint64 { return max((procCap+7)/8, min(procCap, 16)) }

// rwSize returns the size of an RWMutex in a segment of procCap slots.
func rwSize(procCap uint64) uint64 { return rwHdr + rwLine*rwCacheLines(procCap) }

// rwLineOff returns the offset of reader line i in an RWMutex of a segment
// of procCap slots.
func rwLineOff(procCap, i uint64) uint64 {
	c := rwCacheLines(procCap)
	return rwHdr + i%c*rwLine + i/c*8
}

// An RWMutex is a reader/writer mutual exclusion lock shared by processes:
// any number of readers or one writer. Obtain one with NewRWMutex; the zero
// value is not usable. An RWMutex must not be copied.
//
// It is writer-preferring: once a writer calls Lock, new RLock calls block
// until it has locked and unlocked, so writers never starve. As with
// sync.RWMutex, a goroutine must therefore not RLock again while it holds a
// read lock: if a writer arrives in between, the second RLock waits for the
// writer, which waits for the first read lock, a deadlock.
//
// Read locks are counted per Segment handle (and so per process), in a line
// of the handle's own. Any goroutine using a handle may RUnlock a read lock
// taken through it. The write lock belongs to the handle, as a Mutex's does.
//
// In the terminology of the Go memory model, the n'th call to Unlock, in any
// process, "synchronizes before" the m'th call to Lock returns, for n < m,
// and before any RLock that returns after it; and an RUnlock
// "synchronizes before" the Lock that follows it returns.
//
// If a writer dies, at any instant and in any way (SIGKILL included), or
// closes its Segment holding the lock, the next locker, reader or writer,
// acquires the lock and is told: LockContext and RLockContext return an
// error matching ErrOwnerDead (RLockContext holding a read lock), and
// Consistent reports false. Every later locker is told the same until a
// writer, holding the write lock, calls MarkConsistent. A writer that dies
// while waiting for the readers to leave counts as such a death too: the
// lock cannot tell that it wrote nothing. If a reader dies or closes its
// Segment, its read holds are returned: readers do not write, so nobody is
// told.
//
// After its Segment is closed, LockContext and RLockContext return
// ErrClosed and every other method but Name panics with an error matching
// ErrClosed.
type RWMutex struct {
	s      *Segment
	closed *uint32
	word   *uint32
	flags  *uint32
	high   *uint32
	count  *uint32 // this handle's reader line
	owner  *uint32
	id     identity
	line   uint32 // index of this handle's reader line
	off    uint64
	nlines uint64
	l      *local // the writer's token and race address
	rl     *local // the readers' race address
	name   string
	gone   [3]uint32 // what the fast paths' words point to after Drop
}

// NewRWMutex finds the RWMutex called name in s, creating it (unlocked) if
// it does not exist.
func NewRWMutex(s *Segment, name string) (*RWMutex, error) {
	n := s.lay.procCap
	off, err := s.object(name, KindRWMutex, 0, rwSize(n), nil)
	if err != nil {
		return nil, err
	}
	line := uint64(s.id & (1<<s.lay.slotBits - 1))
	if line >= n {
		return nil, fmt.Errorf("%w: handle slot %d outside the rwmutex's %d lines", ErrCorrupt, line, n)
	}
	lo := off + rwLineOff(n, line)
	return &RWMutex{
		s: s, closed: &s.closed,
		word: u32at(s.mem, off+rwWord), flags: u32at(s.mem, off+rwFlags), high: u32at(s.mem, off+rwHigh),
		count: u32at(s.mem, lo+rdCount), owner: u32at(s.mem, lo+rdOwner),
		id: s.id, line: uint32(line), off: off, nlines: n,
		l: s.local(off), rl: s.local(off + rwFlags),
		name: name,
	}, nil
}

// Drop releases this handle on rw: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Dropping a handle that holds rw
// does not unlock it: its locks stay held by this Segment handle until its
// Close. Drop is idempotent and returns nil.
func (rw *RWMutex) Drop() error {
	s := rw.s
	if s.drop {
		return nil
	}
	d := s.dropped()
	// The fast paths run outside Segment.enter: point their words at
	// words of this handle's that send them to the slow paths (a writer
	// word that is never 0, a reader line that is never this handle's),
	// which enter the closed stand-in and fail; never at the space a later
	// object may reuse.
	rw.gone = [3]uint32{^uint32(0), 0, 0}
	rw.word, rw.owner, rw.count = &rw.gone[0], &rw.gone[1], &rw.gone[2]
	rw.flags, rw.high = &rw.gone[1], &rw.gone[1]
	rw.closed, rw.s = &d.closed, d
	s.unpin(rw.off)
	return nil
}

// Name returns the RWMutex's name in its segment.
func (rw *RWMutex) Name() string { return rw.name }

func (rw *RWMutex) lineWords(i uint64) (count, owner *uint32) {
	lo := rw.off + rwLineOff(rw.nlines, i)
	return u32at(rw.s.mem, lo+rdCount), u32at(rw.s.mem, lo+rdOwner)
}

// RLock locks rw for reading. It blocks while a writer holds rw or waits
// for it. If a writer died holding rw, RLock acquires the read lock;
// Consistent then reports false. It panics if the segment is closed.
//
// Its fast path is one call: the Dekker check of the writer word costs
// more than the compiler inlines.
func (rw *RWMutex) RLock() {
	var n uint32
	if atomic.LoadUint32(rw.word)|atomic.LoadUint32(rw.owner)^rw.id == 0 { // step: rw.rlock.load
		n = atomic.AddUint32(rw.count, 1) // step: rw.rlock.add
	}
	if n&rdMask == 0 || atomic.LoadUint32(rw.word)|atomic.LoadUint32(rw.closed) != 0 { // step: rw.rlock.recheck
		rw.rlockSlowPath(n)
	}
	if raceEnabled {
		raceAcquire(rw.l.race)
	}
}

// rlockSlowPath is RLock after its fast path failed; n is the count its
// add made, 0 if it did not add.
func (rw *RWMutex) rlockSlowPath(n uint32) {
	if n != 0 {
		rw.backOut(n)
	}
	err := rw.enterAnd(func() error { return rw.rlockSlow(context.Background()) })
	rw.mustLocked("RLock", err)
}

// backOut undoes the fast path's add, which made the count n: a writer or
// a Close came, or n overflowed (a count of 2³¹-1 is garbage, which the
// slow path reports).
func (rw *RWMutex) backOut(n uint32) {
	if n&rdMask == 0 {
		atomic.AddUint32(rw.count, ^uint32(0))
		return
	}
	rw.rdone()
}

// rlockFast is RLock's fast path, outside the mapping: after a Close its
// loads and its add land on the placeholder, and the check of closed after
// them sends the call to the slow path, which enters and fails. (An add
// that reached the segment before the placeholder counts for a handle now
// dead, which writers skip.)
func (rw *RWMutex) rlockFast() bool {
	if atomic.LoadUint32(rw.word) != 0 || atomic.LoadUint32(rw.owner) != rw.id { // step: rw.rlock.load
		return false
	}
	n := atomic.AddUint32(rw.count, 1)                                                 // step: rw.rlock.add
	if n&rdMask == 0 || atomic.LoadUint32(rw.word)|atomic.LoadUint32(rw.closed) != 0 { // step: rw.rlock.recheck
		rw.backOut(n)
		return false
	}
	if raceEnabled {
		raceAcquire(rw.l.race)
	}
	return true
}

// RLockContext locks rw for reading, or returns ctx.Err() if ctx is done
// first (an error satisfying errors.Is(err, context.DeadlineExceeded) for a
// deadline). It returns ErrClosed if the segment is closed, or closed while
// it waits. If a writer died holding rw, or the state is still marked
// inconsistent, it acquires the read lock and returns an *OwnerDeadError
// (matching ErrOwnerDead): the caller holds a read lock and must RUnlock
// it. Only a writer may repair the state and call MarkConsistent.
func (rw *RWMutex) RLockContext(ctx context.Context) error {
	if rw.rlockFast() {
		return rw.consistent()
	}
	return rw.enterAnd(func() error { return rw.rlockSlow(ctx) })
}

func (rw *RWMutex) consistent() error {
	if atomic.LoadUint32(rw.flags)&mutexInconsistent != 0 {
		return rw.deadError()
	}
	return nil
}

func (rw *RWMutex) deadError() error {
	return &OwnerDeadError{Object: rw.name, DeadPID: int(atomic.LoadUint32((*uint32)(unsafe.Add(unsafe.Pointer(rw.word), rwDeadPID))))}
}

// rdone takes back one read hold of this handle, waking the draining writer
// if it was the last. It reports false, changing nothing, if the handle
// held none.
func (rw *RWMutex) rdone() bool {
	n := atomic.AddUint32(rw.count, ^uint32(0)) // step: rw.runlock.sub
	switch {
	case n&rdMask == rdMask:
		atomic.AddUint32(rw.count, 1) // it was 0: undo
		return false
	case n == rdWaiter:
		if atomic.CompareAndSwapUint32(rw.count, rdWaiter, 0) { // step: rw.runlock.clear
			futex.Wake(rw.count, 1) // step: rw.runlock.wake
		}
	}
	return true
}

// claim makes this handle the owner of its reader line. The line's
// previous owner is an earlier handle of the same process-table slot, dead
// (its generation is older), or garbage: its holds are dropped, before the
// owner changes (once it is ours, goroutines of this handle add to the
// count). Claims through one handle are serialized by its local's mutex,
// so that a second claimer cannot drop the holds the first one's goroutines
// took meanwhile. The caller holds rw.s.enter().
func (rw *RWMutex) claim() error {
	if atomic.LoadUint32(rw.owner) == rw.id {
		return nil
	}
	rw.l.mu.Lock()
	defer rw.l.mu.Unlock()
	o := atomic.LoadUint32(rw.owner)
	if o == rw.id {
		return nil // another goroutine of this handle claimed it
	}
	if o != 0 && rw.s.lookup(o).alive {
		return fmt.Errorf("%w: rwmutex %q: reader line %d belongs to a live handle", ErrCorrupt, rw.name, rw.line)
	}
	for {
		h := atomic.LoadUint32(rw.high)
		if h > rw.line || atomic.CompareAndSwapUint32(rw.high, h, rw.line+1) { // step: rw.rlock.claim
			break
		}
	}
	if atomic.SwapUint32(rw.count, 0)&rdWaiter != 0 { // step: rw.rlock.claim
		futex.Wake(rw.count, 1)
	}
	if !atomic.CompareAndSwapUint32(rw.owner, o, rw.id) { // step: rw.rlock.claim
		return fmt.Errorf("%w: rwmutex %q: reader line %d changed owner under its slot's handle", ErrCorrupt, rw.name, rw.line)
	}
	return nil
}

// rlockSlow is RLock after its fast path failed. The caller holds
// rw.s.enter().
//
// States of one reader:
//
//	claim    make the handle's reader line its own (first RLock only)
//	spin     a few loads of a held word (spinTries) before any of the
//	         below; the model folds them into load
//	load     read the writer word: 0 → add; held by this handle (RLock
//	         under its own Lock) → sleep, as sync.RWMutex deadlocks;
//	         held by a dead identity → clear it, record the death, wake
//	         all, look again; held by a live one → watch its live word
//	add      count+1, then recheck the writer word: still 0 → done (told
//	         of a death if the state is inconsistent); else undo (waking
//	         the writer if the count drops to 0 under its rdWaiter) and
//	         look again
//	token    at most one goroutine per handle sleeps in the kernel
//	sleep    watch every other process's live word too (the kernel's one
//	         death wake-up may go to a process that dies before passing it
//	         on), set lockWaiters, futex_waitv on the word, the cancel word
//	         and the live words; back to load when woken
//	give up  ctx done or Close: return without a hold. Unlock woke every
//	         sleeper, so no wake-up is taken from anyone.
func (rw *RWMutex) rlockSlow(ctx context.Context) (err error) {
	defer rw.s.guard(&err, guarded())
	var slept time.Time // the first sleep, for the statistics
	defer func() { rw.countWait(slept, err) }()
	if err := rw.claim(); err != nil {
		return err
	}
	token := false
	defer func() {
		if token {
			rw.l.release()
		}
	}()
	spins := 0
	for {
		v := atomic.LoadUint32(rw.word) // step: rw.rlock.load
		if v == 0 {
			if atomic.AddUint32(rw.count, 1)&rdMask == 0 { // step: rw.rlock.add
				atomic.AddUint32(rw.count, ^uint32(0))
				return rw.countCorrupt()
			}
			if atomic.LoadUint32(rw.word) == 0 { // step: rw.rlock.recheck
				if raceEnabled {
					raceAcquire(rw.l.race)
				}
				return rw.consistent()
			}
			rw.rdone()
			continue
		}
		if spins < spinTries { // a writer's critical section is often short
			spins++
			pause()
			continue
		}
		var lives []liveRef
		poll := false
		var skip uint64 // the holder's slot, watched first
		if owner := v & idMask; owner != rw.id {
			skip, _, _ = rw.s.lay.slotOf(owner)
			h := rw.s.lookup(owner)
			if !h.alive {
				rw.clearDead(v, h.pid)
				continue
			}
			if h.live == nil {
				poll = true
			} else {
				l, ok := watch(h)
				if !ok {
					continue
				}
				lives = []liveRef{l}
			}
		}
		// And every other process: the kernel wakes one sleeper of a dead
		// process's live word, and that sleeper may die before it wakes
		// the others (see watchOthers).
		lives, ok, others := rw.s.watchOthers(lives, skip)
		if !ok {
			continue
		}
		poll = poll || others
		if !token {
			if err := rw.l.acquire(ctx, rw.s); err != nil {
				return err
			}
			token = true
			continue // look again: the word may have changed while parked
		}
		if v&lockWaiters == 0 {
			if !atomic.CompareAndSwapUint32(rw.word, v, v|lockWaiters) { // step: rw.rlock.set_waiters
				continue
			}
			v |= lockWaiters
		}
		if slept.IsZero() {
			slept = time.Now()
		}
		if err := rw.s.sleep(ctx, rw.word, v, lives, poll); err != nil {
			return err
		}
	}
}

func (rw *RWMutex) countCorrupt() error {
	return fmt.Errorf("%w: rwmutex %q: reader line %d holds 2³¹-1 read locks", ErrCorrupt, rw.name, rw.line)
}

// countWait adds a call that first slept at start (zero: it never slept) and
// ended with err to rw's statistics (see the layout above).
func (rw *RWMutex) countWait(start time.Time, err error) {
	if start.IsZero() {
		return
	}
	base := unsafe.Pointer(rw.word)
	switch err {
	case context.DeadlineExceeded:
		atomic.AddUint32((*uint32)(unsafe.Add(base, rwTimeout)), 1)
	case context.Canceled:
		atomic.AddUint32((*uint32)(unsafe.Add(base, rwCancels)), 1)
	}
	atomic.AddUint64((*uint64)(unsafe.Add(base, rwWaited)), 1)
	atomic.AddUint64((*uint64)(unsafe.Add(base, rwWaitNs)), uint64(time.Since(start)))
}

// clearDead is a reader's takeover of a dead writer's word v. It takes the
// word as a writer would, marks the state inconsistent, and frees the word:
// every locker after the free is told, and if the CAS fails (the writer
// freed the word itself, in an Unlock that raced with its Close) nobody
// is. Marking before the CAS would tell the next lockers of a death that
// was not one; freeing before marking would let a locker in untold
// (internal/model, RWMutex). A reader killed holding the word this way is
// a dead writer to the next one.
func (rw *RWMutex) clearDead(v uint32, deadPID int) {
	if !atomic.CompareAndSwapUint32(rw.word, v, rw.id|v&lockWaiters) { // step: rw.rlock.takeover
		return
	}
	rw.takeover(deadPID)
	if atomic.SwapUint32(rw.word, 0)&lockWaiters != 0 { // step: rw.rlock.takeover_wake
		wakeAll(rw.word)
	}
}

// takeover records that the writer word was taken from a dead writer.
func (rw *RWMutex) takeover(deadPID int) {
	base := unsafe.Pointer(rw.word)
	atomic.StoreUint32((*uint32)(unsafe.Add(base, rwDeadPID)), uint32(deadPID))
	atomic.AddUint32((*uint32)(unsafe.Add(base, rwDeaths)), 1)
	atomic.OrUint32(rw.flags, mutexInconsistent)
}

// Lock locks rw for writing. It blocks while another writer holds rw, and
// then until every reader has left; new readers wait from the moment it is
// called. If the previous writer died, Lock acquires rw; Consistent then
// reports false. Lock panics if the segment is closed.
func (rw *RWMutex) Lock() {
	rw.mustLocked("Lock", rw.lockContext(context.Background()))
}

// LockContext locks rw for writing, or returns ctx.Err() if ctx is done
// first; a writer that gives up while waiting for readers lets new readers
// in again. It returns ErrClosed if the segment is closed, or closed while
// it waits. If the previous writer died, or closed its Segment holding rw,
// or the state is still marked inconsistent, LockContext acquires rw and
// returns an *OwnerDeadError (matching ErrOwnerDead). The caller then
// holds rw, must repair the protected state, call MarkConsistent and
// Unlock.
func (rw *RWMutex) LockContext(ctx context.Context) error {
	return rw.lockContext(ctx)
}

func (rw *RWMutex) lockContext(ctx context.Context) error {
	return rw.enterAnd(func() error { return rw.lock(ctx) })
}

// mustLocked turns the error of a lock call without an error result into a
// panic, but for a death, which Consistent reports.
func (rw *RWMutex) mustLocked(method string, err error) {
	if err == nil || errors.Is(err, ErrOwnerDead) {
		return
	}
	if err == ErrClosed {
		closedPanic(method, "rwmutex", rw.name, rw.s)
	}
	panic(fmt.Errorf("processshared: %s of rwmutex %q: %w", method, rw.name, err))
}

// enterAnd runs lock inside the mapping (Segment.enter), or returns
// ErrClosed.
func (rw *RWMutex) enterAnd(lock func() error) (err error) {
	if !rw.s.enter() { // step: rw.enter
		return ErrClosed
	}
	defer rw.s.exit()
	defer rw.s.guard(&err, guarded())
	return lock()
}

// lock is Lock's two phases: take the writer word (waiting for the
// previous writer), then wait for the readers inside to leave. The caller
// holds rw.s.enter().
//
// States of one writer:
//
//	cas      CAS the word 0 → id: from here new readers wait
//	token    at most one goroutine per handle sleeps on the word
//	load     read the word: 0 → CAS it; held by a dead identity → take it
//	         over keeping lockWaiters (OwnerDeadError at the end); held by
//	         a live one → watch its live word and every other's, set
//	         lockWaiters, sleep
//	drain    for each reader line below high: count 0, or owner dead → next
//	         line; else watch the owner's live word and every other's, set
//	         rdWaiter, sleep on the count; back to the line when woken
//	give up  ctx done or Close: in the first phase, return (nothing to
//	         pass on: Unlock wakes all); in the drain, free the word and
//	         wake all, so that the readers it held back go in
func (rw *RWMutex) lock(ctx context.Context) (err error) {
	defer rw.s.guard(&err, guarded())
	var slept time.Time // the first sleep, for the statistics
	defer func() { rw.countWait(slept, err) }()
	dead := false
	if !atomic.CompareAndSwapUint32(rw.word, 0, rw.id) { // step: rw.lock.cas
		if dead, err = rw.lockWord(ctx, &slept); err != nil {
			return err
		}
	}
	if err := rw.drain(ctx, &slept); err != nil {
		rw.release()
		return err
	}
	if raceEnabled {
		raceAcquire(rw.l.race)
		raceAcquire(rw.rl.race)
	}
	if dead || atomic.LoadUint32(rw.flags)&mutexInconsistent != 0 {
		return rw.deadError()
	}
	return nil
}

// lockWord is the first phase of lock after its CAS failed. It reports
// whether it took the word from a dead writer.
func (rw *RWMutex) lockWord(ctx context.Context, slept *time.Time) (dead bool, err error) {
	if err := rw.l.acquire(ctx, rw.s); err != nil {
		return false, err
	}
	defer rw.l.release()
	spins := 0
	for {
		v := atomic.LoadUint32(rw.word) // step: rw.lock.load
		if v == 0 {
			if atomic.CompareAndSwapUint32(rw.word, 0, rw.id) { // step: rw.lock.cas
				return false, nil
			}
			continue
		}
		if spins < spinTries {
			spins++
			pause()
			continue
		}
		var lives []liveRef
		poll := false
		var skip uint64 // the holder's slot, watched first
		if owner := v & idMask; owner != rw.id {
			skip, _, _ = rw.s.lay.slotOf(owner)
			h := rw.s.lookup(owner)
			if !h.alive {
				if atomic.CompareAndSwapUint32(rw.word, v, rw.id|v&lockWaiters) { // step: rw.lock.takeover
					rw.takeover(h.pid)
					return true, nil
				}
				continue
			}
			if h.live == nil {
				poll = true
			} else {
				l, ok := watch(h)
				if !ok {
					continue
				}
				lives = []liveRef{l}
			}
		}
		// And every other process: the kernel wakes one sleeper of a dead
		// process's live word, and that sleeper may die before it wakes
		// the others (see watchOthers).
		lives, ok, others := rw.s.watchOthers(lives, skip)
		if !ok {
			continue
		}
		poll = poll || others
		if v&lockWaiters == 0 {
			if !atomic.CompareAndSwapUint32(rw.word, v, v|lockWaiters) { // step: rw.lock.set_waiters
				continue
			}
			v |= lockWaiters
		}
		if slept.IsZero() {
			*slept = time.Now()
		}
		if err := rw.s.sleep(ctx, rw.word, v, lives, poll); err != nil {
			return false, err
		}
	}
}

// drain waits until no live handle but the caller's holds a read lock (or,
// holding one itself, until another goroutine of the handle releases it).
// The caller holds the writer word and rw.s.enter(). The draining writer
// needs no token: only the holder of the word drains.
func (rw *RWMutex) drain(ctx context.Context, slept *time.Time) error {
	n := min(uint64(atomic.LoadUint32(rw.high)), rw.nlines) // high comes from shared memory
	spins := 0
	for i := range n {
		count, owner := rw.lineWords(i)
		for {
			c := atomic.LoadUint32(count) // step: rw.drain.load
			if c&rdMask == 0 {
				break
			}
			if spins < spinTries { // readers inside leave soon
				spins++
				pause()
				continue
			}
			o := atomic.LoadUint32(owner) // step: rw.drain.owner
			var lives []liveRef
			poll := false
			var skip uint64
			if o != rw.id {
				skip, _, _ = rw.s.lay.slotOf(o)
				h := rw.s.lookup(o)
				if !h.alive {
					break // a dead reader's holds are returned
				}
				if h.live == nil {
					poll = true
				} else {
					l, ok := watch(h)
					if !ok {
						continue
					}
					lives = []liveRef{l}
				}
			}
			lives, ok, others := rw.s.watchOthers(lives, skip)
			if !ok {
				continue
			}
			poll = poll || others
			if c&rdWaiter == 0 {
				if !atomic.CompareAndSwapUint32(count, c, c|rdWaiter) { // step: rw.drain.set_waiter
					continue
				}
				c |= rdWaiter
			}
			if slept.IsZero() {
				*slept = time.Now()
			}
			if err := rw.s.sleep(ctx, count, c, lives, poll); err != nil {
				return err
			}
		}
	}
	return nil
}

// release frees the writer word this handle holds, waking every sleeper if
// any set lockWaiters.
func (rw *RWMutex) release() {
	for {
		v := atomic.LoadUint32(rw.word) // step: rw.unlock.load
		if v&idMask != rw.id {
			panic(&NotOwnerError{Object: rw.name, HolderPID: rw.holderPID(v), CallerPID: os.Getpid()})
		}
		if atomic.CompareAndSwapUint32(rw.word, v, 0) { // step: rw.unlock.cas
			if v&lockWaiters != 0 {
				wakeAll(rw.word) // step: rw.unlock.wake
			}
			return
		}
	}
}

func (rw *RWMutex) holderPID(v uint32) int {
	if v&idMask == 0 {
		return 0
	}
	return rw.s.pidOf(v & idMask)
}

// Unlock unlocks rw for writing. It panics with a *NotOwnerError if this
// handle does not hold the write lock, and if the segment is closed. With
// no waiters it makes no system call.
func (rw *RWMutex) Unlock() {
	if raceEnabled {
		raceReleaseMerge(rw.l.race)
	}
	if atomic.LoadUint32(rw.closed) != 0 {
		closedPanic("Unlock", "rwmutex", rw.name, rw.s)
	}
	if atomic.CompareAndSwapUint32(rw.word, rw.id, 0) { // step: rw.unlock.cas
		return
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(*NotOwnerError); ok && rw.s.isClosed() {
				closedPanic("Unlock", "rwmutex", rw.name, rw.s)
			}
			panic(r)
		}
	}()
	rw.release()
}

// RUnlock undoes one RLock taken through this handle. It panics with a
// *NotOwnerError if the handle holds no read lock, and if the segment is
// closed. It makes a system call only when it lets a sleeping writer in.
func (rw *RWMutex) RUnlock() {
	if raceEnabled {
		raceReleaseMerge(rw.rl.race)
	}
	n := atomic.AddUint32(rw.count, ^uint32(0)) // step: rw.runlock.sub
	if n&rdMask == rdMask || n == rdWaiter || atomic.LoadUint32(rw.owner) != rw.id {
		rw.runlockSlow(n)
	}
}

// runlockSlow is RUnlock after its decrement made the count n: an
// underflow (this handle held no read lock), or the last hold left while
// the draining writer sleeps.
//
// The fast path checks the line's owner after its decrement, and not
// closed: after a Close the owner word reads 0 from the placeholder, which
// sends the call here.
func (rw *RWMutex) runlockSlow(n uint32) {
	if atomic.LoadUint32(rw.owner) != rw.id || n&rdMask == rdMask {
		if rw.s.isClosed() {
			closedPanic("RUnlock", "rwmutex", rw.name, rw.s)
		}
		atomic.AddUint32(rw.count, 1) // not this handle's hold: undo
		panic(&NotOwnerError{Object: rw.name, CallerPID: os.Getpid()})
	}
	if atomic.CompareAndSwapUint32(rw.count, rdWaiter, 0) { // step: rw.runlock.clear
		futex.Wake(rw.count, 1) // step: rw.runlock.wake
	}
}

// TryRLock tries to lock rw for reading and reports whether it succeeded.
// It never blocks: it fails while a live writer holds rw or waits for it.
// If the writer is dead it succeeds, and Consistent reports false. It
// panics if the segment is closed.
func (rw *RWMutex) TryRLock() bool {
	if rw.rlockFast() {
		return true
	}
	var ok bool
	err := rw.enterAnd(func() (err error) {
		if err := rw.claim(); err != nil {
			return err
		}
		for {
			v := atomic.LoadUint32(rw.word)
			if v != 0 {
				h := rw.s.lookup(v & idMask)
				if v&idMask == rw.id || h.alive {
					return nil
				}
				rw.clearDead(v, h.pid)
				continue
			}
			if atomic.AddUint32(rw.count, 1)&rdMask == 0 {
				atomic.AddUint32(rw.count, ^uint32(0))
				return rw.countCorrupt()
			}
			if atomic.LoadUint32(rw.word) == 0 {
				if raceEnabled {
					raceAcquire(rw.l.race)
				}
				ok = true
				return nil
			}
			rw.rdone()
		}
	})
	rw.mustLocked("TryRLock", err)
	return ok
}

// TryLock tries to lock rw for writing and reports whether it succeeded.
// It never blocks: it fails while another live writer holds rw or a live
// reader holds a read lock. If the previous writer is dead it succeeds, and
// Consistent reports false. It panics if the segment is closed.
func (rw *RWMutex) TryLock() bool {
	var ok bool
	err := rw.enterAnd(func() error {
		for {
			v := atomic.LoadUint32(rw.word)
			if v == 0 {
				if atomic.CompareAndSwapUint32(rw.word, 0, rw.id) {
					break
				}
				continue
			}
			if v&idMask == rw.id {
				return nil
			}
			h := rw.s.lookup(v & idMask)
			if h.alive {
				return nil
			}
			if atomic.CompareAndSwapUint32(rw.word, v, rw.id|v&lockWaiters) {
				rw.takeover(h.pid)
				break
			}
		}
		n := min(uint64(atomic.LoadUint32(rw.high)), rw.nlines)
		for i := range n {
			count, owner := rw.lineWords(i)
			if atomic.LoadUint32(count)&rdMask == 0 {
				continue
			}
			if o := atomic.LoadUint32(owner); o == rw.id || rw.s.lookup(o).alive {
				rw.release()
				return nil
			}
		}
		if raceEnabled {
			raceAcquire(rw.l.race)
			raceAcquire(rw.rl.race)
		}
		ok = true
		return nil
	})
	rw.mustLocked("TryLock", err)
	return ok
}

// RLocker returns a sync.Locker whose Lock and Unlock are rw's RLock and
// RUnlock.
func (rw *RWMutex) RLocker() sync.Locker { return (*rlocker)(rw) }

type rlocker RWMutex

func (r *rlocker) Lock()   { (*RWMutex)(r).RLock() }
func (r *rlocker) Unlock() { (*RWMutex)(r).RUnlock() }

// query runs f, which reads rw's words, inside the mapping; it panics if
// the segment is closed.
func (rw *RWMutex) query(method string, f func()) {
	if !rw.s.enter() {
		closedPanic(method, "rwmutex", rw.name, rw.s)
	}
	defer rw.s.exit()
	f()
}

// Consistent reports whether the state rw protects is consistent: false
// after a writer died holding rw, until MarkConsistent. It panics if the
// segment is closed.
func (rw *RWMutex) Consistent() (ok bool) {
	rw.query("Consistent", func() { ok = atomic.LoadUint32(rw.flags)&mutexInconsistent == 0 })
	return ok
}

// MarkConsistent declares the state rw protects repaired after a writer's
// death. Only the writer may call it: it panics with a *NotOwnerError if
// this handle does not hold the write lock (a reader cannot have repaired
// anything), and if the segment is closed.
func (rw *RWMutex) MarkConsistent() {
	rw.query("MarkConsistent", func() {
		if v := atomic.LoadUint32(rw.word); v&idMask != rw.id {
			panic(&NotOwnerError{Object: rw.name, HolderPID: rw.holderPID(v), CallerPID: os.Getpid()})
		}
		atomic.AndUint32(rw.flags, ^uint32(mutexInconsistent))
	})
}

// OwnerDeaths returns how many times a writer died holding rw. It panics
// if the segment is closed.
func (rw *RWMutex) OwnerDeaths() (n int) {
	rw.query("OwnerDeaths", func() {
		n = int(atomic.LoadUint32((*uint32)(unsafe.Add(unsafe.Pointer(rw.word), rwDeaths))))
	})
	return n
}

// Readers returns the number of read locks held by live handles at the
// instant of the call. It panics if the segment is closed.
func (rw *RWMutex) Readers() (n int) {
	rw.query("Readers", func() {
		for _, r := range rwReaders(rw.s, rw.off, rw.nlines) {
			if r.Alive {
				n += r.Count
			}
		}
	})
	return n
}

// rwReaders returns the reader lines of the RWMutex at off (of nlines
// lines) that hold read locks, live or dead.
func rwReaders(s *Segment, off, nlines uint64) []PermitHolder {
	var out []PermitHolder
	n := min(uint64(load32(s.mem, off+rwHigh)), nlines)
	for i := range n {
		lo := off + rwLineOff(nlines, i)
		c := load32(s.mem, lo+rdCount) & rdMask
		if c == 0 {
			continue
		}
		h := s.lookup(load32(s.mem, lo+rdOwner))
		out = append(out, PermitHolder{PID: h.pid, PIDNamespace: h.pidns, Alive: h.alive, Count: int(c)})
	}
	return out
}
