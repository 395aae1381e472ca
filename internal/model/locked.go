package model

import (
	"fmt"
	"strings"
)

// LockedModel is the locked-state wait protocol shared by Barrier, WaitGroup
// and Once (lockedwait.go, "lw."), with each primitive's state as the
// critical sections change it. One goroutine per process (up to three).
//
// Abstractions, beyond those of doc.go:
//
//   - A critical section (lw.wait.locked, lw.wait.giveup, lw.change.locked)
//     is one step: the state is changed under the lock, and its journal
//     makes each change all-or-nothing when the holder is killed, so a kill
//     inside one is a kill before or after it. The lock itself is held
//     across steps (from lw.wait.locked to lw.wait.unlock, from
//     lw.change.locked to lw.change.unlock) and freed by the kernel's
//     robust-list walk when its holder dies.
//   - watchAll (lw.wait.watch) is one step: the set of other processes it
//     finds attached and not marked dead. Its CASes of liveWaiters are not
//     modelled: the kernel's walk here wakes every sleeper that watches the
//     dead process (the code: one, whose wait.sleep.check_lives wakes the
//     others). There are no newcomers (watchAll's free slots are for them).
//   - Close is env.close (the handle's closed flag; it fires the sleepers'
//     cancellation words) and, once no call of the process is inside
//     Segment.enter, proc.close.mark_closed, which marks the live word dead
//     and wakes its watchers (detach's D1 and D2; D3 and D4 change nothing
//     a lookup sees).
//   - Once's f is one step, lw.run, outside Segment.enter; its outcome is
//     the configuration's (OnceFailFirst).
type LockedModel struct {
	cfg   LockedConfig
	nproc int
}

// A LockedOp is one call of a goroutine's script.
type LockedOp uint8

// The calls of LockedModel's scripts.
const (
	OpBarrierWait LockedOp = iota + 1
	OpBarrierReset
	OpWGAdd // Add(1)
	OpWGDone
	OpWGWait
	OpOnceDo
)

// A LockedScript is one process's calls, in order; it stops at the first
// that fails.
type LockedScript struct {
	Ops    []LockedOp
	Cancel bool // its context may be cancelled
}

// LockedConfig is one configuration of the LockedModel.
type LockedConfig struct {
	Procs  []LockedScript
	Budget Budget // Attach is not modelled

	// OnceFailFirst: the first run of Once's f returns an error.
	OnceFailFirst bool

	// BugNoWatch: a sleeper watches no other process (lw.wait.watch
	// finds nobody). A party killed while the others sleep, before it
	// arrives, then leaves them asleep for good: nothing changes seq.
	BugNoWatch bool
	// BugCheckFirst: the waiter looks at the state (cond) before it
	// watches the others (the code's first order). A party that cond finds
	// alive and that is dead by the time of the watch is neither seen dead
	// nor watched: the sleeper sleeps on, the party's death gone by.
	BugCheckFirst bool
	// BugBarrierGenOnly: a Barrier waiter that has arrived looks only at
	// the generation when it wakes, not at broken: when another waiter
	// gives up (its context ended) and breaks the barrier, it sleeps again.
	BugBarrierGenOnly bool
	// BugPeekAny: a woken Barrier waiter's peek takes any change of the
	// generation for its completion, also a Reset's: released while a
	// party never arrived.
	BugPeekAny bool
	// BugWGNoReclaim: WaitGroup's Wait does not drop the Adds of dead
	// processes (reclaimDead): a holder of Adds killed leaves the waiters
	// asleep on a counter that never reaches 0.
	BugWGNoReclaim bool
}

