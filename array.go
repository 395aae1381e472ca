package processshared

import (
	"fmt"
	"iter"
	"math"
	"math/bits"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// An Array is a fixed-length array of values of type T, a named object in a
// Segment. Every process that calls NewArray with the same segment, name,
// length and element size sees the same elements. Obtain one with NewArray;
// the zero value is not usable.
//
// T must be fixed-size and free of pointers: bool, the integer, float and
// complex types, and arrays and structs made of them. Pointers, uintptr,
// unsafe.Pointer, strings, slices, maps, channels, functions and interfaces
// are refused, because they hold addresses of this process's memory, which
// mean nothing in another process (uintptr is refused for that reason too,
// though the compiler would let it through). T must have a non-zero size.
// Elements are stored in the machine's layout and byte order, so all processes
// sharing an Array must run on the same architecture.
//
// Load, Store, All, CopyTo and CopyFrom are plain memory accesses with no
// synchronization: a Store racing with a Load in another process may be seen
// half done. For elements of type int32, uint32, int64 or uint64 (or types
// defined from them), the functions Add, AtomicLoad, AtomicStore, Swap and
// CompareAndSwap access an element atomically, and the memory-model promise
// of sync/atomic extends to processes: if the effect of an atomic operation A
// in one process is observed by an atomic operation B in another, A
// synchronizes before B. Objects start on a 64-byte boundary, so every
// element is aligned for its type, as atomic operations require. A process
// that dies leaves behind whatever it had stored.
//
// Like indexing a Go slice, every access panics on an index out of range;
// it also panics after the segment was closed. To cost no more than the
// memory access itself, an access checks for Close without synchronizing
// with it: an Array must not be used while another goroutine is closing its
// segment. An Array is otherwise safe for concurrent use by multiple
// goroutines, in the sense above.
type Array[T any] struct {
	s    *Segment
	name string
	base unsafe.Pointer // first element, in s's mapping; dead after Close
	n    int
	race unsafe.Pointer // process-local address the race annotations key on
	off  uint64
}

// NewArray returns the array of n elements of type T called name in s,
// creating it, with every element zero, if it does not exist.
//
// It returns an error matching ErrBadType if T cannot live in shared memory
// (see Array), ErrOutOfRange if n is negative, and ErrMismatch if name exists
// as another kind of object, with another length, or with another element
// size. The segment records only the size of T, so opening an Array[int64]
// as an Array[float64] is not detected. Like every object constructor, it
// also returns errors matching ErrInvalidName for a bad name, ErrNoSpace when
// the segment or its directory is full, ErrNotInitialized when the process
// creating the object in another process did not finish in time, ErrCorrupt
// and ErrClosed.
func NewArray[T any](s *Segment, name string, n int) (*Array[T], error) {
	var zero T
	if err := checkType(reflect.TypeOf(&zero).Elem()); err != nil {
		return nil, fmt.Errorf("array %q: %w", name, err)
	}
	size := uint64(unsafe.Sizeof(zero))
	if size > math.MaxUint32 {
		return nil, fmt.Errorf("array %q: %w: %v has %d bytes, 4 GiB or more", name, ErrBadType, reflect.TypeOf(&zero).Elem(), size)
	}
	if n < 0 {
		return nil, fmt.Errorf("array %q: negative length %d: %w", name, n, ErrOutOfRange)
	}
	hi, total := bits.Mul64(uint64(n), size)
	if hi != 0 {
		return nil, fmt.Errorf("array %q: %d elements of %d bytes: %w", name, n, size, ErrNoSpace)
	}
	off, mem, err := s.objectMem(name, KindArray, uint32(size), total)
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", name, err)
	}
	a := &Array[T]{s: s, name: name, n: n, race: s.local(off).race, off: off}
	if n > 0 {
		a.base = unsafe.Pointer(&mem[0])
	}
	return a, nil
}

// checkType reports whether values of type t can live in shared memory: it
// is of non-zero size and neither is nor contains anything that holds an
// address.
func checkType(t reflect.Type) error {
	if t.Size() == 0 {
		return fmt.Errorf("%w: %v has size zero", ErrBadType, t)
	}
	if bad, path := badPart(t, ""); bad != nil {
		if path == "" {
			return fmt.Errorf("%w: %v", ErrBadType, t)
		}
		return fmt.Errorf("%w: %v contains %v at %s", ErrBadType, t, bad, path)
	}
	return nil
}

// badPart returns the first part of t that cannot live in shared memory, and
// its path from t (".Field[0]"), or nil.
func badPart(t reflect.Type, path string) (reflect.Type, string) {
	switch t.Kind() {
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil, ""
	case reflect.Array:
		return badPart(t.Elem(), path+"[0]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if bad, p := badPart(f.Type, path+"."+f.Name); bad != nil {
				return bad, p
			}
		}
		return nil, ""
	}
	// Pointer, UnsafePointer, Uintptr, String, Slice, Map, Chan, Func, Interface.
	return t, path
}

// Drop releases this handle on a: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Drop is idempotent and returns nil.
func (a *Array[T]) Drop() error {
	if s := a.s; !s.drop {
		a.s, a.base = s.dropped(), nil
		s.unpin(a.off)
	}
	return nil
}

// Name returns the object's name in its segment.
func (a *Array[T]) Name() string { return a.name }

// Len returns the number of elements.
func (a *Array[T]) Len() int { return a.n }

