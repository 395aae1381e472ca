package processshared

import (
	"sync/atomic"
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

// Robust reports whether the kernel watches this process's table entries.
func Robust() bool { return theKeeper().robust }