// LockedModel program counters.
const (
	lpStart   uint8 = iota // lw.wait.enter, or lw.change.locked for a call that only changes
	lpLocked               // lw.wait.locked
	lpWatch                // lw.wait.watch
	lpCheck                // lw.wait.check
	lpUnlock               // lw.wait.unlock
	lpWaitv                // wait.sleep.waitv
	lpAsleep               // asleep (no step); then back to lpLocked or lpGiveUp
	lpPeek                 // lw.wait.peek: Barrier's look without the lock
	lpGiveUp               // lw.wait.giveup
	lpCLocked              // lw.change.locked
	lpCUnlock              // lw.change.unlock
	lpWake                 // lw.change.wake
	lpRun                  // lw.run: Once's f
	lpDone
	lpDead
)

var lockedPCName = [...]string{
	lpStart: "start", lpLocked: "locked", lpWatch: "watch", lpCheck: "check", lpUnlock: "unlock", lpWaitv: "waitv", lpAsleep: "asleep", lpPeek: "peek",
	lpGiveUp: "giveup", lpCLocked: "change.locked", lpCUnlock: "change.unlock", lpWake: "wake", lpRun: "run",
	lpDone: "done", lpDead: "dead",
}

const (
	lfCtx     = 1 << iota // its context is done
	lfArrived             // Barrier: it arrived in generation gen
	lfBumped              // it bumped seq: its wake follows the unlock
	lfWoken               // it was woken (or its sleep returned at once)
	lfOK                  // its call's result: success (for lpRun: f succeeded)
)

type lthread struct {
	pc     uint8
	op     uint8
	flags  uint8
	v      uint8 // seq as it read it under the lock
	watch  uint8 // processes its sleep watches (bit p)
	gen    uint8 // Barrier: the generation it arrived in
	resets uint8 // Barrier: resets when it arrived
}

// LockedState is a state of the LockedModel.
type LockedState struct {
	seq  uint8
	lock uint8 // thread+1 holding the internal lock; 0 free
	// Barrier
	count, gen, broken, resets uint8
	// WaitGroup
	counter, wgBroken, dropped uint8
	held                       [maxProcs]uint8
	// Once
	ost, runner, failures uint8
	// live: 0 attached, 1 killed (not yet seen by the kernel), 2 marked dead
	live    [maxProcs]uint8
	closing [maxProcs]uint8 // 1 once env.close came
	th      [maxProcs]lthread
	fx      Futex // word 0: seq; word 1+p: process p's live word
	budget  Budget
	// ghosts
	arrived   [maxProcs]uint8 // Barrier: the generation+1 each process last arrived in
	added     uint8           // WaitGroup: Adds made minus Dones made, all processes
	succeeded uint8           // Once: successful runs recorded
	bad       uint8           // a call returned success when it must not: 1 Barrier, 2 WaitGroup, 3 Once
}

// NewLockedModel checks cfg and returns its model.
func NewLockedModel(cfg LockedConfig) (*LockedModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > maxProcs {
		return nil, fmt.Errorf("model: %d processes (1 to %d)", len(cfg.Procs), maxProcs)
	}
	return &LockedModel{cfg: cfg, nproc: len(cfg.Procs)}, nil
}

// correct returns m without its planted bugs, to judge what a waiter
// should have seen.
func (m *LockedModel) correct() *LockedModel {
	c := *m
	c.cfg.BugNoWatch, c.cfg.BugBarrierGenOnly, c.cfg.BugWGNoReclaim, c.cfg.BugCheckFirst, c.cfg.BugPeekAny = false, false, false, false, false
	return &c
}

func (m *LockedModel) name(t int) string { return fmt.Sprintf("P%d", t) }

// Init returns the state before any call.
func (m *LockedModel) Init() LockedState {
	s := LockedState{budget: m.cfg.Budget}
	s.budget.Attach = 0
	for p := range maxProcs {
		switch {
		case p >= m.nproc:
			s.th[p].pc, s.live[p] = lpDead, 2
		case len(m.cfg.Procs[p].Ops) == 0:
			s.th[p].pc = lpDone
		}
	}
	return s
}

func (m *LockedModel) op(s *LockedState, t int) LockedOp { return m.cfg.Procs[t].Ops[s.th[t].op] }

