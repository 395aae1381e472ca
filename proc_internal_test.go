//go:build darwin || freebsd || linux

package processshared

import (
	"errors"
	"testing"

	"github.com/processshared/processshared/internal/shmtest"
)

func TestSlotBits(t *testing.T) {
	for _, c := range []struct {
		procCap uint64
		want    uint
	}{{1, 1}, {2, 1}, {3, 2}, {128, 7}, {129, 8}, {1024, 10}, {40000, 16}, {MaxProcessesLimit, 16}} {
		if got := slotBitsFor(c.procCap); got != c.want {
			t.Errorf("slotBitsFor(%d) = %d, want %d", c.procCap, got, c.want)
		}
	}
}

// TestIdentityLargestTable walks every generation of a slot in a table of
// MaxProcessesLimit slots (slotBits 16, 15 bits of generation): the
// generations rise from 64 to 32767 and skip those whose identities could
// be thread ids, a slot has 32,640 claims before nextGen retires it, and
// every identity round-trips through slotOf for the first, a middle and the
// last slot.
func TestIdentityLargestTable(t *testing.T) {
	l, err := newLayout(1<<23, &Options{MaxProcesses: MaxProcessesLimit})
	if err != nil {
		t.Fatal(err)
	}
	if l.slotBits != 16 {
		t.Fatalf("slotBits %d, want 16", l.slotBits)
	}
	var claims, last uint32
	for g := l.nextGen(0); g != 0; g = l.nextGen(g) {
		if g <= last {
			t.Fatalf("generation %d after %d: not rising", g, last)
		}
		if low := g & (1<<14 - 1); low < maxTID>>16 {
			t.Fatalf("generation %d: its identities' low 30 bits are below maxTID", g)
		}
		for _, i := range []uint64{0, 1, 32768, MaxProcessesLimit - 1} {
			id := l.ident(i, g)
			if id == 0 || id&^idMask != 0 || id&tidMask < maxTID {
				t.Fatalf("ident(%d, %d) = %#x: not a valid identity", i, g, id)
			}
			off, gen, ok := l.slotOf(id)
			if !ok || gen != g || off != l.procOff+i*procSlotSize {
				t.Fatalf("slotOf(ident(%d, %d)) = %d, %d, %v; want %d, %d, true", i, g, off, gen, ok, l.procOff+i*procSlotSize, g)
			}
		}
		claims++
		last = g
	}
	if first := l.nextGen(0); first != 64 {
		t.Errorf("first generation %d, want 64", first)
	}
	if last != 1<<15-1 {
		t.Errorf("last generation %d, want %d", last, 1<<15-1)
	}
	if claims != 32640 {
		t.Errorf("%d claims of a slot, want 32640 (2^15·255/256)", claims)
	}
	// The second half of the generations skips its first 64 too.
	if g := l.nextGen(1<<14 - 1); g != 1<<14+64 {
		t.Errorf("nextGen(%d) = %d, want %d", 1<<14-1, g, 1<<14+64)
	}
	if _, _, ok := l.slotOf(0); ok {
		t.Error("slotOf(0) is a slot")
	}
	if _, _, ok := l.slotOf(5); ok {
		t.Error("slotOf of generation 0 is a slot")
	}

	// In a table of 40000 slots (still 16 bits of index), an index beyond
	// the table names no slot.
	l2, err := newLayout(1<<23, &Options{MaxProcesses: 40000})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := l2.slotOf(l2.ident(40000, 64)); ok {
		t.Error("slotOf names slot 40000 of a 40000-slot table")
	}
	if _, _, ok := l2.slotOf(l2.ident(39999, 64)); !ok {
		t.Error("slotOf does not name slot 39999 of a 40000-slot table")
	}
}

