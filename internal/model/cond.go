package model

import (
	"fmt"
	"strings"
)

// CondModel is the Cond wait protocol (cond.go), one goroutine per process.
//
// Shared state: the state word's seq (SeqBits bits, 3 by default, so that
// wrap-around is reachable), waiters and signals; the sleepers hint; one
// registration record {identity, count} per process slot; the mutex c.L,
// abstracted to its fast paths (a holder that died or closed is taken over
// once the kernel has marked its death). Futex words: 0 is seq, 1 the
// baton. Every step of the code marked `// step: cond.…` is a step here,
// with the same label; a load-and-CAS retry loop is one atomic
// read-modify-write.
//
// Each process runs a script of operations: Wait (lock c.L, Wait, unlock),
// Signal or Broadcast. The environment kills a process (the kernel's robust
// list walk, which marks its slot dead and wakes a sleeper on the baton if
// the dead thread had armed it, is a later step of its own), cancels a
// waiter's context, closes a process's handle (its Wait returns ErrClosed,
// and its identity dies once it has left), and restarts a dead process in
// its slot with a new identity (CondConfig.Budget.Attach).
//
// Abstractions beyond the package's (see the package doc): with one
// goroutine per process the token is never contended, so taking it, and
// yielding it, always succeed at once; the spin is one read of seq (a spin
// of many reads behaves as its last); the mutex has no sleepers (a locker
// waits until it is free, or its holder's death is marked).
//
// Checked in every state: signals ≤ waiters ≤ the maximum; no registrant
// finds waiters full while fewer live waiters than that are registered
// ("saturated"); no waiter returns for a Broadcast that did not happen
// ("wrap", with the bug toggles). Checked where only environment events are
// left (Stuck): no live waiter asleep in the kernel while it is eligible and
// a signal is outstanding, while a Broadcast sent after it registered has
// not released it, or while more Signals were sent since it registered than
// waiters have taken signals since (the last two by ghost counters:
// "lost-wakeup").
//
// Found by this checker in the design it was first given: a cancelled
// waiter judged whether it was eligible before it left, so a Broadcast
// between the two left the signal it granted to the leaver for nobody, and
// a later Signal woke nobody; leave now judges it on the state it changes
// (the configuration "two waiters, one cancelled, a broadcast and a
// signal" finds it again if that is undone).
//
// Known windows, not toggles (CondConfig.KillSignaller and KillInWindow
// explore them; off in the CI configurations, each with a test of its own):
//
//   - a signaller killed between its grant and its FUTEX_WAKE leaves the
//     signal outstanding and the sleepers asleep until the next grant;
//   - a process killed between the two writes of a registration, a take, a
//     leave or a reclaim (the record and the state word) leaves one
//     registration counted that no record names: never a lost wake-up,
//     but enough such deaths fill the count ("saturated").
type CondModel struct {
	cfg    CondConfig
	nprocs int
}

// CondOp is one operation of a script.
type CondOp uint8

const (
	CondWait CondOp = iota
	CondSignal
	CondBroadcast
)

// CondConfig is what CondModel explores.
type CondConfig struct {
	Procs   [][]CondOp // one goroutine per process, at most 4
	Budget  Budget
	SeqBits uint8 // bits of seq, 3 if 0
	InitSeq uint8 // seq's initial value (as after many Signals)
	MaxW    uint8 // the full count of waiters, 3 if 0

	// KillSignaller lets a kill hit a signaller between its grant and its
	// wake-up (the first known window above).
	KillSignaller bool
	// KillInWindow lets a kill hit a process between the two writes of a
	// registration, a take, a leave or a reclaim (the second known window).
	KillInWindow bool

	// BugBroadcastNoGrant is the design before this one: Broadcast clears
	// the signals, keeps the waiters counted, and records a broadcast
	// generation; a waiter that sees a Broadcast since it registered
	// unregisters and returns without taking a signal (bug 1: a Signal
	// right after a Broadcast is left for nobody).
	BugBroadcastNoGrant bool
	// BugOrderedSeq, with BugBroadcastNoGrant, tells "a Broadcast since I
	// registered" by the sign of the generation's difference from the
	// waiter's seq, in SeqBits bits (bug 2: past half the range, every
	// waiter returns at once).
	BugOrderedSeq bool
	// BugNoReclaim never takes dead registrations off the count (bug 3:
	// deaths fill the count).
	BugNoReclaim bool
	// BugPoolMix is the pool before generations were kept apart: a grant
	// or nudge that finds signals outstanding adds its own (Signal: one;
	// a nudge: none) and makes every waiter eligible, so that waiters
	// registered after the earlier grant can take its signals (a
	// Broadcast's wake-up lost, found with three waiters).
	BugPoolMix bool
}