// alive is lookup: attached and not marked dead.
func (s *LockedState) alive(p int) bool { return s.live[p] != 2 }

// parties is the Barrier's party count: every process joined at the start.
func (m *LockedModel) parties() uint8 { return uint8(m.nproc) }

// inFlight reports whether t is inside Segment.enter (Close waits for it).
func lockedInFlight(pc uint8) bool {
	return pc != lpStart && pc != lpRun && pc != lpDone && pc != lpDead
}

// next ends t's call with its result and moves to the next, or stops the
// script if the call failed.
func (m *LockedModel) next(s *LockedState, t int, ok bool) {
	th := &s.th[t]
	th.op++
	th.flags &= lfCtx
	th.v, th.watch, th.gen, th.resets = 0, 0, 0, 0
	if !ok || int(th.op) >= len(m.cfg.Procs[t].Ops) {
		th.pc = lpDone
		return
	}
	th.pc = lpStart
}

// bump is changed(): seq+1 under the lock, and a wake to come.
func (s *LockedState) bump(t int) {
	s.seq++
	s.th[t].flags |= lfBumped
}

// deadParty reports whether a joined party (every process) is marked dead.
func (m *LockedModel) deadParty(s *LockedState) bool {
	for p := range m.nproc {
		if !s.alive(p) {
			return true
		}
	}
	return false
}

// cond runs t's wait condition under the lock, changing the state as the
// code's cond does. It returns done (the call is over, with ok), or not
// done (sleep). giveUp is abandon's second look.
func (m *LockedModel) cond(s *LockedState, t int) (done, ok bool) {
	th := &s.th[t]
	switch m.op(s, t) {
	case OpBarrierWait:
		if th.flags&lfArrived == 0 {
			if s.broken != 0 {
				return true, false
			}
			if m.deadParty(s) {
				s.broken = 1
				s.bump(t)
				return true, false
			}
			if th.flags&lfCtx != 0 {
				return false, false // gives up, breaking it
			}
			th.flags |= lfArrived
			th.gen, th.resets = s.gen, s.resets
			s.arrived[t] = s.gen + 1
			if s.count+1 == m.parties() {
				s.count = 0
				s.gen++
				s.bump(t)
				return true, true
			}
			s.count++
			return false, false
		}
		if s.resets != th.resets {
			return true, false
		}
		if s.gen != th.gen {
			m.checkArrived(s, t)
			return true, true
		}
		if m.cfg.BugBarrierGenOnly {
			return false, false
		}
		if s.broken != 0 {
			return true, false
		}
		if m.deadParty(s) {
			s.broken = 1
			s.bump(t)
			return true, false
		}
		return false, false
	case OpWGWait:
		if !m.cfg.BugWGNoReclaim && m.reclaim(s) {
			s.bump(t)
		}
		if s.wgBroken != 0 {
			return true, false
		}
		if s.counter == 0 {
			if s.added != 0 {
				s.bad = 2 // an Add not matched by a Done, and no death seen
			}
			return true, true
		}
		return false, false
	case OpOnceDo:
		switch s.ost {
		case onceDoneM:
			return true, true
		case onceRunningM:
			if s.alive(int(s.runner)) {
				return false, false
			}
			s.ost = onceIdleM
			s.failures++
		}
		// idle: claim
		s.ost, s.runner = onceRunningM, uint8(t)
		return true, true
	}
	panic("model: cond of a call that does not wait")
}

const (
	onceIdleM uint8 = iota
	onceRunningM
	onceDoneM
)

// checkArrived is the ghost check of a Barrier waiter released from its
// generation: every party arrived in it (or, since, in the next).
func (m *LockedModel) checkArrived(s *LockedState, t int) {
	for p := range m.nproc {
		if a := s.arrived[p] - s.th[t].gen; a != 1 && a != 2 {
			s.bad = 1
		}
	}
}

