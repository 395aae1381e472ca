package processshared

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// Cond layout (accessed atomically only):
//
//	0    state     64 bits:
//	                 bits 0-31   seq      the futex word: changed by every
//	                                      grant (Signal, Broadcast) and nudge
//	                 bits 32-47  waiters  goroutines registered in Wait, in
//	                                      all processes
//	                 bits 48-63  signals  wake-ups granted and not yet taken;
//	                                      never more than waiters
//	8    baton     32 bits, always 0: every sleeper also sleeps on it, and
//	               names it as its thread's pending robust operation, so that
//	               the kernel wakes one sleeper when a woken one dies
//	12   sleepers  32 bits: goroutines about to sleep or sleeping in the
//	               kernel (a hint: Signal skips FUTEX_WAKE when it is 0)
//	64   records   one 64-bit record per process-table slot: the identity
//	               of the handle that last registered from that slot (bits
//	               0-31) and how many of its goroutines are registered (bits
//	               32-63); interleaved by cache line (see recordAt)
//
// # The protocol
//
// A waiter registers (waiters+1) while it holds c.L, notes seq as s0, and
// only then unlocks c.L: a Signal between the unlock and the sleep changes
// seq, so the sleep returns at once (the Ruby gem's cond registered after
// unlocking and lost exactly these). A grant makes every waiter registered
// before it eligible, and seq records that: a waiter is eligible once it has
// seen seq differ from s0. Only an eligible waiter takes a signal
// (signals-1, waiters-1); otherwise a goroutine that signals and then waits
// again would take back its own signal, and the waiter it was meant for
// would sleep on. Signals form a pool: any eligible waiter may take any of
// them.
//
// Invariant: signals ≤ waiters, and signals ≤ the eligible waiters (dead
// ones included). Signal grants (signals+1, seq+1) only while signals <
// waiters: a Signal with no waiter is not remembered, and extra Signals
// leave no stray wake-ups. Broadcast grants to every waiter at once
// (signals = waiters, seq+1). A waiter that leaves without taking (its
// context ended, or Close) and was eligible, with signals outstanding, may
// leave more signals than eligible waiters: it nudges (seq+1, making every
// waiter left eligible, and signals = waiters) and wakes one. The nudge
// may give a wake-up to a waiter that registered after the grant it came
// from: a spurious wake-up for that one, never a lost one.
//
// # Generations
//
// The pool does not tell one grant's signals from another's, and seq+1
// makes every waiter eligible, those registered after an earlier grant
// too. So a grant or nudge that finds signals outstanding grants to every
// waiter (signals = waiters), as a Broadcast: otherwise waiters registered
// after that earlier grant could take its signals, and a waiter it was for
// would sleep on (W0 waits; Broadcast; W1 and W2 register; Signal; W1 and
// W2 take both signals; W0 sleeps with none left: internal/model's
// BugPoolMix, found with three waiters). The extra grants are spurious
// wake-ups, which callers allow for; with no signal outstanding a Signal
// grants one, and it may go to any waiter registered before it.
//
// Broadcast wakes two sleepers, not all: every waiter that takes a signal
// and sees signals still outstanding wakes one more (passes the baton), so
// the waiters wake in two chains, one after another, rather than all fight
// for c.L at once.
//
// # A waiter's states and transitions (the step labels are the model's)
//
// Each `// step:` comment marks one atomic step. A loop that loads state,
// computes and CASes, retrying on failure, is one step (an atomic
// read-modify-write), labelled at its CAS.
//
//	register   own record names an older identity: reclaim it
//	           (cond.reclaim.record, cond.reclaim.global); waiters+1,
//	           s0 = seq (cond.wait.register); own record count+1
//	           (cond.wait.record); unlock c.L
//	spin       only when every other waiter is granted: poll seq
//	           (cond.wait.spin);
//	           moved and signals == 1 → take; else go on
//	token      acquire the process-local token (cond.wait.token): one
//	           sleeper per process in the kernel; arm the baton as the
//	           thread's pending robust operation (cond.wait.arm)
//	look       read state (cond.wait.load): eligible = eligible || seq ≠ s0.
//	           eligible and signals > 0 → take; not eligible, signals > 0,
//	           and back from the kernel → pass it on (below); else sleep
//	sleep      sleepers+1 (cond.wait.sleepers_inc); futex_waitv on seq ==
//	           the seq just read, the baton, and the cancellation word
//	           (cond.wait.sleep); sleepers-1 (cond.wait.sleepers_dec); back
//	           to look, or give up when cancelled or closed
//	take       own record count-1 (cond.take.record); signals-1,
//	           waiters-1 (cond.take.cas), or,
//	           if signals went to 0 meanwhile, own record count+1 again
//	           (cond.take.unrecord) and back to look; after a take with
//	           signals left, wake one (cond.wait.pass); disarm
//	           (cond.wait.disarm); release the token
//	           (cond.wait.token_release); lock c.L
//	pass on    a sleeper woken while not eligible, with signals outstanding,
//	           may have taken a wake-up meant for an eligible one: it looks
//	           for dead registrations (scan), lets the goroutines of its
//	           process parked on the token look first (cond.wait.yield),
//	           wakes one (cond.wait.pass_on) and sleeps again
//	give up    cancelled: read seq (cond.wait.cancel_load); eligible with a
//	           signal outstanding → take it, pass the baton on if signals
//	           are left (cond.wait.cancel_pass), and return woken (its
//	           wake-up and the cancellation came together). Otherwise leave: own record count-1
//	           (cond.leave.record); waiters-1, signals clamped to waiters,
//	           nudge if it was eligible and signals remain
//	           (cond.leave.cas); wake one if signals remain
//	           (cond.leave.wake). This is how every way out obeys the one
//	           rule: a waiter that consumed a wake-up and does not use it
//	           passes it on.
//
// Signal: signals < waiters → signals+1 (signals = waiters if some were
// outstanding), seq+1 (cond.signal.grant), wake one (cond.signal.wake). Broadcast: signals = waiters, seq+1
// (cond.broadcast.grant), wake two (cond.broadcast.wake). Both, finding signals outstanding,
// suspect that grants went to the dead: they scan the records once first,
// always when every waiter is granted already (signals = waiters: the grant
// would go to nobody), and otherwise at most once a millisecond per handle
// (the grant goes into the pool, which a live eligible waiter takes; the
// scan only reclaims, and would slow every Signal of a busy Cond down).
//
// # Deaths
//
// A process that dies while waiting stays registered until its record is
// reclaimed: by the next handle to claim its process-table slot (which finds
// an older identity in the slot's record when it registers), or by a scan
// (cond.scan.load reads a record, lookup judges its identity), which a Signal
// or Broadcast makes when it finds every waiter granted (and, at most once a
// millisecond, when it finds any signal outstanding), a registrant makes
// when waiters is full, and a sleeper makes before it passes a wake-up on.
// Reclaiming a record zeroes it (cond.reclaim.record), then takes its count
// off waiters, clamps signals to waiters and nudges if signals remain
// (cond.reclaim.global), and wakes one (cond.reclaim.wake). Deaths
// therefore never saturate waiters, and a Signal never goes to a dead waiter
// once its slot is marked dead while a live one waits.
//
// Each pair of writes to a record and to state is ordered so that a process
// killed between the two leaves waiters too high, never too low: register
// counts in state before the record, take and leave uncount from the record
// before state, and a reclaim zeroes the record before it uncounts. Too low
// could make a Signal skip a live waiter; too high only makes a Signal go to
// nobody (a registration nobody holds, until a later grant or nudge makes
// its signal the spurious wake-up of another waiter). Only a kill in that one
// instruction's window leaves it.
//
// A waiter woken by a grant that dies before it takes the signal, or a
// waiter that took one and dies before passing the baton on, would strand
// the others. The kernel covers both: it wakes one sleeper on the baton word
// when a thread dies that named it as its pending robust operation
// (robust-futex-ABI; see armPending), and every sleeper sleeps on the baton
// too.
//
// One window is not covered: a signaller killed between its grant and its
// FUTEX_WAKE leaves the signal outstanding with the sleepers asleep, until
// the next grant or nudge wakes one (covering it would cost every Signal
// the three system calls of armPending).
//
// # Wrap-around
//
// seq is 32 bits and wraps. It is only ever compared for equality: with s0,
// and by the kernel with the value a sleeper read. A waiter becomes eligible
// the first time it sees seq ≠ s0 and stays eligible, so seq returning to
// s0 matters only if exactly a multiple of 2^32 grants and nudges happen
// while the waiter neither runs nor is woken: every grant wakes a sleeper,
// and the sleeper that each process keeps in the kernel (see local) looks at
// seq whenever it is woken. The counts never wrap: waiters has room for
// 65535 live waiters (past that, Wait polls), and signals ≤ waiters.
//
// Only one goroutine per process sleeps in the kernel (see local); the
// others park on the process's token and look when they get it.
const (
	condState    = 0
	condBaton    = 8
	condSleepers = 12
	condRecords  = 64

	condWaiter = 1 << 32
	condSignal = 1 << 48
	condMax    = 1<<16 - 1
	condSeq    = 1<<32 - 1

	condRecCount = 1 << 32 // a record's count unit
)

