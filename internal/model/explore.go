package model

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"time"
)

// A Step is one transition enabled in a state.
type Step[S comparable] struct {
	Actor string // who moves: "P1.G0" (a goroutine), "P1" (its Close), "N0" (a newcomer), "kernel", "env"
	Label string // the step's name; code steps carry it as a `// step:` comment
	Env   bool   // an environment event (kill, cancel, Close, attach), bounded by a budget
	Note  string // what the step did, for traces ("CAS failed", "woke P1.G0")
	Next  S      // the state after the step
}

// A Model is a protocol as a transition system over states of type S.
// States are values: Next must not change s, and a State must hold no
// pointers, maps or slices, so that equal states are equal values.
type Model[S comparable] interface {
	// Init returns the initial state.
	Init() S
	// Next appends to steps every transition enabled in s, in an order that
	// depends on s alone (traces are rebuilt by replaying step indices).
	// Notes are needed only when trace is set.
	Next(s *S, trace bool, steps []Step[S]) []Step[S]
	// Check returns a *Violation if an invariant fails in s.
	Check(s *S) error
	// Stuck is called in every state where no step but environment events is
	// enabled. It returns a *Violation if a goroutine is still blocked: a
	// lost wake-up if what it waits for is available, a deadlock otherwise,
	// or nil if the wait is legitimate (what it waits for is truly
	// unavailable).
	Stuck(s *S) error
	// Format describes s on one line, for traces.
	Format(s *S) string
}

// A Violation is a failed check, with the shortest trace that reaches it.
type Violation struct {
	Kind  string // "mutual-exclusion", "lost-wakeup", "deadlock", ...
	Msg   string
	Trace []TraceStep
}

// A TraceStep is one step of a counterexample and the state after it.
type TraceStep struct {
	Actor, Label, Note, State string
}

