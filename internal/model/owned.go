package model

import (
	"fmt"
	"strings"
)

// OwnedModel is the bookkeeping of owned permits (semaphore.go, "Owned
// permits", labels "osem."): the 64-bit state word (count, the table bit T
// and the holder), the held entries, the internal lock and its journal.
// Each process has one goroutine; kills come at every step, and the
// kernel's robust-list walk frees the internal lock of a dead holder, whose
// next locker replays the journal. A Close comes between calls or in a
// fast path (it waits for the locked parts, inside Segment.enter, to
// leave): the identity is then dead to the others, and the goroutine's
// fast paths may still make their CAS, as calls made before the Close.
//
// It does not model the sleeps: an Acquire that finds too few fails, as
// TryAcquire does. The sleep and wake protocol on the value word is
// SemaphoreModel's (its Counting configuration has the same one-CAS take
// and post, and its owned one the locked slow path). What this model
// checks is that the permits are never duplicated or lost whatever instant
// a process dies at:
//
//   - every state: the count never exceeds the total, and the count plus
//     what every process truly holds (a ghost, dead processes included
//     until their permits are returned) is the total;
//   - every state in which the internal lock is free (after the journal's
//     replay, if its holder died): what the state word and the entries
//     record for each process is what it truly holds;
//   - a Release is refused (ErrNotHeld) only if the process holds too few;
//   - a reclaim (TryAcquire's reclaimDead) returns every permit of every
//     process that was dead when it took the lock.
//
// Identities never repeat in the code (see Identity), so the model gives
// each process its identity, p+1, and has no newcomers.
type OwnedModel struct {
	cfg   OwnedConfig
	nproc int
}

// An OwnedOp is one call of an OwnedModel script.
type OwnedOp struct {
	Kind uint8 // OAcquire, ORelease, OReclaim
	N    uint8
}

// The calls of OwnedModel's scripts.
const (
	OAcquire uint8 = iota + 1 // Acquire(N), failing if there are too few
	ORelease                  // Release(N)
	OReclaim                  // TryAcquire's reclaimDead, under the internal lock
)

// OwnedConfig is one configuration of the OwnedModel.
type OwnedConfig struct {
	Procs  [][]OwnedOp
	Total  uint8
	Budget Budget // Kill only

	// BugSpillNoJournal: a spill stores the holder's entry without
	// journaling it. A spiller killed between that store and its CAS
	// leaves the entry counting permits the holder also holds in holder
	// mode: they are counted twice.
	BugSpillNoJournal bool
	// BugReplaySpill: the journal's replay restores a spill's entry
	// whether or not its CAS happened (it ignores T). A spiller killed
	// after the CAS, before it cleared the journal, has the holder's
	// permits, now in table mode, erased from its entry.
	BugReplaySpill bool
	// BugReclaimTableOnly is reclaimDead as the code had it before holder
	// mode: it scans the held entries only. The permits of a holder that
	// died in holder mode are never returned.
	BugReclaimTableOnly bool
}

const (
	owStart    uint8 = iota // the op's fast path (osem.take.cas / osem.give.cas)
	owLock                  // osem.lock
	owReplay                // osem.replay
	owBody                  // the locked part: take's loop, release's check, reclaimDead's scan
	owSpillCAS              // osem.spill.cas
	owSpillEnd              // osem.spill.done
	owSet                   // osem.table.set
	owTDone                 // osem.table.done
	owGive                  // osem.give.cas under the lock
	owUpdate                // osem.table.update (release)
	owReclaimE              // osem.table.update (reclaim of entry th.e)
	owUnspill               // osem.unspill
	owUnlock                // osem.leave
	owDone
)

type othread struct {
	pc, op uint8
	dead   bool
	closed bool  // its Segment was closed: dead to the others, but a fast path may still run
	ok     bool  // the op's result so far
	c      uint8 // spill: the count it saw; update: the count it sets
	h      uint8 // spill: the holder it saw
	e      uint8 // reclaim: the entry it looks at next
	deadAt uint8 // reclaim: the processes dead when it took the lock
}

// gone reports whether the thread's identity is dead: killed, or its
// Segment closed (lookup's alive is false for both).
func (th *othread) gone() bool { return th.dead || th.closed }

type oentry struct{ id, count uint8 }

