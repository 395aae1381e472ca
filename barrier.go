package processshared

import (
	"context"
	"fmt"
)

// Barrier layout, after the locked state's header (lockedwait.go; accessed
// atomically only, written only under the lock, journaled):
//
//	128  parties  n, fixed at creation
//	132  count    parties arrived in the current generation, 0 to n-1
//	136  gen      the generation: bumped when the n'th party arrives, and
//	              by Reset (it wraps; compared for equality only)
//	140  broken   1 once broken, until Reset
//	144  resets   bumped by Reset: a waiter of before the Reset is told
//	              ErrBroken, not released as if all had arrived
//	152  party    n entries {id, arrived}: the identity of the handle that
//	              joined as that party (0: free), and gen+1 if it has
//	              arrived in generation gen (so a second Wait of one party
//	              in one generation is caught)
//
// Transitions, each one change under the lock:
//
//	join      free entry → id; or a dead party's entry → id, which breaks
//	          the barrier if a generation is in progress (count > 0)
//	arrive    broken, or some joined party dead → broken, ErrBroken;
//	          else count+1, or, for the n'th, count → 0 and gen+1
//	give up   a waiter's ctx ended before its generation completed → broken
//	reset     broken → 0, count → 0, gen+1, resets+1, dead parties' entries
//	          freed
//
// A waiter of generation g is released when gen is no longer g (and resets
// unchanged), and told ErrBroken when broken is set or resets changed.
const (
	barParties = lwData
	barCount   = lwData + 4
	barGen     = lwData + 8
	barBroken  = lwData + 12
	barResets  = lwData + 16
	barParty   = lwData + 24

	// maxBarrierParties bounds a Barrier's parties. Each party is a
	// handle, so there are never more than MaxProcessesLimit × goroutines;
	// the bound keeps a Barrier's scan of its parties short.
	maxBarrierParties = 1 << 16
)

// A Barrier lets n parties, in any processes, wait for each other: each
// Wait blocks until all n have called it, then all return. It is reusable:
// the next n Waits make the next generation. Obtain one with NewBarrier,
// which also joins the caller as one of the n parties; the zero value is not
// usable. A Barrier must not be copied.
//
// In the terminology of the Go memory model, every party's Wait call of a
// generation, in any process, synchronizes before every Wait of that
// generation returns.
//
// Parties are registered when they join, so the barrier knows who it waits
// for. If a joined party dies or closes its Segment (at any instant,
// SIGKILL included), or a waiter's context ends before its generation
// completes, the barrier is broken: every Wait, now and later, returns an
// error matching ErrBroken, until Reset. No party waits forever for a dead
// one. (This is Python's threading.Barrier, with death added to timeouts.)
// A party that has not joined yet is waited for, as a slow one would be.
type Barrier struct {
	o       lockedState
	entry   uint64 // offset of this party's entry
	parties uint32
}

// NewBarrier finds the Barrier called name in s, creating it for parties
// parties if it does not exist, and joins it as one party: the Barrier
// returned is that party, and its Wait counts as that party's arrival. An
// existing barrier must have been created for the same number of parties
// (else ErrMismatch). Each call joins one more party, even through one
// Segment; it returns an error matching ErrTooManyProcesses if all parties
// have joined and are alive. Joining in the place of a dead party breaks
// the barrier if a generation is in progress (some party is waiting).
func NewBarrier(s *Segment, name string, parties int) (*Barrier, error) {
	if parties < 1 || parties > maxBarrierParties {
		return nil, fmt.Errorf("processshared: barrier %q: bad party count %d (want 1 to %d)", name, parties, maxBarrierParties)
	}
	size := barrierSize(uint64(parties))
	off, err := s.object(name, KindBarrier, uint32(parties), size, func(mem []byte) {
		store32(mem, barParties, uint32(parties))
	})
	if err != nil {
		return nil, err
	}
	b := &Barrier{o: newLockedState(s, off, size, "barrier", name), parties: uint32(parties)}
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	if err := b.join(); err != nil {
		return nil, err
	}
	return b, nil
}

func barrierSize(parties uint64) uint64 { return barParty + parties*8 }

// join takes a free entry, or a dead party's, for this handle.
func (b *Barrier) join() error {
	return b.o.change(func() (bool, error) {
		if err := b.checkWords(); err != nil {
			return false, err
		}
		dead := uint64(0)
		for i := range uint64(b.parties) {
			e := barParty + i*8
			id := b.o.load(e)
			if id == 0 {
				b.o.set(e, b.o.s.id)
				b.o.set(e+4, 0)
				b.entry = e
				return false, nil
			}
			if dead == 0 && !b.o.alive(id) {
				dead = e
			}
		}
		if dead == 0 {
			return false, fmt.Errorf("%w: barrier %q has its %d parties", ErrTooManyProcesses, b.o.name, b.parties)
		}
		b.o.set(dead, b.o.s.id)
		b.o.set(dead+4, 0)
		b.entry = dead
		if b.o.load(barCount) != 0 {
			b.o.set(barBroken, 1)
			return true, nil
		}
		return false, nil
	})
}

// checkWords checks the words another process could have overwritten.
func (b *Barrier) checkWords() error {
	if n, c := b.o.load(barParties), b.o.load(barCount); n != b.parties || c >= b.parties || b.o.load(barBroken) > 1 {
		return fmt.Errorf("%w: barrier %q has parties %d, count %d, broken %d", ErrCorrupt, b.o.name, n, c, b.o.load(barBroken))
	}
	return nil
}

