package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ipc "bitbucket.org/avd/go-ipc/sync"
	ps "github.com/processshared/processshared"
)

// Ping-pong: the parent (pinger) and one child (ponger) take turns. In round
// i the parent writes the odd sequence number 2i+1 into the scratch page and
// hands over; the child checks it, writes 2i+2 and hands back; the parent
// checks that. One op is one round trip. The sequence words are plain
// memory, so the check also tests that a hand-over orders memory.
//
// Two protocols:
//   - "post/wait" (semaphores, events): the parent posts ping and waits for
//     pong; the child waits for ping and posts pong. To stop, the parent
//     raises the stop word and posts ping once more.
//   - "cond" (a mutex, a condition variable and a turn word, the protocol of
//     c_cond_pingpong): under the mutex the parent sets turn=1, signals and
//     waits until turn==0; the child waits until turn==1, sets turn=0 and
//     signals. To stop, the parent raises the stop word and sets turn=1.

// stallAfter is how long a ping-pong may go without a round trip before it
// is declared stalled.
const stallAfter = 5 * time.Second

// A pinger is the parent's side of one round trip and of the stop.
type pinger struct {
	round func(ctx context.Context, mine uint64) (got uint64, err error)
	stop  func() error
	note  string
}

// pingpong runs warm-up rounds, then timed rounds for cfg.loopDur(), then
// stops the child and checks its count.
func pingpong(ctx context.Context, cfg *config, t *team, p pinger) result {
	warm := pick(cfg, 200, 20)
	if err := t.sc.awaitAtLeast(t.ctx, wReady, 1); err != nil {
		return failed(fmt.Errorf("%w (child: %v)", err, t.failure()))
	}
	// A round trip that takes seconds is a lost wake-up, not a slow
	// machine: the watchdog cancels the team so the parent's wait returns.
	var progress atomic.Uint64
	var stalled atomic.Bool
	watch := time.NewTicker(stallAfter)
	defer watch.Stop()
	go func() {
		last := uint64(0)
		for range watch.C {
			p := progress.Load()
			if p == last && p != ^uint64(0) {
				stalled.Store(true)
				t.cancel()
				return
			}
			last = p
		}
	}()
	defer progress.Store(^uint64(0))
	var i uint64
	stallErr := func(err error) result {
		if stalled.Load() {
			err = fmt.Errorf("stalled: no round trip completed for %v, in round %d (a lost wake-up; both sides blocked): %w", stallAfter, i, err)
		}
		return failed(err)
	}
	roundTrip := func() error {
		mine := 2*i + 1
		got, err := p.round(t.ctx, mine)
		if err != nil {
			return fmt.Errorf("round %d: %w (child: %v)", i, err, t.failure())
		}
		if got != mine+1 {
			return fmt.Errorf("round %d: got %d, want %d: %w", i, got, mine+1, errSequence)
		}
		i++
		progress.Store(i)
		return nil
	}
	for range warm {
		if err := roundTrip(); err != nil {
			return stallErr(err)
		}
	}
	start := time.Now()
	d := cfg.loopDur()
	for time.Since(start) < d {
		if err := roundTrip(); err != nil {
			return stallErr(err)
		}
	}
	elapsed := time.Since(start)
	progress.Store(^uint64(0))
	n := i - uint64(warm)
	t.sc.store(wStop, 1)
	if err := p.stop(); err != nil {
		return failed(err)
	}
	if err := t.wait(); err != nil {
		return failed(err)
	}
	childRounds := t.sc.load(wTotal)
	ok := childRounds == i && t.sc.load(wErrors) == 0 && *t.sc.u64(wSeq) == 2*i
	return result{
		value: float64(elapsed.Nanoseconds()) / float64(n),
		ok:    ok,
		notes: fmt.Sprintf("round trip between 2 processes (re-exec child), %s; n=%d (+%d warm-up), child rounds=%d, sequence checked every hop", p.note, n, warm, childRounds),
	}
}