// OwnedState is a state of the OwnedModel.
type OwnedState struct {
	count  uint8
	table  bool
	holder uint8 // p+1, or 0
	entry  [maxProcs]oentry
	ilock  uint8 // p+1 holding the internal lock, or 0
	died   bool  // the lock's last holder died: the next locker replays
	jvalid bool
	jkind  uint8 // semJUpdate 0, semJSpill 1
	jslot  uint8
	jold   oentry
	jvalue uint8
	P      [maxProcs]othread
	kills  uint8
	closes uint8
	// ghosts
	g    [maxProcs]uint8 // permits each process truly holds
	jset bool            // the journaled update's count store happened
	jgp  uint8           // the process whose ghost that store changed
	jg   uint8           // its ghost before
}

// NewOwnedModel checks cfg and returns its model.
func NewOwnedModel(cfg OwnedConfig) (*OwnedModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > maxProcs || cfg.Total == 0 || cfg.Total > 7 {
		return nil, fmt.Errorf("model: %d processes (1 to %d), total %d (1 to 7)", len(cfg.Procs), maxProcs, cfg.Total)
	}
	return &OwnedModel{cfg: cfg, nproc: len(cfg.Procs)}, nil
}

// Init returns the state before any call: every permit available.
func (m *OwnedModel) Init() OwnedState {
	s := OwnedState{count: m.cfg.Total}
	for p := range maxProcs {
		if p >= m.nproc || len(m.cfg.Procs[p]) == 0 {
			s.P[p].pc = owDone
		}
	}
	return s
}

func (m *OwnedModel) name(p int) string { return procName[p] + ".G0" }

// Steps lists the code steps of the model.
func (m *OwnedModel) Steps() []string {
	return []string{"osem.take.cas", "osem.give.cas", "osem.lock", "osem.replay", "osem.spill.entry", "osem.spill.cas",
		"osem.spill.done", "osem.reclaim.holder", "osem.reclaim.entry", "osem.table.update", "osem.table.set",
		"osem.table.done", "osem.release.check", "osem.unspill", "osem.leave"}
}

// replay is the journal's replay by the locker after a death (enter).
func (m *OwnedModel) replay(s *OwnedState) {
	if !s.jvalid {
		return
	}
	restore := true
	if s.jkind == 1 {
		restore = !s.table || m.cfg.BugReplaySpill
	} else {
		s.count = s.jvalue
		if s.jset {
			s.g[s.jgp] = s.jg
		}
	}
	if restore {
		s.entry[s.jslot] = s.jold
	}
	s.jvalid, s.jset = false, false
}

// recorded returns what the state records process p as holding: in holder
// mode, every permit not available if p is the holder; and its entry.
func (m *OwnedModel) recorded(s *OwnedState, p int) uint8 {
	var n uint8
	if !s.table && s.holder == uint8(p+1) {
		n = m.cfg.Total - s.count
	}
	if e := s.entry[p]; e.id == uint8(p+1) {
		n += e.count
	}
	return n
}

func (m *OwnedModel) Next(s *OwnedState, trace bool, steps []Step[OwnedState]) []Step[OwnedState] {
	e := &emitter[OwnedState]{out: steps, trace: trace}
	for p := range m.nproc {
		m.thread(s, p, e)
	}
	for p := range m.nproc {
		if s.P[p].dead || s.kills >= m.cfg.Budget.Kill {
			continue
		}
		ns := *s
		ns.kills++
		ns.P[p].dead = true
		note := ""
		if ns.ilock == uint8(p+1) {
			ns.ilock, ns.died = 0, true
			note = "the kernel frees the internal lock"
		}
		e.add(procName[p], "env.kill", true, ns, note)
	}
	// A Close waits for the calls inside Segment.enter (the locked parts)
	// to leave, then marks the identity dead; the fast paths run outside
	// enter, so a goroutine between calls or in a fast path may still make
	// its CAS as a dead identity, and then reports ErrClosed.
	for p := range m.nproc {
		th := s.P[p]
		if th.gone() || th.pc != owStart || s.closes >= m.cfg.Budget.Close {
			continue
		}
		ns := *s
		ns.closes++
		ns.P[p].closed = true
		e.add(procName[p], "env.close", true, ns, "")
	}
	return e.out
}

func (m *OwnedModel) finish(ns *OwnedState, p int) {
	th := &ns.P[p]
	th.op++
	th.pc, th.ok, th.e = owStart, false, 0
	if int(th.op) >= len(m.cfg.Procs[p]) {
		th.pc = owDone
	}
}

