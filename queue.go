package processshared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Queue layout. A queue of capacity c messages of at most m bytes each (the
// directory entry's param is m) is
//
//	offset  size  field
//	0       4     magic     qMagic, written at creation
//	4       4     capacity  c
//	8       4     maxSize   m
//	16      8     ring      R, bytes in the ring
//	64      64    plock     the producers' lock (a mutexCore)
//	128     8     tail      the tail word; accessed atomically only
//	136     4     closed    1 once Close ended the stream; accessed atomically only
//	192     64    clock     the consumers' lock (a mutexCore)
//	256     8     head      the head word; accessed atomically only
//	320     4     recvWord  the futex word receivers sleep on
//	384     4     sendWord  the futex word senders sleep on
//	512     8·P   waiting   per process-table slot: {identity, senders<<16 |
//	                        receivers}, the goroutines of that handle blocked
//	                        in Send and Recv (for inspection only)
//	ringOff R     ring      ringOff = alignUp(512+8·P, 64), R = (c+1)·rec(m)
//
// The head and tail words each hold a ring offset and a message count:
//
//	bits 0-39   offset in the ring, 8-aligned, below R
//	bits 40-63  messages sent (tail) or received (head), mod 2^24
//
// so that one atomic store moves both. The messages queued are the tail's
// count minus the head's, mod 2^24, at most c (< 2^23): the difference of
// two wrapping counters is taken only where it is known to be in [0, c].
// The queue is empty when the counts are equal; the offsets then are too.
//
// A record in the ring is an 8-byte header, the length (uint32) and 4 unused
// bytes, then the message, padded to 8 bytes: rec(n) = 8 + alignUp(n, 8).
// A record never wraps: when one does not fit between the tail and the end
// of the ring, the producer writes a wrap marker (length qWrap) there and
// puts the record at offset 0. A consumer that meets a wrap marker goes on
// at 0, in the same step as it takes the record. Since R is at least
// 2·rec(m), an empty ring always has room for a largest record on one side
// or the other of its offset.
//
// Producers hold plock while they write a record and commit it; consumers
// hold clock while they read one and consume it. The two locks never nest,
// so a producer and a consumer work at once, on disjoint parts of the ring.
// A producer reads the head word (the consumers') to find free space, a
// consumer the tail word to find messages; each word is stored last, after
// the bytes it covers were written or read, so that one store is the
// commit. Both locks are robust (mutexCore), so a dead holder's lock passes
// to the next.
//
// # Death
//
// A producer killed before its commit leaves the tail word as it was: the
// half-written record lies beyond the tail, invisible, and the next
// producer (told ErrOwnerDead by plock, which it clears) writes over it. No
// partial message is ever delivered, and the space is reclaimed.
//
// A consumer killed before its commit leaves the head word as it was: the
// message it was reading is still the first in the queue, and the next
// consumer receives it. Delivery is at least once: a message is consumed
// when Recv's head store is done, and a Recv killed before that store gives
// its message to another receiver; a Recv killed after it (but before it
// returned to its caller) loses it, as if the caller had died just after.
// Redelivery keeps the order: the redelivered message is still the oldest.
//
// # Waiting
//
// Each futex word (recvWord, sendWord) is
//
//	bits 0-30  sequence, bumped by every waking commit; wraps
//	bit  31    qSleepers: a process may be sleeping on the word
//
// The protocol of one Send (Recv is the mirror image: clock, head,
// recvWord for sendWord; a message for room; its state names are
// queue.recv.*):
//
//	enter     Segment.enter (queue.send.enter); ErrClosed if closed
//	lock      plock (queue.send.lock); a dead previous holder is repaired
//	          by doing nothing: the tail word is consistent
//	closed?   load closed (queue.send.check_closed): ErrQueueClosed
//	room?     load head (queue.send.load_head); no room → unlock, go to spin
//	write     the record, beyond the tail (queue.send.write)
//	commit    store tail (queue.send.commit)
//	unlock    plock (queue.send.unlock)
//	wake      load recvWord (queue.send.load_waiters); if qSleepers is set,
//	          CAS it to (seq+1) without qSleepers (queue.send.clear_sleepers)
//	          and FUTEX_WAKE every sleeper (queue.send.wake); none set: no
//	          system call
//	spin      poll room-or-closed for up to spinFor (local.spin), then back
//	          to lock if it came
//	token     take the senders' process-local token (token.acquire,
//	          token.acquire_wait): one kernel sleeper per process
//	mark      load sendWord (queue.send.load_word); set qSleepers with a
//	          CAS if clear (queue.send.set_sleepers)
//	watch     watchOthers: every other attached process's live word
//	recheck   load head, tail and closed (queue.send.recheck): room or
//	          closed → back to lock, holding the token
//	sleep     futex_waitv on sendWord (expecting the value marked), the
//	          cancellation word and the watched live words
//	          (wait.sleep.*); woken → back to lock; ctx done or Close →
//	          release the token, return the error
//
// Why it loses no wake-up: mark and recheck on one side, commit and wake on
// the other, are a Dekker pair on (tail, recvWord). A committer that loads
// recvWord without qSleepers did so before the mark, so the recheck, after
// the mark, sees the commit. A committer that sees qSleepers bumps the
// sequence, so a sleep that expects the marked value returns at once
// (EAGAIN), however late it comes; without the bump, a second sleeper
// setting qSleepers again between the wake and the first sleeper's sleep
// would restore the value the first expects, and it would sleep past the
// commit. A committer killed between commit and wake, or a Close killed
// between its store and its wake, is a death of a watched process: the
// kernel's robust-list walk wakes the sleeper, which looks again.
//
// A wake wakes every sleeping process, at most one thread each (the token
// holder), and each looks for itself. So no sleeper takes a wake-up that
// another needed: one that gives up (ctx done, Close) passes nothing on.
// Within a process, the goroutines parked on the token re-run recheck when
// they get it, before they sleep.
//
// # Cached words
//
// A producer that reads the head word for every message takes a cache miss
// on it each time, since the consumer wrote it; the consumer then takes
// another when it writes it again. So a handle remembers, under plock, the
// tail word it committed last (ownTail) and the head word it saw for that
// commit (seenHead). If the tail word is still ownTail, no other producer
// has committed since (equality of a wrapping word: rule 27), and every
// message counted between seenHead and the tail was accounted for when it
// was sent: seenHead is a head word that the real one has only moved on
// from. Room computed from it understates the real room, never overstates
// it, so the producer uses it, and loads the head (queue.send.load_head)
// only if the tail moved, or if the cached head shows no room. The
// consumer does the mirror image under clock with ownHead and seenTail: a
// cached tail understates the messages committed, and it loads the tail
// (queue.recv.load_tail) only when the head moved or the cached tail shows
// none. The model (internal/model) does not represent the caches: it
// checks the protocol with fresh loads, and the argument above is why an
// older value of the same word, understating what the other side did, is
// as good. TestQueueHammer (several producers and consumers, so caches go
// stale) and the kill tests exercise it.
//
// The naive queue, a ring under one lock with two condition variables,
// serializes the producer's copy with the consumer's, pays a FUTEX_WAKE per
// message whether or not anyone sleeps, and, if the lock is not robust,
// dies with a killed holder.
const (
	qMagic    = 0x51555545 // "QUEU"
	qHdrCap   = 4
	qHdrMax   = 8
	qHdrRing  = 16
	qPLock    = 64
	qTail     = 128
	qClosed   = 136
	qCLock    = 192
	qHead     = 256
	qRecvWord = 320
	qSendWord = 384
	qWaiting  = 512

	qOffBits   = 40
	qOffMask   = 1<<qOffBits - 1
	qCountMask = 1<<24 - 1
	qSleepers  = 0x80000000
	qSeqMask   = 0x7fffffff
	qWrap      = 0xffffffff
	qRecHdr    = 8
)

// MaxQueueCapacity is the most messages a Queue holds.
const MaxQueueCapacity = 1<<23 - 1

// MaxQueueMessage is the longest message a Queue can be made for.
const MaxQueueMessage = 1<<31 - 1

// A Queue is a bounded first-in first-out queue of byte messages, a named
// object in a Segment, for many senders and many receivers in any
// processes. Obtain one with NewQueue; the zero value is not usable. A Queue
// is safe for concurrent use by multiple goroutines, and must not be copied.
//
// Messages are copied into the segment by Send and out of it by Recv: one
// copy on each side (RecvFunc reads in place, no copy). Messages sent by one
// goroutine, or by one process whose sends do not overlap, arrive in the
// order sent. The queue holds at most Cap messages; Send blocks while it is
// full, Recv while it is empty. Close ends the stream: receivers drain what
// is queued, then get io.EOF.
//
// A Send, in any process, synchronizes before the Recv that receives its
// message returns.
//
// If a process dies, at any instant and in any way (SIGKILL included): a
// message it was sending is not delivered, in part or at all, and its space
// is reused; a message it was receiving is delivered to the next receiver
// (at least once; see Recv). No lock stays held and no waiter is left
// asleep.
//
// Blocking follows the library's rules: no system call on Send or Recv
// while nobody sleeps, a short spin, then one kernel sleeper per process;
// context deadlines become kernel timeouts.
type Queue struct {
	s       *Segment
	name    string
	off     uint64
	ring    []byte // the ring, in s.mem; dead after Close
	rsize   uint64
	cap     uint32
	max     uint32
	plock   *mutexCore
	clock   *mutexCore
	tail    *uint64
	head    *uint64
	closed  *uint32
	recvW   *uint32
	sendW   *uint32
	waiting *uint32 // this handle's waiting counts (senders<<16 | receivers)
	wid     *uint32 // the identity owning waiting
	rl, sl  *local  // the receivers' and the senders' tokens
	poll    bool    // WithRecvPolling
	race    unsafe.Pointer
	ref     objRef

	// The words this handle committed last and the other side's word it
	// saw then (see "Cached words" in the layout comment); each pair is
	// used only under its side's lock (plock, clock).
	ownTail, seenHead atomic.Uint64
	ownHead, seenTail atomic.Uint64
}

// A QueueOption configures a Queue handle in NewQueue.
type QueueOption func(*queueOptions)

type queueOptions struct {
	poll bool
}

// WithRecvPolling makes the blocking receives of this handle (Recv,
// RecvContext, AppendRecv, RecvFunc, All, Messages) busy-poll the queue
// until a message comes, the stream ends, the context is done or the
// segment is closed, instead of spinning briefly and then sleeping in the
// kernel. A polling receiver makes no system call at all, and a sender
// wakes it by its commit alone: the lowest latency the queue offers, paid
// for with a CPU kept busy by every goroutine blocked in such a receive
// (it yields to the Go scheduler now and then, so other goroutines still
// run). Use it only with a CPU to spare for each polling receiver: on a
// machine with fewer CPUs than busy processes it is slower than blocking.
//
// The option is the handle's: other handles of the queue, in this process
// or others, block as usual, and senders need not know. Polling receivers
// are counted among the blocked receivers Inspect reports.
func WithRecvPolling() QueueOption {
	return func(o *queueOptions) { o.poll = true }
}

// qRec returns the ring bytes a message of n bytes takes.
func qRec(n uint64) uint64 { return qRecHdr + alignUp(n, 8) }

// queueLayout returns the ring's offset and size, and the object's size.
func queueLayout(capacity, maxSize, procCap uint64) (ringOff, ring, size uint64) {
	ringOff = alignUp(qWaiting+8*procCap, objAlign)
	ring = (capacity + 1) * qRec(maxSize)
	return ringOff, ring, ringOff + ring
}

// NewQueue returns the queue called name in s, which holds up to capacity
// messages of at most maxSize bytes each, creating it, empty, if it does not
// exist. It takes about (capacity+1)·(maxSize+16) bytes of the segment.
// Options configure this handle only (WithRecvPolling).
//
// It returns an error matching ErrOutOfRange if capacity is not in [1,
// MaxQueueCapacity] or maxSize not in [0, MaxQueueMessage], and ErrMismatch
// if name exists as another kind of object, or as a queue of another
// capacity or maximum. Like every object constructor, it also returns errors
// matching ErrInvalidName, ErrNoSpace, ErrNotInitialized, ErrCorrupt and
// ErrClosed.
func NewQueue(s *Segment, name string, capacity, maxSize int, opts ...QueueOption) (*Queue, error) {
	var o queueOptions
	for _, opt := range opts {
		opt(&o)
	}
	if capacity < 1 || capacity > MaxQueueCapacity || maxSize < 0 || maxSize > MaxQueueMessage {
		return nil, fmt.Errorf("queue %q: capacity %d not in [1, %d] or message size %d not in [0, %d]: %w",
			name, capacity, MaxQueueCapacity, maxSize, MaxQueueMessage, ErrOutOfRange)
	}
	ringOff, ring, size := queueLayout(uint64(capacity), uint64(maxSize), s.lay.procCap)
	if ring > qOffMask {
		return nil, fmt.Errorf("queue %q: %d messages of %d bytes: %w", name, capacity, maxSize, ErrNoSpace)
	}
	off, err := s.object(name, KindQueue, uint32(maxSize), size, func(mem []byte) {
		store32(mem, 0, qMagic)
		store32(mem, qHdrCap, uint32(capacity))
		store32(mem, qHdrMax, uint32(maxSize))
		store64(mem, qHdrRing, ring)
	})
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", name, err)
	}
	if !s.enter() {
		return nil, fmt.Errorf("queue %q: %w", name, ErrClosed)
	}
	defer s.exit()
	mem := s.mem
	if load32(mem, off) != qMagic || load32(mem, off+qHdrCap) != uint32(capacity) ||
		load32(mem, off+qHdrMax) != uint32(maxSize) || load64(mem, off+qHdrRing) != ring {
		s.mu.Lock()
		s.unpinLocked(off)
		s.mu.Unlock()
		return nil, fmt.Errorf("queue %q: %w: header does not match capacity %d, message size %d", name, ErrCorrupt, capacity, maxSize)
	}
	e := off + qWaiting + (s.slot-s.lay.procOff)/procSlotSize*8
	q := &Queue{
		s: s, name: name, off: off,
		ring:    mem[off+ringOff : off+ringOff+ring : off+ringOff+ring],
		rsize:   ring,
		cap:     uint32(capacity),
		max:     uint32(maxSize),
		plock:   newMutexCore(s, off+qPLock, name),
		clock:   newMutexCore(s, off+qCLock, name),
		tail:    u64at(mem, off+qTail),
		head:    u64at(mem, off+qHead),
		closed:  u32at(mem, off+qClosed),
		recvW:   u32at(mem, off+qRecvWord),
		sendW:   u32at(mem, off+qSendWord),
		wid:     u32at(mem, e),
		waiting: u32at(mem, e+4),
		rl:      s.local(off + qRecvWord),
		sl:      s.local(off + qSendWord),
		poll:    o.poll,
		race:    s.local(off).race,
		ref:     s.ref(off),
	}
	// No commit of this handle yet: words that no queue holds (their
	// offset is beyond any ring), so that no cached word is used.
	q.ownTail.Store(^uint64(0))
	q.ownHead.Store(^uint64(0))
	if atomic.LoadUint32(q.wid) != s.id {
		atomic.StoreUint32(q.waiting, 0)
		atomic.StoreUint32(q.wid, s.id)
	}
	return q, nil
}

