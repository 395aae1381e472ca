package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ipc "bitbucket.org/avd/go-ipc/sync"
	ps "github.com/processshared/processshared"
)

// Threads: a fresh child process starts 1000 goroutines that block on one
// object, checks that all of them are blocked (goroutine dump: every worker
// parked or in a system call, none past the object), reads "Threads:" from
// /proc/self/status, then releases them and checks that all complete. The
// figure is that thread count; the process's count before the goroutines
// started is in the notes. A goroutine blocked in FUTEX_WAIT holds an OS
// thread, so a library whose every waiter sleeps in the kernel needs one
// thread per blocked goroutine.
//
// A fresh process, because the Go runtime never gives back the threads an
// earlier workload made it start.

const blockedGoroutines = 1000

// threadsFigure runs the threads child for kind and reports its findings,
// which the child leaves in the scratch page.
func threadsFigure(kind string) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		t, err := newTeam(ctx, false)
		if err != nil {
			return failed(err)
		}
		defer t.close()
		if err := t.spawn("threads", 1, kind); err != nil {
			return failed(err)
		}
		werr := t.wait()
		sc := t.sc
		threads, before, blocked, done := sc.load(wTotal), sc.load(wStamp), sc.load(wFlag), sc.load(wDone)
		r := result{
			value: float64(threads),
			ok:    werr == nil && blocked == blockedGoroutines && done == blockedGoroutines && sc.load(wErrors) == 0,
			notes: fmt.Sprintf("unit=threads: OS threads of a process while %d goroutines are blocked on %s (%s); %d threads before they started; %d/%d verified blocked, then %d/%d completed",
				blockedGoroutines, threadsWhat[kind], threadsOwner[kind], before, blocked, blockedGoroutines, done, blockedGoroutines),
		}
		if werr != nil {
			r.notes += "; child: " + werr.Error()
		}
		if threads == 0 {
			r.value = nanValue()
		}
		return r
	}
}

var threadsWhat = map[string]string{
	"ps_mutex": "one processshared Mutex (Lock)",
	"ps_sem":   "one processshared Semaphore of 0 permits (Acquire(ctx, 1))",
	"ps_cond":  "one processshared Cond (Wait)",
	"goipc":    "one go-ipc v0.6.1 FutexMutex (Lock)",
	"go_sync":  "one sync.Mutex (Lock)",
}

var threadsOwner = map[string]string{
	"ps_mutex": "held by the same process; then Unlock and each goroutine locks and unlocks in turn",
	"ps_sem":   "then Release(1000)",
	"ps_cond":  "then Broadcast; each goroutine re-takes the mutex in turn",
	"goipc":    "held by the same process; then Unlock and each goroutine locks and unlocks in turn",
	"go_sync":  "in-process floor; held by the same process, then Unlock",
}

// procThreads returns the "Threads:" line of /proc/self/status.
func procThreads() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// blockedWorkers counts the goroutines running a function whose name starts
// with main.worker, and those of them that are blocked (not running or
// runnable), from a dump of all goroutines.
func blockedWorkers() (workers, blocked int) {
	buf := make([]byte, 64<<20)
	n := runtime.Stack(buf, true)
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if !strings.Contains(g, "main.worker") {
			continue
		}
		workers++
		hdr, _, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(hdr, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		if state != "running" && state != "runnable" {
			blocked++
		}
	}
	return workers, blocked
}

// The workers. Each increments started before it blocks and passed after.
var started, passed atomic.Int64

func workerPSMutex(m *ps.Mutex, wg *sync.WaitGroup, errs *atomic.Int64) {
	defer wg.Done()
	started.Add(1)
	if err := m.LockContext(context.Background()); err != nil {
		errs.Add(1)
		return
	}
	passed.Add(1)
	m.Unlock()
}

func workerPSSem(s *ps.Semaphore, wg *sync.WaitGroup, errs *atomic.Int64) {
	defer wg.Done()
	started.Add(1)
	if err := s.Acquire(context.Background(), 1); err != nil {
		errs.Add(1)
		return
	}
	passed.Add(1)
}

func workerPSCond(m *ps.Mutex, c *ps.Cond, ready *bool, waiting *int, wg *sync.WaitGroup, errs *atomic.Int64) {
	defer wg.Done()
	started.Add(1)
	if err := m.LockContext(context.Background()); err != nil {
		errs.Add(1)
		return
	}
	*waiting++
	for !*ready {
		if err := c.WaitContext(context.Background()); err != nil {
			errs.Add(1)
			break
		}
	}
	passed.Add(1)
	m.Unlock()
}