const maxCondProcs = 4

type condRec struct{ ID, N uint8 } // ID = gen<<2 | slot; gen 0: none

type condProc struct {
	Gen                        uint8
	Dead, Marked, Closed, Gone bool
}

// condG is the goroutine of a process.
type condG struct {
	Op, PC          uint8
	S0, St, Left, V uint8 // registered seq, the seq a sleep compares, signals left after a take, a loaded record (slot in Scan)
	Scan, ScanRet   uint8 // the slot a scan is at, and where it returns
	RecRet, RecN    uint8 // where a reclaim returns, and the count it reclaims
	Err             uint8 // 0, errCancel, errClosed
	Elig, Woken     bool
	Armed, Alone    bool
	Last, Cancel    bool // a take from the spin (the last signal only), or from a cancelled waiter
	Cancelled       bool
	Scanned         bool
	// ghost
	Reg, Bcast, Bad bool
	Sigs, Rets      uint8
}

const (
	errCancel = 1
	errClosed = 2
)

// CondState is a state of CondModel.
type CondState struct {
	Seq, W, S, Sleepers, Bcast uint8
	M                          uint8 // c.L's holder's identity, 0 when free
	Rec                        [maxCondProcs]condRec
	P                          [maxCondProcs]condProc
	G                          [maxCondProcs]condG
	F                          Futex
	B                          Budget
}

// Program counters.
const (
	cpcNextOp uint8 = iota
	cpcLock
	cpcOwnRec
	cpcReclaimGlobal
	cpcReclaimWake
	cpcRegister
	cpcRecord
	cpcUnlock
	cpcSpin
	cpcToken
	cpcArm
	cpcLoad
	cpcTakeRec
	cpcTakeCas
	cpcUnrecord
	cpcPass
	cpcCancelPass
	cpcDisarm
	cpcTokenRel
	cpcScan
	cpcScanReclaim
	cpcYield
	cpcPassOn
	cpcSleepersInc
	cpcSleep
	cpcAsleep
	cpcSleepersDec
	cpcCancelLoad
	cpcLeaveRec
	cpcLeaveCas
	cpcLeaveWake
	cpcLeaveDone
	cpcRelock
	cpcUserUnlock
	cpcSigGrant
	cpcSigWake
	cpcBcGrant
	cpcBcWake
	cpcPoll // waiters full: the code polls
	cpcGone // the handle closed
	cpcDone
)

var condSteps = []string{
	"mutex.lock.fast_cas", "mutex.lock.takeover_cas", "mutex.unlock.fast_cas",
	"cond.reclaim.record", "cond.reclaim.global", "cond.reclaim.wake",
	"cond.wait.register", "cond.wait.record", "cond.wait.spin", "cond.wait.token",
	"cond.wait.arm", "cond.wait.load", "cond.take.record", "cond.take.cas",
	"cond.take.unrecord", "cond.wait.pass", "cond.wait.cancel_pass", "cond.wait.disarm",
	"cond.wait.token_release", "cond.scan.load", "cond.wait.yield", "cond.wait.pass_on",
	"cond.wait.sleepers_inc", "cond.wait.sleep", "cond.wait.sleepers_dec",
	"cond.wait.cancel_load", "cond.leave.record", "cond.leave.cas", "cond.leave.wake",
	"cond.signal.grant", "cond.signal.wake", "cond.broadcast.grant", "cond.broadcast.wake",
}

// Steps returns the labels of the model's code steps.
func (m *CondModel) Steps() []string { return append([]string(nil), condSteps...) }

