package main

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	ps "github.com/processshared/processshared"
)

// The RWMutex figures: uncontended RLock+RUnlock (next to the Mutex's
// Lock+Unlock, sync.RWMutex and glibc's pthread_rwlock), read throughput
// of 1, 2 and 4 processes each copying a 256-byte record under the read
// lock, and a 90/10 mix of reads and writes of that record. The record
// lies in the scratch page, the same memory for every lock measured.

//go:embed cpeers/rwlock.c
var rwlockC []byte

const (
	wRecord     = 1024 // data: the 32-word record (plain, under the lock)
	wWriterIn   = 1344 // data: a writer is inside (plain, under the lock)
	recordWords = 32
)

func rwFigures() []figure {
	figs := []figure{
		{"ps_rwmutex_rlock_uncontended", psRWMutexUncontended},
		{"go_sync_rwmutex_uncontended", goSyncRWMutexUncontended},
		{"c_pthread_rwlock_uncontended", cRWLock("c_pthread_rwlock_uncontended", "uncontended", 1)},
	}
	for _, p := range []int{1, 2, 4} {
		figs = append(figs,
			figure{fmt.Sprintf("ps_rwmutex_read_%dp", p), psRWMutexTeam(p, false)},
			figure{fmt.Sprintf("nolock_read_%dp", p), psRWMutexTeam(p, false, "nolock")},
			figure{fmt.Sprintf("c_pthread_rwlock_read_%dp", p), cRWLock(fmt.Sprintf("c_pthread_rwlock_read_%dp", p), "read", p)})
	}
	return append(figs,
		figure{"ps_rwmutex_mixed_2p", psRWMutexTeam(2, true)},
		figure{"c_pthread_rwlock_mixed_2p", cRWLock("c_pthread_rwlock_mixed_2p", "mixed", 2)},
		figure{"go_sync_rwmutex_mixed_2g", goSyncRWMutexMixed},
	)
}

