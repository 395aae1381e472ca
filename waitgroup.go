package processshared

import (
	"context"
	"fmt"
	"math"
)

// WaitGroup layout, after the locked state's header (lockedwait.go;
// accessed atomically only, written only under the lock, journaled):
//
//	128  counter  Adds not yet matched by a Done, of live processes
//	132  broken   1 once a process died holding Adds, until Reset
//	136  dropped  Adds of dead processes not yet matched by a Done
//	140  deaths   processes that died holding Adds, since creation
//	144  held     one {identity, count} entry per process-table slot: the
//	              Adds that slot's process made and that no Done has
//	              matched yet (counter is the sum of the counts)
//
// Transitions, each one change under the lock:
//
//	add n     held[self] += n, counter += n
//	done      held[self] -= 1 if it has any, else held[e] -= 1 for the
//	          first live entry e with Adds; counter -= 1; else (counter 0)
//	          dropped -= 1: a late Done for a dead process's work
//	reclaim   a dead identity's entry with count c: counter -= c,
//	          dropped += c, broken → 1, deaths + 1, entry freed
//	reset     broken → 0
//
// Waiters wait for counter 0 with broken clear, and are told ErrBroken
// while broken is set.
const (
	wgCounter = lwData
	wgBroken  = lwData + 4
	wgDropped = lwData + 8
	wgDeaths  = lwData + 12
	wgHeld    = lwData + 16
)

// A WaitGroup waits for a collection of tasks, in any processes, to finish,
// like sync.WaitGroup: Add counts tasks, Done (from any process) finishes
// one, Wait blocks until none is left. Obtain one with NewWaitGroup; the
// zero value is not usable. A WaitGroup must not be copied.
//
// In the terminology of the Go memory model, a call to Done, in any
// process, synchronizes before the return of any Wait call that it
// unblocks.
//
// Deaths. Adds are counted against the process that made them, and a Done
// matches one of the caller's own Adds first (else another live process's).
// If a process dies, or closes its Segment, while it holds Adds that no
// Done has matched, the group is broken: every Wait, now and later, returns
// an error matching ErrBroken, until Reset. Its Adds are dropped from the
// counter, and a Done that comes later for them (from a live worker of
// the dead process) is accepted. Why broken and not merely dropped: a Wait
// that returns nil then means every Add was matched by a Done. Dropping alone
// would release the waiters as if the dead process's tasks had been done;
// with broken they learn that some work is lost, and can redo it.
//
// So the pattern that survives deaths exactly is "each worker Adds for
// itself" (Add(1) at the start of its task, Done at its end, in one
// process): a worker that dies breaks the group, the others are unaffected.
// With a coordinator that Adds for the workers, the coordinator's death
// breaks it, even if the workers finish.
type WaitGroup struct {
	o    lockedState
	mine uint64 // offset of this handle's held entry
}

// NewWaitGroup finds the WaitGroup called name in s, creating it (with a
// count of zero) if it does not exist.
func NewWaitGroup(s *Segment, name string) (*WaitGroup, error) {
	procCap := s.lay.procCap
	size := wgHeld + procCap*8
	off, err := s.object(name, KindWaitGroup, 0, size, nil)
	if err != nil {
		return nil, err
	}
	return &WaitGroup{
		o:    newLockedState(s, off, size, "waitgroup", name),
		mine: wgHeld + (s.slot-s.lay.procOff)/procSlotSize*8,
	}, nil
}

// Drop releases this handle on g: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. The Adds of this process stay counted: they are
// the process's, not the handle's. Drop is idempotent and returns nil.
func (g *WaitGroup) Drop() error { return g.o.drop() }

// Name returns the WaitGroup's name in its segment.
func (g *WaitGroup) Name() string { return g.o.name }

// reclaimDead drops the Adds of dead holders, each in a change of its own.
// It reports whether it dropped any. The caller holds the lock. Only the
// handle of a slot gives its held entry Adds, so the entries past procHigh
// hold none (see "The high-water mark" in proc.go): it looks at those below.
func (g *WaitGroup) reclaimDead() bool {
	any := false
	for i := range g.o.s.procHigh() {
		e := wgHeld + i*8
		c := g.o.load(e + 4)
		if c == 0 {
			continue
		}
		if id := g.o.load(e); id == g.o.s.id || g.o.alive(id) {
			continue
		}
		counter := g.o.load(wgCounter)
		g.o.set(wgCounter, counter-min(counter, c))
		g.o.set(wgDropped, g.o.load(wgDropped)+c)
		g.o.set(wgBroken, 1)
		g.o.set(wgDeaths, g.o.load(wgDeaths)+1)
		g.o.set(e, 0)
		g.o.set(e+4, 0)
		g.o.commit()
		any = true
	}
	return any
}

