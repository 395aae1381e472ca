package model

import (
	"fmt"
	"strings"
)

// RWConfig is one configuration of the RWMutex model (rwmutex.go in the
// root package).
type RWConfig struct {
	// Procs[p][g] is what goroutine g of process p does: each letter of
	// the string is one RLock+RUnlock ('R') or Lock+Unlock ('W'), in order.
	Procs [][]string
	// Cancel[p][g]: the goroutine's context may be cancelled (the
	// ...Context forms).
	Cancel [][]bool
	Budget Budget

	// BugNoRecheck: a reader that added itself to its line does not load
	// the writer word again (the reader's half of the Dekker pair).
	BugNoRecheck bool
	// BugRUnlockNoWake: the last RUnlock does not wake the draining writer
	// sleeping on its line.
	BugRUnlockNoWake bool
	// BugAbandonNoWake: a writer that gives up while draining frees the
	// writer word without waking the readers that sleep on it.
	BugAbandonNoWake bool
	// BugWatchHolderOnly: a sleeper watches the live word of the holder
	// it saw only, not every other process's (watchOthers). The kernel
	// wakes one sleeper of a dead process's live word; if that sleeper
	// dies before it wakes the others, they sleep on.
	BugWatchHolderOnly bool
}

// The model's words. The writer word: bits 0-1 the writer's identity
// (process+1; the model has no newcomers, so no generations), bit 7
// lockWaiters. A reader line's count: bits 0-2 the count, bit 7 rdWaiter.
// A line's owner: process+1 once claimed. A live word as in kernel.go.
const (
	rwW      = 0x80
	rwIDMask = 0x03
	rdW      = 0x80
	rdCnt    = 0x07
)

// Futex words: the writer word, the reader lines, the live words.
func rfWord() int         { return 0 }
func rfCount(p uint8) int { return 1 + int(p) }
func rfLive(p uint8) int  { return 1 + maxProcs + int(p) }

// Program counters of the RWMutex model.
const (
	rpOp        uint8 = iota // start the current op (a closed process's goroutine panics: gone)
	rpEnter                  // rw.enter
	rpClaim                  // rw.rlock.claim
	rpRLoad                  // rw.rlock.load
	rpRAdd                   // rw.rlock.add
	rpRCheck                 // rw.rlock.recheck
	rpRTake                  // rw.rlock.takeover
	rpRTakeWake              // rw.rlock.takeover_wake
	rpRSetW                  // rw.rlock.set_waiters
	rpWatch                  // wait.watch.cas: the holder's live word
	rpOWatch                 // wait.watch.cas or proc.lookup.live: another process's (watchOthers)
	rpToken                  // token.acquire
	rpParked                 // parked on the token (no step)
	rpSleep                  // wait.sleep.waitv
	rpWoken                  // wait.sleep.check_lives, once woken
	rpWakeLive               // wait.sleep.wake_all_live
	rpCheckDone              // wait.sleep.check_done
	rpWCas                   // rw.lock.cas
	rpWLoad                  // rw.lock.load
	rpWTake                  // rw.lock.takeover
	rpWSetW                  // rw.lock.set_waiters
	rpWRelTok                // token.release, then drain
	rpDLoad                  // rw.drain.load
	rpDOwner                 // rw.drain.owner
	rpDSetW                  // rw.drain.set_waiter
	rpAbLoad                 // rw.unlock.load: a writer giving up frees the word
	rpAbCas                  // rw.unlock.cas
	rpAbWake                 // rw.unlock.wake
	rpRet                    // token.release, then the critical section
	rpRetErr                 // token.release if held, then stop
	rpSub                    // rw.runlock.sub (RUnlock, or a reader's undo)
	rpClear                  // rw.runlock.clear
	rpRWake                  // rw.runlock.wake
	rpUCas                   // rw.unlock.cas (Unlock's fast path)
	rpULoad                  // rw.unlock.load
	rpUCas2                  // rw.unlock.cas
	rpUWake                  // rw.unlock.wake
	rpDone                   // finished its script
	rpDead                   // its process was killed
	rpGone                   // stopped by Close (a panic)
)

var rwPCName = [...]string{
	"op", "enter", "claim", "rload", "radd", "recheck", "rtakeover", "rtakeover_wake", "rset_waiters", "watch_cas", "watch_others",
	"token", "parked", "waitv", "woken", "wake_all_live", "check_done", "wcas", "wload", "wtakeover", "wset_waiters",
	"release_token", "drain_load", "drain_owner", "drain_set_waiter", "abandon_load", "abandon_cas", "abandon_wake",
	"release(ok)", "release(err)", "runlock_sub", "runlock_clear", "runlock_wake", "unlock_cas", "unlock_load",
	"unlock_cas2", "unlock_wake", "done", "dead", "gone",
}

