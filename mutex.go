package processshared

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// The lock word of a Mutex (32 bits, accessed atomically only):
//
//	bits 0-30  holder: the identity of the holding Segment handle (see
//	           proc.go), 0 when unlocked
//	bit  31    lockWaiters: a process may be sleeping on the word
//
// Transitions (the step names are the model's, internal/model):
//
//	0          → id              Lock, fast path (CAS)
//	0          → id|waiters      Lock after sleeping: others may still sleep,
//	                             so the next Unlock must wake one
//	h          → h|waiters       a waiter, before it sleeps
//	id         → 0               Unlock, fast path (CAS): no syscall
//	id|waiters → 0 + FUTEX_WAKE  Unlock with sleepers: wakes one process
//	dead|w     → id|w            a waiter that found the holder dead
//
// This is Drepper's mutex 3 ("Futexes Are Tricky") with the holder's
// identity in place of "1". The naive design, a 0/1 word and a FUTEX_WAKE on
// every unlock, costs a system call per Unlock even without waiters; without
// the holder's identity in the word nobody could tell, after a crash, that
// the holder is gone.
//
// A sleeper that was woken takes the lock or passes the wake on: Unlock
// cleared the waiters bit and woke one process, and if that process returns
// without the lock (its context ended, or Close), the other sleepers would
// sleep on a free lock that no later fast-path Unlock wakes. So a sleeper
// that gives up after sleeping wakes one more (a spurious wake-up at worst).
//
// The identity is per Segment handle, not per goroutine: any goroutine
// using the handle may unlock, as with sync.Mutex, and a second Lock through
// the same handle blocks. Two handles, in one process or two, exclude each
// other.
//
// Next to the word (accessed atomically only):
//
//	offset 4   flags     mutexInconsistent: the last holder died holding it
//	offset 8   deaths    number of owner deaths recovered from
//	offset 12  deadPID   pid of the last owner that died holding it
//	offset 16  waited    acquisitions that slept in the kernel (uint64)
//	offset 24  waitNs    their total wait, nanoseconds (uint64)
//	offset 32  waitMaxNs the longest of them (uint64)
//	offset 40  timeouts  LockContext calls whose deadline passed while waiting
//	offset 44  cancels   LockContext calls cancelled while waiting
//
// The statistics (offsets 16 to 47) are written only by waits that sleep,
// never on the fast path or while spinning.
const (
	mutexSize = 64

	mtxWord      = 0
	mtxFlags     = 4
	mtxDeaths    = 8
	mtxDeadPID   = 12
	mtxWaited    = 16
	mtxWaitNs    = 24
	mtxWaitMaxNs = 32
	mtxTimeouts  = 40
	mtxCancels   = 44

	lockWaiters       = 0x80000000
	mutexInconsistent = 1

	// spinTries bounds the busy-wait before a contended Lock sleeps.
	// Measured with bench (ps_mutex_contended_2p against
	// c_futex_mutex_contended_2p in one run): 100 tries gave 92 ns per
	// increment against C's 50, 10 gave 48, 0 to 4 gave 41–47. A spinning
	// loser keeps pulling the lock's cache line away from the holder, who
	// would otherwise run many critical sections in a row; a short spin
	// still catches a holder that is just leaving.
	spinTries = 4
)

// mutexCore is the lock itself, used by Mutex and inside Semaphore and Slot.
type mutexCore struct {
	s      *Segment
	closed *uint32 // &s.closed, one load nearer for the fast paths
	word   *uint32
	flags  *uint32
	id     identity
	l      *local
	name   string
}

// newMutexCore returns the lock whose mutexSize bytes start at off in s.
// Zeroed memory is an unlocked, consistent mutex.
func newMutexCore(s *Segment, off uint64, name string) *mutexCore {
	return &mutexCore{
		s:      s,
		closed: &s.closed,
		word:   u32at(s.mem, off+mtxWord),
		flags:  u32at(s.mem, off+mtxFlags),
		id:     s.id,
		l:      s.local(off),
		name:   name,
	}
}

// lock acquires m. It returns nil; or an *OwnerDeadError, holding the lock;
// or ctx.Err() or ErrClosed, not holding it. The caller holds m.s.enter().
func (m *mutexCore) lock(ctx context.Context) error {
	if atomic.CompareAndSwapUint32(m.word, 0, m.id) { // step: mutex.lock.fast_cas
		return m.acquired()
	}
	return m.lockSlow(ctx)
}

