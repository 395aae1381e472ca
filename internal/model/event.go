package model

import (
	"fmt"
	"strings"
)

// EventModel is the Event's protocol (event.go, "event."): one word with
// the set bit, a generation and the sleepers bit; Set, Reset and Wait;
// one goroutine per process (up to three). Kills, cancellations and Close
// as in the other models; the kernel's walk and proc.close.mark_closed
// are as in LockedModel (its abstractions apply: watchAll is one step,
// no newcomers). The generation has 3 bits (it wraps; compared for
// equality only). Reset is one step (an atomic AND). The spin is one step
// whose loads decide nothing (the loop looks again).
type EventModel struct {
	cfg   EventConfig
	nproc int
}

// An EventOp is one call of an EventModel script.
type EventOp uint8

// The calls of EventModel's scripts.
const (
	EvSet EventOp = iota + 1
	EvReset
	EvWait
)

// An EventScript is one process's calls; it stops at the first that
// fails.
type EventScript struct {
	Ops    []EventOp
	Cancel bool
}

// EventConfig is one configuration of the EventModel.
type EventConfig struct {
	Procs  []EventScript
	Auto   bool // an auto-reset event
	Budget Budget

	// BugNoWatch: a sleeper watches no other process. A setter killed
	// between its CAS and its FUTEX_WAKE leaves it asleep on a set event.
	BugNoWatch bool
	// BugWakeOne: Set wakes one sleeper, not all. With a manual-reset
	// event the others stay asleep on a set event; with an auto-reset
	// one, the woken sleeper may give up (cancelled) without passing the
	// wake-up on.
	BugWakeOne bool
}

const (
	evmSet      = 1
	evmGenOne   = 2
	evmGenMask  = 0x0e
	evmSleepers = 0x80
)

const (
	epStart   uint8 = iota // event.set.enter / event.wait.enter / event.reset
	epSLoad                // event.set.load
	epSCAS                 // event.set.cas
	epSWake                // event.set.wake
	epWLoad                // event.wait.load
	epWTake                // event.wait.take
	epWSpin                // event.wait.spin
	epWSetS                // event.wait.set_sleepers
	epWWatch               // event.wait.watch
	epWWaitv               // wait.sleep.waitv
	epWAsleep              // asleep; its return is wait.sleep.waitv
	epDone
	epDead
)

var eventPCName = [...]string{
	epStart: "start", epSLoad: "set.load", epSCAS: "set.cas", epSWake: "set.wake", epWLoad: "wait.load",
	epWTake: "wait.take", epWSpin: "wait.spin", epWSetS: "wait.set_sleepers", epWWatch: "wait.watch",
	epWWaitv: "waitv", epWAsleep: "asleep", epDone: "done", epDead: "dead",
}

const (
	efCtx   = 1 << iota
	efFirst // the wait's first look (before the spin)
)

type ethread struct {
	pc    uint8
	op    uint8
	flags uint8
	v     uint8 // the word as it loaded it
	gen   uint8 // manual-reset: the generation of its first look
	watch uint8
}

// EventState is a state of the EventModel.
type EventState struct {
	word    uint8
	live    [maxProcs]uint8 // 0 attached, 1 killed, 2 marked dead
	closing [maxProcs]uint8
	th      [maxProcs]ethread
	fx      Futex // word 0: the event's; 1+p: p's live word
	budget  Budget
	// ghosts
	sets  uint8 // Sets that found the event clear
	taken uint8 // auto-reset Waits that returned
}

// NewEventModel checks cfg and returns its model.
func NewEventModel(cfg EventConfig) (*EventModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > maxProcs {
		return nil, fmt.Errorf("model: %d processes (1 to %d)", len(cfg.Procs), maxProcs)
	}
	return &EventModel{cfg: cfg, nproc: len(cfg.Procs)}, nil
}

