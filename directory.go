package processshared

import (
	"cmp"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/processshared/processshared/internal/futex"
)

// A Kind is the type of a named object in a segment's directory.
type Kind uint32

// The kinds of object a segment can hold. Their values are part of the
// segment layout and never change.
const (
	KindBytes     Kind = 1
	KindArray     Kind = 2
	KindSlot      Kind = 3
	KindMutex     Kind = 4
	KindCond      Kind = 5
	KindSemaphore Kind = 6
	KindQueue     Kind = 7
	KindRWMutex   Kind = 8
	KindEvent     Kind = 9
	KindBarrier   Kind = 10
	KindWaitGroup Kind = 11
	KindOnce      Kind = 12

	// KindCountingSemaphore is a Semaphore of counting permits
	// (NewCountingSemaphore); KindSemaphore is one of owned permits.
	KindCountingSemaphore Kind = 13
)

func (k Kind) String() string {
	switch k {
	case KindBytes:
		return "bytes"
	case KindArray:
		return "array"
	case KindSlot:
		return "slot"
	case KindMutex:
		return "mutex"
	case KindCond:
		return "cond"
	case KindSemaphore:
		return "semaphore"
	case KindQueue:
		return "queue"
	case KindCountingSemaphore:
		return "counting-semaphore"
	case KindRWMutex:
		return "rwmutex"
	case KindEvent:
		return "event"
	case KindBarrier:
		return "barrier"
	case KindWaitGroup:
		return "waitgroup"
	case KindOnce:
		return "once"
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// describeObject names an object of kind, size bytes and kind-specific
// param for an error message: "an array of 8-byte elements (4096 bytes)".
func describeObject(k Kind, size uint64, param uint32) string {
	switch k {
	case KindArray:
		return fmt.Sprintf("an array of %d-byte elements (%d bytes)", param, size)
	case KindSlot:
		return fmt.Sprintf("a slot of capacity %d (%d bytes)", param, size)
	case KindSemaphore:
		if param == 0 {
			return fmt.Sprintf("a semaphore of owned permits with no maximum (%d bytes)", size)
		}
		return fmt.Sprintf("a semaphore of %d owned permits (%d bytes)", param, size)
	case KindCountingSemaphore:
		if param == 0 {
			return fmt.Sprintf("a counting semaphore with no maximum (%d bytes)", size)
		}
		return fmt.Sprintf("a counting semaphore of maximum %d (%d bytes)", param, size)
	case KindQueue:
		return fmt.Sprintf("a queue of messages of up to %d bytes (%d bytes)", param, size)
	case KindBytes:
		return fmt.Sprintf("a bytes object of %d bytes", size)
	case KindMutex, KindCond, KindRWMutex:
		return fmt.Sprintf("a %v (%d bytes)", k, size)
	case KindEvent:
		if param == eventAuto {
			return fmt.Sprintf("an auto-reset event (%d bytes)", size)
		}
		return fmt.Sprintf("a manual-reset event (%d bytes)", size)
	case KindBarrier:
		return fmt.Sprintf("a barrier of %d parties (%d bytes)", param, size)
	case KindWaitGroup, KindOnce:
		return fmt.Sprintf("a %v (%d bytes)", k, size)
	}
	return fmt.Sprintf("an object of %v (%d bytes, parameter %d)", k, size, param)
}

// ObjectInfo describes a named object in a segment.
type ObjectInfo struct {
	Name   string
	Kind   Kind
	Offset int64  // from the start of the segment
	Size   int64  // bytes
	Param  uint32 // kind-specific: the element size of an Array

	entry uint64 // where Objects found it: its directory entry's offset
	gen   uint32 // and the entry's generation (0: unknown)
}

func checkObjectName(name string) error {
	if name == "" || len(name) > MaxObjectNameLen {
		return fmt.Errorf("%w: object name %q (want 1 to %d bytes)", ErrInvalidName, name, MaxObjectNameLen)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return fmt.Errorf("%w: object name %q contains NUL", ErrInvalidName, name)
		}
	}
	return nil
}

// dirBounds returns the directory's offset and capacity, checked against the
// mapping.
func (s *Segment) dirBounds() (off, n uint64, err error) {
	off, n = s.lay.dirOff, s.lay.dirCap
	if off < hdrSize || off+n*dirEntrySize > uint64(len(s.mem)) {
		return 0, 0, fmt.Errorf("%w: directory out of bounds", ErrCorrupt)
	}
	return off, n, nil
}

// readEntry reads and validates the ready entry at e.
func (s *Segment) readEntry(e uint64) (ObjectInfo, error) {
	info := ObjectInfo{
		Kind:   Kind(load32(s.mem, e+entKind)),
		Param:  load32(s.mem, e+entParam),
		Offset: int64(load64(s.mem, e+entOff)),
		Size:   int64(load64(s.mem, e+entSize)),
	}
	name := s.mem[e+entName : e+entName+MaxObjectNameLen]
	n := 0
	for n < len(name) && name[n] != 0 {
		n++
	}
	info.Name = string(name[:n])
	heap := s.lay.heapOff
	off, end := uint64(info.Offset), uint64(info.Offset)+uint64(info.Size)
	if info.Offset < 0 || info.Size < 0 || off < heap+s.lay.extHdr || end > uint64(len(s.mem)) || end < off ||
		end > load64(s.mem, offHeapNext) || off%objAlign != 0 {
		return info, fmt.Errorf("%w: object %q at %d+%d lies outside the segment's allocated heap", ErrCorrupt, info.Name, info.Offset, info.Size)
	}
	return info, nil
}

// A seenEntry is a directory entry this handle has validated: a ready
// entry does not change while its generation stays, so each generation of
// it is read and checked once (see Segment.seen).
type seenEntry struct {
	info  ObjectInfo
	entry uint64 // the entry's offset in the mapping
	gen   uint32 // its generation when validated
}

// validate checks a ready entry's object (at entry e, generation gen),
// first seen by this handle, against the live objects the handle saw
// before: ErrCorrupt if it overlaps one of them, since two handles on one
// word would break each object's protocol. Objects never overlap unless
// someone rewrote the directory; but the space of a deleted object is
// reused (deletion.go), so a span whose entry is no longer live, and that
// this handle does not pin, is dropped instead. Any two live objects this
// handle uses are so checked against each other, when the second is first
// seen. It records the entry as seen. The caller holds s.mu.
func (s *Segment) validate(info ObjectInfo, e uint64, gen uint32) error {
	off, end := uint64(info.Offset), uint64(info.Offset)+uint64(info.Size)
	for info.Size != 0 {
		// s.spans is sorted by start and its spans do not overlap.
		i, _ := slices.BinarySearchFunc(s.spans, off, func(sp span, off uint64) int { return cmp.Compare(sp.off, off) })
		j := -1
		if i < len(s.spans) && s.spans[i].off < end {
			j = i
		} else if i > 0 && s.spans[i-1].end > off {
			j = i - 1
		}
		if j < 0 {
			s.spans = slices.Insert(s.spans, i, span{off, end, info.Name, e, gen})
			break
		}
		old := s.spans[j]
		if s.entryLive(old.entry, old.gen) || s.pins[old.off] != nil {
			return fmt.Errorf("%w: object %q [%d, %d) overlaps %q", ErrCorrupt, info.Name, off, end, old.name)
		}
		s.spans = slices.Delete(s.spans, j, j+1)
		if seen, ok := s.seen[old.name]; ok && seen.entry == old.entry && seen.gen == old.gen {
			delete(s.seen, old.name)
		}
	}
	if s.seen == nil {
		s.seen = make(map[string]seenEntry)
	}
	s.seen[info.Name] = seenEntry{info, e, gen}
	return nil
}

// forget drops the seen entry of name, whose object was deleted, and its span.
func (s *Segment) forget(name string, seen seenEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.seen[name]; !ok || cur != seen {
		return
	}
	delete(s.seen, name)
	if s.pins[uint64(seen.info.Offset)] != nil {
		return // still pinned by a handle here: the space is not reused
	}
	off := uint64(seen.info.Offset)
	i, found := slices.BinarySearchFunc(s.spans, off, func(sp span, off uint64) int { return cmp.Compare(sp.off, off) })
	if found && s.spans[i].entry == seen.entry && s.spans[i].gen == seen.gen {
		s.spans = slices.Delete(s.spans, i, i+1)
	}
}

// A span is the memory of an object a handle has seen, and the entry and
// generation it was seen at.
type span struct {
	off, end uint64
	name     string
	entry    uint64
	gen      uint32
}

// dirHash is where the probe for name starts in a directory of n entries
// (FNV-1a).
func dirHash(name string, n uint64) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return h % n
}

