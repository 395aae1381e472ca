package model

import (
	"fmt"
	"strings"
)

// A SemOp is Acquire(N) or Release(N).
type SemOp struct {
	Acquire bool
	N       uint8
}

// A SemScript is what one goroutine does with the semaphore. If an Acquire
// or a Release fails (cancelled, closed) the goroutine stops.
type SemScript struct {
	Ops    []SemOp
	Cancel bool // its context may be cancelled
}

// SemaphoreConfig is one configuration of the Semaphore model.
type SemaphoreConfig struct {
	Procs   [][]SemScript
	Initial uint8
	Budget  Budget // Attach is not modelled for the semaphore

	// Counting models a semaphore of counting permits
	// (NewCountingSemaphore): no internal lock and no held entries; a
	// take and a post are one CAS each on the value (sem.acquire.fast_cas,
	// sem.release.fast_cas), the slow path of Acquire is the owned one
	// without the lock and the reclaim, and permits taken are consumed
	// (total falls). Without it the permits are owned (NewSemaphore): a
	// Release of more than the process holds fails (ErrNotHeld), so
	// total never changes.
	Counting bool

	// Bug2 reverts the fix of lost wake-up 2: Release, having cleared the
	// sleepers bit, wakes one sleeper (FUTEX_WAKE(value, 1)) instead of
	// all, and the one it wakes may be unable to use the permits (it asks
	// for more, or was cancelled or closed meanwhile) while another sleeper
	// could; nobody passes the wake-up on.
	Bug2 bool
	// BugTokenYield: the holder of the process-local token that finds too
	// few permits at its last look before sleeping (sem.acquire.load_value)
	// does not ask whether a goroutine of its process waiting for the token
	// could use them (sem.acquire.could), and sleeps.
	BugTokenYield bool
	// BugNoRetry: a goroutine that finds the token busy registers its
	// demand and waits for the token without retrying its take
	// (sem.acquire.retry). A Release between its first take and its
	// registration is then seen by neither it nor the token's holder, whose
	// last look came before the registration.
	BugNoRetry bool
	// BugWatchHolders: a sleeper watches the live words of the processes
	// holding permits only (those reclaimDead finds alive), not every
	// other attached process (watchOthers). A process that is not a
	// holder can still owe the sleeper a wake-up: a Release killed between
	// raising the value and its futex_wake.
	BugWatchHolders bool
	// BugYieldAlways is the token as the code handled it before 5496d27: a
	// goroutine that finds the token busy waits for it without retrying
	// its take, the holder does not look for a goroutine waiting for the
	// token before it sleeps, and after every sleep it releases the token
	// (to a goroutine parked on it, if any) and takes it again. A goroutine
	// between local.acquire's two selects is not parked yet, so the
	// holder's release and re-take pass it by.
	BugYieldAlways bool
	// BugReclaimFirst is acquireSlow's order in the code until the checker
	// found this (now it watches, then reclaims, as the model): under the
	// internal lock, reclaimDead (look each holder up: reclaim its permits
	// if it is dead, watch it if alive) and only then watchOthers, whose
	// watches are the ones the sleep uses; reclaimDead's are dropped. A
	// holder found alive by reclaimDead and killed before watchOthers reads
	// its live word is skipped there as dead: its permits are not
	// reclaimed, its death is not watched, and the kernel's wake-up for it
	// went by before the sleep. The model watches first (watchOthers),
	// then reclaims: a holder that dies after its watch changes a word the
	// sleep names, and one dead before the reclaim's look is reclaimed.
	BugReclaimFirst bool
	// BugGrantUnheld is owned permits as the code had them before the
	// kinds were split: a Release of permits the process does not hold
	// adds them (a producer's post) instead of failing with ErrNotHeld.
	// The permits in existence then exceed the total the semaphore was
	// created with.
	BugGrantUnheld bool
	// BugPostOutside is a counting post as the code had it until the
	// checker found this: the CAS that clears the sleepers bit, like every
	// post's, outside Segment.enter, and the wake-up skipped once the
	// segment is closed (wake's enter fails). A post that lands after its
	// own Close's mark_closed (the handle dead to the others, who watch it
	// no more) and is then killed before its wake, or skips it, leaves a
	// sleeper asleep with the permits free.
	BugPostOutside bool
	// BugSatedNoWake: the hungry waiter's sated clears svHungry and
	// svSleepers but wakes nobody. A waiter held back by the hunger that
	// slept after the last Release stays asleep with enough permits.
	BugSatedNoWake bool
	// BugNoTakeover: a waiter takes the record naming a dead handle for a
	// live hungry waiter, and is held back by a hunger nobody will end.
	BugNoTakeover bool
	// BugNoSated: a hungry waiter that gives up (cancelled, closed) leaves
	// its hunger in place, holding every other waiter back.
	BugNoSated bool
	// BugCouldFirst is acquireSlow's order until the deep configurations
	// found this: could before the sleepers bit's CAS. A goroutine of the
	// same process registers after could looked and retries while another
	// process holds the permit; that process's Release finds no sleepers
	// bit and wakes nobody; the CAS then succeeds all the same, since the
	// value is back to what was loaded (ABA), and the token's holder sleeps
	// while the goroutine parked on its token could take the permit.
	BugCouldFirst bool
}

