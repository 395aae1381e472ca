package processshared

import (
	"fmt"
	"io"
	"unsafe"
)

// A Bytes is a fixed-size region of raw bytes, a named object in a Segment.
// Every process that calls NewBytes with the same segment and name sees the
// same bytes. Obtain one with NewBytes; the zero value is not usable.
//
// Bytes offers no synchronization of its own: a byte written by one process
// is visible to the others as soon as it is written, and a read that races
// with a write may see any mix of old and new bytes. Guard multi-byte values
// with a Mutex, publish them through a Slot, or use an Array and its atomic
// functions (Add, AtomicLoad, …). A process that dies leaves behind whatever
// it had written.
//
// Every access checks its bounds against the object, and whether the segment
// is closed: a bad offset gives an error matching ErrOutOfRange, use after
// Close an error matching ErrClosed. Neither ever faults. A Bytes is safe for
// concurrent use by multiple goroutines, in the sense above.
type Bytes struct {
	s    *Segment
	name string
	mem  []byte // the object: a subslice of s.mem; dead after Close
	off  uint64
}

// NewBytes returns the region of size bytes called name in s, creating it,
// filled with zeros, if it does not exist. If name exists as another kind of
// object, or with another size, NewBytes returns an error matching
// ErrMismatch; a negative size gives ErrOutOfRange. Like every object
// constructor, it also returns errors matching ErrInvalidName for a bad
// name, ErrNoSpace when the segment or its directory is full,
// ErrNotInitialized when the process creating the object in another process
// did not finish in time, ErrCorrupt and ErrClosed.
func NewBytes(s *Segment, name string, size int) (*Bytes, error) {
	if size < 0 {
		return nil, fmt.Errorf("bytes %q: negative size %d: %w", name, size, ErrOutOfRange)
	}
	off, mem, err := s.objectMem(name, KindBytes, 0, uint64(size))
	if err != nil {
		return nil, fmt.Errorf("bytes %q: %w", name, err)
	}
	return &Bytes{s: s, name: name, mem: mem, off: off}, nil
}

// Drop releases this handle on b: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Drop is idempotent and returns nil.
func (b *Bytes) Drop() error {
	if s := b.s; !s.drop {
		b.s, b.mem = s.dropped(), nil
		s.unpin(b.off)
	}
	return nil
}

// objectMem finds or creates a named object of size bytes (see
// Segment.object) and returns its offset and its memory, capped at its size.
// It refuses at once a size that the whole segment could not hold.
func (s *Segment) objectMem(name string, kind Kind, param uint32, size uint64) (uint64, []byte, error) {
	if !s.enter() {
		return 0, nil, ErrClosed
	}
	total := uint64(len(s.mem))
	s.exit()
	if size > total {
		return 0, nil, fmt.Errorf("%w: %d bytes wanted, the segment has %d", ErrNoSpace, size, total)
	}
	off, err := s.object(name, kind, param, size, nil)
	if err != nil {
		return 0, nil, err
	}
	if !s.enter() {
		return 0, nil, ErrClosed // Close cleared the pin
	}
	defer s.exit()
	// object checked off+size against the mapping.
	return off, s.mem[off : off+size : off+size], nil
}

// Name returns the object's name in its segment.
func (b *Bytes) Name() string { return b.name }

// Len returns the size of the region in bytes.
func (b *Bytes) Len() int { return len(b.mem) }

// span returns b's bytes [off, off+n) after checking them against the
// region. The caller holds b.s.enter().
func (b *Bytes) span(op string, off int64, n uint64) ([]byte, error) {
	if off < 0 || uint64(off) > uint64(len(b.mem)) || n > uint64(len(b.mem))-uint64(off) {
		return nil, fmt.Errorf("bytes %q: %s %d bytes at offset %d of %d: %w", b.name, op, n, off, len(b.mem), ErrOutOfRange)
	}
	return b.mem[off : uint64(off)+n], nil
}

func (b *Bytes) closedError(op string) error {
	return fmt.Errorf("bytes %q: %s: %w", b.name, op, ErrClosed)
}

