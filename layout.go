package processshared

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Segment layout, version 6. All integers are in the machine's byte order;
// processes of different architectures must not share a segment.
//
//	offset  size  field
//	0       8     magic        segMagic, stored last (atomically) by the creator
//	8       4     version      layoutVersion
//	12      4     headerSize   hdrSize
//	16      8     size         bytes in the segment, header included
//	24      4     procOff      offset of the process table
//	28      4     procCap      entries in the process table
//	32      4     dirOff       offset of the object directory
//	36      4     dirCap       entries in the object directory (dirCapFor(maxObjects))
//	40      8     heapOff      first byte objects may be allocated at
//	48      8     heapNext     next free byte; accessed atomically only
//	56      4     creatorPID
//	64      8     created      creation time, Unix nanoseconds
//	72      8     creatorStart creator's start time (clock ticks since boot)
//	80      8     creatorNS    inode of the creator's PID namespace (0 if unknown)
//	88      4     maxObjects   objects the directory may hold (Options.MaxObjects)
//	128     8     spinners     the spinner gate (see spinEnter); on a cache line of its own
//	192     4     objects      directory entries claimed, at most maxObjects; accessed atomically only
//	196     4     freeCount    extents in the free table, at least; accessed atomically only
//	200     4     procHigh     one more than the highest process table index ever
//	                           claimed, at most procCap (see proc.go, "The
//	                           high-water mark"); accessed atomically only
//
// The process table follows the header, then the directory, then the free
// table (maxObjects words of 8 bytes: the offset of a deleted object's
// extent, or 0; see deletion.go), then the heap. Every object in the heap
// is preceded by its extent header (extHdrSize bytes, see extent fields
// below).
// Every offset and count read back from a mapping is checked against the
// mapping's length before use: other processes may have written anything.
const (
	segMagic      = 0x3147455348535350 // "PSSHSEG1" read as little-endian
	layoutVersion = 6                  // 2: identities are slot+generation, not thread ids; 3: hashed directory; 4: deletion (entry generations, extent headers, free table), Cond records interleaved by cache line, Slot buffer flags; 5: Semaphore state word (owned permits' holder), max at 8; 6: counting Semaphore value has semLive; procHigh, the process table's high-water mark (header offset 200)
	hdrSize       = 256

	offMagic        = 0
	offVersion      = 8
	offHeaderSize   = 12
	offSize         = 16
	offProcOff      = 24
	offProcCap      = 28
	offDirOff       = 32
	offDirCap       = 36
	offHeapOff      = 40
	offHeapNext     = 48
	offCreatorPID   = 56
	offCreated      = 64
	offCreatorStart = 72
	offCreatorNS    = 80
	offMaxObjects   = 88
	offSpinners     = 128
	offObjects      = 192
	offFreeCount    = 196
	offProcHigh     = 200

	procSlotSize = 64
	dirEntrySize = 128
	objAlign     = 64 // objects start on their own cache line
)

// MaxObjectNameLen is the longest name of an object inside a segment.
const MaxObjectNameLen = 96

// Fields of a process table slot (procSlotSize bytes).
//
//	0   live   uint32  robust futex word: keeper thread id | liveWaiters | liveDied; 0 = free
//	4   pid    uint32  the process's pid, in its own PID namespace
//	8   next   uint64  struct robust_list entry; linked into the attaching
//	                   process's robust list (virtual addresses of that process)
//	16  start  uint64  the process's start time in clock ticks since boot
//	24  since  int64   attach time, Unix nanoseconds
//	32  flags  uint32  slotRobust when the kernel watches live for this process
//	36  tid    uint32  the keeper thread id, kept after the kernel clears it
//	                   from live (it leaves only liveDied|liveWaiters there)
//	40  gen    uint32  generation of the slot's current (or last) claim; the
//	                   identity of that claim is gen<<slotBits | index (see
//	                   identity.go); accessed atomically only
//	48  pidns  uint64  inode of the process's PID namespace (0 if unknown)
//
// The live word is the kernel's: its low 30 bits must be the keeper's
// namespace-local thread id, which the kernel compares with the dying
// thread's own (robust-futex-ABI). The identity in lock words is the slot's
// index and generation, which the segment hands out and which no two
// claims share.
const (
	slotLive   = 0
	slotPID    = 4
	slotNext   = 8
	slotStart  = 16
	slotSince  = 24
	slotFlags  = 32
	slotTID    = 36
	slotGen    = 40
	slotPIDNS  = 48
	slotRobust = 1

	// The kernel's robust-futex ABI: the low 30 bits of a watched word hold the
	// owning thread's id; FUTEX_OWNER_DIED is set by the kernel when that thread
	// exits, and it wakes one waiter if FUTEX_WAITERS was set.
	tidMask     = 0x3fffffff
	liveDied    = 0x40000000 // FUTEX_OWNER_DIED
	liveWaiters = 0x80000000 // FUTEX_WAITERS
)