// Drop releases this handle on q (Close, by contrast, ends the queue's
// stream for every handle): the segment may then reuse the space of
// a deleted object (see Segment.Delete), which another handle on it does
// not pin. Afterwards the handle's methods return ErrClosed, or panic with
// an error matching ErrClosed, as after the segment's Close. Drop must be
// the handle's last call: it must not run while a call on the handle, in
// another goroutine, is in progress. Drop is idempotent and returns nil.
func (q *Queue) Drop() error {
	if s := q.s; !s.drop {
		q.s, q.ring = s.dropped(), nil
		s.unpin(q.off)
	}
	return nil
}

// Name returns the queue's name in its segment.
func (q *Queue) Name() string { return q.name }

// Cap returns the most messages the queue holds.
func (q *Queue) Cap() int { return int(q.cap) }

// MaxSize returns the longest message the queue takes, in bytes.
func (q *Queue) MaxSize() int { return int(q.max) }

func (q *Queue) errorf(format string, args ...any) error {
	return fmt.Errorf("queue %q: "+format, append([]any{q.name}, args...)...)
}

// queued returns the messages between head word h and tail word t, and
// whether that count is possible.
func (q *Queue) queued(h, t uint64) (uint32, bool) {
	n := uint32(t>>qOffBits-h>>qOffBits) & qCountMask
	return n, n <= q.cap
}

