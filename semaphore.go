package processshared

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// Semaphore layout (accessed atomically only):
//
//	0    state    owned permits: a 64-bit word, value in its low half (at
//	              offset semLo) and the holder in its high half, so
//	              that one CAS changes both; counting permits: value only
//	     value    bits 0-28: permits available; bit 29 (semHungry): a
//	              waiter is hungry, and only it may take (see "Fairness");
//	              bit 30 (semTable, owned): permits are held through the
//	              held entries, not by the holder; (semLive, counting):
//	              always set; bit 31 (semSleepers): a process may be
//	              sleeping on the word, the futex word sleepers wait on
//	     holder   owned: the identity of the one process that holds every
//	              permit not available, or 0 (see "Owned permits")
//	8    max      the largest value Release may reach; 0 for none
//	12   total    owned: the permits in existence (the initial value)
//	16   jvalid   1 while the journal below describes an update in progress
//	20   jslot    journal: the held entry being changed
//	24   jid      journal: its previous identity
//	28   jcount   journal: its previous count
//	32   jvalue   journal: the previous value (update) or 0 (spill)
//	36   jkind    journal: semJUpdate or semJSpill
//	40   hungry   the identity of the hungry waiter's handle, or 0
//	64   lock     a mutexCore serializing every change of the held entries
//	128  held     one {identity, count uint32} entry per process-table slot: the
//	              permits that slot's process acquired and has not released
//
// A counting semaphore (KindCountingSemaphore, NewCountingSemaphore) has
// the value word, max and hungry only: no holder, lock, journal or held
// entries.
// Its permits belong to nobody, so a take and a post are one CAS each on
// value (see "Counting permits" below), and nothing is returned on a death.
const (
	semState    = 0
	semMax      = 8
	semTotal    = 12
	semSleepers = 0x80000000
	semTable    = 0x40000000
	semLive     = 0x40000000 // counting permits: set in every value word
	semHungry   = 0x20000000
	semCount    = 0x1fffffff // the count bits
	semJValid   = 16
	semJSlot    = 20
	semJID      = 24
	semJCount   = 28
	semJValue   = 32
	semJKind    = 36
	semHungryID = 40
	semLock     = 64
	semHeld     = 128

	semJUpdate = 0 // journal kind: update's entry and value
	semJSpill  = 1 // journal kind: spill's entry (value unchanged)

	semCountingSize = 64 // the size of a counting semaphore: value, max and hungry

)

// starveAfter is how long, in nanoseconds, an Acquire waits before it
// becomes the hungry waiter (see "Fairness"). Tests change it.
var starveAfter = int64(time.Millisecond)

// semLo is the offset of the low half of the 64-bit state word, the value
// word, in the machine's byte order (the holder is the other half).
var semLo = func() uint64 {
	x := uint64(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return 0
	}
	return 4
}()