// What a sleeping goroutine waits for.
const (
	rkRead  uint8 = iota // a reader, for the writer word to free
	rkWrite              // a writer, for the writer word to free
	rkDrain              // the writer, for reader line cur to drain
)

// Goroutine flags.
const (
	rfCtxDone  = 1 << iota // its context is done
	rfUndo                 // rpSub..rpRWake are a reader's undo inside RLock, not RUnlock
	rfToken                // it holds its process's token
	rfDeadTake             // its Lock took the word from a dead writer
)

// Ghost: what a goroutine holds.
const (
	rhNone uint8 = iota
	rhRead
	rhWrite
)

type rwThread struct {
	pc    uint8
	op    uint8 // index of its current op
	held  uint8 // ghost: rhRead or rhWrite while in a critical section
	kind  uint8 // rkRead, rkWrite or rkDrain while it looks or sleeps
	flags uint8
	v     uint8           // local: the word (or count) it loaded
	cur   uint8           // local: the reader line it drains
	w     uint8           // local: the holder (process+1) it watches first, 0 none
	oi    uint8           // local: the next other process watchOthers looks at
	ws    uint8           // local: the processes whose live words it watches
	wl    [maxProcs]uint8 // local: the live words' values it saw
}

// clearWatch forgets th's watches.
func (th *rwThread) clearWatch() {
	th.w, th.oi, th.ws, th.wl = 0, 0, 0, [maxProcs]uint8{}
}

type rwProc struct {
	life  uint8 // lifeAlive, lifeWalk, lifeDead
	close uint8 // 0 open; 1 closing (D1 next); 2 D2 next; 3 closed
	token uint8 // thread+1 holding the token, 0 free
}

// RWState is a state of the RWMutex model.
type RWState struct {
	word   uint8
	flags  uint8 // 1: inconsistent
	count  [maxProcs]uint8
	owner  [maxProcs]uint8
	live   [maxProcs]uint8
	proc   [maxProcs]rwProc
	th     [maxThreads]rwThread
	deadW  uint8 // ghost: a writer died (or closed) holding the word: every later locker must be told
	bad    uint8 // ghost: a check failed inside a step
	badArg uint8
	fx     Futex
	budget Budget
}

const (
	rbNone uint8 = iota
	rbUnreported
	rbSpurious
	rbPreference
)

// RWModel is the RWMutex protocol: the writer word, the per-process reader
// lines, the token, owner deaths, cancellation and Close.
type RWModel struct {
	cfg    RWConfig
	nproc  int
	ops    [maxThreads]string
	cancel [maxThreads]bool
	names  [maxThreads]string
}

// NewRWModel checks cfg and returns its model.
func NewRWModel(cfg RWConfig) (*RWModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > maxProcs {
		return nil, fmt.Errorf("model: %d processes (1 to %d)", len(cfg.Procs), maxProcs)
	}
	m := &RWModel{cfg: cfg, nproc: len(cfg.Procs)}
	for p, gs := range cfg.Procs {
		if len(gs) > maxGoroutines {
			return nil, fmt.Errorf("model: process %d has %d goroutines", p, len(gs))
		}
		for g, ops := range gs {
			t := p*maxGoroutines + g
			if strings.Trim(ops, "RW") != "" {
				return nil, fmt.Errorf("model: P%d.G%d: ops %q (R and W only)", p, g, ops)
			}
			m.ops[t] = ops
			m.names[t] = fmt.Sprintf("P%d.G%d", p, g)
			if p < len(cfg.Cancel) && g < len(cfg.Cancel[p]) {
				m.cancel[t] = cfg.Cancel[p][g]
			}
		}
	}
	return m, nil
}

// Init returns the state where every process has attached and no
// goroutine has started.
func (m *RWModel) Init() RWState {
	var s RWState
	s.budget = m.cfg.Budget
	for t := range maxThreads {
		if m.ops[t] == "" {
			s.th[t].pc = rpDone
		}
	}
	for p := range maxProcs {
		if p < m.nproc {
			s.live[p] = 1 // tid 1 in every process: fresh PID namespaces
		} else {
			s.proc[p].life = lifeDead
		}
	}
	return s
}

func (m *RWModel) name(t int) string { return m.names[t] }

func id(p int) uint8 { return uint8(p + 1) }

// opIsRead reports whether t's current op is an RLock/RUnlock pair.
func (m *RWModel) opIsRead(s *RWState, t int) bool { return m.ops[t][s.th[t].op/2] == 'R' }