// Semaphore program counters. Each names the step the goroutine takes next.
const (
	spOp          uint8 = iota // sem.acquire.enter / sem.release.enter
	spCheck                    // sem.acquire.check: ctx.Err
	spTry                      // sem.acquire.try (tryAcquire, under the internal lock)
	spSpin                     // sem.acquire.spin: the spin's load of the value
	spTry2                     // sem.acquire.try after a spin that saw enough
	spEnter2                   // sem.acquire.enter (acquireSlow's, nested)
	spToken1                   // token.acquire: acquireFor's non-blocking select
	spReg                      // sem.acquire.register: the demand made visible to could
	spRetry                    // sem.acquire.retry: the take once the demand is visible
	spToken2                   // token.acquire: local.acquire's non-blocking select
	spTokenWait                // token.acquire_wait: its blocking select
	spParked                   // parked on the token (no step)
	spUnreg                    // sem.acquire.unregister, holding the token
	spUnregOK                  // sem.acquire.unregister, acquired by the retry
	spUnregErr                 // sem.acquire.unregister, ctx done or closed
	spLocked                   // sem.acquire.locked: take the internal lock, take
	spReclaim                  // proc.lookup.live of holder th.e (reclaimDead)
	spReclaimCAS               // wait.watch.cas of holder th.e (reclaimDead's watch, only under BugWatchHolders: the code before watchOthers)
	spWatch                    // proc.lookup.live of slot th.e (watchOthers)
	spWatchCAS                 // wait.watch.cas of slot th.e (watchOthers)
	spLoad                     // sem.acquire.load_value
	spCould                    // sem.acquire.could, before sleeping
	spSetS                     // sem.acquire.set_sleepers
	spWaitv                    // wait.sleep.waitv
	spWoken                    // asleep (no step), or wait.sleep.check_lives of th.e
	spWakeLive                 // wait.sleep.wake_all_live of th.e
	spCheckDone                // wait.sleep.check_done
	spLoadWoken                // sem.acquire.load_woken
	spCould2                   // sem.acquire.could, after a wake
	spYield                    // sem.acquire.yield_token
	spRetOK                    // sem.acquire.exit: acquired without the token
	spRet                      // token.release, acquired
	spRetErr                   // token.release, failed
	spRLocked                  // sem.release.locked
	spRLoadW                   // sem.release.load_waiters
	spRClear                   // sem.release.clear_sleepers
	spRWake                    // sem.release.wake
	spEnterC                   // sem.acquire.enter or sem.release.enter after a failed fast_cas (counting)
	spPostCAS                  // sem.release.post_cas (counting), inside Segment.enter
	spHungryLoad               // sem.acquire.hungry_load: the record, and the lookup of whom it names
	spHungryClaim              // sem.acquire.hungry_claim: CAS the record (th.e: as loaded) to this process
	spHungrySet                // sem.acquire.hungry_set: set svHungry
	spSatedWake                // sem.acquire.sated_wake
	spSatedRecord              // sem.acquire.sated_record: the record back to 0
	spDone
	spDead
	spGone
)

var semPCName = [...]string{
	spOp: "op", spCheck: "check", spTry: "try", spSpin: "spin", spTry2: "try2", spEnter2: "enter2",
	spToken1: "token", spReg: "register", spRetry: "retry", spToken2: "token2", spTokenWait: "token_wait", spParked: "parked",
	spUnreg: "unregister", spUnregOK: "unregister(ok)", spUnregErr: "unregister(err)",
	spLocked: "locked", spReclaim: "reclaim", spReclaimCAS: "reclaim_cas", spWatch: "watch", spWatchCAS: "watch_cas",
	spLoad: "load_value", spCould: "could", spSetS: "set_sleepers", spWaitv: "waitv", spWoken: "check_lives",
	spWakeLive: "wake_all_live", spCheckDone: "check_done", spLoadWoken: "load_woken", spCould2: "could(woken)",
	spYield: "yield_token", spRetOK: "exit", spRet: "release(ok)", spRetErr: "release(err)",
	spRLocked: "release.locked", spRLoadW: "release.load_waiters", spRClear: "release.clear_sleepers", spRWake: "release.wake",
	spEnterC: "enter", spPostCAS: "post_cas", spHungryLoad: "hungry_load", spHungryClaim: "hungry_claim",
	spHungrySet: "hungry_set", spSatedWake: "sated_wake", spSatedRecord: "sated_record", spDone: "done", spDead: "dead", spGone: "gone",
}

func semFinished(pc uint8) bool { return pc >= spDone }

// semInFlight reports whether a goroutine at pc is inside Segment.enter:
// every pc after the first step, until its op is over.
func semInFlight(pc uint8) bool { return pc != spOp && !semFinished(pc) }

// The value word, in the model's 8 bits: the permits available (bits 0-5),
// semHungry (bit 6), set while a waiter is hungry (only it may take), and
// semSleepers (bit 7), which a process about to sleep sets with a CAS
// outside the internal lock and Release clears before it wakes everyone.
const (
	svSleepers = 0x80
	svHungry   = 0x40
	svCount    = 0x3f
)

const (
	sfCtxDone = 1 << iota
	sfReg     // its demand is registered (local.demands): could sees it
	sfPoll    // its sleep polls: reclaimDead could not watch a holder
	sfHungry  // it is the hungry waiter: it claimed the record
	sfOK      // on its way out through sated: acquired
)

type sthread struct {
	pc    uint8
	op    uint8
	v     uint8 // local: the value word it loaded (Acquire and Release)
	e     uint8 // local: the slot its lookup, watch or check is at
	seen  uint8 // local: the live word its lookup saw
	lives uint8 // local: slots whose live word its sleep names (expected tid|LW)
	flags uint8
	holds uint8 // ghost: permits it holds
}

type sproc struct {
	life   uint8
	close  uint8 // 0 open, 1 closing, then 1+i after the i'th of semCloseSteps
	listed uint8
	token  uint8 // thread+1
}

// SemState is a state of the Semaphore model.
type SemState struct {
	value  uint8           // count | svHungry | svSleepers
	hungry uint8           // the hungry record: process+1 of the hungry waiter's handle, or 0
	ilock  uint8           // thread+1 holding the internal lock; 0 free
	total  uint8           // ghost: permits in existence (initial + those producers released)
	held   [maxProcs]uint8 // the held entry of each slot
	live   [maxProcs]uint8
	proc   [maxProcs]sproc
	th     [maxThreads]sthread
	fx     Futex
	budget Budget
}

// SemaphoreModel is the Semaphore wait protocol (semaphore.go, wait.go).
// The internal lock is a lock whose critical sections take several steps
// (the lookups and watches of reclaimDead and watchOthers), freed by the
// kernel's robust-list walk when its holder dies; its journal makes each
// update of value and held all-or-nothing, so those updates are merged
// into the step they are in.
type SemaphoreModel struct {
	cfg    SemaphoreConfig
	nproc  int
	ops    [maxThreads][]SemOp
	cancel [maxThreads]bool
	names  [maxThreads]string
}

// NewSemaphoreModel checks cfg and returns its model.
func NewSemaphoreModel(cfg SemaphoreConfig) (*SemaphoreModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > maxProcs {
		return nil, fmt.Errorf("model: %d processes (1 to %d)", len(cfg.Procs), maxProcs)
	}
	if cfg.Initial > svCount {
		return nil, fmt.Errorf("model: initial value %d (at most %d)", cfg.Initial, svCount)
	}
	m := &SemaphoreModel{cfg: cfg, nproc: len(cfg.Procs)}
	for p, gs := range cfg.Procs {
		if len(gs) > maxGoroutines {
			return nil, fmt.Errorf("model: process %d has %d goroutines (at most %d)", p, len(gs), maxGoroutines)
		}
		for g, sc := range gs {
			t := p*maxGoroutines + g
			m.names[t] = fmt.Sprintf("P%d.G%d", p, g)
			m.cancel[t] = sc.Cancel
			m.ops[t] = sc.Ops
		}
	}
	return m, nil
}

func (m *SemaphoreModel) name(t int) string { return m.names[t] }