// Owned permits.
//
// A permit counts against the process that acquired it until it releases
// it; the permits of a dead or closed process return to the semaphore. The
// state is one 64-bit word, value (low half) and holder (high half), plus
// the held entries, which the internal lock (a robust mutexCore) and the
// journal keep consistent. There are two modes, told by value's semTable
// bit:
//
//   - Holder mode (semTable clear). Every permit not available is held by
//     holder, one process (0: none, and then every permit is available):
//     its held count is total - value. The held entries all count 0.
//     Acquire and Release by that process, or an Acquire when there is no
//     holder, are one CAS each on the state word, with no lock and no
//     journal, so a crash at any instant leaves the word exact: the
//     permits of a dead holder are total - value, returned in one CAS.
//   - Table mode (semTable set). Every permit not available is counted by
//     a held entry (each names its process's identity), and the holder
//     half is 0. Acquire and Release change value and an entry under the
//     internal lock, journaled, and the state word changes only under the
//     lock (but for semSleepers). The permits of a dead process are its
//     entries' counts (reclaimDead).
//
// The transitions of the state word (S: semSleepers, T: semTable; n the
// permits asked for, c the count, h the holder, me this process's
// identity):
//
//	take      (c, h) → (c-n, me)            CAS, if !T, c ≥ n, h ∈ {0, me}
//	                                        (osem.take.cas)
//	give      (c, me) → (c+n, me or 0)      CAS, if !T and n ≤ total-c; the
//	                                        holder is 0 once c+n = total;
//	                                        clears S, and wakes all if it
//	                                        was set (osem.give.cas)
//	spill     (c, h) → (c, 0)|T             under the lock, when a process
//	                                        other than a live h wants
//	                                        permits: h's entry := (h,
//	                                        total-c) first, journaled, then
//	                                        the CAS (osem.spill.entry,
//	                                        osem.spill.cas)
//	reclaim   (c, h) → (total, 0)           CAS, h dead (osem.reclaim.holder)
//	update    c → c'                        table mode, under the lock: the
//	                                        entry and value, journaled
//	                                        (osem.table.update)
//	unspill   (total, 0)|T → (total, 0)     under the lock, once every
//	                                        permit is available: the entries
//	                                        all count 0 (osem.unspill)
//	sleep     v → v|S                       a process about to sleep
//
// A crash in a spill, between its entry's store and its CAS, is rolled
// back by the next locker (the journal, as for an update): T set means the
// CAS happened and the entry stays; T clear means it did not, and the entry
// is restored. T is set only by a spill, under the lock, so it tells the
// two apart; in holder mode nothing else writes the entries.
//
// The take and give CASes run outside Segment.enter and check no closed
// flag: neither can succeed on Close's zero placeholder or on the word
// Drop leaves (their expected words have a nonzero holder or count), and
// one that succeeds as Close marks this identity dead is a call before the
// Close, whose permits then return as a dead holder's. Acquire and Release
// make the likeliest one (nobody holding; this process holding exactly n)
// without loading the word first, as the Mutex's Lock CASes from 0.
//
// Identities never repeat (see Identity), so a holder that died is never
// taken for its slot's next process. internal/model's OwnedModel explores
// these transitions with kills at every step.
// A Semaphore is a semaphore shared by processes. It comes in two kinds,
// chosen at creation and recorded in the segment, so that opening it as the
// other kind fails with ErrMismatch:
//
//   - Owned permits (NewSemaphore), a resource limiter in the style of
//     golang.org/x/sync/semaphore: at most N jobs at once. A permit counts
//     against the Segment handle that acquired it until that handle
//     releases it; the permits of a handle that dies or closes holding
//     them return to the semaphore, so a killed job does not leak its
//     slot. Release of permits the handle does not hold is an error
//     (ErrNotHeld): the total is fixed at creation. pshared sem uses this
//     kind. While the permits in use are all held by one process, its
//     Acquire and Release are one atomic operation each; once several
//     processes hold permits, each call takes an internal lock, until
//     every permit is back.
//   - Counting permits (NewCountingSemaphore), a token semaphore in the
//     style of POSIX sem_t or Python's multiprocessing.Semaphore: a permit
//     is a token anyone may post (Release) and anyone may take (Acquire),
//     and nothing is returned when a process dies. Use it to count items
//     handed from producers to consumers, or for a wake-up that may come
//     from any process. An uncontended Acquire or Release is one atomic
//     operation.
//
// Use owned permits when a permit stands for something a process holds and
// must give back (a job slot, a share of a resource); counting permits when
// it stands for something that is handed over (an item, an event).
//
// Obtain one with NewSemaphore or NewCountingSemaphore; the zero value is
// not usable. A Semaphore must not be copied.
//
// A Release, in any process, synchronizes before an Acquire that obtains the
// permits it released.
//
// Fairness: permits go to whichever Acquire finds enough first (barging),
// not in order of arrival, with a starvation bound: an Acquire that has
// waited 1 ms becomes the hungry waiter, one per semaphore, and until it
// has its permits (or gives up) no other Acquire or TryAcquire, in any
// process, takes any. The permits released meanwhile accumulate for it. So
// an Acquire(3) is not starved by a stream of Acquire(1), and, as with
// golang.org/x/sync/semaphore's FIFO order, a process that holds permits
// and asks for more may be held back behind the hungry waiter until it
// releases the ones it holds: acquire what a task needs in one call.
type Semaphore struct {
	s        *Segment
	name     string
	state    *uint64 // owned: the state word
	value    *uint32 // its low half (owned), the value word (counting)
	base     unsafe.Pointer
	lock     *mutexCore // nil for counting permits
	l        *local
	id       identity
	mine     uint64 // offset of this Segment's held entry
	nheld    uint64
	max      uint32
	total    uint32 // owned: the permits in existence
	fast     uint32 // the largest n the fast paths take: min(max, semCount) counting, total owned
	free     uint64 // owned: the state word with every permit available
	me64     uint64 // owned: free with this process as the holder; less n, this process holding n
	counting bool
	off      uint64
	ref      objRef
	dead     uint64 // what state and value point to after Drop
}

// NewSemaphore finds the Semaphore of owned permits called name in s,
// creating it with initial permits if it does not exist. max must be 0 or
// equal to initial: the total of owned permits is fixed (see Semaphore), at
// most 1<<29 - 1. An existing semaphore must have been created by NewSemaphore with the same
// max; one created by NewCountingSemaphore gives ErrMismatch.
func NewSemaphore(s *Segment, name string, initial, max int) (*Semaphore, error) {
	if initial < 0 || max < 0 || initial > math.MaxInt32 || max != 0 && max != initial {
		return nil, fmt.Errorf("processshared: semaphore %q: bad initial value %d or maximum %d (owned permits: the maximum is 0 or the initial value)", name, initial, max)
	}
	if initial > semCount {
		return nil, fmt.Errorf("processshared: semaphore %q: initial value %d above %d, the most owned permits", name, initial, semCount)
	}
	procCap := s.lay.procCap
	size := semHeld + procCap*8
	off, err := s.object(name, KindSemaphore, uint32(max), size, func(mem []byte) {
		store64(mem, semState, uint64(initial)) // holder 0: every permit available
		store32(mem, semMax, uint32(max))
		store32(mem, semTotal, uint32(initial))
	})
	if err != nil {
		return nil, err
	}
	total := load32(s.mem, off+semTotal)
	if total > semCount || max != 0 && total != uint32(max) {
		return nil, fmt.Errorf("%w: semaphore %q has %d permits in all, max %d", ErrCorrupt, name, total, max)
	}
	procOff := s.lay.procOff
	m := &Semaphore{
		off:   off,
		ref:   s.ref(off),
		s:     s,
		name:  name,
		state: u64at(s.mem, off+semState),
		value: u32at(s.mem, off+semState+semLo),
		base:  unsafe.Pointer(&s.mem[off]),
		lock:  newMutexCore(s, off+semLock, name),
		l:     s.local(off),
		id:    s.id,
		mine:  semHeld + (s.slot-procOff)/procSlotSize*8,
		nheld: procCap,
		max:   uint32(max),
		total: total,
		fast:  total,
		free:  uint64(total),
		me64:  uint64(s.id)<<32 | uint64(total),
	}
	return m, nil
}