func (m *mutexCore) acquired() error {
	if raceEnabled {
		raceAcquire(m.l.race)
	}
	if atomic.LoadUint32(m.flags)&mutexInconsistent != 0 {
		return m.deadError()
	}
	return nil
}

func (m *mutexCore) deadError() error {
	return &OwnerDeadError{Object: m.name, DeadPID: int(atomic.LoadUint32((*uint32)(unsafe.Add(unsafe.Pointer(m.word), mtxDeadPID))))}
}

// tryLock acquires m if it is free, or if its holder is dead. The caller
// holds m.s.enter().
func (m *mutexCore) tryLock() (bool, error) {
	for {
		v := atomic.LoadUint32(m.word)
		if v == 0 {
			if atomic.CompareAndSwapUint32(m.word, 0, m.id) {
				return true, m.acquired()
			}
			continue
		}
		if v&idMask == m.id {
			return false, nil
		}
		h := m.s.lookup(v & idMask)
		if h.alive {
			return false, nil
		}
		if atomic.CompareAndSwapUint32(m.word, v, m.id|v&lockWaiters) {
			return true, m.takeover(h.pid)
		}
	}
}

// takeover records that m was taken from a dead holder with pid deadPID.
func (m *mutexCore) takeover(deadPID int) error {
	base := unsafe.Pointer(m.word)
	atomic.StoreUint32((*uint32)(unsafe.Add(base, mtxDeadPID)), uint32(deadPID))
	atomic.AddUint32((*uint32)(unsafe.Add(base, mtxDeaths)), 1)
	atomic.OrUint32(m.flags, mutexInconsistent)
	if raceEnabled {
		raceAcquire(m.l.race)
	}
	return m.deadError()
}

// lockSlow is lock after the fast path failed. The caller holds
// m.s.enter().
//
// States of one sleeping goroutine (steps of internal/model's Mutex):
//
//	spin     a few loads and CASes of a free word
//	token    waiting for the process-local token (local): at most one
//	         goroutine per handle and object sleeps in the kernel
//	look     read the word: free → take it keeping the waiters bit;
//	         held by a dead identity → take it over (OwnerDeadError);
//	         held by a live one → watch its live word, set lockWaiters
//	sleep    futex_waitv on the word, the cancel word and the holder's
//	         live word; back to look when woken
//	give up  ctx done or Close: wake one more sleeper (passes the wake
//	         on) and return without the lock
func (m *mutexCore) lockSlow(ctx context.Context) (err error) {
	defer m.s.guard(&err, guarded())
	// The model folds the spin into the fast path (internal/model, doc.go).
	for range spinTries {
		if atomic.LoadUint32(m.word) == 0 && atomic.CompareAndSwapUint32(m.word, 0, m.id) { // step: mutex.lock.fast_cas
			return m.acquired()
		}
		pause()
	}
	return m.lockSleep(ctx)
}

// lockSleep is lockSlow after its spin: it waits in the kernel. The caller
// holds m.s.enter().
func (m *mutexCore) lockSleep(ctx context.Context) (err error) {
	defer m.s.guard(&err, guarded())
	defer m.count(time.Now(), &err)
	if err := m.l.acquire(ctx, m.s); err != nil {
		return err
	}
	defer m.l.release()
	// If this process is woken and dies before it takes the lock, the
	// kernel passes the wake on (see armPending), which locks this
	// goroutine to its thread: reschedule first.
	reschedule()
	defer armPending(m.word)() // step: mutex.lock.arm_pending
	for {
		v := atomic.LoadUint32(m.word) // step: mutex.lock.load
		if v == 0 {
			// Others may be sleeping: keep the waiters bit so our Unlock
			// wakes one of them.
			if atomic.CompareAndSwapUint32(m.word, 0, m.id|lockWaiters) { // step: mutex.lock.cas_free
				return m.acquired()
			}
			continue
		}
		var lives []liveRef
		poll := false
		var skip uint64 // the holder's slot, watched first
		if owner := v & idMask; owner != m.id {
			skip, _, _ = m.s.lay.slotOf(owner)
			h := m.s.lookup(owner)
			if !h.alive {
				if atomic.CompareAndSwapUint32(m.word, v, m.id|v&lockWaiters) { // step: mutex.lock.takeover_cas
					return m.takeover(h.pid)
				}
				continue
			}
			if h.live == nil {
				poll = true // its death will not wake us
			} else {
				l, ok := watch(h)
				if !ok {
					continue
				}
				lives = []liveRef{l}
			}
		}
		// And every other process: the one an Unlock wakes may take m
		// and die holding it while this goroutine sleeps (see watchOthers).
		lives, ok, others := m.s.watchOthers(lives, skip)
		if !ok {
			continue
		}
		poll = poll || others
		if v&lockWaiters == 0 {
			if !atomic.CompareAndSwapUint32(m.word, v, v|lockWaiters) { // step: mutex.lock.set_waiters
				continue
			}
			v |= lockWaiters
		}
		err := m.s.sleepv(ctx, m.word, v, lives, poll || m.s.needPoll()) // sleep, but for its reschedule (above)
		if err != nil {
			// This sleeper may have taken the wake of an Unlock.
			futex.Wake(m.word, 1) // step: mutex.lock.pass_wake
			return err
		}
	}
}