// Init returns the state before any goroutine started.
func (m *SemaphoreModel) Init() SemState {
	s := SemState{value: m.cfg.Initial, total: m.cfg.Initial, budget: m.cfg.Budget}
	s.budget.Attach = 0
	for p := range maxProcs {
		for g := range maxGoroutines {
			if t := p*maxGoroutines + g; len(m.ops[t]) == 0 {
				s.th[t].pc = spDone
			}
		}
		if p < m.nproc {
			s.live[p] = 1
			s.proc[p].listed = 1
		} else {
			s.proc[p].life = lifeDead
		}
	}
	return s
}

// advance ends t's op successfully.
func (m *SemaphoreModel) advance(s *SemState, t int) {
	th := &s.th[t]
	th.op++
	th.v, th.e, th.seen, th.lives = 0, 0, 0, 0
	th.flags &= sfCtxDone
	if int(th.op) < len(m.ops[t]) {
		th.pc = spOp
	} else {
		th.pc = spDone
	}
}

// fail ends t's script: an Acquire or Release returned an error.
func (m *SemaphoreModel) fail(s *SemState, t int) {
	th := &s.th[t]
	th.pc, th.v, th.e, th.seen, th.lives, th.flags = spDone, 0, 0, 0, 0, th.flags&sfCtxDone
}

// dead reports whether the process in slot e is gone, as lookup sees it.
func (s *SemState) dead(e int) bool { return liveDead(s.live[e]) }

// unmapped reports whether p's mapping is gone.
func (s *SemState) unmapped(p int) bool { return int(s.proc[p].close) > len(semCloseSteps) }

func (s *SemState) count() uint8 { return s.value & svCount }

// take gives t n permits if there are enough (take, under the internal
// lock, or a CAS for counting permits; the sleepers bit is kept).
func (m *SemaphoreModel) take(s *SemState, t int, n uint8) bool {
	if s.count() < n || s.value&svHungry != 0 && s.th[t].flags&sfHungry == 0 {
		return false
	}
	s.value -= n
	if m.cfg.Counting {
		s.total -= n // consumed: nobody holds it
		return true
	}
	s.held[t/maxGoroutines] += n
	s.th[t].holds += n
	return true
}

// Next appends every step enabled in s.
func (m *SemaphoreModel) Next(s *SemState, trace bool, steps []Step[SemState]) []Step[SemState] {
	e := &emitter[SemState]{out: steps, trace: trace}
	for t := range maxThreads {
		m.thread(s, t, e)
	}
	for p := range m.nproc {
		m.process(s, p, e)
	}
	m.env(s, e)
	return e.out
}

const fwValue = 0 // futex word of the value; live words are fwLive

func (m *SemaphoreModel) wake(e *emitter[SemState], actor, label string, ns SemState, w, n int, note string) {
	ns.fx.Wakes(w, n, func(woken uint16, after Futex) {
		n2 := ns
		n2.fx = after
		e.add(actor, label, false, n2, join(note, e.woke(woken, m.name)))
	})
}

// releaseToken hands t's token to a goroutine of its process parked on it
// (any), or frees it, and calls fn with each outcome.
func (m *SemaphoreModel) releaseToken(ns SemState, t int, fn func(SemState, string)) {
	p := t / maxGoroutines
	handed := false
	for g := range maxGoroutines {
		o := p*maxGoroutines + g
		if o == t || ns.th[o].pc != spParked {
			continue
		}
		n2 := ns
		n2.proc[p].token = uint8(o + 1)
		n2.th[o].pc = spUnreg
		handed = true
		fn(n2, "token handed to "+m.name(o))
	}
	if !handed {
		ns.proc[p].token = 0
		fn(ns, "token free")
	}
}

// could is local.could(c): whether a goroutine of t's process with its
// demand registered asks for at most c permits.
func (m *SemaphoreModel) could(s *SemState, t int, c uint8) bool {
	p := t / maxGoroutines
	for g := range maxGoroutines {
		if o := p*maxGoroutines + g; o != t && s.th[o].flags&sfReg != 0 && m.ops[o][s.th[o].op].N <= c {
			return true
		}
	}
	return false
}

// nextHolder returns the first slot from e on that reclaimDead looks up
// for t (a held entry, not t's own), or -1.
func (m *SemaphoreModel) nextHolder(s *SemState, t, e int) int {
	for ; e < m.nproc; e++ {
		if e != t/maxGoroutines && s.held[e] != 0 {
			return e
		}
	}
	return -1
}

// nextOther returns the first slot from e on that watchOthers reads for t
// (every slot but t's own), or -1.
func (m *SemaphoreModel) nextOther(t, e int) int {
	if e == t/maxGoroutines {
		e++
	}
	if e < m.nproc {
		return e
	}
	return -1
}

// The critical section of acquireSlow after a failed take: reclaimDead, a
// take, watchOthers, the unlock (BugReclaimFirst, the code's order); or
// watchOthers, reclaimDead, a take, the unlock (the model's). The take and
// the unlock only read and write words the internal lock protects, and are
// merged into the step before them. Each helper moves t to its next step
// and returns a note.

// startReclaim begins reclaimDead at slot e.
func (m *SemaphoreModel) startReclaim(ns *SemState, t, e int) string {
	if h := m.nextHolder(ns, t, e); h >= 0 {
		ns.th[t].pc, ns.th[t].e = spReclaim, uint8(h)
		return ""
	}
	// The take after reclaimDead.
	if m.take(ns, t, m.ops[t][ns.th[t].op].N) {
		ns.ilock = 0
		ns.th[t].pc = spRet
		return "acquired"
	}
	if m.cfg.BugReclaimFirst && !m.cfg.BugWatchHolders {
		return join("too few", m.startWatch(ns, t, 0))
	}
	ns.ilock = 0
	ns.th[t].pc = spLoad
	return "too few; unlocked"
}

// startWatch begins watchOthers at slot e.
func (m *SemaphoreModel) startWatch(ns *SemState, t, e int) string {
	if o := m.nextOther(t, e); o >= 0 {
		ns.th[t].pc, ns.th[t].e = spWatch, uint8(o)
		return ""
	}
	if !m.cfg.BugReclaimFirst {
		return m.startReclaim(ns, t, 0)
	}
	ns.ilock = 0
	ns.th[t].pc = spLoad
	return "unlocked"
}

// lockOr emits, for a step that takes the internal lock, ErrClosed if t's
// process has closed (the lock's token wait and sleep watch Close) and
// reports whether the lock is free to take.
func (m *SemaphoreModel) lockOr(s *SemState, t int, e *emitter[SemState], label string, closed func(*SemState)) bool {
	if m.cfg.Counting {
		return true // no internal lock
	}
	if s.proc[t/maxGoroutines].close != 0 {
		ns := *s
		closed(&ns)
		e.add(m.name(t), label, false, ns, "ErrClosed (waiting for the internal lock)")
	}
	return s.ilock == 0
}