// inFlight reports whether t is between Segment.enter and exit.
func (th *rwThread) inFlight() bool {
	if th.pc >= rpSub && th.pc <= rpRWake {
		return th.flags&rfUndo != 0
	}
	return th.pc >= rpClaim && th.pc <= rpRetErr
}

// identAlive reports whether the identity i (process+1) is alive to
// lookup: its live word is not DIED.
func (s *RWState) identAlive(i uint8) bool {
	return i != 0 && s.live[i-1]&liveDied == 0 && s.live[i-1] != 0
}

func (s *RWState) setBad(code, arg uint8) {
	if s.bad == rbNone {
		s.bad, s.badArg = code, arg
	}
}

// acquired records that t entered a critical section, told or not of a
// death, and checks the ghosts.
func (m *RWModel) acquired(s *RWState, t int, held uint8, told bool) {
	switch {
	case s.deadW != 0 && !told:
		s.setBad(rbUnreported, uint8(t))
	case s.deadW == 0 && told:
		s.setBad(rbSpurious, uint8(t))
	}
	if held == rhRead {
		// Writer preference: no reader gets in while a live writer's
		// claim is in the word (it drains, or holds).
		for o := range maxThreads {
			ot := &s.th[o]
			claimed := ot.kind == rkDrain && ot.inFlight() || ot.held == rhWrite
			if claimed && s.word&rwIDMask == id(o/maxGoroutines) && m.counts(s, o) {
				s.setBad(rbPreference, uint8(t))
			}
		}
	}
	s.th[t].held = held
}

// counts reports whether t's process's identity is alive and open: its
// critical sections count.
func (m *RWModel) counts(s *RWState, t int) bool {
	p := t / maxGoroutines
	return s.proc[p].life == lifeAlive && s.proc[p].close < 2
}

// advance moves t past its current op.
func (m *RWModel) advance(s *RWState, t int) {
	th := &s.th[t]
	th.op++
	th.v, th.cur, th.kind = 0, 0, 0
	th.clearWatch()
	th.flags &^= rfUndo | rfDeadTake
	if int(th.op) < 2*len(m.ops[t]) {
		th.pc = rpOp
	} else {
		th.pc = rpDone
	}
}

// loadPC is where a goroutine of kind k looks again.
func loadPC(k uint8) uint8 {
	switch k {
	case rkRead:
		return rpRLoad
	case rkWrite:
		return rpWLoad
	}
	return rpDLoad
}

// fail ends t's current lock call with an error: a draining writer frees
// the word first, a goroutine holding the token releases it first.
func (m *RWModel) fail(s *RWState, t int) {
	th := &s.th[t]
	switch {
	case th.kind == rkDrain:
		th.pc = rpAbLoad
	case th.flags&rfToken != 0:
		th.pc = rpRetErr
	default:
		m.finish(s, t, false)
	}
}

// releaseToken hands t's token to a parked goroutine of its process, or
// frees it, calling fn with each outcome.
func (m *RWModel) releaseToken(ns RWState, t int, fn func(RWState, string)) {
	p := t / maxGoroutines
	ns.th[t].flags &^= rfToken
	handed := false
	for g := range maxGoroutines {
		o := p*maxGoroutines + g
		if o == t || ns.th[o].pc != rpParked {
			continue
		}
		n2 := ns
		n2.proc[p].token = uint8(o + 1)
		n2.th[o].flags |= rfToken
		n2.th[o].pc = loadPC(n2.th[o].kind)
		handed = true
		fn(n2, "token handed to "+m.name(o))
	}
	if !handed {
		ns.proc[p].token = 0
		fn(ns, "token free")
	}
}

// Next appends every step enabled in s.
func (m *RWModel) Next(s *RWState, trace bool, steps []Step[RWState]) []Step[RWState] {
	e := &emitter[RWState]{out: steps, trace: trace}
	for t := range maxThreads {
		m.thread(s, t, e)
	}
	for p := range m.nproc {
		m.process(s, p, e)
	}
	m.env(s, e)
	return e.out
}