func (m *OwnedModel) thread(s *OwnedState, p int, e *emitter[OwnedState]) {
	th := s.P[p]
	if th.dead || th.pc == owDone {
		return
	}
	ns := *s
	nt := &ns.P[p]
	me := uint8(p + 1)
	op := m.cfg.Procs[p][th.op]
	total := m.cfg.Total
	add := func(label, note string) { e.add(m.name(p), label, false, ns, note) }
	// take is take's CAS: n permits to this process in holder mode.
	take := func() {
		ns.count -= op.N
		ns.holder = me
		ns.g[p] += op.N
	}
	// give is give's CAS: the holder returns n permits.
	give := func() {
		ns.count += op.N
		ns.holder = me
		if ns.count == total {
			ns.holder = 0
		}
		ns.g[p] -= op.N
	}
	// The conditions of the take and give CASes (osem.take.cas,
	// osem.give.cas), wherever they are made.
	canTake := !s.table && s.count >= op.N && (s.holder == 0 || s.holder == me)
	canGive := !s.table && s.holder == me && op.N <= total-s.count
	if th.closed { // at owStart: only the fast paths, then ErrClosed
		switch {
		case op.Kind == OAcquire && canTake:
			take()
			for q := range m.nproc {
				ns.P[q].deadAt &^= 1 << p // a take after the reclaimer's look
			}
			m.finish(&ns, p)
			add("osem.take.cas", "took, as a closed identity")
		case op.Kind == ORelease && canGive:
			give()
			m.finish(&ns, p)
			add("osem.give.cas", "released, as a closed identity")
		default:
			m.finish(&ns, p)
			label := "osem.take.cas"
			if op.Kind == ORelease {
				label = "osem.give.cas"
			}
			add(label, "fast path fails: ErrClosed")
		}
		return
	}
	switch th.pc {
	case owStart:
		switch op.Kind {
		case OAcquire:
			if canTake {
				take()
				m.finish(&ns, p)
				add("osem.take.cas", "took")
				return
			}
			nt.pc = owLock
			add("osem.take.cas", "fast path fails")
		case ORelease:
			if canGive {
				give()
				m.finish(&ns, p)
				add("osem.give.cas", "released")
				return
			}
			nt.pc = owLock
			add("osem.give.cas", "fast path fails")
		case OReclaim:
			nt.pc = owLock
			m.lock(s, &ns, p, e)
		}
	case owLock:
		m.lock(s, &ns, p, e)
	case owReplay:
		m.replay(&ns)
		nt.pc = owBody
		add("osem.replay", "")
	case owBody:
		m.body(s, &ns, p, op, e)
	case owSpillCAS:
		if !s.table && s.count == th.c && s.holder == th.h {
			ns.table, ns.holder = true, 0
			add0 := "T set"
			nt.pc = owSpillEnd
			add("osem.spill.cas", add0)
			return
		}
		ns.entry[th.h-1] = ns.jold
		nt.pc = owSpillEnd
		add("osem.spill.cas", "CAS fails: entry restored")
	case owSpillEnd:
		ns.jvalid = false
		nt.pc = owBody
		add("osem.spill.done", "")
	case owSet:
		ns.jset, ns.jgp, ns.jg = true, ns.jslot, ns.g[ns.jslot]
		switch op.Kind {
		case OAcquire:
			ns.g[p] += op.N
		case ORelease:
			ns.g[p] -= op.N
		case OReclaim:
			ns.g[ns.jslot] = 0
		}
		ns.count = th.c
		nt.pc = owTDone
		add("osem.table.set", e.notef("count %d", int(th.c), 0))
	case owTDone:
		ns.jvalid, ns.jset = false, false
		nt.pc = owUnspill
		if op.Kind == OReclaim {
			nt.pc = owBody
			nt.e++
		}
		nt.ok = true
		add("osem.table.done", "")
	case owGive:
		give()
		nt.pc, nt.ok = owUnspill, true
		add("osem.give.cas", "released, under the lock")
	case owUpdate:
		held := s.entry[p].count
		ns.jvalid, ns.jkind, ns.jslot, ns.jold, ns.jvalue = true, 0, uint8(p), s.entry[p], s.count
		ns.entry[p] = oentry{me, held - op.N}
		if held == op.N {
			ns.entry[p].id = 0
		}
		nt.c = s.count + op.N
		nt.pc = owSet
		add("osem.table.update", "release: entry")
	case owReclaimE:
		x := th.e
		ns.jvalid, ns.jkind, ns.jslot, ns.jold, ns.jvalue = true, 0, x, s.entry[x], s.count
		ns.entry[x] = oentry{}
		nt.c = min(s.count+s.entry[x].count, total)
		nt.pc = owSet
		add("osem.table.update", e.notef("reclaim: %s's entry cleared", int(x), 0))
	case owUnspill:
		note := ""
		if s.table && s.count == total {
			ns.table = false
			note = "every permit available: T cleared"
		}
		nt.pc = owUnlock
		add("osem.unspill", note)
	case owUnlock:
		ns.ilock = 0
		if op.Kind == OReclaim {
			for q := range m.nproc {
				if th.deadAt&(1<<q) != 0 && ns.g[q] != 0 {
					ns.P[p].pc = owDone
					e.add(m.name(p), "osem.leave", false, ns, fmt.Sprintf("violation: P%d died holding %d, not returned", q, ns.g[q]))
					return
				}
			}
		}
		m.finish(&ns, p)
		add("osem.leave", "")
	}
}