// count adds a wait that began at start and ended with *err to m's
// statistics (see the layout above).
func (m *mutexCore) count(start time.Time, err *error) {
	base := unsafe.Pointer(m.word)
	d := uint64(time.Since(start))
	switch *err {
	case context.DeadlineExceeded:
		atomic.AddUint32((*uint32)(unsafe.Add(base, mtxTimeouts)), 1)
	case context.Canceled:
		atomic.AddUint32((*uint32)(unsafe.Add(base, mtxCancels)), 1)
	}
	atomic.AddUint64((*uint64)(unsafe.Add(base, mtxWaited)), 1)
	atomic.AddUint64((*uint64)(unsafe.Add(base, mtxWaitNs)), d)
	maxp := (*uint64)(unsafe.Add(base, mtxWaitMaxNs))
	for {
		old := atomic.LoadUint64(maxp)
		if d <= old || atomic.CompareAndSwapUint64(maxp, old, d) {
			return
		}
	}
}

// unlock releases m, which the caller holds m.s.enter() for. It panics if
// this handle does not hold m.
func (m *mutexCore) unlock() {
	if raceEnabled {
		raceReleaseMerge(m.l.race)
	}
	if atomic.CompareAndSwapUint32(m.word, m.id, 0) { // step: mutex.unlock.fast_cas
		return
	}
	m.unlockSlow()
}

func (m *mutexCore) unlockSlow() {
	for {
		v := atomic.LoadUint32(m.word) // step: mutex.unlock.load
		if v&idMask != m.id {
			panic(&NotOwnerError{Object: m.name, HolderPID: m.holderPID(v), CallerPID: os.Getpid()})
		}
		if atomic.CompareAndSwapUint32(m.word, v, 0) { // step: mutex.unlock.cas
			if v&lockWaiters != 0 {
				futex.Wake(m.word, 1) // step: mutex.unlock.wake
			}
			return
		}
	}
}

func (m *mutexCore) holderPID(v uint32) int {
	if v&idMask == 0 {
		return 0
	}
	return m.s.pidOf(v & idMask)
}

// closedPanic panics for a call of method on an object of a closed segment.
func closedPanic(method, kind, name string, s *Segment) {
	if s.drop {
		panic(fmt.Errorf("processshared: %s of %s %q after its Drop: %w", method, kind, name, ErrClosed))
	}
	panic(fmt.Errorf("processshared: %s of %s %q after %v was closed: %w", method, kind, name, s, ErrClosed))
}

// A Mutex is a mutual exclusion lock shared by processes. Obtain one with
// NewMutex; the zero value is not usable. A Mutex must not be copied.
//
// Ownership is per Segment handle: any goroutine using the handle that
// locked it may Unlock it, as with sync.Mutex, and a Lock through that
// handle while it holds the Mutex blocks. Two handles on one segment, in one
// process or two, exclude each other like two processes. Unlock through a
// handle that does not hold it panics with a *NotOwnerError naming the
// holder.
//
// In the terminology of the Go memory model, the n'th call to Unlock, in any
// process, "synchronizes before" the m'th call to Lock returns, for any n < m.
//
// If the holding process dies, at any instant and in any way (SIGKILL
// included), or closes its Segment while holding the Mutex, the next locker
// acquires the Mutex without delay and is told: LockContext returns an
// error matching ErrOwnerDead, and Consistent reports false. Every later
// Lock is told the same, until a holder that has repaired the state the
// Mutex protects calls MarkConsistent. The Mutex never becomes unusable
// (unlike pthread's ENOTRECOVERABLE).
//
// After its Segment is closed, LockContext returns ErrClosed and every other
// method but Name panics with an error matching ErrClosed.
type Mutex struct {
	m    mutexCore
	off  uint64 // the object's offset in the segment
	ref  objRef
	dead uint32 // what word points to after Drop: never 0 nor an identity
}