// NewCountingSemaphore finds the Semaphore of counting permits called name
// in s, creating it with initial permits if it does not exist. max, if not
// zero, is the largest value the semaphore may reach: a bounded semaphore
// (max 1 gives a binary semaphore). The value never exceeds 1<<29 - 1. An existing semaphore must have been
// created by NewCountingSemaphore with the same max; one created by
// NewSemaphore gives ErrMismatch.
func NewCountingSemaphore(s *Segment, name string, initial, max int) (*Semaphore, error) {
	if initial < 0 || max < 0 || initial > semCount || max > semCount || max != 0 && initial > max {
		return nil, fmt.Errorf("processshared: semaphore %q: bad initial value %d or maximum %d (at most %d)", name, initial, max, semCount)
	}
	off, err := s.object(name, KindCountingSemaphore, uint32(max), semCountingSize, func(mem []byte) {
		store32(mem, semState+semLo, uint32(initial)|semLive)
		store32(mem, semMax, uint32(max))
	})
	if err != nil {
		return nil, err
	}
	return &Semaphore{
		off:      off,
		ref:      s.ref(off),
		s:        s,
		name:     name,
		value:    u32at(s.mem, off+semState+semLo),
		base:     unsafe.Pointer(&s.mem[off]),
		l:        s.local(off),
		id:       s.id,
		max:      uint32(max),
		fast:     uint32(cmp.Or(max, semCount)),
		counting: true,
	}, nil
}

// Counting reports whether m has counting permits (NewCountingSemaphore)
// rather than owned ones (NewSemaphore).
func (m *Semaphore) Counting() bool { return m.counting }

// Drop releases this handle on m: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Drop is idempotent and returns nil.
func (m *Semaphore) Drop() error {
	if s := m.s; !s.drop {
		d := s.dropped()
		// The fast paths run outside Segment.enter: point them at a word
		// of this handle's, never at the space a later object may reuse.
		// It is 0: no permits, no holder and no semLive, so every fast
		// path fails and goes to its slow path, which finds the stand-in
		// closed.
		m.state, m.value = &m.dead, (*uint32)(unsafe.Add(unsafe.Pointer(&m.dead), semLo))
		m.s = d
		s.unpin(m.off)
	}
	return nil
}

func (m *Semaphore) w(off uint64) *uint32 { return (*uint32)(unsafe.Add(m.base, off)) }

// Name returns the Semaphore's name in its segment.
func (m *Semaphore) Name() string { return m.name }

// Value returns the number of permits available at the instant of the call.
// It panics if the segment is closed.
func (m *Semaphore) Value() int {
	if !m.s.enter() {
		closedPanic("Value", "semaphore", m.name, m.s)
	}
	defer m.s.exit()
	return int(atomic.LoadUint32(m.value) & semCount)
}

// enter takes the internal lock, repairing the state if its last holder
// died. A counting semaphore has no internal lock: enter does nothing.
func (m *Semaphore) enter() error {
	if m.counting {
		return nil
	}
	err := m.lock.lock(context.Background()) // step: osem.lock
	if err != nil {
		if _, dead := err.(*OwnerDeadError); !dead {
			return err
		}
		if atomic.LoadUint32(m.w(semJValid)) != 0 {
			// step: osem.replay
			e := uint64(atomic.LoadUint32(m.w(semJSlot)))
			restore := e >= semHeld && e < semHeld+m.nheld*8
			if atomic.LoadUint32(m.w(semJKind)) == semJSpill {
				// T set: the spill's CAS happened, and its entry stands.
				restore = restore && atomic.LoadUint64(m.state)&semTable == 0
			} else {
				m.setCount(atomic.LoadUint32(m.w(semJValue)))
			}
			if restore {
				atomic.StoreUint32(m.w(e), atomic.LoadUint32(m.w(semJID)))
				atomic.StoreUint32(m.w(e+4), atomic.LoadUint32(m.w(semJCount)))
			}
			atomic.StoreUint32(m.w(semJValid), 0)
		}
		atomic.AndUint32(m.lock.flags, ^uint32(mutexInconsistent))
	}
	return nil
}

// leave releases the internal lock that enter took, first leaving table
// mode if every permit is available.
func (m *Semaphore) leave() {
	if m.counting {
		return
	}
	for {
		v := atomic.LoadUint64(m.state)
		if v&semTable == 0 || uint32(v)&semCount != m.total {
			break
		}
		if atomic.CompareAndSwapUint64(m.state, v, v&^semTable) { // step: osem.unspill
			break
		}
	}
	m.lock.unlock() // step: osem.leave
}

// update sets value and the held entry e to (id, count), journaled, in
// table mode. The caller holds the internal lock, whose acquire and release
// order these stores for the next holder, so all but value (read without
// the lock by spinners and by the futex) are plain stores: a seq-cst store
// costs an XCHG, and an update makes nine. A process killed half-way
// leaves its stores visible once it is dead, which is when the journal is
// replayed.
func (m *Semaphore) update(value uint32, e uint64, id, count uint32) {
	*m.w(semJSlot) = uint32(e)
	*m.w(semJID) = *m.w(e)
	*m.w(semJCount) = *m.w(e + 4)
	*m.w(semJValue) = atomic.LoadUint32(m.value) & semCount
	*m.w(semJKind) = semJUpdate
	*m.w(semJValid) = 1
	*m.w(e) = id // step: osem.table.update
	*m.w(e + 4) = count
	m.setCount(value)   // step: osem.table.set
	*m.w(semJValid) = 0 // step: osem.table.done
}

