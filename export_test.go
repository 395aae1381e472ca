package processshared

import "unsafe"

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
