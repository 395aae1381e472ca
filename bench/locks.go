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
	"github.com/gofrs/flock"
	ps "github.com/processshared/processshared"
)

// An xlock is a cross-process lock under test, seen the same way for every
// library: the contended workload calls it through this interface, so each
// pays the same indirect call.
type xlock interface {
	lock(ctx context.Context) error
	unlock() error
	close() error
}

// psMutex is a processshared Mutex.
type psMutex struct{ m *ps.Mutex }

func (l psMutex) lock(ctx context.Context) error { return l.m.LockContext(ctx) }
func (l psMutex) unlock() error                  { l.m.Unlock(); return nil }
func (l psMutex) close() error                   { return nil }

// psSem is a processshared Semaphore of one permit used as a lock.
type psSem struct{ s *ps.Semaphore }

func (l psSem) lock(ctx context.Context) error { return l.s.Acquire(ctx, 1) }
func (l psSem) unlock() error                  { return l.s.Release(1) }
func (l psSem) close() error                   { return nil }

// goipcMutex is a go-ipc FutexMutex (named, in /dev/shm). It has no context
// support and panics on errors.
type goipcMutex struct {
	m       *ipc.FutexMutex
	name    string
	creator bool
}

func (l *goipcMutex) lock(context.Context) error { l.m.Lock(); return nil }
func (l *goipcMutex) unlock() error              { l.m.Unlock(); return nil }
func (l *goipcMutex) close() error {
	if l.creator {
		return l.m.Destroy()
	}
	return l.m.Close()
}

// fileLock is a gofrs/flock lock (flock(2) on a file in the temporary
// directory); each process has its own open file description.
type fileLock struct {
	f       *flock.Flock
	creator bool
}

func (l *fileLock) lock(context.Context) error { return l.f.Lock() }
func (l *fileLock) unlock() error              { return l.f.Unlock() }
func (l *fileLock) close() error {
	err := l.f.Close()
	if l.creator {
		if rerr := os.Remove(l.f.Path()); err == nil {
			err = rerr
		}
	}
	return err
}

// openLock makes the lock of the given kind: in the parent (create set), a
// new one; in a child, the parent's. name is the lock's name (in seg, in
// /dev/shm, or a file path).
func openLock(kind, name string, seg *ps.Segment, create bool) (xlock, error) {
	switch kind {
	case "ps_mutex":
		m, err := ps.NewMutex(seg, name)
		return psMutex{m}, err
	case "ps_sem", "ps_sem_mp128", "ps_sem_mp1024", "ps_sem_mp65536":
		s, err := ps.NewSemaphore(seg, name, 1, 1)
		return psSem{s}, err
	case "ps_csem", "ps_csem_mp128", "ps_csem_mp1024", "ps_csem_mp65536":
		s, err := ps.NewCountingSemaphore(seg, name, 1, 1)
		return psSem{s}, err
	case "goipc":
		flag := 0
		if create {
			flag = os.O_CREATE | os.O_EXCL
		}
		m, err := ipc.NewFutexMutex(name, flag, 0o600)
		if err != nil {
			return nil, err
		}
		return &goipcMutex{m: m, name: name, creator: create}, nil
	case "flock":
		return &fileLock{f: flock.New(name), creator: create}, nil
	}
	return nil, fmt.Errorf("unknown lock kind %q", kind)
}

// contendLoop increments the shared counter under l until the parent raises
// the stop word, and returns the number of increments. Around each increment
// it records the holder in the owner word and counts violations (another
// holder seen inside the critical section) and handoffs (the lock changing
// process). The words are plain memory: only l orders them.
func contendLoop(ctx context.Context, l xlock, sc *scratch, me uint64) (uint64, error) {
	cnt, owner, last := sc.u64(wCounter), sc.u64(wOwner), sc.u64(wLast)
	viol, hand, stop := sc.u64(wViol), sc.u64(wHandoffs), sc.u64(wStop)
	var n uint64
	for atomic.LoadUint64(stop) == 0 {
		for range 32 {
			if err := l.lock(ctx); err != nil {
				return n, err
			}
			if *owner != 0 {
				*viol++
			}
			*owner = me
			if *last != me {
				*hand++
				*last = me
			}
			*cnt++
			if *owner != me {
				*viol++
			}
			*owner = 0
			if err := l.unlock(); err != nil {
				return n, err
			}
		}
		n += 32
	}
	return n, nil
}