// reclaim drops the Adds of dead holders (WaitGroup.reclaimDead). It
// reports whether it dropped any.
func (m *LockedModel) reclaim(s *LockedState) bool {
	any := false
	for p := range m.nproc {
		if s.held[p] != 0 && !s.alive(p) {
			s.counter -= min(s.counter, s.held[p])
			s.dropped += s.held[p]
			s.held[p] = 0
			s.wgBroken = 1
			any = true
		}
	}
	return any
}

// change runs the critical section of a call that only changes the state
// (lw.change.locked). It reports the call's success.
func (m *LockedModel) change(s *LockedState, t int) bool {
	switch m.op(s, t) {
	case OpBarrierReset:
		s.broken, s.count = 0, 0
		s.gen++
		s.resets++
		s.bump(t)
		return true
	case OpWGAdd:
		if m.reclaim(s) {
			s.bump(t)
		}
		s.held[t]++
		s.counter++
		s.added++
		return true
	case OpWGDone:
		if m.reclaim(s) {
			s.bump(t)
		}
		if s.counter+s.dropped == 0 {
			return false
		}
		switch {
		case s.counter == 0:
			s.dropped--
			return true
		case s.held[t] != 0:
			s.held[t]--
		default:
			for p := range m.nproc {
				if s.held[p] != 0 {
					s.held[p]--
					break
				}
			}
		}
		s.counter--
		s.added--
		if s.counter == 0 {
			s.bump(t)
		}
		return true
	case OpOnceDo: // the end of f
		if s.ost != onceRunningM || int(s.runner) != t {
			return s.th[t].flags&lfOK != 0
		}
		if s.th[t].flags&lfOK != 0 {
			s.ost = onceDoneM
			s.succeeded++
		} else {
			s.ost = onceIdleM
			s.failures++
		}
		s.bump(t)
		return s.th[t].flags&lfOK != 0
	}
	panic("model: change of a call that does not change")
}

func waits(op LockedOp) bool { return op == OpBarrierWait || op == OpWGWait || op == OpOnceDo }

// Next appends every step enabled in s.
func (m *LockedModel) Next(s *LockedState, trace bool, steps []Step[LockedState]) []Step[LockedState] {
	e := &emitter[LockedState]{out: steps, trace: trace}
	for t := range m.nproc {
		m.thread(s, t, e)
	}
	for p := range m.nproc {
		m.process(s, p, e)
	}
	m.env(s, e)
	return e.out
}

