package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// go_futex_broadcast_8p and go_futex_broadcast_8p_chain put
// ps_cond_broadcast_8p in scale: the same measure, the same child loop, but
// with the plainest cond and mutex that Go processes can build on raw
// futexes, with no robustness of any kind (a process that dies holding the
// mutex, or while woken, hangs the others; nothing is reclaimed; there is no
// cancellation). They are what the Go runtime alone costs here, and what
// the choice between waking all waiters at once and waking them in turn
// costs.
//
//   - The mutex is Drepper's (0 free, 1 locked, 2 locked with sleepers;
//     "Futexes are tricky", mutex 2), as c_futex_mutex is.
//   - The cond is a sequence word: Wait reads it, unlocks, sleeps while it
//     is unchanged and locks again in state 2, as glibc's old condvar did.
//   - go_futex_broadcast_8p: Broadcast bumps the word and wakes every
//     sleeper at once (the herd, as glibc's pthread_cond_broadcast does).
//   - go_futex_broadcast_8p_chain: Broadcast wakes two, and every woken
//     waiter wakes one more until all the registered ones have been: two
//     baton chains, as ps_cond_broadcast_8p has since the herd was removed
//     (one chain measured 118–145 µs here, two 104–120).
//
// Before each kernel sleep a process yields (runtime.Gosched) if it has not
// for 2 ms, as processshared does (reschedule, in its wait.go, says why).
// A first version of this herd, outside the bench, measured 189–295 µs
// without the yield and 78–90 µs with it.
//
// The words live in the scratch page, in cache lines of their own.
const (
	wFxMutex  = 640 // the mutex word
	wFxSeq    = 704 // the cond the waiters wait on
	wFxBack   = 768 // the cond the parent waits on
	wFxToWake = 832 // chain: waiters still to wake after a Broadcast
)

// fxChains is how many chains Broadcast starts in the chain variant.
const fxChains = 2

// fxWaitSlice bounds each futex sleep, so that a dead child or an ended
// context is noticed.
const fxWaitSlice = 100 * time.Millisecond

type fxCond struct {
	m, seq *uint32
	toWake *int64 // nil: wake all at once
	last   int64  // when this process last yielded before a sleep (mono)
}

func (c *fxCond) futexWait(w *uint32, v uint32) {
	if now := mono(); now-c.last >= int64(2*time.Millisecond) {
		c.last = now
		runtime.Gosched()
	}
	ts := unix.NsecToTimespec(int64(fxWaitSlice))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), 0 /* FUTEX_WAIT */, uintptr(v), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

func fxWake(w *uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), 1 /* FUTEX_WAKE */, uintptr(n), 0, 0, 0)
}

func (c *fxCond) lock(ctx context.Context) error {
	if atomic.CompareAndSwapUint32(c.m, 0, 1) {
		return nil
	}
	return c.lockContended(ctx)
}

func (c *fxCond) lockContended(ctx context.Context) error {
	for atomic.SwapUint32(c.m, 2) != 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.futexWait(c.m, 2)
	}
	return nil
}

func (c *fxCond) unlock() {
	if atomic.SwapUint32(c.m, 0) == 2 {
		fxWake(c.m, 1)
	}
}

// wait is one Wait: it may return spuriously (at least every fxWaitSlice).
func (c *fxCond) wait(ctx context.Context, seq *uint32) error {
	v := atomic.LoadUint32(seq)
	c.unlock()
	c.futexWait(seq, v)
	if c.toWake != nil && seq == c.seq && atomic.LoadUint32(seq) != v {
		// A chain's link. Every waiter registered before the Broadcast
		// counts itself off once; all but the last wake one more, so at
		// least as many wake-ups are sent as waiters sleep, and none is
		// sent before all of those sleep (they slept on the old value).
		if atomic.AddInt64(c.toWake, -1) > 0 {
			fxWake(seq, 1)
		}
	}
	return c.lockContended(ctx)
}

// broadcast wakes the waiters of seq; n is how many are registered.
func (c *fxCond) broadcast(seq *uint32, n int64) {
	atomic.AddUint32(seq, 1)
	if c.toWake == nil || seq != c.seq {
		fxWake(seq, 1<<30)
		return
	}
	// The two woken first count themselves off too: n-1 left, so that the
	// last of the n stops the chain.
	atomic.StoreInt64(c.toWake, n-fxChains+1)
	fxWake(seq, fxChains)
}

func (c *fxCond) signal(seq *uint32) {
	atomic.AddUint32(seq, 1)
	fxWake(seq, 1)
}

func newFxCond(sc *scratch, chain bool) *fxCond {
	c := &fxCond{m: (*uint32)(unsafe.Pointer(sc.u64(wFxMutex))), seq: (*uint32)(unsafe.Pointer(sc.u64(wFxSeq)))}
	if chain {
		c.toWake = (*int64)(unsafe.Pointer(sc.u64(wFxToWake)))
	}
	return c
}

