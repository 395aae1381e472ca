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
// fails (cancelled, closed) the goroutine stops.
type SemScript struct {
	Ops    []SemOp
	Cancel bool // its context may be cancelled
}

// SemaphoreConfig is one configuration of the Semaphore model.
type SemaphoreConfig struct {
	Procs   [][]SemScript
	Initial uint8
	Budget  Budget // Attach is not modelled for the semaphore
	// WaitersBits is the width of the waiters count (default 3).
	WaitersBits uint8

	// Bug2 reverts the fix of lost wake-up 2: a woken sleeper that cannot
	// use the permits (too few, cancelled, closed) does not pass the wake-up
	// on with futex_wake(value, 1).
	Bug2 bool
	// BugTokenYield: the holder of the process-local token that finds too
	// few permits keeps the token (and sleeps) while another goroutine of
	// its process, parked on the token, asks for no more than the value.
	BugTokenYield bool
	// BugWatchHolders is the sleep of the current code: it watches the live
	// words of the processes that hold permits only. A process that is not a
	// holder can still owe the sleeper a wake-up: a Release killed between
	// raising the value and its futex_wake, or a sleeper that consumed a
	// wake-up and was killed before passing it on. Sleepers watch every
	// other attached process instead, so that any death wakes them.
	BugWatchHolders bool
	// BugYieldAlways is the token as the code handles it (semaphore.go,
	// acquireSlow): a goroutine that finds the token busy waits for it
	// without retrying its take, the holder does not look for a goroutine
	// waiting for the token before it sleeps, and after every sleep it
	// releases the token (to a goroutine parked on it, if any) and takes
	// it again. A goroutine between local.acquire's two selects is not
	// parked yet, so the holder's release and re-take pass it by.
	BugYieldAlways bool
}

// Semaphore program counters.
const (
	spOp        uint8 = iota // sem.acquire.check / sem.release.check_closed
	spEnter                  // sem.acquire.enter
	spTry                    // sem.acquire.try
	spToken                  // token.acquire (its non-blocking select)
	spRetry                  // sem.acquire.retry: registered as waiting for the token, retries the take
	spTokenWait              // token.acquire_wait (its blocking select)
	spParked                 // parked on the token (no step)
	spLocked                 // sem.acquire.locked
	spPass                   // sem.acquire.pass_wake
	spYield                  // sem.acquire.yield_token
	spLoad                   // sem.acquire.load_value
	spWaitv                  // wait.sleep.waitv
	spWoken                  // wait.sleep.check_lives, once woken
	spWakeLive               // wait.sleep.wake_all_live
	spCheckDone              // wait.sleep.check_done
	spDec                    // sem.acquire.waiters_dec
	spPassErr                // sem.acquire.pass_wake_err
	spRetOK                  // sem.acquire.exit: acquired without the token
	spRet                    // token.release, acquired
	spRetErr                 // token.release, failed
	spREnter                 // sem.release.enter
	spRLocked                // sem.release.locked
	spRLoadW                 // sem.release.load_waiters
	spRWake                  // sem.release.wake
	spDone
	spDead
	spGone
)

var semPCName = [...]string{
	spOp: "op", spTry: "try", spEnter: "enter", spToken: "token", spRetry: "retry", spTokenWait: "token_wait", spParked: "parked",
	spLocked: "locked", spPass: "pass_wake", spYield: "yield_token", spLoad: "load_value",
	spWaitv: "waitv", spWoken: "woken", spWakeLive: "wake_all_live", spCheckDone: "check_done",
	spDec: "waiters_dec", spPassErr: "pass_wake_err", spRetOK: "exit", spRet: "release(ok)", spRetErr: "release(err)",
	spREnter: "release.enter", spRLocked: "release.locked", spRLoadW: "release.load_waiters", spRWake: "release.wake",
	spDone: "done", spDead: "dead", spGone: "gone",
}

func semFinished(pc uint8) bool { return pc >= spDone }
func semInFlight(pc uint8) bool {
	return pc > spEnter && pc <= spRetErr || pc > spREnter && pc < spDone
}

// waitsForToken reports whether a goroutine at pc has found the token busy
// and not given up: the holder may yield the token to it.
func waitsForToken(pc uint8) bool { return pc == spRetry || pc == spTokenWait || pc == spParked }