// Fields of a directory entry (dirEntrySize bytes).
//
//	0   state   uint32 entryEmpty, entryClaimed|identity, entryReady, entryDead,
//	                   entryDeleted
//	4   gen     uint32 generation of the entry's object, 0 while the entry
//	                   has never held one; accessed atomically only, alone
//	                   or with state as one 64-bit word (entPair)
//	8   param   uint32 kind-specific (element size of an Array)
//	12  kind    uint32
//	16  off     uint64 object offset in the segment
//	24  size    uint64 object size
//	32  name    [96]byte, zero padded
//
// An entry goes empty → claimed (by a creator, whose identity is in the state word)
// → ready, or claimed → empty when there is no room for the object, or claimed
// → dead when its creator died before publishing it. A ready entry goes
// → deleted when its object is deleted (Segment.Delete): the entry keeps its
// name, and a creator of that name claims it again (deleted → claimed →
// ready, with gen bumped), or puts it back to deleted when there is no room.
// So an entry's name is set once, when it leaves empty, and never changes.
// A creator that claimed an empty entry writes the name, then sets gen to
// 1: gen is not 0 only once the name is whole. A claimer found dead leaves
// its entry dead if gen is 0, and deleted (a name free for a creator)
// otherwise; either way the entry no longer counts against MaxObjects.
// The fields of a ready entry do not change while it stays ready with the
// same gen: a reader that saw entryReady and gen g may read them, and
// trusts what it read (after validating it) if the entry is still ready
// with gen g afterwards (see Segment.entryLive).
const (
	entState = 0
	entGen   = 4
	entParam = 8
	entKind  = 12
	entOff   = 16
	entSize  = 24
	entName  = 32

	entryEmpty   = 0
	entryReady   = 1
	entryDead    = 2
	entryDeleted = 3
	entryClaimed = 0x80000000 // | identity of the claimer (31 bits)
)

// Fields of an extent header, the extHdr(procCap) bytes before every object:
//
//	0   cap     uint64  bytes of the extent after the header: an object of
//	                    at most cap bytes may reuse it
//	8   gen     uint32  the generation of the directory entry of the object
//	                    in it (a check: a lookup that finds another gen in
//	                    a live entry's extent reports ErrCorrupt)
//	12  unused
//	16  pins    [(procCap+63)/64]uint64: bit i is set while process table
//	            slot i holds a handle on the object; accessed atomically only
//
// The pins say who may still reach a deleted object (see deletion.go).
const (
	extCap  = 0
	extGen  = 8
	extPins = 16
)

// extHdr returns the size of an extent header in a segment of procCap
// process table slots: a multiple of objAlign, so objects stay aligned.
func extHdr(procCap uint64) uint64 { return alignUp(extPins+(procCap+63)/64*8, objAlign) }

// entPair returns the 64-bit word at an entry's offset 0 that holds state
// st and generation gen, in the machine's byte order.
func entPair(st, gen uint32) uint64 {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[entState:], st)
	binary.NativeEndian.PutUint32(b[entGen:], gen)
	return binary.NativeEndian.Uint64(b[:])
}

func u32at(mem []byte, off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
func u64at(mem []byte, off uint64) *uint64 { return (*uint64)(unsafe.Pointer(&mem[off])) }

func load32(mem []byte, off uint64) uint32     { return atomic.LoadUint32(u32at(mem, off)) }
func load64(mem []byte, off uint64) uint64     { return atomic.LoadUint64(u64at(mem, off)) }
func store32(mem []byte, off uint64, v uint32) { atomic.StoreUint32(u32at(mem, off), v) }
func store64(mem []byte, off uint64, v uint64) { atomic.StoreUint64(u64at(mem, off), v) }

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }
