package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"

	ps "github.com/processshared/processshared"
)

// Owner death: a child locks the Mutex, waits until the parent is about to
// block in LockContext, gives it 2 ms to fall asleep in the kernel, writes a
// CLOCK_MONOTONIC timestamp into shared memory and SIGKILLs itself. The
// parent reads the clock as soon as LockContext returns. The figure is the
// median of those latencies, as for c_robust_owner_death_sigkill.
//
// Shared words: an Array[int64] in the segment (processshared's own atomic
// functions): [0] the child holds the lock, [1] the parent is about to lock,
// [2] the child's last timestamp.
func psOwnerDeath(ctx context.Context, cfg *config) result {
	trials := pick(cfg, 21, 5)
	seg, err := ps.NewAnonymous(uniqueName("seg"), 1<<20, nil)
	if err != nil {
		return failed(err)
	}
	defer seg.Close()
	m, err := ps.NewMutex(seg, "m")
	if err != nil {
		return failed(err)
	}
	a, err := ps.NewArray[int64](seg, "od", 4)
	if err != nil {
		return failed(err)
	}
	var lat []int64
	bad := 0
	var problems []string
	problem := func(format string, args ...any) {
		bad++
		if len(problems) < 3 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for trial := range trials {
		for i := range 3 {
			ps.AtomicStore(a, i, 0)
		}
		kid, err := spawn(ctx, "owner_death", trial+1, "", nil, seg, nil)
		if err != nil {
			return failed(err)
		}
		for ps.AtomicLoad(a, 0) == 0 {
			if ctx.Err() != nil || kid.exited() {
				kid.cmd.Process.Kill()
				return failed(fmt.Errorf("trial %d: the child never held the lock (child: %v)", trial, kid.wait(ctx)))
			}
			time.Sleep(50 * time.Microsecond)
		}
		ps.AtomicStore(a, 1, 1)
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = m.LockContext(lctx)
		t1 := mono()
		cancel()
		tdie := ps.AtomicLoad(a, 2)
		var ode *ps.OwnerDeadError
		switch {
		case errors.As(err, &ode) && errors.Is(err, ps.ErrOwnerDead):
			lat = append(lat, t1-tdie)
			if ode.DeadPID != kid.cmd.Process.Pid {
				problem("trial %d: DeadPID %d, want %d", trial, ode.DeadPID, kid.cmd.Process.Pid)
			}
			if m.Consistent() {
				problem("trial %d: Consistent() after the owner died", trial)
			}
			m.MarkConsistent()
			m.Unlock()
		case err == nil:
			problem("trial %d: LockContext returned nil, want ErrOwnerDead", trial)
			m.Unlock()
		default:
			problem("trial %d: LockContext: %v", trial, err)
		}
		werr := kid.wait(ctx)
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			problem("trial %d: child status %v, want killed by SIGKILL", trial, werr)
		}
		if tdie == 0 {
			problem("trial %d: no timestamp from the child", trial)
		}
		if !m.TryLock() {
			problem("trial %d: the mutex is not free after recovery", trial)
		} else {
			m.Unlock()
		}
	}
	if m.OwnerDeaths() != len(lat) {
		problem("OwnerDeaths()=%d, want %d", m.OwnerDeaths(), len(lat))
	}
	if len(lat) == 0 {
		return result{value: nanValue(), notes: fmt.Sprint("no trial succeeded: ", problems)}
	}
	slices.Sort(lat)
	notes := fmt.Sprintf("median latency holder syscall.Kill(self, SIGKILL) -> parent's LockContext returns ErrOwnerDead (kernel robust list of the holder's keeper thread); trials=%d min=%d max=%d ns; DeadPID, Consistent, MarkConsistent, child status, OwnerDeaths checked", len(lat), lat[0], lat[len(lat)-1])
	if bad > 0 {
		notes += fmt.Sprintf("; %d problems: %v", bad, problems)
	}
	return result{float64(lat[len(lat)/2]), bad == 0 && len(lat) == trials, notes}
}

func init() {
	childRoles["owner_death"] = func(c *childEnv) error {
		m, err := ps.NewMutex(c.seg, "m")
		if err != nil {
			return err
		}
		a, err := ps.NewArray[int64](c.seg, "od", 4)
		if err != nil {
			return err
		}
		if err := m.LockContext(c.ctx); err != nil {
			return err
		}
		ps.AtomicStore(a, 0, 1)
		for ps.AtomicLoad(a, 1) == 0 {
			if c.ctx.Err() != nil {
				return c.ctx.Err()
			}
			time.Sleep(20 * time.Microsecond)
		}
		time.Sleep(2 * time.Millisecond) // the parent spins, then sleeps in the kernel
		ps.AtomicStore(a, 2, mono())
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // dies holding the lock
	}
}

// exited reports whether the child has exited (without consuming its status
// for wait).
func (c *child) exited() bool {
	if c.got {
		return true
	}
	select {
	case c.err = <-c.done:
		c.got = true
		return true
	default:
		return false
	}
}

func nanValue() float64 { var z float64; return z / z }