// Init returns the state before any call.
func (m *EventModel) Init() EventState {
	s := EventState{budget: m.cfg.Budget}
	s.budget.Attach = 0
	for p := range maxProcs {
		switch {
		case p >= m.nproc:
			s.th[p].pc, s.live[p] = epDead, 2
		case len(m.cfg.Procs[p].Ops) == 0:
			s.th[p].pc = epDone
		}
	}
	return s
}

func (m *EventModel) name(t int) string { return fmt.Sprintf("P%d", t) }

func (m *EventModel) op(s *EventState, t int) EventOp { return m.cfg.Procs[t].Ops[s.th[t].op] }

func (m *EventModel) next(s *EventState, t int, ok bool) {
	th := &s.th[t]
	th.op++
	th.flags &= efCtx
	th.v, th.gen, th.watch = 0, 0, 0
	if !ok || int(th.op) >= len(m.cfg.Procs[t].Ops) {
		th.pc = epDone
		return
	}
	th.pc = epStart
}

// ready reports whether the word v lets t's wait return (before an
// auto-reset waiter's CAS).
func (m *EventModel) ready(s *EventState, t int, v uint8) bool {
	return v&evmSet != 0 || !m.cfg.Auto && v&evmGenMask != s.th[t].gen
}

// Next appends every step enabled in s.
func (m *EventModel) Next(s *EventState, trace bool, steps []Step[EventState]) []Step[EventState] {
	e := &emitter[EventState]{out: steps, trace: trace}
	for t := range m.nproc {
		m.thread(s, t, e)
	}
	for p := range m.nproc {
		m.process(s, p, e)
	}
	m.env(s, e)
	return e.out
}