// setCount sets the permits available to c in table mode, keeping the
// sleepers bit, which processes about to sleep set without the internal
// lock, and the table bit. The caller holds the internal lock.
func (m *Semaphore) setCount(c uint32) {
	for {
		v := atomic.LoadUint64(m.state)
		if atomic.CompareAndSwapUint64(m.state, v, v&^semCount|uint64(c&semCount)) {
			return
		}
	}
}

// wakeSleepers clears the sleepers bit and, if it was set, wakes every
// process sleeping on the value. Every one of them looks again: the permits
// released may suit any of them, whatever they asked for, and a sleeper
// that cannot use them sleeps again (there is at most one sleeper per
// process, see local, so this wakes at most one thread per process).
func (m *Semaphore) wakeSleepers() {
	for {
		v := atomic.LoadUint32(m.value) // step: sem.release.load_waiters
		if v&semSleepers == 0 {
			return
		}
		if atomic.CompareAndSwapUint32(m.value, v, v&^semSleepers) { // step: sem.release.clear_sleepers
			wakeAll(m.value) // step: sem.release.wake
			return
		}
	}
}

// takeFast is the take transition of owned permits (see "Owned
// permits"): n permits in one CAS, if the state is in holder mode and this
// process is the holder or there is none.
//
// Its first CAS is from the state in which every permit is available, not
// from a loaded one, as the Mutex's Lock is from 0: a load before the CAS
// costs about as much as the CAS on this path. A CAS that fails changes
// nothing, and the loop below starts from the word.
func (m *Semaphore) takeFast(n uint32) bool {
	return atomic.CompareAndSwapUint64(m.state, m.free, m.me64-uint64(n)) || m.takeLoop(n, false) // step: osem.take.cas
}

// takeQuick is the take of Acquire's fast path once its first CAS failed,
// with no lock: for owned permits, takeFast; for counting permits, take
// (a CAS while there are enough and nobody is hungry).
func (m *Semaphore) takeQuick(n uint32) bool {
	if m.counting {
		return m.take(n, false) // no lock for counting permits
	}
	return m.takeFast(n)
}

// takeLoop is takeFast from the word as loaded; hungry says whether the
// caller is the hungry waiter (see "Fairness"), which alone may take while
// semHungry is set.
func (m *Semaphore) takeLoop(n uint32, hungry bool) bool {
	for {
		v := atomic.LoadUint64(m.state)
		if v&semTable != 0 || uint32(v)&semCount < n || v&semHungry != 0 && !hungry {
			return false
		}
		if h := uint32(v >> 32); h != 0 && h != m.id {
			return false
		}
		if atomic.CompareAndSwapUint64(m.state, v, uint64(m.id)<<32|uint64(uint32(v)-n)) { // step: osem.take.cas
			return true
		}
	}
}

// giveFast is the give transition of owned permits: it returns n permits
// this process holds in holder mode, in one CAS, waking the sleepers if
// there are any. It reports false, having done nothing, if the state is in
// table mode or this process holds fewer than n in holder mode.
//
// Like takeFast, it first tries the likeliest state without loading the
// word: this process holding exactly n, and no sleepers.
func (m *Semaphore) giveFast(n uint32) (bool, error) {
	if atomic.CompareAndSwapUint64(m.state, m.me64-uint64(n), m.free) { // step: osem.give.cas
		return true, nil
	}
	return m.giveLoop(n)
}

// giveLoop is giveFast from the word as loaded.
func (m *Semaphore) giveLoop(n uint32) (bool, error) {
	for {
		v := atomic.LoadUint64(m.state)
		c := uint32(v) & semCount
		if v&semTable != 0 || uint32(v>>32) != m.id || n > m.total-c {
			return false, nil
		}
		nv := uint64(c+n) | uint64(uint32(v)&semHungry)
		if c+n != m.total {
			nv |= uint64(m.id) << 32
		}
		if atomic.CompareAndSwapUint64(m.state, v, nv) { // step: osem.give.cas
			if uint32(v)&semSleepers != 0 {
				// Outside Segment.enter, and even if the segment is closed:
				// the address stays mapped while m is reachable, to the
				// segment or to Close's placeholder (where a wake finds
				// nobody).
				wakeAll(m.value) // step: sem.release.wake
			}
			return true, nil
		}
	}
}

// take takes n permits if there are enough, under the internal lock (for
// counting permits, with a CAS), and if no other waiter is hungry: hungry
// says whether the caller is the hungry waiter (see "Fairness"). In holder
// mode, it spills the holder's permits to its held entry if another
// process holds them, so that this one can take from the rest.
func (m *Semaphore) take(n uint32, hungry bool) bool {
	if m.counting {
		for {
			v := atomic.LoadUint32(m.value)
			if v&semCount < n || v&semHungry != 0 && !hungry {
				return false
			}
			if atomic.CompareAndSwapUint32(m.value, v, v-n) {
				return true
			}
		}
	}
	for {
		v := atomic.LoadUint64(m.state)
		c := uint32(v) & semCount
		if c < n || v&semHungry != 0 && !hungry {
			return false
		}
		if v&semTable != 0 {
			held := m.held()
			if c = atomic.LoadUint32(m.value) & semCount; c < n {
				return false // held returned no permits, and took none
			}
			m.update(c-n, m.mine, m.id, held+n)
			return true
		}
		if m.takeLoop(n, hungry) {
			return true
		}
		if h := identity(v >> 32); h != 0 && h != m.id {
			if !m.s.lookup(h).alive {
				m.reclaimHolder(v)
			} else {
				m.spill(v)
			}
		}
	}
}