func (m *LockedModel) thread(s *LockedState, t int, e *emitter[LockedState]) {
	th := s.th[t]
	if s.live[t] != 0 {
		return // killed
	}
	actor := m.name(t)
	ns := *s
	nt := &ns.th[t]
	switch th.pc {
	case lpStart:
		if waits(m.op(s, t)) {
			if s.closing[t] != 0 {
				m.next(&ns, t, false)
				e.add(actor, "lw.wait.enter", false, ns, "closed: ErrClosed")
				return
			}
			if m.op(s, t) == OpOnceDo && s.ost == onceDoneM {
				m.next(&ns, t, true) // the fast path
				e.add(actor, "lw.wait.enter", false, ns, "done already")
				return
			}
			nt.pc = m.loopTop()
			e.add(actor, "lw.wait.enter", false, ns, "")
			return
		}
		nt.pc = lpCLocked
		m.thread(&ns, t, e) // the change's enter is its lock step
	case lpLocked:
		if s.lock != 0 {
			return // blocked on the internal lock
		}
		ns.lock = uint8(t + 1)
		nt.pc = lpCheck
		e.add(actor, "lw.wait.locked", false, ns, "")
	case lpWatch:
		nt.watch = 0
		if !m.cfg.BugNoWatch {
			for p := range m.nproc {
				if p != t && s.alive(p) {
					nt.watch |= 1 << p
				}
			}
		}
		nt.pc = lpLocked
		if m.cfg.BugCheckFirst {
			nt.pc = lpUnlock // the lock is held: the look came first
		}
		e.add(actor, "lw.wait.watch", false, ns, e.notef("watches %02b", int(nt.watch), 0))
	case lpCheck, lpGiveUp:
		label := "lw.wait.check"
		if th.pc == lpGiveUp {
			if s.lock != 0 {
				return
			}
			label = "lw.wait.giveup"
		}
		done, ok := m.cond(&ns, t)
		switch {
		case done:
			ns.lock = 0
			m.finishWait(&ns, t, ok)
			e.add(actor, label, false, ns, e.cat("done ", okNote(ok)))
		case th.pc == lpGiveUp:
			// giveUp: Barrier breaks it; the others just return.
			if m.op(s, t) == OpBarrierWait && ns.broken == 0 {
				ns.broken = 1
				ns.bump(t)
			}
			if nt.flags&lfBumped != 0 {
				nt.pc = lpWake
				nt.flags &^= lfOK
			} else {
				m.next(&ns, t, false)
			}
			e.add(actor, label, false, ns, "gives up")
		default:
			nt.v = ns.seq
			nt.pc = lpUnlock
			if m.cfg.BugCheckFirst {
				nt.pc = lpWatch // then unlock
			}
			e.add(actor, label, false, ns, e.notef("not done; seq %d", int(ns.seq), 0))
		}
	case lpUnlock:
		ns.lock = 0
		nt.pc = lpWaitv
		e.add(actor, "lw.wait.unlock", false, ns, "")
	case lpWaitv:
		if th.flags&lfCtx != 0 || s.closing[t] != 0 {
			m.abandon(&ns, t)
			e.add(actor, "wait.sleep.waitv", false, ns, "ctx done or closed")
			return
		}
		changed := s.seq != th.v
		for p := range m.nproc {
			if th.watch&(1<<p) != 0 && s.live[p] == 2 {
				changed = true
			}
		}
		if changed {
			nt.pc = m.loopTop()
			e.add(actor, "wait.sleep.waitv", false, ns, "a word changed: EAGAIN")
			return
		}
		set := uint8(1)
		for p := range m.nproc {
			if th.watch&(1<<p) != 0 {
				set |= 1 << (1 + p)
			}
		}
		ns.fx.Sleep(t, set)
		nt.pc = lpAsleep
		e.add(actor, "wait.sleep.waitv", false, ns, "sleeps")
	case lpAsleep:
		if s.fx.Asleep(t) {
			return
		}
		note := "woken"
		if th.flags&lfCtx != 0 || s.closing[t] != 0 {
			m.abandon(&ns, t)
			note = "woken: ctx done or closed"
		} else {
			nt.pc = m.loopTop()
			if m.op(s, t) == OpBarrierWait {
				nt.pc = lpPeek
			}
		}
		e.add(actor, "wait.sleep.waitv", false, ns, note) // futex_waitv returns
	case lpPeek:
		// Barrier's peek, without the lock: its generation moved on,
		// and not by a Reset.
		if th.flags&lfArrived != 0 && s.gen != th.gen && (s.resets == th.resets || m.cfg.BugPeekAny) {
			m.checkArrived(&ns, t)
			m.next(&ns, t, true)
			e.add(actor, "lw.wait.peek", false, ns, "generation complete")
			return
		}
		nt.pc = m.loopTop()
		e.add(actor, "lw.wait.peek", false, ns, "not yet")
	case lpCLocked:
		if s.lock != 0 {
			return
		}
		if s.closing[t] != 0 {
			// Segment.enter (or the lock's) fails: ErrClosed.
			m.next(&ns, t, false)
			e.add(actor, "lw.change.locked", false, ns, "closed")
			return
		}
		ok := m.change(&ns, t)
		ns.lock = uint8(t + 1)
		nt.pc = lpCUnlock
		if ok {
			nt.flags |= lfOK
		} else {
			nt.flags &^= lfOK
		}
		e.add(actor, "lw.change.locked", false, ns, okNote(ok))
	case lpCUnlock:
		ns.lock = 0
		if nt.flags&lfBumped != 0 {
			nt.pc = lpWake
		} else {
			m.next(&ns, t, nt.flags&lfOK != 0)
		}
		e.add(actor, "lw.change.unlock", false, ns, "")
	case lpWake:
		woken := ns.fx.WakeAll(0)
		m.next(&ns, t, nt.flags&lfOK != 0)
		e.add(actor, "lw.change.wake", false, ns, e.woke(woken, m.name))
	case lpRun:
		ok := !(m.cfg.OnceFailFirst && s.failures == 0)
		if ok {
			nt.flags |= lfOK
		} else {
			nt.flags &^= lfOK
		}
		nt.pc = lpCLocked
		e.add(actor, "lw.run", false, ns, e.cat("f ", okNote(ok)))
	}
}

