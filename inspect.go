package processshared

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"
)

// Inspection reads a segment's process table and objects without taking any
// lock and without changing a byte: what it reports is a snapshot, true at
// some instant during the call and possibly stale by the time it returns.
// List, Inspect and RemoveStale read named segments through a private
// read-only mapping and do not attach, so they never appear in the process
// tables they read.

// ProcessInfo describes an entry of a segment's process table: a process
// that has the segment open, or had it open when it died.
type ProcessInfo struct {
	// PID is the process's pid in its own PID namespace, PIDNamespace
	// (the namespace's inode number, 0 if unknown). A pid from a namespace
	// other than the caller's (PIDNamespace != OwnPIDNamespace()) names a
	// different process, or none, in the caller's.
	PID          int
	PIDNamespace uint64

	// Alive is false once the process has died: the kernel reported its
	// death through the robust list, or, where it cannot, the pid is gone
	// or was reused. A process that is attaching at the instant of the
	// call counts as alive.
	Alive bool

	// Self reports that the entry is the caller's own: for
	// Segment.Processes and Segment.Inspect, the entry of that Segment; for
	// List and Inspect, a live entry of the calling process.
	Self bool

	Since time.Time // when the process attached; zero if not recorded
	Slot  int       // index of the entry in the process table
}

// MutexState is the state of a Mutex at the instant it was read.
type MutexState struct {
	Locked    bool
	HolderPID int // the holding process; 0 if free, or if its table entry is gone
	// HolderPIDNamespace is the PID namespace HolderPID belongs to (see
	// ProcessInfo.PIDNamespace).
	HolderPIDNamespace uint64
	HolderAlive        bool // false if the holder died holding it: the next locker takes it over
	Waiters            bool // processes may be sleeping on it
	Consistent         bool // false after a holder died holding it, until MarkConsistent
	OwnerDeaths        int  // holders that died holding it, since it was created
	DeadPID            int  // the last holder that died holding it, or 0

	// Statistics since it was created, counted only by waits that slept
	// in the kernel (after a short spin), never on the fast path.
	Waited        uint64        // acquisitions, or attempts, that slept
	WaitTotal     time.Duration // their total time asleep and spinning
	WaitMax       time.Duration // the longest of them
	Timeouts      int           // LockContext calls whose deadline passed while waiting
	Cancellations int           // LockContext calls cancelled while waiting
}

// RWMutexState is the state of an RWMutex at the instant it was read.
type RWMutexState struct {
	// Writer reports that a writer holds the lock or waits for its
	// readers to leave; WriterPID is its pid (0 if its table entry is
	// gone), in PID namespace WriterPIDNamespace.
	Writer             bool
	WriterPID          int
	WriterPIDNamespace uint64
	WriterAlive        bool // false if it died: the next locker takes over
	Waiters            bool // processes may be sleeping on the writer word
	// Readers are the processes holding read locks (Count each); the
	// holds of a dead one are ignored by writers.
	Readers     []PermitHolder
	Consistent  bool // false after a writer died holding it, until MarkConsistent
	OwnerDeaths int  // writers that died holding it, since it was created
	DeadPID     int  // the last writer that died holding it, or 0

	// Statistics since it was created, counted only by lock calls (read
	// or write) that slept in the kernel.
	Waited        uint64        // calls that slept
	WaitTotal     time.Duration // their total time from the first sleep on
	Timeouts      int           // ...Context calls whose deadline passed while waiting
	Cancellations int           // ...Context calls cancelled while waiting
}

// SemaphoreState is the state of a Semaphore at the instant it was read.
type SemaphoreState struct {
	Counting bool // counting permits (NewCountingSemaphore); else owned
	Value    int  // permits available
	Max      int  // the largest value Release may reach; 0 for none
	Waiters  int  // 1 if processes may be sleeping in Acquire, else 0
	Holders  []PermitHolder
	// Hungry is set while a waiter has waited long enough that no other
	// Acquire may take permits until it has its own (see Semaphore).
	Hungry bool
}

// A PermitHolder is a process holding permits of a Semaphore. The permits of
// a dead holder return to the semaphore at the next Acquire that finds too
// few.
type PermitHolder struct {
	PID          int
	PIDNamespace uint64 // see ProcessInfo.PIDNamespace
	Alive        bool
	Count        int
}