// pongPostWait is the child's side of the post/wait protocol.
func pongPostWait(c *childEnv, wait, post func() error) error {
	seq := c.sc.u64(wSeq)
	c.sc.add(wReady, 1)
	for i := uint64(0); ; i++ {
		if err := wait(); err != nil {
			return err
		}
		if c.sc.load(wStop) != 0 {
			c.sc.store(wTotal, i)
			return nil
		}
		if *seq != 2*i+1 {
			c.sc.store(wTotal, i)
			return fmt.Errorf("round %d: seq %d: %w", i, *seq, errSequence)
		}
		*seq = 2*i + 2
		if err := post(); err != nil {
			return err
		}
	}
}

// pongCond is the child's side of the cond protocol; lock, unlock, wait and
// signal are those of the mutex and condition variable under test.
func pongCond(c *childEnv, lock func() error, unlock func(), wait func() error, signal func()) error {
	seq, turn := c.sc.u64(wSeq), c.sc.u64(wTurn)
	c.sc.add(wReady, 1)
	for i := uint64(0); ; i++ {
		if err := lock(); err != nil {
			return err
		}
		for *turn != 1 {
			if err := wait(); err != nil {
				unlock()
				return err
			}
		}
		if c.sc.load(wStop) != 0 {
			c.sc.store(wTotal, i)
			unlock()
			return nil
		}
		if *seq != 2*i+1 {
			c.sc.store(wTotal, i)
			unlock()
			return fmt.Errorf("round %d: seq %d: %w", i, *seq, errSequence)
		}
		*seq = 2*i + 2
		*turn = 0
		signal()
		unlock()
	}
}

// pingCond is the parent's side of the cond protocol.
func pingCond(sc *scratch, lock func(context.Context) error, unlock func(), wait func(context.Context) error, signal func()) pinger {
	seq, turn := sc.u64(wSeq), sc.u64(wTurn)
	return pinger{
		round: func(ctx context.Context, mine uint64) (uint64, error) {
			if err := lock(ctx); err != nil {
				return 0, err
			}
			*seq = mine
			*turn = 1
			signal()
			for *turn != 0 {
				if err := wait(ctx); err != nil {
					unlock()
					return 0, err
				}
			}
			got := *seq
			unlock()
			return got, nil
		},
		stop: func() error {
			if err := lock(context.Background()); err != nil {
				return err
			}
			*turn = 1
			signal()
			unlock()
			return nil
		},
	}
}

// pingPostWait is the parent's side of the post/wait protocol.
func pingPostWait(sc *scratch, post func() error, wait func(context.Context) error) pinger {
	seq := sc.u64(wSeq)
	return pinger{
		round: func(ctx context.Context, mine uint64) (uint64, error) {
			*seq = mine
			if err := post(); err != nil {
				return 0, err
			}
			if err := wait(ctx); err != nil {
				return 0, err
			}
			return *seq, nil
		},
		stop: post,
	}
}

// processshared

func psSemPingPong(ctx context.Context, cfg *config) result {
	t, err := newTeam(ctx, true)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	ping, err1 := ps.NewCountingSemaphore(t.seg, "ping", 0, 0)
	pong, err2 := ps.NewCountingSemaphore(t.seg, "pong", 0, 0)
	if err := errors.Join(err1, err2); err != nil {
		return failed(err)
	}
	if err := t.spawn("ps_sem_pong", 1, ""); err != nil {
		return failed(err)
	}
	p := pingPostWait(t.sc, func() error { return ping.Release(1) }, func(ctx context.Context) error { return pong.Acquire(ctx, 1) })
	p.note = "two processshared Semaphores (initial 0): Release(1) / Acquire(ctx, 1)"
	r := pingpong(ctx, cfg, t, p)
	if v := pong.Value(); v != 0 {
		r.ok = false
		r.notes += fmt.Sprintf("; pong value %d after the run, want 0", v)
	}
	return r
}