// Len returns the number of messages queued at the instant of the call. It
// panics if the segment is closed.
func (q *Queue) Len() int {
	if !q.s.enter() {
		closedPanic("Len", "queue", q.name, q.s)
	}
	defer q.s.exit()
	n, _ := q.queued(atomic.LoadUint64(q.head), atomic.LoadUint64(q.tail))
	return int(min(n, q.cap))
}

// Closed reports whether the queue's stream was ended by Close. It panics
// if the segment is closed.
func (q *Queue) Closed() bool {
	if !q.s.enter() {
		closedPanic("Closed", "queue", q.name, q.s)
	}
	defer q.s.exit()
	return atomic.LoadUint32(q.closed) != 0
}

// lockCore takes m; a dead previous holder needs no repair (see Queue's
// layout: the head and tail words are each stored once, last).
func lockCore(ctx context.Context, m *mutexCore) error {
	err := m.lock(ctx)
	if err != nil {
		if _, dead := err.(*OwnerDeadError); !dead {
			return err
		}
		atomic.AndUint32(m.flags, ^uint32(mutexInconsistent))
	}
	return nil
}

// room returns where a record of rec bytes goes, given head word h and
// tail word t, and reports whether it fits now. wrap says that a wrap
// marker goes at the tail's offset first. err is set if the words cannot
// be a queue's.
func (q *Queue) room(h, t, rec uint64) (pos uint64, wrap, ok bool, err error) {
	n, valid := q.queued(h, t)
	ho, to := h&qOffMask, t&qOffMask
	if !valid || ho >= q.rsize || to >= q.rsize || ho%8 != 0 || to%8 != 0 || n == 0 && ho != to {
		return 0, false, false, q.errorf("%w: head %#x, tail %#x", ErrCorrupt, h, t)
	}
	switch {
	case n >= q.cap:
		return 0, false, false, nil
	case n > 0 && to == ho: // every byte in use
		return 0, false, false, nil
	case to >= ho:
		if q.rsize-to >= rec {
			return to, false, true, nil
		}
		if ho >= rec {
			return 0, true, true, nil
		}
		return 0, false, false, nil
	default:
		return to, false, ho-to >= rec, nil
	}
}