// NewMutex finds the Mutex called name in s, creating it (unlocked) if it does
// not exist.
func NewMutex(s *Segment, name string) (*Mutex, error) {
	off, err := s.object(name, KindMutex, 0, mutexSize, nil)
	if err != nil {
		return nil, err
	}
	return &Mutex{m: *newMutexCore(s, off, name), off: off, ref: s.ref(off)}, nil
}

// Drop releases this handle on m: the segment may then reuse the space of
// a deleted Mutex (see Segment.Delete), which another handle on it does not
// pin. Afterwards LockContext returns ErrClosed, and the other methods but
// Name panic with an error matching ErrClosed, as after the segment's
// Close. Drop must be the handle's last call: it must not run while a call
// on the handle, in another goroutine, is in progress. Dropping a held
// Mutex does not unlock it; it stays held by this Segment handle until its
// Close. Drop is idempotent and returns nil.
func (m *Mutex) Drop() error {
	s := m.m.s
	if s.drop {
		return nil
	}
	d := s.dropped()
	m.dead = ^uint32(0)
	m.m.s, m.m.closed, m.m.word = d, &d.closed, &m.dead
	s.unpin(m.off)
	return nil
}

// Name returns the Mutex's name in its segment.
func (m *Mutex) Name() string { return m.m.name }

// lockSlow is Lock after its fast path failed, or after it succeeded on a
// segment closed meanwhile. It spins first, outside the mapping (as the
// fast path runs, and with its check of closed after the CAS), so that a
// lock that frees within a few tries costs no more than the fast path.
func (m *Mutex) lockSlow() {
	for range spinTries {
		if atomic.LoadUint32(m.m.closed) != 0 { // step: mutex.lock.check_closed
			break
		}
		if atomic.LoadUint32(m.m.word) == 0 && atomic.CompareAndSwapUint32(m.m.word, 0, m.m.id) { // step: mutex.lock.fast_cas
			if atomic.LoadUint32(m.m.closed) != 0 { // step: mutex.lock.check_closed
				break
			}
			m.m.acquired() // Lock reports a dead owner through Consistent
			return
		}
		pause()
	}
	err := m.enterAnd(func() error { return m.m.lockSleep(context.Background()) }) // spun already
	if err != nil {
		if _, dead := err.(*OwnerDeadError); !dead {
			if err == ErrClosed {
				closedPanic("Lock", "mutex", m.m.name, m.m.s)
			}
			panic(fmt.Errorf("processshared: Lock of mutex %q: %w", m.m.name, err))
		}
	}
}

// LockContext locks m, or returns ctx.Err() if ctx is done first (an error
// satisfying errors.Is(err, context.DeadlineExceeded) for a deadline). A
// deadline becomes the kernel's wait timeout; cancellation wakes the waiter.
// It returns ErrClosed if the segment is closed, or closed while it waits,
// and ErrDeleted if m was deleted (Segment.Delete) and is held: a deleted
// Mutex that is free is still locked.
//
// If the previous holder died, or closed its Segment holding m, or the
// state is still marked inconsistent, LockContext acquires m and returns an
// *OwnerDeadError (matching ErrOwnerDead). The caller then holds m and must
// repair the protected state, and Unlock m: check for ErrOwnerDead before
// any other error (see the example).
func (m *Mutex) LockContext(ctx context.Context) (err error) {
	// The fast path stays outside the mapping, as Lock's does (see
	// mutex_fast.go): after a Close its CAS and loads land on the
	// placeholder, and the check of closed after them sends the call to
	// lockContext, which returns ErrClosed. A truncated file faults the
	// CAS: guard turns that into ErrTruncated.
	defer m.m.s.guard(&err, guarded())
	if atomic.CompareAndSwapUint32(m.m.word, 0, m.m.id) { // step: mutex.lock.fast_cas
		err := m.m.acquired()
		if atomic.LoadUint32(m.m.closed) == 0 {
			return err
		}
	}
	return m.lockContext(ctx)
}

