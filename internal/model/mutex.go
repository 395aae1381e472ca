package model

import (
	"errors"
	"fmt"
	"strings"
)

// Sizes of the state arrays. A configuration may use fewer.
const (
	maxProcs      = 3
	maxGoroutines = 2
	maxMutexes    = 2
	maxThreads    = maxProcs * maxGoroutines
)

// A Script is what one goroutine does: Rounds times, it locks Locks in
// order and unlocks them in reverse. If a Lock fails (cancelled, closed) it
// unlocks what it holds and stops.
type Script struct {
	Locks  []int
	Rounds int  // 0 means 1
	Cancel bool // the goroutine's context may be cancelled (LockContext)
}

// MutexConfig is one configuration of the Mutex model.
type MutexConfig struct {
	Procs  [][]Script // Procs[p][g]: goroutine g of process p
	Budget Budget
	// GenBits is the width of a slot's generation (default 2). With fewer
	// bits than attaches, an identity comes back: see TestMutexGenerationWrap.
	GenBits uint8
	// DistinctTIDs gives each process its own keeper tid. By default every
	// process has tid 1, as processes in fresh PID namespaces do, so that no
	// step may tell processes apart by tid (STYLE rule 26).
	DistinctTIDs bool

	// Bug3 reverts the fix of lost wake-up 3: a sleeper woken but finding
	// its context done returns without futex_wake(word, 1).
	Bug3 bool
	// Bug4 reverts the fix of lost wake-up 4: a newcomer attaching to a dead
	// process's slot does not wake the sleepers on the slot's live word, so
	// that when the kernel's single death wake-up went to a waiter that saw
	// the newcomer instead of DIED, the others sleep on.
	Bug4 bool
	// BugToken: a goroutine holding the process-local token whose context is
	// cancelled returns without releasing the token.
	BugToken bool
	// BugWatchOwner is the sleep as the design first had it: a waiter
	// watches the live word of the holder it saw, only. The lock can then
	// pass to a third process (Unlock's wake-up goes to it, or it takes the
	// free lock) that dies holding it, or dies before it acts on the
	// wake-up: nothing wakes the first waiter. Waiters watch the live word
	// of every other attached process instead.
	BugWatchOwner bool
	// BugLiveABA is the sleep as the design first had it: futex_waitv on
	// the lock word and the holder's live word only, not its slot's
	// generation. When tids collide (PID namespaces), the live word can go
	// t|LW → DIED|LW → t (a newcomer) → t|LW (another waiter) between a
	// waiter's generation check and its sleep; the sleep then matches and
	// outlasts the newcomer's wake-up.
	BugLiveABA bool
	// BugDetachKill is Close as the design first had it: clear the live word
	// and unlink it from the robust list, then wake its sleepers. A SIGKILL
	// between the two leaves them asleep: nothing will ever change the word.
	BugDetachKill bool
	// BugAttachOrder is the claim of a slot and the lookup as the code has
	// them (proc.go, "A slot's claim", and lookup): the newcomer CASes the
	// live word first (A1), then bumps the generation (A2), then clears
	// liveWaiters and wakes all (A3); the lookup reads the live word, then
	// the generation. Between A1 and A2 the dead holder looks alive with the
	// newcomer's live word, and a waiter that watches it then can sleep
	// through A3: killed between A3's clear and its wake-up, the newcomer
	// leaves no liveWaiters bit for the kernel to wake on; or, without the
	// generation in the sleep (BugLiveABA, as the code sleeps), a second
	// waiter sets liveWaiters again after A3's clear and the first sleep
	// matches.
	BugAttachOrder bool
	// AttachNoClear, with BugAttachOrder, is the code's claim as it is now:
	// A1, A2, then A3 wakes all without clearing liveWaiters (the sleep's
	// generation word does what the clear did). Without BugLiveABA (the
	// code's sleep names the generation word too) it must pass.
	AttachNoClear bool

	// PendingWake models the code's armPending (robust_linux.go): a
	// goroutine between its token and its return names the lock word as
	// its thread's pending robust-list op, and when its process dies the
	// kernel wakes one sleeper on that word if the word's owner bits are 0
	// (handle_futex_death, Linux 5.8 and later). Off by default: the model's
	// waiters watch every other process instead (see BugWatchOwner), which
	// covers that case and more.
	PendingWake bool
}

// The lock word, in the model's 8 bits:
//
//	bits 0-1  slot+1 of the holder's process-table slot; 0 when free
//	bits 2-6  the slot's generation when the holder attached
//	bit  7    W: a process may sleep on the word
const (
	mwW      = 0x80
	mwIDMask = 0x7f
)

func ident(slot, gen uint8) uint8 { return gen<<2 | (slot + 1) }
func identSlot(id uint8) uint8    { return id&3 - 1 }
func identGen(id uint8) uint8     { return id >> 2 }

// Futex word numbers: the mutexes' words, the slots' live words, the slots'
// generation words.
func fwMutex(m uint8) int   { return int(m) }
func fwLive(slot uint8) int { return maxMutexes + int(slot) }
func fwGen(slot uint8) int  { return maxMutexes + maxProcs + int(slot) }

// Goroutine program counters. Each names the step the goroutine takes next.
const (
	pcOp        uint8 = iota // start the current op: mutex.lock.check_closed / mutex.unlock.check_closed
	pcFast                   // mutex.lock.fast_cas
	pcEnter                  // mutex.lock.enter
	pcToken                  // token.acquire (its non-blocking select)
	pcTokenWait              // token.acquire_wait (its blocking select)
	pcParked                 // parked on the token (no step)
	pcLoad                   // mutex.lock.load
	pcCasFree                // mutex.lock.cas_free
	pcGen                    // proc.lookup.gen: the holder's slot
	pcLive                   // proc.lookup.live
	pcWatch                  // wait.watch.cas
	pcRecheck                // wait.watch.recheck_gen
	pcOGen                   // proc.lookup.gen: another process's slot
	pcOLive                  // proc.lookup.live
	pcOCAS                   // wait.watch.cas
	pcTakeover               // mutex.lock.takeover_cas
	pcSetW                   // mutex.lock.set_waiters
	pcWaitv                  // wait.sleep.waitv
	pcWoken                  // wait.sleep.check_lives, once woken
	pcWakeLive               // wait.sleep.wake_all_live
	pcCheckDone              // wait.sleep.check_done
	pcPassWake               // mutex.lock.pass_wake
	pcRet                    // token.release, then the CS
	pcRetErr                 // token.release, then fail
	pcUFast                  // mutex.unlock.fast_cas
	pcULoad                  // mutex.unlock.load
	pcUCas                   // mutex.unlock.cas
	pcUWake                  // mutex.unlock.wake
	pcDone                   // finished its script (or not configured)
	pcDead                   // its process was killed
	pcGone                   // stopped by Close: panicked in Unlock, or faulted on the unmapped segment
)