// Objects lists the named objects in the segment, by offset. An object
// deleted while Objects runs may be left out.
func (s *Segment) Objects() (_ []ObjectInfo, err error) {
	defer s.guard(&err, guarded())
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	dir, n, err := s.dirBounds()
	if err != nil {
		return nil, err
	}
	var out []ObjectInfo
	for i := range n {
		e := dir + i*dirEntrySize
		if load32(s.mem, e+entState) == entryReady {
			gen := load32(s.mem, e+entGen)
			info, err := s.readEntry(e)
			if !s.entryLive(e, gen) {
				continue // deleted while read: its fields may be a newer object's
			}
			if err != nil {
				return out, err
			}
			info.entry, info.gen = e, gen
			out = append(out, info)
		}
	}
	// By offset (by creation, but for the space of deleted objects, which
	// is reused).
	slices.SortFunc(out, func(a, b ObjectInfo) int { return cmp.Compare(a.Offset, b.Offset) })
	return out, nil
}

// object finds the named object, creating it if it does not exist, in the
// manner of Boost.Interprocess's find_or_construct. A new object gets size
// bytes of zeroed memory, aligned to objAlign, which init (if not nil) fills
// before any other process can see the object. An existing object must have
// the same kind, param and size. The handle returned pins the object
// (deletion.go): the caller's object handle must call s.unpin(off) when it
// is dropped.
//
// The directory is a hash table of entries, open addressing with linear
// probing, claimed with a CAS and never removed. The probe for a name
// starts at dirHash(name) and goes on, wrapping around, until it finds the
// name's ready entry, the name's deleted entry, or an empty entry: at the
// last two the name does not exist, and a creator claims that entry. A
// claimed entry on the way is waited for until it is ready (or its claimer
// is found dead), since it may hold the name; a dead entry, and a deleted
// entry of another name, are passed. An entry's name is written once, when
// it leaves empty, so two processes creating the same name probe the same
// entries and meet at the first that is empty or is the name's deleted
// entry, and no name ever has two ready entries. An entry goes back to
// empty only when its claimer found no room for the object (back to
// deleted, if it was claimed from deleted): a prober waiting there then
// sees it as it was and claims it.
//
// Each ready entry is read and validated once per generation per handle
// (validate); later lookups of its name check only that the entry is still
// ready with that generation (entryLive, two loads).
func (s *Segment) object(name string, kind Kind, param uint32, size uint64, init func(mem []byte)) (off uint64, err error) {
	if err := checkObjectName(name); err != nil {
		return 0, err
	}
	defer s.guard(&err, guarded())
	if !s.enter() {
		return 0, ErrClosed
	}
	defer s.exit()
	s.mu.Lock()
	seen, ok := s.seen[name]
	s.mu.Unlock()
	if ok {
		if _, err := s.matchObject(seen.info, kind, param, size); err != nil {
			if s.entryLive(seen.entry, seen.gen) {
				return 0, err
			}
		} else if s.pin(seen.info, seen.entry, seen.gen) {
			return uint64(seen.info.Offset), nil
		}
		s.forget(name, seen) // deleted since this handle saw it
	}
	dir, n, err := s.dirBounds()
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(s.timeout)
	h := dirHash(name, n)
	for k := uint64(0); k < n; k++ {
		i := (h + k) % n
		e := dir + i*dirEntrySize
		w := u32at(s.mem, e+entState)
		st := atomic.LoadUint32(w)
		switch {
		case st == entryEmpty || st == entryDeleted && s.entryNamed(e, name):
			if !s.countObject(1) {
				return 0, fmt.Errorf("%w: the directory holds its %d objects (Options.MaxObjects); %q is one more", ErrNoSpace, s.lay.maxObjects, name)
			}
			if !atomic.CompareAndSwapUint32(w, st, entryClaimed|s.id) { // step: obj.create.claim
				s.countObject(-1)
				k-- // look at this entry again
				continue
			}
			gen := uint32(1) // set once the name is written
			if st == entryDeleted {
				if gen = load32(s.mem, e+entGen) + 1; gen == 0 {
					gen = 1
				}
				store32(s.mem, e+entGen, gen)
			}
			off, err := s.alloc(size)
			if err != nil {
				atomic.StoreUint32(w, st)
				futex.Wake(w, 1<<30)
				s.countObject(-1)
				return 0, fmt.Errorf("object %q: %w", name, err)
			}
			store32(s.mem, off-s.lay.extHdr+extGen, gen)
			if st == entryEmpty {
				copy(s.mem[e+entName:e+entName+MaxObjectNameLen], name)
				store32(s.mem, e+entGen, gen)
			}
			store32(s.mem, e+entKind, uint32(kind))
			store32(s.mem, e+entParam, param)
			store64(s.mem, e+entOff, off)
			store64(s.mem, e+entSize, size)
			if init != nil {
				init(s.mem[off : off+size : off+size])
			}
			info := ObjectInfo{Name: name, Kind: kind, Param: param, Offset: int64(off), Size: int64(size)}
			s.mu.Lock()
			err = s.validate(info, e, gen)
			if err == nil {
				s.pinLocked(info, e, gen) // before the entry is ready: nobody can delete it yet
			}
			s.mu.Unlock()
			atomic.StoreUint32(w, entryReady) // step: obj.create.publish
			futex.Wake(w, 1<<30)
			if err != nil {
				return 0, err // a span someone wrote into the directory overlaps ours
			}
			return off, nil
		case st == entryReady:
			if !s.entryNamed(e, name) {
				continue
			}
			gen := load32(s.mem, e+entGen) // step: obj.open.load_entry
			info, err := s.readEntry(e)
			if err != nil {
				if !s.entryLive(e, gen) {
					k-- // deleted meanwhile: look again
					continue
				}
				return 0, err
			}
			hgen := load32(s.mem, uint64(info.Offset)-s.lay.extHdr+extGen)
			if !s.entryLive(e, gen) {
				k--
				continue
			}
			if hgen != gen {
				return 0, fmt.Errorf("%w: object %q: directory entry %d has generation %d, its extent %d", ErrCorrupt, name, i, gen, hgen)
			}
			s.mu.Lock()
			if seen, ok := s.seen[name]; ok && seen.entry == e && seen.gen == gen {
				info = seen.info // another goroutine validated it meanwhile
			} else if err := s.validate(info, e, gen); err != nil {
				s.mu.Unlock()
				return 0, err
			}
			s.mu.Unlock()
			if _, err := s.matchObject(info, kind, param, size); err != nil {
				return 0, err
			}
			if !s.pin(info, e, gen) {
				k-- // deleted before the pin took: look again
				continue
			}
			return uint64(info.Offset), nil
		case st == entryDead || st == entryDeleted:
			continue
		case st&entryClaimed != 0:
			// The claimer's identity, not its pid: a pid from another
			// PID namespace would name someone else here.
			if err := s.waitClaim(e, st, i, deadline); err != nil {
				return 0, err
			}
			k-- // look at this entry again
		default:
			return 0, fmt.Errorf("%w: directory entry %d has state %#x", ErrCorrupt, i, st)
		}
	}
	return 0, fmt.Errorf("%w: directory holds %d objects", ErrNoSpace, n)
}

