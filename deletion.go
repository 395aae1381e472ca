package processshared

import (
	"fmt"
	"io/fs"
	"math/bits"
	"sync/atomic"
	"time"
)

// Deletion and reuse of an object's space.
//
// Segment.Delete frees an object's name at once and its space once no
// process can reach it any more. Who can reach an object is written in its
// extent header (layout.go): bit i of the pins is set while the handle of
// process table slot i holds at least one object handle on it (a Mutex, a
// Bytes, ...; counted per Segment handle in Segment.pins). A deleted
// object's extent goes into the free table, and an allocation takes an
// extent from there only when no live slot pins it.
//
// The states of one object, with the steps that move it (the labels are
// those of the model, internal/model/object.go):
//
//	entry ready(g), extent in use
//	  ─ obj.delete.load_entry: read g and the extent's offset
//	  ─ obj.delete.mark: entry CAS (ready, g) → (deleted, g) ──▶ deleted, extent owned by nobody
//	deleted (extent not yet in the free table)
//	  ─ obj.delete.free: extent offset stored in a free word ──▶ free
//	free
//	  ─ obj.alloc.check_pins: every set bit's slot is dead ───▶ reusable
//	  ─ obj.alloc.take: CAS free word off → 0 ─────────────────▶ allocated to a new object
//	allocated
//	  ─ the pins are cleared, the memory zeroed, the new entry
//	    claimed and published (obj.create.claim, obj.create.publish)
//
// and of a handle's open (Segment.object on a ready entry, and on the
// handle's cache of validated entries):
//
//	O1 obj.open.load_entry  read the entry: ready, gen g, the extent's offset
//	O2 obj.open.pin         set this slot's bit in the extent's pins (OR)
//	O3 obj.open.recheck     the entry is still ready with gen g: the handle
//	                        is open; otherwise clear the bit (obj.open.unpin,
//	                        unless another handle here pins the same
//	                        extent) and probe again
//	U  obj.use              the handle reads and writes the object
//	D  obj.drop.unpin       Drop (or Segment.Close) clears the bit
//
// The mark is one 64-bit CAS of the state and generation words: a CAS of
// the state alone succeeds on a newer object of the name that replaced
// the one read (another Delete and a create in between), and frees the old
// extent a second time (internal/model, BugDeleteNoGen: "double-free").
//
// Why no handle can use an extent that a new object reuses: the pin (O2)
// and Delete's mark are both sequentially consistent atomics, and so are
// O3's load and the allocator's load of the pins. If O3 saw the entry
// ready, O2 came before the mark, which comes before the extent enters the
// free table and before any check of its pins: the check sees the bit, and
// the extent stays until D. If O3 saw it deleted, the handle never uses it;
// its bit, set in the extent of a newer object perhaps, is a pin for a
// moment, which only delays a reuse. Without O3 (the naive open: read the
// entry, pin, use), a Delete and a reuse between O1 and O2 give the handle
// the new object's memory (internal/model, BugNoRecheck).
//
// A process that dies leaves its bits set. A bit pins only while its slot
// is alive (Segment.lookup of the slot's current claim), so a dead
// process's pins are ignored; a process that claims the slot again clears
// its slot's bit in every extent the directory and the free table name
// before it opens anything (clearStalePins). An extent whose entry left the
// directory while the scan ran keeps the stale bit until the slot's next
// claim: it is not reused meanwhile.
//
// Kills. A creator killed while it holds an entry claimed leaves it to the
// next prober (Segment.waitClaim), which makes it deleted again (its name
// is whole) or dead, and frees its count. A Delete killed between
// obj.delete.mark and obj.delete.free, or an
// allocation killed between obj.alloc.take and publishing the new entry,
// loses that extent: it is in no entry and no free word. The free table
// has maxObjects words; a Delete that finds it full loses the extent too.
// Neither is unsafe; both are space lost until the segment is removed.
//
// Directory entries. A deleted entry keeps its name and is claimed again
// only by a creator of that name (directory.go, Segment.object), so the
// directory holds at most dirCap distinct names over the segment's life:
// deleted names still take an entry.

// A pin counts the object handles this Segment holds on the object at an
// offset.
type pin struct {
	entry uint64 // the directory entry it was opened at
	gen   uint32 // and its generation
	n     int
}

// pinWord returns the offset of the word of off's extent pins that holds
// this handle's bit, and the bit.
func (s *Segment) pinWord(off uint64) (uint64, uint64) {
	i := (s.slot - s.lay.procOff) / procSlotSize
	return off - s.lay.extHdr + extPins + i/64*8, 1 << (i % 64)
}

// pin pins the object info (entry e, generation gen) for one more handle,
// and reports whether the entry is still ready with gen after the pin took:
// otherwise it unpins again, and the object must not be used.
func (s *Segment) pin(info ObjectInfo, e uint64, gen uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinLocked(info, e, gen)
	if s.entryLive(e, gen) { // step: obj.open.recheck
		return true
	}
	s.unpinLocked(uint64(info.Offset))
	return false
}