// lock is osem.lock: the internal lock, if free.
func (m *OwnedModel) lock(s, ns *OwnedState, p int, e *emitter[OwnedState]) {
	if s.ilock != 0 {
		return // held by a live process: it moves
	}
	nt := &ns.P[p]
	ns.ilock = uint8(p + 1)
	nt.pc = owBody
	note := ""
	if s.died {
		ns.died = false
		nt.pc = owReplay
		note = "its last holder died"
	}
	for q := range m.nproc {
		if s.P[q].gone() {
			nt.deadAt |= 1 << q
		}
	}
	e.add(m.name(p), "osem.lock", false, *ns, note)
}

// body is the part under the internal lock before leave.
func (m *OwnedModel) body(s, ns *OwnedState, p int, op OwnedOp, e *emitter[OwnedState]) {
	nt := &ns.P[p]
	th := s.P[p]
	me := uint8(p + 1)
	total := m.cfg.Total
	add := func(label, note string) { e.add(m.name(p), label, false, *ns, note) }
	switch op.Kind {
	case OAcquire: // take's loop
		switch {
		case s.count < op.N:
			nt.pc = owUnlock
			m.unspillFrom(s, ns, p, e, "too few")
		case s.table:
			held := uint8(0)
			if s.entry[p].id == me {
				held = s.entry[p].count
			}
			ns.jvalid, ns.jkind, ns.jslot, ns.jold, ns.jvalue = true, 0, uint8(p), s.entry[p], s.count
			ns.entry[p] = oentry{me, held + op.N}
			nt.c = s.count - op.N
			nt.pc = owSet
			add("osem.table.update", "take: entry")
		case s.holder == 0 || s.holder == me:
			ns.count -= op.N
			ns.holder = me
			ns.g[p] += op.N
			nt.pc, nt.ok = owUnspill, true
			add("osem.take.cas", "took, under the lock")
		case s.P[s.holder-1].gone():
			h := s.holder - 1
			m.reclaimHolder(ns)
			add("osem.reclaim.holder", e.notef("P%d dead: its permits returned", int(h), 0))
		default:
			h := s.holder - 1
			if !m.cfg.BugSpillNoJournal {
				ns.jvalid, ns.jkind, ns.jslot, ns.jold = true, 1, h, s.entry[h]
			}
			ns.jold = s.entry[h] // the code restores from the journal's words, written or not
			ns.entry[h] = oentry{s.holder, total - s.count}
			nt.c, nt.h = s.count, s.holder
			nt.pc = owSpillCAS
			add("osem.spill.entry", e.notef("P%d's entry := %d", int(h), int(total-s.count)))
		}
	case ORelease:
		var held uint8
		if !s.table {
			if s.holder == me {
				held = total - s.count
			}
			nt.pc = owGive
		} else {
			if s.entry[p].id == me {
				held = s.entry[p].count
			}
			nt.pc = owUpdate
		}
		if held < op.N {
			nt.pc = owUnspill
			note := "ErrNotHeld"
			if s.g[p] >= op.N {
				note = fmt.Sprintf("violation: ErrNotHeld, holding %d", s.g[p])
				nt.pc = owDone
			}
			add("osem.release.check", note)
			return
		}
		add("osem.release.check", "")
	case OReclaim: // reclaimDead
		if !s.table && !m.cfg.BugReclaimTableOnly {
			if h := s.holder; h != 0 && h != me && s.P[h-1].gone() {
				m.reclaimHolder(ns)
				add("osem.reclaim.holder", e.notef("P%d dead: its permits returned", int(h-1), 0))
				return
			}
		}
		if s.table {
			for x := th.e; int(x) < m.nproc; x++ {
				if en := s.entry[x]; en.count != 0 && en.id != me && s.P[en.id-1].gone() {
					nt.e, nt.pc = x, owReclaimE
					add("osem.reclaim.entry", e.notef("P%d's entry: dead", int(en.id-1), 0))
					return
				}
			}
		}
		nt.ok = true
		m.unspillFrom(s, ns, p, e, "nothing to reclaim")
	}
}