// condSize returns the size of a Cond in a segment whose process table has
// procCap slots.
func condSize(procCap uint64) uint64 { return condRecords + condLines(procCap)*64 }

// condLines returns how many 64-byte lines hold the records of procCap
// slots.
func condLines(procCap uint64) uint64 { return (procCap + 7) / 8 }

// recordAt returns the offset, from the first record, of slot i's record,
// with lines cache lines of records. The records are interleaved: slot i
// is in line i%lines, so that consecutive slots (the processes of a small
// deployment: slots are claimed lowest first) share a cache line only
// beyond lines slots. Every Wait writes its own record twice; two players
// of a ping-pong sharing the line would move it between their CPUs on
// every hop (measured: cond ping-pong 1084 → 885 ns with this alone).
func recordAt(i, lines uint64) uint64 { return (i%lines*8 + i/lines) * 8 }

// A Cond is a condition variable shared by processes, bound to a Mutex.
// Obtain one with NewCond; the zero value is not usable. A Cond must not be
// copied.
//
// A Signal or Broadcast, in any process, synchronizes before the return of
// any Wait it wakes.
//
// Signal wakes one waiter that was waiting when it was called, if there is
// one; Broadcast wakes every such waiter. Waits may also return spuriously:
// wait in a loop that checks the condition, as with sync.Cond. A Signal
// with no waiter is not remembered.
//
// A waiting process that dies leaves the Cond usable: Signal and Broadcast
// never block, and the dead process's registrations are reclaimed once its
// death is known (the kernel marks it at once on Linux), so that Signals go
// to live waiters.
type Cond struct {
	L *Mutex // the mutex held while observing or changing the condition

	s        *Segment
	name     string
	state    *uint64
	seq      *uint32
	baton    *uint32
	sleepers *uint32
	recs     unsafe.Pointer // the records, nrec of them
	nrec     uint64
	rec      *uint64 // this handle's record
	id       identity
	l        *local
	lastScan atomic.Int64  // when Signal or Broadcast last scanned (scanDue), Unix ns
	misses   atomic.Uint32 // Waits in a row whose spin ended without a grant, or that did not spin (spinDue)
	off      uint64
}