// spill moves the permits of v's holder, another process, to its held
// entry and sets table mode, if the state is still v (see "Owned
// permits"). The caller holds the internal lock.
func (m *Semaphore) spill(v uint64) {
	h := identity(v >> 32)
	off, _, ok := m.s.lay.slotOf(h)
	if !ok {
		m.reclaimHolder(v) // no such identity: a corrupt word
		return
	}
	e := semHeld + (off-m.s.lay.procOff)/procSlotSize*8
	*m.w(semJSlot) = uint32(e)
	*m.w(semJID) = *m.w(e)
	*m.w(semJCount) = *m.w(e + 4)
	*m.w(semJValue) = 0
	*m.w(semJKind) = semJSpill
	*m.w(semJValid) = 1
	*m.w(e) = h // step: osem.spill.entry
	*m.w(e + 4) = m.total - uint32(v)&semCount
	if !atomic.CompareAndSwapUint64(m.state, v, uint64(uint32(v)|semTable)) { // step: osem.spill.cas
		*m.w(e) = *m.w(semJID)
		*m.w(e + 4) = *m.w(semJCount)
	}
	*m.w(semJValid) = 0 // step: osem.spill.done
}

// reclaimHolder returns the permits of v's holder, which is dead, if the
// state is still v: in holder mode they are every permit not available.
func (m *Semaphore) reclaimHolder(v uint64) {
	atomic.CompareAndSwapUint64(m.state, v, uint64(uint32(v)&(semSleepers|semHungry)|m.total)) // step: osem.reclaim.holder
}

// held returns the permits this process holds in table mode, first
// returning those of a dead predecessor in its table slot. The caller
// holds the internal lock.
func (m *Semaphore) held() uint32 {
	if atomic.LoadUint32(m.w(m.mine)) == m.id {
		return atomic.LoadUint32(m.w(m.mine + 4))
	}
	if atomic.LoadUint32(m.w(m.mine+4)) != 0 {
		m.reclaim(m.mine)
	}
	return 0
}

// reclaim returns the permits of held entry e to value. Its holder is dead.
func (m *Semaphore) reclaim(e uint64) {
	v := uint64(atomic.LoadUint32(m.value)&semCount) + uint64(atomic.LoadUint32(m.w(e+4)))
	m.update(uint32(min(v, uint64(m.total))), e, 0, 0) // step: osem.reclaim.entry
}

// reclaimDead returns the permits of dead holders to the value. The caller
// holds the internal lock. (The deaths of live holders are watched by
// watchOthers, as every other process's.) In holder mode there is one
// holder to look up; in table mode, every entry that counts permits.
func (m *Semaphore) reclaimDead() {
	if m.counting {
		return // nobody holds counting permits
	}
	for {
		v := atomic.LoadUint64(m.state)
		if v&semTable != 0 {
			break
		}
		h := identity(v >> 32)
		if h == 0 || h == m.id || m.s.lookup(h).alive {
			return
		}
		m.reclaimHolder(v)
	}
	for i := range m.s.procHigh() { // the entries past it count 0 (proc.go, "The high-water mark")
		e := semHeld + i*8
		if atomic.LoadUint32(m.w(e+4)) == 0 {
			continue
		}
		if id := atomic.LoadUint32(m.w(e)); id != m.id && !m.s.lookup(id).alive {
			m.reclaim(e)
		}
	}
}

// Fairness.
//
// Barging with a starvation bound. A waiter in acquireSlow's loop that has
// waited starveAfter, or finds semHungry set with the record naming a dead
// handle, becomes the hungry waiter (hunger); while semHungry is set, every
// take but the hungry waiter's fails: the fast paths' (their expected words
// lack the bit, or they test it), TryAcquire's, and those of the other
// waiters, who sleep as for too few permits. Releases keep the bit, so the
// permits accumulate until the hungry waiter's take succeeds. Its return,
// acquired or not (cancelled, closed), ends the hunger (sated), waking
// every sleeper. Its death leaves the record naming a dead handle: the
// sleepers watch every other process (watchOthers), so the death wakes
// them, and the first to look takes the hunger over.
//
//	hunger    record: r → me             CAS, if r is 0 or names a dead
//	                                     handle (sem.acquire.hungry_claim)
//	          value: v → v|H             CAS (sem.acquire.hungry_set)
//	take      as without hunger          if !H, or by the hungry waiter
//	sated     value: v → v&^(H|S)        CAS, then wake all if S was set
//	                                     (sem.acquire.sated, sated_wake)
//	          record: me → 0             CAS (sem.acquire.sated_record)
//
// The hungry waiter keeps its process's token (local) until it returns: it
// never yields it, since no other goroutine may take while it is hungry.
// internal/model's SemaphoreModel explores hunger with kills, cancellations
// and Close at every step.

