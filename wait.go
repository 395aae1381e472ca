package processshared

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
)

// A local is the process-local side of one shared object.
//
// A goroutine blocked in FUTEX_WAIT holds its OS thread, so if every blocked
// goroutine slept in the kernel, 1000 goroutines blocked on one lock would
// hold 1000 threads. Instead only the goroutine that holds token sleeps in
// the kernel for this object; the others of this process park on the token,
// a channel, which costs no thread. A process thus has at most one sleeper per
// object, and one FUTEX_WAKE wakes one process.
type local struct {
	token    chan struct{}  // capacity 1: holding it means "I may sleep in the kernel"
	race     unsafe.Pointer // address the race detector annotations key on (race.go)
	spinners *uint64        // the segment's spinner gate (header offSpinners)

	// demands counts, by the number of permits asked for, the Semaphore
	// Acquires of this process waiting for the token (see acquireFor).
	mu      sync.Mutex
	demands map[uint32]int
}

func newLocal(race unsafe.Pointer, spinners *uint64) *local {
	return &local{token: make(chan struct{}, 1), race: race, spinners: spinners}
}

// Spinning before a sleep pays off when the other party runs on another CPU
// and answers within a few microseconds (a sleep and wake-up cost 10–20 µs
// here, up to 70 µs when the sleeper's CPU has gone idle). An adaptive
// budget (halved after each failed spin, as in glibc's adaptive mutex) was
// tried and measured worse: in a ping-pong the answer often comes just after
// the spin, the budget collapses, and every hop pays for a sleep.
//
// The spin is bounded by time, not by a count of rounds, so that it means
// the same on any CPU. Measured with bench (ps_sem_pingpong and
// ps_cond_pingpong in one run with the C peers): 5 µs gave round trips of
// 4.3 and 15 µs, 10 µs gave 1.2 and 4.6 µs, 20 µs gave 1.0 and 3.6 µs. 10 µs
// is about half the cost of a blocking hand-off on this machine (11–22 µs),
// the classic bound for spinning before blocking.
const spinFor = 10 * time.Microsecond

// preSpins is how many pauses spin makes before it enters the gate.
const preSpins = 32

// spin polls ready for up to spinFor and reports whether it became true.
// It does not spin while maxSpinners others of the segment spin (see
// spinEnter).
func (l *local) spin(ready func() bool) bool {
	// A first stretch, about a microsecond, without the gate: the answer
	// of a ping-pong partner on the other CPU often comes within it, and
	// the gate's word is shared by every process of the segment, so that
	// entering and leaving it would cost two cache-line transfers between
	// the players on every hop. Spinners this short cannot starve the
	// machine.
	for range preSpins {
		if ready() {
			return true
		}
		pause()
	}
	start := time.Now()
	tick, ok := spinEnter(l.spinners, start)
	if !ok {
		return false
	}
	defer spinLeave(l.spinners, tick)
	for i := 1; ; i++ {
		if ready() {
			return true
		}
		if i%16 == 0 && time.Since(start) > spinFor {
			return false
		}
		pause()
	}
}

// Spinning pays off only while the party that will make the condition true
// has a CPU to run on. With more spinners than CPUs (an 8-process Broadcast
// on 2 CPUs, say) the spinners delay that party and each other, and every
// one of them then sleeps anyway. So every spin of a segment registers in
// the segment's spinner gate, a 64-bit header word:
//
//	bits 0-15   n     spins in progress, counted during tick
//	bits 16-63  tick  the time the count belongs to, in units of spinTick
//
// spinEnter, in one CAS: if the word's tick is not the current one, n is
// taken as 0 (the spins it counted ended long ago: a spin lasts spinFor, a
// tenth of spinTick; a process killed while spinning is forgotten this
// way); if n is maxSpinners or more it does not spin; else it stores
// (now, n+1). spinLeave decrements n if the tick is still the one it
// entered in. The count is a heuristic: around a tick boundary it
// undercounts (spins of the last tick are forgotten), never overcounts for
// longer than a tick, so it cannot stop spinning for good.
const spinTick = 100 * time.Microsecond

