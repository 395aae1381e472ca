package model

import (
	"fmt"
	"strings"
)

// The object-deletion protocol (deletion.go, Segment.object, Delete, the
// allocator): one directory entry, two extents of heap, one free-table word,
// and processes that open, use and drop handles on the entry's object,
// delete it, and create it again. The model's steps are the code's
// (`// step: obj.…`); "user.use" stands for any access of the handle to
// the object's memory, a fast path included.
//
// The check: a handle that is open (its open returned, it has not been
// dropped) in a live process never has its extent hold another object than
// the one it opened, and the ready entry's extent holds the entry's object.
// Each extent carries, as a ghost, the generation of the object allocated
// in it.

// An ObjOp is one operation of a process's script.
type ObjOp uint8

const (
	OOpen   ObjOp = iota // find the object (NewMutex of an existing name)
	OUse                 // use the handle's memory, if the open succeeded
	ODrop                // drop the handle, if it is open
	ODelete              // Segment.Delete
	OCreate              // create the object again after a Delete
)

// ObjConfig is one configuration of the deletion model.
type ObjConfig struct {
	Procs  [][]ObjOp // one goroutine per process
	Budget Budget    // Kill and Close; Cancel and Attach are not modelled

	// BugNoRecheck: the open pins the extent and uses the object without
	// checking that the entry is still ready with the generation it read
	// (obj.open.recheck). A Delete and a reuse of the extent between its
	// read of the entry and its pin give it the new object.
	BugNoRecheck bool
	// BugNoPinCheck: the allocator takes a free extent without looking at
	// its pins (obj.alloc.check_pins): a handle still open on the deleted
	// object then shares its memory with the new one.
	BugNoPinCheck bool
	// BugDeleteNoGen: Delete marks the entry deleted with a CAS of its
	// state alone, not of state and generation (obj.delete.mark). A Delete
	// that read the entry (obj.delete.load_entry), and then another Delete
	// and a create of the name, mark the new object deleted and free the
	// old object's extent a second time; two objects then share it.
	// (TestDeleteRandomKills found it in the code.)
	BugDeleteNoGen bool
}

// Entry states of the model.
const (
	oeReady   uint8 = iota
	oeDeleted       // keeps its name: a creator of the name claims it again
	oeClaimed       // by the process in Claimer
	oeDead          // its claimer died before publishing
)

// Program counters.
const (
	opcStart   uint8 = iota // the op's first step
	opcPin                  // open: obj.open.pin
	opcRecheck              // open: obj.open.recheck
	opcUnpin                // open: obj.open.unpin, then probe again
	opcMark                 // delete: obj.delete.mark
	opcFree                 // delete: obj.delete.free
	opcCheck                // create: obj.alloc.check_pins
	opcTake                 // create: obj.alloc.take
	opcBump                 // create: obj.alloc.bump
	opcCPin                 // create: obj.open.pin, before publishing
	opcPublish              // create: obj.create.publish
	opcDone                 // the script is over
)

// Process lives.
const (
	olAlive uint8 = iota
	olDead
	olClosed
)

// An ObjProc is one process (of one goroutine).
type ObjProc struct {
	Op, PC   uint8
	Life     uint8
	Open     bool  // holds an open handle
	Pinned   bool  // its bit is set for the handle it holds or is opening
	Gen, Ext uint8 // the object the handle is (being) opened on
	Tmp      uint8 // delete: the extent to free; create: the extent taken
	DGen     uint8 // delete: the generation read
	TmpW     uint8 // create: the free word taken from
}

// ObjState is the state of the deletion model.
type ObjState struct {
	EntSt, EntGen, EntExt, Claimer uint8

	Pins  [3]uint8 // per extent: bit p set while process p pins it
	Occ   [3]uint8 // ghost: generation of the object allocated in the extent, 0 none
	Used  [3]bool  // the extent was ever allocated (the bump pointer passed it)
	FreeW [2]uint8 // the free table's words: 0 empty, else extent+1

	P      [2]ObjProc
	Kills  uint8
	Closes uint8
}