func (m *Mutex) lockContext(ctx context.Context) error {
	return m.enterAnd(func() error {
		if err := m.m.s.live(m.ref, "mutex "+m.m.name); err != nil {
			return err
		}
		return m.m.lock(ctx)
	})
}

// enterAnd runs lock inside the mapping (Segment.enter), or returns
// ErrClosed.
func (m *Mutex) enterAnd(lock func() error) (err error) {
	if !m.m.s.enter() { // step: mutex.lock.check_closed, mutex.lock.enter
		return ErrClosed
	}
	defer m.m.s.exit()
	defer m.m.s.guard(&err, guarded())
	return lock()
}

// TryLock tries to lock m and reports whether it succeeded. It never blocks.
// It succeeds if m is free or its holder is dead; in the second case
// Consistent reports false. It panics if the segment is closed.
func (m *Mutex) TryLock() bool {
	ok, err := m.tryLock()
	if err == ErrClosed {
		closedPanic("TryLock", "mutex", m.m.name, m.m.s)
	}
	return ok && err == nil || errors.Is(err, ErrOwnerDead)
}

func (m *Mutex) tryLock() (ok bool, err error) {
	if !m.m.s.enter() {
		return false, ErrClosed
	}
	defer m.m.s.exit()
	defer m.m.s.guard(&err, guarded())
	return m.m.tryLock()
}

// unlockSlow is Unlock after its fast path failed. It does not enter the
// mapping: like the fast path it is a CAS (and a FUTEX_WAKE, harmless on
// Close's placeholder), and it checks closed again before it blames the
// caller for not holding m.
func (m *Mutex) unlockSlow() {
	if m.m.s.isClosed() { // step: mutex.unlock.check_closed
		closedPanic("Unlock", "mutex", m.m.name, m.m.s)
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(*NotOwnerError); ok && m.m.s.isClosed() {
				closedPanic("Unlock", "mutex", m.m.name, m.m.s)
			}
			panic(r)
		}
	}()
	m.m.unlockSlow()
}

// query runs f, which reads m's words, inside the mapping; it panics if
// the segment is closed.
func (m *Mutex) query(method string, f func()) {
	if !m.m.s.enter() {
		closedPanic(method, "mutex", m.m.name, m.m.s)
	}
	defer m.m.s.exit()
	f()
}

// Locked reports whether m is held, by any process, at the instant of the
// call. It panics if the segment is closed.
func (m *Mutex) Locked() (locked bool) {
	m.query("Locked", func() { locked = atomic.LoadUint32(m.m.word)&idMask != 0 })
	return locked
}

// HolderPID returns the pid of the process holding m, or 0 if m is free or
// its holder's pid is not known. The pid is the one the holder has in its
// own PID namespace, which may not be the caller's. It panics if the
// segment is closed.
func (m *Mutex) HolderPID() (pid int) {
	m.query("HolderPID", func() { pid = m.m.holderPID(atomic.LoadUint32(m.m.word)) })
	return pid
}

// Consistent reports whether the state m protects is consistent: false after
// a holder died holding m, until MarkConsistent. It panics if the segment
// is closed.
func (m *Mutex) Consistent() (ok bool) {
	m.query("Consistent", func() { ok = atomic.LoadUint32(m.m.flags)&mutexInconsistent == 0 })
	return ok
}

// MarkConsistent declares the state m protects repaired after a holder's
// death. Call it while holding m. It panics if the segment is closed.
func (m *Mutex) MarkConsistent() {
	m.query("MarkConsistent", func() { atomic.AndUint32(m.m.flags, ^uint32(mutexInconsistent)) })
}

// OwnerDeaths returns how many times a holder of m died holding it. It
// panics if the segment is closed.
func (m *Mutex) OwnerDeaths() (n int) {
	m.query("OwnerDeaths", func() {
		n = int(atomic.LoadUint32((*uint32)(unsafe.Add(unsafe.Pointer(m.m.word), mtxDeaths))))
	})
	return n
}
