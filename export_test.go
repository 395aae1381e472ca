package processshared

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// SharedInt64 returns a pointer to an int64 named object in s, for tests that
// need a plain shared counter.
func SharedInt64(s *Segment, name string) (*int64, error) {
	off, err := s.object(name, KindBytes, 0, 8, nil)
	if err != nil {
		return nil, err
	}
	return (*int64)(unsafe.Pointer(&s.mem[off])), nil
}

// SlotOf returns the index of s's entry in its segment's process table.
func SlotOf(s *Segment) int { return int((s.slot - s.lay.procOff) / procSlotSize) }

// SetTestHookWoken sets the function a Mutex sleeper runs when it returns
// from the kernel.
func SetTestHookWoken(f func()) { testHookWoken = f }

// SetTestHookDetached sets the function Close runs once the handle's slot
// is off the robust list, before its live word is cleared.
func SetTestHookDetached(f func()) { testHookDetached = f }

// MutexWord returns m's lock word.
func MutexWord(m *Mutex) uint32 { return atomic.LoadUint32(m.m.word) }

// HasWaitv reports whether the kernel has futex_waitv.
func HasWaitv() bool { return futex.HasWaitv() }

// SetStarveAfter sets how long an Acquire waits before it becomes the
// Semaphore's hungry waiter; math.MaxInt64 turns hunger off (but for the
// take-over of a dead one's).
func SetStarveAfter(d time.Duration) { starveAfter = int64(d) }

// Robust reports whether the kernel watches this process's table entries.
func Robust() bool { return theKeeper().robust }

// DirEntryOffset returns the offset in the segment of the directory entry
// that holds name, or -1.
func DirEntryOffset(s *Segment, name string) int64 {
	for i := range s.lay.dirCap {
		e := s.lay.dirOff + i*dirEntrySize
		if load32(s.mem, e+entState) == entryReady && s.entryNamed(e, name) {
			return int64(e)
		}
	}
	return -1
}

// DirProbeStart returns the offset in the segment of the directory entry
// where the probe for name starts.
func DirProbeStart(s *Segment, name string) int64 {
	return int64(s.lay.dirOff + dirHash(name, s.lay.dirCap)*dirEntrySize)
}

// ForgetSeen drops what s remembers of the directory entries it has
// validated, as a handle that never saw them.
func ForgetSeen(s *Segment) {
	s.mu.Lock()
	s.seen, s.spans = nil, nil
	s.mu.Unlock()
}

// CondWords returns c's sequence word and its counts of waiters and of
// signals outstanding.
func CondWords(c *Cond) (seq uint32, waiters, signals int) {
	st := atomic.LoadUint64(c.state)
	return uint32(st), int(st >> 32 & condMax), int(st >> 48)
}

// SetCondWords sets c's sequence word and counts, as a long history (2^31
// Signals, or thousands of deaths) would have left them.
func SetCondWords(c *Cond, seq uint32, waiters, signals int) {
	atomic.StoreUint64(c.state, uint64(seq)|uint64(waiters)<<32|uint64(signals)<<48)
}

// CondRecord returns the identity and the count of c's registration
// record for process-table slot i.
func CondRecord(c *Cond, i int) (id uint32, n int) {
	v := atomic.LoadUint64(c.record(uint64(i)))
	return uint32(v), int(v >> 32)
}

// SetCondRecord sets c's registration record for slot i.
func SetCondRecord(c *Cond, i int, id uint32, n int) {
	atomic.StoreUint64(c.record(uint64(i)), uint64(id)|uint64(n)<<32)
}

// CondSlots returns the number of c's registration records.
func CondSlots(c *Cond) int { return int(c.nrec) }

// ProcHigh returns s's segment's process-table high-water mark, as stored.
func ProcHigh(s *Segment) int { return int(load32(s.mem, offProcHigh)) }

// SemaphoreEntry returns the identity and the count of owned Semaphore m's
// held entry for process-table slot i, and whether m is in table mode.
func SemaphoreEntry(m *Semaphore, i int) (id uint32, n int, table bool) {
	e := semHeld + uint64(i)*8
	return atomic.LoadUint32(m.w(e)), int(atomic.LoadUint32(m.w(e + 4))), atomic.LoadUint64(m.state)&semTable != 0
}

// SemaphoreHungry reports whether m's hunger bit is set: a hungry waiter
// (see "Fairness" in semaphore.go) holds every other Acquire back.
func SemaphoreHungry(m *Semaphore) bool { return atomic.LoadUint32(m.value)&semHungry != 0 }