// at returns the address of element i, panicking if i is out of range or the
// segment is closed.
//
// Element access does not enter the segment (Segment.enter), to stay a
// plain load or store: a Close racing with it may put its placeholder (see
// Segment.Close) under the access. So every accessor calls done after it,
// which panics if the segment was closed meanwhile: a value read from the
// placeholder is never returned.
func (a *Array[T]) at(i int) *T {
	if uint(i) >= uint(a.n) {
		panic(fmt.Errorf("array %q: index %d out of range [0:%d]: %w", a.name, i, a.n, ErrOutOfRange))
	}
	a.done()
	var zero T
	return (*T)(unsafe.Add(a.base, uintptr(i)*unsafe.Sizeof(zero)))
}

// done panics if the segment is closed.
func (a *Array[T]) done() {
	if a.s.isClosed() {
		panic(fmt.Errorf("processshared: array %q used after %v was closed: %w", a.name, a.s, ErrClosed))
	}
}

// Load returns element i. It panics if i is out of range or the segment is
// closed.
func (a *Array[T]) Load(i int) T {
	v := *a.at(i)
	a.done()
	return v
}

// Store sets element i to v. It panics if i is out of range or the segment
// is closed.
func (a *Array[T]) Store(i int, v T) {
	*a.at(i) = v
	a.done()
}

// All returns an iterator over the indexes and values of the elements, in
// order. Each value is read when the iterator reaches it. Iterating panics if
// the segment is closed.
func (a *Array[T]) All() iter.Seq2[int, T] {
	return func(yield func(int, T) bool) {
		for i := range a.n {
			if !yield(i, a.Load(i)) {
				return
			}
		}
	}
}

// slice runs f on the elements as a Go slice, which must not outlive the
// call, inside the mapping (Segment.enter).
func (a *Array[T]) slice(f func([]T) int) int {
	if !a.s.enter() {
		a.done()
	}
	defer a.s.exit()
	if a.n == 0 {
		return f(nil)
	}
	return f(unsafe.Slice((*T)(a.base), a.n))
}

// CopyTo copies elements from the start of a into dst, as copy(dst, a) would,
// and returns the number copied: the smaller of len(dst) and a.Len(). It
// panics if the segment is closed.
func (a *Array[T]) CopyTo(dst []T) int { return a.slice(func(e []T) int { return copy(dst, e) }) }

// CopyFrom copies src into the elements from the start of a, as copy(a, src)
// would, and returns the number copied: the smaller of len(src) and a.Len().
// It panics if the segment is closed.
func (a *Array[T]) CopyFrom(src []T) int { return a.slice(func(e []T) int { return copy(e, src) }) }

// Atomic is the set of element types whose Array elements can be accessed
// atomically, with Add, AtomicLoad, AtomicStore, Swap and CompareAndSwap.
type Atomic interface {
	~int32 | ~uint32 | ~int64 | ~uint64
}

// The race detector does not see the edges that atomic operations on
// mmapped memory create, so the atomic functions annotate them, for the whole
// array, on a process-local address: goroutines of one process that
// synchronize through an Array get no false reports.

func (a *Array[T]) raceRelease() {
	if raceEnabled {
		raceReleaseMerge(a.race)
	}
}

func (a *Array[T]) raceAcquire() {
	if raceEnabled {
		raceAcquire(a.race)
	}
}

// Add atomically adds delta to element i of a and returns the new value. It
// panics if i is out of range or the segment is closed.
func Add[T Atomic](a *Array[T], i int, delta T) (new T) {
	p := unsafe.Pointer(a.at(i))
	a.raceRelease()
	if unsafe.Sizeof(delta) == 4 {
		new = T(atomic.AddUint32((*uint32)(p), uint32(delta)))
	} else {
		new = T(atomic.AddUint64((*uint64)(p), uint64(delta)))
	}
	a.raceAcquire()
	a.done()
	return new
}

// AtomicLoad atomically loads element i of a. It panics if i is out of range
// or the segment is closed.
func AtomicLoad[T Atomic](a *Array[T], i int) (v T) {
	p := unsafe.Pointer(a.at(i))
	if unsafe.Sizeof(v) == 4 {
		v = T(atomic.LoadUint32((*uint32)(p)))
	} else {
		v = T(atomic.LoadUint64((*uint64)(p)))
	}
	a.raceAcquire()
	a.done()
	return v
}

// AtomicStore atomically stores v into element i of a. It panics if i is out
// of range or the segment is closed.
func AtomicStore[T Atomic](a *Array[T], i int, v T) {
	p := unsafe.Pointer(a.at(i))
	a.raceRelease()
	if unsafe.Sizeof(v) == 4 {
		atomic.StoreUint32((*uint32)(p), uint32(v))
	} else {
		atomic.StoreUint64((*uint64)(p), uint64(v))
	}
	a.done()
}

// Swap atomically stores v into element i of a and returns the previous
// value. It panics if i is out of range or the segment is closed.
func Swap[T Atomic](a *Array[T], i int, v T) (old T) {
	p := unsafe.Pointer(a.at(i))
	a.raceRelease()
	if unsafe.Sizeof(v) == 4 {
		old = T(atomic.SwapUint32((*uint32)(p), uint32(v)))
	} else {
		old = T(atomic.SwapUint64((*uint64)(p), uint64(v)))
	}
	a.raceAcquire()
	a.done()
	return old
}

// CompareAndSwap atomically sets element i of a to new if it holds old, and
// reports whether it did. It panics if i is out of range or the segment is
// closed.
func CompareAndSwap[T Atomic](a *Array[T], i int, old, new T) (swapped bool) {
	p := unsafe.Pointer(a.at(i))
	a.raceRelease()
	if unsafe.Sizeof(old) == 4 {
		swapped = atomic.CompareAndSwapUint32((*uint32)(p), uint32(old), uint32(new))
	} else {
		swapped = atomic.CompareAndSwapUint64((*uint64)(p), uint64(old), uint64(new))
	}
	a.raceAcquire()
	a.done()
	return swapped
}