// contended measures ns per increment of a non-atomic shared counter by
// procs processes (this one and procs-1 children) under a lock of kind.
func contended(ctx context.Context, cfg *config, kind string, procs int) result {
	t, err := newTeamMax(ctx, strings.HasPrefix(kind, "ps_"), maxProcsOf(kind))
	if err != nil {
		return failed(err)
	}
	defer t.close()
	name := "lock"
	switch kind {
	case "goipc":
		name = uniqueName("mtx")
	case "flock":
		name = filepathTemp(uniqueName("flock"))
	}
	l, err := openLock(kind, name, t.seg, true)
	if err != nil {
		return failed(err)
	}
	defer l.close()
	for i := 1; i < procs; i++ {
		if err := t.spawn("contend", i, kind+":"+name); err != nil {
			return failed(err)
		}
	}
	sc := t.sc
	if err := sc.awaitAtLeast(t.ctx, wReady, uint64(procs-1)); err != nil {
		return failed(fmt.Errorf("%w (child errors: %v)", err, t.failure()))
	}
	start := time.Now()
	sc.store(wGo, 1)
	stop := time.AfterFunc(cfg.loopDur(), func() { sc.store(wStop, 1) })
	defer stop.Stop()
	n, err := contendLoop(t.ctx, l, sc, 1)
	if err != nil {
		sc.store(wStop, 1)
		return failed(fmt.Errorf("parent: %w (child: %v)", err, t.failure()))
	}
	if err := sc.awaitAtLeast(t.ctx, wDone, uint64(procs-1)); err != nil {
		return failed(fmt.Errorf("%w (child: %v)", err, t.failure()))
	}
	elapsed := time.Since(start)
	if err := t.wait(); err != nil {
		return failed(err)
	}
	total := n + sc.load(wTotal)
	cnt, viol, hand := *sc.u64(wCounter), *sc.u64(wViol), *sc.u64(wHandoffs)
	r := result{
		value: float64(elapsed.Nanoseconds()) / float64(total),
		ok:    cnt == total && viol == 0 && sc.load(wErrors) == 0 && total > 0,
	}
	r.notes = fmt.Sprintf("ns per increment (wall/total), %d processes, %s; counter=%d/%d violations=%d handoffs=%d", procs, lockNote[kind], cnt, total, viol, hand)
	// The lock must be free and usable afterwards.
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.lock(ctx2); err != nil {
		r.ok = false
		r.notes += "; relock after the run failed: " + err.Error()
	} else if err := l.unlock(); err != nil {
		r.ok = false
		r.notes += "; unlock after the run failed: " + err.Error()
	}
	return r
}

// failure returns the first failure of a child that has exited, if any,
// without waiting for the others.
func (t *team) failure() error {
	for _, k := range t.kids {
		select {
		case k.err = <-k.done:
			k.got = true
		default:
		}
		if k.got && k.err != nil {
			return k.err
		}
	}
	return nil
}

var lockNote = map[string]string{
	"ps_mutex": "processshared Mutex (LockContext/Unlock)",
	"ps_sem":   "processshared Semaphore(1, max 1) as a lock (Acquire/Release)",
	"ps_csem":  "processshared counting Semaphore(1, max 1) as a lock (Acquire/Release)",

	"ps_sem_mp128":    "processshared Semaphore(1, max 1) as a lock, MaxProcesses 128",
	"ps_sem_mp1024":   "processshared Semaphore(1, max 1) as a lock, MaxProcesses 1024",
	"ps_sem_mp65536":  "processshared Semaphore(1, max 1) as a lock, MaxProcesses 65536 (MaxProcessesLimit)",
	"ps_csem_mp128":   "processshared counting Semaphore(1, max 1) as a lock, MaxProcesses 128",
	"ps_csem_mp1024":  "processshared counting Semaphore(1, max 1) as a lock, MaxProcesses 1024",
	"ps_csem_mp65536": "processshared counting Semaphore(1, max 1) as a lock, MaxProcesses 65536 (MaxProcessesLimit)",
	"goipc":           "go-ipc v0.6.1 FutexMutex (named, /dev/shm)",
	"flock":           "gofrs/flock v0.13.2 Lock/Unlock (flock(2); it opens the file on every Lock and closes it on every Unlock)",
}

func init() {
	childRoles["contend"] = func(c *childEnv) error {
		kind, name, _ := strings.Cut(c.arg, ":")
		l, err := openLock(kind, name, c.seg, false)
		if err != nil {
			return err
		}
		defer l.close()
		c.sc.add(wReady, 1)
		if err := c.sc.awaitAtLeast(c.ctx, wGo, 1); err != nil {
			return err
		}
		n, err := contendLoop(c.ctx, l, c.sc, uint64(c.id+1))
		c.sc.add(wTotal, n)
		c.sc.add(wDone, 1)
		return err
	}
}

// timedLoop calls body(chunk) until d has passed, after one untimed call,
// and returns ns per iteration and the iterations timed.
func timedLoop(d time.Duration, chunk int, body func(k int) error) (float64, int, error) {
	if err := body(chunk); err != nil {
		return 0, 0, err
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if err := body(chunk); err != nil {
			return 0, n, err
		}
		n += chunk
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n), n, nil
}

// uncontended figures: one process, nobody else using the lock.