func (m *EventModel) thread(s *EventState, t int, e *emitter[EventState]) {
	th := s.th[t]
	if s.live[t] != 0 {
		return
	}
	actor := m.name(t)
	ns := *s
	nt := &ns.th[t]
	switch th.pc {
	case epStart:
		op := m.op(s, t)
		if op == EvReset {
			if s.closing[t] != 0 {
				m.next(&ns, t, false)
			} else {
				ns.word &^= evmSet
				m.next(&ns, t, true)
			}
			e.add(actor, "event.reset", false, ns, "")
			return
		}
		label := "event.set.enter"
		if op == EvWait {
			label = "event.wait.enter"
		}
		switch {
		case s.closing[t] != 0:
			m.next(&ns, t, false)
		case op == EvSet:
			nt.pc = epSLoad
		default:
			nt.pc = epWLoad
			nt.flags |= efFirst
		}
		e.add(actor, label, false, ns, "")
	case epSLoad:
		nt.v = s.word
		if s.word&evmSet != 0 {
			m.next(&ns, t, true)
			e.add(actor, "event.set.load", false, ns, "set already")
			return
		}
		nt.pc = epSCAS
		e.add(actor, "event.set.load", false, ns, "")
	case epSCAS:
		if s.word != th.v {
			nt.pc = epSLoad
			e.add(actor, "event.set.cas", false, ns, "CAS failed")
			return
		}
		ns.word = (th.v+evmGenOne)&evmGenMask | evmSet
		ns.sets++
		if th.v&evmSleepers != 0 {
			nt.pc = epSWake
		} else {
			m.next(&ns, t, true)
		}
		e.add(actor, "event.set.cas", false, ns, "set")
	case epSWake:
		m.next(&ns, t, true)
		if m.cfg.BugWakeOne {
			ns.fx.Wakes(0, 1, func(woken uint16, after Futex) {
				n2 := ns
				n2.fx = after
				e.add(actor, "event.set.wake", false, n2, e.woke(woken, m.name))
			})
			return
		}
		woken := ns.fx.WakeAll(0)
		e.add(actor, "event.set.wake", false, ns, e.woke(woken, m.name))
	case epWLoad:
		nt.v = s.word
		if th.flags&efFirst != 0 {
			nt.gen = s.word & evmGenMask
		}
		nt.pc = epWTake
		e.add(actor, "event.wait.load", false, ns, "")
	case epWTake:
		if m.ready(s, t, th.v) {
			if m.cfg.Auto {
				if s.word != th.v {
					nt.pc = epWLoad
					nt.flags &^= efFirst
					e.add(actor, "event.wait.take", false, ns, "CAS failed")
					return
				}
				ns.word &^= evmSet
				ns.taken++
			}
			m.next(&ns, t, true)
			e.add(actor, "event.wait.take", false, ns, "released")
			return
		}
		if th.flags&efFirst != 0 {
			nt.flags &^= efFirst
			if th.flags&efCtx != 0 {
				m.next(&ns, t, false)
				e.add(actor, "event.wait.take", false, ns, "not set; ctx done")
				return
			}
			nt.pc = epWSpin
		} else {
			nt.pc = epWSetS
		}
		e.add(actor, "event.wait.take", false, ns, "not set")
	case epWSpin:
		nt.pc = epWLoad
		e.add(actor, "event.wait.spin", false, ns, "")
	case epWSetS:
		if th.v&evmSleepers == 0 {
			if s.word != th.v {
				nt.pc = epWLoad
				e.add(actor, "event.wait.set_sleepers", false, ns, "CAS failed")
				return
			}
			ns.word |= evmSleepers
			nt.v |= evmSleepers
			nt.pc = epWWatch
			e.add(actor, "event.wait.set_sleepers", false, ns, "")
			return
		}
		nt.pc = epWWatch
		m.thread(&ns, t, e) // the bit was set: no CAS, no step
	case epWWatch:
		nt.watch = 0
		if !m.cfg.BugNoWatch {
			for p := range m.nproc {
				if p != t && s.live[p] != 2 {
					nt.watch |= 1 << p
				}
			}
		}
		nt.pc = epWWaitv
		e.add(actor, "event.wait.watch", false, ns, e.notef("watches %03b", int(nt.watch), 0))
	case epWWaitv:
		if th.flags&efCtx != 0 || s.closing[t] != 0 {
			m.next(&ns, t, false)
			e.add(actor, "wait.sleep.waitv", false, ns, "ctx done or closed")
			return
		}
		changed := s.word != th.v
		set := uint8(1)
		for p := range m.nproc {
			if th.watch&(1<<p) != 0 {
				set |= 1 << (1 + p)
				if s.live[p] == 2 {
					changed = true
				}
			}
		}
		if changed {
			nt.pc = epWLoad
			e.add(actor, "wait.sleep.waitv", false, ns, "a word changed: EAGAIN")
			return
		}
		ns.fx.Sleep(t, set)
		nt.pc = epWAsleep
		e.add(actor, "wait.sleep.waitv", false, ns, "sleeps")
	case epWAsleep:
		if s.fx.Asleep(t) {
			return
		}
		if th.flags&efCtx != 0 || s.closing[t] != 0 {
			m.next(&ns, t, false)
			e.add(actor, "wait.sleep.waitv", false, ns, "woken: ctx done or closed")
			return
		}
		nt.pc = epWLoad
		e.add(actor, "wait.sleep.waitv", false, ns, "woken")
	}
}

func eventInFlight(pc uint8) bool { return pc != epStart && pc != epDone && pc != epDead }

func (m *EventModel) process(s *EventState, p int, e *emitter[EventState]) {
	switch {
	case s.live[p] == 1:
		ns := *s
		ns.live[p] = 2
		woken := ns.fx.WakeAll(1 + p)
		e.add("kernel", "kernel.robust_walk", false, ns, e.cat(fmt.Sprintf("P%d dead; ", p), e.woke(woken, m.name)))
	case s.closing[p] != 0 && s.live[p] == 0 && !eventInFlight(s.th[p].pc):
		ns := *s
		ns.live[p] = 2
		woken := ns.fx.WakeAll(1 + p)
		e.add(m.name(p), "proc.close.mark_closed", false, ns, e.woke(woken, m.name))
	}
}

