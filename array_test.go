//go:build darwin || freebsd || linux

package processshared_test

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"unsafe"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

func newArray[T any](t *testing.T, s *ps.Segment, name string, n int) *ps.Array[T] {
	t.Helper()
	a, err := ps.NewArray[T](s, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestArrayInit is the seed's A1: a new array is zero; values stored by one
// process are read by another, element by element.
//
//	P.1 creates an Array[int32] of 10, checks it is zero, stores i*i at i.
//	C.1 opens it, checks i*i, and stores -i at each odd i.
//	P.2 sees the child's stores and its own at the even indexes.
func TestArrayInit(t *testing.T) {
	if childtest.Role() == "child" {
		a := newArray[int32](t, inheritEnv(t, "SEG"), "squares", 10)
		for i := range a.Len() {
			if v := a.Load(i); v != int32(i*i) {
				t.Errorf("child: a[%d] = %d, want %d", i, v, i*i)
			}
			if i%2 == 1 {
				a.Store(i, int32(-i))
			}
		}
		return
	}
	s := create(t, 1<<16, nil)
	a := newArray[int32](t, s, "squares", 10)
	if a.Len() != 10 || a.Name() != "squares" {
		t.Fatalf("Len %d, Name %q", a.Len(), a.Name())
	}
	for i := range a.Len() {
		if v := a.Load(i); v != 0 {
			t.Fatalf("new array: a[%d] = %d", i, v)
		}
		a.Store(i, int32(i*i))
	}
	runChild(t, "TestArrayInit", "child", []*ps.Segment{s}, "SEG="+s.Name())
	for i := range a.Len() {
		want := int32(i * i)
		if i%2 == 1 {
			want = int32(-i)
		}
		if v := a.Load(i); v != want {
			t.Errorf("a[%d] = %d, want %d", i, v, want)
		}
	}
}

// TestArrayIterate is the seed's A2: iterate with All, build a copy, map it,
// sort it.
func TestArrayIterate(t *testing.T) {
	s := create(t, 1<<16, nil)
	a := newArray[float64](t, s, "f", 6)
	a.CopyFrom([]float64{3, 1, 4, 1, 5, 9})
	var copied []float64
	for i, v := range a.All() {
		if i != len(copied) {
			t.Fatalf("index %d at position %d", i, len(copied))
		}
		copied = append(copied, v)
	}
	if !slices.Equal(copied, []float64{3, 1, 4, 1, 5, 9}) {
		t.Fatalf("copy %v", copied)
	}
	var mapped []float64
	for _, v := range a.All() {
		mapped = append(mapped, v*2)
	}
	slices.Sort(mapped)
	if !slices.Equal(mapped, []float64{2, 2, 6, 8, 10, 18}) {
		t.Fatalf("mapped and sorted %v", mapped)
	}
	n := 0
	for range a.All() {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("break after 2 gave %d iterations", n)
	}
	if got := a.Load(0); got != 3 {
		t.Fatalf("the array changed: a[0] = %v", got)
	}
}

type point struct {
	X, Y  int32
	Z     float64
	Flags [3]bool
	C     complex64
	_     [4]byte
}

// TestArrayStructChild shares an array of structs with a child.
func TestArrayStructChild(t *testing.T) {
	if childtest.Role() == "child" {
		a := newArray[point](t, inheritEnv(t, "SEG"), "points", 3)
		a.Store(2, point{X: 1, Y: -2, Z: 0.5, Flags: [3]bool{true, false, true}, C: 1i})
		return
	}
	s := create(t, 1<<16, nil)
	a := newArray[point](t, s, "points", 3)
	runChild(t, "TestArrayStructChild", "child", []*ps.Segment{s}, "SEG="+s.Name())
	want := point{X: 1, Y: -2, Z: 0.5, Flags: [3]bool{true, false, true}, C: 1i}
	if got := a.Load(2); got != want {
		t.Fatalf("a[2] = %+v, want %+v", got, want)
	}
	if got := a.Load(0); got != (point{}) {
		t.Fatalf("a[0] = %+v, want zero", got)
	}
}

func TestArrayCopy(t *testing.T) {
	s := create(t, 1<<16, nil)
	a := newArray[uint16](t, s, "u", 4)
	if n := a.CopyFrom([]uint16{1, 2, 3, 4, 5, 6}); n != 4 {
		t.Errorf("CopyFrom of 6 into 4: %d", n)
	}
	if n := a.CopyFrom([]uint16{9}); n != 1 {
		t.Errorf("CopyFrom of 1: %d", n)
	}
	dst := make([]uint16, 6)
	if n := a.CopyTo(dst); n != 4 || !slices.Equal(dst, []uint16{9, 2, 3, 4, 0, 0}) {
		t.Errorf("CopyTo: %d %v", n, dst)
	}
	if n := a.CopyTo(dst[:2]); n != 2 {
		t.Errorf("CopyTo of 2: %d", n)
	}
	empty := newArray[uint16](t, s, "empty", 0)
	if n := empty.CopyTo(dst); n != 0 || empty.Len() != 0 {
		t.Errorf("empty array: CopyTo %d, Len %d", n, empty.Len())
	}
	for range empty.All() {
		t.Error("empty array yields an element")
	}
}

func TestArrayIndexPanics(t *testing.T) {
	s := create(t, 1<<16, nil)
	a := newArray[int64](t, s, "a", 4)
	for _, i := range []int{-1, 4, math.MaxInt, math.MinInt} {
		mustPanic(t, ps.ErrOutOfRange, func() { a.Load(i) })
		mustPanic(t, ps.ErrOutOfRange, func() { a.Store(i, 1) })
		mustPanic(t, ps.ErrOutOfRange, func() { ps.Add(a, i, 1) })
		mustPanic(t, ps.ErrOutOfRange, func() { ps.AtomicLoad(a, i) })
		mustPanic(t, ps.ErrOutOfRange, func() { ps.AtomicStore(a, i, 1) })
		mustPanic(t, ps.ErrOutOfRange, func() { ps.Swap(a, i, 1) })
		mustPanic(t, ps.ErrOutOfRange, func() { ps.CompareAndSwap(a, i, 0, 1) })
	}
}

func TestArrayUseAfterClose(t *testing.T) {
	s := create(t, 1<<16, nil)
	a := newArray[uint32](t, s, "a", 4)
	s.Close()
	mustPanic(t, ps.ErrClosed, func() { a.Load(0) })
	mustPanic(t, ps.ErrClosed, func() { a.Store(0, 1) })
	mustPanic(t, ps.ErrClosed, func() { a.CopyTo(make([]uint32, 4)) })
	mustPanic(t, ps.ErrClosed, func() { a.CopyFrom(make([]uint32, 4)) })
	mustPanic(t, ps.ErrClosed, func() {
		for range a.All() {
		}
	})
	mustPanic(t, ps.ErrClosed, func() { ps.Add(a, 0, 1) })
	mustPanic(t, ps.ErrClosed, func() { ps.AtomicLoad(a, 0) })
	mustPanic(t, ps.ErrClosed, func() { ps.CompareAndSwap(a, 0, 0, 1) })
	if _, err := ps.NewArray[uint32](s, "a", 4); !errors.Is(err, ps.ErrClosed) {
		t.Errorf("NewArray after Close: %v", err)
	}
	if a.Len() != 4 {
		t.Errorf("Len after Close: %d", a.Len())
	}
}

// TestArrayBadTypes checks that every kind of type that holds an address,
// and zero-size types, are refused.
func TestArrayBadTypes(t *testing.T) {
	s := create(t, 1<<16, nil)
	type withString struct {
		N    int64
		Name string
	}
	type nested struct {
		A [2]struct{ P *int }
	}
	cases := []struct {
		name string
		new  func() error
	}{
		{"pointer", func() error { _, err := ps.NewArray[*int64](s, "x", 1); return err }},
		{"unsafe.Pointer", func() error { _, err := ps.NewArray[unsafe.Pointer](s, "x", 1); return err }},
		{"uintptr", func() error { _, err := ps.NewArray[uintptr](s, "x", 1); return err }},
		{"slice", func() error { _, err := ps.NewArray[[]byte](s, "x", 1); return err }},
		{"string", func() error { _, err := ps.NewArray[string](s, "x", 1); return err }},
		{"map", func() error { _, err := ps.NewArray[map[int]int](s, "x", 1); return err }},
		{"interface", func() error { _, err := ps.NewArray[any](s, "x", 1); return err }},
		{"error", func() error { _, err := ps.NewArray[error](s, "x", 1); return err }},
		{"chan", func() error { _, err := ps.NewArray[chan int](s, "x", 1); return err }},
		{"func", func() error { _, err := ps.NewArray[func()](s, "x", 1); return err }},
		{"struct with string", func() error { _, err := ps.NewArray[withString](s, "x", 1); return err }},
		{"array of pointers", func() error { _, err := ps.NewArray[[4]*int](s, "x", 1); return err }},
		{"nested pointer", func() error { _, err := ps.NewArray[nested](s, "x", 1); return err }},
		{"empty struct", func() error { _, err := ps.NewArray[struct{}](s, "x", 1); return err }},
		{"zero-length array", func() error { _, err := ps.NewArray[[0]int64](s, "x", 1); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.new()
			if !errors.Is(err, ps.ErrBadType) {
				t.Fatalf("NewArray: %v, want ErrBadType", err)
			}
			t.Log(err)
		})
	}
	if objs, _ := s.Objects(); len(objs) != 0 {
		t.Errorf("refused types left objects behind: %v", objs)
	}
}

func TestArrayErrors(t *testing.T) {
	s := create(t, 1<<16, nil)
	newArray[int32](t, s, "a", 8)
	if _, err := ps.NewArray[int64](s, "a", 4); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen with another element size (same bytes): %v, want ErrMismatch", err)
	}
	if _, err := ps.NewArray[int32](s, "a", 9); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen with another length: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewBytes(s, "a", 32); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen as Bytes: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewSlot(s, "a", 32); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen as Slot: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewArray[int32](s, "neg", -1); !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("negative length: %v, want ErrOutOfRange", err)
	}
	if _, err := ps.NewArray[[1 << 20]int64](s, "huge", math.MaxInt); !errors.Is(err, ps.ErrNoSpace) {
		t.Errorf("overflowing length: %v, want ErrNoSpace", err)
	}
	if _, err := ps.NewArray[int64](s, "big", 1<<20); !errors.Is(err, ps.ErrNoSpace) {
		t.Errorf("too long: %v, want ErrNoSpace", err)
	}
	// Same element size, another type: not detectable, documented.
	if _, err := ps.NewArray[uint32](s, "a", 8); err != nil {
		t.Errorf("reopen with a type of the same size: %v", err)
	}
}