// CondState is the state of a Cond at the instant it was read.
type CondState struct {
	Waiters int // goroutines registered in Wait, in all processes (dead ones until reclaimed)
	Signals int // wake-ups granted by Signal and not yet taken
}

// SlotState is the state of a Slot at the instant it was read. Its capacity
// is the ObjectInfo's Param.
type SlotState struct {
	Written    bool   // a value was ever stored
	Generation uint64 // the published value's generation: 0 if empty, then one more per Store
	Len        int    // bytes of the published value's encoding
}

// ObjectState is a named object with its state. The field for the object's
// kind is set (Mutex for KindMutex, and so on); Bytes and Array have no state
// beyond their size (an Array's element size is Param).
type ObjectState struct {
	ObjectInfo
	Mutex     *MutexState
	RWMutex   *RWMutexState
	Semaphore *SemaphoreState
	Cond      *CondState
	Slot      *SlotState
	Queue     *QueueState
	Event     *EventState
	Barrier   *BarrierState
	WaitGroup *WaitGroupState
	Once      *OnceState
	Err       error // the state could not be read: the object's memory holds garbage
}

// SegmentInfo describes a segment: its file, its creator, the processes in
// its table and its objects.
type SegmentInfo struct {
	Name string
	Size int64       // bytes, header included
	Mode fs.FileMode // permission bits of the file
	UID  int         // owner of the file

	CreatorPID          int
	CreatorPIDNamespace uint64 // see ProcessInfo.PIDNamespace
	CreatorAlive        bool
	Created             time.Time

	MaxProcesses int   // entries in the process table
	MaxObjects   int   // entries in the object directory
	Free         int64 // bytes left for new objects

	Processes []ProcessInfo // the table's entries, alive and dead, in table order
	Objects   []ObjectState // in creation order

	// Stale reports that no process uses the segment: every process in its
	// table is dead or gone (a segment nobody has open is stale too, even
	// if it is kept on purpose between runs), and its creator is not about
	// to attach to it (a segment nobody ever attached to is stale only
	// once its creator is dead). A segment whose tables could not be read
	// is never stale, except one of an older layout version (ErrVersion)
	// that no process has open or mapped, as far as /proc shows. A segment
	// whose queues hold messages (Queued) is never stale either: the
	// messages are data sent for a receiver to come, as a POSIX message
	// queue keeps its messages with no process attached, and RemoveStale
	// must not throw them away. Remove such a segment by name, or drain it.
	Stale bool

	// Queued is the number of messages in the segment's queues, as far as
	// their state could be read.
	Queued int

	// Err is set when the segment's header or tables could not be read
	// (another layout version, a truncated or corrupt file); the fields
	// above it are filled as far as they could be read.
	Err error
}

// Processes returns the entries of s's process table, alive and dead; the
// entry of s itself has Self set. It returns ErrClosed after Close, and an
// error matching ErrTruncated if the segment's file was truncated under the
// mapping.
func (s *Segment) Processes() (_ []ProcessInfo, err error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	defer s.guard(&err, guarded())
	procs, _ := s.processes(s.slot)
	return procs, nil
}

// Inspect describes s: its process table, with s's own entry marked Self, and
// its objects with their state. It returns ErrClosed after Close, and
// SegmentInfo.Err if the segment's tables cannot be read.
func (s *Segment) Inspect() (SegmentInfo, error) {
	objs, oerr := s.Objects() // before enter: Objects enters by itself
	if errors.Is(oerr, ErrClosed) || !s.enter() {
		return SegmentInfo{}, ErrClosed
	}
	defer s.exit()
	si := SegmentInfo{Name: s.name, Size: int64(len(s.mem))}
	if fi, err := s.file.Stat(); err == nil {
		si.Mode = fi.Mode().Perm()
		si.UID = fileUID(fi)
	}
	s.fill(&si, s.slot, objs, oerr)
	return si, si.Err
}