// loopTop is where a waiter's loop begins: the watches, then the lock
// (under BugCheckFirst, the lock and the look, then the watches).
func (m *LockedModel) loopTop() uint8 {
	if m.cfg.BugCheckFirst {
		return lpLocked
	}
	return lpWatch
}

// finishWait ends a wait that cond found done, under the lock (which is
// released in the same step).
func (m *LockedModel) finishWait(s *LockedState, t int, ok bool) {
	th := &s.th[t]
	if ok && m.op(s, t) == OpOnceDo && s.ost == onceRunningM && int(s.runner) == t {
		th.pc = lpRun // claimed: run f
		th.flags &^= lfBumped
		return
	}
	if ok && m.op(s, t) == OpOnceDo && s.succeeded == 0 {
		s.bad = 3
	}
	if th.flags&lfBumped != 0 {
		th.pc = lpWake
		if ok {
			th.flags |= lfOK
		} else {
			th.flags &^= lfOK
		}
		return
	}
	m.next(s, t, ok)
}

// abandon is the sleep's error: closed → ErrClosed at once; ctx → give up.
func (m *LockedModel) abandon(s *LockedState, t int) {
	if s.closing[t] != 0 {
		m.next(s, t, false)
		return
	}
	s.th[t].pc = lpGiveUp
}

func okNote(ok bool) string {
	if ok {
		return "ok"
	}
	return "error"
}

// process emits the kernel's walk for a killed process and the end of a
// Close.
func (m *LockedModel) process(s *LockedState, p int, e *emitter[LockedState]) {
	switch {
	case s.live[p] == 1:
		ns := *s
		ns.live[p] = 2
		if ns.lock == uint8(p+1) {
			ns.lock = 0 // robust: the next locker rolls the journal back
		}
		woken := ns.fx.WakeAll(1 + p)
		e.add("kernel", "kernel.robust_walk", false, ns, e.cat(fmt.Sprintf("P%d dead; ", p), e.woke(woken, m.name)))
	case s.closing[p] != 0 && s.live[p] == 0 && !lockedInFlight(s.th[p].pc):
		ns := *s
		ns.live[p] = 2
		woken := ns.fx.WakeAll(1 + p)
		e.add(m.name(p), "proc.close.mark_closed", false, ns, e.woke(woken, m.name))
	}
}

func (m *LockedModel) env(s *LockedState, e *emitter[LockedState]) {
	for p := range m.nproc {
		if s.live[p] != 0 {
			continue
		}
		if s.budget.Kill > 0 && s.th[p].pc != lpDone {
			ns := *s
			ns.budget.Kill--
			ns.live[p] = 1
			ns.th[p].pc = lpDead
			ns.fx.Unqueue(p)
			e.add("env", "env.kill", true, ns, e.notef("SIGKILL P%d", p, 0))
		}
		if s.budget.Close > 0 && s.closing[p] == 0 {
			ns := *s
			ns.budget.Close--
			ns.closing[p] = 1
			ns.fx.Unqueue(p) // fires its cancellation word
			e.add("env", "env.close", true, ns, e.notef("P%d Close", p, 0))
		}
		if s.budget.Cancel > 0 && m.cfg.Procs[p].Cancel && s.th[p].flags&lfCtx == 0 && s.th[p].pc != lpDone {
			ns := *s
			ns.budget.Cancel--
			ns.th[p].flags |= lfCtx
			ns.fx.Unqueue(p)
			e.add("env", "env.cancel", true, ns, e.cat("cancel ", m.name(p)))
		}
	}
}

