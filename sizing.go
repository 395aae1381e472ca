package processshared

import (
	"fmt"
	"math"
	"os"
)

// Contents lists the objects a segment is to hold, for SizeFor.
type Contents struct {
	Mutexes    int
	RWMutexes  int
	Conds      int
	Semaphores int
	Slots      []int   // the capacity of each Slot, as passed to NewSlot
	Bytes      []int64 // the size of each Bytes, as passed to NewBytes
	Arrays     []int64 // the bytes of each Array: its length × the size of its element type
	Queues     []QueueSize
}

// A QueueSize is a Queue's capacity and largest message, as passed to
// NewQueue (for a TypedQueue[T], the message size is T's size).
type QueueSize struct {
	Capacity, MaxSize int
}

// objects returns the number of objects c lists.
func (c Contents) objects() int {
	return c.Mutexes + c.RWMutexes + c.Conds + c.Semaphores + len(c.Slots) + len(c.Bytes) + len(c.Arrays) + len(c.Queues)
}

// SizeFor returns the size, and the options, of a segment that holds
// exactly the objects c lists, for as many processes as opts.MaxProcesses
// (DefaultMaxProcesses if opts is nil or leaves it 0): pass both to Create,
// OpenOrCreate or NewAnonymous. The options are a copy of opts with
// MaxObjects set to the number of objects c lists, if opts leaves it 0, so
// that one object more than planned gives ErrNoSpace. The size is rounded
// up to a page.
//
// What each part of a segment costs, in bytes (P is MaxProcesses, O
// MaxObjects; every object starts on a 64-byte boundary, after its extent
// header):
//
//	header                 256
//	process table          64 × P
//	directory              128 × (O + O/2 + 1)
//	free table             8 × O
//	extent header          16 + 8 × ⌈P/64⌉, rounded up to 64, per object
//	Mutex                  64
//	RWMutex                64 + 64 × max(P/8, min(P, 16)), P/8 rounded up
//	Cond                   64 + 64 × ⌈P/8⌉
//	Semaphore              128 + 8 × P
//	Slot of capacity c     128 + 2 × (32 + c, rounded up to 64)
//	Bytes of n bytes       n
//	Array                  its length × its element size
//	Queue                  512 + 8 × P, rounded up to 64, plus (capacity + 1)
//	                       × (8 + maxSize rounded up to 8)
func SizeFor(c Contents, opts *Options) (int64, *Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxObjects == 0 {
		o.MaxObjects = max(1, c.objects())
	}
	if n := c.objects(); n > o.maxObjects() {
		return 0, nil, fmt.Errorf("%w: %d objects planned, MaxObjects %d", ErrNoSpace, n, o.MaxObjects)
	}
	l, err := newLayout(math.MaxInt64, &o)
	if err != nil {
		return 0, nil, err
	}
	procCap := uint64(o.maxProcesses())
	size := l.heapOff
	add := func(n uint64) error {
		start := alignUp(size, objAlign) + l.extHdr
		if start < size || start+n < start || start+n > 1<<48 {
			return fmt.Errorf("%w: the contents do not fit in a segment", ErrNoSpace)
		}
		size = start + n
		return nil
	}
	var sizes []uint64
	for range c.Mutexes {
		sizes = append(sizes, mutexSize)
	}
	for range c.RWMutexes {
		sizes = append(sizes, rwSize(procCap))
	}
	for range c.Conds {
		sizes = append(sizes, condSize(procCap))
	}
	for range c.Semaphores {
		sizes = append(sizes, semHeld+procCap*8)
	}
	for _, capacity := range c.Slots {
		if capacity < 0 || uint64(capacity) > MaxSlotCapacity {
			return 0, nil, fmt.Errorf("slot capacity %d not in [0, %d]: %w", capacity, uint64(MaxSlotCapacity), ErrOutOfRange)
		}
		sizes = append(sizes, slBufs+2*slotStride(capacity))
	}
	for _, q := range c.Queues {
		if q.Capacity < 1 || q.Capacity > MaxQueueCapacity || q.MaxSize < 0 || q.MaxSize > MaxQueueMessage {
			return 0, nil, fmt.Errorf("queue capacity %d or message size %d out of range: %w", q.Capacity, q.MaxSize, ErrOutOfRange)
		}
		_, _, n := queueLayout(uint64(q.Capacity), uint64(q.MaxSize), procCap)
		sizes = append(sizes, n)
	}
	for _, list := range [][]int64{c.Bytes, c.Arrays} {
		for _, n := range list {
			if n < 0 {
				return 0, nil, fmt.Errorf("negative object size %d: %w", n, ErrOutOfRange)
			}
			sizes = append(sizes, uint64(n))
		}
	}
	for _, n := range sizes {
		if err := add(n); err != nil {
			return 0, nil, err
		}
	}
	page := uint64(os.Getpagesize())
	return int64(alignUp(size, page)), &o, nil
}