// Counting permits.
//
// The value word is the state (but for the hungry record, see "Fairness"):
// bits 0-28 the permits available, bit 29 (semHungry), bit 30 (semLive)
// always set, bit 31 (semSleepers) a process may sleep on the word. Its
// transitions:
//
//	take    v → v-n      CAS, if v's count ≥ n and !H (sleepers bit kept)
//	post    v → (v+n)&^S CAS, if v has semLive and count+n is within max;
//	                     if v had S, wake all sleepers on the word
//	                     (sem.release.wake)
//	sleep   v → v|S      CAS by a process about to sleep, then
//	                     futex_waitv(value, v|S) as for owned permits
//
// A post clears S in the same CAS that adds its permits, so a sleeper that
// set S before the post is woken, and one that sets S after it sees the new
// count in its CAS (it fails) or in the futex's compare. A poster killed
// between its CAS and its wake leaves sleepers asleep with permits free:
// they watch every other attached process (watchOthers), and the death
// changes a word their sleep names. The slow path of Acquire is the owned
// one (acquireSlow) with take as above and no internal lock, journal or
// reclaim.
//
// The fast paths do not enter the segment (see Segment.enter and Mutex's
// fast paths): a Close may replace the mapping by its zero placeholder at
// any instant. Neither CAS can succeed there, nor on the word Drop leaves:
// a take finds 0 permits, and a post finds no semLive (which is what the
// bit is for), so a successful CAS is a real one, made before the Close.
// The fast paths thus check no closed flag, and each is one load and one
// CAS, as sem_wait's and sem_post's.
//
// Release's fast path posts only if no sleepers bit is set: a post that
// clears it must wake, and does so inside Segment.enter (post), so that it
// comes wholly before a Close of its handle or not at all. Outside, its CAS
// could land after the Close marked the handle dead, when the sleepers no
// longer watch it, and a kill before the wake would leave them asleep with
// the permits free (internal/model, BugPostOutside). A post without
// sleepers has nobody to wake: a process that sets the bit later sees the
// new value.

// Acquire acquires n permits, blocking until they are available or ctx is
// done. On failure it returns ctx.Err() (or ErrClosed, or ErrDeleted when
// it would wait on a semaphore that was deleted) and acquires nothing. An
// n above a bounded semaphore's maximum is an error; one above the total of
// owned permits (maximum 0) waits until ctx is done, as in
// golang.org/x/sync/semaphore.
// Permits are granted to whichever waiter finds them first, not in order
// (see Semaphore). An Acquire that finds enough takes them in one atomic
// operation (with owned permits, while no other process holds any; see
// Semaphore), even if ctx is already done.
//
// The fast paths here check n with one unsigned comparison (a valid n is 1
// to m.fast: min(max, semCount) counting, the total owned) and make one
// CAS: the owned one from words computed at open, not loaded (see
// takeFast), the counting one from the word as loaded, as sem_wait's. They
// can succeed neither on Close's zero placeholder nor on the word Drop
// leaves, so they check no closed flag (see "Owned permits" and "Counting
// permits"). They are not small enough to be inlined.
func (m *Semaphore) Acquire(ctx context.Context, n int) error {
	if !m.counting {
		if uint(n-1) < uint(m.fast) && atomic.CompareAndSwapUint64(m.state, m.free, m.me64-uint64(n)) { // step: osem.take.cas
			return m.acquired()
		}
	} else if v := atomic.LoadUint32(m.value); uint(v&semCount) > uint(n-1) && v&semHungry == 0 && atomic.CompareAndSwapUint32(m.value, v, v-uint32(n)) { // step: sem.acquire.fast_cas
		return m.acquired()
	}
	return m.acquire(ctx, n)
}

// acquire is Acquire past its first CAS.
func (m *Semaphore) acquire(ctx context.Context, n int) error {
	if uint(n-1) < uint(m.fast) && m.takeQuick(uint32(n)) {
		return m.acquired()
	}
	return m.acquireWait(ctx, n)
}

// acquireWait is Acquire past its fast paths. (It is a function of its own
// because its defers, in one with the fast paths' returns, are not
// open-coded and cost more than the fast paths.)
func (m *Semaphore) acquireWait(ctx context.Context, n int) error {
	if n < 0 || n > math.MaxInt32 || m.max != 0 && n > int(m.max) {
		return fmt.Errorf("processshared: Acquire(%d) on semaphore %q: bad count", n, m.name)
	}
	if n > int(m.fast) {
		// More than the semaphore can ever have (the total of owned
		// permits, or semCount): as golang.org/x/sync/semaphore, wait
		// until ctx is done, without ever becoming hungry and holding
		// the others back.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.s.done:
			return ErrClosed
		}
	}
	if !m.s.enter() { // step: sem.acquire.enter
		return ErrClosed
	}
	defer m.s.exit()                  // step: sem.acquire.exit
	if err := ctx.Err(); err != nil { // step: sem.acquire.check
		return err
	}
	ok, err := m.tryAcquire(uint32(n), false) // step: sem.acquire.try
	if ok || err != nil {
		return err
	}
	// Spin briefly: a Release from another CPU usually comes soon.
	if m.l.spin(func() bool { v := atomic.LoadUint32(m.value); return v&semCount >= uint32(n) && v&semHungry == 0 }) { // step: sem.acquire.spin
		if ok, err := m.tryAcquire(uint32(n), false); ok || err != nil { // step: sem.acquire.try
			return err
		}
	}
	return m.acquireSlow(ctx, uint32(n))
}