// psCondPingPong runs the cond protocol over a processshared Mutex and
// conds Conds: with one, the protocol of c_cond_pingpong (both sides signal
// and wait on the same Cond); with two, each side waits on its own Cond
// and signals the other's.
func psCondPingPong(conds int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		t, err := newTeam(ctx, true)
		if err != nil {
			return failed(err)
		}
		defer t.close()
		m, toParent, toChild, err := psCondObjects(t.seg, conds)
		if err != nil {
			return failed(err)
		}
		if err := t.spawn("ps_cond_pong", 1, strconv.Itoa(conds)); err != nil {
			return failed(err)
		}
		p := pingCond(t.sc, m.LockContext, m.Unlock, toParent.WaitContext, toChild.Signal)
		p.note = "processshared Mutex + one Cond + turn word (LockContext, WaitContext, Signal), the protocol of c_cond_pingpong"
		if conds == 2 {
			p.note = "processshared Mutex + two Conds (one per direction: each side waits on its own, signals the other's) + turn word"
		}
		return pingpong(ctx, cfg, t, p)
	}
}

// psCondObjects returns the mutex and the Cond each side waits on (the
// same one if conds is 1).
func psCondObjects(seg *ps.Segment, conds int) (m *ps.Mutex, toParent, toChild *ps.Cond, err error) {
	if m, err = ps.NewMutex(seg, "m"); err != nil {
		return
	}
	if toParent, err = ps.NewCond(seg, "c", m); err != nil {
		return
	}
	toChild = toParent
	if conds == 2 {
		toChild, err = ps.NewCond(seg, "c2", m)
	}
	return
}

func init() {
	childRoles["ps_sem_pong"] = func(c *childEnv) error {
		ping, err1 := ps.NewCountingSemaphore(c.seg, "ping", 0, 0)
		pong, err2 := ps.NewCountingSemaphore(c.seg, "pong", 0, 0)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return pongPostWait(c, func() error { return ping.Acquire(c.ctx, 1) }, func() error { return pong.Release(1) })
	}
	childRoles["ps_cond_pong"] = func(c *childEnv) error {
		conds, _ := strconv.Atoi(c.arg)
		m, toParent, toChild, err := psCondObjects(c.seg, conds)
		if err != nil {
			return err
		}
		return pongCond(c, func() error { return m.LockContext(c.ctx) }, m.Unlock, func() error { return toChild.WaitContext(c.ctx) }, toParent.Signal)
	}
}

// go-ipc: named objects, created by the parent (O_CREATE|O_EXCL), opened by
// the child, destroyed by the parent at the end. go-ipc has no context
// support: when the child fails, the parent's wait is released by posting
// to the object it waits on.

func goipcEventPingPong(ctx context.Context, cfg *config) result {
	t, err := newTeam(ctx, false)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	base := uniqueName("ev")
	ping, err1 := ipc.NewEvent(base+".ping", os.O_CREATE|os.O_EXCL, 0o600, false)
	pong, err2 := ipc.NewEvent(base+".pong", os.O_CREATE|os.O_EXCL, 0o600, false)
	defer func() {
		if ping != nil {
			ping.Destroy()
		}
		if pong != nil {
			pong.Destroy()
		}
	}()
	if err := errors.Join(err1, err2); err != nil {
		return failed(err)
	}
	stop := context.AfterFunc(t.ctx, pong.Set)
	defer stop()
	if err := t.spawn("goipc_pong", 1, "event:"+base); err != nil {
		return failed(err)
	}
	p := pingPostWait(t.sc, func() error { ping.Set(); return nil }, func(ctx context.Context) error { pong.Wait(); return ctx.Err() })
	p.note = "two go-ipc v0.6.1 Events (futex auto-reset event): Set / Wait"
	return pingpong(ctx, cfg, t, p)
}