// TestArrayAtomicHammer runs 4 processes × 4 goroutines that each add 1 to
// element 0 with Add and to element 1 with a CompareAndSwap loop, 1000
// times; every element ends at exactly 16000. Element 2 (an int32) gets
// +1 and -1 in pairs, and ends at 0.
func TestArrayAtomicHammer(t *testing.T) {
	const procs, goroutines, rounds = 4, 4, 1000
	hammer := func(s *ps.Segment) {
		a := newArray[uint64](t, s, "counters", 2)
		b := newArray[int32](t, s, "pairs", 1)
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range rounds {
					ps.Add(a, 0, 1)
					for {
						old := ps.AtomicLoad(a, 1)
						if ps.CompareAndSwap(a, 1, old, old+1) {
							break
						}
					}
					ps.Add(b, 0, 1)
					ps.Add(b, 0, -1)
				}
			})
		}
		wg.Wait()
	}
	if childtest.Role() == "hammer" {
		hammer(inheritEnv(t, "SEG"))
		return
	}
	s := create(t, 1<<16, nil)
	a := newArray[uint64](t, s, "counters", 2)
	b := newArray[int32](t, s, "pairs", 1)
	var wg sync.WaitGroup
	for i := range procs - 1 {
		cmd := childCmd(t, "TestArrayAtomicHammer", "hammer", []*ps.Segment{s}, "SEG="+s.Name(), "ID="+strconv.Itoa(i))
		wg.Go(func() {
			if out, err := cmd.Output(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, out)
			}
		})
	}
	hammer(s)
	wg.Wait()
	want := uint64(procs * goroutines * rounds)
	if v := ps.AtomicLoad(a, 0); v != want {
		t.Errorf("Add counter %d, want %d", v, want)
	}
	if v := ps.AtomicLoad(a, 1); v != want {
		t.Errorf("CompareAndSwap counter %d, want %d", v, want)
	}
	if v := ps.AtomicLoad(b, 0); v != 0 {
		t.Errorf("pairs %d, want 0", v)
	}
	if old := ps.Swap(a, 0, 7); old != want || a.Load(0) != 7 {
		t.Errorf("Swap: old %d, now %d", old, a.Load(0))
	}
	ps.AtomicStore(b, 0, -3)
	if v := b.Load(0); v != -3 {
		t.Errorf("AtomicStore then Load: %d", v)
	}
}
