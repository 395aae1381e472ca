package processshared

import (
	"fmt"
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
			return fmt.Sprintf("a semaphore with no maximum (%d bytes)", size)
		}
		return fmt.Sprintf("a semaphore of maximum %d (%d bytes)", param, size)
	case KindQueue:
		return fmt.Sprintf("a queue of messages of up to %d bytes (%d bytes)", param, size)
	case KindBytes:
		return fmt.Sprintf("a bytes object of %d bytes", size)
	case KindMutex, KindCond:
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

// checkOverlap returns ErrCorrupt if the object described by info, from
// entry i, overlaps any other ready entry's object: two handles on one word
// would break each object's protocol. (Objects are allocated from a bump
// pointer and never overlap unless someone rewrote the directory.)
func (s *Segment) checkOverlap(dir, n, i uint64, info ObjectInfo) error {
	off, end := uint64(info.Offset), uint64(info.Offset)+uint64(info.Size)
	for j := range n {
		if j == i {
			continue
		}
		e := dir + j*dirEntrySize
		st := load32(s.mem, e+entState)
		if st == entryEmpty {
			break
		}
		if st != entryReady {
			continue
		}
		o, sz := load64(s.mem, e+entOff), load64(s.mem, e+entSize)
		if o < end && off < o+sz && sz != 0 && info.Size != 0 {
			return fmt.Errorf("%w: objects %q and entry %d overlap", ErrCorrupt, info.Name, j)
		}
	}
	return nil
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
		switch st := load32(s.mem, e+entState); {
		case st == entryEmpty:
			return out, nil
		case st == entryReady:
			info, err := s.readEntry(e)
			if err != nil {
				return out, err
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// object finds the named object, creating it if it does not exist, in the
// manner of Boost.Interprocess's find_or_construct. A new object gets size
// bytes of zeroed memory, aligned to objAlign, which init (if not nil) fills
// before any other process can see the object. An existing object must have
// the same kind, param and size.
//
// The directory is an array of entries claimed in order with a CAS, never
// removed. A creator claims the first empty entry; a looker-up scans from the
// start and waits at a claimed entry until it is ready (or its claimer is
// found dead). So two processes creating the same name meet at the same
// entry, and no name is ever created twice.
func (s *Segment) object(name string, kind Kind, param uint32, size uint64, init func(mem []byte)) (off uint64, err error) {
	if err := checkObjectName(name); err != nil {
		return 0, err
	}
	defer s.guard(&err, guarded())
	if !s.enter() {
		return 0, ErrClosed
	}
	defer s.exit()
	dir, n, err := s.dirBounds()
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(s.timeout)
	for i := uint64(0); i < n; i++ {
		e := dir + i*dirEntrySize
		w := u32at(s.mem, e+entState)
		st := atomic.LoadUint32(w)
		switch {
		case st == entryEmpty:
			if !atomic.CompareAndSwapUint32(w, entryEmpty, entryClaimed|s.id) {
				i-- // look at this entry again
				continue
			}
			off, err := s.alloc(size)
			if err != nil {
				atomic.StoreUint32(w, entryEmpty)
				futex.Wake(w, 1<<30)
				return 0, err
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
			return off, nil
		case st == entryReady:
			info, err := s.readEntry(e)
			if err != nil {
				return 0, err
			}
			if info.Name != name {
				continue
			}
			if info.Kind != kind || info.Param != param || uint64(info.Size) != size {
				return 0, fmt.Errorf("%w: %q is %s, not %s",
					ErrMismatch, name, describeObject(info.Kind, uint64(info.Size), info.Param), describeObject(kind, size, param))
			}
			if err := s.checkOverlap(dir, n, i, info); err != nil {
				return 0, err
			}
			return uint64(info.Offset), nil
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
			i-- // look at this entry again
		default:
			return 0, fmt.Errorf("%w: directory entry %d has state %#x", ErrCorrupt, i, st)
		}
	}
	return 0, fmt.Errorf("%w: directory holds %d objects", ErrNoSpace, n)
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