var mutexPCName = [...]string{
	pcOp: "op", pcFast: "fast_cas", pcEnter: "enter", pcToken: "token", pcTokenWait: "token_wait", pcParked: "parked",
	pcLoad: "load", pcCasFree: "cas_free", pcGen: "lookup_gen", pcLive: "lookup_live",
	pcWatch: "watch_cas", pcRecheck: "recheck_gen", pcOGen: "watch_gen", pcOLive: "watch_live", pcOCAS: "watch_cas", pcTakeover: "takeover", pcSetW: "set_waiters",
	pcWaitv: "waitv", pcWoken: "woken", pcWakeLive: "wake_all_live", pcCheckDone: "check_done",
	pcPassWake: "pass_wake", pcRet: "release(ok)", pcRetErr: "release(err)", pcUFast: "unlock.fast_cas",
	pcULoad: "unlock.load", pcUCas: "unlock.cas", pcUWake: "unlock.wake", pcDone: "done",
	pcDead: "dead", pcGone: "gone",
}

// inFlight reports whether a goroutine at pc is between Segment.enter and
// exit: Close waits for it before it detaches.
func inFlight(pc uint8) bool { return pc >= pcToken && pc <= pcRetErr }

func finished(pc uint8) bool { return pc >= pcDone }

const (
	tfCtxDone = 1 << iota // its context is done
	tfBail                // a Lock failed: unlock what it holds, then stop
)

type mthread struct {
	pc    uint8
	op    uint8 // index of the current op in its script
	held  uint8 // ghost: mutexes it holds (it is in their critical sections)
	v     uint8 // local: the lock word it loaded
	flags uint8
	ws    uint8           // local: slots whose live word it watches
	cur   uint8           // local: the slot it is looking at
	wl    [maxProcs]uint8 // local: the live word values it watches
	wg    [maxProcs]uint8 // local: the generations it saw
}

const (
	lifeAlive uint8 = iota
	lifeWalk        // killed; the kernel's robust-list walk is pending
	lifeDead
)

// A process's Close: 0 while open; 1 once Close has begun (the closed flag
// is set, its waits are fired); then 1+i once the i'th step of closeSteps is
// done. The first step waits until no goroutine is in flight.
const closeOpen uint8 = 0

// closeSteps is what Close does after waking its own waits: detach's D1–D4
// (proc.go, "A handle's release"), then the unmap. The live word is marked
// DIED (D1) while it is still on the robust list with the process's tid, so
// that a SIGKILL at any point still makes the kernel wake a waiter; only
// after the wake-up (D2) is it unlinked (D3) and cleared (D4). A kill
// between D3 and D4 leaves the word tid|DIED and off the list: dead to
// lookups, never claimed again (one slot lost). The mapping goes last.
var closeSteps = []string{"proc.close.mark_closed", "proc.close.wake_all", "proc.close.unlink", "proc.close.clear", "proc.close.unmap"}

// closeStepsBug is Close as first designed: clear and unlink the live word,
// then wake. A SIGKILL before the wake loses it (BugDetachKill).
var closeStepsBug = []string{"proc.close.clear", "proc.close.unlink", "proc.close.wake_all", "proc.close.unmap"}

type mproc struct {
	life    uint8
	close   uint8
	listed  uint8             // 1 while its slot is on its robust list
	token   [maxMutexes]uint8 // thread+1 holding the process-local token of each mutex; 0 free
	pending uint8             // PendingWake: killed, the mutexes its threads had armed
}

// A newcomer's life on a slot.
const (
	ncNone  uint8 = iota
	ncBump        // proc.attach.bump_gen next
	ncCAS         // proc.attach.cas_live next
	ncWake        // proc.attach.wake_all next (listed from here on)
	ncAlive       // attached
	ncWalk        // killed; robust walk pending
	ncDead
	ncClear // BugAttachOrder: A3's clearing of liveWaiters next
)

type mslot struct {
	live uint8
	gen  uint8
	nc   uint8
}

// MutexState is a state of the Mutex model.
type MutexState struct {
	word   [maxMutexes]uint8
	died   uint8 // ghost: bit m set: m's word names an identity that died holding it, not yet reported
	bad    uint8 // ghost: an assertion that failed inside a step (badX), checked by Check
	badArg uint8
	slot   [maxProcs]mslot
	proc   [maxProcs]mproc
	th     [maxThreads]mthread
	fx     Futex
	budget Budget
}

const (
	badNone uint8 = iota
	badUnreported
	badSpurious
	badNotOwner
)

type mop struct {
	lock bool
	m    uint8
}

// MutexModel is the Mutex wait protocol (mutex.go, wait.go, proc.go) with
// the process-local token, owner-death wake-ups, Close and slot reuse.
type MutexModel struct {
	cfg    MutexConfig
	nproc  int
	nmutex int
	gen    Seq
	ops    [maxThreads][]mop
	closes []string // closeSteps or closeStepsBug
	cancel [maxThreads]bool
	names  [maxThreads]string
}