// ObjModel is the deletion protocol as a Model.
type ObjModel struct{ cfg ObjConfig }

// NewObjModel returns the model of cfg: two processes, each running a
// script.
func NewObjModel(cfg ObjConfig) (*ObjModel, error) {
	if len(cfg.Procs) != 2 {
		return nil, fmt.Errorf("the deletion model has 2 processes, not %d", len(cfg.Procs))
	}
	return &ObjModel{cfg}, nil
}

// Init returns the state in which the object exists (generation 1, in
// extent 0) and no process has a handle.
func (m *ObjModel) Init() ObjState {
	return ObjState{EntSt: oeReady, EntGen: 1, Occ: [3]uint8{1, 0, 0}, Used: [3]bool{true, false, false}}
}

func (m *ObjModel) name(p int) string { return procName[p] + ".G0" }

// nextGen is the entry's generation after gen: 2 bits, 0 skipped.
func nextGen(gen uint8) uint8 {
	if gen = (gen + 1) & 3; gen == 0 {
		gen = 1
	}
	return gen
}

// pinned reports whether a live process pins extent x.
func (s *ObjState) pinned(x uint8) bool {
	for p := range 2 {
		if s.Pins[x]&(1<<p) != 0 && s.P[p].Life == olAlive {
			return true
		}
	}
	return false
}

// Next appends every enabled step.
func (m *ObjModel) Next(s *ObjState, trace bool, steps []Step[ObjState]) []Step[ObjState] {
	e := &emitter[ObjState]{out: steps, trace: trace}
	for p := range 2 {
		m.thread(s, p, e)
	}
	m.env(s, e)
	return e.out
}

func (m *ObjModel) finish(ns *ObjState, p int) {
	np := &ns.P[p]
	np.PC = opcStart
	np.Op++
	if int(np.Op) >= len(m.cfg.Procs[p]) {
		np.PC = opcDone
	}
}

