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
	if info.Offset < 0 || info.Size < 0 || off < heap || end > uint64(len(s.mem)) || end < off ||
		end > load64(s.mem, offHeapNext) || off%objAlign != 0 {
		return info, fmt.Errorf("%w: object %q at %d+%d lies outside the segment's allocated heap", ErrCorrupt, info.Name, info.Offset, info.Size)
	}
	return info, nil
}

// A seenEntry is a directory entry this handle has validated: ready entries
// never change, so each is read and checked once (see Segment.seen).
type seenEntry struct {
	info ObjectInfo
}

// validate checks a ready entry's object, first seen by this handle,
// against the objects the handle saw before: ErrCorrupt if it overlaps one
// of them, since two handles on one word would break each object's
// protocol. (Objects come from a bump pointer and never overlap unless
// someone rewrote the directory.) Any two objects this handle uses are so
// checked against each other, when the second is first seen. It records
// the entry as seen. The caller holds s.mu.
func (s *Segment) validate(info ObjectInfo) error {
	off, end := uint64(info.Offset), uint64(info.Offset)+uint64(info.Size)
	// s.spans is sorted by start and its spans do not overlap.
	i, _ := slices.BinarySearchFunc(s.spans, off, func(sp span, off uint64) int { return cmp.Compare(sp.off, off) })
	if info.Size != 0 {
		if i < len(s.spans) && s.spans[i].off < end {
			return fmt.Errorf("%w: object %q [%d, %d) overlaps %q", ErrCorrupt, info.Name, off, end, s.spans[i].name)
		}
		if i > 0 && s.spans[i-1].end > off {
			return fmt.Errorf("%w: object %q [%d, %d) overlaps %q", ErrCorrupt, info.Name, off, end, s.spans[i-1].name)
		}
		s.spans = slices.Insert(s.spans, i, span{off, end, info.Name})
	}
	if s.seen == nil {
		s.seen = make(map[string]seenEntry)
	}
	s.seen[info.Name] = seenEntry{info}
	return nil
}

// A span is the memory of an object a handle has seen.
type span struct {
	off, end uint64
	name     string
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

// Objects lists the named objects in the segment, in creation order.
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
			info, err := s.readEntry(e)
			if err != nil {
				return out, err
			}
			out = append(out, info)
		}
	}
	// Objects are allocated from a bump pointer: by offset is by creation.
	slices.SortFunc(out, func(a, b ObjectInfo) int { return cmp.Compare(a.Offset, b.Offset) })
	return out, nil
}

// object finds the named object, creating it if it does not exist, in the
// manner of Boost.Interprocess's find_or_construct. A new object gets size
// bytes of zeroed memory, aligned to objAlign, which init (if not nil) fills
// before any other process can see the object. An existing object must have
// the same kind, param and size.
//
// The directory is a hash table of entries, open addressing with linear
// probing, claimed with a CAS and never removed. The probe for a name
// starts at dirHash(name) and goes on, wrapping around, until it finds the
// name's ready entry, or an empty entry: then the name does not exist, and a
// creator claims that empty entry. A claimed entry on the way is waited for
// until it is ready (or its claimer is found dead), since it may hold the
// name; a dead entry is passed. So two processes creating the same name
// probe the same entries and meet at the first empty one, and no name is
// ever created twice. An entry goes back to empty only when its claimer
// found no room for the object: a prober waiting there then sees it empty
// and claims it, as if it had been empty all along.
//
// Each ready entry is read and validated once per handle (validate), and
// later lookups of its name are answered from the handle's memory.
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
		return s.matchObject(seen.info, kind, param, size)
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
		case st == entryEmpty:
			if !s.countObject(1) {
				return 0, fmt.Errorf("%w: the directory holds its %d objects (Options.MaxObjects); %q is one more", ErrNoSpace, s.lay.maxObjects, name)
			}
			if !atomic.CompareAndSwapUint32(w, entryEmpty, entryClaimed|s.id) {
				s.countObject(-1)
				k-- // look at this entry again
				continue
			}
			off, err := s.alloc(size)
			if err != nil {
				atomic.StoreUint32(w, entryEmpty)
				futex.Wake(w, 1<<30)
				s.countObject(-1)
				return 0, fmt.Errorf("object %q: %w", name, err)
			}
			copy(s.mem[e+entName:e+entName+MaxObjectNameLen], name)
			store32(s.mem, e+entKind, uint32(kind))
			store32(s.mem, e+entParam, param)
			store64(s.mem, e+entOff, off)
			store64(s.mem, e+entSize, size)
			if init != nil {
				init(s.mem[off : off+size : off+size])
			}
			atomic.StoreUint32(w, entryReady)
			futex.Wake(w, 1<<30)
			s.mu.Lock()
			err = s.validate(ObjectInfo{Name: name, Kind: kind, Param: param, Offset: int64(off), Size: int64(size)})
			s.mu.Unlock()
			if err != nil {
				return 0, err // a span someone wrote into the directory overlaps ours
			}
			return off, nil
		case st == entryReady:
			if !s.entryNamed(e, name) {
				continue
			}
			info, err := s.readEntry(e)
			if err != nil {
				return 0, err
			}
			s.mu.Lock()
			if seen, ok := s.seen[name]; ok {
				info = seen.info // another goroutine validated it meanwhile
			} else if err := s.validate(info); err != nil {
				s.mu.Unlock()
				return 0, err
			}
			s.mu.Unlock()
			return s.matchObject(info, kind, param, size)
		case st == entryDead:
			continue
		case st&entryClaimed != 0:
			// The claimer's identity, not its pid: a pid from another
			// PID namespace would name someone else here.
			claimer := s.lookup(st &^ entryClaimed)
			if !claimer.alive {
				atomic.CompareAndSwapUint32(w, st, entryDead)
			} else if time.Now().After(deadline) {
				return 0, fmt.Errorf("%w: object entry %d claimed by pid %d", ErrNotInitialized, i, claimer.pid)
			} else {
				futex.Wait(w, st, futex.Now()+int64(time.Millisecond))
			}
			k-- // look at this entry again
		default:
			return 0, fmt.Errorf("%w: directory entry %d has state %#x", ErrCorrupt, i, st)
		}
	}
	return 0, fmt.Errorf("%w: directory holds %d objects", ErrNoSpace, n)
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

// alloc reserves size bytes, aligned to objAlign, from the segment's heap.
// Space is never freed.
func (s *Segment) alloc(size uint64) (uint64, error) {
	next := u64at(s.mem, offHeapNext)
	heap := s.lay.heapOff
	for {
		cur := atomic.LoadUint64(next)
		start := alignUp(cur, objAlign)
		end := start + size
		if cur < heap || start < cur || end < start {
			return 0, fmt.Errorf("%w: heap pointer %d", ErrCorrupt, cur)
		}
		if end > uint64(len(s.mem)) {
			return 0, fmt.Errorf("%w: %d bytes wanted, %d left", ErrNoSpace, size, uint64(len(s.mem))-min(start, uint64(len(s.mem))))
		}
		if atomic.CompareAndSwapUint64(next, cur, end) {
			return start, nil
		}
	}
}