// NewMutexModel checks cfg and returns its model.
func NewMutexModel(cfg MutexConfig) (*MutexModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > maxProcs {
		return nil, fmt.Errorf("model: %d processes (1 to %d)", len(cfg.Procs), maxProcs)
	}
	if cfg.GenBits == 0 {
		cfg.GenBits = 2
	}
	if cfg.GenBits > 5 {
		return nil, errors.New("model: GenBits above 5")
	}
	m := &MutexModel{cfg: cfg, nproc: len(cfg.Procs), gen: Seq{Bits: cfg.GenBits}, closes: closeSteps}
	if cfg.BugDetachKill {
		m.closes = closeStepsBug
	}
	for p, gs := range cfg.Procs {
		if len(gs) > maxGoroutines {
			return nil, fmt.Errorf("model: process %d has %d goroutines (at most %d)", p, len(gs), maxGoroutines)
		}
		for g, sc := range gs {
			t := p*maxGoroutines + g
			m.names[t] = fmt.Sprintf("P%d.G%d", p, g)
			m.cancel[t] = sc.Cancel
			rounds := max(sc.Rounds, 1)
			last := -1
			for _, mu := range sc.Locks {
				if mu < 0 || mu >= maxMutexes || mu <= last {
					return nil, fmt.Errorf("model: P%d.G%d locks %v: mutexes must be increasing, below %d", p, g, sc.Locks, maxMutexes)
				}
				last = mu
				m.nmutex = max(m.nmutex, mu+1)
			}
			for range rounds {
				for _, mu := range sc.Locks {
					m.ops[t] = append(m.ops[t], mop{lock: true, m: uint8(mu)})
				}
				for i := len(sc.Locks) - 1; i >= 0; i-- {
					m.ops[t] = append(m.ops[t], mop{m: uint8(sc.Locks[i])})
				}
			}
		}
	}
	return m, nil
}

func (m *MutexModel) tid(p int) uint8 {
	if m.cfg.DistinctTIDs {
		return uint8(p + 1)
	}
	return 1
}

// newcomerTID is the tid of a newcomer on slot s.
func (m *MutexModel) newcomerTID(s int) uint8 {
	if m.cfg.DistinctTIDs {
		return uint8(4 + s)
	}
	return 1
}

// Init returns the state where every process has attached at generation 0
// and no goroutine has started.
func (m *MutexModel) Init() MutexState {
	var s MutexState
	s.budget = m.cfg.Budget
	for p := range maxProcs {
		for g := range maxGoroutines {
			t := p*maxGoroutines + g
			if len(m.ops[t]) == 0 {
				s.th[t].pc = pcDone
			}
		}
		if p < m.nproc {
			s.slot[p].live = m.tid(p)
			s.proc[p].listed = 1
		} else {
			s.proc[p].life = lifeDead
		}
	}
	return s
}

func (m *MutexModel) name(t int) string { return m.names[t] }

// cur returns thread t's current op: the next of its script, or while
// bailing out, the unlock of the highest mutex it holds.
func (m *MutexModel) cur(s *MutexState, t int) mop {
	th := &s.th[t]
	if th.flags&tfBail != 0 {
		for mu := maxMutexes - 1; mu >= 0; mu-- {
			if th.held&(1<<mu) != 0 {
				return mop{m: uint8(mu)}
			}
		}
		return mop{}
	}
	return m.ops[t][th.op]
}

// clearLocals forgets t's local variables once they are dead, so that
// states that differ only in them are one state.
func (th *mthread) clearLocals() {
	th.v, th.ws, th.cur = 0, 0, 0
	th.wl, th.wg = [maxProcs]uint8{}, [maxProcs]uint8{}
}

// advance moves t past its current op.
func (m *MutexModel) advance(s *MutexState, t int) {
	th := &s.th[t]
	th.clearLocals()
	if th.flags&tfBail == 0 {
		th.op++
		if int(th.op) < len(m.ops[t]) {
			th.pc = pcOp
			return
		}
		th.pc = pcDone
		return
	}
	if th.held == 0 {
		th.pc = pcDone
	} else {
		th.pc = pcOp
	}
}

// fail ends t's current Lock with an error: it unlocks what it holds, then stops.
func (m *MutexModel) fail(s *MutexState, t int) {
	s.th[t].flags |= tfBail
	m.advance(s, t)
}

func (s *MutexState) setBad(code, arg uint8) {
	if s.bad == badNone {
		s.bad, s.badArg = code, arg
	}
}

// enterCS records that t acquired mu, and checks that it is told of a death.
func (s *MutexState) enterCS(t int, mu uint8, ownerDead bool) {
	bit := uint8(1) << mu
	switch {
	case s.died&bit != 0 && !ownerDead:
		s.setBad(badUnreported, uint8(t)<<4|mu)
	case s.died&bit == 0 && ownerDead:
		s.setBad(badSpurious, uint8(t)<<4|mu)
	}
	s.died &^= bit
	s.th[t].held |= bit
	if !s.alive(ident(uint8(t/maxGoroutines), 0)) {
		// A fast-path CAS that raced with its process's Close: the lock is
		// held by an identity that is already dead.
		s.died |= bit
	}
}

// leaveCS is the CAS of mu's word to 0 by t. A holder that released it
// normally did not die holding it, even if its identity is dead by now (it
// was unlocking while its process closed).
func (s *MutexState) leaveCS(t int, mu uint8) {
	s.word[mu] = 0
	s.died &^= 1 << mu
	s.th[t].held &^= 1 << mu
}

// identityDies marks the mutexes whose word names id as held by a dead owner.
func (s *MutexState) identityDies(id uint8) {
	for mu := range maxMutexes {
		if s.word[mu]&mwIDMask == id {
			s.died |= 1 << mu
		}
	}
}

// alive reports whether identity id is alive in s: its generation is the
// slot's, its live word is not dead, and no newcomer has claimed the word
// (with BugAttachOrder a newcomer's live word and the old generation can be
// seen together; the lookup then takes the dead identity for alive).
func (s *MutexState) alive(id uint8) bool {
	sl := &s.slot[identSlot(id)]
	return sl.gen == identGen(id) && !liveDead(sl.live) && (sl.nc == ncNone || sl.nc == ncDead)
}

// Next appends every step enabled in s.
func (m *MutexModel) Next(s *MutexState, trace bool, steps []Step[MutexState]) []Step[MutexState] {
	e := &emitter[MutexState]{out: steps, trace: trace}
	for t := range maxThreads {
		m.thread(s, t, e)
	}
	for p := range m.nproc {
		m.process(s, p, e)
	}
	m.env(s, e)
	return e.out
}

