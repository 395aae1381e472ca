//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"

	ps "github.com/processshared/processshared"
)

// A segment is opened by name in every process that uses it; objects in it
// are found by name too. (Both halves run in one process here; see the
// examples directory for programs that start real child processes.)
func Example() {
	name := fmt.Sprintf("example-%d", os.Getpid())
	seg, err := ps.OpenOrCreate(name, 1<<20, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ps.Remove(name)
	defer seg.Close()

	m, err := ps.NewMutex(seg, "lock")
	if err != nil {
		log.Fatal(err)
	}
	counter, err := ps.NewArray[int64](seg, "counter", 1)
	if err != nil {
		log.Fatal(err)
	}
	m.Lock()
	counter.Store(0, counter.Load(0)+1)
	m.Unlock()
	fmt.Println("counter:", counter.Load(0))
	// Output: counter: 1
}

// Readers share an RWMutex; a writer excludes them. A reader whose
// previous writer died is told, holding its read lock.
func ExampleRWMutex() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	rw, err := ps.NewRWMutex(seg, "config")
	if err != nil {
		log.Fatal(err)
	}
	version, err := ps.NewArray[int64](seg, "version", 1)
	if err != nil {
		log.Fatal(err)
	}
	rw.Lock()
	version.Store(0, 2) // the state rw protects
	rw.Unlock()
	switch err := rw.RLockContext(context.Background()); {
	case err == nil:
		fmt.Println("reading version", version.Load(0))
	case errors.Is(err, ps.ErrOwnerDead):
		fmt.Println("reading a state a dead writer left; only a writer may repair it")
	default:
		log.Fatal(err)
	}
	fmt.Println("read locks held:", rw.Readers())
	rw.RUnlock()
	// Output:
	// reading version 2
	// read locks held: 1
}

// A Mutex whose holder died is acquired by the next locker, who is told.
func ExampleMutex_LockContext() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	m, err := ps.NewMutex(seg, "lock")
	if err != nil {
		log.Fatal(err)
	}
	switch err := m.LockContext(context.Background()); {
	case err == nil:
		fmt.Println("locked")
	case errors.Is(err, ps.ErrOwnerDead):
		// The previous holder died holding the lock: repair the state
		// the lock protects, then say so.
		m.MarkConsistent()
	default:
		log.Fatal(err)
	}
	m.Unlock()
	// Output: locked
}

// A job limiter: a Semaphore of owned permits lets at most 2 jobs run at
// once, across every process using it. A permit counts against the handle
// that acquired it: a job that is killed gives its permit back, and a
// Release of a permit not held is refused.
func ExampleSemaphore() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	jobs, err := ps.NewSemaphore(seg, "jobs", 2, 2) // at most 2 at once
	if err != nil {
		log.Fatal(err)
	}
	if err := jobs.Acquire(context.Background(), 1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("permits left:", jobs.Value())
	// ... run the job ...
	fmt.Println("release of 2:", errors.Is(jobs.Release(2), ps.ErrNotHeld))
	if err := jobs.Release(1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("permits left:", jobs.Value())
	// Output:
	// permits left: 1
	// release of 2: true
	// permits left: 2
}

// Producers and consumers: a Semaphore of counting permits counts the items
// of a buffer. The producer Releases one permit per item it adds, and a
// consumer Acquires one per item it takes and never gives it back: items a
// consumer took stay taken, even if it dies. (A second semaphore, counting
// free places, would bound the buffer.)
func ExampleNewCountingSemaphore() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	items, err := ps.NewCountingSemaphore(seg, "items", 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	buf, err := ps.NewArray[int64](seg, "buf", 8)
	if err != nil {
		log.Fatal(err)
	}
	// The producer (another process, as a rule).
	for i := range 3 {
		buf.Store(i, int64(10*(i+1)))
		if err := items.Release(1); err != nil {
			log.Fatal(err)
		}
	}
	// The consumer.
	for i := range 3 {
		if err := items.Acquire(context.Background(), 1); err != nil {
			log.Fatal(err)
		}
		fmt.Print(buf.Load(i), " ")
	}
	fmt.Println("items left:", items.Value())
	// Output: 10 20 30 items left: 0
}

// A Slot carries a Go value from one process to another.
func ExampleSlot() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	slot, err := ps.NewSlot(seg, "object", 256)
	if err != nil {
		log.Fatal(err)
	}
	if err := slot.Store([]string{"a", "b"}); err != nil {
		log.Fatal(err)
	}
	var got []string
	if err := slot.Load(&got); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", got)
	// Output: ["a" "b"]
}

// An Array is a typed view of shared memory.
func ExampleArray() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	a, err := ps.NewArray[int32](seg, "numbers", 5)
	if err != nil {
		log.Fatal(err)
	}
	a.CopyFrom([]int32{5, 3, 4, 1, 2})
	var doubled []int32
	for _, v := range a.All() {
		doubled = append(doubled, 2*v)
	}
	slices.Sort(doubled)
	fmt.Println(doubled, ps.Add(a, 0, 10))
	// Output: [2 4 6 8 10] 15
}

// A lock per tenant, deleted when the tenant leaves: the name is free at
// once, and the space is reused by later objects once every handle on the
// old lock is dropped.
func ExampleSegment_Delete() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	served := 0
	for tenant := range 1000 {
		name := fmt.Sprint("tenant-", tenant%3)
		m, err := ps.NewMutex(seg, name)
		if err != nil {
			log.Fatal(err)
		}
		m.Lock()
		served++
		m.Unlock()
		m.Drop() // this handle no longer keeps the lock's space
		if err := seg.Delete(name); err != nil {
			log.Fatal(err)
		}
	}
	objs, _ := seg.Objects()
	fmt.Println("served:", served, "objects left:", len(objs))
	// Output: served: 1000 objects left: 0
}