func (m *RWModel) thread(s *RWState, t int, e *emitter[RWState]) {
	th := &s.th[t]
	if th.pc >= rpDone || th.pc == rpParked || th.pc == rpWoken && s.fx.Asleep(t) {
		return
	}
	p := t / maxGoroutines
	me := id(p)
	actor := m.name(t)
	ns := *s
	nt := &ns.th[t]
	step := func(label, note string) { e.add(actor, label, false, ns, note) }
	switch th.pc {
	case rpOp:
		if s.proc[p].close != 0 {
			nt.pc, nt.held = rpGone, rhNone
			step("rw.enter", "segment closed: panics")
			return
		}
		switch {
		case th.op%2 == 1 && m.opIsRead(s, t):
			nt.pc = rpSub
		case th.op%2 == 1:
			nt.pc = rpUCas
		default:
			nt.pc = rpEnter
		}
		m.thread(&ns, t, e) // no step of its own: start the op's first step
		return
	case rpEnter:
		nt.kind = rkWrite
		nt.pc = rpWCas
		if m.opIsRead(s, t) {
			nt.kind, nt.pc = rkRead, rpClaim
		}
		step("rw.enter", "")
	case rpClaim:
		ns.owner[p] = me
		nt.pc = rpRLoad
		step("rw.rlock.claim", "")
	case rpRLoad:
		v := s.word
		nt.v = v
		switch h := v & rwIDMask; {
		case v == 0:
			nt.pc = rpRAdd
		case h == me:
			nt.clearWatch()
			nt.pc = rpOWatch // RLock under its own Lock: sleeps
		case !s.identAlive(h):
			nt.pc = rpRTake
		default:
			nt.clearWatch()
			nt.pc, nt.w = rpWatch, h
		}
		step("rw.rlock.load", e.cat("word=", formatRWWord(v)))
	case rpRAdd:
		ns.count[p]++
		nt.pc = rpRCheck
		if m.cfg.BugNoRecheck {
			m.rAcquired(&ns, t)
			step("rw.rlock.add", "BugNoRecheck: in without a second look")
			return
		}
		step("rw.rlock.add", "")
	case rpRCheck:
		if s.word == 0 {
			m.rAcquired(&ns, t)
			step("rw.rlock.recheck", "read lock held")
			return
		}
		nt.pc, nt.flags = rpSub, nt.flags|rfUndo
		step("rw.rlock.recheck", "a writer: undo")
	case rpRTake:
		// The reader takes the word as a writer would, marks the state
		// inconsistent, and frees the word: every locker after the free
		// is told, and nobody is told if the CAS fails (the writer was
		// not dead after all, or freed the word itself).
		nt.pc = rpRLoad
		if s.word != th.v {
			step("rw.rlock.takeover", "CAS failed")
			return
		}
		ns.word = me | th.v&rwW
		ns.flags = 1
		nt.pc = rpRTakeWake
		step("rw.rlock.takeover", "dead writer's word taken")
	case rpRTakeWake:
		old := s.word
		ns.word = 0
		var woken uint16
		if old&rwW != 0 {
			woken = ns.fx.WakeAll(rfWord())
		}
		nt.pc = rpRLoad
		step("rw.rlock.takeover_wake", e.cat("word freed; ", e.woke(woken, m.name)))
	case rpWatch:
		h := th.w - 1
		lv := s.live[h]
		if liveDead(lv) {
			nt.clearWatch()
			nt.pc = loadPC(th.kind)
			step("wait.watch.cas", "holder died: look again")
			return
		}
		ns.live[h] = lv | liveWaiters
		nt.ws |= 1 << h
		nt.wl[h] = lv | liveWaiters
		nt.pc = rpOWatch
		step("wait.watch.cas", "")
	case rpOWatch:
		j := th.oi
		for j < uint8(m.nproc) && (j == uint8(p) || j+1 == th.w) {
			j++
		}
		if j >= uint8(m.nproc) || m.cfg.BugWatchHolderOnly {
			m.watched(&ns, t)
			m.thread(&ns, t, e) // no step of its own
			return
		}
		nt.oi = j + 1
		lv := s.live[j]
		if liveDead(lv) {
			step("proc.lookup.live", e.notef("P%d gone: not watched", int(j), 0))
			return
		}
		ns.live[j] = lv | liveWaiters
		nt.ws |= 1 << j
		nt.wl[j] = lv | liveWaiters
		step("wait.watch.cas", e.notef("watches P%d too", int(j), 0))
	case rpToken:
		switch {
		case s.proc[p].token == 0:
			ns.proc[p].token = uint8(t + 1)
			nt.flags |= rfToken
			nt.pc = loadPC(th.kind)
			nt.clearWatch()
			step("token.acquire", "")
		case th.flags&rfCtxDone != 0 || s.proc[p].close != 0:
			m.finish(&ns, t, false)
			step("token.acquire", "ctx done or closed")
		default:
			nt.pc = rpParked
			step("token.acquire", "parked")
		}
	case rpRSetW, rpWSetW:
		label := "rw.rlock.set_waiters"
		if th.pc == rpWSetW {
			label = "rw.lock.set_waiters"
		}
		if s.word != th.v {
			nt.clearWatch()
			nt.pc = loadPC(th.kind)
			step(label, "CAS failed")
			return
		}
		ns.word |= rwW
		nt.v |= rwW
		nt.pc = rpSleep
		step(label, "")
	case rpDSetW:
		c := s.count[th.cur]
		if c != th.v {
			nt.clearWatch()
			nt.pc = rpDLoad
			step("rw.drain.set_waiter", "CAS failed")
			return
		}
		ns.count[th.cur] = c | rdW
		nt.v = c | rdW
		nt.pc = rpSleep
		step("rw.drain.set_waiter", "")
	case rpSleep:
		if s.proc[p].close != 0 || th.flags&rfCtxDone != 0 {
			m.fail(&ns, t)
			step("wait.sleep.waitv", "ctx done or closed")
			return
		}
		w, val := rfWord(), s.word
		if th.kind == rkDrain {
			w, val = rfCount(th.cur), s.count[th.cur]
		}
		set := uint8(1) << w
		match := val == th.v
		for j := range uint8(maxProcs) {
			if th.ws&(1<<j) != 0 {
				set |= 1 << rfLive(j)
				match = match && s.live[j] == th.wl[j]
			}
		}
		nt.pc = rpWoken
		if !match {
			step("wait.sleep.waitv", "a word changed: no sleep")
			return
		}
		ns.fx.Sleep(t, set)
		step("wait.sleep.waitv", "asleep")
	case rpWoken:
		nt.pc = rpCheckDone
		if m.changedLive(s, t) >= 0 {
			nt.pc = rpWakeLive
		}
		step("wait.sleep.check_lives", "")
	case rpWakeLive:
		// One wake-up per changed live word, lowest first.
		j := m.changedLive(s, t)
		woken := ns.fx.WakeAll(rfLive(uint8(j)))
		nt.ws &^= 1 << j
		nt.pc = rpCheckDone
		if m.changedLive(&ns, t) >= 0 {
			nt.pc = rpWakeLive
		}
		step("wait.sleep.wake_all_live", e.woke(woken, m.name))
	case rpCheckDone:
		nt.clearWatch()
		if s.proc[p].close != 0 || th.flags&rfCtxDone != 0 {
			m.fail(&ns, t)
			step("wait.sleep.check_done", "ctx done or closed")
			return
		}
		nt.pc = loadPC(th.kind)
		step("wait.sleep.check_done", "")
	case rpWCas:
		if s.word == 0 {
			ns.word = me
			nt.pc, nt.kind, nt.cur = rpDLoad, rkDrain, 0
			if th.flags&rfToken != 0 {
				nt.pc = rpWRelTok
			}
			step("rw.lock.cas", "")
			return
		}
		nt.pc = rpToken
		if th.flags&rfToken != 0 {
			nt.pc = rpWLoad
		}
		step("rw.lock.cas", "CAS failed")
	case rpWLoad:
		v := s.word
		nt.v = v
		switch h := v & rwIDMask; {
		case v == 0:
			nt.pc = rpWCas
		case h == me:
			nt.clearWatch()
			nt.pc = rpOWatch // Lock under its own Lock: sleeps
		case !s.identAlive(h):
			nt.pc = rpWTake
		default:
			nt.clearWatch()
			nt.pc, nt.w = rpWatch, h
		}
		step("rw.lock.load", e.cat("word=", formatRWWord(v)))
	case rpWTake:
		if s.word != th.v {
			nt.pc = rpWLoad
			step("rw.lock.takeover", "CAS failed")
			return
		}
		ns.word = me | th.v&rwW
		ns.flags = 1
		nt.flags |= rfDeadTake
		nt.pc = rpWRelTok
		step("rw.lock.takeover", "dead writer's word taken")
	case rpWRelTok:
		m.releaseToken(ns, t, func(n2 RWState, note string) {
			n2.th[t].pc, n2.th[t].kind, n2.th[t].cur = rpDLoad, rkDrain, 0
			e.add(actor, "token.release", false, n2, note)
		})
	case rpDLoad:
		if th.cur >= uint8(m.nproc) {
			// Past the last line: in. (Not a load; the step of the load
			// that found the last line empty.)
			panic("model: drain past its last line")
		}
		c := s.count[th.cur]
		if c&rdCnt != 0 {
			nt.v = c
			nt.pc = rpDOwner
			step("rw.drain.load", e.notef("line %d holds reads", int(th.cur), 0))
			return
		}
		m.nextLine(&ns, t)
		step("rw.drain.load", e.notef("line %d empty", int(th.cur), 0))
	case rpDOwner:
		o := s.owner[th.cur]
		switch {
		case o == me:
			nt.clearWatch()
			nt.pc = rpOWatch
		case !s.identAlive(o):
			m.nextLine(&ns, t)
			step("rw.drain.owner", "owner dead: its holds are returned")
			return
		default:
			nt.clearWatch()
			nt.pc, nt.w = rpWatch, o
		}
		step("rw.drain.owner", "")
	case rpAbLoad, rpULoad:
		nt.v = s.word
		if s.word&rwIDMask != me {
			// NotOwnerError, or ErrClosed: a process closing while
			// its Unlock runs is dead to the others, who may have
			// taken the word over.
			nt.pc, nt.held = rpGone, rhNone
			step("rw.unlock.load", "not the writer: panics")
			return
		}
		nt.pc = th.pc + 1
		step("rw.unlock.load", "")
	case rpAbCas, rpUCas2:
		if s.word != th.v {
			nt.pc = th.pc - 1
			step("rw.unlock.cas", "CAS failed")
			return
		}
		ns.word = 0
		if th.pc == rpUCas2 {
			nt.held = rhNone
			m.unlockedClosed(&ns, p)
		}
		switch {
		case th.v&rwW != 0 && !(th.pc == rpAbCas && m.cfg.BugAbandonNoWake):
			nt.pc = th.pc + 1
		case th.pc == rpAbCas:
			m.finish(&ns, t, false)
		default:
			m.advance(&ns, t)
		}
		step("rw.unlock.cas", "")
	case rpAbWake, rpUWake:
		woken := ns.fx.WakeAll(rfWord())
		if th.pc == rpAbWake {
			m.finish(&ns, t, false)
		} else {
			m.advance(&ns, t)
		}
		step("rw.unlock.wake", e.woke(woken, m.name))
	case rpRet, rpRetErr:
		ok := th.pc == rpRet
		m.releaseToken(ns, t, func(n2 RWState, note string) {
			m.finish(&n2, t, ok)
			e.add(actor, "token.release", false, n2, note)
		})
	case rpSub:
		ns.count[p]--
		if th.flags&rfUndo == 0 {
			nt.held = rhNone
		}
		switch {
		case ns.count[p] == rdW && !(th.flags&rfUndo == 0 && m.cfg.BugRUnlockNoWake):
			nt.pc = rpClear
		case th.flags&rfUndo != 0:
			nt.pc, nt.flags = rpRLoad, nt.flags&^rfUndo
		default:
			m.advance(&ns, t)
		}
		step("rw.runlock.sub", "")
	case rpClear:
		if s.count[p] != rdW {
			m.afterSub(&ns, t)
			step("rw.runlock.clear", "CAS failed")
			return
		}
		ns.count[p] = 0
		nt.pc = rpRWake
		step("rw.runlock.clear", "")
	case rpRWake:
		ns.fx.Wakes(rfCount(uint8(p)), 1, func(woken uint16, after Futex) {
			n2 := ns
			n2.fx = after
			m.afterSub(&n2, t)
			e.add(actor, "rw.runlock.wake", false, n2, e.woke(woken, m.name))
		})
	case rpUCas:
		if s.word == me {
			ns.word = 0
			nt.held = rhNone
			m.unlockedClosed(&ns, p)
			m.advance(&ns, t)
			step("rw.unlock.cas", "")
			return
		}
		nt.pc = rpULoad
		step("rw.unlock.cas", "CAS failed: waiters")
	}
}