// NewCondModel returns the model of cfg.
func NewCondModel(cfg CondConfig) (*CondModel, error) {
	if len(cfg.Procs) < 1 || len(cfg.Procs) > maxCondProcs {
		return nil, fmt.Errorf("model: %d processes, want 1 to %d", len(cfg.Procs), maxCondProcs)
	}
	if cfg.SeqBits == 0 {
		cfg.SeqBits = 3
	}
	if cfg.MaxW == 0 {
		cfg.MaxW = 3
	}
	return &CondModel{cfg: cfg, nprocs: len(cfg.Procs)}, nil
}

func (m *CondModel) seqMask() uint8 { return 1<<m.cfg.SeqBits - 1 }

// Init returns the initial state.
func (m *CondModel) Init() CondState {
	s := CondState{Seq: m.cfg.InitSeq & m.seqMask(), B: m.cfg.Budget}
	for p := range m.nprocs {
		s.P[p].Gen = 1
	}
	return s
}

func (m *CondModel) id(s *CondState, p int) uint8 { return s.P[p].Gen<<2 | uint8(p) }

// alive is lookup: a dead process is alive until the kernel marks it.
func (m *CondModel) alive(s *CondState, id uint8) bool {
	p := int(id & 3)
	if id>>2 == 0 || p >= m.nprocs {
		return false
	}
	q := &s.P[p]
	return q.Gen == id>>2 && !q.Marked && !q.Gone
}

// holderGone reports whether c.L's holder can be taken over.
func (m *CondModel) holderGone(s *CondState) bool { return !m.alive(s, s.M) }

// next returns goroutine p's state for its operation after op.
func (m *CondModel) next(p int, op uint8) condG {
	if int(op)+1 >= len(m.cfg.Procs[p]) {
		return condG{Op: op + 1, PC: cpcDone}
	}
	return condG{Op: op + 1}
}

func (m *CondModel) name(t int) string { return fmt.Sprintf("P%d", t) }

// wake is Cond.wake: FUTEX_WAKE(seq, 1) if sleepers is not 0; it calls emit
// with every outcome.
func (m *CondModel) wake(s *CondState, emit func(CondState, string)) {
	m.wakeN(s, 1, emit)
}

// wakeN is FUTEX_WAKE of up to k sleepers on seq, skipped when the
// sleepers count is 0 (Cond.wake; Broadcast wakes 2).
func (m *CondModel) wakeN(s *CondState, k int, emit func(CondState, string)) {
	if s.Sleepers == 0 {
		emit(*s, "sleepers 0: no wake")
		return
	}
	m.wakeWord(s, 0, k, emit)
}

func (m *CondModel) wakeWord(s *CondState, w, k int, emit func(CondState, string)) {
	if s.F.Sleepers(w) == 0 {
		emit(*s, "woke nobody")
		return
	}
	s.F.Wakes(w, k, func(woken uint16, after Futex) {
		n := *s
		n.F = after
		for t := range m.nprocs {
			if woken&(1<<t) != 0 {
				n.G[t].PC = cpcSleepersDec
			}
		}
		emit(n, wokeNote(woken, m.name))
	})
}

// Next appends every step enabled in s.
func (m *CondModel) Next(s *CondState, trace bool, steps []Step[CondState]) []Step[CondState] {
	e := emitter[CondState]{out: steps, trace: trace}
	for p := range m.nprocs {
		if !s.P[p].Dead && !s.P[p].Gone {
			m.step(s, p, &e)
		}
	}
	m.env(s, &e)
	return e.out
}

// registered reports whether goroutine p counts as a live waiter, for the
// ghost counters.
func (m *CondModel) forWaiters(n *CondState, me int, f func(g *condG)) {
	for q := range m.nprocs {
		if q != me && n.G[q].Reg && !n.P[q].Dead && !n.P[q].Gone {
			f(&n.G[q])
		}
	}
}