// Check returns a violation if a call returned success wrongly.
func (m *LockedModel) Check(s *LockedState) error {
	switch s.bad {
	case 1:
		return Fail("barrier-early", "a Barrier generation completed before every party arrived")
	case 2:
		return Fail("waitgroup-early", "Wait returned nil with Adds outstanding and the group not broken")
	case 3:
		return Fail("once-early", "Do returned nil before any run of f succeeded")
	}
	if s.succeeded > 1 {
		return Fail("once-twice", "f succeeded twice")
	}
	return nil
}

// Stuck reports a goroutine left asleep, or blocked, while what it waits
// for has come: a lost wake-up.
func (m *LockedModel) Stuck(s *LockedState) error {
	for t := range m.nproc {
		th := s.th[t]
		if s.live[t] != 0 || th.pc != lpAsleep {
			if s.live[t] == 0 && th.pc != lpDone && th.pc != lpAsleep {
				return Fail("deadlock", "%s blocked at %s", m.name(t), lockedPCName[th.pc])
			}
			continue
		}
		c := *s
		done, _ := m.correct().cond(&c, t)
		if done || c.seq != s.seq {
			return Fail("lost-wakeup", "%s asleep in %v while its wait is over (%s)", m.name(t), m.op(s, t), m.Format(s))
		}
	}
	return nil
}

func (o LockedOp) String() string {
	return [...]string{"?", "Barrier.Wait", "Barrier.Reset", "WaitGroup.Add", "WaitGroup.Done", "WaitGroup.Wait", "Once.Do"}[o]
}

// Format describes s on one line.
func (m *LockedModel) Format(s *LockedState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d lock=%d bar{c%d g%d br%d r%d} wg{n%d br%d dr%d held%v} once{st%d run%d f%d} |",
		s.seq, s.lock, s.count, s.gen, s.broken, s.resets, s.counter, s.wgBroken, s.dropped, s.held[:m.nproc], s.ost, s.runner, s.failures)
	for t := range m.nproc {
		th := s.th[t]
		fmt.Fprintf(&b, " P%d@%s", t, lockedPCName[th.pc])
		if th.pc != lpDone && th.pc != lpDead && int(th.op) < len(m.cfg.Procs[t].Ops) {
			fmt.Fprintf(&b, "(%v)", m.op(s, t))
		}
		fmt.Fprintf(&b, " live%d", s.live[t])
		if s.closing[t] != 0 {
			b.WriteString(" closing")
		}
		if th.flags&lfCtx != 0 {
			b.WriteString(" ctx")
		}
		if s.fx.Asleep(t) {
			b.WriteString(" asleep")
		}
	}
	fmt.Fprintf(&b, " | budget k%d c%d x%d", s.budget.Kill, s.budget.Cancel, s.budget.Close)
	return b.String()
}

var lockedSteps = []string{
	"lw.wait.enter", "lw.wait.locked", "lw.wait.watch", "lw.wait.check", "lw.wait.unlock", "wait.sleep.waitv", "lw.wait.peek", "lw.wait.giveup",
	"lw.change.locked", "lw.change.unlock", "lw.change.wake", "lw.run", "proc.close.mark_closed",
}

// Steps returns the code steps of the model.
func (m *LockedModel) Steps() []string { return append([]string(nil), lockedSteps...) }