// nextLine moves the draining writer t to the next reader line, or, past
// the last, into the critical section.
func (m *RWModel) nextLine(ns *RWState, t int) {
	th := &ns.th[t]
	th.cur++
	th.pc, th.v = rpDLoad, 0
	th.clearWatch()
	if th.cur < uint8(m.nproc) {
		return
	}
	m.acquired(ns, t, rhWrite, th.flags&rfDeadTake != 0 || ns.flags != 0)
	m.advance(ns, t)
}

// unlockedClosed: a writer of p whose Close marked it dead (D1) while its
// Unlock ran has freed the word itself. Unless a locker took the word over
// first (and was told), nobody need be told: its critical section ended.
func (m *RWModel) unlockedClosed(ns *RWState, p int) {
	if ns.proc[p].close >= 2 && ns.flags == 0 {
		ns.deadW = 0
	}
}

// watched moves t, its watches set, to the step before its sleep.
func (m *RWModel) watched(ns *RWState, t int) {
	th := &ns.th[t]
	switch {
	case th.kind == rkDrain:
		th.pc = rpDSetW
	case th.kind == rkRead && th.flags&rfToken == 0:
		th.pc = rpToken
	case th.kind == rkRead:
		th.pc = rpRSetW
	default:
		th.pc = rpWSetW
	}
}