func goFutexBroadcast(chain bool) func(context.Context, *config) result {
	return func(ctx context.Context, cfg *config) result {
		const procs = 8
		t, err := newTeam(ctx, false)
		if err != nil {
			return failed(err)
		}
		defer t.close()
		sc := t.sc
		c := newFxCond(sc, chain)
		back := (*uint32)(unsafe.Pointer(sc.u64(wFxBack)))
		for i := 1; i <= procs; i++ {
			if err := t.spawn("fxbcast", i, fmt.Sprintf("%d,%t", procs, chain)); err != nil {
				return failed(err)
			}
		}
		gen, waiting, woken, t1 := sc.u64(wGen), sc.u64(wWaiting), sc.u64(wWoken), sc.u64(wT1)
		if err := c.lock(t.ctx); err != nil {
			return failed(err)
		}
		// awaitBack waits on back (the mutex held) until *word reaches
		// want; it fails after 10 s without progress, or if a child failed.
		awaitBack := func(r int, word *uint64, want uint64, what string) error {
			start := time.Now()
			for *word < want {
				if err := c.wait(t.ctx, back); err != nil {
					return fmt.Errorf("round %d: %s (%d/%d): %w (child: %v)", r, what, *word, want, err, t.failure())
				}
				if *word < want && time.Since(start) > 10*time.Second {
					return fmt.Errorf("round %d: %s (%d/%d): stalled for 10 s (child: %v)", r, what, *word, want, t.failure())
				}
			}
			return nil
		}
		warm := 3
		minRounds := pick(cfg, 50, 10)
		var lat []int64
		bad := 0
		start := time.Now()
		for r := 0; ; r++ {
			if err := awaitBack(r, waiting, procs, "waiting for the waiters"); err != nil {
				c.unlock()
				return failed(err)
			}
			if r >= warm+minRounds && time.Since(start) >= cfg.loopDur() {
				break
			}
			*waiting, *woken = 0, 0
			*gen++
			t0 := mono()
			c.broadcast(c.seq, procs)
			if err := awaitBack(r, woken, procs, "woken"); err != nil {
				c.unlock()
				return failed(err)
			}
			if *woken != procs {
				bad++
			}
			if r == warm {
				start = time.Now()
			}
			if r >= warm {
				lat = append(lat, int64(*t1)-t0)
			}
		}
		rounds := *gen
		sc.store(wStop, 1)
		*gen++
		c.broadcast(c.seq, procs)
		c.unlock()
		if err := t.wait(); err != nil {
			return failed(err)
		}
		childRounds := sc.load(wTotal)
		ok := bad == 0 && sc.load(wErrors) == 0 && childRounds == rounds*procs
		var sum int64
		for _, l := range lat {
			sum += l
		}
		slices.Sort(lat)
		how := "wakes every waiter at once (herd)"
		if chain {
			how = "wakes two, and each woken waiter wakes one more (two chains)"
		}
		return result{float64(lat[len(lat)/2]), ok,
			fmt.Sprintf("the measure of ps_cond_broadcast_8p with a raw-futex cond and Drepper mutex in Go, no robustness; Broadcast %s; rounds=%d mean=%.0f min=%d max=%d ns; every waiter woken exactly once per broadcast (%d/%d wake-ups)",
				how, len(lat), float64(sum)/float64(len(lat)), lat[0], lat[len(lat)-1], childRounds, rounds*procs)}
	}
}

func init() {
	childRoles["fxbcast"] = func(ch *childEnv) error {
		procsArg, chainArg, _ := strings.Cut(ch.arg, ",")
		procs, _ := strconv.ParseUint(procsArg, 10, 64)
		sc := ch.sc
		c := newFxCond(sc, chainArg == "true")
		back := (*uint32)(unsafe.Pointer(sc.u64(wFxBack)))
		gen, waiting, woken, t1 := sc.u64(wGen), sc.u64(wWaiting), sc.u64(wWoken), sc.u64(wT1)
		if err := c.lock(ch.ctx); err != nil {
			return err
		}
		defer c.unlock()
		var rounds uint64
		for {
			*waiting++
			if *waiting == procs {
				c.signal(back)
			}
			g := *gen
			for *gen == g {
				if err := c.wait(ch.ctx, c.seq); err != nil {
					return err
				}
			}
			if sc.load(wStop) != 0 {
				sc.add(wTotal, rounds)
				return nil
			}
			if *gen != g+1 {
				return fmt.Errorf("generation %d after %d: a broadcast was missed", *gen, g)
			}
			rounds++
			*woken++
			if *woken == procs {
				*t1 = uint64(mono())
				c.signal(back)
			}
		}
	}
}
