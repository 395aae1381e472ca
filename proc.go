package processshared

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// attach claims a slot in the segment's process table for this Segment and
// puts it on the keeper's robust list.
//
// The slot's live word goes 0 → keeper tid (claimed and alive). The kernel
// sets liveDied when the process dies; a later attach may reclaim a slot whose
// word has liveDied set. Before the claiming CAS the node is made the list's
// pending operation, so a process killed between the CAS and the link is
// still reported dead.
func (s *Segment) attach() error {
	k := theKeeper()
	s.tid = k.tid
	procOff, procCap := s.lay.procOff, s.lay.procCap
	pid := uint32(os.Getpid())
	k.mu.Lock()
	defer k.mu.Unlock()
	// Free slots first; a dead process's slot only when none is left, so
	// that its identity stays known (for OwnerDeadError and inspection) as
	// long as possible.
	for _, reuse := range []bool{false, true} {
		for i := range procCap {
			off := procOff + i*procSlotSize
			w := u32at(s.mem, off+slotLive)
			v := atomic.LoadUint32(w)
			if v != 0 && (!reuse || v&liveDied == 0) {
				continue
			}
			node := unsafe.Pointer(&s.mem[off+slotNext])
			k.setPending(node)
			if !atomic.CompareAndSwapUint32(w, v, k.tid) {
				k.setPending(nil)
				continue
			}
			store32(s.mem, off+slotPID, pid)
			store32(s.mem, off+slotTID, k.tid)
			store64(s.mem, off+slotStart, processStart(int(pid)))
			store64(s.mem, off+slotSince, uint64(time.Now().UnixNano()))
			flags := uint32(0)
			if k.robust {
				flags = slotRobust
			}
			store32(s.mem, off+slotFlags, flags)
			k.link(node)
			k.setPending(nil)
			s.slot = off
			return nil
		}
	}
	return fmt.Errorf("%w (%d slots)", ErrTooManyProcesses, procCap)
}

// detach takes this Segment's slot off the robust list and frees it. Waiters
// sleeping on the slot's live word are woken: to them this process is gone.
func (s *Segment) detach() {
	k := theKeeper()
	func() {
		k.mu.Lock()
		defer k.mu.Unlock() // unlink may fault on a truncated file (see guard)
		k.unlink(unsafe.Pointer(&s.mem[s.slot+slotNext]))
	}()
	store32(s.mem, s.slot+slotPID, 0)
	w := u32at(s.mem, s.slot+slotLive)
	atomic.StoreUint32(w, 0)
	wakeAll(w)
}

// A holder describes the process behind an identity found in a lock word.
type holder struct {
	alive bool
	pid   int
	live  *uint32 // the holder's live word, to sleep on; nil if not robust
	val   uint32  // the value live held
}

// lookup finds the process whose keeper thread id is tid. A process is alive
// if it has a slot whose live word holds tid without liveDied; for a process
// whose kernel does not watch its slot (no robust list), the pid is also
// checked.
func (s *Segment) lookup(tid uint32) holder {
	procOff, procCap := s.lay.procOff, s.lay.procCap
	for i := range procCap {
		off := procOff + i*procSlotSize
		w := u32at(s.mem, off+slotLive)
		v := atomic.LoadUint32(w)
		if tid == 0 || v&tidMask != tid && (v&liveDied == 0 || load32(s.mem, off+slotTID) != tid) {
			continue
		}
		h := holder{pid: int(load32(s.mem, off+slotPID))}
		if v&liveDied != 0 {
			return h // the kernel found it dead (and cleared the tid from live)
		}
		if load32(s.mem, off+slotFlags)&slotRobust == 0 {
			h.alive = tid == s.tid || processAlive(h.pid, load64(s.mem, off+slotStart))
			return h
		}
		h.alive, h.live, h.val = true, w, v
		return h
	}
	return holder{}
}

// pidOf returns the pid of the process whose keeper thread id is tid, or 0.
func (s *Segment) pidOf(tid uint32) int {
	if tid == s.tid {
		return os.Getpid()
	}
	return s.lookup(tid).pid
}

// lookupSlot is lookup for a process known to have used the table slot at
// off: it is alive if the slot still holds tid without liveDied.
func (s *Segment) lookupSlot(off uint64, tid uint32) holder {
	if off+procSlotSize > uint64(len(s.mem)) {
		return holder{alive: true}
	}
	w := u32at(s.mem, off+slotLive)
	v := atomic.LoadUint32(w)
	if v&tidMask != tid || v&liveDied != 0 {
		return holder{pid: int(load32(s.mem, off+slotPID))}
	}
	h := holder{alive: true, pid: int(load32(s.mem, off+slotPID))}
	if load32(s.mem, off+slotFlags)&slotRobust == 0 {
		h.alive = tid == s.tid || processAlive(h.pid, load64(s.mem, off+slotStart))
		return h
	}
	h.live, h.val = w, v
	return h
}