func (m *CondModel) step(s *CondState, p int, e *emitter[CondState]) {
	g := &s.G[p]
	actor := m.name(p)
	add := func(label string, n CondState, note string) {
		if n.G[p].PC == cpcGone {
			n.P[p].Gone = true // Close detaches the handle once its calls have left
		}
		e.add(actor, label, false, n, note)
	}
	me := m.id(s, p)
	mask := m.seqMask()
	switch g.PC {
	case cpcNextOp:
		n := *s
		ng := &n.G[p]
		op := m.cfg.Procs[p][g.Op]
		if s.P[p].Closed {
			ng.PC = cpcGone // the goroutine stops: its handle is closed
			n.P[p].Gone = true
			e.add(actor, "env.close_stop", true, n, "")
			return
		}
		switch op {
		case CondWait:
			if s.M == 0 {
				n.M = me
				*ng = condG{Op: g.Op, PC: cpcOwnRec}
				add("mutex.lock.fast_cas", n, "")
			} else if s.M != me && m.holderGone(s) {
				n.M = me
				*ng = condG{Op: g.Op, PC: cpcOwnRec}
				add("mutex.lock.takeover_cas", n, "")
			}
		case CondSignal:
			*ng = condG{Op: g.Op, PC: cpcSigGrant}
			m.step(&n, p, e)
		case CondBroadcast:
			*ng = condG{Op: g.Op, PC: cpcBcGrant}
			m.step(&n, p, e)
		}
	case cpcOwnRec:
		n := *s
		ng := &n.G[p]
		r := &n.Rec[p]
		if r.ID == me {
			ng.PC = cpcRegister
			m.step(&n, p, e)
			return
		}
		ng.RecN, ng.RecRet = r.N, cpcRegister
		*r = condRec{ID: me}
		ng.PC = cpcRegister
		if ng.RecN > 0 {
			ng.PC = cpcReclaimGlobal
		}
		add("cond.reclaim.record", n, e.notef("own record, %d dead", int(ng.RecN), 0))
	case cpcReclaimGlobal:
		n := *s
		ng := &n.G[p]
		if !m.cfg.BugNoReclaim {
			n.W -= min(n.W, g.RecN)
			n.S = min(n.S, n.W)
			if n.S > 0 {
				n.Seq = (n.Seq + 1) & mask
				if !m.cfg.BugPoolMix {
					n.S = n.W
				}
			}
		}
		ng.PC = g.RecRet
		if n.S > 0 && !m.cfg.BugNoReclaim {
			ng.PC = cpcReclaimWake
		}
		add("cond.reclaim.global", n, "")
	case cpcReclaimWake:
		n := *s
		n.G[p].PC = g.RecRet
		m.wake(&n, func(n CondState, note string) { add("cond.reclaim.wake", n, note) })
	case cpcRegister:
		n := *s
		ng := &n.G[p]
		if s.W >= m.cfg.MaxW {
			if !g.Scanned && !m.cfg.BugNoReclaim {
				ng.Scanned = true
				ng.Scan, ng.ScanRet, ng.PC = 0, cpcRegister, cpcScan
				m.step(&n, p, e)
				return
			}
			ng.PC = cpcPoll
			add("cond.wait.register", n, "full: poll")
			return
		}
		ng.S0, ng.Alone = s.Seq, s.S == s.W
		n.W++
		ng.Reg, ng.Sigs, ng.Rets, ng.Bcast = true, 0, 0, false
		ng.PC = cpcRecord
		add("cond.wait.register", n, "")
	case cpcRecord:
		n := *s
		n.Rec[p].N++
		n.G[p].PC = cpcUnlock
		add("cond.wait.record", n, "")
	case cpcUnlock:
		n := *s
		n.M = 0
		n.G[p].PC = cpcToken
		if g.Alone {
			n.G[p].PC = cpcSpin
		}
		add("mutex.unlock.fast_cas", n, "")
	case cpcSpin:
		n := *s
		ng := &n.G[p]
		ng.PC = cpcToken
		if s.Seq != g.S0 {
			ng.Elig, ng.Last, ng.PC = true, true, cpcTakeRec
		}
		add("cond.wait.spin", n, "")
	case cpcToken:
		n := *s
		ng := &n.G[p]
		ng.PC = cpcArm
		if s.P[p].Closed {
			ng.Err, ng.PC = errClosed, cpcLeaveRec
		}
		add("cond.wait.token", n, "")
	case cpcArm:
		n := *s
		n.G[p].Armed, n.G[p].PC = true, cpcLoad
		add("cond.wait.arm", n, "")
	case cpcLoad:
		n := *s
		ng := &n.G[p]
		ng.Elig = g.Elig || s.Seq != g.S0
		ng.St = s.Seq
		switch {
		case m.cfg.BugBroadcastNoGrant && m.released(s, g):
			// The old design: released by a Broadcast, it unregisters
			// without taking a signal.
			ng.Bad = !g.Bcast
			n.Rec[p].N--
			n.W = max(n.W, 1) - 1
			ng.Reg = false
			ng.PC = cpcDisarm
			e.add(actor, "bug.cond.broadcast_return", false, n, "")
			return
		case ng.Elig && s.S > 0:
			ng.PC, ng.Last, ng.Cancel = cpcTakeRec, false, false
		case s.S > 0 && g.Woken && !m.cfg.BugNoReclaim:
			ng.Scan, ng.ScanRet, ng.PC = 0, cpcYield, cpcScan
		case s.S > 0 && g.Woken:
			ng.PC = cpcYield
		default:
			ng.PC = cpcSleepersInc
		}
		add("cond.wait.load", n, "")
	case cpcTakeRec:
		n := *s
		n.Rec[p].N--
		n.G[p].PC = cpcTakeCas
		add("cond.take.record", n, "")
	case cpcTakeCas:
		n := *s
		ng := &n.G[p]
		if s.S == 0 || g.Last && s.S != 1 || s.W == 0 {
			ng.PC = cpcUnrecord
			add("cond.take.cas", n, "nothing to take")
			return
		}
		n.S--
		n.W--
		ng.Left, ng.Reg = n.S, false
		m.forWaiters(&n, p, func(h *condG) { h.Rets = min(h.Rets+1, 3) })
		switch {
		case g.Last:
			ng.PC = cpcRelock
		case g.Cancel:
			ng.Err = 0
			ng.PC = cpcDisarm
			if ng.Left > 0 {
				ng.PC = cpcCancelPass
			}
		default:
			ng.PC = cpcDisarm
			if ng.Left > 0 {
				ng.PC = cpcPass
			}
		}
		add("cond.take.cas", n, "")
	case cpcUnrecord:
		n := *s
		ng := &n.G[p]
		n.Rec[p].N++
		switch {
		case g.Last:
			ng.Last, ng.PC = false, cpcToken
		case g.Cancel:
			ng.Cancel, ng.PC = false, cpcLeaveRec
		default:
			ng.PC = cpcLoad
		}
		add("cond.take.unrecord", n, "")
	case cpcPass, cpcCancelPass, cpcPassOn:
		n := *s
		label := map[uint8]string{cpcPass: "cond.wait.pass", cpcCancelPass: "cond.wait.cancel_pass", cpcPassOn: "cond.wait.pass_on"}[g.PC]
		ng := &n.G[p]
		if g.PC == cpcPassOn {
			ng.Woken, ng.PC = false, cpcLoad
		} else {
			ng.PC = cpcDisarm
		}
		m.wake(&n, func(n CondState, note string) { add(label, n, note) })
	case cpcDisarm:
		n := *s
		n.G[p].Armed, n.G[p].PC = false, cpcTokenRel
		add("cond.wait.disarm", n, "")
	case cpcTokenRel:
		n := *s
		n.G[p].PC = m.afterSleep(g)
		add("cond.wait.token_release", n, "")
	case cpcScan:
		n := *s
		ng := &n.G[p]
		if int(g.Scan) >= m.nprocs {
			ng.PC = g.ScanRet
			m.step(&n, p, e)
			return
		}
		r := s.Rec[g.Scan]
		if r.N > 0 && r.ID != me && !m.alive(s, r.ID) {
			ng.V, ng.PC = g.Scan, cpcScanReclaim
			add("cond.scan.load", n, e.notef("slot %d dead", int(g.Scan), 0))
			return
		}
		ng.Scan++
		add("cond.scan.load", n, "")
	case cpcScanReclaim:
		n := *s
		ng := &n.G[p]
		ng.Scan++
		ng.PC = cpcScan
		r := &n.Rec[g.V]
		if r.N == 0 || r.ID == me || m.alive(s, r.ID) {
			add("cond.reclaim.record", n, "CAS failed")
			return
		}
		ng.RecN, ng.RecRet = r.N, cpcScan
		*r = condRec{}
		ng.PC = cpcReclaimGlobal
		add("cond.reclaim.record", n, "")
	case cpcYield:
		n := *s
		n.G[p].PC = cpcPassOn
		add("cond.wait.yield", n, "")
	case cpcSleepersInc:
		n := *s
		n.Sleepers++
		n.G[p].PC = cpcSleep
		add("cond.wait.sleepers_inc", n, "")
	case cpcSleep:
		n := *s
		ng := &n.G[p]
		switch {
		case s.P[p].Closed, g.Cancelled:
			ng.PC = cpcSleepersDec
			add("cond.wait.sleep", n, "returns at once: closed or cancelled")
		case s.Seq != g.St:
			ng.PC = cpcSleepersDec
			add("cond.wait.sleep", n, "EAGAIN")
		default:
			n.F.Sleep(p, 1|2)
			ng.PC = cpcAsleep
			add("cond.wait.sleep", n, "")
		}
	case cpcAsleep:
		// woken by another
	case cpcSleepersDec:
		n := *s
		ng := &n.G[p]
		n.Sleepers--
		switch {
		case s.P[p].Closed:
			ng.Err, ng.PC = errClosed, cpcLeaveRec
		case g.Cancelled:
			ng.Err, ng.PC = errCancel, cpcCancelLoad
		default:
			ng.Woken, ng.PC = true, cpcLoad
		}
		add("cond.wait.sleepers_dec", n, "")
	case cpcCancelLoad:
		n := *s
		ng := &n.G[p]
		ng.Elig = g.Elig || s.Seq != g.S0
		ng.PC = cpcLeaveRec
		if ng.Elig {
			ng.Cancel, ng.PC = true, cpcTakeRec
		}
		add("cond.wait.cancel_load", n, "")
	case cpcLeaveRec:
		n := *s
		n.Rec[p].N--
		n.G[p].PC = cpcLeaveCas
		add("cond.leave.record", n, "")
	case cpcLeaveCas:
		n := *s
		ng := &n.G[p]
		n.W = max(n.W, 1) - 1
		n.S = min(n.S, n.W)
		if (g.Elig || s.Seq != g.S0) && n.S > 0 {
			n.Seq = (n.Seq + 1) & mask
			if !m.cfg.BugPoolMix {
				n.S = n.W
			}
		}
		ng.Reg = false
		ng.PC = cpcLeaveDone
		if n.S > 0 {
			ng.PC = cpcLeaveWake
		}
		add("cond.leave.cas", n, "")
	case cpcLeaveWake:
		n := *s
		n.G[p].PC = cpcLeaveDone
		m.wake(&n, func(n CondState, note string) { add("cond.leave.wake", n, note) })
	case cpcLeaveDone:
		n := *s
		ng := &n.G[p]
		if g.Armed {
			ng.PC = cpcDisarm
		} else {
			ng.PC = m.afterSleep(g)
		}
		m.step(&n, p, e)
	case cpcRelock:
		n := *s
		ng := &n.G[p]
		if s.P[p].Closed {
			n.P[p].Gone = true
			ng.PC = cpcGone
			add("mutex.lock.fast_cas", n, "closed")
			return
		}
		if s.M == 0 {
			n.M = me
			ng.PC = cpcUserUnlock
			add("mutex.lock.fast_cas", n, "")
		} else if s.M != me && m.holderGone(s) {
			n.M = me
			ng.PC = cpcUserUnlock
			add("mutex.lock.takeover_cas", n, "")
		}
	case cpcUserUnlock:
		n := *s
		n.M = 0
		n.G[p] = m.next(p, g.Op)
		add("mutex.unlock.fast_cas", n, "")
	case cpcSigGrant, cpcBcGrant:
		bc := g.PC == cpcBcGrant
		label := "cond.signal.grant"
		if bc {
			label = "cond.broadcast.grant"
		}
		n := *s
		ng := &n.G[p]
		if s.S > 0 && !g.Scanned && !m.cfg.BugNoReclaim {
			// Every waiter granted (S ≥ W): the code always scans first.
			// Fewer signals than waiters: it scans at most once a
			// millisecond per process (Cond.scanDue), so either.
			sc := *s
			sc.G[p].Scanned = true
			sc.G[p].Scan, sc.G[p].ScanRet, sc.G[p].PC = 0, g.PC, cpcScan
			add(label, sc, "signals outstanding: scan")
			if s.S >= s.W {
				return
			}
		}
		m.forWaiters(&n, p, func(h *condG) {
			if bc {
				h.Bcast = true
			} else {
				h.Sigs = min(h.Sigs+1, 3)
			}
		})
		if s.S >= s.W && !(bc && m.cfg.BugBroadcastNoGrant && s.W > 0) {
			n.G[p] = m.next(p, g.Op)
			add(label, n, "nothing to grant")
			return
		}
		n.Seq = (n.Seq + 1) & mask
		switch {
		case !bc && (s.S == 0 || m.cfg.BugPoolMix):
			n.S++
			ng.PC = cpcSigWake
		case !bc:
			n.S = n.W // signals outstanding: grant to every waiter
			ng.PC = cpcSigWake
		case m.cfg.BugBroadcastNoGrant:
			n.Bcast, n.S = n.Seq, 0
			ng.PC = cpcBcWake
		default:
			n.S = n.W
			ng.PC = cpcBcWake
		}
		add(label, n, "")
	case cpcSigWake, cpcBcWake:
		label := "cond.signal.wake"
		if g.PC == cpcBcWake {
			label = "cond.broadcast.wake"
		}
		n := *s
		n.G[p] = m.next(p, g.Op)
		if g.PC == cpcBcWake && m.cfg.BugBroadcastNoGrant {
			n.F.WakeAll(0)
			for t := range m.nprocs {
				if s.F.Asleep(t) && !n.F.Asleep(t) {
					n.G[t].PC = cpcSleepersDec
				}
			}
			add(label, n, "woke all")
			return
		}
		k := 1
		if g.PC == cpcBcWake {
			k = 2 // Broadcast starts two chains of baton passes
		}
		m.wakeN(&n, k, func(n CondState, note string) { add(label, n, note) })
	}
}

