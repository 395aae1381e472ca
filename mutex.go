package processshared

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// The lock word of a Mutex (32 bits, accessed atomically only):
//
//	bits 0-29  holder: the keeper thread id of the holding process (see
//	           robust_linux.go), 0 when unlocked
//	bit  30    unused (kept clear)
//	bit  31    lockWaiters: a process may be sleeping on the word
//
// Transitions:
//
//	0          → tid             Lock, fast path (CAS)
//	0          → tid|waiters     Lock after sleeping: others may still sleep,
//	                             so the next Unlock must wake one
//	tid        → tid|waiters     a waiter, before it sleeps
//	tid        → 0               Unlock, fast path (CAS): no syscall
//	tid|waiters→ 0 + FUTEX_WAKE  Unlock with sleepers: wakes one process
//	dead|w     → tid|w           a waiter that found the holder dead
//
// This is Drepper's mutex 3 ("Futexes Are Tricky") with the holder's
// identity in place of "1". The naive design, a 0/1 word and a FUTEX_WAKE on
// every unlock, costs a system call per Unlock even without waiters; without
// the holder's identity in the word nobody could tell, after a crash, that
// the holder is gone.
//
// The identity is per process, not per goroutine: any goroutine of the
// holding process may unlock, as with sync.Mutex, and a second Lock in the
// holding process blocks.
//
// Next to the word (accessed atomically only):
//
//	offset 4   flags     mutexInconsistent: the last holder died holding it
//	offset 8   deaths    number of owner deaths recovered from
//	offset 12  deadPID   pid of the last owner that died holding it
const (
	mutexSize = 64

	mtxWord    = 0
	mtxFlags   = 4
	mtxDeaths  = 8
	mtxDeadPID = 12

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
	tid    uint32
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
		tid:    s.tid,
		l:      s.local(off),
		name:   name,
	}
}

func (m *mutexCore) raceAddr() unsafe.Pointer { return unsafe.Pointer(&m.l.race) }

// lock acquires m. It returns nil; or an *OwnerDeadError, holding the lock;
// or ctx.Err() or ErrClosed, not holding it.
func (m *mutexCore) lock(ctx context.Context) error {
	if m.s.isClosed() {
		return ErrClosed
	}
	if atomic.CompareAndSwapUint32(m.word, 0, m.tid) {
		return m.acquired()
	}
	return m.lockSlow(ctx)
}

func (m *mutexCore) acquired() error {
	if raceEnabled {
		raceAcquire(m.raceAddr())
	}
	if atomic.LoadUint32(m.flags)&mutexInconsistent != 0 {
		return m.deadError()
	}
	return nil
}

func (m *mutexCore) deadError() error {
	return &OwnerDeadError{Object: m.name, DeadPID: int(atomic.LoadUint32((*uint32)(unsafe.Add(unsafe.Pointer(m.word), mtxDeadPID))))}
}