func (m *EventModel) env(s *EventState, e *emitter[EventState]) {
	for p := range m.nproc {
		if s.live[p] != 0 {
			continue
		}
		if s.budget.Kill > 0 && s.th[p].pc != epDone {
			ns := *s
			ns.budget.Kill--
			ns.live[p] = 1
			ns.th[p].pc = epDead
			ns.fx.Unqueue(p)
			e.add("env", "env.kill", true, ns, e.notef("SIGKILL P%d", p, 0))
		}
		if s.budget.Close > 0 && s.closing[p] == 0 {
			ns := *s
			ns.budget.Close--
			ns.closing[p] = 1
			ns.fx.Unqueue(p)
			e.add("env", "env.close", true, ns, e.notef("P%d Close", p, 0))
		}
		if s.budget.Cancel > 0 && m.cfg.Procs[p].Cancel && s.th[p].flags&efCtx == 0 && s.th[p].pc != epDone {
			ns := *s
			ns.budget.Cancel--
			ns.th[p].flags |= efCtx
			ns.fx.Unqueue(p)
			e.add("env", "env.cancel", true, ns, e.cat("cancel ", m.name(p)))
		}
	}
}

// Check: an auto-reset event releases at most one waiter per Set.
func (m *EventModel) Check(s *EventState) error {
	if m.cfg.Auto && s.taken > s.sets {
		return Fail("auto-reset", "%d waiters released by %d Sets", s.taken, s.sets)
	}
	return nil
}

// Stuck: a waiter asleep while what it waits for has come.
func (m *EventModel) Stuck(s *EventState) error {
	for t := range m.nproc {
		th := s.th[t]
		if s.live[t] != 0 || th.pc == epDone || th.pc == epDead {
			continue
		}
		if th.pc != epWAsleep {
			return Fail("deadlock", "%s blocked at %s", m.name(t), eventPCName[th.pc])
		}
		if m.ready(s, t, s.word) {
			return Fail("lost-wakeup", "%s asleep in Wait while the event lets it return (%s)", m.name(t), m.Format(s))
		}
	}
	return nil
}

// Format describes s on one line.
func (m *EventModel) Format(s *EventState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "word=set%d gen%d S%d |", s.word&evmSet, (s.word&evmGenMask)>>1, s.word>>7)
	for t := range m.nproc {
		th := s.th[t]
		fmt.Fprintf(&b, " P%d@%s", t, eventPCName[th.pc])
		if int(th.op) < len(m.cfg.Procs[t].Ops) && th.pc != epDone && th.pc != epDead {
			fmt.Fprintf(&b, "(%v)", m.op(s, t))
		}
		fmt.Fprintf(&b, " live%d", s.live[t])
		if s.closing[t] != 0 {
			b.WriteString(" closing")
		}
		if th.flags&efCtx != 0 {
			b.WriteString(" ctx")
		}
		if s.fx.Asleep(t) {
			b.WriteString(" asleep")
		}
	}
	fmt.Fprintf(&b, " | sets %d taken %d | budget k%d c%d x%d", s.sets, s.taken, s.budget.Kill, s.budget.Cancel, s.budget.Close)
	return b.String()
}

func (o EventOp) String() string { return [...]string{"?", "Set", "Reset", "Wait"}[o] }

var eventSteps = []string{
	"event.set.enter", "event.set.load", "event.set.cas", "event.set.wake", "event.reset",
	"event.wait.enter", "event.wait.load", "event.wait.take", "event.wait.spin", "event.wait.set_sleepers",
	"event.wait.watch", "wait.sleep.waitv", "proc.close.mark_closed",
}

// Steps returns the code steps of the model.
func (m *EventModel) Steps() []string { return append([]string(nil), eventSteps...) }