func (m *SemaphoreModel) thread(s *SemState, t int, e *emitter[SemState]) {
	th := &s.th[t]
	switch {
	case semFinished(th.pc), th.pc == spParked:
		return
	case s.fx.Asleep(t):
		if th.flags&sfPoll != 0 {
			ns := *s
			ns.fx.Unqueue(t)
			e.add("kernel", "kernel.timeout", false, ns, e.cat(m.name(t), "'s polling sleep times out"))
		}
		return
	}
	p := t / maxGoroutines
	pr := &s.proc[p]
	op := m.ops[t][th.op]
	n := op.N
	actor := m.name(t)
	closed := pr.close != 0
	ctxDone := th.flags&sfCtxDone != 0
	ns := *s
	nt := &ns.th[t]
	add := func(label, note string) { e.add(actor, label, false, ns, note) }
	failed := func(s *SemState) { m.fail(s, t) }
	if s.unmapped(p) && th.pc != spOp {
		// Every step but the first touches the segment.
		nt.pc = spGone
		add("fault", "segment unmapped")
		return
	}

	switch th.pc {
	case spOp:
		if m.cfg.Counting && op.Acquire && n > 0 {
			// The fast path, outside Segment.enter: a CAS that takes the
			// permits if there are enough. On Close's zero placeholder it
			// finds none.
			if !s.unmapped(p) && m.take(&ns, t, n) {
				m.advance(&ns, t)
				add("sem.acquire.fast_cas", "acquired")
				return
			}
			nt.pc = spEnterC
			add("sem.acquire.fast_cas", "too few")
			return
		}
		if m.cfg.Counting && !op.Acquire {
			// Release's fast path, outside Segment.enter: one CAS that
			// adds the permits, if the word has semLive and no sleepers
			// bit. Close's zero placeholder has no semLive. Before the
			// unmap the CAS is on the real word, a post made before the
			// Close, and it has nobody to wake.
			if m.cfg.BugPostOutside && !s.unmapped(p) {
				// The old post: its CAS, sleepers or not, then a wake
				// that is skipped if closed.
				m.post(&ns, t, n)
				add("sem.release.fast_cas", e.notef("value %d", int(ns.value&svCount), 0))
				return
			}
			if s.unmapped(p) || s.value&(svSleepers|svHungry) != 0 {
				nt.pc = spEnterC
				add("sem.release.fast_cas", "sleepers, hunger or no semLive: post")
				return
			}
			ns.value += n
			ns.total += n
			m.advance(&ns, t)
			add("sem.release.fast_cas", e.notef("value %d", int(ns.value&svCount), 0))
			return
		}
		fallthrough
	case spEnterC:
		label := "sem.release.enter"
		if op.Acquire {
			label = "sem.acquire.enter"
		}
		if closed {
			m.fail(&ns, t)
			add(label, "ErrClosed")
			return
		}
		nt.pc = spRLocked
		if op.Acquire {
			nt.pc = spCheck
		} else if m.cfg.Counting {
			nt.pc = spPostCAS
		}
		add(label, "")

	case spPostCAS:
		m.post(&ns, t, n)
		add("sem.release.post_cas", e.notef("value %d", int(ns.value&svCount), 0))

	case spCheck:
		if ctxDone {
			m.fail(&ns, t)
			add("sem.acquire.check", "ctx done")
			return
		}
		nt.pc = spTry
		add("sem.acquire.check", "")

	case spTry, spTry2:
		if !m.lockOr(s, t, e, "sem.acquire.try", failed) {
			return
		}
		if m.take(&ns, t, n) {
			nt.pc = spRetOK
			add("sem.acquire.try", "acquired")
			return
		}
		nt.pc = spSpin
		if th.pc == spTry2 {
			nt.pc = spEnter2
		}
		add("sem.acquire.try", "too few")

	case spSpin:
		if s.count() >= n && s.value&svHungry == 0 {
			nt.pc = spTry2
			add("sem.acquire.spin", "enough: try again")
			return
		}
		nt.pc = spEnter2
		add("sem.acquire.spin", "too few: the spin gives up")

	case spEnter2:
		if closed {
			m.fail(&ns, t)
			add("sem.acquire.enter", "ErrClosed")
			return
		}
		nt.pc = spToken1
		add("sem.acquire.enter", "")

	case spToken1, spToken2:
		if pr.token == 0 {
			ns.proc[p].token = uint8(t + 1)
			nt.pc = spLocked
			if th.pc == spToken2 {
				nt.pc = spUnreg
			}
			add("token.acquire", "took the token")
			return
		}
		nt.pc = spReg
		if th.pc == spToken2 {
			nt.pc = spTokenWait
		}
		add("token.acquire", "token busy")

	case spReg:
		nt.flags |= sfReg
		nt.pc = spRetry
		if m.cfg.BugNoRetry || m.cfg.BugYieldAlways {
			nt.pc = spToken2
		}
		add("sem.acquire.register", "")

	case spRetry:
		// The demand is visible to the token's holder (could): retry the
		// take once, so that of a Release between the first take and the
		// registration one of the two hears. An error (ErrClosed) shows
		// again in the token's select.
		if !m.lockOr(s, t, e, "sem.acquire.retry", func(s *SemState) { s.th[t].pc = spToken2 }) {
			return
		}
		if m.take(&ns, t, n) {
			nt.pc = spUnregOK
			add("sem.acquire.retry", "acquired")
			return
		}
		nt.pc = spToken2
		add("sem.acquire.retry", "too few")

	case spTokenWait:
		ready := false
		if pr.token == 0 {
			ready = true
			n2 := ns
			n2.proc[p].token = uint8(t + 1)
			n2.th[t].pc = spUnreg
			e.add(actor, "token.acquire_wait", false, n2, "took the token")
		}
		if ctxDone || closed {
			ready = true
			n2 := ns
			n2.th[t].pc = spUnregErr
			e.add(actor, "token.acquire_wait", false, n2, "ctx done or closed: no token")
		}
		if !ready {
			nt.pc = spParked
			add("token.acquire_wait", "parked")
		}

	case spUnreg, spUnregOK, spUnregErr:
		nt.flags &^= sfReg
		switch th.pc {
		case spUnreg:
			nt.pc = spLocked
		case spUnregOK:
			nt.pc = spRetOK
		default:
			m.fail(&ns, t)
		}
		add("sem.acquire.unregister", "")

	case spRetOK:
		m.advance(&ns, t)
		add("sem.acquire.exit", "")

	case spLocked:
		if !m.lockOr(s, t, e, "sem.acquire.locked", func(s *SemState) { s.th[t].pc = spRetErr }) {
			return
		}
		if !m.cfg.Counting {
			ns.ilock = uint8(t + 1)
		}
		nt.lives, nt.flags = 0, nt.flags&^sfPoll
		if m.take(&ns, t, n) {
			ns.ilock = 0
			nt.pc = spRet
			add("sem.acquire.locked", "acquired")
			return
		}
		if m.cfg.BugReclaimFirst || m.cfg.BugWatchHolders {
			add("sem.acquire.locked", join("too few", m.startReclaim(&ns, t, 0)))
			return
		}
		add("sem.acquire.locked", join("too few", m.startWatch(&ns, t, 0)))

	case spReclaim:
		// reclaimDead's lookup of holder e, and the reclaim of a dead one's
		// permits (an update under the lock).
		k := int(th.e)
		if s.dead(k) {
			note := e.notef("P%d dead: reclaimed %d", k, int(s.held[k]))
			ns.value += ns.held[k]
			ns.held[k] = 0
			add("proc.lookup.live", join(note, m.startReclaim(&ns, t, k+1)))
			return
		}
		if !m.cfg.BugWatchHolders {
			// The code's reclaimDead only reclaims: watchOthers watched
			// every live process before it.
			add("proc.lookup.live", join(e.notef("P%d alive", k, 0), m.startReclaim(&ns, t, k+1)))
			return
		}
		if s.live[k]&liveWaiters == 0 {
			nt.seen = s.live[k]
			nt.pc = spReclaimCAS
			add("proc.lookup.live", e.notef("P%d alive", k, 0))
			return
		}
		if m.cfg.BugWatchHolders {
			nt.lives |= 1 << k
		}
		add("proc.lookup.live", join(e.notef("P%d alive, LW set", k, 0), m.startReclaim(&ns, t, k+1)))

	case spReclaimCAS:
		k := int(th.e)
		note := "watched"
		if s.live[k] == th.seen {
			ns.live[k] |= liveWaiters
			if m.cfg.BugWatchHolders {
				nt.lives |= 1 << k
			}
		} else {
			nt.flags |= sfPoll
			note = "CAS failed: the sleep polls"
		}
		add("wait.watch.cas", join(note, m.startReclaim(&ns, t, k+1)))

	case spWatch:
		k := int(th.e)
		v := s.live[k]
		switch {
		case liveDead(v):
			add("proc.lookup.live", join(e.notef("P%d free or dead: skipped", k, 0), m.startWatch(&ns, t, k+1)))
		case v&liveWaiters != 0:
			nt.lives |= 1 << k
			add("proc.lookup.live", join(e.notef("P%d alive, LW set", k, 0), m.startWatch(&ns, t, k+1)))
		default:
			nt.seen = v
			nt.pc = spWatchCAS
			add("proc.lookup.live", e.notef("P%d alive", k, 0))
		}

	case spWatchCAS:
		k := int(th.e)
		if s.live[k] != th.seen {
			ns.ilock = 0
			nt.lives, nt.pc = 0, spLocked
			add("wait.watch.cas", "CAS failed: unlock, look again")
			return
		}
		ns.live[k] |= liveWaiters
		nt.lives |= 1 << k
		add("wait.watch.cas", join("watched", m.startWatch(&ns, t, k+1)))

	case spLoad:
		nt.v = s.value
		c := s.value & svCount
		hungry := s.value&svHungry != 0
		mine := th.flags&sfHungry != 0
		switch {
		case c >= n && (!hungry || mine):
			nt.pc = spLocked
			add("sem.acquire.load_value", "enough: look again")
		case !mine && hungry:
			// Held back: see whether the hungry waiter is alive.
			nt.pc = spHungryLoad
			add("sem.acquire.load_value", "another is hungry")
		default:
			if !mine {
				// It may have waited starveAfter by now: it tries to
				// become the hungry waiter.
				n2 := ns
				n2.th[t].pc = spHungryLoad
				e.add(actor, "sem.acquire.load_value", false, n2, "too few, and it waited long")
			}
			m.afterLoad(&ns, t)
			add("sem.acquire.load_value", "too few")
		}

	case spHungryLoad:
		r := s.hungry
		if r != 0 && int(r) != p+1 && (m.cfg.BugNoTakeover || !s.dead(int(r)-1)) {
			m.afterLoad(&ns, t)
			add("sem.acquire.hungry_load", e.notef("P%d is hungry", int(r)-1, 0))
			return
		}
		nt.e = r
		nt.pc = spHungryClaim
		if r == 0 {
			add("sem.acquire.hungry_load", "nobody hungry")
		} else {
			add("sem.acquire.hungry_load", e.notef("P%d, dead, was hungry: take it over", int(r)-1, 0))
		}

	case spHungryClaim:
		if s.hungry != th.e {
			m.afterLoad(&ns, t)
			nt.e = 0
			add("sem.acquire.hungry_claim", "CAS failed")
			return
		}
		ns.hungry = uint8(p + 1)
		nt.flags |= sfHungry
		nt.e = 0
		nt.pc = spHungrySet
		add("sem.acquire.hungry_claim", "hungry")

	case spHungrySet:
		ns.value |= svHungry
		nt.pc = spLocked
		add("sem.acquire.hungry_set", "")

	case spSatedWake:
		nt.pc = spSatedRecord
		add("sem.acquire.sated_wake", e.woke(ns.fx.WakeAll(fwValue), m.name))

	case spSatedRecord:
		if s.hungry == uint8(p+1) {
			ns.hungry = 0
		}
		nt.pc = spRetErr
		if th.flags&sfOK != 0 {
			nt.pc = spRet
		}
		nt.flags &^= sfHungry | sfOK
		add("sem.acquire.sated_record", "")

	case spCould:
		if m.could(s, t, th.v&svCount) {
			nt.pc = spYield
			add("sem.acquire.could", "a goroutine waiting for the token could use the value: yield")
			return
		}
		if m.cfg.BugCouldFirst {
			m.toSleep(&ns, t)
		} else {
			nt.pc = spWaitv
		}
		add("sem.acquire.could", "nobody")

	case spSetS:
		if s.value != th.v {
			nt.pc = spLocked
			add("sem.acquire.set_sleepers", "CAS failed: look again")
			return
		}
		ns.value |= svSleepers
		nt.v |= svSleepers
		m.beforeSleep(&ns, t)
		add("sem.acquire.set_sleepers", "")

	case spWaitv:
		if ctxDone || closed {
			nt.pc = spRetErr
			add("wait.sleep.waitv", "ctx done or closed: no sleep")
			return
		}
		set := uint8(1) << fwValue
		match := s.value == th.v
		for k := range m.nproc {
			if th.lives&(1<<k) != 0 {
				set |= 1 << fwLive(uint8(k))
				match = match && s.live[k] == 1|liveWaiters
			}
		}
		m.startChecks(&ns, t)
		if match {
			ns.fx.Sleep(t, set)
			add("wait.sleep.waitv", "sleeps")
			return
		}
		add("wait.sleep.waitv", "EAGAIN")

	case spWoken:
		// check_lives of slot th.e: a watched word that changed is woken in
		// full (the kernel woke one sleeper on it, maybe this one).
		k := int(th.e)
		if s.live[k] != 1|liveWaiters {
			nt.pc = spWakeLive
			add("wait.sleep.check_lives", e.notef("L%d changed", k, 0))
			return
		}
		m.nextCheck(&ns, t, k+1)
		add("wait.sleep.check_lives", "")

	case spWakeLive:
		k := int(th.e)
		woken := ns.fx.WakeAll(fwLive(uint8(k)))
		m.nextCheck(&ns, t, k+1)
		add("wait.sleep.wake_all_live", e.woke(woken, m.name))

	case spCheckDone:
		nt.lives = 0
		switch {
		case ctxDone || closed:
			nt.pc = spRetErr
			add("wait.sleep.check_done", "ctx done or closed")
		case m.cfg.BugYieldAlways:
			nt.pc = spYield // the old code yields after every sleep
			add("wait.sleep.check_done", "")
		default:
			nt.pc = spLoadWoken
			add("wait.sleep.check_done", "")
		}

	case spLoadWoken:
		c := s.value & svCount
		nt.v = s.value
		if c > 0 && c < n && s.value&svHungry == 0 {
			nt.pc = spCould2
			add("sem.acquire.load_woken", "too few for itself")
			return
		}
		nt.pc = spLocked
		add("sem.acquire.load_woken", "")

	case spCould2:
		if m.could(s, t, th.v&svCount) {
			nt.pc = spYield
			add("sem.acquire.could", "a goroutine waiting for the token could use the value: yield")
			return
		}
		nt.pc = spLocked
		add("sem.acquire.could", "nobody")

	case spYield:
		m.releaseToken(ns, t, func(n2 SemState, note string) {
			n2.th[t].pc = spToken1
			e.add(actor, "sem.acquire.yield_token", false, n2, note)
		})

	case spRet, spRetErr:
		ok := th.pc == spRet
		if m.cfg.BugNoSated && !ok {
			nt.flags &^= sfHungry
			ns.th[t].flags &^= sfHungry
		}
		if nt.flags&sfHungry != 0 {
			// acquireSlow's deferred sated comes before the token's
			// release: its CAS clears svHungry and svSleepers.
			if ok {
				nt.flags |= sfOK
			}
			nt.pc = spSatedRecord
			if s.value&svSleepers != 0 && !m.cfg.BugSatedNoWake {
				nt.pc = spSatedWake
			}
			ns.value &^= svHungry | svSleepers
			add("sem.acquire.sated", "")
			return
		}
		m.releaseToken(ns, t, func(n2 SemState, note string) {
			if ok {
				m.advance(&n2, t)
			} else {
				m.fail(&n2, t)
			}
			e.add(actor, "token.release", false, n2, note)
		})

	case spRLocked:
		if !m.lockOr(s, t, e, "sem.release.locked", failed) {
			return
		}
		h := s.held[p]
		if h < n && !m.cfg.BugGrantUnheld {
			m.fail(&ns, t)
			add("sem.release.locked", e.notef("ErrNotHeld: holds %d", int(h), 0))
			return
		}
		d := min(h, n)
		ns.held[p] -= d
		ns.value += n
		ns.total += n - d
		// The ghost: the releasing goroutine's permits go first, then its
		// siblings'.
		rest := d
		for _, o := range []int{t, p*maxGoroutines + (t%maxGoroutines+1)%maxGoroutines} {
			k := min(rest, ns.th[o].holds)
			ns.th[o].holds -= k
			rest -= k
		}
		nt.pc = spRLoadW
		add("sem.release.locked", e.notef("value %d", int(ns.value&svCount), 0))

	case spRLoadW:
		if s.value&svSleepers == 0 {
			m.advance(&ns, t)
			add("sem.release.load_waiters", "no sleepers")
			return
		}
		nt.v = s.value
		nt.pc = spRClear
		add("sem.release.load_waiters", "")

	case spRClear:
		if s.value != th.v {
			nt.pc = spRLoadW
			add("sem.release.clear_sleepers", "CAS failed")
			return
		}
		ns.value &^= svSleepers
		nt.pc = spRWake
		add("sem.release.clear_sleepers", "")

	case spRWake:
		m.advance(&ns, t)
		if m.cfg.BugPostOutside && closed {
			add("sem.release.wake", "closed: no wake")
			return
		}
		if m.cfg.Bug2 {
			m.wake(e, actor, "sem.release.wake", ns, fwValue, 1, "one")
			return
		}
		add("sem.release.wake", e.woke(ns.fx.WakeAll(fwValue), m.name))
	}
}