// pinLocked is pin without the check. The caller holds s.mu.
func (s *Segment) pinLocked(info ObjectInfo, e uint64, gen uint32) {
	off := uint64(info.Offset)
	p := s.pins[off]
	if p == nil {
		if s.pins == nil {
			s.pins = make(map[uint64]*pin)
		}
		p = &pin{entry: e, gen: gen}
		s.pins[off] = p
		w, bit := s.pinWord(off)
		atomic.OrUint64(u64at(s.mem, w), bit) // step: obj.open.pin
	}
	p.n++
}

// unpin drops one handle's pin on the object at off. The caller does not
// touch the object afterwards.
func (s *Segment) unpin(off uint64) {
	if !s.enter() {
		return // Close cleared the pins
	}
	defer s.exit()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpinLocked(off)
}

func (s *Segment) unpinLocked(off uint64) {
	p := s.pins[off]
	if p == nil {
		return
	}
	if p.n--; p.n > 0 {
		return
	}
	delete(s.pins, off)
	w, bit := s.pinWord(off)
	atomic.AndUint64(u64at(s.mem, w), ^bit) // step: obj.open.unpin, obj.drop.unpin
}

// unpinAll clears every pin of this handle, for Close. No call is inside
// the mapping any more.
func (s *Segment) unpinAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.guard(new(error), guarded())
	for off := range s.pins {
		w, bit := s.pinWord(off)
		atomic.AndUint64(u64at(s.mem, w), ^bit) // step: obj.drop.unpin
	}
	s.pins = nil
}

// extentOK reports whether off, read from shared memory, can be the start
// of an object: aligned, with its extent header inside the allocated heap.
func (s *Segment) extentOK(off uint64) bool {
	return off%objAlign == 0 && off >= s.lay.heapOff+s.lay.extHdr && off <= min(load64(s.mem, offHeapNext), uint64(len(s.mem)))
}

// clearStalePins clears this slot's bit in the extents of every ready
// entry and every free word: a process that held the slot before may have
// died pinning them. It runs once, after attach and before any pin.
func (s *Segment) clearStalePins() (err error) {
	defer s.guard(&err, guarded())
	dir, n, err := s.dirBounds()
	if err != nil {
		return err
	}
	clear := func(off uint64) {
		if s.extentOK(off) {
			w, bit := s.pinWord(off)
			if load64(s.mem, w)&bit != 0 {
				atomic.AndUint64(u64at(s.mem, w), ^bit)
			}
		}
	}
	for i := range n {
		e := dir + i*dirEntrySize
		if load32(s.mem, e+entState) == entryReady {
			clear(load64(s.mem, e+entOff))
		}
	}
	for j := range s.lay.maxObjects {
		if off := load64(s.mem, s.lay.freeOff+j*8); off != 0 {
			clear(off)
		}
	}
	return nil
}

// pinned reports whether a live process table slot pins the extent of the
// object at off.
func (s *Segment) pinned(off uint64) bool {
	for j := range (s.lay.procCap + 63) / 64 {
		b := load64(s.mem, off-s.lay.extHdr+extPins+j*8)
		for b != 0 {
			i := j*64 + uint64(bits.TrailingZeros64(b))
			b &= b - 1
			if i >= s.lay.procCap {
				continue // garbage: no such slot
			}
			gen := load32(s.mem, s.lay.procOff+i*procSlotSize+slotGen)
			if s.lookup(s.lay.ident(i, gen)).alive {
				return true
			}
		}
	}
	return false
}

// alloc reserves size bytes for a new object, zeroed and aligned to
// objAlign: the extent of a deleted object that nobody pins, if the free
// table has one big enough, or else a new extent from the top of the heap.
func (s *Segment) alloc(size uint64) (uint64, error) {
	if load32(s.mem, offFreeCount) != 0 {
		next := min(load64(s.mem, offHeapNext), uint64(len(s.mem)))
		for j := range s.lay.maxObjects {
			w := u64at(s.mem, s.lay.freeOff+j*8)
			off := atomic.LoadUint64(w)
			if off == 0 {
				continue
			}
			if !s.extentOK(off) {
				return 0, fmt.Errorf("%w: free table word %d holds offset %d", ErrCorrupt, j, off)
			}
			c := load64(s.mem, off-s.lay.extHdr+extCap)
			if c > next-off {
				return 0, fmt.Errorf("%w: the extent at %d claims %d bytes", ErrCorrupt, off, c)
			}
			if c < size || s.pinned(off) { // step: obj.alloc.check_pins
				continue
			}
			if !atomic.CompareAndSwapUint64(w, off, 0) { // step: obj.alloc.take
				continue
			}
			s.countFree(-1)
			for p := uint64(0); p < (s.lay.procCap+63)/64; p++ {
				store64(s.mem, off-s.lay.extHdr+extPins+p*8, 0)
			}
			// Only size bytes: a cap that garbage made too large must
			// not wipe the next object.
			clear(s.mem[off : off+size])
			return off, nil
		}
	}
	return s.bump(size)
}

