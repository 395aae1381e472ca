package processshared

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxSegmentNameLen is the longest segment name Create, Open and OpenOrCreate
// accept.
const MaxSegmentNameLen = 200

// MaxObjectsLimit is the largest MaxObjects a segment may have.
const MaxObjectsLimit = 1 << 20

// dirCapFor returns the entries of a directory for maxObjects objects: the
// directory is a hash table (see Segment.object), kept at most two thirds
// full so that probes stay short.
func dirCapFor(maxObjects uint64) uint64 { return maxObjects + maxObjects/2 + 1 }

// Defaults used when Options leaves a field zero.
const (
	// DefaultMaxObjects is how many named objects a segment holds unless
	// Options.MaxObjects says otherwise.
	DefaultMaxObjects = 256
	// DefaultMaxProcesses is how many Segment handles, in all processes,
	// may have a segment open at once unless Options.MaxProcesses says
	// otherwise.
	DefaultMaxProcesses = 128
	// DefaultMode is the file mode of a named segment unless Options.Mode
	// says otherwise: readable and writable by the creating user only.
	DefaultMode = 0o600
	// DefaultInitTimeout is how long Open waits for a segment's creator to
	// finish, and a lookup for an object's creator, unless
	// Options.InitTimeout says otherwise.
	DefaultInitTimeout = 5 * time.Second
)

// Options configure the creation and opening of a segment. The zero value, and
// a nil *Options, select the defaults.
type Options struct {
	// Mode is the permission of a named segment's file in /dev/shm. Zero
	// means DefaultMode (0600: the creating user only).
	Mode fs.FileMode

	// MaxObjects is the number of named objects the segment can hold; one
	// more gives ErrNoSpace. The directory takes 1.5 entries of 128 bytes
	// per object (it is a hash table, kept at most two thirds full, so
	// that finding an object by name takes the same time in any segment).
	// At most MaxObjectsLimit.
	MaxObjects int

	// MaxProcesses is the number of Segment handles, in all processes, that
	// can have the segment open at once: each takes one entry of the
	// segment's process table. At most MaxProcessesLimit.
	MaxProcesses int

	// InitTimeout bounds how long Open and OpenOrCreate wait for another
	// process to finish initializing a segment it is creating, and how long
	// a lookup waits for another process to finish creating a named object.
	InitTimeout time.Duration

	// Sparse leaves the file of a segment that Create, OpenOrCreate or
	// NewAnonymous makes sparse: its pages are allocated when first
	// touched instead of reserved at creation (see the package doc,
	// Segments). Creation then succeeds even where the segment does not
	// fit, and the first touch of a page for which there is no room raises
	// SIGBUS in the process that touches it: that kills the process (the
	// calls that guard against a truncated file report ErrTruncated
	// instead). Use it only for large segments that are mostly left
	// untouched, where you know there is room for the pages that will be
	// touched. Open ignores it. On macOS and FreeBSD segments are always
	// sparse.
	Sparse bool
}

func (o *Options) mode() fs.FileMode {
	if o == nil || o.Mode == 0 {
		return DefaultMode
	}
	return o.Mode.Perm()
}

func (o *Options) maxObjects() int {
	if o == nil || o.MaxObjects <= 0 {
		return DefaultMaxObjects
	}
	return o.MaxObjects
}

func (o *Options) maxProcesses() int {
	if o == nil || o.MaxProcesses <= 0 {
		return DefaultMaxProcesses
	}
	return o.MaxProcesses
}

func (o *Options) initTimeout() time.Duration {
	if o == nil || o.InitTimeout <= 0 {
		return DefaultInitTimeout
	}
	return o.InitTimeout
}