// hasRoom reports whether a record of rec bytes fits, or the stream is
// closed, or the words are garbage (the caller will find out).
func (q *Queue) hasRoom(rec uint64) bool {
	if atomic.LoadUint32(q.closed) != 0 {
		return true
	}
	_, _, ok, err := q.room(atomic.LoadUint64(q.head), atomic.LoadUint64(q.tail), rec)
	return ok || err != nil
}

// hasMessage reports whether a message is queued, or the stream is closed.
func (q *Queue) hasMessage() bool {
	return atomic.LoadUint64(q.head)>>qOffBits != atomic.LoadUint64(q.tail)>>qOffBits || atomic.LoadUint32(q.closed) != 0
}

// Send sends a copy of p, blocking while the queue is full. It returns an
// error matching ErrTooLarge if p is longer than MaxSize, ErrQueueClosed if
// the stream was closed (by Close, in any process), ErrClosed if the
// segment is closed, ErrDeleted if the queue is full and was deleted
// (Segment.Delete), and ErrCorrupt if the queue's memory holds garbage.
func (q *Queue) Send(p []byte) error { return q.SendContext(context.Background(), p) }

// SendContext is Send that gives up when ctx is done, returning ctx.Err()
// (matching context.DeadlineExceeded for a deadline, which becomes the
// kernel's timeout) and sending nothing.
func (q *Queue) SendContext(ctx context.Context, p []byte) error {
	_, err := q.send(ctx, p, true)
	return err
}