// post is a counting post's CAS (post_cas, inside Segment.enter): it adds
// n permits and clears the sleepers bit, keeping svHungry, and moves t to
// the wake if the bit was set.
func (m *SemaphoreModel) post(ns *SemState, t int, n uint8) {
	old := ns.value
	ns.value = old&^svSleepers + n
	ns.total += n
	if old&svSleepers != 0 {
		ns.th[t].pc = spRWake
	} else {
		m.advance(ns, t)
	}
}

// afterLoad moves t from its last look (the value in th.v), not taking
// the permits, to could, if another goroutine of its process might use
// them (none may while a waiter is hungry), or to the sleep.
func (m *SemaphoreModel) afterLoad(ns *SemState, t int) {
	if m.cfg.BugCouldFirst && m.mayYield(ns.th[t].v) {
		ns.th[t].pc = spCould
		return
	}
	m.toSleep(ns, t)
}

// mayYield reports whether a goroutine that loaded v, too few for itself,
// asks could before it sleeps: some permits, and nobody hungry.
func (m *SemaphoreModel) mayYield(v uint8) bool {
	return v&svCount > 0 && v&svHungry == 0 && !m.cfg.BugTokenYield && !m.cfg.BugYieldAlways
}

// toSleep moves t from its last look to the sleep: set the sleepers bit
// first unless the value it loaded has it, then could (beforeSleep).
func (m *SemaphoreModel) toSleep(ns *SemState, t int) {
	if ns.th[t].v&svSleepers == 0 {
		ns.th[t].pc = spSetS
	} else {
		m.beforeSleep(ns, t)
	}
}