// released is the old design's "a Broadcast since I registered".
func (m *CondModel) released(s *CondState, g *condG) bool {
	if !m.cfg.BugOrderedSeq {
		return g.Bcast
	}
	d := (s.Bcast - g.S0) & m.seqMask()
	return d != 0 && d < 1<<(m.cfg.SeqBits-1) // the sign of the difference
}

// afterSleep is where a goroutine goes once Cond.sleep has returned.
func (m *CondModel) afterSleep(g *condG) uint8 {
	if g.Err == errClosed {
		return cpcGone
	}
	return cpcRelock
}

func (m *CondModel) env(s *CondState, e *emitter[CondState]) {
	for p := range m.nprocs {
		q := &s.P[p]
		g := &s.G[p]
		if q.Dead && !q.Marked {
			// The robust list walk: the slot is dead to lookup, and a
			// sleeper on the baton is woken if the thread had armed it.
			n := *s
			n.P[p].Marked = true
			if g.Armed {
				m.wakeWord(&n, 1, 1, func(n CondState, note string) { e.add("kernel", "kernel.robust", false, n, note) })
			} else {
				e.add("kernel", "kernel.robust", false, n, "")
			}
		}
		if q.Dead || q.Gone || g.PC == cpcDone {
			if g.PC == cpcDone && !q.Dead && !q.Gone && s.B.Close > 0 {
				n := *s
				n.B.Close--
				n.P[p].Closed, n.P[p].Gone = true, true
				e.add("env", "env.close", true, n, m.name(p))
			}
			if q.Dead && q.Marked && s.B.Attach > 0 && int(q.Gen) < 7 {
				n := *s
				n.B.Attach--
				n.P[p] = condProc{Gen: q.Gen + 1}
				n.G[p] = condG{}
				e.add("env", "env.restart", true, n, m.name(p))
			}
			continue
		}
		inWindow := g.PC == cpcRecord || g.PC == cpcTakeCas || g.PC == cpcUnrecord || g.PC == cpcLeaveCas || g.PC == cpcReclaimGlobal
		signalling := g.PC == cpcSigWake || g.PC == cpcBcWake
		if s.B.Kill > 0 && (m.cfg.KillSignaller || !signalling) && (m.cfg.KillInWindow || !inWindow) {
			n := *s
			n.B.Kill--
			n.P[p].Dead = true
			n.F.Unqueue(p)
			e.add("env", "env.kill", true, n, m.name(p))
		}
		inWait := m.cfg.Procs[p][g.Op] == CondWait && g.PC >= cpcOwnRec && g.PC <= cpcLeaveDone
		if s.B.Cancel > 0 && inWait && !g.Cancelled {
			n := *s
			n.B.Cancel--
			n.G[p].Cancelled = true
			if s.F.Asleep(p) {
				n.F.Unqueue(p)
				n.G[p].PC = cpcSleepersDec
			}
			e.add("env", "env.cancel", true, n, m.name(p))
		}
		if s.B.Close > 0 && !q.Closed {
			n := *s
			n.B.Close--
			n.P[p].Closed = true
			if s.F.Asleep(p) {
				n.F.Unqueue(p)
				n.G[p].PC = cpcSleepersDec
			}
			e.add("env", "env.close", true, n, m.name(p))
		}
	}
}