// unspillFrom is osem.unspill taken straight from the locked part.
func (m *OwnedModel) unspillFrom(s, ns *OwnedState, p int, e *emitter[OwnedState], why string) {
	if s.table && s.count == m.cfg.Total {
		ns.table = false
		why += ": T cleared"
	}
	ns.P[p].pc = owUnlock
	e.add(m.name(p), "osem.unspill", false, *ns, why)
}

// reclaimHolder is osem.reclaim.holder: a dead holder's permits, every one
// not available, returned.
func (m *OwnedModel) reclaimHolder(ns *OwnedState) {
	ns.g[ns.holder-1] = 0
	ns.count, ns.holder = m.cfg.Total, 0
}

// Check fails if permits are duplicated or lost, or if the recorded
// holdings differ from the true ones once the internal lock is free.
func (m *OwnedModel) Check(s *OwnedState) error {
	total := m.cfg.Total
	for p := range m.nproc {
		if s.P[p].pc == owDone && !s.P[p].dead && int(s.P[p].op) < len(m.cfg.Procs[p]) {
			return Fail("owned", "%s: a Release refused although it held enough, or a reclaim that left a dead process's permits out", m.name(p))
		}
	}
	sum := int(s.count)
	for p := range m.nproc {
		sum += int(s.g[p])
	}
	if s.count > total || sum != int(total) {
		return Fail("conservation", "count %d and holdings %v make %d permits, not the total %d", s.count, s.g[:m.nproc], sum, total)
	}
	if s.ilock != 0 {
		return nil
	}
	r := *s
	if r.died {
		m.replay(&r)
	}
	rsum := int(r.count)
	for p := range m.nproc {
		n := m.recorded(&r, p)
		rsum += int(n)
		if n != r.g[p] {
			return Fail("bookkeeping", "%s holds %d, the state records %d", m.name(p), r.g[p], n)
		}
	}
	if rsum != int(total) {
		return Fail("bookkeeping", "the state records %d permits, not the total %d", rsum, total)
	}
	return nil
}

// Stuck fails if a live goroutine has not finished: nothing here blocks
// but the internal lock, whose holder always moves or dies.
func (m *OwnedModel) Stuck(s *OwnedState) error {
	for p := range m.nproc {
		if !s.P[p].dead && s.P[p].pc != owDone {
			return Fail("deadlock", "%s blocked at pc %d", m.name(p), s.P[p].pc)
		}
	}
	return nil
}

// Format describes s on one line.
func (m *OwnedModel) Format(s *OwnedState) string {
	var b strings.Builder
	mode := "holder mode,"
	if s.table {
		mode = "table mode,"
	}
	fmt.Fprintf(&b, "count %d %s holder %d | entries", s.count, mode, int(s.holder)-1)
	for p := range m.nproc {
		fmt.Fprintf(&b, " %d:%d", int(s.entry[p].id)-1, s.entry[p].count)
	}
	fmt.Fprintf(&b, " | lock %d died %v journal %v kind %d slot %d |", int(s.ilock)-1, s.died, s.jvalid, s.jkind, s.jslot)
	for p := range m.nproc {
		th := s.P[p]
		life := ""
		if th.dead {
			life = " dead"
		}
		fmt.Fprintf(&b, " %s op %d pc %d holds %d%s;", procName[p], th.op, th.pc, s.g[p], life)
	}
	return b.String()
}