const (
	sfCtxDone = 1 << iota
	sfSlept   // it went through futex_waitv since it last found too few
	sfErr     // its sleep returned an error
	sfNoPass  // the error came before futex_waitv: no wake-up to pass on
	sfYield   // it found too few and a goroutine waiting for the token could use the value
)

type sthread struct {
	pc    uint8
	op    uint8
	v     uint8 // local: the value it loaded, or the waiters count Release loaded
	lives uint8 // local: slots whose live word it watches (expected tid|LW)
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
	value   uint8
	waiters uint8
	total   uint8           // ghost: permits in existence (initial + those producers released)
	held    [maxProcs]uint8 // the held entry of each slot
	live    [maxProcs]uint8
	proc    [maxProcs]sproc
	th      [maxThreads]sthread
	fx      Futex
	budget  Budget
}

// SemaphoreModel is the Semaphore wait protocol (semaphore.go, wait.go),
// with the internal lock modelled as atomic: each step marked "locked" is
// one critical section of the internal robust mutex, whose journal makes it
// all-or-nothing even when its holder is killed.
type SemaphoreModel struct {
	cfg     SemaphoreConfig
	nproc   int
	waiters Seq
	ops     [maxThreads][]SemOp
	cancel  [maxThreads]bool
	names   [maxThreads]string
}

// NewSemaphoreModel checks cfg and returns its model.
func NewSemaphoreModel(cfg SemaphoreConfig) (*SemaphoreModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > maxProcs {
		return nil, fmt.Errorf("model: %d processes (1 to %d)", len(cfg.Procs), maxProcs)
	}
	if cfg.WaitersBits == 0 {
		cfg.WaitersBits = 3
	}
	m := &SemaphoreModel{cfg: cfg, nproc: len(cfg.Procs), waiters: Seq{Bits: cfg.WaitersBits}}
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

func (m *SemaphoreModel) advance(s *SemState, t int) {
	th := &s.th[t]
	th.op++
	th.v, th.lives = 0, 0
	th.flags &^= sfSlept | sfErr | sfNoPass | sfYield
	if int(th.op) < len(m.ops[t]) {
		th.pc = spOp
	} else {
		th.pc = spDone
	}
}

// fail ends t's script: an Acquire or Release returned an error.
func (m *SemaphoreModel) fail(s *SemState, t int) {
	th := &s.th[t]
	th.pc, th.v, th.lives, th.flags = spDone, 0, 0, th.flags&sfCtxDone
}

// dead reports whether the process in slot e is gone, as lookupSlot sees it.
func (s *SemState) dead(e int) bool { return liveDead(s.live[e]) }

// unmapped reports whether p's mapping is gone.
func (s *SemState) unmapped(p int) bool { return int(s.proc[p].close) > len(semCloseSteps) }

// take gives t n permits if there are enough.
func (s *SemState) take(t int, n uint8) bool {
	if s.value < n {
		return false
	}
	s.value -= n
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

// releaseToken hands t's token to a parked goroutine of its process, or
// frees it, and calls fn with each outcome.
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
		n2.th[o].pc = spLocked
		handed = true
		fn(n2, "token handed to "+m.name(o))
	}
	if !handed {
		ns.proc[p].token = 0
		fn(ns, "token free")
	}
}

// siblingCould returns a goroutine of t's process parked on the token whose
// Acquire the value covers, or -1.
func (m *SemaphoreModel) siblingCould(s *SemState, t int) int {
	p := t / maxGoroutines
	for g := range maxGoroutines {
		if o := p*maxGoroutines + g; o != t && waitsForToken(s.th[o].pc) && m.ops[o][s.th[o].op].N <= s.value {
			return o
		}
	}
	return -1
}