// TrySend sends a copy of p if there is room now, and reports whether it
// did. It waits only for another sender's copy in progress. Its errors are
// Send's.
func (q *Queue) TrySend(p []byte) (bool, error) { return q.send(context.Background(), p, false) }

func (q *Queue) send(ctx context.Context, p []byte, block bool) (sent bool, err error) {
	if uint64(len(p)) > uint64(q.max) {
		return false, q.errorf("%w: message of %d bytes, at most %d", ErrTooLarge, len(p), q.max)
	}
	if !q.s.enter() { // step: queue.send.enter
		return false, q.errorf("send: %w", ErrClosed)
	}
	defer q.s.exit()
	defer q.s.guard(&err, guarded())
	if err := ctx.Err(); err != nil {
		return false, err
	}
	rec := qRec(uint64(len(p)))
	ok, err := q.trySend(ctx, p, rec)
	if ok || err != nil || !block {
		return ok, err
	}
	if q.sl.spin(func() bool { return q.hasRoom(rec) }) {
		if ok, err := q.trySend(ctx, p, rec); ok || err != nil {
			return ok, err
		}
	}
	if err := q.sl.acquire(ctx, q.s); err != nil { // step: token.acquire, token.acquire_wait
		return false, err
	}
	defer q.sl.release() // step: token.release
	atomic.AddUint32(q.waiting, 1<<16)
	defer atomic.AddUint32(q.waiting, ^uint32(1<<16-1))
	for {
		if ok, err := q.trySend(ctx, p, rec); ok || err != nil {
			return ok, err
		}
		if err := q.wait(ctx, q.sendW, func() bool { return q.hasRoom(rec) }); err != nil {
			return false, err
		}
	}
}