// maxSpinners is the most spins a segment has in progress at once: one CPU
// is left for the party the spinners wait for.
var maxSpinners = uint64(max(1, runtime.NumCPU()-1))

func spinEnter(w *uint64, now time.Time) (tick uint64, ok bool) {
	tick = uint64(now.UnixNano()/int64(spinTick)) & (1<<48 - 1)
	for {
		old := atomic.LoadUint64(w)
		n := old & 0xffff
		if old>>16 != tick {
			n = 0
		}
		if n >= maxSpinners {
			return 0, false
		}
		if atomic.CompareAndSwapUint64(w, old, tick<<16|(n+1)) {
			return tick, true
		}
	}
}

func spinLeave(w *uint64, tick uint64) {
	for {
		old := atomic.LoadUint64(w)
		if old>>16 != tick || old&0xffff == 0 {
			return // counted anew since
		}
		if atomic.CompareAndSwapUint64(w, old, old-1) {
			return
		}
	}
}

// pause spends a few tens of nanoseconds inside a spin loop.
func pause() {
	var x uint32
	for range 20 {
		atomic.LoadUint32(&x)
	}
}

// acquire takes l's token. It returns ctx's error if ctx ends first, and
// ErrClosed if the segment is closed.
func (l *local) acquire(ctx context.Context, s *Segment) error {
	select {
	case l.token <- struct{}{}: // step: token.acquire
		return nil
	default:
	}
	select { // step: token.acquire_wait
	case l.token <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing():
		return ErrClosed
	}
}

func (l *local) release() { <-l.token } // step: token.release

// acquireFor is acquire for a Semaphore Acquire of n permits: while it
// waits for the token, the token's holder can see its demand (could). Once
// its demand is visible, and before it blocks, it runs try: if that takes
// the permits, acquireFor returns false (and no token). With the token
// holder's could, this is a Dekker pair: either the holder sees the demand
// (and yields the token to it), or try runs after the holder's last look
// at the value and sees what the holder saw, or more.
func (l *local) acquireFor(ctx context.Context, s *Segment, n uint32, try func() bool) (bool, error) {
	select {
	case l.token <- struct{}{}: // step: token.acquire
		return true, nil
	default:
	}
	l.mu.Lock()
	if l.demands == nil {
		l.demands = make(map[uint32]int)
	}
	l.demands[n]++ // step: sem.acquire.register
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.demands[n]--; l.demands[n] == 0 { // step: sem.acquire.unregister
			delete(l.demands, n)
		}
		l.mu.Unlock()
	}()
	if try() { // step: sem.acquire.retry
		return false, nil
	}
	if err := l.acquire(ctx, s); err != nil {
		return false, err
	}
	return true, nil
}

// could reports whether a goroutine waiting in acquireFor asks for at most
// v permits.
func (l *local) could(v uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for n := range l.demands {
		if n <= v {
			return true
		}
	}
	return false
}

// A waitCancel is a private futex word that a sleeper includes in its
// futex_waitv set, so that cancellation and Close wake exactly that sleeper.
type waitCancel struct {
	word uint32 // accessed atomically only
}

func (c *waitCancel) fire() {
	atomic.AddUint32(&c.word, 1)
	futex.WakePrivate(&c.word, 1)
}

// pollInterval bounds each kernel sleep when futex_waitv is not available,
// or when the holder's death cannot be observed through a futex: the sleeper
// then checks for cancellation and the holder's liveness this often.
const pollInterval = 10 * time.Millisecond

// sleep blocks until the shared word no longer holds val, or it is woken; or
// until one of lives (the live words of processes whose death the caller
// waits for, at most maxLives) changes; or until ctx is done or the segment
// is closed. It returns ctx.Err(), ErrClosed, or nil; callers re-check their
// condition after nil, which may be spurious. With poll set, or where the
// kernel cannot report deaths, it returns at least every pollInterval. The
// caller holds s.enter().
func (s *Segment) sleep(ctx context.Context, word *uint32, val uint32, lives []liveRef, poll bool) error {
	reschedule()
	return s.sleepv(ctx, word, val, lives, poll || s.needPoll())
}