// NewCond finds the Cond called name in s, creating it if it does not
// exist, and binds it to m, which must be a Mutex of the same segment. An
// existing Cond may be bound to any Mutex; every process must bind it to
// the same one.
func NewCond(s *Segment, name string, m *Mutex) (*Cond, error) {
	if m == nil || m.m.s != s {
		return nil, fmt.Errorf("processshared: cond %q: the mutex must belong to the same Segment", name)
	}
	procCap := s.lay.procCap
	off, err := s.object(name, KindCond, 0, condSize(procCap), nil)
	if err != nil {
		return nil, err
	}
	// seq is the low half of the state word, wherever the machine puts it.
	seqOff := uint64(0)
	if one := uint64(1); *(*byte)(unsafe.Pointer(&one)) == 0 {
		seqOff = 4 // big-endian
	}
	slot := (s.slot - s.lay.procOff) / procSlotSize
	return &Cond{
		off:      off,
		L:        m,
		s:        s,
		name:     name,
		state:    u64at(s.mem, off+condState),
		seq:      u32at(s.mem, off+condState+seqOff),
		baton:    u32at(s.mem, off+condBaton),
		sleepers: u32at(s.mem, off+condSleepers),
		recs:     unsafe.Pointer(&s.mem[off+condRecords]),
		nrec:     procCap,
		rec:      u64at(s.mem, off+condRecords+recordAt(slot, condLines(procCap))),
		id:       s.id,
		l:        s.local(off),
	}, nil
}