// wake emits one step for every choice FUTEX_WAKE(w, n) can make in ns.
func (m *MutexModel) wake(e *emitter[MutexState], actor, label string, ns MutexState, w, n int, note string) {
	ns.fx.Wakes(w, n, func(woken uint16, after Futex) {
		n2 := ns
		n2.fx = after
		e.add(actor, label, false, n2, join(note, e.woke(woken, m.name)))
	})
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

// releaseToken is token.release: hand t's token to a parked goroutine of the
// same process for the same mutex, or free it. It calls fn with each outcome.
func (m *MutexModel) releaseToken(ns MutexState, t int, mu uint8, fn func(MutexState, string)) {
	p := t / maxGoroutines
	handed := false
	for g := range maxGoroutines {
		o := p*maxGoroutines + g
		if o == t || ns.th[o].pc != pcParked || m.cur(&ns, o).m != mu {
			continue
		}
		n2 := ns
		n2.proc[p].token[mu] = uint8(o + 1)
		n2.th[o].pc = pcLoad
		handed = true
		fn(n2, "token handed to "+m.name(o))
	}
	if !handed {
		ns.proc[p].token[mu] = 0
		fn(ns, "token free")
	}
}

func (m *MutexModel) thread(s *MutexState, t int, e *emitter[MutexState]) {
	th := &s.th[t]
	switch {
	case finished(th.pc), th.pc == pcParked:
		return
	case th.pc == pcWoken && s.fx.Asleep(t):
		return
	}
	p := t / maxGoroutines
	pr := &s.proc[p]
	op := m.cur(s, t)
	mu := op.m
	id := ident(uint8(p), 0)
	actor := m.name(t)
	closed := pr.close != closeOpen
	unmapped := m.unmapped(pr)
	ctxDone := th.flags&tfCtxDone != 0
	ns := *s
	nt := &ns.th[t]
	add := func(label, note string) { e.add(actor, label, false, ns, note) }
	gone := func(label, note string) {
		nt.pc, nt.held = pcGone, 0
		add(label, note)
	}

	switch th.pc {
	case pcOp:
		if op.lock {
			if closed {
				m.fail(&ns, t)
				add("mutex.lock.check_closed", "ErrClosed")
				return
			}
			nt.pc = pcFast
			add("mutex.lock.check_closed", "")
			return
		}
		if closed {
			gone("mutex.unlock.check_closed", "panic: Unlock after Close")
			return
		}
		nt.pc = pcUFast
		add("mutex.unlock.check_closed", "")

	case pcFast:
		if unmapped {
			gone("mutex.lock.fast_cas", "fault: segment unmapped")
			return
		}
		if s.word[mu] == 0 {
			ns.word[mu] = id
			ns.enterCS(t, mu, false)
			m.advance(&ns, t)
			add("mutex.lock.fast_cas", "acquired")
			return
		}
		nt.pc = pcEnter
		add("mutex.lock.fast_cas", "CAS failed")

	case pcEnter:
		if closed {
			m.fail(&ns, t)
			add("mutex.lock.enter", "ErrClosed")
			return
		}
		nt.pc = pcToken
		add("mutex.lock.enter", "")

	case pcToken:
		if pr.token[mu] == 0 {
			ns.proc[p].token[mu] = uint8(t + 1)
			nt.pc = pcLoad
			add("token.acquire", "took the token")
			return
		}
		nt.pc = pcTokenWait
		add("token.acquire", "token busy")

	case pcTokenWait:
		// select { token <- struct{}{}; <-ctx.Done(); <-s.closing() }:
		// any ready case may be chosen.
		ready := false
		if pr.token[mu] == 0 {
			ready = true
			n2 := ns
			n2.proc[p].token[mu] = uint8(t + 1)
			n2.th[t].pc = pcLoad
			e.add(actor, "token.acquire_wait", false, n2, "took the token")
		}
		if ctxDone || closed {
			ready = true
			n2 := ns
			m.fail(&n2, t)
			e.add(actor, "token.acquire_wait", false, n2, "ctx done or closed: no token")
		}
		if !ready {
			nt.pc = pcParked
			add("token.acquire_wait", "parked")
		}

	case pcLoad:
		v := s.word[mu]
		nt.clearLocals()
		nt.v = v
		owner := v & mwIDMask
		switch {
		case owner == 0:
			nt.pc = pcCasFree
		case owner == id:
			m.nextWatch(&ns, t, 0)
		case m.cfg.BugAttachOrder:
			nt.pc = pcLive // the code's lookup: live word, then generation
		default:
			nt.pc = pcGen
		}
		add("mutex.lock.load", "")

	case pcCasFree:
		if s.word[mu] == th.v {
			ns.word[mu] = id | mwW
			ns.enterCS(t, mu, false)
			nt.pc = pcRet
			add("mutex.lock.cas_free", "acquired")
			return
		}
		nt.pc = pcLoad
		add("mutex.lock.cas_free", "CAS failed")

	case pcGen:
		owner := th.v & mwIDMask
		sl := identSlot(owner)
		if s.slot[sl].gen != identGen(owner) {
			nt.pc = pcTakeover
			add("proc.lookup.gen", "generation changed: holder dead")
			return
		}
		nt.wg[sl] = s.slot[sl].gen
		nt.pc = pcLive
		if m.cfg.BugAttachOrder {
			nt.pc = pcWatch
			if th.wl[sl]&liveWaiters != 0 {
				nt.pc = pcRecheck
			}
		}
		add("proc.lookup.gen", "")

	case pcLive:
		sl := identSlot(th.v & mwIDMask)
		lv := s.slot[sl].live
		if liveDead(lv) {
			nt.pc = pcTakeover
			add("proc.lookup.live", "holder dead")
			return
		}
		nt.wl[sl] = lv
		switch {
		case m.cfg.BugAttachOrder:
			nt.pc = pcGen
		case lv&liveWaiters != 0:
			nt.pc = pcRecheck
		default:
			nt.pc = pcWatch
		}
		add("proc.lookup.live", "holder alive")

	case pcWatch:
		sl := identSlot(th.v & mwIDMask)
		if s.slot[sl].live == th.wl[sl] {
			ns.slot[sl].live |= liveWaiters
			nt.wl[sl] |= liveWaiters
			nt.pc = pcRecheck
			add("wait.watch.cas", "")
			return
		}
		nt.pc = pcLoad
		add("wait.watch.cas", "CAS failed")

	case pcRecheck:
		owner := th.v & mwIDMask
		sl := identSlot(owner)
		if s.slot[sl].gen != identGen(owner) {
			nt.pc = pcLoad
			add("wait.watch.recheck_gen", "generation changed: retry")
			return
		}
		nt.ws |= 1 << sl
		m.nextWatch(&ns, t, 0)
		add("wait.watch.recheck_gen", "")

	case pcOGen:
		sl := th.cur
		nt.wg[sl] = s.slot[sl].gen
		nt.pc = pcOLive
		add("proc.lookup.gen", e.notef("slot %d", int(sl), 0))

	case pcOLive:
		sl := th.cur
		lv := s.slot[sl].live
		switch {
		case liveDead(lv):
			m.nextWatch(&ns, t, sl+1)
			add("proc.lookup.live", e.notef("slot %d dead: not watched", int(sl), 0))
		case lv&liveWaiters != 0:
			nt.wl[sl] = lv
			nt.ws |= 1 << sl
			m.nextWatch(&ns, t, sl+1)
			add("proc.lookup.live", e.notef("slot %d", int(sl), 0))
		default:
			nt.wl[sl] = lv
			nt.pc = pcOCAS
			add("proc.lookup.live", e.notef("slot %d", int(sl), 0))
		}

	case pcOCAS:
		sl := th.cur
		if s.slot[sl].live != th.wl[sl] {
			nt.pc = pcLoad
			add("wait.watch.cas", e.notef("slot %d: CAS failed", int(sl), 0))
			return
		}
		ns.slot[sl].live |= liveWaiters
		nt.wl[sl] |= liveWaiters
		nt.ws |= 1 << sl
		m.nextWatch(&ns, t, sl+1)
		add("wait.watch.cas", e.notef("slot %d", int(sl), 0))

	case pcTakeover:
		if s.word[mu] == th.v {
			ns.word[mu] = id | th.v&mwW
			ns.enterCS(t, mu, true)
			nt.pc = pcRet
			add("mutex.lock.takeover_cas", "acquired: owner dead")
			return
		}
		nt.pc = pcLoad
		add("mutex.lock.takeover_cas", "CAS failed")

	case pcSetW:
		if s.word[mu] == th.v {
			ns.word[mu] |= mwW
			nt.v |= mwW
			nt.pc = pcWaitv
			add("mutex.lock.set_waiters", "")
			return
		}
		nt.pc = pcLoad
		add("mutex.lock.set_waiters", "CAS failed")

	case pcWaitv:
		if ctxDone || closed {
			// sleep() returns before futex_waitv: its cancellation word
			// fired, or addCancel failed. It consumed no wake-up.
			nt.pc = pcRetErr
			add("wait.sleep.waitv", "ctx done or closed: no sleep")
			return
		}
		set := uint8(1) << fwMutex(mu)
		match := s.word[mu] == th.v
		for sl := range uint8(m.nproc) {
			if th.ws&(1<<sl) == 0 {
				continue
			}
			set |= 1 << fwLive(sl)
			match = match && s.slot[sl].live == th.wl[sl]
			if !m.cfg.BugLiveABA {
				set |= 1 << fwGen(sl)
				match = match && s.slot[sl].gen == th.wg[sl]
			}
		}
		nt.pc = pcWoken
		if match {
			ns.fx.Sleep(t, set)
			add("wait.sleep.waitv", "sleeps")
			return
		}
		add("wait.sleep.waitv", "EAGAIN")

	case pcWoken:
		for sl := range uint8(m.nproc) {
			if th.ws&(1<<sl) != 0 && s.slot[sl].live&liveDied != 0 {
				nt.pc = pcWakeLive
				add("wait.sleep.check_lives", e.notef("L%d DIED", int(sl), 0))
				return
			}
		}
		nt.pc = pcCheckDone
		nt.clearLocals()
		add("wait.sleep.check_lives", "")

	case pcWakeLive:
		nt.pc = pcCheckDone
		var woken uint16
		for sl := range uint8(m.nproc) {
			if th.ws&(1<<sl) != 0 && s.slot[sl].live&liveDied != 0 {
				woken |= ns.fx.WakeAll(fwLive(sl))
			}
		}
		nt.clearLocals()
		add("wait.sleep.wake_all_live", e.woke(woken, m.name))

	case pcCheckDone:
		switch {
		case ctxDone && m.cfg.Bug3:
			nt.pc = pcRetErr
			add("wait.sleep.check_done", "ctx done (Bug3: wake-up not passed on)")
		case ctxDone || closed:
			nt.pc = pcPassWake
			add("wait.sleep.check_done", "ctx done or closed")
		default:
			nt.pc = pcLoad
			add("wait.sleep.check_done", "retry")
		}

	case pcPassWake:
		nt.pc = pcRetErr
		m.wake(e, actor, "mutex.lock.pass_wake", ns, fwMutex(mu), 1, "")

	case pcRet, pcRetErr:
		nt.clearLocals()
		if th.pc == pcRetErr && ctxDone && m.cfg.BugToken {
			m.fail(&ns, t)
			add("token.release", "BugToken: cancelled, token kept")
			return
		}
		ok := th.pc == pcRet
		m.releaseToken(ns, t, mu, func(n2 MutexState, note string) {
			if ok {
				m.advance(&n2, t)
			} else {
				m.fail(&n2, t)
			}
			e.add(actor, "token.release", false, n2, note)
		})

	case pcUFast:
		if unmapped {
			gone("mutex.unlock.fast_cas", "fault: segment unmapped")
			return
		}
		if s.word[mu] == id {
			ns.leaveCS(t, mu)
			m.advance(&ns, t)
			add("mutex.unlock.fast_cas", "released")
			return
		}
		nt.pc = pcULoad
		add("mutex.unlock.fast_cas", "CAS failed")

	case pcULoad:
		if unmapped {
			gone("mutex.unlock.load", "fault: segment unmapped")
			return
		}
		v := s.word[mu]
		if v&mwIDMask != id {
			if !closed {
				ns.setBad(badNotOwner, uint8(t)<<4|mu)
			}
			gone("mutex.unlock.load", "NotOwner panic")
			return
		}
		nt.v = v
		nt.pc = pcUCas
		add("mutex.unlock.load", "")

	case pcUCas:
		if unmapped {
			gone("mutex.unlock.cas", "fault: segment unmapped")
			return
		}
		if s.word[mu] != th.v {
			nt.pc = pcULoad
			add("mutex.unlock.cas", "CAS failed")
			return
		}
		ns.leaveCS(t, mu)
		if th.v&mwW != 0 {
			nt.pc = pcUWake
		} else {
			m.advance(&ns, t)
		}
		add("mutex.unlock.cas", "released")

	case pcUWake:
		if unmapped {
			gone("mutex.unlock.wake", "fault: segment unmapped")
			return
		}
		m.advance(&ns, t)
		m.wake(e, actor, "mutex.unlock.wake", ns, fwMutex(mu), 1, "")
	}
}

// process emits the steps of Close, of newcomers and of the kernel.
func (m *MutexModel) process(s *MutexState, p int, e *emitter[MutexState]) {
	pr := &s.proc[p]
	actor := procName[p]
	if pr.life == lifeAlive {
		if k := int(pr.close); k > 0 && k <= len(m.closes) && (k > 1 || m.drained(s, p)) {
			ns := *s
			ns.proc[p].close++
			note := ""
			switch step := m.closes[k-1]; step {
			case "proc.close.mark_closed":
				ns.slot[p].live |= liveDied // tid kept: still the kernel's to report
				ns.identityDies(ident(uint8(p), 0))
			case "proc.close.wake_all":
				note = e.woke(ns.fx.WakeAll(fwLive(uint8(p))), m.name)
			case "proc.close.unlink":
				ns.proc[p].listed = 0
				note = "off the robust list"
			case "proc.close.clear":
				ns.slot[p].live = 0
				ns.identityDies(ident(uint8(p), 0))
				note = "live word 0"
			case "proc.close.unmap":
				// Goroutines still in a critical section lose the mapping.
				for g := range maxGoroutines {
					t := p*maxGoroutines + g
					if ns.th[t].held != 0 {
						ns.th[t].pc, ns.th[t].held = pcGone, 0
					}
				}
			}
			e.add(actor, m.closes[k-1], false, ns, note)
		}
	}
	if pr.life == lifeWalk {
		ns := *s
		ns.proc[p].life = lifeDead
		m.robustWalk(e, ns, p, pr.listed != 0, m.tid(p))
	}
	if pr.life == lifeDead && pr.pending != 0 {
		// The exit of a thread whose pending op names a lock word.
		ns := *s
		mu := uint8(0)
		for pr.pending&(1<<mu) == 0 {
			mu++
		}
		ns.proc[p].pending &^= 1 << mu
		if s.word[mu]&mwIDMask == 0 {
			m.wake(e, "kernel", "kernel.pending_wake", ns, fwMutex(mu), 1, e.notef("M%d free", int(mu), 0))
		} else {
			e.add("kernel", "kernel.pending_wake", false, ns, e.notef("M%d held: no wake", int(mu), 0))
		}
	}
	sl := &s.slot[p]
	actor = newcomerName[p]
	switch sl.nc {
	case ncBump:
		ns := *s
		ns.slot[p].gen = m.gen.Add(sl.gen, 1)
		ns.slot[p].nc = ncCAS
		if m.cfg.BugAttachOrder {
			ns.slot[p].nc = ncClear
			if m.cfg.AttachNoClear {
				ns.slot[p].nc = ncWake
			}
			if m.cfg.Bug4 {
				ns.slot[p].nc = ncAlive
			}
		}
		e.add(actor, "proc.attach.bump_gen", false, ns, "")
	case ncCAS:
		ns := *s
		ns.slot[p].live = m.newcomerTID(p)
		ns.slot[p].nc = ncWake
		switch {
		case m.cfg.BugAttachOrder:
			ns.slot[p].nc = ncBump
		case m.cfg.Bug4:
			ns.slot[p].nc = ncAlive
		}
		e.add(actor, "proc.attach.cas_live", false, ns, "")
	case ncClear:
		ns := *s
		ns.slot[p].live &^= liveWaiters
		ns.slot[p].nc = ncWake
		e.add(actor, "proc.attach.clear_waiters", false, ns, "")
	case ncWake:
		ns := *s
		ns.slot[p].nc = ncAlive
		woken := ns.fx.WakeAll(fwLive(uint8(p)))
		e.add(actor, "proc.attach.wake_all", false, ns, e.woke(woken, m.name))
	case ncWalk:
		ns := *s
		ns.slot[p].nc = ncDead
		m.robustWalk(e, ns, p, true, m.newcomerTID(p))
	}
}

func (m *MutexModel) unmapped(pr *mproc) bool { return int(pr.close) > len(m.closes) }

// newcomerListed reports whether a newcomer at nc has claimed its slot's
// live word, which the kernel then handles at its death (the code sets the
// list's pending op before the CAS and links the word after A3).
func (m *MutexModel) newcomerListed(nc uint8) bool {
	if m.cfg.BugAttachOrder {
		return nc == ncBump || nc == ncClear || nc == ncWake || nc == ncAlive
	}
	return nc == ncWake || nc == ncAlive
}

// nextWatch moves t to the watch of the next slot from, other than its own
// and the holder's; or, once all are watched, on to set the waiters bit.
// With BugWatchOwner it watches the holder only.
func (m *MutexModel) nextWatch(s *MutexState, t int, from uint8) {
	th := &s.th[t]
	p := uint8(t / maxGoroutines)
	owner := th.v & mwIDMask
	if !m.cfg.BugWatchOwner {
		for sl := from; sl < uint8(m.nproc); sl++ {
			if sl != p && (owner == 0 || sl != identSlot(owner)) {
				th.cur = sl
				th.pc = pcOGen
				return
			}
		}
	}
	th.pc = pcSetW
	if th.v&mwW != 0 {
		th.pc = pcWaitv
	}
}

// drained reports whether no goroutine of p is between enter and exit.
func (m *MutexModel) drained(s *MutexState, p int) bool {
	for g := range maxGoroutines {
		if inFlight(s.th[p*maxGoroutines+g].pc) {
			return false
		}
	}
	return true
}

// robustWalk is the kernel's walk of a dead process's robust list, which
// holds its slot's live word if listed.
func (m *MutexModel) robustWalk(e *emitter[MutexState], ns MutexState, slot int, listed bool, tid uint8) {
	ns.proc[slot].listed = 0
	if listed && robustDeath(&ns.slot[slot].live, tid) {
		m.wake(e, "kernel", "kernel.robust_walk", ns, fwLive(uint8(slot)), 1, "OWNER_DIED")
		return
	}
	e.add("kernel", "kernel.robust_walk", false, ns, "")
}

// env emits the environment events the budget still allows.
func (m *MutexModel) env(s *MutexState, e *emitter[MutexState]) {
	b := s.budget
	for p := range m.nproc {
		pr := &s.proc[p]
		if pr.life != lifeAlive {
			continue
		}
		busy := pr.listed != 0 || pr.close != closeOpen && !m.unmapped(pr)
		for g := range maxGoroutines {
			busy = busy || !finished(s.th[p*maxGoroutines+g].pc)
		}
		if b.Kill > 0 && busy {
			ns := *s
			ns.budget.Kill--
			ns.proc[p].life = lifeWalk
			for g := range maxGoroutines {
				t := p*maxGoroutines + g
				if pc := ns.th[t].pc; m.cfg.PendingWake && pc >= pcLoad && pc <= pcRetErr {
					ns.proc[p].pending |= 1 << m.cur(&ns, t).m
				}
				if !finished(ns.th[t].pc) {
					ns.th[t].pc = pcDead
				}
				ns.th[t].held = 0
				ns.fx.Unqueue(t)
			}
			ns.proc[p].token = [maxMutexes]uint8{}
			ns.identityDies(ident(uint8(p), 0))
			e.add("env", "env.kill", true, ns, e.notef("SIGKILL P%d", p, 0))
		}
		if b.Close > 0 && pr.close == closeOpen {
			ns := *s
			ns.budget.Close--
			ns.proc[p].close = 1
			for g := range maxGoroutines {
				t := p*maxGoroutines + g
				ns.fx.Unqueue(t) // its cancellation word fired
				if ns.th[t].pc == pcParked {
					ns.th[t].pc = pcTokenWait // s.closing() is ready
				}
			}
			e.add("env", "env.close", true, ns, e.notef("P%d Close", p, 0))
		}
		for g := range maxGoroutines {
			t := p*maxGoroutines + g
			th := &s.th[t]
			if b.Cancel == 0 || !m.cancel[t] || finished(th.pc) || th.flags&tfCtxDone != 0 {
				continue
			}
			ns := *s
			ns.budget.Cancel--
			ns.th[t].flags |= tfCtxDone
			ns.fx.Unqueue(t)
			if ns.th[t].pc == pcParked {
				ns.th[t].pc = pcTokenWait
			}
			e.add("env", "env.cancel", true, ns, e.cat("cancel ", m.name(t)))
		}
	}
	for sl := range m.nproc {
		slot := &s.slot[sl]
		if (slot.nc >= ncBump && slot.nc <= ncAlive || slot.nc == ncClear) && b.Kill > 0 {
			ns := *s
			ns.budget.Kill--
			if m.newcomerListed(slot.nc) {
				ns.slot[sl].nc = ncWalk
			} else {
				ns.slot[sl].nc = ncDead
			}
			e.add("env", "env.kill", true, ns, e.notef("SIGKILL N%d", sl, 0))
		}
		free := liveFree(slot.live)
		occupied := s.proc[sl].listed != 0 || s.proc[sl].life == lifeWalk || slot.nc != ncNone && slot.nc != ncDead
		if b.Attach > 0 && free && !occupied {
			ns := *s
			ns.budget.Attach--
			ns.slot[sl].nc = ncBump
			if m.cfg.BugAttachOrder {
				ns.slot[sl].nc = ncCAS // A1 first
			}
			e.add("env", "env.attach", true, ns, e.notef("newcomer N%d attaches to slot %d", sl, sl))
		}
	}
}

// Check checks the invariants that hold in every state.
func (m *MutexModel) Check(s *MutexState) error {
	switch s.bad {
	case badUnreported:
		return Fail("owner-death-unreported", "%s acquired M%d after its holder died, and was not told", m.name(int(s.badArg>>4)), s.badArg&15)
	case badSpurious:
		return Fail("spurious-owner-death", "%s was told M%d's holder died, but it had not", m.name(int(s.badArg>>4)), s.badArg&15)
	case badNotOwner:
		return Fail("not-owner", "%s found M%d taken from it while it held it", m.name(int(s.badArg>>4)), s.badArg&15)
	}
	for mu := range m.nmutex {
		var in []string
		for t := range maxThreads {
			// A goroutine in a critical section while its process closes
			// the segment uses the segment during Close, which the API
			// forbids: it no longer counts.
			if s.th[t].held&(1<<mu) != 0 && s.proc[t/maxGoroutines].close == closeOpen {
				in = append(in, m.name(t))
				if p := t / maxGoroutines; s.word[mu]&mwIDMask != ident(uint8(p), 0) {
					return Fail("ownership", "%s is in M%d's critical section, but the word names %s", m.name(t), mu, formatWord(s.word[mu]))
				}
			}
		}
		if len(in) > 1 {
			return Fail("mutual-exclusion", "M%d held by %s", mu, strings.Join(in, " and "))
		}
	}
	return nil
}

// Stuck reports a goroutine still blocked when only the environment can move.
func (m *MutexModel) Stuck(s *MutexState) error {
	for pass := range 2 {
		for t := range maxThreads {
			th := &s.th[t]
			if finished(th.pc) {
				continue
			}
			p := t / maxGoroutines
			mu := m.cur(s, t).m
			if pass == 0 && th.pc == pcWoken && s.fx.Asleep(t) {
				if s.proc[p].close != closeOpen {
					return Fail("close-no-wake", "%s sleeps on M%d after its process closed", m.name(t), mu)
				}
				w := s.word[mu]
				owner := w & mwIDMask
				switch {
				case owner == 0:
					return Fail("lost-wakeup", "%s sleeps on M%d, which is free, and no wake-up is pending", m.name(t), mu)
				case !s.alive(owner):
					return Fail("lost-wakeup", "%s sleeps on M%d, held by dead %s, and nobody will wake it", m.name(t), mu, formatWord(w))
				}
				for h := range maxThreads {
					if s.th[h].held&(1<<mu) != 0 && !finished(s.th[h].pc) {
						return Fail("deadlock", "%s sleeps on M%d, held by %s, which is blocked too", m.name(t), mu, m.name(h))
					}
				}
				return Fail("lost-wakeup", "%s sleeps on M%d, held by live %s that no goroutine will release", m.name(t), mu, formatWord(w))
			}
			if pass == 1 && th.pc == pcParked {
				if s.proc[p].close != closeOpen {
					return Fail("close-no-wake", "%s is parked on M%d's token after its process closed", m.name(t), mu)
				}
				h := int(s.proc[p].token[mu]) - 1
				if h < 0 || finished(s.th[h].pc) {
					return Fail("lost-wakeup", "%s is parked on M%d's token, which nobody will release", m.name(t), mu)
				}
				return Fail("stuck", "%s is parked on M%d's token behind %s", m.name(t), mu, m.name(h))
			}
			if pass == 1 && th.pc != pcParked && !(th.pc == pcWoken && s.fx.Asleep(t)) {
				return Fail("stuck", "%s cannot move at %s", m.name(t), mutexPCName[th.pc])
			}
		}
	}
	return nil
}

func formatWord(w uint8) string {
	if w&mwIDMask == 0 {
		if w&mwW != 0 {
			return "0|W"
		}
		return "0"
	}
	id := w & mwIDMask
	s := fmt.Sprintf("P%dg%d", identSlot(id), identGen(id))
	if w&mwW != 0 {
		s += "|W"
	}
	return s
}

// Format describes s on one line.
func (m *MutexModel) Format(s *MutexState) string {
	var b strings.Builder
	for mu := range m.nmutex {
		fmt.Fprintf(&b, "M%d=%s ", mu, formatWord(s.word[mu]))
	}
	if s.died != 0 {
		fmt.Fprintf(&b, "died=%02b ", s.died)
	}
	b.WriteString("|")
	for sl := range m.nproc {
		fmt.Fprintf(&b, " L%d=%s g%d", sl, formatLive(s.slot[sl].live), s.slot[sl].gen)
		if nc := s.slot[sl].nc; nc != ncNone {
			fmt.Fprintf(&b, " N%d:%s", sl, [...]string{"", "bump", "cas", "wake", "alive", "walk", "dead", "clear"}[nc])
		}
	}
	for p := range m.nproc {
		pr := &s.proc[p]
		b.WriteString(" |")
		if pr.life != lifeAlive {
			b.WriteString(" " + [...]string{"", "KILLED", "DEAD"}[pr.life])
		}
		switch k := int(pr.close); {
		case k == 1:
			b.WriteString(" closing")
		case k > len(m.closes):
			b.WriteString(" closed")
		case k > 1:
			b.WriteString(" closing:" + strings.TrimPrefix(m.closes[k-2], "proc.close."))
		}
		for g := range maxGoroutines {
			t := p*maxGoroutines + g
			if len(m.ops[t]) == 0 {
				continue
			}
			th := &s.th[t]
			fmt.Fprintf(&b, " %s@%s", m.name(t), mutexPCName[th.pc])
			if !finished(th.pc) {
				if op := m.cur(s, t); op.lock {
					fmt.Fprintf(&b, "(lock M%d)", op.m)
				} else {
					fmt.Fprintf(&b, "(unlock M%d)", op.m)
				}
			}
			if th.held != 0 {
				fmt.Fprintf(&b, " cs=%02b", th.held)
			}
			if on := s.fx.On[t]; on != 0 {
				b.WriteString(" zz{" + m.formatWords(on) + "}")
			}
			if th.flags&tfCtxDone != 0 {
				b.WriteString(" cancelled")
			}
		}
		for mu := range m.nmutex {
			if h := pr.token[mu]; h != 0 {
				fmt.Fprintf(&b, " tok%d=G%d", mu, (h-1)%maxGoroutines)
			}
		}
	}
	fmt.Fprintf(&b, " | budget k%d c%d x%d a%d", s.budget.Kill, s.budget.Cancel, s.budget.Close, s.budget.Attach)
	return b.String()
}

func (m *MutexModel) formatWords(set uint8) string {
	var ws []string
	for w := range 8 {
		if set&(1<<w) == 0 {
			continue
		}
		switch {
		case w < maxMutexes:
			ws = append(ws, fmt.Sprintf("M%d", w))
		case w < maxMutexes+maxProcs:
			ws = append(ws, fmt.Sprintf("L%d", w-maxMutexes))
		default:
			ws = append(ws, fmt.Sprintf("G%d", w-maxMutexes-maxProcs))
		}
	}
	return strings.Join(ws, ",")
}

// mutexSteps are the code steps of the Mutex model: each is meant to appear
// as a `// step:` comment at the line of the code that does it.
var mutexSteps = []string{
	"mutex.lock.check_closed",
	"mutex.lock.fast_cas",
	"mutex.lock.enter",
	"token.acquire",
	"token.acquire_wait",
	"mutex.lock.load",
	"mutex.lock.cas_free",
	"proc.lookup.gen",
	"proc.lookup.live",
	"wait.watch.cas",
	"wait.watch.recheck_gen",
	"mutex.lock.takeover_cas",
	"mutex.lock.set_waiters",
	"wait.sleep.waitv",
	"wait.sleep.check_lives",
	"wait.sleep.wake_all_live",
	"wait.sleep.check_done",
	"mutex.lock.pass_wake",
	"token.release",
	"mutex.unlock.check_closed",
	"mutex.unlock.fast_cas",
	"mutex.unlock.load",
	"mutex.unlock.cas",
	"mutex.unlock.wake",
	"proc.close.mark_closed",
	"proc.close.wake_all",
	"proc.close.unlink",
	"proc.close.clear",
	"proc.close.unmap",
	"proc.attach.bump_gen",
	"proc.attach.cas_live",
	"proc.attach.wake_all",
}

// Steps returns the labels of the model's code steps (not the environment's
// "env." events nor the kernel's "kernel." steps).
func (m *MutexModel) Steps() []string { return append([]string(nil), mutexSteps...) }
