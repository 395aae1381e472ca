package processshared

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// Semaphore layout (accessed atomically only):
//
//	0    value    bits 0-30: permits available; bit 31 (semSleepers): a
//	              process may be sleeping on the word, the futex word
//	              sleepers wait on
//	4    max      the largest value Release may reach; 0 for none
//	8    (unused)
//	12   jvalid   1 while the journal below describes an update in progress
//	16   jslot    journal: the held entry being changed
//	20   jid      journal: its previous identity
//	24   jcount   journal: its previous count
//	28   jvalue   journal: the previous value
//	64   lock     a mutexCore serializing every change of value and held
//	128  held     one {identity, count uint32} entry per process-table slot: the
//	              permits that slot's process acquired and has not released
//
// Why a lock and a journal: a process may die between taking permits and
// recording that it holds them. Under the robust lock the two updates are
// journaled; the next locker after a death sees the lock's owner-died state
// and rolls the journaled update back, so value and held always agree. The
// permits of a dead process (its held entry names an identity whose slot is dead or
// reused) are returned to value by the next Acquire that finds too few.
//
// Permits a process acquired count against that process until it releases
// them; a Release of more than the process holds is refused (ErrNotHeld),
// so the permits in existence stay the total the semaphore was created
// with.
//
// A counting semaphore (KindCountingSemaphore, NewCountingSemaphore) has
// the value word and max only: no lock, no journal, no held entries. Its
// permits belong to nobody, so a take and a post are one CAS each on value
// (see "Counting permits" below), and nothing is returned on a death.
const (
	semValue    = 0
	semMax      = 4
	semSleepers = 0x80000000
	semCount    = 0x7fffffff
	semJValid   = 12
	semJSlot    = 16
	semJID      = 20
	semJCount   = 24
	semJValue   = 28
	semLock     = 64
	semHeld     = 128

	semCountingSize = 64 // the size of a counting semaphore: value and max
)

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
//     kind.
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
// not in order of arrival; an Acquire that finds too few does not hold back
// smaller ones behind it. A large Acquire can thus be overtaken for as long
// as smaller ones keep the value below its request.
type Semaphore struct {
	s        *Segment
	name     string
	value    *uint32
	closed   *uint32 // &s.closed, for the counting fast paths
	base     unsafe.Pointer
	lock     *mutexCore // nil for counting permits
	l        *local
	id       identity
	mine     uint64 // offset of this Segment's held entry
	nheld    uint64
	max      uint32
	fast     uint32 // counting: the largest n the fast paths take, min(max, semCount)
	counting bool
	off      uint64
	ref      objRef
	dead     uint32 // what value points to after Drop (counting)
}

// NewSemaphore finds the Semaphore of owned permits called name in s,
// creating it with initial permits if it does not exist. max must be 0 or
// equal to initial: the total of owned permits is fixed (see Semaphore). An
// existing semaphore must have been created by NewSemaphore with the same
// max; one created by NewCountingSemaphore gives ErrMismatch.
func NewSemaphore(s *Segment, name string, initial, max int) (*Semaphore, error) {
	if initial < 0 || max < 0 || initial > math.MaxInt32 || max != 0 && max != initial {
		return nil, fmt.Errorf("processshared: semaphore %q: bad initial value %d or maximum %d (owned permits: the maximum is 0 or the initial value)", name, initial, max)
	}
	procCap := s.lay.procCap
	size := semHeld + procCap*8
	off, err := s.object(name, KindSemaphore, uint32(max), size, func(mem []byte) {
		store32(mem, semValue, uint32(initial))
		store32(mem, semMax, uint32(max))
	})
	if err != nil {
		return nil, err
	}
	procOff := s.lay.procOff
	return &Semaphore{
		off:    off,
		ref:    s.ref(off),
		s:      s,
		name:   name,
		value:  u32at(s.mem, off+semValue),
		closed: &s.closed,
		base:   unsafe.Pointer(&s.mem[off]),
		lock:   newMutexCore(s, off+semLock, name),
		l:      s.local(off),
		id:     s.id,
		mine:   semHeld + (s.slot-procOff)/procSlotSize*8,
		nheld:  procCap,
		max:    uint32(max),
	}, nil
}