// waitClaim waits a little for the claimer of the entry at e (index i),
// whose state word was st, or reaps the claim if the claimer is dead: the
// entry becomes deleted if its name is whole (gen is not 0; see the entry
// fields in layout.go), dead otherwise, and leaves the count of objects.
// It returns ErrNotInitialized after the deadline.
func (s *Segment) waitClaim(e uint64, st uint32, i uint64, deadline time.Time) error {
	w := u32at(s.mem, e+entState)
	// The claimer's identity, not its pid: a pid from another PID
	// namespace would name someone else here.
	claimer := s.lookup(st &^ entryClaimed)
	switch {
	case !claimer.alive:
		to := uint32(entryDead)
		if load32(s.mem, e+entGen) != 0 {
			to = entryDeleted
		}
		if atomic.CompareAndSwapUint32(w, st, to) {
			s.countObject(-1)
			futex.Wake(w, 1<<30)
		}
	case time.Now().After(deadline):
		return fmt.Errorf("%w: object entry %d claimed by pid %d", ErrNotInitialized, i, claimer.pid)
	default:
		futex.Wait(w, st, futex.Now()+int64(time.Millisecond))
	}
	return nil
}

// entryLive reports whether the directory entry at e is ready with
// generation gen: whether the object a reader read from it then is still
// the entry's (see the entry fields in layout.go).
func (s *Segment) entryLive(e uint64, gen uint32) bool {
	return load64(s.mem, e+entState) == entPair(entryReady, gen) // step: obj.open.recheck
}