func (m *Semaphore) acquireSlow(ctx context.Context, n uint32) (err error) {
	defer m.s.guard(&err, guarded())
	if !m.s.enter() { // step: sem.acquire.enter
		return ErrClosed
	}
	defer m.s.exit()
	if err := m.s.live(m.ref, "semaphore "+m.name); err != nil {
		return err // deleted: nobody may ever release it
	}
	try := func() bool {
		ok, _ := m.tryAcquire(n, false) // an error shows again below
		return ok
	}
	have, err := m.l.acquireFor(ctx, m.s, n, try)
	if err != nil || !have {
		return err // or acquired by try
	}
	defer func() {
		if have {
			m.l.release()
		}
	}()
	// hungry: this goroutine is the hungry waiter (see "Fairness"). It
	// keeps the token until it returns, so no other goroutine of this
	// process runs this loop meanwhile, and ends the hunger on every
	// return, acquired or not.
	hungry := false
	defer func() {
		if hungry {
			m.sated()
		}
	}()
	start := futex.Now()
	var lives []liveRef
	for {
		if err := m.enter(); err != nil { // step: sem.acquire.locked
			return err
		}
		if m.take(n, hungry) {
			m.leave()
			return m.acquired()
		}
		// Watch every other attached process, not only the holders: a
		// process holding no permits may die between raising the value
		// and waking the sleepers (Release). The watches come first, then
		// the reclaim: a holder that dies after its watch changes a word
		// the sleep names, and one that died before is reclaimed. (In the
		// other order, a holder found alive by the reclaim and dead by the
		// watch would be neither: internal/model, BugReclaimFirst.)
		var ok, others bool
		lives, ok, others = m.s.watchOthers(lives[:0], 0)
		if !ok {
			m.leave()
			continue
		}
		m.reclaimDead()
		if m.take(n, hungry) {
			m.leave()
			return m.acquired()
		}
		m.leave()
		poll := others
		v := atomic.LoadUint32(m.value) // step: sem.acquire.load_value
		if v&semCount >= n && (v&semHungry == 0 || hungry) {
			continue
		}
		if !hungry && (v&semHungry != 0 || futex.Now()-start >= starveAfter) && m.hunger() {
			hungry = true
			continue
		}
		if v&semSleepers == 0 {
			if !atomic.CompareAndSwapUint32(m.value, v, v|semSleepers) { // step: sem.acquire.set_sleepers
				continue
			}
			v |= semSleepers
		}
		// Too few for this Acquire, maybe enough for another goroutine of
		// this process that waits for the token (unless a waiter is
		// hungry: then nobody else may take): let it look. It registers
		// its demand, then retries its take, then blocks on the token. So
		// either could, which comes after the sleepers bit above, sees the
		// demand, or the demand (and the retry) came after could, so after
		// the bit: a Release after the retry finds the bit and wakes this
		// process's sleeper. (could before the bit's CAS lost that
		// Release: the CAS can succeed on a value that went away and came
		// back, and the Release in between found no bit; internal/model,
		// BugCouldFirst.)
		if c := v & semCount; c > 0 && v&semHungry == 0 && m.l.could(c) { // step: sem.acquire.could
			if done, err := m.yield(ctx, n, try, &have); done {
				return err
			}
			continue
		}
		// A Release wakes every sleeping process (wakeSleepers), so a
		// sleeper that returns without permits (cancelled, closed, or
		// finding too few) has taken no wake-up from anyone else: nothing
		// to pass on across processes.
		if err := m.s.sleep(ctx, m.value, v, lives, poll); err != nil {
			return err
		}
		// Woken, but the permits may suit another goroutine of this
		// process better (a smaller Acquire parked on the token): let it
		// look first.
		if v := atomic.LoadUint32(m.value); v&semCount > 0 && v&semCount < n && v&semHungry == 0 && m.l.could(v&semCount) { // step: sem.acquire.load_woken, sem.acquire.could
			if done, err := m.yield(ctx, n, try, &have); done {
				return err
			}
		}
	}
}

// hunger makes this handle the hungry waiter (see "Fairness"), unless
// another live one is: it claims the record, then sets semHungry. In that
// order, semHungry is never set without a record naming who set it, or
// whose hunger was taken over; a waiter that finds the record naming a
// dead handle takes it over, semHungry set or not.
func (m *Semaphore) hunger() bool {
	w := m.w(semHungryID)
	r := atomic.LoadUint32(w) // step: sem.acquire.hungry_load
	if r != 0 && r != m.id && m.s.lookup(r).alive {
		return false
	}
	if !atomic.CompareAndSwapUint32(w, r, m.id) { // step: sem.acquire.hungry_claim
		return false
	}
	for {
		v := atomic.LoadUint32(m.value)
		if v&semHungry != 0 || atomic.CompareAndSwapUint32(m.value, v, v|semHungry) { // step: sem.acquire.hungry_set
			return true
		}
	}
}

// sated ends this handle's hunger, acquired or not: it clears semHungry,
// and semSleepers, waking every sleeper if that was set (the hunger held
// them back, and some may take now), then the record. A death between the
// two leaves a record naming a dead handle, which the next hungry waiter
// takes over; a death before the wake is seen by the sleepers, who watch
// every other process.
func (m *Semaphore) sated() {
	for {
		v := atomic.LoadUint32(m.value)
		if atomic.CompareAndSwapUint32(m.value, v, v&^(semHungry|semSleepers)) { // step: sem.acquire.sated
			if v&semSleepers != 0 {
				wakeAll(m.value) // step: sem.acquire.sated_wake
			}
			break
		}
	}
	atomic.CompareAndSwapUint32(m.w(semHungryID), m.id, 0) // step: sem.acquire.sated_record
}

// yield hands the token to a goroutine waiting for it and waits for it
// again (see acquireFor); *have tracks whether the caller holds the token.
// It reports done if the Acquire is over: acquired by try (err nil), or
// given up (err set).
func (m *Semaphore) yield(ctx context.Context, n uint32, try func() bool, have *bool) (done bool, err error) {
	m.l.release() // step: sem.acquire.yield_token
	*have, err = m.l.acquireFor(ctx, m.s, n, try)
	return err != nil || !*have, err
}

func (m *Semaphore) acquired() error {
	if raceEnabled {
		raceAcquire(m.l.race)
	}
	return nil
}