func psRWMutexUncontended(ctx context.Context, cfg *config) result {
	seg, err := ps.NewAnonymous(uniqueName("seg"), 1<<20, nil)
	if err != nil {
		return failed(err)
	}
	defer seg.Close()
	rw, err := ps.NewRWMutex(seg, "rw")
	if err != nil {
		return failed(err)
	}
	var cnt int
	ns, n, err := timedLoop(cfg.loopDur(), 1024, func(k int) error {
		for range k {
			rw.RLock()
			cnt++
			rw.RUnlock()
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	ok := cnt == n+1024 && rw.Readers() == 0 && rw.TryLock()
	if ok {
		rw.Unlock()
	}
	return result{ns, ok, fmt.Sprintf("RWMutex RLock+RUnlock pair (+1 increment of a local counter), 1 process, n=%d, counter=%d", n, cnt)}
}

func goSyncRWMutexUncontended(ctx context.Context, cfg *config) result {
	var rw sync.RWMutex
	var cnt int
	ns, n, _ := timedLoop(cfg.loopDur(), 1024, func(k int) error {
		for range k {
			rw.RLock()
			cnt++
			rw.RUnlock()
		}
		return nil
	})
	ok := cnt == n+1024 && rw.TryLock()
	return result{ns, ok, fmt.Sprintf("sync.RWMutex RLock+RUnlock pair (+1 local increment), 1 goroutine (in-process floor), n=%d", n)}
}

// An rwLocker is the read/write lock under test, as rwLoop sees it.
type rwLocker interface {
	RLock()
	RUnlock()
	Lock()
	Unlock()
}

// rwLoop runs reads (and, with mixed, one write in ten) of the record at
// rec under l until stop is raised, and returns the ops, writes, and bad
// observations (a half-written record, or a writer inside during a read).
func rwLoop(l rwLocker, rec *[recordWords]uint64, writerIn *uint64, stop *uint64, mixed bool) (ops, writes, bad uint64) {
	var buf [recordWords]uint64
	for atomic.LoadUint64(stop) == 0 {
		for range 64 {
			ops++
			if mixed && ops%10 == 0 {
				l.Lock()
				*writerIn = 1
				v := rec[0] + 1
				for i := range rec {
					rec[i] = v
				}
				*writerIn = 0
				writes++
				l.Unlock()
				continue
			}
			l.RLock()
			if *writerIn != 0 {
				bad++
			}
			buf = *rec
			for _, w := range buf[1:] {
				if w != buf[0] {
					bad++
					break
				}
			}
			l.RUnlock()
		}
	}
	return ops, writes, bad
}

func (s *scratch) record() *[recordWords]uint64 {
	return (*[recordWords]uint64)(unsafe.Pointer(&s.mem[wRecord]))
}

// nopLocker is no lock at all: the nolock_read figures measure what the
// reads themselves cost, and how the machine scales them, in the same run.
type nopLocker struct{}

func (nopLocker) RLock()   {}
func (nopLocker) RUnlock() {}
func (nopLocker) Lock()    {}
func (nopLocker) Unlock()  {}

// openRW returns the lock of kind ("ps", or "nolock") in seg.
func openRW(kind string, seg *ps.Segment) (rwLocker, error) {
	if kind == "nolock" {
		return nopLocker{}, nil
	}
	return ps.NewRWMutex(seg, "rw")
}

// psRWMutexTeam measures ns per op (wall over the ops of all procs
// processes, this one included) of reads, or of the 90/10 mix, under the
// RWMutex (or, with kind "nolock", under no lock).
func psRWMutexTeam(procs int, mixed bool, kind ...string) func(context.Context, *config) result {
	k := "ps"
	if len(kind) > 0 {
		k = kind[0]
	}
	return func(ctx context.Context, cfg *config) result {
		t, err := newTeam(ctx, true)
		if err != nil {
			return failed(err)
		}
		defer t.close()
		rw, err := openRW(k, t.seg)
		if err != nil {
			return failed(err)
		}
		for i := 1; i < procs; i++ {
			if err := t.spawn("rwlock", i, strconv.FormatBool(mixed)+":"+k); err != nil {
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
		ops, writes, bad := rwLoop(rw, sc.record(), sc.u64(wWriterIn), sc.u64(wStop), mixed)
		if err := sc.awaitAtLeast(t.ctx, wDone, uint64(procs-1)); err != nil {
			return failed(fmt.Errorf("%w (child: %v)", err, t.failure()))
		}
		elapsed := time.Since(start)
		if err := t.wait(); err != nil {
			return failed(err)
		}
		// The children add their ops to wTotal, their writes to wHandoffs
		// and their bad observations to wViol, atomically, once.
		ops += sc.load(wTotal)
		writes += sc.load(wHandoffs)
		bad += sc.load(wViol)
		rec := sc.record()
		ok := bad == 0 && ops > 0 && rec[0] == writes && rec[recordWords-1] == writes && sc.load(wErrors) == 0
		lockName := "no lock (the reads alone)"
		if m, isPS := rw.(*ps.RWMutex); isPS {
			lockName = "processshared RWMutex"
			if ok = ok && m.TryLock(); ok {
				m.Unlock()
			}
		}
		what := "each op reads (copies + checks) a 256-byte record"
		if mixed {
			what = "9 in 10 ops read (copy + check 256 bytes), 1 in 10 rewrites them"
		}
		return result{float64(elapsed.Nanoseconds()) / float64(ops), ok,
			fmt.Sprintf("ns per op (wall/total), %d processes, %s, %s; ops=%d writes=%d bad=%d", procs, lockName, what, ops, writes, bad)}
	}
}

func init() {
	childRoles["rwlock"] = func(c *childEnv) error {
		m, kind, _ := strings.Cut(c.arg, ":")
		mixed, _ := strconv.ParseBool(m)
		rw, err := openRW(kind, c.seg)
		if err != nil {
			return err
		}
		c.sc.add(wReady, 1)
		if err := c.sc.awaitAtLeast(c.ctx, wGo, 1); err != nil {
			return err
		}
		ops, writes, bad := rwLoop(rw, c.sc.record(), c.sc.u64(wWriterIn), c.sc.u64(wStop), mixed)
		c.sc.add(wTotal, ops)
		c.sc.add(wHandoffs, writes)
		c.sc.add(wViol, bad)
		c.sc.add(wDone, 1)
		return nil
	}
}

// goSyncRWMutexMixed is the 90/10 mix with sync.RWMutex and 2 goroutines
// of one process (the in-process floor), on a record of its own.
func goSyncRWMutexMixed(ctx context.Context, cfg *config) result {
	var rw sync.RWMutex
	var rec [recordWords]uint64
	var writerIn, stop uint64
	type out struct{ ops, writes, bad uint64 }
	res := make(chan out, 2)
	start := time.Now()
	for range 2 {
		go func() {
			o, w, b := rwLoop(&rw, &rec, &writerIn, &stop, true)
			res <- out{o, w, b}
		}()
	}
	time.Sleep(cfg.loopDur())
	atomic.StoreUint64(&stop, 1)
	var tot out
	for range 2 {
		o := <-res
		tot.ops, tot.writes, tot.bad = tot.ops+o.ops, tot.writes+o.writes, tot.bad+o.bad
	}
	elapsed := time.Since(start)
	ok := tot.bad == 0 && tot.ops > 0 && rec[0] == tot.writes
	return result{float64(elapsed.Nanoseconds()) / float64(tot.ops), ok,
		fmt.Sprintf("ns per op (wall/total), 2 goroutines, sync.RWMutex, 9 in 10 ops read (copy + check 256 bytes), 1 in 10 rewrites them; ops=%d writes=%d bad=%d", tot.ops, tot.writes, tot.bad)}
}

// cRWLock runs cpeers/rwlock.c in mode with procs processes.
func cRWLock(name, mode string, procs int) func(context.Context, *config) result {
	return func(ctx context.Context, cfg *config) result {
		args := []string{"-n", name, "-m", mode, "-p", strconv.Itoa(procs), "-d", strconv.FormatInt(cfg.loopDur().Nanoseconds(), 10)}
		return runCPeer(ctx, name, "rwlock", rwlockC, args)
	}
}
