package processshared

import (
	"fmt"
	"math/bits"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// Identity.
//
// Every open Segment handle has an identity that no other handle attached to
// the segment shares, in any process and any PID namespace, for as long as
// anything may refer to it: lock words, Semaphore held entries and directory
// claims record it. A pid or thread id cannot serve: it is unique only
// inside one PID namespace (each container of a Kubernetes pod may have pid
// 1), and the kernel reuses it.
//
// An identity is the handle's process-table slot index and the slot's
// generation at the time of its claim:
//
//	identity = gen<<slotBits | index      (31 bits; 0 is no identity)
//
// slotBits is the number of bits the segment's MaxProcesses needs
// (bits.Len(MaxProcesses-1), at least 1), so a slot has k = 31-slotBits
// bits of generation: with the largest table (MaxProcessesLimit, 65536
// slots) k = 15; with the default 128 slots k = 24. Every claim of a slot
// bumps its generation, so a closed or dead handle's identity never becomes
// valid again. A slot whose generation is exhausted is retired: attach never
// claims it again, so identities never wrap.
//
// Generations whose identity's low 30 bits are below 2^22 (PID_MAX_LIMIT,
// above every thread id) are skipped, 1 in 256 of them: the kernel compares
// the low 30 bits of a futex word named by a robust list with the dying
// thread's id (robust-futex-ABI), and a sleeper names the lock word it
// sleeps on in its robust list (see robustSleep), so an identity must never
// look like a thread id there (generation 0, no claim, is among them).
// That leaves 2^k·255/256 claims per slot: 32,640 with 65536 slots, about
// 16.7 million with the default 128. A table of 2^slotBits slots thus
// allows 2^31·255/256 claims in all, about 2.1 billion, whatever its size
// (fewer when MaxProcesses is not a power of 2).
//
// The holder of an identity is found by indexing the table, never by a scan:
// it is alive while its slot's generation still equals gen and the slot's
// live word is set and not marked dead by the kernel (or, where no kernel
// marks deaths, while its pid and start time still match, judged only from
// the same PID namespace).
//
// A slot's claim (attach), in order:
//
//	A0  procHigh: h → max(h, index+1)       CAS loop, never lowered; before
//	                                        the claim, so that the scans
//	                                        bounded by procHigh see the slot
//	                                        (see "The high-water mark")
//	A1  live: 0 or dead → keeper tid        CAS; the list op is pending first,
//	                                        so a death right after is marked
//	A2  gen: g → g+1                        the old identity is now dead
//	A3  wake all sleepers on live           any sleeper waiting for the old
//	                                        identity's death looks again
//
// Between A1 and A2 the old identity looks alive, with the newcomer's live
// word. A process waiting for the old identity's death sets liveWaiters in
// the live word and then re-reads gen before it sleeps (watch), and its
// sleep names both words with the values it saw (see liveRef). If its
// sleep began before A2, A3 wakes it; if its re-read or its sleep's check
// of gen came after A2, it does not sleep for the old identity. Without A3
// it would sleep until the newcomer dies, or forever.
//
// A3 leaves liveWaiters set. An earlier version cleared it first, so that
// the word's value changed for sleepers about to begin; the generation in
// the sleep does that now, and the clear made a kill between it and the
// wake fatal: the kernel wakes a dead word's sleepers only if liveWaiters is
// set (internal/model, BugAttachOrder). A stale bit costs a dead process's
// kernel one futex wake that finds nobody.
//
// A handle's release (detach, on Close), in order:
//
//	D1  live: tid → tid|liveDied            CAS; dead to lookup from here on
//	D2  wake all sleepers on live           they look again and find it dead
//	D3  unlink the slot from the robust list
//	D4  live: → 0                           the slot is free
//
// Its identity stays dead, since only a later claim, which bumps the
// generation, reuses the slot. A word with liveDied and a tid is a release
// in progress and is never claimed (the kernel clears the tid when it marks a
// death), so no newcomer takes the word while it is still on this process's
// robust list: a kill before D3 has the kernel mark it as for any death, and
// a kill between D3 and D4 leaves the slot unclaimable, one slot lost.
type identity = uint32

const (
	idMask = 0x7fffffff // the identity bits of a lock word

	// MaxProcessesLimit is the largest MaxProcesses a segment may have. The
	// identity of a handle (a table slot and the slot's generation) must fit
	// in 31 bits of a lock word, with at least 15 bits of generation: 32,640
	// claims of each slot (see the package documentation, Identity).
	MaxProcessesLimit = 1 << 16

	// maxTID bounds every thread id (PID_MAX_LIMIT on 64-bit Linux): an
	// identity's low 30 bits are never below it.
	maxTID = 1 << 22
)

// slotBitsFor returns the bits of an identity that hold the slot index in a
// table of procCap slots.
func slotBitsFor(procCap uint64) uint {
	return uint(max(1, bits.Len64(procCap-1)))
}

// nextGen returns the generation that follows g, or 0 if g was the last: the
// slot is then retired. It skips the generations whose identities could be
// taken for a thread id (see maxTID).
func (l *layoutInfo) nextGen(g uint32) uint32 {
	g++
	low := uint32(1)<<(30-l.slotBits) - 1 // the generation bits below bit 30 of an identity
	if g&low < maxTID>>l.slotBits {
		g += maxTID>>l.slotBits - g&low
	}
	if g >= 1<<(31-l.slotBits) {
		return 0
	}
	return g
}

// ident returns the identity of the claim of slot index i at generation gen.
func (l *layoutInfo) ident(i uint64, gen uint32) identity {
	return gen<<l.slotBits | uint32(i)
}

// slotOf returns the table offset of the slot that identity id names, and
// its generation; ok is false for an identity that names no slot.
func (l *layoutInfo) slotOf(id identity) (off uint64, gen uint32, ok bool) {
	i := uint64(id & (1<<l.slotBits - 1))
	gen = id >> l.slotBits
	if gen == 0 || i >= l.procCap {
		return 0, 0, false
	}
	return l.procOff + i*procSlotSize, gen, true
}

// The high-water mark.
//
// The header word procHigh is one more than the highest process-table index
// ever claimed. attach raises it to index+1 (A0, a CAS loop that only ever
// raises it) before it claims a slot (A1); nothing lowers it. So a slot at
// an index at or above procHigh, as loaded, was free at the instant of the
// load, and had been since the segment was made: its claim would have
// raised procHigh first, and Go's atomics are sequentially consistent.
//
// The scans that run on every contended operation (watchOthers and watchAll
// on every sleep; the reclaims of dead holders of the Semaphore, Cond and
// WaitGroup, whose entry for a slot is filled only for a handle that has
// claimed it) load procHigh once and look at the slots below it only.
// Skipping the slots above is what the full scan would have done had it
// read them at the instant of the load: free slots, and entries never
// written. No scan is an atomic snapshot anyway (a slot claimed behind a
// scan's position is missed either way), and each caller says why that is
// safe. attach takes the lowest free slot, so procHigh stays at about the
// most slots the segment has had in use at once: handles open, and slots
// retired or left dead (a dead process's slot is reused only when no free
// one is left). The scans then cost time in proportion to that, not to
// MaxProcesses; in a segment whose processes are often killed, dead slots
// accumulate and procHigh climbs toward MaxProcesses.
//
// No attach writes a procHigh above procCap. One found at attach (Create,
// Open, Inherit) fails it with ErrCorrupt: the segment's bookkeeping was
// overwritten. One written later is clamped to procCap by every load
// (procHigh), so that no scan leaves the table; a procHigh written too low
// hides live processes from the scans, as any garbage in the table can
// mislead them.

// procHigh returns the bound of a scan of the process table, or of the
// per-slot entries of an object: procHigh as loaded now, at most procCap.
func (s *Segment) procHigh() uint64 {
	return min(uint64(load32(s.mem, offProcHigh)), s.lay.procCap)
}

// raiseProcHigh raises procHigh to at least n (A0).
func (s *Segment) raiseProcHigh(n uint32) {
	w := u32at(s.mem, offProcHigh)
	for {
		h := atomic.LoadUint32(w)
		if h >= n || atomic.CompareAndSwapUint32(w, h, n) {
			return
		}
	}
}

// attach claims a slot in the segment's process table for this Segment and
// puts it on the keeper's robust list. See "A slot's claim" above. It
// returns ErrTooManyProcesses if no slot is free, and an error matching
// ErrCorrupt if procHigh is above procCap.
func (s *Segment) attach() error {
	k := theKeeper()
	procOff, procCap := s.lay.procOff, s.lay.procCap
	if h := load32(s.mem, offProcHigh); uint64(h) > procCap {
		return fmt.Errorf("%w: process table high-water mark %d, above its %d slots", ErrCorrupt, h, procCap)
	}
	pid := uint32(os.Getpid())
	k.mu.Lock()
	defer k.mu.Unlock()
	// Free slots first; a dead process's slot only when none is left, so
	// that its pid stays known (for OwnerDeadError and inspection) as long
	// as possible.
	for _, reuse := range []bool{false, true} {
		for i := range procCap {
			off := procOff + i*procSlotSize
			w := u32at(s.mem, off+slotLive)
			v := atomic.LoadUint32(w)
			if v != 0 && (!reuse || v&liveDied == 0 || v&tidMask != 0) {
				continue // in use, or being released (D1–D4)
			}
			if s.lay.nextGen(load32(s.mem, off+slotGen)) == 0 {
				continue // retired
			}
			s.raiseProcHigh(uint32(i + 1)) // A0
			node := unsafe.Pointer(&s.mem[off+slotNext])
			k.setPending(node)
			if !atomic.CompareAndSwapUint32(w, v, k.tid) { // step: proc.attach.cas_live; A1
				k.setPending(nil)
				continue
			}
			// The slot is ours: nobody else writes its fields now. Read
			// gen again, since others may have claimed and released the
			// slot since the first read.
			gen := s.lay.nextGen(load32(s.mem, off+slotGen))
			if gen == 0 {
				atomic.StoreUint32(w, liveDied) // retire it: dead, no tid
				k.setPending(nil)
				wakeAll(w)
				continue
			}
			store32(s.mem, off+slotPID, pid)
			store32(s.mem, off+slotTID, k.tid)
			store64(s.mem, off+slotStart, processStart(int(pid)))
			store64(s.mem, off+slotSince, uint64(time.Now().UnixNano()))
			store64(s.mem, off+slotPIDNS, pidNamespace())
			flags := uint32(0)
			if k.robust {
				flags = slotRobust
			}
			store32(s.mem, off+slotFlags, flags)
			store32(s.mem, off+slotGen, gen) // step: proc.attach.bump_gen; A2
			wakeAll(w)                       // step: proc.attach.wake_all; A3
			k.link(node)
			k.setPending(nil)
			s.slot = off
			s.id = s.lay.ident(i, gen)
			return nil
		}
	}
	return fmt.Errorf("%w (%d slots)", ErrTooManyProcesses, procCap)
}

// detach takes this Segment's slot off the robust list and frees it. Waiters
// sleeping on the slot's live word are woken: to them this handle is gone,
// and the locks it holds are held by a dead owner.
//
// The order makes a kill at any point of it harmless (D1–D4 of "A handle's
// release" above): until D3 the word is still on the keeper's robust list
// with its tid, so the kernel still marks it and wakes its sleepers.
func (s *Segment) detach() {
	k := theKeeper()
	w := u32at(s.mem, s.slot+slotLive)
	for { // step: proc.close.mark_closed; D1
		v := atomic.LoadUint32(w)
		if v&liveDied != 0 || atomic.CompareAndSwapUint32(w, v, v|liveDied) {
			break
		}
	}
	wakeAll(w) // step: proc.close.wake_all; D2
	func() {
		// Under k.mu, released by defer: unlink may fault on a truncated
		// file (see guard).
		k.mu.Lock()
		defer k.mu.Unlock()
		k.unlink(unsafe.Pointer(&s.mem[s.slot+slotNext])) // step: proc.close.unlink; D3
	}()
	if testHookDetached != nil {
		testHookDetached()
	}
	atomic.StoreUint32(w, 0) // step: proc.close.clear; D4
}

// testHookDetached, if set (by tests only), runs in detach between D3 and
// D4.
var testHookDetached func()

// A holder describes the process behind an identity found in a lock word.
type holder struct {
	alive bool
	pid   int
	pidns uint64  // its PID namespace, 0 if unknown
	live  *uint32 // the holder's live word, to sleep on; nil if not robust
	val   uint32  // the value live held
	gen   *uint32 // the holder's slot generation word
	g     uint32  // the generation of its identity
}

// lookup finds the holder of identity id by indexing the process table. It
// reads the live word before the generation (see "A slot's claim"). An
// identity that names no slot (0, or garbage written by another process) has
// a dead holder with pid 0.
func (s *Segment) lookup(id identity) holder {
	off, g, ok := s.lay.slotOf(id)
	if !ok {
		return holder{}
	}
	w := u32at(s.mem, off+slotLive)
	v := atomic.LoadUint32(w) // step: proc.lookup.live
	gw := u32at(s.mem, off+slotGen)
	if atomic.LoadUint32(gw) != g { // step: proc.lookup.gen
		return holder{} // the slot was claimed again since: long gone
	}
	h := holder{pid: int(load32(s.mem, off+slotPID)), pidns: load64(s.mem, off+slotPIDNS)}
	if v == 0 || v&liveDied != 0 {
		return h // closed, or the kernel found it dead
	}
	if id == s.id {
		h.alive = true
		return h
	}
	if load32(s.mem, off+slotFlags)&slotRobust == 0 {
		h.alive = pidAlive(h.pid, load64(s.mem, off+slotStart), h.pidns)
		return h
	}
	h.alive, h.live, h.val, h.gen, h.g = true, w, v, gw, g
	return h
}

// pidAlive judges, for a slot the kernel does not watch, whether the process
// pid that started at start, in PID namespace ns, is alive. A pid means
// something only in its own namespace: from another one (or when either
// namespace is unknown but the slot's is set) the process is taken to be
// alive, since nothing here can tell.
func pidAlive(pid int, start, ns uint64) bool {
	if own := pidNamespace(); ns != own && ns != 0 {
		return true
	}
	return processAlive(pid, start)
}

// pidOf returns the pid of the process holding identity id, or 0.
func (s *Segment) pidOf(id identity) int {
	if id == s.id {
		return os.Getpid()
	}
	return s.lookup(id).pid
}
