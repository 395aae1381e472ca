package processshared

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
	"unsafe"
)

// A Codec turns values into bytes and back, for a Slot.
type Codec interface {
	// Marshal returns the encoding of v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to. It must not keep
	// data.
	Unmarshal(data []byte, v any) error
}

// GobCodec encodes values with encoding/gob, each as a self-contained
// stream. It is the default Codec of a Slot.
type GobCodec struct{}

// Marshal returns the gob encoding of v.
func (GobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Unmarshal decodes the gob stream in data into the value v points to.
func (GobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// JSONCodec encodes values with encoding/json.
type JSONCodec struct{}

// Marshal returns the JSON encoding of v.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes the JSON in data into the value v points to.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// A SlotOption configures a Slot handle in NewSlot.
type SlotOption func(*slotOptions)

type slotOptions struct {
	codec    Codec
	checksum bool
}

// WithCodec makes Store and Load encode and decode values with c instead of
// GobCodec. The codec is not recorded in the segment: every process using a
// slot must choose the same one.
func WithCodec(c Codec) SlotOption {
	return func(o *slotOptions) { o.codec = c }
}

// WithChecksum makes this handle's stores record a CRC-32C (Castagnoli) of
// each value, computed during the copy in, chunk by chunk, not in a pass of
// its own. Any handle's load of a value stored with a checksum checks it,
// during the copy out, and returns ErrChecksum on a mismatch; handles need
// not agree on this option.
//
// The checksum is not what keeps a Load from returning a torn value: the
// commit protocol does that, with or without it (see Slot). It guards
// against another process writing into the slot's memory behind the
// library's back: without it, such a write can change the value a Load
// returns (a Load still never returns more than Cap bytes).
func WithChecksum() SlotOption {
	return func(o *slotOptions) { o.checksum = true }
}

// Slot layout. A slot of capacity c (the directory entry's param) is
//
//	offset      size  field
//	0           64    writer lock (a mutexCore)
//	64          8     gen    generation of the published value, 0 when the
//	                         slot was never written; accessed atomically only
//	72          56    unused
//	128         B     buffer 0
//	128+B       B     buffer 1, B = alignUp(32+c, 64)
//
// and each buffer
//
//	0   8  seq     odd while a writer fills the buffer; accessed atomically only
//	8   4  length  bytes of data in use
//	12  4  crc     with slFlagCRC: CRC-32C (Castagnoli) of length, gen and data[:length]
//	16  8  gen     the generation of the value in the buffer
//	24  4  flags   slFlagCRC (1) if crc is set, else 0
//	28  4  unused
//	32  c  data
//
// The value of generation g lives in buffer g&1. A writer holds the writer
// lock, reads the published generation g, and fills buffer (g+1)&1, the one
// readers are not reading: seq made odd, then data, length, gen, flags and
// crc, then seq made even again. Then it publishes g+1 with one atomic
// store. The two stores of the commit, seq then gen, come after every byte
// they cover; nothing before them is visible to readers.
//
// A reader takes no lock. It loads the published g, then copies buffer g&1's
// fields and data into private memory between two reads of seq, and keeps
// the copy if seq was even and unchanged and the buffer's gen is g. That
// alone excludes torn values (below). The copy is then checked (length at
// most c) before it is decoded, since the memory may hold anything; with
// slFlagCRC, the crc is checked too. The crc is computed during the copy, a
// chunk at a time while the chunk is in the first-level cache, on both
// sides: it costs no pass over the data of its own. It is opt-in
// (WithChecksum): it catches writes into the segment behind the library's
// back, not torn writes, which the commit protocol excludes.
//
// A writer never touches the published buffer, so one killed mid-write
// leaves the last published value intact and readers keep reading it; the
// writer lock is robust, so the next writer proceeds. The naive slot, one
// buffer under a lock that readers take too, makes readers block behind
// writers, and a writer killed mid-write leaves a torn value behind; a
// single seqlocked buffer keeps readers lock-free but still loses the value
// to a dead writer.
//
// Seqlock ordering. The writer makes seq odd with an atomic
// read-modify-write (a Swap), and the reader's second read of seq is one too
// (a CompareAndSwap of seq with itself). Read-modify-writes of one word are
// totally ordered, and Go's are acquire-release operations on every
// architecture (on arm64 SWPAL and CASAL, or LDAXR/STLXR loops): the
// writer's data stores cannot be performed before its Swap reads seq, and
// the reader's data loads cannot be performed after its CompareAndSwap
// writes seq. So either the reader's CompareAndSwap comes first, and its
// loads saw none of the new data, or it comes after the Swap and fails. A
// plain atomic load for the second read would let arm64 perform the data
// loads after it (Boehm, "Can Seqlocks Get Along with Programming Language
// Memory Models?", 2012).
//
// A buffer being rewritten while a reader copies it is always the older
// one: its writer published the newer generation first, so a reader that
// failed sees gen move on when it loads it again. A reader that keeps
// failing while gen stays put is looking at garbage, and says so.
const (
	slLock   = 0
	slGen    = 64
	slBufs   = 128
	bufSeq   = 0
	bufLen   = 8
	bufCRC   = 12
	bufGen   = 16
	bufFlags = 24
	bufData  = 32

	slFlagCRC = 1 // bufFlags: crc holds the value's CRC-32C

	// crcChunk is the span copied, then checksummed while in the
	// first-level cache, by copyCRC.
	crcChunk = 8 << 10

	// slotTries bounds the lock-free attempts of a read while writers
	// keep publishing; after them the reader takes the writer lock.
	slotTries = 100
	// slotStuck is how many failed attempts in a row, with gen unchanged,
	// make a reader conclude that the slot is corrupt.
	slotStuck = 4
)

// MaxSlotCapacity is the largest capacity of a Slot, in bytes of encoded
// value: NewSlot refuses a larger one with ErrOutOfRange.
const MaxSlotCapacity = math.MaxUint32

// A Slot holds one value, any value a Codec can encode in at most capacity
// bytes, as a named object in a Segment: a process stores a value, other
// processes load copies of it. Obtain one with NewSlot; the zero value is not
// usable. A Slot is safe for concurrent use by multiple goroutines.
//
// Loading takes no lock and never waits for a writer, except when writers
// publish so fast, one after another, that a reader's copy keeps being
// overtaken; the reader then queues behind them for the writer lock. Storing
// takes the writer lock, so writers in all processes store one at a time.
// Values are copied into and out of the segment, so a Slot shares no Go
// memory between processes, and the stored and loaded values are the
// caller's to keep.
//
// A Store synchronizes before every Load, in any process, that returns the
// value it stored or a later one.
//
// If a process dies while storing, at any instant and in any way (SIGKILL
// included), the value it was storing is lost and the slot keeps the value
// stored before it: a Load never returns a torn value. The next Store
// proceeds normally.
type Slot struct {
	s     *Segment
	name  string
	mem   []byte // the object: a subslice of s.mem; dead after Close
	cap   int
	codec Codec
	crc   bool // WithChecksum
	mu    *mutexCore
	race  unsafe.Pointer // process-local address the race annotations key on
	off   uint64
}

// NewSlot returns the slot called name in s, which holds values of up to
// capacity encoded bytes, creating it, empty, if it does not exist. Its
// codec is GobCodec unless an option says otherwise.
//
// It returns an error matching ErrOutOfRange if capacity is negative or
// larger than MaxSlotCapacity, and ErrMismatch if name exists as another kind
// of object or with another capacity. Like every object constructor, it also
// returns errors matching ErrInvalidName for a bad name, ErrNoSpace when the
// segment or its directory is full, ErrNotInitialized when the process
// creating the object in another process did not finish in time, ErrCorrupt
// and ErrClosed.
//
// A slot of capacity c takes about 2c+256 bytes of the segment: it keeps
// two copies of its value (see Slot).
func NewSlot(s *Segment, name string, capacity int, opts ...SlotOption) (*Slot, error) {
	o := slotOptions{codec: GobCodec{}}
	for _, opt := range opts {
		opt(&o)
	}
	if capacity < 0 || uint64(capacity) > MaxSlotCapacity {
		return nil, fmt.Errorf("slot %q: capacity %d not in [0, %d]: %w", name, capacity, uint64(MaxSlotCapacity), ErrOutOfRange)
	}
	size := slBufs + 2*slotStride(capacity)
	off, mem, err := s.objectMem(name, KindSlot, uint32(capacity), size)
	if err != nil {
		return nil, fmt.Errorf("slot %q: %w", name, err)
	}
	if !s.enter() {
		return nil, fmt.Errorf("slot %q: %w", name, ErrClosed) // Close cleared the pin
	}
	defer s.exit()
	return &Slot{
		off:   off,
		s:     s,
		name:  name,
		mem:   mem,
		cap:   capacity,
		codec: o.codec,
		crc:   o.checksum,
		mu:    newMutexCore(s, off+slLock, name),
		race:  s.local(off + slGen).race,
	}, nil
}

// Drop releases this handle on sl: the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Drop is idempotent and returns nil.
func (sl *Slot) Drop() error {
	if s := sl.s; !s.drop {
		sl.s, sl.mem = s.dropped(), nil
		s.unpin(sl.off)
	}
	return nil
}

func slotStride(capacity int) uint64 { return alignUp(bufData+uint64(capacity), objAlign) }

// Name returns the object's name in its segment.
func (sl *Slot) Name() string { return sl.name }

// Cap returns the capacity of the slot: the largest encoded value it holds.
func (sl *Slot) Cap() int { return sl.cap }

// buf returns the offset in sl.mem of buffer i (0 or 1).
func (sl *Slot) buf(i uint64) uint64 { return slBufs + (i&1)*slotStride(sl.cap) }

func (sl *Slot) errorf(format string, args ...any) error {
	return fmt.Errorf("slot %q: "+format, append([]any{sl.name}, args...)...)
}

// Store encodes v with the slot's codec and stores the encoding, replacing
// the slot's value. It returns an error matching ErrTooLarge, and leaves the
// slot's value alone, if the encoding is longer than the capacity; an error
// from the codec; or one matching ErrClosed. Store waits while another Store
// or StoreBytes, in any process, is copying its value into the slot.
func (sl *Slot) Store(v any) error {
	data, err := sl.codec.Marshal(v)
	if err != nil {
		return sl.errorf("encode %T: %w", v, err)
	}
	return sl.StoreBytes(data)
}

// StoreBytes stores a copy of p as the slot's value, raw, without the codec.
// It returns an error matching ErrTooLarge, and leaves the slot's value
// alone, if p is longer than the capacity, and one matching ErrClosed after
// Close. It waits as Store does.
func (sl *Slot) StoreBytes(p []byte) (err error) {
	if len(p) > sl.cap {
		return sl.errorf("%w: %d bytes, capacity %d", ErrTooLarge, len(p), sl.cap)
	}
	if !sl.s.enter() {
		return sl.errorf("store: %w", ErrClosed)
	}
	defer sl.s.exit()
	defer sl.s.guard(&err, guarded())
	err = sl.mu.lock(context.Background())
	if err != nil && !errors.Is(err, ErrOwnerDead) {
		return sl.errorf("store: %w", err)
	}
	if err != nil {
		// A writer died holding the lock. It was filling the unpublished
		// buffer, which this write overwrites; the slot is consistent.
		atomic.AndUint32(sl.mu.flags, ^uint32(mutexInconsistent))
	}
	mem := sl.mem
	g := atomic.LoadUint64(u64at(mem, slGen))
	next := g + 1
	if next == 0 { // only after garbage: 0 means empty
		next = 2
	}
	b := sl.buf(next)
	seq := u64at(mem, b+bufSeq)
	s1 := atomic.LoadUint64(seq) + 1
	if s1&1 == 0 { // odd already: its last writer died mid-write
		s1++
	}
	atomic.SwapUint64(seq, s1) // a read-modify-write: see the layout comment
	var crc, flags uint32
	if sl.crc {
		crc = copyCRC(mem[b+bufData:b+bufData+uint64(len(p))], p, slotCRCHeader(uint32(len(p)), next))
		flags = slFlagCRC
	} else {
		copy(mem[b+bufData:b+bufData+uint64(len(p))], p)
	}
	atomic.StoreUint32(u32at(mem, b+bufLen), uint32(len(p)))
	atomic.StoreUint64(u64at(mem, b+bufGen), next)
	atomic.StoreUint32(u32at(mem, b+bufFlags), flags)
	atomic.StoreUint32(u32at(mem, b+bufCRC), crc)
	atomic.StoreUint64(seq, s1+1)
	if raceEnabled {
		raceReleaseMerge(sl.race)
	}
	atomic.StoreUint64(u64at(mem, slGen), next)
	sl.mu.unlock()
	return nil
}

// castagnoli returns hash/crc32's table for CRC-32C, which hash/crc32
// builds once (and uses the CPU's CRC instruction for, where there is one).
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// slotCRCHeader returns the CRC-32C of a buffer's length and generation, the
// start of its checksum.
func slotCRCHeader(n uint32, gen uint64) uint32 {
	var hdr [12]byte
	binary.NativeEndian.PutUint32(hdr[0:], n)
	binary.NativeEndian.PutUint64(hdr[4:], gen)
	return crc32.Update(0, castagnoli(), hdr[:])
}

// copyCRC copies src into dst (of the same length) and returns crc updated
// with the bytes copied: a chunk is copied, then checksummed from dst while
// it is still in the first-level cache, so the checksum reads no memory
// the copy did not just bring in.
func copyCRC(dst, src []byte, crc uint32) uint32 {
	tab := castagnoli()
	for len(src) > 0 {
		n := min(len(src), crcChunk)
		copy(dst[:n], src[:n])
		crc = crc32.Update(crc, tab, dst[:n])
		dst, src = dst[n:], src[n:]
	}
	return crc
}

// Load decodes the slot's value with the slot's codec into the value v
// points to. It returns an error matching ErrEmpty if the slot was never
// written; ErrCorrupt, or ErrChecksum for a value stored WithChecksum, if the
// slot's memory holds garbage (which a process that dies while storing never
// leaves behind); an error from the codec; or one matching ErrClosed. Load does not wait for writers, except as
// described under Slot.
func (sl *Slot) Load(v any) error {
	data, err := sl.AppendBytes(nil)
	if err != nil {
		return err
	}
	if err := sl.codec.Unmarshal(data, v); err != nil {
		return sl.errorf("decode into %T: %w", v, err)
	}
	return nil
}

// LoadBytes returns a copy of the slot's value, raw, without the codec. Its
// errors are those of Load, bar the codec's.
func (sl *Slot) LoadBytes() ([]byte, error) {
	data, err := sl.AppendBytes(nil)
	if data == nil && err == nil {
		data = []byte{}
	}
	return data, err
}

// AppendBytes appends the slot's value, raw, to dst and returns the extended
// slice. It is LoadBytes for a caller that reuses its buffer; on error it
// returns dst unchanged.
func (sl *Slot) AppendBytes(dst []byte) (_ []byte, err error) {
	defer sl.s.guard(&err, guarded())
	out, done, err := sl.appendLockFree(dst)
	if done {
		return out, err
	}
	return sl.appendLocked(dst)
}

// appendLockFree is AppendBytes without the writer lock. It reports done
// false if writers kept overtaking it.
func (sl *Slot) appendLockFree(dst []byte) (_ []byte, done bool, err error) {
	if !sl.s.enter() {
		return dst, true, sl.errorf("load: %w", ErrClosed)
	}
	defer sl.s.exit()
	mem := sl.mem
	g := atomic.LoadUint64(u64at(mem, slGen))
	for try, stuck := 0, 0; try < slotTries; try++ {
		if g == 0 {
			return dst, true, sl.errorf("%w", ErrEmpty)
		}
		out, ok, err := sl.copyOut(dst, g)
		if ok {
			return out, true, err
		}
		g2 := atomic.LoadUint64(u64at(mem, slGen))
		if g2 != g {
			g, stuck = g2, 0
		} else if stuck++; stuck >= slotStuck {
			return dst, true, sl.errorf("%w: buffer %d of generation %d is inconsistent", ErrCorrupt, g&1, g)
		}
		if try >= 8 {
			runtime.Gosched()
		}
	}
	return dst, false, nil
}

// appendLocked is AppendBytes for a reader that writers keep overtaking: it
// holds the writer lock while it copies.
func (sl *Slot) appendLocked(dst []byte) ([]byte, error) {
	if !sl.s.enter() {
		return dst, sl.errorf("load: %w", ErrClosed)
	}
	defer sl.s.exit()
	err := sl.mu.lock(context.Background())
	if err != nil && !errors.Is(err, ErrOwnerDead) {
		return dst, sl.errorf("load: %w", err)
	}
	defer sl.mu.unlock()
	g := atomic.LoadUint64(u64at(sl.mem, slGen))
	if g == 0 {
		return dst, sl.errorf("%w", ErrEmpty)
	}
	out, ok, err := sl.copyOut(dst, g)
	if !ok {
		return dst, sl.errorf("%w: buffer %d of generation %d is inconsistent", ErrCorrupt, g&1, g)
	}
	return out, err
}

// copyOut appends the value of generation g to dst. It reports ok false if
// the buffer was being written or held another generation; with ok true, it
// returns the value or an error saying why the value read is invalid. The
// caller holds sl.s.enter().
func (sl *Slot) copyOut(dst []byte, g uint64) (out []byte, ok bool, err error) {
	mem := sl.mem
	b := sl.buf(g)
	seq := u64at(mem, b+bufSeq)
	s1 := atomic.LoadUint64(seq)
	if s1&1 != 0 {
		return dst, false, nil
	}
	n := atomic.LoadUint32(u32at(mem, b+bufLen))
	crc := atomic.LoadUint32(u32at(mem, b+bufCRC))
	bg := atomic.LoadUint64(u64at(mem, b+bufGen))
	flags := atomic.LoadUint32(u32at(mem, b+bufFlags))
	m := min(uint64(n), uint64(sl.cap)) // never trust a length read from shared memory
	out = slices.Grow(dst, int(m))[:len(dst)+int(m)]
	var sum uint32
	if flags&slFlagCRC != 0 {
		sum = copyCRC(out[len(dst):], mem[b+bufData:b+bufData+m], slotCRCHeader(n, g))
	} else {
		copy(out[len(dst):], mem[b+bufData:b+bufData+m])
	}
	if !atomic.CompareAndSwapUint64(seq, s1, s1) || bg != g {
		return dst, false, nil
	}
	if uint64(n) > uint64(sl.cap) || flags&^slFlagCRC != 0 {
		return dst, true, sl.errorf("%w: value length %d (capacity %d), flags %#x", ErrCorrupt, n, sl.cap, flags)
	}
	if flags&slFlagCRC != 0 && sum != crc {
		return dst, true, sl.errorf("%w (generation %d, %d bytes)", ErrChecksum, g, n)
	}
	if raceEnabled {
		raceAcquire(sl.race)
	}
	return out, true, nil
}
