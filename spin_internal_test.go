package processshared

import (
	"testing"
	"time"
)

func TestSpinGate(t *testing.T) {
	var w uint64
	now := time.Unix(1700000000, 0)
	var ticks []uint64
	for i := range maxSpinners {
		tick, ok := spinEnter(&w, now)
		if !ok {
			t.Fatalf("spin %d of %d refused", i+1, maxSpinners)
		}
		ticks = append(ticks, tick)
	}
	if _, ok := spinEnter(&w, now); ok {
		t.Fatalf("spin %d allowed with %d in progress", maxSpinners+1, maxSpinners)
	}
	spinLeave(&w, ticks[0])
	tick, ok := spinEnter(&w, now)
	if !ok {
		t.Fatal("spin refused after one of the spinners left")
	}
	ticks[0] = tick

	// Spinners of an earlier tick (killed, or just old) no longer count.
	later := now.Add(spinTick)
	tick, ok = spinEnter(&w, later)
	if !ok {
		t.Fatalf("spin refused in a new tick: word %#x", w)
	}
	if n := w & 0xffff; n != 1 {
		t.Fatalf("count in a new tick = %d, want 1", n)
	}
	// Leaving in an older tick does not take from the new count.
	for _, old := range ticks {
		spinLeave(&w, old)
	}
	if n := w & 0xffff; n != 1 {
		t.Fatalf("count after old spinners left = %d, want 1", n)
	}
	spinLeave(&w, tick)
	if n := w & 0xffff; n != 0 {
		t.Fatalf("count after every spinner left = %d, want 0", n)
	}
	spinLeave(&w, tick) // never below 0
	if n := w & 0xffff; n != 0 {
		t.Fatalf("count after an extra leave = %d, want 0", n)
	}
}