// Drop releases this handle on c: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. It does not drop c.L. Drop is idempotent and returns nil.
func (c *Cond) Drop() error {
	if s := c.s; !s.drop {
		c.s = s.dropped()
		s.unpin(c.off)
	}
	return nil
}

// Name returns the Cond's name in its segment.
func (c *Cond) Name() string { return c.name }

// Wait atomically unlocks c.L and suspends the calling goroutine until woken
// by Signal or Broadcast; it locks c.L again before returning. If the
// mutex's previous holder died meanwhile, Wait still returns holding it, and
// c.L.Consistent reports false. It panics, with an error matching
// ErrClosed, if the segment is closed before or during the wait, and with
// one matching ErrTruncated if its file was truncated under it;
// WaitContext returns those as errors.
func (c *Cond) Wait() {
	if err := c.wait(context.Background()); err != nil {
		c.waitPanic("Wait", err)
	}
}

// waitPanic panics for a Wait or WaitTimeout that failed with err, unless
// err reports a dead owner of c.L (Wait then returns holding it).
func (c *Cond) waitPanic(method string, err error) {
	if _, dead := err.(*OwnerDeadError); dead {
		return
	}
	if err == ErrClosed {
		closedPanic(method, "cond", c.name, c.s)
	}
	panic(fmt.Errorf("processshared: %s on cond %q: %w", method, c.name, err))
}

// WaitContext is Wait that gives up when ctx is done. It returns holding
// c.L, except after Close. It returns nil when woken; ctx.Err() when ctx
// ended first; an *OwnerDeadError (matching ErrOwnerDead) when c.L's
// previous holder died; or ErrClosed when the segment is closed, before or
// during the wait (c.L is then held by a dead owner, to the others). A
// deadline becomes the kernel's wait timeout; cancellation wakes the
// waiter. A wait woken and cancelled at once returns nil: it takes the
// wake-up rather than lose it.
func (c *Cond) WaitContext(ctx context.Context) error { return c.wait(ctx) }

// WaitTimeout is Wait with a timeout. It reports whether it was woken (true)
// or timed out (false), and always returns holding c.L. It panics as Wait
// does.
func (c *Cond) WaitTimeout(d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := c.wait(ctx)
	if err == context.DeadlineExceeded {
		return false
	}
	if err != nil {
		c.waitPanic("WaitTimeout", err)
	}
	return true
}

func (c *Cond) wait(ctx context.Context) (err error) {
	if !c.s.enter() {
		return ErrClosed
	}
	defer c.s.exit()
	defer c.s.guard(&err, guarded())
	s0, alone, ok := c.register()
	if !ok {
		// No room to register: 65535 live waiters, or a count corrupted
		// by another process. Wait unregistered, as a spurious wake-up
		// after a short sleep: callers re-check their condition, so they
		// poll rather than fail.
		return c.waitUnregistered(ctx)
	}
	c.L.m.unlock()
	err = c.sleep(ctx, s0, alone)
	if err == ErrClosed {
		return err // the handle is gone, and its locks with it
	}
	if lerr := c.relock(); lerr != nil && err == nil {
		err = lerr
	}
	return err
}

// relock locks c.L again after a wait. A Signal usually comes from the
// holder of c.L, who goes on to Wait or Unlock, so c.L is likely held for a
// moment more: a waiter woken or spinning then finds it held, and a Lock's
// few spins would send it to sleep in the kernel just before the Unlock.
// relock first spins for relockSpins pauses (about a microsecond).
func (c *Cond) relock() error {
	m := &c.L.m
	for range relockSpins {
		if atomic.LoadUint32(m.word) == 0 && atomic.CompareAndSwapUint32(m.word, 0, m.id) { // step: mutex.lock.fast_cas
			return m.acquired()
		}
		pause()
	}
	return m.lock(context.Background())
}

const relockSpins = 32