// ReadAt reads len(p) bytes into p starting at offset off of the region, with
// the semantics of io.ReaderAt: if fewer than len(p) bytes remain, it reads
// those and returns io.EOF, and an off at or past the end gives 0 and io.EOF.
// A negative off gives an error matching ErrOutOfRange, use after Close one
// matching ErrClosed.
func (b *Bytes) ReadAt(p []byte, off int64) (_ int, err error) {
	if !b.s.enter() {
		return 0, b.closedError("read")
	}
	defer b.s.exit()
	defer b.s.guard(&err, guarded())
	if off < 0 {
		return 0, fmt.Errorf("bytes %q: read at offset %d: %w", b.name, off, ErrOutOfRange)
	}
	if off >= int64(len(b.mem)) {
		return 0, io.EOF
	}
	n := copy(p, b.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes p into the region starting at offset off, with the
// semantics of io.WriterAt. The write is all or nothing: if p does not fit
// entirely between off and the end of the region, or off is negative,
// WriteAt writes nothing and returns 0 and an error matching ErrOutOfRange.
// Use after Close gives an error matching ErrClosed.
//
// Other processes may see the bytes of p appear in any order.
func (b *Bytes) WriteAt(p []byte, off int64) (_ int, err error) {
	if !b.s.enter() {
		return 0, b.closedError("write")
	}
	defer b.s.exit()
	defer b.s.guard(&err, guarded())
	dst, err := b.span("write", off, uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(dst, p), nil
}

// NewCursor returns an io.ReadWriteSeeker over the region, positioned at its
// start. Each Cursor has its own position; the bytes are the region's.
func (b *Bytes) NewCursor() *Cursor { return &Cursor{b: b} }

// A Cursor is a file-like view of a Bytes region: an io.Reader, io.Writer and
// io.Seeker with a position of its own. Obtain one with Bytes.NewCursor.
//
// The position is private to the Cursor, so a Cursor must not be used by
// several goroutines at once without synchronization; the bytes it reads and
// writes are shared, as described under Bytes.
type Cursor struct {
	b   *Bytes
	pos int64
}

// Read reads up to len(p) bytes from the current position and advances it.
// At the end of the region it returns 0 and io.EOF. Use after Close gives an
// error matching ErrClosed.
func (c *Cursor) Read(p []byte) (int, error) {
	n, err := c.b.ReadAt(p, c.pos)
	c.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // io.Reader: report the end on the next call
	}
	return n, err
}

// Write writes p at the current position and advances the position past it.
// As with WriteAt, the write is all or nothing: if p does not fit before the
// end of the region, Write writes nothing, leaves the position alone, and
// returns 0 and an error matching ErrOutOfRange. Use after Close gives an
// error matching ErrClosed.
func (c *Cursor) Write(p []byte) (int, error) {
	n, err := c.b.WriteAt(p, c.pos)
	c.pos += int64(n)
	return n, err
}

// Seek sets the position for the next Read or Write to offset, interpreted
// according to whence (io.SeekStart, io.SeekCurrent or io.SeekEnd), and
// returns the new position. Seeking past the end is allowed: Read then
// returns io.EOF and Write ErrOutOfRange. Seeking before the start, or with
// an unknown whence, returns an error matching ErrOutOfRange and leaves the
// position unchanged.
func (c *Cursor) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = c.pos
	case io.SeekEnd:
		base = int64(len(c.b.mem))
	default:
		return c.pos, fmt.Errorf("bytes %q: seek with whence %d: %w", c.b.name, whence, ErrOutOfRange)
	}
	pos := base + offset
	if (offset > 0 && pos < base) || pos < 0 {
		return c.pos, fmt.Errorf("bytes %q: seek to %d%+d: %w", c.b.name, base, offset, ErrOutOfRange)
	}
	c.pos = pos
	return pos, nil
}

// Fixed is the set of fixed-width numeric types that Load, Store, LoadSlice
// and StoreSlice move in and out of a Bytes region. Int and uint are not in
// it: their width depends on the platform.
type Fixed interface {
	~int8 | ~int16 | ~int32 | ~int64 |
		~uint8 | ~uint16 | ~uint32 | ~uint64 |
		~float32 | ~float64
}

// asBytes returns the memory of v as bytes.
func asBytes[T Fixed](v *T, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), n*int(unsafe.Sizeof(*v)))
}

// Load returns the value of type T stored at offset off of b, in the
// machine's byte order (binary.NativeEndian). off need not be aligned. The
// read is not atomic: a concurrent Store in another process may be seen half
// done. An off that leaves no room for a T gives an error matching
// ErrOutOfRange, use after Close one matching ErrClosed.
func Load[T Fixed](b *Bytes, off int64) (v T, err error) {
	if !b.s.enter() {
		return v, b.closedError("load")
	}
	defer b.s.exit()
	defer b.s.guard(&err, guarded())
	src, err := b.span("load", off, uint64(unsafe.Sizeof(v)))
	if err != nil {
		return v, err
	}
	copy(asBytes(&v, 1), src)
	return v, nil
}

// Store writes v at offset off of b, in the machine's byte order
// (binary.NativeEndian). off need not be aligned. The write is not atomic
// (see Load). An off that leaves no room for a T gives an error matching
// ErrOutOfRange and writes nothing; use after Close gives one matching
// ErrClosed.
func Store[T Fixed](b *Bytes, off int64, v T) (err error) {
	if !b.s.enter() {
		return b.closedError("store")
	}
	defer b.s.exit()
	defer b.s.guard(&err, guarded())
	dst, err := b.span("store", off, uint64(unsafe.Sizeof(v)))
	if err != nil {
		return err
	}
	copy(dst, asBytes(&v, 1))
	return nil
}

// LoadSlice fills dst with the len(dst) consecutive values of type T that
// start at offset off of b, in the machine's byte order. If they do not all
// lie inside b, it returns an error matching ErrOutOfRange and leaves dst
// alone; use after Close gives one matching ErrClosed.
func LoadSlice[T Fixed](b *Bytes, off int64, dst []T) (err error) {
	if !b.s.enter() {
		return b.closedError("load")
	}
	defer b.s.exit()
	defer b.s.guard(&err, guarded())
	var zero T
	src, err := b.span("load", off, uint64(len(dst))*uint64(unsafe.Sizeof(zero)))
	if err != nil || len(dst) == 0 {
		return err
	}
	copy(asBytes(&dst[0], len(dst)), src)
	return nil
}

// StoreSlice writes the values of src one after the other from offset off
// of b, in the machine's byte order. If they do not all fit inside b, it
// writes nothing and returns an error matching ErrOutOfRange; use after Close
// gives one matching ErrClosed.
func StoreSlice[T Fixed](b *Bytes, off int64, src []T) (err error) {
	if !b.s.enter() {
		return b.closedError("store")
	}
	defer b.s.exit()
	defer b.s.guard(&err, guarded())
	var zero T
	dst, err := b.span("store", off, uint64(len(src))*uint64(unsafe.Sizeof(zero)))
	if err != nil || len(src) == 0 {
		return err
	}
	copy(dst, asBytes(&src[0], len(src)))
	return nil
}