// Inspect describes the named segment in /dev/shm without attaching to it.
// A missing name gives an error matching fs.ErrNotExist, a file that is not
// a processshared segment (or a symbolic link) one matching ErrNotSegment; a
// segment whose tables cannot be read is described as far as possible, with
// its SegmentInfo.Err returned as the error.
func Inspect(name string) (SegmentInfo, error) {
	if err := checkName(name); err != nil {
		return SegmentInfo{}, err
	}
	si, _, err := inspectNamed(name)
	if err != nil {
		return si, err
	}
	return si, si.Err
}

// List describes the segments this library created in /dev/shm, in name
// order, without attaching to them. With patterns (path.Match syntax), it
// lists only the segments whose name matches one of them.
//
// Files that are not processshared segments are skipped, and so are those
// the caller may not read (another user's segments of mode 0600, unless the
// caller is root). A segment whose header or tables cannot be read is listed
// with SegmentInfo.Err set. List returns an error only if /dev/shm cannot be
// read or a pattern is malformed.
func List(patterns ...string) ([]SegmentInfo, error) {
	names, err := segmentNames(patterns)
	if err != nil {
		return nil, err
	}
	var out []SegmentInfo
	for _, name := range names {
		if si, _, err := inspectNamed(name); err == nil {
			out = append(out, si)
		}
	}
	return out, nil
}

// RemoveStale removes the named segments that no process uses (see
// SegmentInfo.Stale) and returns their names. A segment whose queues hold
// messages is not stale: RemoveStale leaves it alone. With patterns (path.Match
// syntax), it considers only the segments whose name matches one of them.
// The error joins the failures to remove a stale segment (permission
// denied, say); segments in use are not failures, they are left alone.
//
// RemoveStale never removes a segment a live process is attached to. It
// decides in three steps: it reads each segment's process table (stale
// candidates have no live entry); it then scans /proc for processes that
// have a candidate open or mapped without being in its table (a process
// between opening a segment and attaching to it, or a child that was handed
// the segment with Pass and has not called Inherit yet) and keeps those;
// last, it reads each remaining candidate's table again and unlinks the
// name only if it still names the same file and that file is still stale.
//
// What remains: attaching takes no lock that RemoveStale could take, so a
// process that opens a segment after the /proc scan has passed it, and
// attaches after the last check, ends up attached to a segment that has
// lost its name. It keeps working, but alone: the next Open of the name
// creates or finds another segment. The window is that of Open's own
// open-to-attach path (a header read and an mmap), during a RemoveStale run.
// The /proc scan sees only the processes whose /proc/PID/fd and
// /proc/PID/maps the caller may read: all of the caller's own user's, all
// for root. (Other users can open a segment only if its mode allows them.)
func RemoveStale(patterns ...string) ([]string, error) {
	names, err := segmentNames(patterns)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		name string
		id   fileID
	}
	var cands []candidate
	ids := make(map[fileID]bool)
	for _, name := range names {
		if si, id, err := inspectNamed(name); err == nil && si.Stale {
			cands = append(cands, candidate{name, id})
			ids[id] = true
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	inUse := openedOrMapped(ids)
	var removed []string
	var errs []error
	for _, c := range cands {
		if inUse[c.id] {
			continue
		}
		ok, err := removeIfStale(c.name, c.id)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			removed = append(removed, c.name)
		}
	}
	return removed, errors.Join(errs...)
}

// A fileID identifies a file: device and inode numbers.
type fileID struct{ dev, ino uint64 }

// fill fills si from s's mapping. self is the offset of the caller's own
// process table entry, 0 if it has none; objs and oerr are what s.Objects
// returned.
func (s *Segment) fill(si *SegmentInfo, self uint64, objs []ObjectInfo, oerr error) {
	si.MaxProcesses, si.MaxObjects = int(s.lay.procCap), int(s.lay.maxObjects)
	used, err := s.describe(si, self, objs)
	if si.Err = oerr; si.Err == nil {
		si.Err = err
	}
	alive := slices.ContainsFunc(si.Processes, func(p ProcessInfo) bool { return p.Alive })
	for _, o := range si.Objects {
		if o.Queue != nil {
			si.Queued += o.Queue.Len
		}
	}
	si.Stale = si.Err == nil && !alive && (used || !si.CreatorAlive) && si.Queued == 0
}