// Check checks the invariants of s.
func (m *CondModel) Check(s *CondState) error {
	// The design before this one (BugBroadcastNoGrant) let signals
	// outnumber waiters: that was bug 1's state.
	if s.S > s.W && !m.cfg.BugBroadcastNoGrant || s.W > m.cfg.MaxW {
		return Fail("counts", "signals %d, waiters %d (max %d)", s.S, s.W, m.cfg.MaxW)
	}
	live := uint8(0)
	for p := range m.nprocs {
		if s.G[p].Reg && !s.P[p].Dead && !s.P[p].Gone {
			live++
		}
	}
	for p := range m.nprocs {
		g := &s.G[p]
		if g.Bad {
			return Fail("wrap", "P%d returned for a Broadcast that did not happen", p)
		}
		if g.PC == cpcPoll && !s.P[p].Dead && live < m.cfg.MaxW {
			return Fail("saturated", "P%d finds waiters full (%d) with %d live waiters registered", p, s.W, live)
		}
	}
	return nil
}

// Stuck reports lost wake-ups where only the environment can move.
func (m *CondModel) Stuck(s *CondState) error {
	for p := range m.nprocs {
		g := &s.G[p]
		if !s.F.Asleep(p) || s.P[p].Dead || s.P[p].Gone {
			continue
		}
		switch {
		case s.S > 0 && (g.Elig || s.Seq != g.S0):
			return Fail("lost-wakeup", "P%d sleeps, eligible, with %d signals outstanding", p, s.S)
		case g.Bcast:
			return Fail("lost-wakeup", "P%d sleeps through a Broadcast sent while it waited", p)
		case g.Sigs > g.Rets:
			return Fail("lost-wakeup", "P%d sleeps: %d Signals sent while it waited, %d signals taken since", p, g.Sigs, g.Rets)
		}
	}
	return nil
}