// Fail returns a *Violation of the given kind.
func Fail(kind, format string, args ...any) error {
	return &Violation{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func (v *Violation) Error() string { return v.Kind + ": " + v.Msg }

// String returns the violation and its numbered trace, one step a line,
// each followed by the state it leads to.
func (v *Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "violation (%s): %s\n", v.Kind, v.Msg)
	for i, st := range v.Trace {
		if i == 0 {
			fmt.Fprintf(&b, "%3d. %-7s %-30s\n", 0, "", "init")
		} else {
			line := fmt.Sprintf("%3d. %-7s %-30s", i, st.Actor, st.Label)
			if st.Note != "" {
				line += " (" + st.Note + ")"
			}
			b.WriteString(line + "\n")
		}
		fmt.Fprintf(&b, "       %s\n", st.State)
	}
	return b.String()
}

// Options bound an exploration.
type Options struct {
	// MaxStates stops the exploration after this many distinct states
	// (0: no limit); Result.Truncated then says so.
	MaxStates int
	// AllKinds keeps exploring after a violation, to report the first
	// violation of every kind; otherwise Explore stops at the first one.
	AllKinds bool
	// HashCompact keeps a 64-bit hash of each visited state instead of the
	// state (about 30 bytes a state instead of 150). Two states whose
	// hashes collide are taken for one, and the second is not explored:
	// with n states the chance of any collision is about n²/2⁶⁵ (3·10⁻⁶
	// for 10 million). For deep runs only.
	HashCompact bool
	// CountLabels counts the steps taken by label, in Result.Labels.
	CountLabels bool
}

// A Result is what an exploration found and counted.
type Result struct {
	States      int // distinct states reached
	Transitions int // steps taken, including those into known states
	Quiescent   int // states in which only environment events were enabled
	Depth       int // length of the longest shortest path to a state
	Truncated   bool
	Violations  []*Violation   // first violation of each kind, shortest trace first
	Labels      map[string]int // steps taken, by label (with Options.CountLabels)
	Elapsed     time.Duration
}

func (r *Result) String() string {
	s := fmt.Sprintf("%d states, %d transitions, %d quiescent, depth %d, %v", r.States, r.Transitions, r.Quiescent, r.Depth, r.Elapsed.Round(time.Millisecond))
	if r.Truncated {
		s += " (truncated)"
	}
	if len(r.Violations) > 0 {
		s += fmt.Sprintf(", %d violation kinds", len(r.Violations))
	}
	return s
}

// node is how a visited state was first reached: from node parent by the
// step-th step that Next returned there.
type node struct {
	parent uint32
	step   uint32
}

const root = ^uint32(0)

// Explore visits every state of m reachable from m.Init() breadth first, so
// that each violation comes with a shortest trace. It checks m.Check in
// every state and m.Stuck in every quiescent one. States that violate an
// invariant are not expanded further.
func Explore[S comparable](m Model[S], opt Options) *Result {
	start := time.Now()
	res := &Result{}
	seen := map[string]bool{}
	init := m.Init()
	exact := map[S]struct{}{}
	hashed := map[uint64]struct{}{}
	seed := maphash.MakeSeed()
	// visit records s as state id unless it was seen, and reports whether
	// it was new. With id == root it only looks.
	visit := func(s S, id uint32) bool {
		if opt.HashCompact {
			h := maphash.Comparable(seed, s)
			if _, ok := hashed[h]; ok {
				return false
			}
			if id != root {
				hashed[h] = struct{}{}
			}
			return true
		}
		if _, ok := exact[s]; ok {
			return false
		}
		if id != root {
			exact[s] = struct{}{}
		}
		return true
	}
	visit(init, 0)
	nodes := []node{{parent: root}}
	frontier, ids := []S{init}, []uint32{0}
	var buf []Step[S]
	record := func(id uint32, err error) bool {
		v, ok := err.(*Violation)
		if !ok {
			v = &Violation{Kind: "invariant", Msg: err.Error()}
		}
		if !seen[v.Kind] {
			seen[v.Kind] = true
			res.Violations = append(res.Violations, &Violation{Kind: v.Kind, Msg: v.Msg, Trace: trace(m, nodes, id)})
		}
		return !opt.AllKinds
	}
	for depth := 0; len(frontier) > 0; depth++ {
		res.Depth = depth
		var next []S
		var nextIDs []uint32
		for i := range frontier {
			s := &frontier[i]
			if err := m.Check(s); err != nil {
				if record(ids[i], err) {
					goto done
				}
				continue
			}
			buf = m.Next(s, false, buf[:0])
			moves := false
			for k := range buf {
				st := &buf[k]
				res.Transitions++
				if opt.CountLabels {
					if res.Labels == nil {
						res.Labels = map[string]int{}
					}
					res.Labels[st.Label]++
				}
				if !st.Env {
					moves = true
				}
				if opt.MaxStates > 0 && len(nodes) >= opt.MaxStates {
					if visit(st.Next, root) {
						res.Truncated = true
					}
					continue
				}
				id := uint32(len(nodes))
				if !visit(st.Next, id) {
					continue
				}
				nodes = append(nodes, node{parent: ids[i], step: uint32(k)})
				next = append(next, st.Next)
				nextIDs = append(nextIDs, id)
			}
			if !moves {
				res.Quiescent++
				if err := m.Stuck(s); err != nil {
					if record(ids[i], err) {
						goto done
					}
				}
			}
		}
		frontier, ids = next, nextIDs
	}
done:
	res.States = len(nodes)
	res.Elapsed = time.Since(start)
	return res
}

// trace rebuilds the path to node id by replaying, from the initial state,
// the step indices recorded along it.
func trace[S comparable](m Model[S], nodes []node, id uint32) []TraceStep {
	var path []uint32
	for n := id; n != root; n = nodes[n].parent {
		path = append(path, n)
	}
	s := m.Init()
	out := []TraceStep{{State: m.Format(&s)}}
	var buf []Step[S]
	for i := len(path) - 2; i >= 0; i-- {
		buf = m.Next(&s, true, buf[:0])
		k := nodes[path[i]].step
		if int(k) >= len(buf) {
			panic(errors.New("model: Next is not deterministic: a trace cannot be replayed"))
		}
		st := buf[k]
		s = st.Next
		out = append(out, TraceStep{Actor: st.Actor, Label: st.Label, Note: st.Note, State: m.Format(&s)})
	}
	return out
}

// emitter collects the steps of one state.
type emitter[S comparable] struct {
	out   []Step[S]
	trace bool // notes are wanted
}

// woke describes a wake-up's victims, when notes are wanted.
func (e *emitter[S]) woke(woken uint16, name func(int) string) string {
	if !e.trace {
		return ""
	}
	return wokeNote(woken, name)
}

// notef formats a note, when notes are wanted.
func (e *emitter[S]) notef(format string, a, b int) string {
	if !e.trace {
		return ""
	}
	if strings.Count(format, "%") == 1 {
		return fmt.Sprintf(format, a)
	}
	return fmt.Sprintf(format, a, b)
}

// cat concatenates a note, when notes are wanted.
func (e *emitter[S]) cat(a, b string) string {
	if !e.trace {
		return ""
	}
	return a + b
}

func (e *emitter[S]) add(actor, label string, env bool, next S, note string) {
	e.out = append(e.out, Step[S]{Actor: actor, Label: label, Env: env, Note: note, Next: next})
}