// countObject adds d to the count of claimed directory entries, and reports
// false, changing nothing, if that would take it past maxObjects. The count
// keeps the hash table at most two thirds full; entries of claimers that
// died stay counted.
func (s *Segment) countObject(d int) bool {
	w := u32at(s.mem, offObjects)
	for {
		c := atomic.LoadUint32(w)
		nc := uint32(int64(c) + int64(d))
		if d > 0 && uint64(nc) > s.lay.maxObjects || d < 0 && c == 0 {
			return d < 0
		}
		if atomic.CompareAndSwapUint32(w, c, nc) {
			return true
		}
	}
}

// matchObject returns the offset of the existing object info, or
// ErrMismatch if it is not of the kind, param and size asked for.
func (s *Segment) matchObject(info ObjectInfo, kind Kind, param uint32, size uint64) (uint64, error) {
	if info.Kind != kind || info.Param != param || uint64(info.Size) != size {
		return 0, fmt.Errorf("%w: %q is %s, not %s",
			ErrMismatch, info.Name, describeObject(info.Kind, uint64(info.Size), info.Param), describeObject(kind, size, param))
	}
	return uint64(info.Offset), nil
}

// entryNamed reports whether the ready entry at e holds name, comparing
// the bytes in place.
func (s *Segment) entryNamed(e uint64, name string) bool {
	b := s.mem[e+entName : e+entName+MaxObjectNameLen]
	return string(b[:len(name)]) == name && (len(name) == MaxObjectNameLen || b[len(name)] == 0)
}

// bump reserves an extent of size bytes, its header before it, aligned to
// objAlign, from the top of the segment's heap, and returns the offset of
// its first byte after the header. The memory is zero: it was never used.
func (s *Segment) bump(size uint64) (uint64, error) {
	next := u64at(s.mem, offHeapNext)
	heap := s.lay.heapOff
	for {
		cur := atomic.LoadUint64(next)
		start := alignUp(cur, objAlign) + s.lay.extHdr
		end := start + size
		if cur < heap || start < cur || end < start {
			return 0, fmt.Errorf("%w: heap pointer %d", ErrCorrupt, cur)
		}
		if end > uint64(len(s.mem)) {
			return 0, fmt.Errorf("%w: %d bytes wanted, %d left", ErrNoSpace, size, uint64(len(s.mem))-min(start, uint64(len(s.mem))))
		}
		if atomic.CompareAndSwapUint64(next, cur, end) { // step: obj.alloc.bump
			store64(s.mem, start-s.lay.extHdr+extCap, size)
			return start, nil
		}
	}
}