// NewCountingSemaphore finds the Semaphore of counting permits called name
// in s, creating it with initial permits if it does not exist. max, if not
// zero, is the largest value the semaphore may reach: a bounded semaphore
// (max 1 gives a binary semaphore). An existing semaphore must have been
// created by NewCountingSemaphore with the same max; one created by
// NewSemaphore gives ErrMismatch.
func NewCountingSemaphore(s *Segment, name string, initial, max int) (*Semaphore, error) {
	if initial < 0 || max < 0 || initial > math.MaxInt32 || max > math.MaxInt32 || max != 0 && initial > max {
		return nil, fmt.Errorf("processshared: semaphore %q: bad initial value %d or maximum %d", name, initial, max)
	}
	off, err := s.object(name, KindCountingSemaphore, uint32(max), semCountingSize, func(mem []byte) {
		store32(mem, semValue, uint32(initial))
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
		value:    u32at(s.mem, off+semValue),
		closed:   &s.closed,
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
		// The counting fast paths run outside Segment.enter: point them
		// at a word of this handle's (no permits: Acquire goes to its slow
		// path, which finds the stand-in closed) and at the stand-in's
		// closed flag (Release's post checks it), never at the space a
		// later object may reuse.
		m.value, m.closed = &m.dead, &d.closed
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
	err := m.lock.lock(context.Background())
	if err != nil {
		if _, dead := err.(*OwnerDeadError); !dead {
			return err
		}
		if atomic.LoadUint32(m.w(semJValid)) != 0 {
			e := uint64(atomic.LoadUint32(m.w(semJSlot)))
			if e >= semHeld && e < semHeld+m.nheld*8 {
				atomic.StoreUint32(m.w(e), atomic.LoadUint32(m.w(semJID)))
				atomic.StoreUint32(m.w(e+4), atomic.LoadUint32(m.w(semJCount)))
			}
			m.setCount(atomic.LoadUint32(m.w(semJValue)))
			atomic.StoreUint32(m.w(semJValid), 0)
		}
		atomic.AndUint32(m.lock.flags, ^uint32(mutexInconsistent))
	}
	return nil
}

// leave releases the internal lock that enter took.
func (m *Semaphore) leave() {
	if !m.counting {
		m.lock.unlock()
	}
}

// update sets value and the held entry e to (id, count), journaled. The
// caller holds the internal lock, whose acquire and release order these
// stores for the next holder, so all but value (read without the lock by
// spinners and by the futex) are plain stores: a seq-cst store costs an
// XCHG, and an update makes nine. A process killed half-way leaves its
// stores visible once it is dead, which is when the journal is replayed.
func (m *Semaphore) update(value uint32, e uint64, id, count uint32) {
	*m.w(semJSlot) = uint32(e)
	*m.w(semJID) = *m.w(e)
	*m.w(semJCount) = *m.w(e + 4)
	*m.w(semJValue) = atomic.LoadUint32(m.value) & semCount
	*m.w(semJValid) = 1
	*m.w(e) = id
	*m.w(e + 4) = count
	m.setCount(value)
	*m.w(semJValid) = 0
}

// setCount sets the permits available to c, keeping the sleepers bit, which
// processes about to sleep set without the internal lock. The caller holds
// the internal lock.
func (m *Semaphore) setCount(c uint32) {
	for {
		v := atomic.LoadUint32(m.value)
		if atomic.CompareAndSwapUint32(m.value, v, v&semSleepers|c) {
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

// take takes n permits if there are enough, under the internal lock (for
// counting permits, with a CAS).
func (m *Semaphore) take(n uint32) bool {
	if m.counting {
		for {
			v := atomic.LoadUint32(m.value)
			if v&semCount < n {
				return false
			}
			if atomic.CompareAndSwapUint32(m.value, v, v-n) {
				return true
			}
		}
	}
	v := atomic.LoadUint32(m.value) & semCount
	if v < n {
		return false
	}
	held := m.held()
	v = atomic.LoadUint32(m.value) & semCount
	m.update(v-n, m.mine, m.id, held+n)
	return true
}

// held returns the permits this process holds, first returning those of a
// dead predecessor in its table slot. The caller holds the internal lock.
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
	if m.max != 0 && v > uint64(m.max) {
		v = uint64(m.max)
	}
	m.update(uint32(min(v, math.MaxInt32)), e, 0, 0)
}

// reclaimDead returns the permits of dead holders to the value. The caller
// holds the internal lock. (The deaths of live holders are watched by
// watchOthers, as every other process's.)
func (m *Semaphore) reclaimDead() {
	if m.counting {
		return // nobody holds counting permits
	}
	for i := range m.nheld {
		e := semHeld + i*8
		if atomic.LoadUint32(m.w(e+4)) == 0 {
			continue
		}
		if id := atomic.LoadUint32(m.w(e)); id != m.id && !m.s.lookup(id).alive {
			m.reclaim(e)
		}
	}
}

// Counting permits.
//
// The value word is the whole state: bits 0-30 the permits available, bit
// 31 (semSleepers) a process may sleep on the word. Its transitions:
//
//	take    v → v-n      CAS, if v's count ≥ n (sleepers bit kept)
//	post    v → (v+n)&^S CAS (count+n within max); if v had S, wake all
//	                     sleepers on the word (sem.release.wake)
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
// any instant. A take cannot succeed there (it finds 0 permits), so a
// successful take was a real one. A post can (0 → n), so Release checks
// closed before and after its CAS; seen closed after, it reports ErrClosed,
// and the permits may or may not have been posted.

// Acquire acquires n permits, blocking until they are available or ctx is
// done. On failure it returns ctx.Err() (or ErrClosed, or ErrDeleted when
// it would wait on a semaphore that was deleted) and acquires nothing.
// Permits are granted to whichever waiter finds them first, not in order
// (see Semaphore). With counting permits, an Acquire that finds enough
// takes them in one atomic operation, even if ctx is already done.
func (m *Semaphore) Acquire(ctx context.Context, n int) error {
	// Small enough to inline: a valid n is 1 to semCount, and at most max
	// (m.fast is min(max, semCount), or semCount), so one unsigned
	// comparison checks it.
	if v := atomic.LoadUint32(m.value); m.counting && uint(n-1) < uint(m.fast) && v&semCount >= uint32(n) && atomic.CompareAndSwapUint32(m.value, v, v-uint32(n)) { // step: sem.acquire.fast_cas
		if raceEnabled {
			raceAcquire(m.l.race)
		}
		return nil
	}
	return m.acquire(ctx, n)
}

func (m *Semaphore) acquire(ctx context.Context, n int) error {
	if n < 0 || n > math.MaxInt32 || m.max != 0 && n > int(m.max) {
		return fmt.Errorf("processshared: Acquire(%d) on semaphore %q: bad count", n, m.name)
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
	if m.l.spin(func() bool { return atomic.LoadUint32(m.value)&semCount >= uint32(n) }) { // step: sem.acquire.spin
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
	var lives []liveRef
	for {
		if err := m.enter(); err != nil { // step: sem.acquire.locked
			return err
		}
		if m.take(n) {
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
		if m.take(n) {
			m.leave()
			return m.acquired()
		}
		m.leave()
		poll := others
		v := atomic.LoadUint32(m.value) // step: sem.acquire.load_value
		if v&semCount >= n {
			continue
		}
		if c := v & semCount; c > 0 && m.l.could(c) { // step: sem.acquire.could
			// Too few for this Acquire, enough for another goroutine of
			// this process that waits for the token: let it look. It
			// registered its demand before it blocked on the token, so
			// either could sees it, or it takes the token only after a
			// later Release, whose wake reaches this process's sleeper.
			if done, err := m.yield(ctx, n, try, &have); done {
				return err
			}
			continue
		}
		if v&semSleepers == 0 {
			if !atomic.CompareAndSwapUint32(m.value, v, v|semSleepers) { // step: sem.acquire.set_sleepers
				continue
			}
			v |= semSleepers
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
		if c := atomic.LoadUint32(m.value) & semCount; c > 0 && c < n && m.l.could(c) { // step: sem.acquire.load_woken, sem.acquire.could
			if done, err := m.yield(ctx, n, try, &have); done {
				return err
			}
		}
	}
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
	ok := m.take(n)
	if !ok && reclaim {
		m.reclaimDead()
		ok = m.take(n)
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
// the value past the maximum. It returns ErrClosed if the segment is closed
// (with counting permits, a Release concurrent with Close may post its
// permits and still return ErrClosed). With no waiters it makes no system
// call; with counting permits, an uncontended Release is one atomic
// operation.
func (m *Semaphore) Release(n int) error {
	if m.counting && uint(n-1) < uint(m.fast) {
		return m.post(n)
	}
	return m.release(n)
}

func (m *Semaphore) release(n int) (err error) {
	if n < 0 || n > math.MaxInt32 {
		return fmt.Errorf("processshared: Release(%d) on semaphore %q: bad count", n, m.name)
	}
	if m.counting {
		return m.post(n)
	}
	if !m.s.enter() { // step: sem.release.enter
		return ErrClosed
	}
	defer m.s.exit()
	defer m.s.guard(&err, guarded())
	if err := m.enter(); err != nil { // step: sem.release.locked
		return err
	}
	held := m.held()
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
	if raceEnabled {
		raceReleaseMerge(m.l.race)
	}
	m.update(uint32(v), m.mine, id, held)
	m.leave()
	m.wakeSleepers()
	return nil
}

// post is Release for counting permits (see "Counting permits").
func (m *Semaphore) post(n int) error {
	if atomic.LoadUint32(m.closed) != 0 {
		return ErrClosed
	}
	if raceEnabled {
		raceReleaseMerge(m.l.race)
	}
	var v uint32
	for {
		v = atomic.LoadUint32(m.value)
		c := uint64(v&semCount) + uint64(n)
		if c > uint64(m.fast) {
			return fmt.Errorf("%w: semaphore %q at %d, max %d, release of %d", ErrOverflow, m.name, v&semCount, m.max, n)
		}
		if atomic.CompareAndSwapUint32(m.value, v, uint32(c)) { // step: sem.release.fast_cas
			break
		}
	}
	if v&semSleepers != 0 {
		return m.wake()
	}
	if atomic.LoadUint32(m.closed) != 0 {
		return ErrClosed
	}
	return nil
}

// wake is post's wake-up of the sleepers.
func (m *Semaphore) wake() error {
	// The wake touches the mapping beyond one atomic: enter. If the segment
	// closed meanwhile, this handle's Close woke every process watching it
	// (watchOthers), and they look again.
	if !m.s.enter() {
		return ErrClosed
	}
	wakeAll(m.value) // step: sem.release.wake
	m.s.exit()
	if atomic.LoadUint32(m.closed) != 0 {
		return ErrClosed
	}
	return nil
}