// register counts the caller as a waiter, in state and in its record, and
// returns the seq it registered at and whether it is the only waiter not
// granted a wake-up (so that the next Signal is for it). It
// returns ok false if waiters is full even after reclaiming the dead.
func (c *Cond) register() (s0 uint32, alone, ok bool) {
	for {
		v := atomic.LoadUint64(c.rec)
		if uint32(v) == c.id {
			break
		}
		// The record is an earlier claim's of this slot (dead: its
		// identity can never be valid again), or empty.
		if c.reclaim(c.rec, v, c.id) {
			break
		}
	}
	scanned := false
	for {
		st := atomic.LoadUint64(c.state)
		w := st >> 32 & condMax
		if w == condMax {
			if scanned {
				return 0, false, false
			}
			scanned = true
			c.reclaimDead()
			continue
		}
		if atomic.CompareAndSwapUint64(c.state, st, st+condWaiter) { // step: cond.wait.register
			s0, alone = uint32(st), st>>48 == w // every other waiter granted
			break
		}
	}
	atomic.AddUint64(c.rec, condRecCount) // step: cond.wait.record
	return s0, alone, true
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

// sleep waits, registered at seq s0, until it takes a wake-up (nil) or
// gives up (ctx.Err() or ErrClosed), unregistered either way. The caller
// holds c.s.enter().
func (c *Cond) sleep(ctx context.Context, s0 uint32, alone bool) error {
	eligible := false
	// Spin briefly first, but only as the only waiter not granted a
	// wake-up already: then the next Signal is for this one, and the
	// signaller may be running on the other CPU (in a ping-pong, the
	// other player is granted and about to run). Among several waiters
	// (a Broadcast's) a spin would mostly burn the CPU that the signaller
	// and the woken need. A spinner takes only
	// the last signal: one with signals left over would have to pass the
	// baton on without the kernel's cover (see arm below).
	if alone {
		if c.spinDue() && c.l.spin(func() bool { return atomic.LoadUint32(c.seq) != s0 }) { // step: cond.wait.spin
			c.misses.Store(0)
			eligible = true
			if _, ok := c.take(true); ok {
				return nil
			}
		} else {
			c.misses.Add(1)
		}
	}
	if !c.s.enter() {
		c.leave(s0, eligible)
		return ErrClosed
	}
	defer c.s.exit()
	if err := c.l.acquire(ctx, c.s); err != nil { // step: cond.wait.token
		if err != ErrClosed && c.takeCancelled(s0, &eligible) {
			return nil
		}
		c.leave(s0, eligible)
		return err
	}
	have := true
	defer func() {
		if have {
			c.l.release() // step: cond.wait.token_release
		}
	}()
	// From here until the baton is passed on, a death of this process
	// makes the kernel wake one sleeper on the baton word.
	reschedule()                  // before armPending locks this goroutine to its thread
	disarm := armPending(c.baton) // step: cond.wait.arm
	defer disarm()                // step: cond.wait.disarm
	var lives []liveRef
	if theKeeper().robust {
		lives = []liveRef{{word: c.baton}}
	}
	woken := false
	for {
		st := atomic.LoadUint64(c.state) // step: cond.wait.load
		eligible = eligible || uint32(st) != s0
		sig := st >> 48
		if eligible && sig > 0 {
			if left, ok := c.take(false); ok {
				if left > 0 {
					c.wake() // step: cond.wait.pass
				}
				return nil
			}
			continue
		}
		if sig > 0 && woken {
			// Not eligible, yet woken while signals wait for others: the
			// wake-up may have been one of theirs (a baton). Look for dead
			// ones to reclaim, let this process's goroutines parked on the
			// token look first, and pass it on.
			c.reclaimDead()
			c.l.release() // step: cond.wait.yield
			have = false
			if err := c.l.acquire(ctx, c.s); err != nil {
				if err != ErrClosed && c.takeCancelled(s0, &eligible) {
					return nil
				}
				c.leave(s0, eligible)
				return err
			}
			have = true
			c.wake() // step: cond.wait.pass_on
			woken = false
			continue
		}
		atomic.AddUint32(c.sleepers, 1)                         // step: cond.wait.sleepers_inc
		err := c.s.sleepv(ctx, c.seq, uint32(st), lives, false) // step: cond.wait.sleep
		atomic.AddUint32(c.sleepers, ^uint32(0))                // step: cond.wait.sleepers_dec
		if err != nil {
			if err != ErrClosed && c.takeCancelled(s0, &eligible) {
				return nil
			}
			c.leave(s0, eligible)
			return err
		}
		woken = true
	}
}

// spinDue reports whether a Wait through this handle should spin before it
// sleeps: unless its last spinMisses Waits all ended their spins without a
// grant, and then one Wait in spinProbe, to notice when spinning pays
// again. A waiter whose Signal comes long after it waits (one that waits
// for a whole Broadcast round, say) would otherwise spend a CPU for spinFor
// on every Wait, while the processes it waits for need that CPU. Unlike a
// budget that shrinks with each miss, a spin that succeeds now and then
// keeps the full spin.
func (c *Cond) spinDue() bool {
	n := c.misses.Load()
	return n < spinMisses || n%spinProbe == 0
}

const (
	spinMisses = 4
	spinProbe  = 16
)

// takeCancelled is a cancelled waiter's last look: if it is eligible and a
// signal is outstanding, it takes it (the wake-up and the cancellation came
// together), passes the baton on if signals are left, and reports true.
func (c *Cond) takeCancelled(s0 uint32, eligible *bool) bool {
	if atomic.LoadUint32(c.seq) != s0 { // step: cond.wait.cancel_load
		*eligible = true
	}
	if !*eligible {
		return false
	}
	left, ok := c.take(false)
	if ok && left > 0 {
		c.wake() // step: cond.wait.cancel_pass
	}
	return ok
}

// take takes one of the signals outstanding for an eligible caller,
// unregistering it, and returns how many are left. With last set it takes
// only the last one.
func (c *Cond) take(last bool) (left uint64, ok bool) {
	atomic.AddUint64(c.rec, ^uint64(condRecCount-1)) // step: cond.take.record
	for {
		st := atomic.LoadUint64(c.state)
		sig := st >> 48
		if sig == 0 || last && sig != 1 || st>>32&condMax == 0 {
			atomic.AddUint64(c.rec, condRecCount) // step: cond.take.unrecord
			return 0, false
		}
		if atomic.CompareAndSwapUint64(c.state, st, st-condWaiter-condSignal) { // step: cond.take.cas
			if raceEnabled {
				raceAcquire(c.l.race)
			}
			return sig - 1, true
		}
	}
}

// leave unregisters a waiter, registered at s0, that gives up without
// taking a signal. If it was eligible and signals remain, they may now
// outnumber the eligible waiters: it nudges, making every waiter left
// eligible and granting to each (see "Generations"). If signals remain it
// wakes one, since it may have consumed a wake-up meant for another.
func (c *Cond) leave(s0 uint32, eligible bool) {
	atomic.AddUint64(c.rec, ^uint64(condRecCount-1)) // step: cond.leave.record
	for {
		st := atomic.LoadUint64(c.state)
		w := max(st>>32&condMax, 1) - 1
		sig := min(st>>48, w)
		seq := uint32(st)
		// Judged on the state it changes: a grant since the caller last
		// looked made it eligible, and counted it among the granted.
		if (eligible || seq != s0) && sig > 0 {
			seq, sig = seq+1, w // see "Generations"
		}
		if atomic.CompareAndSwapUint64(c.state, st, uint64(seq)|w<<32|sig<<48) { // step: cond.leave.cas
			if sig > 0 {
				c.wake() // step: cond.leave.wake
			}
			return
		}
	}
}

// record returns the i'th record.
func (c *Cond) record(i uint64) *uint64 {
	return (*uint64)(unsafe.Add(c.recs, recordAt(i, condLines(c.nrec))))
}

// reclaimDead reclaims the records of dead handles. It looks at the records
// of the slots below procHigh only: a record is written only by the handle
// of its slot (and then by a reclaim of that handle's registration), so
// the records past procHigh are empty (see "The high-water mark" in
// proc.go).
func (c *Cond) reclaimDead() {
	for i := range c.s.procHigh() {
		r := c.record(i)
		v := atomic.LoadUint64(r) // step: cond.scan.load
		if v < condRecCount || uint32(v) == c.id {
			continue // no registration, or ours
		}
		if !c.s.lookup(uint32(v) & idMask).alive {
			c.reclaim(r, v, 0)
		}
	}
}

// reclaim replaces record r, which held v, a dead handle's, with an empty
// record of identity id, and takes the dead registrations off waiters. It
// reports false if r no longer held v.
func (c *Cond) reclaim(r *uint64, v uint64, id identity) bool {
	if !atomic.CompareAndSwapUint64(r, v, uint64(id)) { // step: cond.reclaim.record
		return false
	}
	n := v >> 32
	if n == 0 {
		return true
	}
	for {
		st := atomic.LoadUint64(c.state)
		w := st >> 32 & condMax
		w -= min(w, n)
		sig := min(st>>48, w)
		seq := uint32(st)
		if sig > 0 {
			// Some of the signals may have been the dead's: let every
			// waiter left take one (see "Generations").
			seq, sig = seq+1, w
		}
		if atomic.CompareAndSwapUint64(c.state, st, uint64(seq)|w<<32|sig<<48) { // step: cond.reclaim.global
			if sig > 0 {
				c.wake() // step: cond.reclaim.wake
			}
			return true
		}
	}
}

// Signal wakes one goroutine waiting on c, in any process, if there is one
// (or, while the waiters of an earlier Signal or Broadcast are still
// waking, every waiter: see the package's notes on spurious wake-ups in
// Cond).
// It is allowed but not required for the caller to hold c.L. It never
// blocks. It panics with an error matching ErrClosed if the segment is
// closed.
func (c *Cond) Signal() {
	if !c.s.enter() {
		closedPanic("Signal", "cond", c.name, c.s)
	}
	defer c.s.exit()
	if raceEnabled {
		raceReleaseMerge(c.l.race)
	}
	scanned := false
	for {
		st := atomic.LoadUint64(c.state)
		w, sig := st>>32&condMax, st>>48
		if sig > 0 && !scanned && (sig >= w || c.scanDue()) {
			// Wake-ups granted and not taken: some may have gone to the
			// dead. With every waiter granted, their registrations would
			// make this Signal go to nobody: reclaim them first, always.
			// With fewer signals than waiters the grant goes into the
			// pool, which any live eligible waiter takes: the scan only
			// reclaims, and runs at most once a millisecond per handle,
			// so that it does not slow every Signal of a busy Cond down.
			scanned = true
			c.reclaimDead()
			continue
		}
		if sig >= w {
			return // nobody waiting, or every waiter granted a wake-up already
		}
		// With signals outstanding, grant to every waiter: see
		// "Generations".
		nsig := sig + 1
		if sig > 0 {
			nsig = w
		}
		nst := uint64(uint32(st)+1) | w<<32 | nsig<<48
		if atomic.CompareAndSwapUint64(c.state, st, nst) { // step: cond.signal.grant
			c.wake() // step: cond.signal.wake
			return
		}
	}
}

// Broadcast wakes all goroutines waiting on c, in every process. It is
// allowed but not required for the caller to hold c.L. It never blocks.
// The waiters are woken one after another, in two chains, each by the one
// before, rather than all at once. It panics with an error matching ErrClosed if the
// segment is closed.
func (c *Cond) Broadcast() {
	if !c.s.enter() {
		closedPanic("Broadcast", "cond", c.name, c.s)
	}
	defer c.s.exit()
	if raceEnabled {
		raceReleaseMerge(c.l.race)
	}
	scanned := false
	for {
		st := atomic.LoadUint64(c.state)
		w, sig := st>>32&condMax, st>>48
		if sig > 0 && !scanned && (sig >= w || c.scanDue()) {
			scanned = true // as in Signal
			c.reclaimDead()
			continue
		}
		if sig >= w {
			return
		}
		nst := uint64(uint32(st)+1) | w<<32 | w<<48        // every waiter granted
		if atomic.CompareAndSwapUint64(c.state, st, nst) { // step: cond.broadcast.grant
			// Two chains of baton passes: one per CPU of a small
			// machine, so that neither waits idle for the other's next
			// wake-up (8 processes on 2 CPUs: 126 against 134 µs with
			// one chain, 175 µs waking all at once).
			if atomic.LoadUint32(c.sleepers) != 0 {
				futex.Wake(c.seq, 2) // step: cond.broadcast.wake
			}
			return
		}
	}
}

// scanDue reports whether this handle's last scan from Signal or Broadcast
// is more than scanEvery old, and if so counts this one as the last.
func (c *Cond) scanDue() bool {
	now := time.Now().UnixNano()
	last := c.lastScan.Load()
	return now-last >= int64(scanEvery) && c.lastScan.CompareAndSwap(last, now)
}

// scanEvery bounds how often Signal and Broadcast scan the registration
// records when some waiters are not granted yet (see Signal).
const scanEvery = time.Millisecond

// wake wakes one sleeper in the kernel, if there may be one.
func (c *Cond) wake() {
	if atomic.LoadUint32(c.sleepers) != 0 {
		futex.Wake(c.seq, 1)
	}
}