// deadParty reports whether a joined party is dead.
func (b *Barrier) deadParty() bool {
	for i := range uint64(b.parties) {
		if id := b.o.load(barParty + i*8); id != 0 && !b.o.alive(id) {
			return true
		}
	}
	return false
}

func (b *Barrier) brokenError() error {
	return fmt.Errorf("%w: barrier %q", ErrBroken, b.o.name)
}

// Name returns the Barrier's name in its segment.
func (b *Barrier) Name() string { return b.o.name }

// Parties returns the number of parties the Barrier waits for.
func (b *Barrier) Parties() int { return int(b.parties) }

// Wait is WaitContext with a context that never ends.
func (b *Barrier) Wait() (int, error) { return b.WaitContext(context.Background()) }

// WaitContext arrives at the barrier as this party and blocks until all
// parties have arrived in this generation. It returns the arrival index, 0
// for the first party to arrive and Parties()-1 for the last (whose arrival
// releases the others).
//
// It returns an error matching ErrBroken if the barrier is broken, or
// breaks while it waits: a joined party died, or another waiter gave up.
// If ctx ends first (before the call, too), it breaks the barrier and
// returns an error matching both ctx.Err() and ErrBroken; if the segment is
// closed, ErrClosed (to the others this party is then dead). It returns
// ErrBroken, too, to a waiter whose generation was ended by Reset. Two
// Waits of one party at once are misuse: the second returns an error and
// does not count.
func (b *Barrier) WaitContext(ctx context.Context) (idx int, err error) {
	if !b.o.s.enter() { // step: lw.wait.enter
		return 0, ErrClosed
	}
	defer b.o.s.exit()
	giveUp := func(reason error) error {
		if b.o.load(barBroken) == 0 {
			b.o.set(barBroken, 1)
			b.o.commit()
			b.o.changed()
		}
		return fmt.Errorf("processshared: barrier %q: %w; the barrier is now %w", b.o.name, reason, ErrBroken)
	}
	var gen, resets uint32
	arrived, bumped := false, false
	brk := func() error {
		b.o.set(barBroken, 1)
		b.o.commit()
		b.o.changed()
		bumped = true
		return b.brokenError()
	}
	err = b.o.wait(ctx, func() (bool, error) {
		if err := b.checkWords(); err != nil {
			return false, err
		}
		if !arrived {
			if b.o.load(b.entry) != b.o.s.id {
				return false, fmt.Errorf("%w: barrier %q: this party's entry was taken", ErrCorrupt, b.o.name)
			}
			if b.o.load(barBroken) != 0 {
				return false, b.brokenError()
			}
			if b.deadParty() {
				return false, brk()
			}
			if ctx.Err() != nil {
				return false, nil // give up, breaking it
			}
			gen, resets = b.o.load(barGen), b.o.load(barResets)
			if b.o.load(b.entry+4) == gen+1 {
				return false, fmt.Errorf("processshared: barrier %q: Wait called again by a party that is waiting", b.o.name)
			}
			arrived = true
			c := b.o.load(barCount)
			idx = int(c)
			if c+1 == b.parties {
				b.o.set(barCount, 0)
				b.o.set(barGen, gen+1)
				b.o.commit()
				b.o.changed()
				bumped = true
				return true, nil
			}
			b.o.set(barCount, c+1)
			b.o.set(b.entry+4, gen+1)
			b.o.commit()
			return false, nil
		}
		if b.o.load(barResets) != resets {
			return false, b.brokenError()
		}
		if b.o.load(barGen) != gen {
			return true, nil
		}
		if b.o.load(barBroken) != 0 {
			return false, b.brokenError()
		}
		if b.deadParty() {
			return false, brk()
		}
		return false, nil
	}, func() bool {
		// Done once the generation moved on, unless a Reset moved it.
		// Reset bumps resets before gen, and this reads them the other
		// way round: a gen moved by a Reset comes with its resets.
		if !arrived {
			return false
		}
		g := b.o.load(barGen)
		return g != gen && b.o.load(barResets) == resets
	}, giveUp)
	// The arrival that completes a generation, or a break, bumped seq
	// under the lock; the wake of its sleepers follows the unlock.
	if bumped {
		b.o.wake()
	}
	if err != nil {
		return 0, err
	}
	return idx, nil
}

// Reset mends a broken barrier: it clears the broken state, starts a new
// generation with no party arrived, and frees the entries of dead parties,
// for new parties to join. Waiters of the generation it ends return
// ErrBroken. It returns ErrClosed if the segment is closed.
func (b *Barrier) Reset() error {
	if !b.o.s.enter() {
		return ErrClosed
	}
	defer b.o.s.exit()
	return b.o.change(func() (bool, error) {
		if err := b.checkWords(); err != nil {
			return false, err
		}
		b.o.set(barBroken, 0)
		b.o.set(barCount, 0)
		b.o.set(barResets, b.o.load(barResets)+1) // before gen: see WaitContext's peek
		b.o.set(barGen, b.o.load(barGen)+1)
		b.o.commit()
		for i := range uint64(b.parties) {
			e := barParty + i*8
			if id := b.o.load(e); id != 0 && !b.o.alive(id) {
				b.o.set(e, 0)
				b.o.set(e+4, 0)
				b.o.commit()
			}
		}
		return true, nil
	})
}

// Broken reports whether the barrier is broken, at the instant of the
// call. It panics if the segment is closed.
func (b *Barrier) Broken() bool {
	if !b.o.s.enter() {
		closedPanic("Broken", "barrier", b.o.name, b.o.s)
	}
	defer b.o.s.exit()
	return b.o.load(barBroken) != 0
}