// beforeSleep moves t, its sleepers bit set, to could or to the sleep.
// could comes after the bit: a goroutine of its process that registers
// after could looked, and whose retry still found too few, has its
// Release come after the bit, and so a wake-up (BugCouldFirst).
func (m *SemaphoreModel) beforeSleep(ns *SemState, t int) {
	if !m.cfg.BugCouldFirst && m.mayYield(ns.th[t].v) {
		ns.th[t].pc = spCould
		return
	}
	ns.th[t].pc = spWaitv
}

// startChecks moves t, back from futex_waitv, to check_lives of the first
// slot it watched.
func (m *SemaphoreModel) startChecks(ns *SemState, t int) {
	ns.th[t].pc = spWoken
	m.nextCheck(ns, t, 0)
}

func (m *SemaphoreModel) nextCheck(ns *SemState, t, k int) {
	th := &ns.th[t]
	for ; k < m.nproc; k++ {
		if th.lives&(1<<k) != 0 {
			th.pc, th.e = spWoken, uint8(k)
			return
		}
	}
	th.pc, th.e = spCheckDone, 0
}

// semCloseSteps is Close after waking its own waits, as closeSteps.
var semCloseSteps = []string{"proc.close.mark_closed", "proc.close.wake_all", "proc.close.unlink", "proc.close.clear", "proc.close.unmap"}

