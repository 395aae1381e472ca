//go:build race && (darwin || freebsd || linux)

package processshared_test

import (
	"sync"
	"testing"
)

// Goroutines of one process that synchronize through one shared lock, some
// through one Segment handle and some through another, must get no report
// from the race detector: the lock orders their accesses to x, and the
// annotations that tell the detector so must be the same for every handle
// of the lock in the process.
//
// Each test has its own loop: the detector reports a pair of racing
// instructions once per run, so a loop shared by the two would let the
// first hide the second.

const raceGoroutines, raceN = 4, 500

// TestRaceTwoHandlesMutex: x is guarded by the Mutex "m", locked through h1
// by half the goroutines and through h2 by the others.
func TestRaceTwoHandlesMutex(t *testing.T) {
	h1 := create(t, 1<<16, nil)
	h2 := openSeg(t, h1.Name())
	ms := [2]sync.Locker{mutex(t, h1, "m"), mutex(t, h2, "m")}
	var x int
	var wg sync.WaitGroup
	for g := range raceGoroutines {
		m := ms[g%2]
		wg.Go(func() {
			for range raceN {
				m.Lock()
				x++
				m.Unlock()
			}
		})
	}
	wg.Wait()
	if x != raceGoroutines*raceN {
		t.Fatalf("x = %d, want %d", x, raceGoroutines*raceN)
	}
}

// TestRaceTwoHandlesSemaphore: x is guarded by the binary Semaphore "s",
// acquired and released through h1 by half the goroutines and through h2 by
// the others.
func TestRaceTwoHandlesSemaphore(t *testing.T) {
	h1 := create(t, 1<<16, nil)
	h2 := openSeg(t, h1.Name())
	ss := [2]sync.Locker{semLocker{semaphore(t, h1, "s", 1, 1)}, semLocker{semaphore(t, h2, "s", 1, 1)}}
	var x int
	var wg sync.WaitGroup
	for g := range raceGoroutines {
		s := ss[g%2]
		wg.Go(func() {
			for range raceN {
				s.Lock()
				x++
				s.Unlock()
			}
		})
	}
	wg.Wait()
	if x != raceGoroutines*raceN {
		t.Fatalf("x = %d, want %d", x, raceGoroutines*raceN)
	}
}