// tryAcquire takes n permits if available, reclaiming dead holders' permits
// if there are too few and reclaim is set.
func (m *Semaphore) tryAcquire(n uint32, reclaim bool) (_ bool, err error) {
	defer m.s.guard(&err, guarded())
	if err := m.enter(); err != nil {
		return false, err
	}
	ok := m.take(n, false)
	if !ok && reclaim {
		m.reclaimDead()
		ok = m.take(n, false)
	}
	m.leave()
	if ok {
		m.acquired()
	}
	return ok, nil
}

// TryAcquire acquires n permits without blocking and reports whether it did.
// If there are too few, it first returns the permits of dead holders. It
// panics if the segment is closed.
func (m *Semaphore) TryAcquire(n int) bool {
	if !m.s.enter() {
		closedPanic("TryAcquire", "semaphore", m.name, m.s)
	}
	defer m.s.exit()
	if n < 0 || n > math.MaxInt32 {
		return false
	}
	ok, _ := m.tryAcquire(uint32(n), true)
	return ok
}

// Release releases n permits. With owned permits it returns an error
// matching ErrNotHeld, and releases nothing, if this Segment handle holds
// fewer than n (a bug in the caller: the permits were never acquired, or
// were acquired through another handle). With counting permits it returns
// an error matching ErrOverflow, and releases nothing, if that would raise
// the value past the maximum. It returns ErrClosed, and releases nothing,
// if the segment is closed (a Release concurrent with Close either
// releases and returns nil or does neither). With no waiters it makes no
// system call; an uncontended Release is one atomic operation (with owned
// permits, while no other process holds any).
func (m *Semaphore) Release(n int) error {
	if raceEnabled {
		raceReleaseMerge(m.l.race)
	}
	if !m.counting {
		if uint(n-1) < uint(m.fast) && atomic.CompareAndSwapUint64(m.state, m.me64-uint64(n), m.free) { // step: osem.give.cas
			return nil
		}
	} else if v := atomic.LoadUint32(m.value); v&^semCount == semLive && uint(n-1) < uint(m.fast)-uint(v&semCount) && atomic.CompareAndSwapUint32(m.value, v, v+uint32(n)) { // step: sem.release.fast_cas
		// As sem_post's: no sleepers (else post wakes them), and room for n.
		return nil
	}
	return m.release(n)
}

// release is Release past its first CAS.
func (m *Semaphore) release(n int) (err error) {
	if n < 0 || n > math.MaxInt32 {
		return fmt.Errorf("processshared: Release(%d) on semaphore %q: bad count", n, m.name)
	}
	if m.counting {
		return m.post(n)
	}
	if uint(n-1) < uint(m.fast) {
		if ok, err := m.giveFast(uint32(n)); ok {
			return err
		}
	}
	return m.releaseLocked(n)
}

// releaseLocked is an owned Release past its fast paths, under the
// internal lock (a function of its own, as acquireWait).
func (m *Semaphore) releaseLocked(n int) (err error) {
	if !m.s.enter() { // step: sem.release.enter
		return ErrClosed
	}
	defer m.s.exit()
	defer m.s.guard(&err, guarded())
	if err := m.enter(); err != nil { // step: sem.release.locked
		return err
	}
	var held uint32
	if sv := atomic.LoadUint64(m.state); sv&semTable == 0 { // step: osem.release.check
		// Holder mode: only this process can change its holding, and
		// only a spill, under the lock, can move it to the table.
		if uint32(sv>>32) == m.id {
			held = m.total - uint32(sv)&semCount
		}
		if held >= uint32(n) {
			// Under the lock, no spill can come between.
			_, err := m.giveFast(uint32(n))
			m.leave()
			return err
		}
	} else {
		held = m.held()
	}
	if held < uint32(n) {
		m.leave()
		return fmt.Errorf("%w: Release(%d) on semaphore %q, of which this handle holds %d", ErrNotHeld, n, m.name, held)
	}
	v := uint64(atomic.LoadUint32(m.value)&semCount) + uint64(n)
	if m.max != 0 && v > uint64(m.max) || v > math.MaxInt32 {
		m.leave()
		return fmt.Errorf("%w: semaphore %q at %d, max %d, release of %d", ErrOverflow, m.name, v-uint64(n), m.max, n)
	}
	id := m.id
	held -= uint32(n)
	if held == 0 {
		id = 0
	}
	m.update(uint32(v), m.mine, id, held)
	m.leave()
	m.wakeSleepers()
	return nil
}

// post is Release for counting permits past its fast path (see "Counting
// permits"): it enters the segment, so that a post whose CAS clears
// semSleepers, and must wake, happens wholly before a Close of this handle
// or not at all.
func (m *Semaphore) post(n int) error {
	if !m.s.enter() { // step: sem.release.enter
		return ErrClosed
	}
	defer m.s.exit()
	for {
		v := atomic.LoadUint32(m.value)
		if v&semLive == 0 {
			return fmt.Errorf("%w: semaphore %q: value word %#x", ErrCorrupt, m.name, v)
		}
		c := uint64(v&semCount) + uint64(n)
		if c > uint64(m.fast) {
			return fmt.Errorf("%w: semaphore %q at %d, max %d, release of %d", ErrOverflow, m.name, v&semCount, m.max, n)
		}
		if atomic.CompareAndSwapUint32(m.value, v, uint32(c)|v&(semLive|semHungry)) { // step: sem.release.post_cas
			if v&semSleepers != 0 {
				wakeAll(m.value) // step: sem.release.wake
			}
			return nil
		}
	}
}