// process emits the steps of Close and of the kernel.
func (m *SemaphoreModel) process(s *SemState, p int, e *emitter[SemState]) {
	pr := &s.proc[p]
	actor := procName[p]
	if k := int(pr.close); pr.life == lifeAlive && k > 0 && k <= len(semCloseSteps) {
		drained := true
		for g := range maxGoroutines {
			drained = drained && !semInFlight(s.th[p*maxGoroutines+g].pc)
		}
		if k > 1 || drained {
			ns := *s
			ns.proc[p].close++
			note := ""
			switch semCloseSteps[k-1] {
			case "proc.close.mark_closed":
				ns.live[p] |= liveDied
			case "proc.close.wake_all":
				note = e.woke(ns.fx.WakeAll(fwLive(uint8(p))), m.name)
			case "proc.close.unlink":
				ns.proc[p].listed = 0
				note = "off the robust list"
			case "proc.close.clear":
				ns.live[p] = 0
				note = "live word 0"
			case "proc.close.unmap":
				note = "unmapped"
			}
			e.add(actor, semCloseSteps[k-1], false, ns, note)
		}
	}
	if pr.life == lifeWalk {
		// The robust-list walk: the live word, and the internal lock if a
		// thread of p held it (its next locker rolls the journal back).
		ns := *s
		ns.proc[p].life = lifeDead
		ns.proc[p].listed = 0
		note := "OWNER_DIED"
		if h := int(s.ilock) - 1; h >= 0 && h/maxGoroutines == p {
			ns.ilock = 0
			note += ", internal lock freed"
		}
		if pr.listed != 0 && robustDeath(&ns.live[p], 1) {
			m.wake(e, "kernel", "kernel.robust_walk", ns, fwLive(uint8(p)), 1, note)
			return
		}
		e.add("kernel", "kernel.robust_walk", false, ns, note)
	}
}

func (m *SemaphoreModel) env(s *SemState, e *emitter[SemState]) {
	b := s.budget
	for p := range m.nproc {
		pr := &s.proc[p]
		if pr.life != lifeAlive {
			continue
		}
		busy := pr.listed != 0
		for g := range maxGoroutines {
			busy = busy || !semFinished(s.th[p*maxGoroutines+g].pc)
		}
		if b.Kill > 0 && busy {
			ns := *s
			ns.budget.Kill--
			ns.proc[p].life = lifeWalk
			for g := range maxGoroutines {
				t := p*maxGoroutines + g
				if !semFinished(ns.th[t].pc) {
					ns.th[t].pc = spDead
				}
				ns.th[t].holds = 0
				ns.th[t].flags = 0
				ns.fx.Unqueue(t)
			}
			ns.proc[p].token = 0
			e.add("env", "env.kill", true, ns, e.notef("SIGKILL P%d", p, 0))
		}
		if b.Close > 0 && pr.close == 0 {
			// Close's closed flag, the fire of its cancellation words and
			// the close of its done channel.
			ns := *s
			ns.budget.Close--
			ns.proc[p].close = 1
			for g := range maxGoroutines {
				t := p*maxGoroutines + g
				ns.fx.Unqueue(t)
				if ns.th[t].pc == spParked {
					ns.th[t].pc = spTokenWait
				}
			}
			e.add("env", "env.close", true, ns, e.notef("P%d Close", p, 0))
		}
		for g := range maxGoroutines {
			t := p*maxGoroutines + g
			th := &s.th[t]
			if b.Cancel == 0 || !m.cancel[t] || semFinished(th.pc) || th.flags&sfCtxDone != 0 {
				continue
			}
			ns := *s
			ns.budget.Cancel--
			ns.th[t].flags |= sfCtxDone
			ns.fx.Unqueue(t)
			if ns.th[t].pc == spParked {
				ns.th[t].pc = spTokenWait
			}
			e.add("env", "env.cancel", true, ns, e.cat("cancel ", m.name(t)))
		}
	}
}

// Check checks that permits are conserved: none is created or lost (for
// owned permits, their number stays the initial one, so the value never
// exceeds it), and a live process's held entry is what its goroutines hold.
func (m *SemaphoreModel) Check(s *SemState) error {
	sum := int(s.count())
	for p := range m.nproc {
		sum += int(s.held[p])
	}
	if sum != int(s.total) {
		return Fail("permits", "value %d + held %v = %d, but %d permits exist", s.count(), s.held[:m.nproc], sum, s.total)
	}
	if s.value&svHungry != 0 && s.hungry == 0 {
		return Fail("hunger", "svHungry is set, and no record names who set it")
	}
	if !m.cfg.Counting && s.total != m.cfg.Initial {
		return Fail("permits", "%d owned permits exist, but the semaphore was made with %d (value %d, held %v)", s.total, m.cfg.Initial, s.count(), s.held[:m.nproc])
	}
	for p := range m.nproc {
		if s.proc[p].life != lifeAlive || s.proc[p].close != 0 {
			continue
		}
		g := 0
		for k := range maxGoroutines {
			g += int(s.th[p*maxGoroutines+k].holds)
		}
		if g != int(s.held[p]) {
			return Fail("permits", "P%d's held entry says %d, its goroutines hold %d", p, s.held[p], g)
		}
	}
	return nil
}