func (m *SemaphoreModel) thread(s *SemState, t int, e *emitter[SemState]) {
	th := &s.th[t]
	switch {
	case semFinished(th.pc), th.pc == spParked:
		return
	case th.pc == spWoken && s.fx.Asleep(t):
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
	if s.unmapped(p) && th.pc != spOp {
		// Every step but the first touches the segment.
		nt.pc = spGone
		add("fault", "segment unmapped")
		return
	}

	switch th.pc {
	case spOp:
		if !op.Acquire {
			if closed {
				m.fail(&ns, t)
				add("sem.release.check_closed", "ErrClosed")
				return
			}
			nt.pc = spREnter
			add("sem.release.check_closed", "")
			return
		}
		if closed || ctxDone {
			m.fail(&ns, t)
			add("sem.acquire.check", "ErrClosed or ctx done")
			return
		}
		nt.pc = spEnter
		add("sem.acquire.check", "")

	case spEnter:
		// Acquire holds the segment (Segment.enter) from before its first
		// take: a take racing with Close could otherwise land after the
		// process's identity was marked dead, in a held entry no sleeper
		// watches.
		if closed {
			m.fail(&ns, t)
			add("sem.acquire.enter", "ErrClosed")
			return
		}
		nt.pc = spTry
		add("sem.acquire.enter", "")

	case spTry:
		if ns.take(t, n) {
			nt.pc = spRetOK
			add("sem.acquire.try", "acquired")
			return
		}
		nt.pc = spToken
		add("sem.acquire.try", "too few")

	case spToken:
		if pr.token == 0 {
			ns.proc[p].token = uint8(t + 1)
			nt.pc = spLocked
			add("token.acquire", "took the token")
			return
		}
		nt.pc = spRetry
		if m.cfg.BugYieldAlways {
			nt.pc = spTokenWait
			add("token.acquire", "token busy")
			return
		}
		add("token.acquire", "token busy: registered, retry before parking")

	case spRetry:
		// Registered as waiting for the token (the holder checks before it
		// sleeps), retry the take once: a Release between the first take
		// and the registration would otherwise go unseen by both.
		if ns.take(t, n) {
			nt.pc = spRetOK
			add("sem.acquire.retry", "acquired")
			return
		}
		nt.pc = spTokenWait
		add("sem.acquire.retry", "too few")

	case spRetOK:
		m.advance(&ns, t)
		add("sem.acquire.exit", "")

	case spREnter:
		if closed {
			m.fail(&ns, t)
			add("sem.release.enter", "ErrClosed")
			return
		}
		nt.pc = spRLocked
		add("sem.release.enter", "")

	case spTokenWait:
		ready := false
		if pr.token == 0 {
			ready = true
			n2 := ns
			n2.proc[p].token = uint8(t + 1)
			n2.th[t].pc = spLocked
			e.add(actor, "token.acquire_wait", false, n2, "took the token")
		}
		if ctxDone || closed {
			ready = true
			n2 := ns
			m.fail(&n2, t)
			e.add(actor, "token.acquire_wait", false, n2, "ctx done or closed: no token")
		}
		if !ready {
			nt.pc = spParked
			add("token.acquire_wait", "parked")
		}

	case spLocked:
		// Under the internal lock: take; else return dead holders' permits
		// and watch the other live processes; take; else yield the token
		// to a parked goroutine the value covers, or count itself a waiter.
		if ns.take(t, n) {
			nt.pc = spRet
			add("sem.acquire.locked", "acquired")
			return
		}
		nt.lives, nt.v = 0, 0
		var notes []string
		for e2 := range m.nproc {
			if e2 != p && ns.held[e2] != 0 && ns.dead(e2) {
				notes = append(notes, e.notef("reclaimed %d from P%d", int(ns.held[e2]), e2))
				ns.value += ns.held[e2]
				ns.held[e2] = 0
			}
		}
		for e2 := range m.nproc {
			if e2 == p || ns.dead(e2) || m.cfg.BugWatchHolders && ns.held[e2] == 0 {
				continue
			}
			ns.live[e2] |= liveWaiters
			nt.lives |= 1 << e2
		}
		if ns.take(t, n) {
			nt.pc = spRet
			add("sem.acquire.locked", join(strings.Join(notes, ", "), "acquired"))
			return
		}
		notes = append(notes, "too few")
		ns.waiters = m.waiters.Add(ns.waiters, 1)
		nt.pc = spLoad
		if th.flags&sfSlept != 0 && !m.cfg.Bug2 {
			// Woken, and too few: pass the wake-up on before sleeping again.
			nt.pc = spPass
		}
		nt.flags &^= sfSlept
		add("sem.acquire.locked", strings.Join(notes, ", ")+": waiters++")

	case spPass:
		nt.pc = spLoad
		if s.value > 0 && s.waiters > 1 {
			m.wake(e, actor, "sem.acquire.pass_wake", ns, fwValue, 1, "")
			return
		}
		add("sem.acquire.pass_wake", "nobody to pass to")

	case spYield:
		if m.siblingCould(s, t) < 0 && !m.cfg.BugYieldAlways {
			nt.pc = spLocked
			add("sem.acquire.yield_token", "nobody to yield to")
			return
		}
		if !m.cfg.BugYieldAlways {
			nt.flags &^= sfSlept
		}
		m.releaseToken(ns, t, func(n2 SemState, note string) {
			n2.th[t].pc = spToken
			e.add(actor, "sem.acquire.yield_token", false, n2, note)
		})

	case spLoad:
		nt.v = s.value
		switch {
		case s.value >= n:
			nt.pc = spDec
			add("sem.acquire.load_value", "enough: no sleep")
		case !m.cfg.BugTokenYield && !m.cfg.BugYieldAlways && m.siblingCould(s, t) >= 0:
			// Last look before sleeping: a goroutine of this process that
			// waits for the token asks for no more than the value. (It
			// registered before its own last look: one of the two sees the
			// other.)
			nt.pc = spDec
			nt.flags |= sfYield
			add("sem.acquire.load_value", "a goroutine waiting for the token could use the value: yield")
		default:
			nt.pc = spWaitv
			add("sem.acquire.load_value", "")
		}

	case spWaitv:
		nt.flags |= sfSlept
		if ctxDone || closed {
			nt.flags |= sfErr | sfNoPass
			nt.pc = spDec
			add("wait.sleep.waitv", "ctx done or closed: no sleep")
			return
		}
		set := uint8(1) << fwValue
		match := s.value == th.v
		for e2 := range m.nproc {
			if th.lives&(1<<e2) != 0 {
				set |= 1 << fwLive(uint8(e2))
				match = match && s.live[e2] == 1|liveWaiters
			}
		}
		nt.pc = spWoken
		if match {
			ns.fx.Sleep(t, set)
			add("wait.sleep.waitv", "sleeps")
			return
		}
		add("wait.sleep.waitv", "EAGAIN")

	case spWoken:
		for e2 := range m.nproc {
			if th.lives&(1<<e2) != 0 && s.live[e2]&liveDied != 0 {
				nt.pc = spWakeLive
				add("wait.sleep.check_lives", e.notef("P%d DIED", e2, 0))
				return
			}
		}
		nt.pc = spCheckDone
		nt.v, nt.lives = 0, 0
		add("wait.sleep.check_lives", "")

	case spWakeLive:
		var woken uint16
		for e2 := range m.nproc {
			if th.lives&(1<<e2) != 0 && s.live[e2]&liveDied != 0 {
				woken |= ns.fx.WakeAll(fwLive(uint8(e2)))
			}
		}
		nt.v, nt.lives = 0, 0
		nt.pc = spCheckDone
		add("wait.sleep.wake_all_live", e.woke(woken, m.name))

	case spCheckDone:
		nt.pc = spDec
		if ctxDone || closed {
			nt.flags |= sfErr
			add("wait.sleep.check_done", "ctx done or closed")
			return
		}
		add("wait.sleep.check_done", "")

	case spDec:
		ns.waiters = m.waiters.Sub(ns.waiters, 1)
		switch {
		case th.flags&sfYield != 0:
			nt.flags &^= sfYield
			nt.pc = spYield
		case th.flags&sfErr == 0 && th.flags&sfSlept != 0 && m.cfg.BugYieldAlways:
			nt.pc = spYield // the code yields after every sleep
		case th.flags&sfErr == 0:
			nt.pc = spLocked
		case th.flags&sfNoPass != 0 || m.cfg.Bug2:
			nt.pc = spRetErr
		default:
			nt.pc = spPassErr
		}
		add("sem.acquire.waiters_dec", "")

	case spPassErr:
		nt.pc = spRetErr
		if s.value > 0 && s.waiters > 0 {
			m.wake(e, actor, "sem.acquire.pass_wake_err", ns, fwValue, 1, "")
			return
		}
		add("sem.acquire.pass_wake_err", "nobody to pass to")

	case spRet, spRetErr:
		ok := th.pc == spRet
		m.releaseToken(ns, t, func(n2 SemState, note string) {
			if ok {
				m.advance(&n2, t)
			} else {
				m.fail(&n2, t)
			}
			e.add(actor, "token.release", false, n2, note)
		})

	case spRLocked:
		h := s.held[p]
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
		add("sem.release.locked", e.notef("value %d", int(ns.value), 0))

	case spRLoadW:
		if s.waiters == 0 {
			m.advance(&ns, t)
			add("sem.release.load_waiters", "no waiters")
			return
		}
		nt.v = s.waiters
		nt.pc = spRWake
		add("sem.release.load_waiters", "")

	case spRWake:
		m.advance(&ns, t)
		m.wake(e, actor, "sem.release.wake", ns, fwValue, int(min(th.v, n)), "")
	}
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
		ns := *s
		ns.proc[p].life = lifeDead
		ns.proc[p].listed = 0
		if pr.listed != 0 && robustDeath(&ns.live[p], 1) {
			m.wake(e, "kernel", "kernel.robust_walk", ns, fwLive(uint8(p)), 1, "OWNER_DIED")
			return
		}
		e.add("kernel", "kernel.robust_walk", false, ns, "")
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
				ns.fx.Unqueue(t)
			}
			ns.proc[p].token = 0
			e.add("env", "env.kill", true, ns, e.notef("SIGKILL P%d", p, 0))
		}
		if b.Close > 0 && pr.close == 0 {
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

// Check checks that permits are conserved: none is created or lost, and a
// live process's held entry is what its goroutines hold.
func (m *SemaphoreModel) Check(s *SemState) error {
	sum := int(s.value)
	for p := range m.nproc {
		sum += int(s.held[p])
	}
	if sum != int(s.total) {
		return Fail("permits", "value %d + held %v = %d, but %d permits exist", s.value, s.held[:m.nproc], sum, s.total)
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
// value, or with the permits of dead holders, covers its request.
func (m *SemaphoreModel) Stuck(s *SemState) error {
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
		asleep := th.pc == spWoken && s.fx.Asleep(t)
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
		switch {
		case s.proc[p].close != 0:
			return Fail("close-no-wake", "%s %s after its process closed", m.name(t), what)
		case s.value >= n:
			return Fail("lost-wakeup", "%s %s for %d permits while the value is %d", m.name(t), what, n, s.value)
		case int(s.value)+deadHeld >= int(n):
			return Fail("lost-wakeup", "%s %s for %d permits: value %d, and dead holders hold %d", m.name(t), what, n, s.value, deadHeld)
		}
	}
	return nil
}

// Format describes s on one line.
func (m *SemaphoreModel) Format(s *SemState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "value=%d waiters=%d held=%v total=%d |", s.value, s.waiters, s.held[:m.nproc], s.total)
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
	"sem.acquire.check",
	"sem.acquire.try",
	"sem.acquire.enter",
	"token.acquire",
	"sem.acquire.retry",
	"sem.acquire.exit",
	"token.acquire_wait",
	"sem.acquire.locked",
	"sem.acquire.pass_wake",
	"sem.acquire.yield_token",
	"sem.acquire.load_value",
	"wait.sleep.waitv",
	"wait.sleep.check_lives",
	"wait.sleep.wake_all_live",
	"wait.sleep.check_done",
	"sem.acquire.waiters_dec",
	"sem.acquire.pass_wake_err",
	"token.release",
	"sem.release.check_closed",
	"sem.release.enter",
	"sem.release.locked",
	"sem.release.load_waiters",
	"sem.release.wake",
	"proc.close.mark_closed",
	"proc.close.wake_all",
	"proc.close.unlink",
	"proc.close.clear",
	"proc.close.unmap",
}

// Steps returns the labels of the model's code steps.
func (m *SemaphoreModel) Steps() []string { return append([]string(nil), semaphoreSteps...) }