func goipcSemPingPong(ctx context.Context, cfg *config) result {
	t, err := newTeam(ctx, false)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	base := uniqueName("sem")
	ping, err1 := ipc.NewSemaphore(base+".ping", os.O_CREATE|os.O_EXCL, 0o600, 0)
	pong, err2 := ipc.NewSemaphore(base+".pong", os.O_CREATE|os.O_EXCL, 0o600, 0)
	defer func() {
		for _, s := range []struct {
			s    *ipc.Semaphore
			name string
		}{{ping, base + ".ping"}, {pong, base + ".pong"}} {
			if s.s != nil {
				s.s.Close()
			}
			ipc.DestroySemaphore(s.name)
			os.Remove(filepathTemp(s.name)) // go-ipc leaves the key file behind when semget fails
		}
	}()
	if err := errors.Join(err1, err2); err != nil {
		return failed(err)
	}
	stop := context.AfterFunc(t.ctx, func() { pong.Signal(1) })
	defer stop()
	if err := t.spawn("goipc_pong", 1, "sem:"+base); err != nil {
		return failed(err)
	}
	p := pingPostWait(t.sc, func() error { ping.Signal(1); return nil }, func(ctx context.Context) error { pong.Wait(); return ctx.Err() })
	p.note = "two go-ipc v0.6.1 Semaphores (SysV semop): Signal(1) / Wait"
	return pingpong(ctx, cfg, t, p)
}

func goipcCondPingPong(ctx context.Context, cfg *config) result {
	t, err := newTeam(ctx, false)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	base := uniqueName("cond")
	m, err := ipc.NewFutexMutex(base+".mtx", os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return failed(err)
	}
	defer m.Destroy()
	c, err := ipc.NewCond(base+".cond", os.O_CREATE|os.O_EXCL, 0o600, m)
	if err != nil {
		return failed(err)
	}
	defer c.Destroy()
	stop := context.AfterFunc(t.ctx, c.Broadcast)
	defer stop()
	if err := t.spawn("goipc_pong", 1, "cond:"+base); err != nil {
		return failed(err)
	}
	p := pingCond(t.sc, func(context.Context) error { m.Lock(); return nil }, m.Unlock,
		func(ctx context.Context) error { c.Wait(); return ctx.Err() }, c.Signal)
	p.note = "go-ipc v0.6.1 FutexMutex + Cond + turn word, the protocol of c_cond_pingpong"
	return pingpong(ctx, cfg, t, p)
}

func init() {
	childRoles["goipc_pong"] = func(c *childEnv) error {
		kind, base, _ := strings.Cut(c.arg, ":")
		switch kind {
		case "event":
			ping, err1 := ipc.NewEvent(base+".ping", 0, 0o600, false)
			pong, err2 := ipc.NewEvent(base+".pong", 0, 0o600, false)
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			defer ping.Close()
			defer pong.Close()
			return pongPostWait(c, func() error { ping.Wait(); return nil }, func() error { pong.Set(); return nil })
		case "sem":
			ping, err1 := ipc.NewSemaphore(base+".ping", 0, 0o600, 0)
			pong, err2 := ipc.NewSemaphore(base+".pong", 0, 0o600, 0)
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			defer ping.Close()
			defer pong.Close()
			return pongPostWait(c, func() error { ping.Wait(); return nil }, func() error { pong.Signal(1); return nil })
		case "cond":
			m, err := ipc.NewFutexMutex(base+".mtx", 0, 0o600)
			if err != nil {
				return err
			}
			defer m.Close()
			cv, err := ipc.NewCond(base+".cond", 0, 0o600, m)
			if err != nil {
				return err
			}
			defer cv.Close()
			return pongCond(c, func() error { m.Lock(); return nil }, m.Unlock, func() error { cv.Wait(); return nil }, cv.Signal)
		}
		return fmt.Errorf("unknown go-ipc ping-pong %q", kind)
	}
}

// goChanPingPong is the in-process floor: two goroutines, two unbuffered
// channels.
func goChanPingPong(ctx context.Context, cfg *config) result {
	ping, pong := make(chan uint64), make(chan uint64)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	var i uint64
	bad := 0
	ns, n, _ := timedLoop(cfg.loopDur(), 64, func(k int) error {
		for range k {
			mine := 2*i + 1
			ping <- mine
			if <-pong != mine+1 {
				bad++
			}
			i++
		}
		return nil
	})
	close(ping)
	_, open := <-pong
	return result{ns, bad == 0 && !open, fmt.Sprintf("unbuffered channel round trip between 2 goroutines (in-process floor), n=%d, sequence checked", n)}
}