// countFree adds d to the free table's count, which is never below the
// number of words in use: a word is counted before it is filled and
// uncounted after it is emptied.
func (s *Segment) countFree(d int32) {
	w := u32at(s.mem, offFreeCount)
	for {
		c := atomic.LoadUint32(w)
		if d < 0 && c == 0 {
			return
		}
		if atomic.CompareAndSwapUint32(w, c, uint32(int32(c)+d)) {
			return
		}
	}
}

// freeExtent puts the extent of a deleted object into the free table. A
// full table loses it.
func (s *Segment) freeExtent(off uint64) {
	s.countFree(1)
	for j := range s.lay.maxObjects {
		if atomic.CompareAndSwapUint64(u64at(s.mem, s.lay.freeOff+j*8), 0, off) { // step: obj.delete.free
			return
		}
	}
	s.countFree(-1)
}

// Delete deletes the object called name from the segment. The name is free
// at once: the next NewMutex (or other constructor) of that name creates a
// new object. The old object's space is reused by a later object once no
// handle on it is left: every process that holds one has called its Drop
// (or closed its Segment, or died).
//
// Handles on the deleted object, in this process and others, keep working
// on the old object until they are dropped, and never touch the new one of
// that name, nor an object that reuses the space. Mutex.LockContext,
// Semaphore.Acquire and a Queue's blocking Send and Recv return ErrDeleted
// instead of waiting on a deleted object (Lock, TryLock and the calls that
// succeed at once work on the old object; a Cond's waiters are not told).
// A lookup that raced with Delete may return a handle on the old object,
// which then behaves in the same way.
//
// Delete does not look at the object's state: deleting a Mutex that a
// process holds, or a Queue with messages, is allowed, and the holder's
// handle still unlocks the old Mutex. It returns an error matching
// fs.ErrNotExist if there is no object called name, ErrInvalidName for a
// bad name, ErrCorrupt, and ErrClosed.
func (s *Segment) Delete(name string) (err error) {
	if err := checkObjectName(name); err != nil {
		return err
	}
	defer s.guard(&err, guarded())
	if !s.enter() {
		return ErrClosed
	}
	defer s.exit()
	dir, n, err := s.dirBounds()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(s.timeout)
	h := dirHash(name, n)
	for k := uint64(0); k < n; k++ {
		i := (h + k) % n
		e := dir + i*dirEntrySize
		w := u32at(s.mem, e+entState)
		st := atomic.LoadUint32(w)
		switch {
		case st == entryEmpty:
			return fmt.Errorf("object %q: %w", name, fs.ErrNotExist)
		case st == entryReady:
			if !s.entryNamed(e, name) {
				continue
			}
			gen := load32(s.mem, e+entGen) // step: obj.delete.load_entry
			info, err := s.readEntry(e)
			if !s.entryLive(e, gen) {
				k-- // deleted or replaced meanwhile: look again
				continue
			}
			if err != nil {
				return err
			}
			// State and generation in one CAS: the object read above,
			// not a newer one of that name that replaced it meanwhile.
			if !atomic.CompareAndSwapUint64(u64at(s.mem, e+entState), entPair(entryReady, gen), entPair(entryDeleted, gen)) { // step: obj.delete.mark
				k--
				continue
			}
			s.countObject(-1)
			s.freeExtent(uint64(info.Offset))
			return nil
		case st == entryDeleted && s.entryNamed(e, name):
			return fmt.Errorf("object %q: %w", name, fs.ErrNotExist)
		case st == entryDead || st == entryDeleted:
			continue
		case st&entryClaimed != 0:
			if err := s.waitClaim(e, st, i, deadline); err != nil {
				return err
			}
			k--
		default:
			return fmt.Errorf("%w: directory entry %d has state %#x", ErrCorrupt, i, st)
		}
	}
	return fmt.Errorf("object %q: %w", name, fs.ErrNotExist)
}

// An objRef names the directory entry and generation an object handle was
// opened at, for its checks of deletion (objRef.live).
type objRef struct {
	entry uint64
	gen   uint32
}

// ref returns the objRef of the object at off, which this handle pins: a
// constructor calls it once, after Segment.object.
func (s *Segment) ref(off uint64) objRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pins[off]; p != nil {
		return objRef{p.entry, p.gen}
	}
	return objRef{}
}

// live returns nil if the object r names is still its entry's, and an error
// matching ErrDeleted if it was deleted: one load. The caller holds
// s.enter().
func (s *Segment) live(r objRef, what string) error {
	if r.entry == 0 || s.entryLive(r.entry, r.gen) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, ErrDeleted)
}

// dropped returns the Segment that an object handle's Drop puts in place of
// s: closed from the start, so every method of the handle returns
// ErrClosed, or panics, without touching s's mapping. It is made once per
// Segment and shared by its dropped handles.
func (s *Segment) dropped() *Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stub == nil {
		s.stub = &Segment{name: s.name, anon: s.anon, closed: 1, drop: true, drained: make(chan struct{}, 1), done: make(chan struct{})}
		close(s.stub.done)
	}
	return s.stub
}