// reschedule yields the processor (runtime.Gosched) if no sleep of this
// process has done so for reschedEvery. A caller about to block in the
// kernel calls it first, before it locks its goroutine to its thread (a
// Gosched from a locked goroutine hands its P to another thread and back).
//
// A goroutine that blocks only in system calls is never rescheduled, so it
// keeps its processor's scheduling tick forever. Once that tick is 10 ms
// old, the runtime's sysmon counts it as running too long: at every
// blocking system call, sysmon takes its P away (and may start a thread to
// run it), and sysmon itself keeps polling every 20 µs instead of backing
// off to 10 ms. In a broadcast to 8 processes on 2 CPUs (ps_cond_broadcast_8p),
// sysmon's wake-ups were a quarter of all context switches. One Gosched
// every 2 ms gives the tick a new start and costs little: it may wake a
// spinning thread, at most 500 times a second per process.
func reschedule() {
	now := futex.Now()
	if l := lastResched.Load(); now-l >= int64(reschedEvery) && lastResched.CompareAndSwap(l, now) {
		runtime.Gosched()
	}
}

// reschedEvery is the least time between two of reschedule's Goscheds, well
// below the runtime's 10 ms (forcePreemptNS).
const reschedEvery = 2 * time.Millisecond

// lastResched is when reschedule last yielded, in futex.Now's nanoseconds.
var lastResched atomic.Int64

// sleepv is sleep for a caller that watches no holder's death through the
// kernel's robust list, or that does not need to: it polls only when poll
// is set (or without futex_waitv).
func (s *Segment) sleepv(ctx context.Context, word *uint32, val uint32, lives []liveRef, poll bool) error {
	// The word's value is taken before c is published: once addCancel
	// returns, Close (or the context) may fire c at any moment, and a value
	// read after that fire would let the sleep below miss it.
	var c waitCancel
	// c.word's value as made, before anyone can fire c.
	const cval = 0
	if !s.addCancel(&c) { // step: wait.sleep.waitv
		return ErrClosed
	}
	defer s.removeCancel(&c)
	if done := ctx.Done(); done != nil {
		stop := context.AfterFunc(ctx, c.fire)
		defer stop()
	}
	if err := ctx.Err(); err != nil { // step: wait.sleep.waitv
		return err
	}
	var deadline int64
	if d, ok := ctx.Deadline(); ok {
		deadline = futex.Deadline(d)
	}
	if poll || len(lives) > maxLives {
		deadline = pollDeadline(deadline)
		lives = lives[:min(len(lives), maxLives)]
	}
	if futex.HasWaitv() {
		var ws [2 + 2*maxLives]futex.Waiter
		ws[0] = futex.Shared(word, val)
		ws[1] = futex.Private(&c.word, cval)
		n := 2
		for _, l := range lives {
			ws[n] = futex.Shared(l.word, l.val)
			n++
			if l.gen != nil { // a slot's live word, not a word of the caller's own
				ws[n] = futex.Shared(l.gen, l.g)
				n++
			}
		}
		futex.Waitv(ws[:n], deadline) // step: wait.sleep.waitv
	} else {
		// Without futex_waitv (Linux before 5.16, qemu-user) nothing
		// wakes this sleep when c fires or a watched process dies: poll.
		deadline = pollDeadline(deadline)
		futex.Wait(word, val, deadline)
	}
	if testHookWoken != nil {
		testHookWoken()
	}
	for _, l := range lives {
		if atomic.LoadUint32(l.word) != l.val { // step: wait.sleep.check_lives
			// The kernel wakes one sleeper on a dead process's word, and
			// this may be it: wake the others, who may wait for other
			// locks it held. Whatever else changed the word (a Close, a
			// newcomer claiming the slot) woke them all already, and
			// waking them again costs only this rare path.
			wakeAll(l.word) // step: wait.sleep.wake_all_live
		}
	}
	if s.isClosed() { // step: wait.sleep.check_done
		return ErrClosed
	}
	return ctx.Err() // step: wait.sleep.check_done
}

// testHookWoken, if set (by tests only), runs when a sleeper returns from
// the kernel, before it looks at anything.
var testHookWoken func()