// tryLock acquires m if it is free, or if its holder is dead.
func (m *mutexCore) tryLock() (bool, error) {
	if m.s.isClosed() {
		return false, ErrClosed
	}
	for {
		v := atomic.LoadUint32(m.word)
		if v == 0 {
			if atomic.CompareAndSwapUint32(m.word, 0, m.tid) {
				return true, m.acquired()
			}
			continue
		}
		if v&tidMask == m.tid {
			return false, nil
		}
		h := m.s.lookup(v & tidMask)
		if h.alive {
			return false, nil
		}
		if atomic.CompareAndSwapUint32(m.word, v, m.tid|v&lockWaiters) {
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
		raceAcquire(m.raceAddr())
	}
	return m.deadError()
}

func (m *mutexCore) lockSlow(ctx context.Context) (err error) {
	defer m.s.guard(&err, guarded())
	for range spinTries {
		if atomic.LoadUint32(m.word) == 0 && atomic.CompareAndSwapUint32(m.word, 0, m.tid) {
			return m.acquired()
		}
		pause()
	}
	if !m.s.enter() {
		return ErrClosed
	}
	defer m.s.exit()
	if err := m.l.acquire(ctx, m.s); err != nil {
		return err
	}
	defer m.l.release()
	for {
		v := atomic.LoadUint32(m.word)
		if v == 0 {
			// Others may be sleeping: keep the waiters bit so our Unlock
			// wakes one of them.
			if atomic.CompareAndSwapUint32(m.word, 0, m.tid|lockWaiters) {
				return m.acquired()
			}
			continue
		}
		var lives []liveRef
		poll := false
		if owner := v & tidMask; owner != m.tid {
			h := m.s.lookup(owner)
			if !h.alive {
				if atomic.CompareAndSwapUint32(m.word, v, m.tid|v&lockWaiters) {
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
		if v&lockWaiters == 0 {
			if !atomic.CompareAndSwapUint32(m.word, v, v|lockWaiters) {
				continue
			}
			v |= lockWaiters
		}
		if err := m.s.sleep(ctx, m.word, v, lives, poll); err != nil {
			return err
		}
	}
}

// unlock releases m. It panics if this process does not hold m.
func (m *mutexCore) unlock() {
	if m.s.isClosed() {
		panic(fmt.Sprintf("processshared: Unlock of mutex %q after its segment %q was closed", m.name, m.s.name))
	}
	if raceEnabled {
		raceReleaseMerge(m.raceAddr())
	}
	if atomic.CompareAndSwapUint32(m.word, m.tid, 0) {
		return
	}
	m.unlockSlow()
}

func (m *mutexCore) unlockSlow() {
	for {
		v := atomic.LoadUint32(m.word)
		if v&tidMask != m.tid {
			panic(&NotOwnerError{Object: m.name, HolderPID: m.holderPID(v), CallerPID: os.Getpid()})
		}
		if atomic.CompareAndSwapUint32(m.word, v, 0) {
			if v&lockWaiters != 0 {
				futex.Wake(m.word, 1)
			}
			return
		}
	}
}

func (m *mutexCore) holderPID(v uint32) int {
	if v&tidMask == 0 {
		return 0
	}
	return m.s.pidOf(v & tidMask)
}

// A Mutex is a mutual exclusion lock shared by processes. Obtain one with
// NewMutex; the zero value is not usable. A Mutex must not be copied.
//
// Ownership is per process: any goroutine of the holding process may Unlock
// it, as with sync.Mutex, and a Lock in a process that already holds it
// blocks. Unlock by a process that does not hold it panics with a
// *NotOwnerError naming the holder.
//
// In the terminology of the Go memory model, the n'th call to Unlock, in any
// process, "synchronizes before" the m'th call to Lock returns, for any n < m.
//
// If the holding process dies, at any instant and in any way (SIGKILL
// included), the next locker acquires the Mutex without delay and is told:
// LockContext returns an error matching ErrOwnerDead, and Consistent reports
// false. Every later Lock is told the same, until a holder that has repaired
// the state the Mutex protects calls MarkConsistent. The Mutex never becomes
// unusable (unlike pthread's ENOTRECOVERABLE).
type Mutex struct {
	m mutexCore
}

// NewMutex finds the Mutex called name in s, creating it (unlocked) if it does
// not exist.
func NewMutex(s *Segment, name string) (*Mutex, error) {
	off, err := s.object(name, KindMutex, 0, mutexSize, nil)
	if err != nil {
		return nil, err
	}
	return &Mutex{m: *newMutexCore(s, off, name)}, nil
}

// Name returns the Mutex's name in its segment.
func (m *Mutex) Name() string { return m.m.name }

// lockSlow is Lock after its fast path failed.
func (m *Mutex) lockSlow() {
	err := m.m.lock(context.Background())
	if err != nil {
		if _, dead := err.(*OwnerDeadError); !dead {
			panic(fmt.Sprintf("processshared: Lock of mutex %q: %v", m.m.name, err))
		}
	}
}

// LockContext locks m, or returns ctx.Err() if ctx is done first (an error
// satisfying errors.Is(err, context.DeadlineExceeded) for a deadline). A
// deadline becomes the kernel's wait timeout; cancellation wakes the waiter.
// If the previous holder died, or the state is still marked inconsistent,
// LockContext acquires m and returns an *OwnerDeadError (matching
// ErrOwnerDead): the caller holds m and must repair the protected state. It
// returns ErrClosed if the segment is closed.
func (m *Mutex) LockContext(ctx context.Context) (err error) {
	defer m.m.s.guard(&err, guarded())
	return m.m.lock(ctx)
}

// TryLock tries to lock m and reports whether it succeeded. It never blocks.
// It succeeds if m is free or its holder is dead; in the second case
// Consistent reports false.
func (m *Mutex) TryLock() bool {
	ok, err := m.tryLock()
	return ok && err == nil || errors.Is(err, ErrOwnerDead)
}

func (m *Mutex) tryLock() (ok bool, err error) {
	defer m.m.s.guard(&err, guarded())
	return m.m.tryLock()
}

// Locked reports whether m is held, by any process, at the instant of the call.
func (m *Mutex) Locked() bool {
	return !m.m.s.isClosed() && atomic.LoadUint32(m.m.word)&tidMask != 0
}

// HolderPID returns the pid of the process holding m, or 0 if m is free or
// its holder's pid is not known (it died and its table entry was reused).
func (m *Mutex) HolderPID() int {
	if m.m.s.isClosed() {
		return 0
	}
	return m.m.holderPID(atomic.LoadUint32(m.m.word))
}

// Consistent reports whether the state m protects is consistent: false after
// a holder died holding m, until MarkConsistent.
func (m *Mutex) Consistent() bool {
	return m.m.s.isClosed() || atomic.LoadUint32(m.m.flags)&mutexInconsistent == 0
}

// MarkConsistent declares the state m protects repaired after a holder's
// death. Call it while holding m.
func (m *Mutex) MarkConsistent() {
	if !m.m.s.isClosed() {
		atomic.AndUint32(m.m.flags, ^uint32(mutexInconsistent))
	}
}

// OwnerDeaths returns how many times a holder of m died holding it.
func (m *Mutex) OwnerDeaths() int {
	if m.m.s.isClosed() {
		return 0
	}
	return int(atomic.LoadUint32((*uint32)(unsafe.Add(unsafe.Pointer(m.m.word), mtxDeaths))))
}
