package processshared

// QueueState is the state of a Queue at the instant it was read. Its
// largest message is the ObjectInfo's Param.
type QueueState struct {
	Len       int  // messages queued
	Cap       int  // the most messages it holds
	Closed    bool // Close ended its stream
	Senders   int  // goroutines blocked in Send, in live processes
	Receivers int  // goroutines blocked in Recv, in live processes
	Sleepers  bool // processes may be sleeping on it
}

// queueState reads the queue of size bytes at off, whose header
// objectState checked fits.
func (s *Segment) queueState(off, size uint64) *QueueState {
	mem := s.mem
	capacity := load32(mem, off+qHdrCap)
	h, t := load64(mem, off+qHead), load64(mem, off+qTail)
	n := uint32(t>>qOffBits-h>>qOffBits) & qCountMask
	qs := &QueueState{
		Len:      int(min(n, capacity)),
		Cap:      int(capacity),
		Closed:   load32(mem, off+qClosed) != 0,
		Sleepers: (load32(mem, off+qRecvWord)|load32(mem, off+qSendWord))&qSleepers != 0,
	}
	for i := range s.lay.procCap {
		e := off + qWaiting + i*8
		if e+8 > off+size {
			break
		}
		w := load32(mem, e+4)
		if w == 0 || !s.lookup(load32(mem, e)).alive {
			continue
		}
		qs.Senders += int(w >> 16)
		qs.Receivers += int(w & 0xffff)
	}
	return qs
}