// Add adds delta, which may be negative, to the counter. A positive delta
// counts against this process until matched by Dones (see WaitGroup); a
// negative one is -delta Dones, each applied on its own. It returns an
// error, changing nothing, if the counter would go negative (more Dones
// than Adds, as sync.WaitGroup panics) or past math.MaxInt32; ErrClosed if
// the segment is closed; an error matching ErrCorrupt if the group's memory
// holds garbage.
func (g *WaitGroup) Add(delta int) error {
	if delta < -math.MaxInt32 || delta > math.MaxInt32 {
		return fmt.Errorf("processshared: waitgroup %q: Add(%d): bad delta", g.o.name, delta)
	}
	if !g.o.s.enter() {
		return ErrClosed
	}
	defer g.o.s.exit()
	if delta >= 0 {
		return g.o.change(func() (bool, error) {
			woke := g.reclaimDead()
			counter := g.o.load(wgCounter)
			if uint64(counter)+uint64(delta) > math.MaxInt32 {
				return woke, fmt.Errorf("processshared: waitgroup %q: counter %d + %d overflows", g.o.name, counter, delta)
			}
			if delta == 0 {
				return woke || counter == 0, nil
			}
			held := uint32(0)
			if g.o.load(g.mine) == g.o.s.id {
				held = g.o.load(g.mine + 4)
			}
			g.o.set(g.mine, g.o.s.id)
			g.o.set(g.mine+4, held+uint32(delta))
			g.o.set(wgCounter, counter+uint32(delta))
			return woke, nil
		})
	}
	return g.o.change(func() (bool, error) {
		woke := g.reclaimDead()
		n := uint32(-delta)
		if uint64(g.o.load(wgCounter))+uint64(g.o.load(wgDropped)) < uint64(n) {
			return woke, fmt.Errorf("processshared: waitgroup %q: Add(%d) with a counter of %d: negative counter", g.o.name, delta, g.o.load(wgCounter))
		}
		for range n {
			if err := g.done(); err != nil {
				return true, err
			}
			g.o.commit()
		}
		return woke || g.o.load(wgCounter) == 0, nil
	})
}

// done matches one Add. The caller holds the lock and checked that there
// is one to match.
func (g *WaitGroup) done() error {
	counter := g.o.load(wgCounter)
	if counter == 0 {
		g.o.set(wgDropped, g.o.load(wgDropped)-1)
		return nil
	}
	e := uint64(0)
	if g.o.load(g.mine) == g.o.s.id && g.o.load(g.mine+4) != 0 {
		e = g.mine
	} else {
		for i := range g.o.s.procHigh() { // the entries past it hold no Adds (see reclaimDead)
			if c := g.o.load(wgHeld + i*8 + 4); c != 0 {
				e = wgHeld + i*8
				break
			}
		}
	}
	if e == 0 {
		return fmt.Errorf("%w: waitgroup %q: counter %d, but no process holds Adds", ErrCorrupt, g.o.name, counter)
	}
	c := g.o.load(e + 4)
	if c == 1 {
		g.o.set(e, 0)
	}
	g.o.set(e+4, c-1)
	g.o.set(wgCounter, counter-1)
	return nil
}

// Done decrements the counter by one: Add(-1).
func (g *WaitGroup) Done() error { return g.Add(-1) }

// Wait is WaitContext with a context that never ends.
func (g *WaitGroup) Wait() error { return g.WaitContext(context.Background()) }

// WaitContext blocks until the counter is zero. It returns an error
// matching ErrBroken if the group is broken (a process died holding Adds),
// or breaks while it waits; ctx.Err() if ctx ends first; ErrClosed if the
// segment is closed.
func (g *WaitGroup) WaitContext(ctx context.Context) error {
	if !g.o.s.enter() { // step: lw.wait.enter
		return ErrClosed
	}
	defer g.o.s.exit()
	if err := ctx.Err(); err != nil {
		return err
	}
	woke := false
	err := g.o.wait(ctx, func() (bool, error) {
		if g.reclaimDead() {
			g.o.changed()
			woke = true
		}
		if b := g.o.load(wgBroken); b != 0 {
			if b != 1 {
				return false, fmt.Errorf("%w: waitgroup %q: broken %d", ErrCorrupt, g.o.name, b)
			}
			return false, fmt.Errorf("%w: waitgroup %q: %d processes died holding Adds", ErrBroken, g.o.name, g.o.load(wgDeaths))
		}
		return g.o.load(wgCounter) == 0, nil
	}, nil, nil)
	if woke {
		g.o.wake()
	}
	return err
}

// Reset mends a broken group: Wait returns nil again once the counter is
// zero. The Adds of the dead are not restored. It returns ErrClosed if the
// segment is closed.
func (g *WaitGroup) Reset() error {
	if !g.o.s.enter() {
		return ErrClosed
	}
	defer g.o.s.exit()
	return g.o.change(func() (bool, error) {
		g.reclaimDead()
		g.o.set(wgBroken, 0)
		return true, nil
	})
}

// Count returns the counter at the instant of the call: the Adds not yet
// matched by a Done, of live processes and of dead ones not yet noticed. It
// panics if the segment is closed.
func (g *WaitGroup) Count() int {
	if !g.o.s.enter() {
		closedPanic("Count", "waitgroup", g.o.name, g.o.s)
	}
	defer g.o.s.exit()
	return int(g.o.load(wgCounter))
}