// trySend sends p as a record of rec bytes if it fits. The caller holds
// q.s.enter().
func (q *Queue) trySend(ctx context.Context, p []byte, rec uint64) (bool, error) {
	if err := lockCore(ctx, q.plock); err != nil { // step: queue.send.lock
		return false, err
	}
	if atomic.LoadUint32(q.closed) != 0 { // step: queue.send.check_closed
		q.plock.unlock()
		return false, q.errorf("send: %w", ErrQueueClosed)
	}
	t := atomic.LoadUint64(q.tail)
	var pos uint64
	var wrap, ok bool
	var err error
	h, cached := q.seenHead.Load(), t == q.ownTail.Load() // see "Cached words"
	if cached {
		pos, wrap, ok, err = q.room(h, t, rec)
	}
	if !cached || !ok || err != nil {
		h = atomic.LoadUint64(q.head) // step: queue.send.load_head
		pos, wrap, ok, err = q.room(h, t, rec)
	}
	if !ok || err != nil {
		q.plock.unlock() // step: queue.send.unlock
		return false, err
	}
	r := q.ring
	if wrap {
		store32(r, t&qOffMask, qWrap)
	}
	store32(r, pos, uint32(len(p))) // step: queue.send.write
	copy(r[pos+qRecHdr:pos+qRecHdr+uint64(len(p))], p)
	end := pos + rec
	if end == q.rsize {
		end = 0
	}
	if raceEnabled {
		raceReleaseMerge(q.race)
	}
	t = (t>>qOffBits+1)<<qOffBits | end
	atomic.StoreUint64(q.tail, t) // step: queue.send.commit
	q.ownTail.Store(t)
	q.seenHead.Store(h)
	q.plock.unlock() // step: queue.send.unlock
	wakeWord(q.recvW)
	return true, nil
}

// wakeWord wakes every process sleeping on the futex word w if one may be
// (qSleepers), bumping its sequence; otherwise it makes no system call.
func wakeWord(w *uint32) {
	for {
		v := atomic.LoadUint32(w) // step: queue.send.load_waiters, queue.recv.load_waiters
		if v&qSleepers == 0 {
			return
		}
		if atomic.CompareAndSwapUint32(w, v, (v+1)&qSeqMask) { // step: queue.send.clear_sleepers, queue.recv.clear_sleepers
			wakeAll(w) // step: queue.send.wake, queue.recv.wake
			return
		}
	}
}

// wait marks the futex word w (sendWord or recvWord) as slept on, watches
// every other attached process, and, unless ready (re-checked after the
// mark) says the wait is over, sleeps until woken. It returns nil when the
// caller should look again, or ctx.Err() or ErrClosed. The caller holds the
// side's token and q.s.enter().
//
// A wake wakes every sleeping process (wakeWord), so a sleeper that gives up
// has taken no wake-up another needed: it passes nothing on.
func (q *Queue) wait(ctx context.Context, w *uint32, ready func() bool) error {
	if err := q.s.live(q.ref, "queue "+q.name); err != nil {
		return err // deleted: nobody may ever send or receive again
	}
	for {
		v := atomic.LoadUint32(w) // step: queue.send.load_word, queue.recv.load_word
		if v&qSleepers == 0 {
			if !atomic.CompareAndSwapUint32(w, v, v|qSleepers) { // step: queue.send.set_sleepers, queue.recv.set_sleepers
				continue
			}
			v |= qSleepers
		}
		lives, ok, poll := q.s.watchOthers(nil, 0) // wait.watch.cas for each
		if !ok {
			continue
		}
		if ready() { // step: queue.send.recheck, queue.recv.recheck
			return nil
		}
		return q.s.sleep(ctx, w, v, lives, poll)
	}
}

// Recv receives the oldest message, blocking while the queue is empty. It
// returns io.EOF once the stream is closed and drained; ErrClosed if the
// segment is closed; ErrDeleted if the queue is empty and was deleted
// (Segment.Delete); ErrCorrupt if the queue's memory holds garbage. The
// message is a fresh slice, the caller's to keep.
//
// Delivery is at least once: a message is consumed when Recv has copied it
// out and stored the new head, the step before it returns. A receiver
// killed before that store leaves the message first in the queue, for the
// next receiver.
func (q *Queue) Recv() ([]byte, error) { return q.RecvContext(context.Background()) }