// TestRetireLargestTable: in a segment of MaxProcessesLimit slots, attach
// skips a slot whose generation is exhausted, and a slot claimed at its
// last generation is retired once that claim ends.
//
//  1. The creator's handle takes slot 0. Slot 1's generation is set to
//     the last (32767), slot 2's to the one before it, as 32,640 and
//     32,639 claims would have left them.
//  2. A second handle skips slot 1 (retired) and claims slot 2 at
//     generation 32767: identity 0x7fff0002, the highest there is.
//  3. It closes; a third handle skips slots 1 and 2 (both retired) and
//     takes slot 3.
func TestRetireLargestTable(t *testing.T) {
	name := shmtest.Name(t)
	s, err := Create(name, 1<<23, &Options{MaxProcesses: MaxProcessesLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	slotIndex := func(h *Segment) uint64 { return (h.slot - h.lay.procOff) / procSlotSize }
	if i := slotIndex(s); i != 0 {
		t.Fatalf("creator in slot %d, want 0", i)
	}
	store32(s.mem, s.lay.procOff+1*procSlotSize+slotGen, 1<<15-1)
	store32(s.mem, s.lay.procOff+2*procSlotSize+slotGen, 1<<15-2)

	h2, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if i := slotIndex(h2); i != 2 {
		t.Fatalf("second handle in slot %d, want 2 (slot 1 is retired)", i)
	}
	if h2.id != 0x7fff0002 {
		t.Fatalf("second handle's identity %#x, want 0x7fff0002", h2.id)
	}
	if h := s.lookup(h2.id); !h.alive {
		t.Fatal("the second handle's identity is not alive to the first")
	}
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	h3, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h3.Close()
	if i := slotIndex(h3); i != 3 {
		t.Fatalf("third handle in slot %d, want 3 (slots 1 and 2 are retired)", i)
	}
	if g := load32(s.mem, s.lay.procOff+1*procSlotSize+slotGen); g != 1<<15-1 {
		t.Errorf("slot 1's generation %d, want it left at %d", g, 1<<15-1)
	}
	if h := s.lookup(0x7fff0002); h.alive {
		t.Error("the closed second handle's identity is alive")
	}
}

// TestProcHigh: attach raises procHigh to one more than the index it
// claims, before the claim, and nothing lowers it; the scans stop there;
// a procHigh above procCap fails attach with ErrCorrupt, and one written
// after attach is clamped to procCap.
//
//  1. The creator takes slot 0 (procHigh 1); two more handles take slots
//     1 and 2 (procHigh 3).
//  2. The handle in slot 1 closes: procHigh stays 3. A new handle takes
//     slot 1 again, the lowest free: procHigh stays 3.
//  3. watchOthers, from slot 0, watches slots 1 and 2; watchAll polls,
//     since slot 3 and the rest are free.
//  4. procHigh set to procCap+1: procHigh() reads procCap, and Open
//     reports ErrCorrupt (attaching nothing). Set back to 3, Open works.
func TestProcHigh(t *testing.T) {
	name := shmtest.Name(t)
	s, err := Create(name, 1<<20, &Options{MaxProcesses: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	high := func() uint32 { return load32(s.mem, offProcHigh) }
	if h := high(); h != 1 {
		t.Fatalf("procHigh %d after the creator's attach, want 1", h)
	}
	open := func() *Segment {
		t.Helper()
		h, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	h1, h2 := open(), open()
	if h := high(); h != 3 {
		t.Fatalf("procHigh %d with slots 0-2 claimed, want 3", h)
	}
	h1.Close()
	if h := high(); h != 3 {
		t.Fatalf("procHigh %d after slot 1's Close, want 3 (never lowered)", h)
	}
	h3 := open()
	if h3.slot != h1.slot {
		t.Fatalf("new handle at offset %d, want slot 1's (%d)", h3.slot, h1.slot)
	}
	if h := high(); h != 3 {
		t.Fatalf("procHigh %d after slot 1's reuse, want 3", h)
	}

	lives, ok, poll := s.watchOthers(nil, 0)
	if !ok {
		t.Fatal("watchOthers: a word changed under it, with nobody else running")
	}
	if theKeeper().robust {
		if poll || len(lives) != 2 || lives[0].gen != u32at(s.mem, h3.slot+slotGen) || lives[1].gen != u32at(s.mem, h2.slot+slotGen) {
			t.Fatalf("watchOthers: %d watches (poll %v), want slots 1 and 2's", len(lives), poll)
		}
	}
	if _, ok, poll := s.watchAll(nil); ok && !poll {
		t.Fatal("watchAll does not poll with free slots from procHigh on")
	}

	store32(s.mem, offProcHigh, 9)
	if h := s.procHigh(); h != 8 {
		t.Fatalf("procHigh() %d with 9 in the word, want procCap (8)", h)
	}
	if h, err := Open(name); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			h.Close()
		}
		t.Fatalf("Open with procHigh 9 of 8 slots: %v, want ErrCorrupt", err)
	}
	if h := high(); h != 9 {
		t.Fatalf("procHigh %d after the refused Open, want 9 (untouched)", h)
	}
	for i := range uint64(8) {
		if v := load32(s.mem, s.lay.procOff+i*procSlotSize+slotLive); (i == 1 || i == 2 || i == 0) != (v != 0) {
			t.Fatalf("slot %d's live word %#x after the refused Open", i, v)
		}
	}
	store32(s.mem, offProcHigh, 3)
	if h4 := open(); (h4.slot-s.lay.procOff)/procSlotSize != 3 || high() != 4 {
		t.Fatalf("after the repair: new handle at offset %d, procHigh %d; want slot 3, 4", h4.slot, high())
	}
}