// Format describes s on one line.
func (m *CondModel) Format(s *CondState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d W=%d S=%d sl=%d", s.Seq, s.W, s.S, s.Sleepers)
	if m.cfg.BugBroadcastNoGrant {
		fmt.Fprintf(&b, " bcast=%d", s.Bcast)
	}
	if s.M != 0 {
		fmt.Fprintf(&b, " M=P%dg%d", s.M&3, s.M>>2)
	}
	b.WriteString(" | rec")
	for p := range m.nprocs {
		fmt.Fprintf(&b, " %d:g%d×%d", p, s.Rec[p].ID>>2, s.Rec[p].N)
	}
	for p := range m.nprocs {
		g, q := &s.G[p], &s.P[p]
		fmt.Fprintf(&b, " | P%d g%d op%d pc%d", p, q.Gen, g.Op, g.PC)
		for _, f := range []struct {
			on bool
			s  string
		}{{q.Dead, "dead"}, {q.Marked, "marked"}, {q.Closed, "closed"}, {q.Gone, "gone"}, {s.F.Asleep(p), "asleep"}, {g.Reg, fmt.Sprintf("reg@%d", g.S0)}, {g.Elig, "elig"}, {g.Armed, "armed"}, {g.Cancelled, "cancelled"}, {g.Bcast, "bcast"}} {
			if f.on {
				b.WriteString(" " + f.s)
			}
		}
		if g.Sigs > 0 || g.Rets > 0 {
			fmt.Fprintf(&b, " sigs%d rets%d", g.Sigs, g.Rets)
		}
	}
	fmt.Fprintf(&b, " | budget k%d c%d x%d a%d", s.B.Kill, s.B.Cancel, s.B.Close, s.B.Attach)
	return b.String()
}