// Stuck reports a goroutine blocked although it could take permits: the
// value, or with the permits of dead holders, covers its request. Since
// Release wakes every sleeping process, this is also where "a wake-up
// never stays with a waiter that cannot use it while another could" is
// checked: no waiter that could use the value is left asleep or parked.
//
// A waiter held back by a live hungry waiter (another one) may wait with
// enough permits for itself: that is the starvation bound. The hungry
// waiter may not, and a hunger must not outlive its waiter: a live
// process named by the record has a goroutine that is hungry.
func (m *SemaphoreModel) Stuck(s *SemState) error {
	if r := int(s.hungry) - 1; r >= 0 && !s.dead(r) {
		found := false
		for g := range maxGoroutines {
			found = found || s.th[r*maxGoroutines+g].flags&sfHungry != 0
		}
		if !found {
			return Fail("hunger", "the record names P%d, alive, but none of its goroutines is hungry", r)
		}
	}
	for t := range maxThreads {
		th := &s.th[t]
		if semFinished(th.pc) {
			continue
		}
		p := t / maxGoroutines
		n := m.ops[t][th.op].N
		deadHeld := 0
		for e := range m.nproc {
			if e != p && s.dead(e) {
				deadHeld += int(s.held[e])
			}
		}
		asleep := s.fx.Asleep(t)
		if !asleep && th.pc != spParked {
			return Fail("stuck", "%s cannot move at %s", m.name(t), semPCName[th.pc])
		}
		what := "sleeps"
		if !asleep {
			what = "is parked on the token"
			h := int(s.proc[p].token) - 1
			if h < 0 || semFinished(s.th[h].pc) {
				return Fail("lost-wakeup", "%s is parked on the token, which nobody will release", m.name(t))
			}
		}
		heldBack := s.value&svHungry != 0 && th.flags&sfHungry == 0 && s.hungry != 0 && !s.dead(int(s.hungry)-1)
		switch {
		case s.proc[p].close != 0:
			return Fail("close-no-wake", "%s %s after its process closed", m.name(t), what)
		case heldBack:
			continue
		case s.count() >= n:
			return Fail("lost-wakeup", "%s %s for %d permits while the value is %d", m.name(t), what, n, s.count())
		case int(s.count())+deadHeld >= int(n):
			return Fail("lost-wakeup", "%s %s for %d permits: value %d, and dead holders hold %d", m.name(t), what, n, s.count(), deadHeld)
		}
	}
	return nil
}

// Format describes s on one line.
func (m *SemaphoreModel) Format(s *SemState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "value=%d", s.count())
	if s.value&svHungry != 0 {
		b.WriteString("|H")
	}
	if s.value&svSleepers != 0 {
		b.WriteString("|S")
	}
	if s.hungry != 0 {
		fmt.Fprintf(&b, " hungry=P%d", s.hungry-1)
	}
	fmt.Fprintf(&b, " held=%v total=%d", s.held[:m.nproc], s.total)
	if s.ilock != 0 {
		fmt.Fprintf(&b, " lock=%s", m.name(int(s.ilock)-1))
	}
	b.WriteString(" |")
	for p := range m.nproc {
		fmt.Fprintf(&b, " L%d=%s", p, formatLive(s.live[p]))
	}
	for p := range m.nproc {
		pr := &s.proc[p]
		b.WriteString(" |")
		if pr.life != lifeAlive {
			b.WriteString(" " + [...]string{"", "KILLED", "DEAD"}[pr.life])
		}
		if pr.close != 0 {
			switch k := int(pr.close); {
			case k == 1:
				b.WriteString(" closing")
			case k > len(semCloseSteps):
				b.WriteString(" closed")
			default:
				b.WriteString(" closing:" + strings.TrimPrefix(semCloseSteps[k-2], "proc.close."))
			}
		}
		for g := range maxGoroutines {
			t := p*maxGoroutines + g
			if len(m.ops[t]) == 0 {
				continue
			}
			th := &s.th[t]
			fmt.Fprintf(&b, " %s@%s", m.name(t), semPCName[th.pc])
			if !semFinished(th.pc) {
				if op := m.ops[t][th.op]; op.Acquire {
					fmt.Fprintf(&b, "(acq %d)", op.N)
				} else {
					fmt.Fprintf(&b, "(rel %d)", op.N)
				}
			}
			if th.holds != 0 {
				fmt.Fprintf(&b, " has%d", th.holds)
			}
			if th.flags&sfReg != 0 {
				b.WriteString(" reg")
			}
			if th.flags&sfHungry != 0 {
				b.WriteString(" hungry")
			}
			if on := s.fx.On[t]; on != 0 {
				var ws []string
				for w := range 8 {
					if on&(1<<w) != 0 {
						if w == fwValue {
							ws = append(ws, "value")
						} else {
							ws = append(ws, fmt.Sprintf("L%d", w-maxMutexes))
						}
					}
				}
				b.WriteString(" zz{" + strings.Join(ws, ",") + "}")
				if th.flags&sfPoll != 0 {
					b.WriteString("(poll)")
				}
			}
			if th.flags&sfCtxDone != 0 {
				b.WriteString(" cancelled")
			}
		}
		if h := pr.token; h != 0 {
			fmt.Fprintf(&b, " tok=G%d", (h-1)%maxGoroutines)
		}
	}
	fmt.Fprintf(&b, " | budget k%d c%d x%d", s.budget.Kill, s.budget.Cancel, s.budget.Close)
	return b.String()
}

var semaphoreSteps = []string{
	"sem.acquire.fast_cas",
	"sem.acquire.enter",
	"sem.acquire.check",
	"sem.acquire.try",
	"sem.acquire.spin",
	"token.acquire",
	"sem.acquire.register",
	"sem.acquire.retry",
	"token.acquire_wait",
	"sem.acquire.unregister",
	"sem.acquire.exit",
	"sem.acquire.locked",
	"proc.lookup.live",
	"wait.watch.cas",
	"sem.acquire.load_value",
	"sem.acquire.could",
	"sem.acquire.set_sleepers",
	"wait.sleep.waitv",
	"wait.sleep.check_lives",
	"wait.sleep.wake_all_live",
	"wait.sleep.check_done",
	"sem.acquire.load_woken",
	"sem.acquire.yield_token",
	"token.release",
	"sem.release.fast_cas",
	"sem.release.post_cas",
	"sem.acquire.hungry_load",
	"sem.acquire.hungry_claim",
	"sem.acquire.hungry_set",
	"sem.acquire.sated",
	"sem.acquire.sated_wake",
	"sem.acquire.sated_record",
	"sem.release.enter",
	"sem.release.locked",
	"sem.release.load_waiters",
	"sem.release.clear_sleepers",
	"sem.release.wake",
	"proc.close.mark_closed",
	"proc.close.wake_all",
	"proc.close.unlink",
	"proc.close.clear",
	"proc.close.unmap",
}

// Steps returns the labels of the model's code steps.
func (m *SemaphoreModel) Steps() []string { return append([]string(nil), semaphoreSteps...) }