// changedLive returns the lowest process whose live word t watches and
// which changed since, or -1.
func (m *RWModel) changedLive(s *RWState, t int) int {
	th := &s.th[t]
	for j := range maxProcs {
		if th.ws&(1<<j) != 0 && s.live[j] != th.wl[j] {
			return j
		}
	}
	return -1
}

// afterSub continues t after rdone: back to RLock's look, or on.
func (m *RWModel) afterSub(ns *RWState, t int) {
	th := &ns.th[t]
	if th.flags&rfUndo != 0 {
		th.pc, th.flags = rpRLoad, th.flags&^rfUndo
		return
	}
	m.advance(ns, t)
}

// rAcquired is a reader's successful recheck: in, after token.release if
// it holds the token.
func (m *RWModel) rAcquired(ns *RWState, t int) {
	m.acquired(ns, t, rhRead, ns.flags != 0)
	if ns.th[t].flags&rfToken != 0 {
		ns.th[t].pc = rpRet
		return
	}
	m.advance(ns, t)
}

// finish ends t's lock call: into the critical section, or stopped.
func (m *RWModel) finish(ns *RWState, t int, ok bool) {
	th := &ns.th[t]
	if ok {
		m.advance(ns, t)
		return
	}
	th.pc = rpDone
	th.v, th.cur, th.kind, th.flags = 0, 0, 0, 0
	th.clearWatch()
}