// A Segment is a region of shared memory mapped into this process: a named
// file in /dev/shm, or an anonymous memory file handed to child processes.
// Obtain one with Create, Open, OpenOrCreate, NewAnonymous or Inherit; the
// zero value is not usable.
//
// A Segment holds named objects (Bytes, Array, Slot, Mutex, Cond, Semaphore, Queue),
// which other processes find by name. It is safe for concurrent use by
// multiple goroutines. Close unmaps it; the objects obtained from it must not
// be used afterwards (they return ErrClosed or panic, never fault).
//
// A named segment outlives every process that uses it, until Remove; an
// anonymous one disappears when the last process holding it closes it or exits.
type Segment struct {
	name    string
	anon    bool
	file    *os.File
	mem     []byte
	lay     layoutInfo // validated once at open; the header never changes after
	timeout time.Duration

	closed uint32   // accessed atomically only; 1 after Close
	drop   bool     // a dropped object handle's stand-in (Segment.dropped)
	slot   uint64   // offset of this Segment's process table slot
	id     identity // the identity locks record (see proc.go)
	fid    fileID   // the file's device and inode, for the race annotations

	// inflight counts the calls inside the mapping (enter to exit),
	// accessed atomically only. Close waits for it to drop to 0; the last
	// call out after Close sends on drained.
	inflight atomic.Int64
	drained  chan struct{} // capacity 1

	mu      sync.Mutex
	locals  map[uint64]*local    // process-local state per object, by offset
	cancels map[*waitCancel]bool // waits in progress, woken by Close
	done    chan struct{}        // closed by Close
	seen    map[string]seenEntry // directory entries validated, by name (directory.go)
	spans   []span               // their objects' memory, sorted
	pins    map[uint64]*pin      // objects this handle holds handles on, by offset (deletion.go)
	stub    *Segment             // what dropped object handles use (Segment.dropped)
}

// Name returns the segment's name: its file name in /dev/shm, or the label of
// an anonymous segment.
func (s *Segment) Name() string { return s.name }

// Anonymous reports whether the segment has no name in /dev/shm.
func (s *Segment) Anonymous() bool { return s.anon }

// Size returns the segment's size in bytes, header included.
func (s *Segment) Size() int64 { return int64(len(s.mem)) }

// Free returns the size of the largest new object that fits in the space
// never used yet at the top of the segment's heap. (The space of deleted
// objects, which later objects of its size or smaller reuse, is not
// counted.)
func (s *Segment) Free() int64 {
	if !s.enter() {
		return 0
	}
	defer s.exit()
	next := alignUp(load64(s.mem, offHeapNext), objAlign) + s.lay.extHdr
	if next > uint64(len(s.mem)) {
		return 0
	}
	return int64(uint64(len(s.mem)) - next)
}

// Fd returns the file descriptor behind the segment. It stays owned by the
// Segment and is closed by Close.
func (s *Segment) Fd() uintptr { return s.file.Fd() }

func (s *Segment) String() string {
	if s.drop {
		return fmt.Sprintf("a dropped handle on segment %q", s.name)
	}
	return fmt.Sprintf("segment %q", s.name)
}

// checkName validates a segment name.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
	case len(name) > MaxSegmentNameLen:
	case strings.ContainsAny(name, "/\x00"):
	case strings.Contains(name, ".."):
	default:
		return nil
	}
	return fmt.Errorf("%w: segment name %q (want 1 to %d bytes, no '/', no \"..\", no NUL)", ErrInvalidName, name, MaxSegmentNameLen)
}

// layout computes where the tables and the heap go for a new segment of size
// bytes, and checks that they fit.
type layoutInfo struct {
	size, procOff, procCap, dirOff, dirCap, heapOff uint64

	freeOff uint64 // the free table: maxObjects words (deletion.go)
	extHdr  uint64 // bytes of an extent header (extHdr(procCap))

	maxObjects uint64 // objects the directory may hold, fewer than dirCap

	slotBits uint // bits of an identity that hold the slot index (proc.go)
}