// RecvContext is Recv that gives up when ctx is done, returning ctx.Err()
// and receiving nothing.
func (q *Queue) RecvContext(ctx context.Context) ([]byte, error) {
	var out []byte
	err := q.RecvFunc(ctx, func(m []byte) error {
		out = append(make([]byte, 0, len(m)), m...)
		return nil
	})
	return out, err
}

// AppendRecv receives the oldest message as RecvContext does, appending it
// to dst: one copy, into the caller's buffer. On error it returns dst
// unchanged.
func (q *Queue) AppendRecv(ctx context.Context, dst []byte) ([]byte, error) {
	out := dst
	err := q.RecvFunc(ctx, func(m []byte) error {
		out = append(dst, m...)
		return nil
	})
	if err != nil {
		return dst, err
	}
	return out, nil
}

// TryRecv receives the oldest message if one is queued, and reports whether
// it did; it returns io.EOF if the stream is closed and drained. It waits
// only for another receiver's copy in progress. Its errors are Recv's.
func (q *Queue) TryRecv() ([]byte, bool, error) {
	var out []byte
	ok, err := q.recv(context.Background(), func(m []byte) error {
		out = append(make([]byte, 0, len(m)), m...)
		return nil
	}, false)
	return out, ok, err
}

// RecvFunc receives the oldest message, blocking as RecvContext does, and
// calls f with it in place: no copy. m is the queue's memory, valid only
// until f returns: f must not keep m or any slice of it, must not write to
// it, and should not take long, since every other receiver of the queue, in
// every process, waits for f to return. If f returns an error, or panics,
// the message is not consumed (it stays first in the queue) and RecvFunc
// returns that error. Its other errors are Recv's.
func (q *Queue) RecvFunc(ctx context.Context, f func(m []byte) error) error {
	_, err := q.recv(ctx, f, true)
	return err
}

func (q *Queue) recv(ctx context.Context, f func([]byte) error, block bool) (got bool, err error) {
	if !q.s.enter() { // step: queue.recv.enter
		return false, q.errorf("recv: %w", ErrClosed)
	}
	defer q.s.exit()
	defer q.s.guard(&err, guarded())
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ok, err := q.tryRecv(ctx, f)
	if ok || err != nil || !block {
		return ok, err
	}
	if q.poll {
		return q.pollRecv(ctx, f)
	}
	if q.rl.spin(q.hasMessage) {
		if ok, err := q.tryRecv(ctx, f); ok || err != nil {
			return ok, err
		}
	}
	if err := q.rl.acquire(ctx, q.s); err != nil { // step: token.acquire, token.acquire_wait
		return false, err
	}
	defer q.rl.release() // step: token.release
	atomic.AddUint32(q.waiting, 1)
	defer atomic.AddUint32(q.waiting, ^uint32(0))
	for {
		if ok, err := q.tryRecv(ctx, f); ok || err != nil {
			return ok, err
		}
		if err := q.wait(ctx, q.recvW, q.hasMessage); err != nil {
			return false, err
		}
	}
}

// pollRecv is a blocking recv for a handle made WithRecvPolling: it runs
// tryRecv whenever a message or the end of the stream is visible, and
// otherwise polls, looking at ctx and the segment's Close every 64 polls
// and yielding to the Go scheduler every 1024. It never sleeps, so it takes
// no token and marks no futex word: it is the try path of the model
// (queue.recv.*) repeated, and a commit needs no wake-up to reach it. It
// consumes no wake-up either, so it has none to pass on; blocking receivers
// of other handles are woken by the senders as usual. The caller holds
// q.s.enter().
func (q *Queue) pollRecv(ctx context.Context, f func([]byte) error) (bool, error) {
	atomic.AddUint32(q.waiting, 1)
	defer atomic.AddUint32(q.waiting, ^uint32(0))
	done := ctx.Done()
	idle := 1
	for i := 1; ; i++ {
		if q.hasMessage() {
			if ok, err := q.tryRecv(ctx, f); ok || err != nil {
				return ok, err
			}
		}
		for range idle {
			pause()
		}
		idle = min(2*idle, pollBackoff)
		if i%64 == 0 {
			select {
			case <-done:
				return false, ctx.Err()
			case <-q.s.closing():
				return false, q.errorf("recv: %w", ErrClosed)
			default:
			}
			if i%1024 == 0 {
				runtime.Gosched()
			}
		}
	}
}