// process emits the steps of process p's Close after its first step.
func (m *RWModel) process(s *RWState, p int, e *emitter[RWState]) {
	pr := &s.proc[p]
	if pr.life != lifeAlive || pr.close == 0 || pr.close == 3 {
		return
	}
	ns := *s
	switch pr.close {
	case 1:
		for g := range maxGoroutines {
			if s.th[p*maxGoroutines+g].inFlight() {
				return // Close waits for calls in flight
			}
		}
		ns.live[p] |= liveDied
		if s.word&rwIDMask == id(p) {
			ns.deadW = 1 // a writer that closes holding the word dies to the others
		}
		ns.proc[p].close = 2
		e.add(procName[p], "proc.close.mark_closed", false, ns, "")
	case 2:
		woken := ns.fx.WakeAll(rfLive(uint8(p)))
		ns.proc[p].close = 3
		e.add(procName[p], "proc.close.wake_all", false, ns, e.woke(woken, m.name))
	}
}

// env emits the environment's events and the kernel's robust-list walks.
func (m *RWModel) env(s *RWState, e *emitter[RWState]) {
	for p := range m.nproc {
		pr := &s.proc[p]
		if pr.life == lifeWalk {
			ns := *s
			ns.proc[p].life = lifeDead
			v := ns.live[p]
			ns.live[p] = liveDied | v&liveWaiters
			if v&liveWaiters == 0 {
				e.add("kernel", "kernel.robust_walk", false, ns, "no waiters")
				continue
			}
			ns.fx.Wakes(rfLive(uint8(p)), 1, func(woken uint16, after Futex) {
				n2 := ns
				n2.fx = after
				e.add("kernel", "kernel.robust_walk", false, n2, e.woke(woken, m.name))
			})
			continue
		}
		if pr.life != lifeAlive {
			continue
		}
		if s.budget.Kill > 0 {
			ns := *s
			ns.budget.Kill--
			ns.proc[p].life = lifeWalk
			ns.proc[p].token = 0
			if s.word&rwIDMask == id(p) {
				ns.deadW = 1
			}
			for g := range maxGoroutines {
				t := p*maxGoroutines + g
				if ns.th[t].pc < rpDone {
					ns.th[t] = rwThread{pc: rpDead}
				}
				ns.fx.Unqueue(t)
			}
			e.add(procName[p], "env.kill", true, ns, "SIGKILL")
		}
		if s.budget.Close > 0 && pr.close == 0 {
			ns := *s
			ns.budget.Close--
			ns.proc[p].close = 1
			for g := range maxGoroutines {
				t := p*maxGoroutines + g
				ns.fx.Unqueue(t) // its waits are fired
				if ns.th[t].pc == rpParked {
					m.finish(&ns, t, false)
				}
			}
			e.add(procName[p], "env.close", true, ns, "")
		}
	}
	if s.budget.Cancel > 0 {
		for t := range maxThreads {
			th := &s.th[t]
			if !m.cancel[t] || th.flags&rfCtxDone != 0 || th.pc >= rpDone || s.proc[t/maxGoroutines].life != lifeAlive {
				continue
			}
			ns := *s
			ns.budget.Cancel--
			ns.th[t].flags |= rfCtxDone
			ns.fx.Unqueue(t)
			if th.pc == rpParked {
				m.finish(&ns, t, false)
			}
			e.add(m.name(t), "env.cancel", true, ns, "")
		}
	}
}