// A liveRef is a process's live word and the value it was seen to hold,
// and its slot's generation word and the generation of the identity waited
// for. The sleep watches both: the live word alone could, after a death and
// a newcomer's claim, hold the value seen again (an equal tid, in another
// PID namespace or reused, and a liveWaiters bit set by a waiter for the
// newcomer), after the newcomer's A3 wake went by; the generation has moved
// on by then, so the sleep does not begin.
type liveRef struct {
	word *uint32
	val  uint32
	gen  *uint32
	g    uint32
}

// maxLives bounds the live words one sleep watches; with a generation word
// each, and the sleep's own two words, 64 of futex_waitv's 128. Beyond it a
// sleep polls (pollInterval) for the deaths it cannot watch.
const maxLives = 31

// watch prepares to sleep until the holder h (an identity found alive by
// lookup) dies: it sets liveWaiters in h's live word, so that the kernel
// wakes a sleeper when it sets liveDied, and then checks that the slot's
// generation is still h's, so that a newcomer claiming the slot meanwhile
// either is seen here or sees liveWaiters and wakes the sleep (see "A
// slot's claim" in proc.go). It returns false if anything changed
// meanwhile (re-check and retry).
func watch(h holder) (liveRef, bool) {
	if h.val&liveWaiters == 0 {
		if !atomic.CompareAndSwapUint32(h.live, h.val, h.val|liveWaiters) { // step: wait.watch.cas
			return liveRef{}, false
		}
		h.val |= liveWaiters
	}
	if atomic.LoadUint32(h.gen) != h.g { // step: wait.watch.recheck_gen
		return liveRef{}, false
	}
	return liveRef{h.live, h.val, h.gen, h.g}, true
}

// watchOthers adds to lives a watch (as watch does) of the live word of
// every process attached to the segment but this handle and the slot at
// skip (the holder's, which the caller watches), for a sleeper whose wait
// may outlast a holder it never saw: the process an Unlock wakes may take
// the lock and die holding it while this sleeper sleeps. It reports false
// if a word changed under it (look again), and poll if some process could
// not be watched (no robust list, or more than maxLives in all).
//
// It reads each slot's generation before its live word, and the sleep
// names both (see liveRef): a newcomer's claim between the two reads makes
// the sleep return at once, so no re-check is needed.
//
// It looks at the slots below procHigh only, loaded once: the slots above
// were free when it was loaded (see "The high-water mark" in proc.go), so
// skipping them is the full scan with its reads of them all made at that
// instant, one of the interleavings the full scan has. A process that
// claims one of them later is a newcomer, missed as one that claims a free
// slot behind the full scan's position would be; the callers' protocols
// allow for that (a sleeper that must see newcomers uses watchAll).
func (s *Segment) watchOthers(lives []liveRef, skip uint64) (_ []liveRef, ok, poll bool) {
	procOff := s.lay.procOff
	for i := range s.procHigh() {
		off := procOff + i*procSlotSize
		if off == s.slot || off == skip {
			continue
		}
		gw := u32at(s.mem, off+slotGen)
		g := atomic.LoadUint32(gw) // step: proc.lookup.gen
		w := u32at(s.mem, off+slotLive)
		v := atomic.LoadUint32(w) // step: proc.lookup.live
		if v == 0 || v&liveDied != 0 {
			continue // free, or dead: nothing to wait for
		}
		if load32(s.mem, off+slotFlags)&slotRobust == 0 || len(lives) == maxLives {
			poll = true
			continue
		}
		if v&liveWaiters == 0 {
			if !atomic.CompareAndSwapUint32(w, v, v|liveWaiters) { // step: wait.watch.cas
				return lives, false, poll
			}
			v |= liveWaiters
		}
		lives = append(lives, liveRef{w, v, gw, g})
	}
	return lives, true, poll
}

func pollDeadline(deadline int64) int64 {
	p := futex.Now() + int64(pollInterval)
	if deadline == 0 || p < deadline {
		return p
	}
	return deadline
}

// needPoll reports whether sleepers must poll for holders' deaths: the kernel
// does not report them through this process's robust list.
func (s *Segment) needPoll() bool { return !theKeeper().robust }

// wakeAll wakes every sleeper on w.
func wakeAll(w *uint32) { futex.Wake(w, 1<<30) }