func workerGoipc(m *ipc.FutexMutex, wg *sync.WaitGroup) {
	defer wg.Done()
	started.Add(1)
	m.Lock()
	passed.Add(1)
	m.Unlock()
}

func workerSync(m *sync.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	started.Add(1)
	m.Lock()
	passed.Add(1)
	m.Unlock()
}

func init() {
	childRoles["threads"] = threadsChild
}

func threadsChild(c *childEnv) error {
	sc := c.sc
	var (
		wg      sync.WaitGroup
		errs    atomic.Int64
		release func()
		cleanup = func() {}
		check   = func() error { return nil }
	)
	var seg *ps.Segment
	if strings.HasPrefix(c.arg, "ps_") {
		var err error
		if seg, err = ps.NewAnonymous(uniqueName("seg"), 1<<20, nil); err != nil {
			return err
		}
		defer seg.Close()
	}
	sc.store(wStamp, procThreads())
	wg.Add(blockedGoroutines)
	switch c.arg {
	case "ps_mutex":
		m, err := ps.NewMutex(seg, "m")
		if err != nil {
			return err
		}
		m.Lock()
		for range blockedGoroutines {
			go workerPSMutex(m, &wg, &errs)
		}
		release = m.Unlock
	case "ps_sem":
		s, err := ps.NewCountingSemaphore(seg, "s", 0, 0)
		if err != nil {
			return err
		}
		for range blockedGoroutines {
			go workerPSSem(s, &wg, &errs)
		}
		release = func() {
			if err := s.Release(blockedGoroutines); err != nil {
				errs.Add(1)
			}
		}
		check = func() error {
			if v := s.Value(); v != 0 {
				return fmt.Errorf("semaphore value %d after all acquired, want 0", v)
			}
			return nil
		}
	case "ps_cond":
		m, err := ps.NewMutex(seg, "m")
		if err != nil {
			return err
		}
		cv, err := ps.NewCond(seg, "c", m)
		if err != nil {
			return err
		}
		var ready bool
		var waiting int
		for range blockedGoroutines {
			go workerPSCond(m, cv, &ready, &waiting, &wg, &errs)
		}
		// All registered in Wait: each counted itself under the mutex
		// before Wait released it.
		deadline := time.Now().Add(30 * time.Second)
		for {
			m.Lock()
			w := waiting
			m.Unlock()
			if w == blockedGoroutines {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("only %d goroutines reached Wait", w)
			}
			time.Sleep(time.Millisecond)
		}
		release = func() {
			m.Lock()
			ready = true
			cv.Broadcast()
			m.Unlock()
		}
	case "goipc":
		name := uniqueName("mtx")
		m, err := ipc.NewFutexMutex(name, os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		cleanup = func() { m.Destroy() }
		m.Lock()
		for range blockedGoroutines {
			go workerGoipc(m, &wg)
		}
		release = m.Unlock
	case "go_sync":
		var m sync.Mutex
		m.Lock()
		for range blockedGoroutines {
			go workerSync(&m, &wg)
		}
		release = m.Unlock
	default:
		return fmt.Errorf("unknown kind %q", c.arg)
	}
	defer cleanup()

	// Wait until every worker is blocked, let the runtime settle (sysmon
	// hands off Ps of threads stuck in system calls), and check again.
	deadline := time.Now().Add(30 * time.Second)
	var workers, blocked int
	for {
		workers, blocked = blockedWorkers()
		if workers == blockedGoroutines && blocked == blockedGoroutines && started.Load() == blockedGoroutines {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d workers, %d blocked after 30s", workers, blocked)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	threads := procThreads()
	workers, blocked = blockedWorkers()
	if passed.Load() == 0 && workers == blockedGoroutines {
		sc.store(wFlag, uint64(blocked))
	}
	sc.store(wTotal, threads)
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return fmt.Errorf("only %d of %d goroutines completed", passed.Load(), blockedGoroutines)
	}
	sc.store(wDone, uint64(passed.Load()))
	if errs.Load() != 0 {
		return fmt.Errorf("%d workers failed", errs.Load())
	}
	return check()
}