func psMutexUncontended(ctx context.Context, cfg *config) result {
	seg, err := ps.NewAnonymous(uniqueName("seg"), 1<<20, nil)
	if err != nil {
		return failed(err)
	}
	defer seg.Close()
	m, err := ps.NewMutex(seg, "m")
	if err != nil {
		return failed(err)
	}
	var cnt int
	ns, n, err := timedLoop(cfg.loopDur(), 1024, func(k int) error {
		for range k {
			m.Lock()
			cnt++
			m.Unlock()
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	ok := cnt == n+1024 && !m.Locked() && m.TryLock()
	if ok {
		m.Unlock()
	}
	return result{ns, ok, fmt.Sprintf("Mutex Lock+Unlock pair (+1 increment of a local counter), 1 process, n=%d, counter=%d", n, cnt)}
}

// maxProcsOf returns the MaxProcesses a contended kind asks for ("_mpN"),
// or 0 for the default.
func maxProcsOf(kind string) int {
	if _, n, ok := strings.Cut(kind, "_mp"); ok {
		v, _ := strconv.Atoi(n)
		return v
	}
	return 0
}

func psSemUncontended(ctx context.Context, cfg *config) result {
	return semUncontended(ctx, cfg, ps.NewSemaphore, "Semaphore")
}

// psCountingSemUncontended is ps_csem_uncontended: the loop of
// ps_sem_uncontended on a semaphore of counting permits.
func psCountingSemUncontended(ctx context.Context, cfg *config) result {
	return semUncontended(ctx, cfg, ps.NewCountingSemaphore, "counting Semaphore")
}

func semUncontended(ctx context.Context, cfg *config, open func(*ps.Segment, string, int, int) (*ps.Semaphore, error), what string) result {
	seg, err := ps.NewAnonymous(uniqueName("seg"), 1<<20, nil)
	if err != nil {
		return failed(err)
	}
	defer seg.Close()
	s, err := open(seg, "s", 1, 1)
	if err != nil {
		return failed(err)
	}
	var cnt int
	ns, n, err := timedLoop(cfg.loopDur(), 1024, func(k int) error {
		for range k {
			if err := s.Acquire(ctx, 1); err != nil {
				return err
			}
			cnt++
			if err := s.Release(1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	ok := cnt == n+1024 && s.Value() == 1
	return result{ns, ok, fmt.Sprintf("%s(1, max 1) Acquire(ctx,1)+Release(1) pair, 1 process, n=%d, counter=%d, value after=%d", what, n, cnt, s.Value())}
}

func psCondUncontended(ctx context.Context, cfg *config) result {
	seg, err := ps.NewAnonymous(uniqueName("seg"), 1<<20, nil)
	if err != nil {
		return failed(err)
	}
	defer seg.Close()
	m, err := ps.NewMutex(seg, "m")
	if err != nil {
		return failed(err)
	}
	c, err := ps.NewCond(seg, "c", m)
	if err != nil {
		return failed(err)
	}
	var cnt int
	ns, n, err := timedLoop(cfg.loopDur(), 1024, func(k int) error {
		for range k {
			m.Lock()
			cnt++
			c.Signal()
			m.Unlock()
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	// A Signal with no waiter must not be remembered: a Wait now times out.
	m.Lock()
	woken := c.WaitTimeout(20 * time.Millisecond)
	m.Unlock()
	ok := cnt == n+1024 && !woken && !m.Locked()
	return result{ns, ok, fmt.Sprintf("Lock + Signal (no waiter) + Unlock, 1 process, n=%d; a later WaitTimeout(20ms) timed out as it must (no stray wake-up): %v", n, !woken)}
}

func goipcMutexUncontended(ctx context.Context, cfg *config) result {
	l, err := openLock("goipc", uniqueName("mtx"), nil, true)
	if err != nil {
		return failed(err)
	}
	defer l.close()
	m := l.(*goipcMutex).m
	var cnt int
	ns, n, err := timedLoop(cfg.loopDur(), 1024, func(k int) error {
		for range k {
			m.Lock()
			cnt++
			m.Unlock()
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	ok := cnt == n+1024 && m.TryLock()
	if ok {
		m.Unlock()
	}
	return result{ns, ok, fmt.Sprintf("go-ipc v0.6.1 FutexMutex Lock+Unlock pair (+1 local increment), 1 process, n=%d", n)}
}

func flockUncontended(ctx context.Context, cfg *config) result {
	l, err := openLock("flock", filepathTemp(uniqueName("flock")), nil, true)
	if err != nil {
		return failed(err)
	}
	defer l.close()
	f := l.(*fileLock).f
	var cnt int
	ns, n, err := timedLoop(cfg.loopDur(), 64, func(k int) error {
		for range k {
			if err := f.Lock(); err != nil {
				return err
			}
			cnt++
			if err := f.Unlock(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	ok := cnt == n+64
	if got, err := f.TryLock(); err != nil || !got {
		ok = false
	} else {
		f.Unlock()
	}
	return result{ns, ok, fmt.Sprintf("gofrs/flock v0.13.2 Lock+Unlock pair (open, flock LOCK_EX, flock LOCK_UN, close: it reopens the file for every Lock), 1 process, n=%d", n)}
}

func filepathTemp(name string) string { return os.TempDir() + "/" + name }

var errSequence = errors.New("sequence number out of order")