// describe reads the creator, the process table and the state of objs into
// si. used reports whether any process ever attached. A fault on the
// mapping (its file was truncated) ends it with an error wrapping
// ErrTruncated.
func (s *Segment) describe(si *SegmentInfo, self uint64, objs []ObjectInfo) (used bool, err error) {
	defer s.guard(&err, guarded())
	mem, l := s.mem, s.lay
	si.CreatorPID = int(load32(mem, offCreatorPID))
	si.CreatorPIDNamespace = load64(mem, offCreatorNS)
	si.CreatorAlive = pidAlive(si.CreatorPID, load64(mem, offCreatorStart), si.CreatorPIDNamespace)
	if ns := int64(load64(mem, offCreated)); ns != 0 {
		si.Created = time.Unix(0, ns)
	}
	if next := load64(mem, offHeapNext); next >= l.heapOff && next <= l.size {
		si.Free = int64(l.size - next)
	}
	si.Processes, used = s.processes(self)
	for _, o := range objs {
		st := s.objectState(o)
		if o.gen != 0 && !s.entryLive(o.entry, o.gen) {
			continue // deleted while read: what was read may be another object's
		}
		si.Objects = append(si.Objects, st)
	}
	return used, nil
}

// processes reads the process table. used reports whether any process ever
// attached (a detached entry keeps its attach time).
func (s *Segment) processes(self uint64) (procs []ProcessInfo, used bool) {
	me := os.Getpid()
	for i := range s.lay.procCap {
		off := s.lay.procOff + i*procSlotSize
		live := load32(s.mem, off+slotLive)
		since := int64(load64(s.mem, off+slotSince))
		used = used || live != 0 || since != 0
		if live == 0 {
			continue
		}
		pid := int(load32(s.mem, off+slotPID))
		p := ProcessInfo{PID: pid, PIDNamespace: load64(s.mem, off+slotPIDNS), Slot: int(i)}
		if since != 0 {
			p.Since = time.Unix(0, since)
		}
		switch {
		case live&liveDied != 0:
			// The kernel found it dead.
		case pid == 0 || live&tidMask != load32(s.mem, off+slotTID):
			p.Alive = true // attaching now: its entry is half written
		case load32(s.mem, off+slotFlags)&slotRobust != 0:
			p.Alive = true // the kernel would have set liveDied
		default:
			p.Alive = pidAlive(pid, load64(s.mem, off+slotStart), p.PIDNamespace)
		}
		if self != 0 {
			p.Self = off == self
		} else {
			p.Self = p.Alive && pid == me && p.PIDNamespace == pidNamespace()
		}
		procs = append(procs, p)
	}
	return procs, used
}