func newLayout(size int64, opts *Options) (layoutInfo, error) {
	var l layoutInfo
	if size <= 0 {
		return l, fmt.Errorf("processshared: segment size %d must be positive", size)
	}
	page := uint64(os.Getpagesize())
	l.size = alignUp(uint64(size), page)
	l.procCap = uint64(opts.maxProcesses())
	l.maxObjects = uint64(opts.maxObjects())
	if l.procCap > MaxProcessesLimit || l.maxObjects > MaxObjectsLimit {
		return l, fmt.Errorf("processshared: MaxProcesses (%d, at most %d) or MaxObjects (%d, at most %d) too large",
			l.procCap, MaxProcessesLimit, l.maxObjects, MaxObjectsLimit)
	}
	l.dirCap = dirCapFor(l.maxObjects)
	l.slotBits = slotBitsFor(l.procCap)
	l.procOff = hdrSize
	l.dirOff = l.procOff + l.procCap*procSlotSize
	l.freeOff = l.dirOff + l.dirCap*dirEntrySize
	l.heapOff = alignUp(l.freeOff+l.maxObjects*8, objAlign)
	l.extHdr = extHdr(l.procCap)
	if l.heapOff > l.size {
		return l, fmt.Errorf("%w: %d bytes cannot hold the tables for %d processes and %d objects (need %d: %d per process, %d per object)",
			ErrNoSpace, size, l.procCap, l.maxObjects, l.heapOff, procSlotSize, (l.heapOff-l.dirOff)/l.maxObjects)
	}
	return l, nil
}

// initHeader writes a new segment's header into mem, the magic number last.
func initHeader(mem []byte, l layoutInfo) {
	store32(mem, offVersion, layoutVersion)
	store32(mem, offHeaderSize, hdrSize)
	store64(mem, offSize, l.size)
	store32(mem, offProcOff, uint32(l.procOff))
	store32(mem, offProcCap, uint32(l.procCap))
	store32(mem, offDirOff, uint32(l.dirOff))
	store32(mem, offDirCap, uint32(l.dirCap))
	store32(mem, offMaxObjects, uint32(l.maxObjects))
	store64(mem, offHeapOff, l.heapOff)
	store64(mem, offHeapNext, l.heapOff)
	store32(mem, offCreatorPID, uint32(os.Getpid()))
	store64(mem, offCreated, uint64(time.Now().UnixNano()))
	store64(mem, offCreatorStart, selfStart())
	store64(mem, offCreatorNS, pidNamespace())
	store64(mem, offMagic, segMagic)
}

// parseHeader validates a header read from a file of fileSize bytes and
// returns its layout. It reads hdr (at least hdrSize bytes) as plain bytes,
// so it can run on a copy, before anything is mapped.
func parseHeader(hdr []byte, fileSize int64) (layoutInfo, error) {
	var l layoutInfo
	if len(hdr) < hdrSize || fileSize < hdrSize {
		return l, ErrNotSegment
	}
	ne := binary.NativeEndian
	if ne.Uint64(hdr[offMagic:]) != segMagic {
		return l, ErrNotSegment
	}
	if v := ne.Uint32(hdr[offVersion:]); v != layoutVersion {
		return l, fmt.Errorf("%w: segment has version %d, this library reads version %d", ErrVersion, v, layoutVersion)
	}
	if hs := ne.Uint32(hdr[offHeaderSize:]); hs != hdrSize {
		return l, fmt.Errorf("%w: header size %d", ErrCorrupt, hs)
	}
	l.size = ne.Uint64(hdr[offSize:])
	l.procOff = uint64(ne.Uint32(hdr[offProcOff:]))
	l.procCap = uint64(ne.Uint32(hdr[offProcCap:]))
	l.dirOff = uint64(ne.Uint32(hdr[offDirOff:]))
	l.dirCap = uint64(ne.Uint32(hdr[offDirCap:]))
	l.maxObjects = uint64(ne.Uint32(hdr[offMaxObjects:]))
	l.heapOff = ne.Uint64(hdr[offHeapOff:])
	if l.size > uint64(fileSize) {
		return l, fmt.Errorf("%w: header says %d bytes, file has %d", ErrTruncated, l.size, fileSize)
	}
	if l.size < hdrSize || l.size > 1<<48 ||
		l.procOff != hdrSize || l.procCap == 0 || l.procCap > MaxProcessesLimit ||
		l.maxObjects == 0 || l.maxObjects > MaxObjectsLimit || l.dirCap != dirCapFor(l.maxObjects) ||
		l.dirOff != l.procOff+l.procCap*procSlotSize ||
		l.heapOff != alignUp(l.dirOff+l.dirCap*dirEntrySize+l.maxObjects*8, objAlign) ||
		l.heapOff > l.size {
		return l, fmt.Errorf("%w: inconsistent segment header", ErrCorrupt)
	}
	l.slotBits = slotBitsFor(l.procCap)
	l.freeOff = l.dirOff + l.dirCap*dirEntrySize
	l.extHdr = extHdr(l.procCap)
	return l, nil
}