func (m *ObjModel) thread(s *ObjState, p int, e *emitter[ObjState]) {
	th := s.P[p]
	if th.PC == opcDone || th.Life != olAlive {
		return
	}
	ns := *s
	np := &ns.P[p]
	bit := uint8(1) << p
	add := func(label, note string) { e.add(m.name(p), label, false, ns, note) }
	op := m.cfg.Procs[p][th.Op]
	switch th.PC {
	case opcStart:
		switch op {
		case OOpen:
			if th.Open {
				m.finish(&ns, p)
				add("obj.open.load_entry", "already open")
				return
			}
			switch s.EntSt {
			case oeReady:
				np.Gen, np.Ext, np.PC = s.EntGen, s.EntExt, opcPin
				add("obj.open.load_entry", e.notef("ready, gen %d, extent %d", int(s.EntGen), int(s.EntExt)))
			case oeDeleted, oeDead:
				m.finish(&ns, p)
				add("obj.open.load_entry", "no such object")
			case oeClaimed:
				if s.P[s.Claimer].Life == olAlive {
					return // waits for the creator, who moves
				}
				// The code's waitClaim: the name is whole (the claim
				// was of a deleted entry, or gen was set), so the entry
				// is deleted again.
				ns.EntSt = oeDeleted
				m.finish(&ns, p)
				add("obj.open.load_entry", "claimer dead: entry deleted, no such object")
			}
		case OUse:
			m.finish(&ns, p)
			note := ""
			if th.Open && s.Occ[th.Ext] != th.Gen {
				note = "uses another object's memory"
			}
			add("user.use", note)
		case ODrop:
			if th.Open {
				ns.Pins[th.Ext] &^= bit
				np.Open, np.Pinned = false, false
			}
			m.finish(&ns, p)
			add("obj.drop.unpin", "")
		case ODelete:
			switch {
			case s.EntSt == oeReady:
				np.DGen, np.Tmp, np.PC = s.EntGen, s.EntExt, opcMark
				add("obj.delete.load_entry", e.notef("ready, gen %d, extent %d", int(s.EntGen), int(s.EntExt)))
			case s.EntSt == oeClaimed && s.P[s.Claimer].Life == olAlive:
				return // waits for the creator, who moves
			case s.EntSt == oeClaimed:
				ns.EntSt = oeDeleted
				m.finish(&ns, p)
				add("obj.delete.load_entry", "claimer dead: entry deleted, no such object")
			default:
				m.finish(&ns, p)
				add("obj.delete.load_entry", "no such object")
			}
		case OCreate:
			if s.EntSt != oeDeleted {
				m.finish(&ns, p)
				add("obj.create.claim", "not deleted: nothing to create")
				return
			}
			ns.EntSt, ns.Claimer, ns.EntGen, np.PC = oeClaimed, uint8(p), nextGen(s.EntGen), opcCheck
			add("obj.create.claim", "")
		}
	case opcPin:
		ns.Pins[th.Ext] |= bit
		np.Pinned = true
		np.PC = opcRecheck
		if m.cfg.BugNoRecheck {
			np.Open = true
			m.finish(&ns, p)
		}
		add("obj.open.pin", "")
	case opcRecheck:
		if s.EntSt == oeReady && s.EntGen == th.Gen {
			np.Open = true
			m.finish(&ns, p)
			add("obj.open.recheck", "open")
			return
		}
		np.PC = opcUnpin
		add("obj.open.recheck", "deleted meanwhile")
	case opcUnpin:
		ns.Pins[th.Ext] &^= bit
		np.Pinned = false
		np.PC = opcStart
		add("obj.open.unpin", "probe again")
	case opcMark:
		if s.EntSt != oeReady || s.EntGen != th.DGen && !m.cfg.BugDeleteNoGen {
			np.PC = opcStart // look again
			add("obj.delete.mark", "CAS failed")
			return
		}
		if s.EntGen != th.DGen {
			np.Tmp = th.Tmp // the extent read before: the old object's
		}
		ns.EntSt, np.PC = oeDeleted, opcFree
		add("obj.delete.mark", "")
	case opcFree:
		note := "free table full: extent lost"
		for j := range s.FreeW {
			if s.FreeW[j] == 0 {
				ns.FreeW[j] = th.Tmp + 1
				note = ""
				break
			}
		}
		m.finish(&ns, p)
		add("obj.delete.free", note)
	case opcCheck:
		for j, w := range s.FreeW {
			if w != 0 && (m.cfg.BugNoPinCheck || !s.pinned(w-1)) {
				np.Tmp, np.TmpW, np.PC = w-1, uint8(j), opcTake
				add("obj.alloc.check_pins", e.notef("extent %d unpinned", int(w-1), 0))
				return
			}
		}
		np.PC = opcBump
		add("obj.alloc.check_pins", "nothing reusable")
	case opcTake:
		if s.FreeW[th.TmpW] != th.Tmp+1 {
			np.PC = opcCheck
			add("obj.alloc.take", "CAS failed")
			return
		}
		ns.FreeW[th.TmpW] = 0
		ns.Pins[th.Tmp] = 0
		ns.Occ[th.Tmp] = s.EntGen
		np.PC = opcCPin
		add("obj.alloc.take", "")
	case opcBump:
		for x := range uint8(len(s.Used)) {
			if !s.Used[x] {
				ns.Used[x], ns.Occ[x], np.Tmp, np.PC = true, s.EntGen, x, opcCPin
				add("obj.alloc.bump", e.notef("extent %d", int(x), 0))
				return
			}
		}
		ns.EntSt = oeDeleted // no room: back to deleted
		m.finish(&ns, p)
		add("obj.alloc.bump", "no room")
	case opcCPin:
		ns.Pins[th.Tmp] |= bit
		np.Pinned, np.Gen, np.Ext, np.PC = true, s.EntGen, th.Tmp, opcPublish
		add("obj.open.pin", "")
	case opcPublish:
		ns.EntSt, ns.EntExt = oeReady, th.Tmp
		np.Open = true
		m.finish(&ns, p)
		add("obj.create.publish", "")
	}
}