// objectState reads the state of the object o, whose entry readEntry
// validated: o lies inside the mapping, in the heap.
func (s *Segment) objectState(o ObjectInfo) ObjectState {
	st := ObjectState{ObjectInfo: o}
	off, size := uint64(o.Offset), uint64(o.Size)
	var need uint64
	switch o.Kind {
	case KindMutex:
		need = mutexSize
	case KindCond:
		need = condSize(s.lay.procCap)
	case KindSemaphore:
		need = semHeld
	case KindCountingSemaphore:
		need = semMax + 4
	case KindSlot:
		need = slBufs + 2*alignUp(bufData+uint64(o.Param), objAlign)
	case KindQueue:
		need = qWaiting
	case KindRWMutex:
		need = rwSize(s.lay.procCap)
	default:
		var ok bool
		if need, ok = syncNeed(o.Kind); !ok {
			return st // Bytes, Array, or a kind this version does not know
		}
	}
	if off%objAlign != 0 || size < need {
		st.Err = fmt.Errorf("%w: %v %q at %d has %d bytes, want %d at an aligned offset", ErrCorrupt, o.Kind, o.Name, off, size, need)
		return st
	}
	mem := s.mem
	switch o.Kind {
	case KindMutex:
		w := load32(mem, off+mtxWord)
		m := &MutexState{
			Locked:      w&idMask != 0,
			Waiters:     w&lockWaiters != 0,
			Consistent:  load32(mem, off+mtxFlags)&mutexInconsistent == 0,
			OwnerDeaths: int(load32(mem, off+mtxDeaths)),
			DeadPID:     int(load32(mem, off+mtxDeadPID)),

			Waited:        load64(mem, off+mtxWaited),
			WaitTotal:     time.Duration(load64(mem, off+mtxWaitNs)),
			WaitMax:       time.Duration(load64(mem, off+mtxWaitMaxNs)),
			Timeouts:      int(load32(mem, off+mtxTimeouts)),
			Cancellations: int(load32(mem, off+mtxCancels)),
		}
		if m.Locked {
			h := s.lookup(w & idMask)
			m.HolderPID, m.HolderAlive, m.HolderPIDNamespace = h.pid, h.alive, h.pidns
		}
		st.Mutex = m
	case KindCond:
		v := load64(mem, off+condState)
		st.Cond = &CondState{Waiters: int(v >> 32 & condMax), Signals: int(v >> 48)}
	case KindSemaphore:
		v := load64(mem, off+semState)
		sem := &SemaphoreState{
			Value:   int(uint32(v) & semCount),
			Max:     int(load32(mem, off+semMax)),
			Waiters: int(uint32(v) >> 31),
			Hungry:  v&semHungry != 0,
		}
		if h := uint32(v >> 32); v&semTable == 0 && h != 0 {
			// Holder mode: the holder holds every permit not available.
			l := s.lookup(h)
			n := int(load32(mem, off+semTotal)) - sem.Value
			sem.Holders = append(sem.Holders, PermitHolder{PID: l.pid, PIDNamespace: l.pidns, Alive: l.alive, Count: n})
		}
		// Held entry i belongs to process table entry i.
		for i := range min((size-semHeld)/8, s.lay.procCap) {
			e := off + semHeld + i*8
			n := load32(mem, e+4)
			if n == 0 {
				continue
			}
			h := s.lookup(load32(mem, e))
			sem.Holders = append(sem.Holders, PermitHolder{PID: h.pid, PIDNamespace: h.pidns, Alive: h.alive, Count: int(n)})
		}
		st.Semaphore = sem
	case KindCountingSemaphore:
		st.Semaphore = &SemaphoreState{
			Counting: true,
			Value:    int(load32(mem, off+semState+semLo) & semCount),
			Max:      int(load32(mem, off+semMax)),
			Waiters:  int(load32(mem, off+semState+semLo) >> 31),
			Hungry:   load32(mem, off+semState+semLo)&semHungry != 0,
		}
	case KindSlot:
		g := load64(mem, off+slGen)
		sl := &SlotState{Written: g != 0, Generation: g}
		if g != 0 {
			b := off + slBufs + (g&1)*alignUp(bufData+uint64(o.Param), objAlign)
			sl.Len = int(min(load32(mem, b+bufLen), o.Param))
		}
		st.Slot = sl
	case KindQueue:
		st.Queue = s.queueState(off, size)
	case KindRWMutex:
		w := load32(mem, off+rwWord)
		rw := &RWMutexState{
			Writer:      w&idMask != 0,
			Waiters:     w&lockWaiters != 0,
			Readers:     rwReaders(s, off, s.lay.procCap),
			Consistent:  load32(mem, off+rwFlags)&mutexInconsistent == 0,
			OwnerDeaths: int(load32(mem, off+rwDeaths)),
			DeadPID:     int(load32(mem, off+rwDeadPID)),

			Waited:        load64(mem, off+rwWaited),
			WaitTotal:     time.Duration(load64(mem, off+rwWaitNs)),
			Timeouts:      int(load32(mem, off+rwTimeout)),
			Cancellations: int(load32(mem, off+rwCancels)),
		}
		if rw.Writer {
			h := s.lookup(w & idMask)
			rw.WriterPID, rw.WriterAlive, rw.WriterPIDNamespace = h.pid, h.alive, h.pidns
		}
		st.RWMutex = rw
	default:
		s.syncState(&st, off, size)
	}
	return st
}

// OwnPIDNamespace returns the inode number of the calling process's PID
// namespace, which names it, or 0 where the system has no PID namespaces or
// does not tell. Compare it with ProcessInfo.PIDNamespace: a pid is
// meaningful only in its own namespace.
func OwnPIDNamespace() uint64 { return pidNamespace() }