// Close detaches this handle from the segment and unmaps it. Calls blocked
// in the segment's locks, in any goroutine, return ErrClosed first. Close is
// idempotent: later calls return nil.
//
// Close may race with calls on the segment's objects in other goroutines:
// each such call either completes as if it came before Close, or returns
// ErrClosed (panics, for methods without an error result); none faults or
// touches another mapping. Objects obtained from the segment must not be
// used after Close; they return ErrClosed, or panic where their signature
// has no error result.
//
// Each handle is its own identity (see the package documentation): the
// locks this handle still holds, and the Semaphore permits it has not
// released, are from then on held by a dead owner. The others take them
// over, told as for a process that died (ErrOwnerDead), even if this process
// opens the segment again at once.
func (s *Segment) Close() error {
	if !atomic.CompareAndSwapUint32(&s.closed, 0, 1) {
		return nil
	}
	s.mu.Lock()
	for c := range s.cancels {
		c.fire()
	}
	s.mu.Unlock()
	close(s.done)
	// Wait for the calls inside the mapping to leave. The closed flag and
	// the counter form a Dekker pair with enter: either a call's enter sees
	// closed, or this load sees its count.
	for s.inflight.Load() != 0 {
		<-s.drained
	}
	s.unpinAll()
	s.detachGuarded()
	// Calls that never enter (the fast paths of Lock and Unlock, Array
	// element access) may still touch the mapping: put a private,
	// unbacked placeholder in its place rather than leave a hole, so that
	// they land there harmlessly and then see closed. It is unmapped once
	// the Segment, and with it every object that could reach the
	// addresses, is unreachable.
	err := s.retire() // step: proc.close.unmap
	if cerr := s.file.Close(); err == nil {
		err = cerr
	}
	return err
}

// detachGuarded is detach that survives a truncated file.
func (s *Segment) detachGuarded() (err error) {
	defer s.guard(&err, guarded())
	s.detach()
	return nil
}

// enter marks the start of a call that uses the mapping beyond a single
// atomic access: Close waits for it to call exit. It returns false, and the
// caller must not touch the mapping, if the segment is closed. Calls nest.
func (s *Segment) enter() bool {
	s.inflight.Add(1)
	if s.isClosed() {
		s.exit()
		return false
	}
	return true
}

func (s *Segment) exit() {
	if s.inflight.Add(-1) == 0 && s.isClosed() {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// local returns the process-local state of the object at off.
func (s *Segment) local(off uint64) *local {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locals[off]
	if l == nil {
		l = newLocal(raceAddr(s.fid, off), u64at(s.mem, offSpinners))
		if s.locals == nil {
			s.locals = make(map[uint64]*local)
		}
		s.locals[off] = l
	}
	return l
}

func (s *Segment) addCancel(c *waitCancel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return false
	}
	if s.cancels == nil {
		s.cancels = make(map[*waitCancel]bool)
	}
	s.cancels[c] = true
	return true
}

func (s *Segment) removeCancel(c *waitCancel) {
	s.mu.Lock()
	delete(s.cancels, c)
	s.mu.Unlock()
}

// newSegment maps a validated file and attaches this process to it.
func newSegment(name string, anon bool, f *os.File, size uint64, opts *Options) (*Segment, error) {
	mem, err := mapFile(f, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	// Read the layout once, from the mapping just validated through pread,
	// and never again: a process that scribbles over the header later
	// cannot move the tables under us.
	lay, err := parseHeader(mem[:hdrSize:hdrSize], int64(len(mem)))
	if err != nil {
		unmap(mem)
		f.Close()
		return nil, err
	}
	s := &Segment{
		name: name, anon: anon, file: f, mem: mem, lay: lay, timeout: opts.initTimeout(),
		fid:     fileIDOf(f),
		drained: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if err := s.attach(); err != nil {
		unmap(mem)
		f.Close()
		return nil, err
	}
	if err := s.clearStalePins(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Segment) isClosed() bool { return atomic.LoadUint32(&s.closed) != 0 }

// closing returns a channel closed by Close.
func (s *Segment) closing() <-chan struct{} { return s.done }