// Broadcast: 8 child processes wait on a Cond; the parent, holding the
// mutex, reads the clock, calls Broadcast and waits (on a second Cond) until
// all 8 have returned from Wait. The last child to return reads the clock.
// The figure is the median time from before Broadcast until the 8th waiter
// holds the mutex again (the waiters re-take the mutex one after another,
// as they must).
//
// Under the mutex: gen (bumped by each broadcast), waiting (waiters that
// registered since the last broadcast), woken (waiters that returned), t1.
func psCondBroadcast(ctx context.Context, cfg *config) result {
	const procs = 8
	t, err := newTeam(ctx, true)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	m, err := ps.NewMutex(t.seg, "m")
	if err != nil {
		return failed(err)
	}
	c, err1 := ps.NewCond(t.seg, "c", m)
	back, err2 := ps.NewCond(t.seg, "back", m)
	if err := errors.Join(err1, err2); err != nil {
		return failed(err)
	}
	for i := 1; i <= procs; i++ {
		if err := t.spawn("bcast", i, strconv.Itoa(procs)); err != nil {
			return failed(err)
		}
	}
	sc := t.sc
	gen, waiting, woken, t1 := sc.u64(wGen), sc.u64(wWaiting), sc.u64(wWoken), sc.u64(wT1)
	if err := m.LockContext(t.ctx); err != nil {
		return failed(err)
	}
	locked := true
	defer func() {
		if locked {
			m.Unlock()
		}
	}()
	warm := 3
	minRounds := pick(cfg, 50, 10)
	var lat []int64
	bad := 0
	start := time.Now()
	for r := 0; ; r++ {
		for *waiting < procs {
			if err := back.WaitContext(t.ctx); err != nil {
				return failed(fmt.Errorf("round %d: waiting for the waiters (%d/%d): %w (child: %v)", r, *waiting, procs, err, t.failure()))
			}
		}
		if r >= warm+minRounds && time.Since(start) >= cfg.loopDur() {
			break
		}
		*waiting, *woken = 0, 0
		*gen++
		t0 := mono()
		c.Broadcast()
		for *woken < procs {
			if err := back.WaitContext(t.ctx); err != nil {
				return failed(fmt.Errorf("round %d: woken %d/%d: %w (child: %v)", r, *woken, procs, err, t.failure()))
			}
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
	c.Broadcast()
	m.Unlock()
	locked = false
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
	return result{float64(lat[len(lat)/2]), ok,
		fmt.Sprintf("median time from Broadcast until all %d waiting processes have returned from Wait (holding the mutex in turn); rounds=%d mean=%.0f min=%d max=%d ns; every waiter woken exactly once per broadcast (%d/%d wake-ups)",
			procs, len(lat), float64(sum)/float64(len(lat)), lat[0], lat[len(lat)-1], childRounds, rounds*procs)}
}

func init() {
	childRoles["bcast"] = func(ch *childEnv) error {
		procs, _ := strconv.ParseUint(ch.arg, 10, 64)
		m, err := ps.NewMutex(ch.seg, "m")
		if err != nil {
			return err
		}
		c, err1 := ps.NewCond(ch.seg, "c", m)
		back, err2 := ps.NewCond(ch.seg, "back", m)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		sc := ch.sc
		gen, waiting, woken, t1 := sc.u64(wGen), sc.u64(wWaiting), sc.u64(wWoken), sc.u64(wT1)
		if err := m.LockContext(ch.ctx); err != nil {
			return err
		}
		defer m.Unlock()
		var rounds uint64
		for {
			*waiting++
			if *waiting == procs {
				back.Signal()
			}
			g := *gen
			for *gen == g {
				if err := c.WaitContext(ch.ctx); err != nil {
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
				back.Signal()
			}
		}
	}
}

// goProcessDeath puts ps_owner_death_sigkill in scale: the same kind of
// child (this program, a Go process with several threads) writes the clock
// into the scratch page and SIGKILLs itself; the parent reads the clock when
// wait4 returns, i.e. when the whole process is gone. No lock is involved.
// The kernel walks a thread's robust list when that thread exits, part way
// through this teardown.
func goProcessDeath(ctx context.Context, cfg *config) result {
	trials := pick(cfg, 21, 5)
	sc, err := newScratch()
	if err != nil {
		return failed(err)
	}
	defer sc.close()
	var lat []int64
	bad := 0
	for trial := range trials {
		sc.store(wStamp, 0)
		kid, err := spawn(ctx, "die", trial+1, "", sc, nil, nil)
		if err != nil {
			return failed(err)
		}
		werr := kid.wait(ctx)
		t1 := mono()
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL || sc.load(wStamp) == 0 {
			bad++
			continue
		}
		lat = append(lat, t1-int64(sc.load(wStamp)))
	}
	if len(lat) == 0 {
		return result{value: nanValue(), notes: "no trial succeeded"}
	}
	slices.Sort(lat)
	return result{float64(lat[len(lat)/2]), bad == 0,
		fmt.Sprintf("median time from a Go child's syscall.Kill(self, SIGKILL) until the parent's wait4 returns (the whole teardown of a Go process and its threads, no lock involved: ps_owner_death_sigkill's child dies the same way); trials=%d min=%d max=%d ns", len(lat), lat[0], lat[len(lat)-1])}
}

func init() {
	childRoles["die"] = func(c *childEnv) error {
		time.Sleep(2 * time.Millisecond) // as the owner_death child, let the runtime settle
		c.sc.store(wStamp, uint64(mono()))
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