// Check checks mutual exclusion (no writer with a reader or another
// writer), ownership, the reports of deaths, and writer preference.
func (m *RWModel) Check(s *RWState) error {
	var writers, readers []string
	for t := range maxThreads {
		th := &s.th[t]
		if th.held == rhNone || !m.counts(s, t) {
			continue
		}
		if th.held == rhWrite {
			writers = append(writers, m.name(t))
			if s.word&rwIDMask != id(t/maxGoroutines) {
				return Fail("ownership", "%s holds the write lock, but the word is %s", m.name(t), formatRWWord(s.word))
			}
		} else {
			readers = append(readers, m.name(t))
		}
	}
	if len(writers) > 1 || len(writers) == 1 && len(readers) > 0 {
		return Fail("mutual-exclusion", "writers %s with readers %s", strings.Join(writers, ","), strings.Join(readers, ","))
	}
	switch s.bad {
	case rbUnreported:
		return Fail("owner-death-unreported", "%s acquired the lock after a writer died holding it, and was not told", m.name(int(s.badArg)))
	case rbSpurious:
		return Fail("spurious-owner-death", "%s was told a writer died, but none had", m.name(int(s.badArg)))
	case rbPreference:
		return Fail("writer-preference", "%s got a read lock while a writer's claim was in the word", m.name(int(s.badArg)))
	}
	return nil
}

// Stuck reports a goroutine still blocked when nothing but the environment
// can move: every script locks and unlocks, so nothing waits legitimately.
func (m *RWModel) Stuck(s *RWState) error {
	for t := range maxThreads {
		th := &s.th[t]
		if th.pc >= rpDone {
			continue
		}
		what := "asleep"
		if th.pc == rpParked {
			what = "parked on the token"
		}
		return Fail("lost-wakeup", "%s is %s (%s) with word %s, and nothing will wake it", m.name(t), what, rwPCName[th.pc], formatRWWord(s.word))
	}
	return nil
}

func formatRWWord(v uint8) string {
	if v == 0 {
		return "0"
	}
	s := "0"
	if v&rwIDMask != 0 {
		s = fmt.Sprintf("P%d", v&rwIDMask-1)
	}
	if v&rwW != 0 {
		s += "|W"
	}
	return s
}

// Format describes s on one line.
func (m *RWModel) Format(s *RWState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "word=%s", formatRWWord(s.word))
	if s.flags != 0 {
		b.WriteString(" INCONSISTENT")
	}
	if s.deadW != 0 {
		b.WriteString(" deadW")
	}
	for p := range m.nproc {
		pr := &s.proc[p]
		fmt.Fprintf(&b, " | P%d: L=%s line=%d", p, formatLive(s.live[p]), s.count[p]&rdCnt)
		if s.count[p]&rdW != 0 {
			b.WriteString("|RW")
		}
		if s.owner[p] == 0 {
			b.WriteString(" unclaimed")
		}
		if pr.life != lifeAlive {
			b.WriteString(" " + [...]string{"", "KILLED", "DEAD"}[pr.life])
		}
		if pr.close != 0 {
			b.WriteString(" " + [...]string{"", "closing", "closing(D2)", "closed"}[pr.close])
		}
		for g := range maxGoroutines {
			t := p*maxGoroutines + g
			if m.ops[t] == "" {
				continue
			}
			th := &s.th[t]
			fmt.Fprintf(&b, " G%d:%s", g, rwPCName[th.pc])
			if s.fx.Asleep(t) {
				b.WriteString("(asleep)")
			}
			switch th.held {
			case rhRead:
				b.WriteString("[R]")
			case rhWrite:
				b.WriteString("[W]")
			}
			if th.flags&rfCtxDone != 0 {
				b.WriteString(" ctx-done")
			}
		}
	}
	return b.String()
}

var rwSteps = []string{
	"rw.enter", "rw.rlock.claim", "rw.rlock.load", "rw.rlock.add", "rw.rlock.recheck",
	"rw.rlock.takeover", "rw.rlock.takeover_wake", "rw.rlock.set_waiters",
	"rw.runlock.sub", "rw.runlock.clear", "rw.runlock.wake",
	"rw.lock.cas", "rw.lock.load", "rw.lock.takeover", "rw.lock.set_waiters",
	"rw.drain.load", "rw.drain.owner", "rw.drain.set_waiter",
	"rw.unlock.load", "rw.unlock.cas", "rw.unlock.wake",
	"token.acquire", "token.release",
	"wait.watch.cas", "proc.lookup.live", "wait.sleep.waitv", "wait.sleep.check_lives", "wait.sleep.wake_all_live", "wait.sleep.check_done",
	"proc.close.mark_closed", "proc.close.wake_all",
}

// Steps returns the labels of the model's code steps.
func (m *RWModel) Steps() []string { return append([]string(nil), rwSteps...) }