// pollBackoff bounds the pauses (see pause) between two polls of an idle
// queue by a polling receiver.
const pollBackoff = 16

// tryRecv receives the oldest message into f if there is one. It returns
// io.EOF if the queue is closed and empty. The caller holds q.s.enter().
func (q *Queue) tryRecv(ctx context.Context, f func([]byte) error) (got bool, err error) {
	if err := lockCore(ctx, q.clock); err != nil { // step: queue.recv.lock
		return false, err
	}
	locked := true
	defer func() {
		if locked {
			q.clock.unlock() // step: queue.recv.unlock
		}
	}()
	closed := atomic.LoadUint32(q.closed) != 0 // step: queue.recv.check_closed
	h := atomic.LoadUint64(q.head)
	t := q.seenTail.Load() // see "Cached words"
	if h != q.ownHead.Load() || t>>qOffBits == h>>qOffBits {
		t = atomic.LoadUint64(q.tail) // step: queue.recv.load_tail
	}
	n, valid := q.queued(h, t)
	ho, to := h&qOffMask, t&qOffMask
	if !valid || ho >= q.rsize || to >= q.rsize || ho%8 != 0 || n == 0 && ho != to {
		return false, q.errorf("%w: head %#x, tail %#x", ErrCorrupt, h, t)
	}
	if n == 0 {
		if closed {
			return false, io.EOF
		}
		return false, nil
	}
	if raceEnabled {
		raceAcquire(q.race)
	}
	r := q.ring
	pos := ho
	l := load32(r, pos) // step: queue.recv.read
	if l == qWrap {
		pos = 0
		l = load32(r, 0)
	}
	rec := qRec(uint64(l))
	used := (to - ho + q.rsize) % q.rsize
	if used == 0 {
		used = q.rsize
	}
	end := pos + rec
	took := (end - ho + q.rsize) % q.rsize
	if took == 0 {
		took = q.rsize
	}
	if l > q.max || end > q.rsize || took > used {
		return false, q.errorf("%w: record of %d bytes at %d (head %#x, tail %#x)", ErrCorrupt, l, pos, h, t)
	}
	// A panic in f unwinds through the deferred unlock: the message stays.
	if err := f(r[pos+qRecHdr : pos+qRecHdr+uint64(l) : pos+qRecHdr+uint64(l)]); err != nil {
		return false, err
	}
	if end == q.rsize {
		end = 0
	}
	h = (h>>qOffBits+1)<<qOffBits | end
	atomic.StoreUint64(q.head, h) // step: queue.recv.commit
	q.ownHead.Store(h)
	q.seenTail.Store(t)
	locked = false
	q.clock.unlock() // step: queue.recv.unlock
	wakeWord(q.sendW)
	return true, nil
}

// Close ends the stream: receivers, in every process, get the messages
// queued, then io.EOF; Send returns ErrQueueClosed from then on. Blocked
// senders and receivers are woken. Close is idempotent. It returns
// ErrClosed if the segment is closed. It waits for a Send in progress to
// finish its copy.
func (q *Queue) Close() (err error) {
	if !q.s.enter() { // step: queue.close.enter
		return q.errorf("close: %w", ErrClosed)
	}
	defer q.s.exit()
	defer q.s.guard(&err, guarded())
	if err := lockCore(context.Background(), q.plock); err != nil { // step: queue.close.lock
		return q.errorf("close: %w", err)
	}
	atomic.StoreUint32(q.closed, 1) // step: queue.close.set
	q.plock.unlock()                // step: queue.close.unlock
	wakeWord(q.recvW)               // step: queue.close.wake_recv
	wakeWord(q.sendW)               // step: queue.close.wake_send
	return nil
}

// All returns an iterator over the messages received, each a fresh slice,
// that ends at the end of the stream (io.EOF) or at the first error; use
// Messages to see the error.
func (q *Queue) All() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for m, err := range q.Messages(context.Background()) {
			if err != nil || !yield(m) {
				return
			}
		}
	}
}

// Messages returns an iterator over the messages received with ctx, each a
// fresh slice. It ends at the end of the stream; any other error is yielded
// once, with a nil message, and ends it.
func (q *Queue) Messages(ctx context.Context) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for {
			m, err := q.RecvContext(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}