// env appends the kills and Closes. A Close waits for the calls in
// progress (Segment.enter), so it takes effect between two operations: it
// clears the process's pins (obj.drop.unpin, in unpinAll).
func (m *ObjModel) env(s *ObjState, e *emitter[ObjState]) {
	for p := range 2 {
		if s.P[p].Life != olAlive {
			continue
		}
		if s.Kills < m.cfg.Budget.Kill {
			ns := *s
			ns.Kills++
			ns.P[p].Life = olDead
			e.add(procName[p], "env.kill", true, ns, "")
		}
		if s.Closes < m.cfg.Budget.Close && (s.P[p].PC == opcStart || s.P[p].PC == opcDone) {
			ns := *s
			ns.Closes++
			ns.P[p].Life = olClosed
			ns.P[p].Open, ns.P[p].Pinned = false, false
			for x := range ns.Pins {
				ns.Pins[x] &^= 1 << p
			}
			e.add(procName[p], "env.close", true, ns, "unpins all")
		}
	}
}

// Check fails if an open handle of a live process is on an extent that
// holds another object, if the ready entry's extent does not hold it, or
// if the free table holds an extent twice or the ready object's.
func (m *ObjModel) Check(s *ObjState) error {
	for p := range 2 {
		th := s.P[p]
		if th.Life == olAlive && th.Open && s.Occ[th.Ext] != th.Gen {
			return Fail("stale-handle", "%s's handle on generation %d is on extent %d, which holds generation %d", m.name(p), th.Gen, th.Ext, s.Occ[th.Ext])
		}
	}
	if s.EntSt == oeReady && s.Occ[s.EntExt] != s.EntGen {
		return Fail("shared-extent", "the entry's object (generation %d) is on extent %d, which holds generation %d", s.EntGen, s.EntExt, s.Occ[s.EntExt])
	}
	// The allocator's own invariants: an extent is free at most once, and
	// a live object's never (with more names, another name's creation
	// would take it while the object lives).
	if s.FreeW[0] != 0 && s.FreeW[0] == s.FreeW[1] {
		return Fail("double-free", "extent %d is in the free table twice", s.FreeW[0]-1)
	}
	for _, w := range s.FreeW {
		if w != 0 && s.EntSt == oeReady && w-1 == s.EntExt {
			return Fail("freed-live", "extent %d, of the ready generation %d, is in the free table", w-1, s.EntGen)
		}
	}
	return nil
}

// Stuck fails if a live goroutine has not finished: every wait in the
// protocol is for a creator that moves or dies.
func (m *ObjModel) Stuck(s *ObjState) error {
	for p := range 2 {
		if s.P[p].Life == olAlive && s.P[p].PC != opcDone {
			return Fail("deadlock", "%s blocked at pc %d", m.name(p), s.P[p].PC)
		}
	}
	return nil
}

// Format describes s on one line.
func (m *ObjModel) Format(s *ObjState) string {
	var b strings.Builder
	st := [...]string{"ready", "deleted", "claimed", "dead"}[s.EntSt]
	fmt.Fprintf(&b, "entry %s gen %d ext %d | pins %02b %02b %02b occ %d %d %d free %d %d |", st, s.EntGen, s.EntExt, s.Pins[0], s.Pins[1], s.Pins[2], s.Occ[0], s.Occ[1], s.Occ[2], int(s.FreeW[0])-1, int(s.FreeW[1])-1)
	for p, th := range s.P {
		life := [...]string{"", " dead", " closed"}[th.Life]
		fmt.Fprintf(&b, " %s op %d pc %d open %v gen %d ext %d%s;", procName[p], th.Op, th.PC, th.Open, th.Gen, th.Ext, life)
	}
	return b.String()
}

var objSteps = []string{
	"obj.open.load_entry", "obj.open.pin", "obj.open.recheck", "obj.open.unpin", "obj.drop.unpin",
	"obj.delete.load_entry", "obj.delete.mark", "obj.delete.free",
	"obj.create.claim", "obj.alloc.check_pins", "obj.alloc.take", "obj.alloc.bump", "obj.create.publish",
	"user.use",
}

// Steps returns the labels of the model's steps.
func (m *ObjModel) Steps() []string { return append([]string(nil), objSteps...) }
