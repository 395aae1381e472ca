//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// The soak test's shared state. Children are numbered from 0 in start
// order; per-child arrays are indexed by that number.
const (
	soakMaxChildren = 1 << 15
	soakPermits     = 3
	soakQueueCap    = 8
	soakPayload     = 1024
)

type soakState struct {
	m        *ps.Mutex
	ab       *ps.Array[int64] // a, b: equal whenever m is free and consistent
	commits  *ps.Array[int64] // per child: increments committed under m
	seen     *ps.Array[int64] // [0]: ErrOwnerDead seen on m, [1]: on qm
	sem      *ps.Semaphore
	inuse    *ps.Array[int64] // per child: permits held
	qm       *ps.Mutex
	notEmpty *ps.Cond
	notFull  *ps.Cond
	q        *ps.Array[int64] // produced, consumed, len
	slot     *ps.Slot
	slotSeq  *ps.Array[uint64]
	viol     *ps.Array[int64] // per child: invariant violations seen
	ops      *ps.Array[int64] // per child: operations done
	ctl      *ps.Array[int64] // [0]: stop flag, [1]: children started
}

func openSoak(t *testing.T, s *ps.Segment) *soakState {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	var st soakState
	var err error
	st.m = mutex(t, s, "m")
	st.ab, err = ps.NewArray[int64](s, "ab", 2)
	must(err)
	st.commits, err = ps.NewArray[int64](s, "commits", soakMaxChildren)
	must(err)
	st.seen, err = ps.NewArray[int64](s, "seen", 2)
	must(err)
	st.sem = semaphore(t, s, "sem", soakPermits, soakPermits)
	st.inuse, err = ps.NewArray[int64](s, "inuse", soakMaxChildren)
	must(err)
	st.qm = mutex(t, s, "qm")
	st.notEmpty = cond(t, s, "notEmpty", st.qm)
	st.notFull = cond(t, s, "notFull", st.qm)
	st.q, err = ps.NewArray[int64](s, "q", 3)
	must(err)
	st.slot, err = ps.NewSlot(s, "slot", soakPayload+64)
	must(err)
	st.slotSeq, err = ps.NewArray[uint64](s, "slotSeq", 1)
	must(err)
	st.viol, err = ps.NewArray[int64](s, "viol", soakMaxChildren)
	must(err)
	st.ops, err = ps.NewArray[int64](s, "ops", soakMaxChildren)
	must(err)
	st.ctl, err = ps.NewArray[int64](s, "ctl", 2)
	must(err)
	return &st
}

// repairCounter makes a and b agree with the committed work after a holder
// of m died mid-update. The caller holds m.
func (st *soakState) repairCounter() {
	var sum int64
	for i := range int(ps.AtomicLoad(st.ctl, 1)) {
		sum += st.commits.Load(i)
	}
	st.ab.Store(0, sum)
	st.ab.Store(1, sum)
}

// repairQueue recomputes the queue length after a holder of qm died.
func (st *soakState) repairQueue() {
	st.q.Store(2, st.q.Load(0)-st.q.Load(1))
}

func (st *soakState) violation(me int, format string, args ...any) {
	ps.Add(st.viol, me, 1)
	fmt.Fprintf(os.Stderr, "child %d: violation: %s\n", me, fmt.Sprintf(format, args...))
}

// work runs one soak worker goroutine of child me until the stop flag.
func (st *soakState) work(me int, rng *rand.Rand) {
	payload := make([]byte, soakPayload)
	for ps.AtomicLoad(st.ctl, 0) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		switch rng.IntN(4) {
		case 0: // Mutex: a++, commits[me]++, b = a
			err := st.m.LockContext(ctx)
			switch {
			case errors.Is(err, ps.ErrOwnerDead):
				ps.Add(st.seen, 0, 1)
				st.repairCounter()
				st.m.MarkConsistent()
			case err != nil:
				st.violation(me, "mutex: %v", err)
				cancel()
				continue
			case st.ab.Load(0) != st.ab.Load(1):
				st.violation(me, "mutex: torn state a=%d b=%d without ErrOwnerDead", st.ab.Load(0), st.ab.Load(1))
			}
			st.ab.Store(0, st.ab.Load(0)+1)
			if rng.IntN(4) == 0 {
				time.Sleep(200 * time.Microsecond) // widen the window a kill can tear
			}
			st.commits.Store(me, st.commits.Load(me)+1)
			st.ab.Store(1, st.ab.Load(0))
			st.m.Unlock()
		case 1: // Semaphore of soakPermits
			if err := st.sem.Acquire(ctx, 1); err != nil {
				st.violation(me, "semaphore: %v", err)
				break
			}
			if n := ps.Add(st.inuse, me, 1); n > soakPermits {
				st.violation(me, "semaphore: %d permits in one process", n)
			}
			runtime.Gosched()
			ps.Add(st.inuse, me, -1)
			if err := st.sem.Release(1); err != nil {
				st.violation(me, "semaphore release: %v", err)
			}
		case 2: // bounded queue under qm with two Conds
			err := st.qm.LockContext(ctx)
			if errors.Is(err, ps.ErrOwnerDead) {
				ps.Add(st.seen, 1, 1)
				st.repairQueue()
				st.qm.MarkConsistent()
			} else if err != nil {
				st.violation(me, "queue lock: %v", err)
				break
			}
			if st.q.Load(2) != st.q.Load(0)-st.q.Load(1) {
				st.violation(me, "queue: len %d, produced %d, consumed %d", st.q.Load(2), st.q.Load(0), st.q.Load(1))
			}
			if rng.IntN(2) == 0 {
				for st.q.Load(2) >= soakQueueCap {
					if !st.notFull.WaitTimeout(50 * time.Millisecond) {
						break
					}
				}
				if st.q.Load(2) < soakQueueCap {
					st.q.Store(2, st.q.Load(2)+1)
					runtime.Gosched()
					st.q.Store(0, st.q.Load(0)+1)
					st.notEmpty.Signal()
				}
			} else {
				for st.q.Load(2) == 0 {
					if !st.notEmpty.WaitTimeout(50 * time.Millisecond) {
						break
					}
				}
				if st.q.Load(2) > 0 {
					st.q.Store(2, st.q.Load(2)-1)
					st.q.Store(1, st.q.Load(1)+1)
					st.notFull.Signal()
				}
			}
			st.qm.Unlock()
		case 3: // Slot: a value is all one byte, never a mix
			if rng.IntN(2) == 0 {
				seq := ps.Add(st.slotSeq, 0, 1)
				for i := range payload {
					payload[i] = byte(seq)
				}
				if err := st.slot.StoreBytes(payload); err != nil {
					st.violation(me, "slot store: %v", err)
				}
			} else {
				got, err := st.slot.LoadBytes()
				if err != nil && !errors.Is(err, ps.ErrEmpty) {
					st.violation(me, "slot load: %v", err)
				} else if err == nil && (len(got) != soakPayload || bytes.Count(got, got[:1]) != soakPayload) {
					st.violation(me, "slot: torn value")
				}
			}
		}
		cancel()
		ps.Add(st.ops, me, 1)
	}
}

func countFds(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestSoak runs N processes × M goroutines mixing every primitive while the
// parent kills a random child with SIGKILL every 30–120 ms and starts a new
// one in its place. At the end every invariant must hold: the mutex-guarded
// counter equals the committed work exactly, no torn state was seen without
// ErrOwnerDead, every semaphore permit is back, the queue is consistent, no
// slot read was torn, nothing deadlocked, and the parent leaked no segment,
// descriptor or goroutine.
//
// It runs for 3 s by default (skipped with -short); PS_SOAK=10m runs longer,
// PS_SOAK_PROCS and PS_SOAK_GOROUTINES set N and M (default 4 and 4).
func TestSoak(t *testing.T) {
	if childtest.Role() == "soak" {
		s := inherit(t)
		st := openSoak(t, s)
		me, _ := strconv.Atoi(os.Getenv("ID"))
		gor, _ := strconv.Atoi(os.Getenv("GOROUTINES"))
		var wg sync.WaitGroup
		for g := range gor {
			wg.Go(func() { st.work(me, rand.New(rand.NewPCG(uint64(me), uint64(g)))) })
		}
		wg.Wait()
		return
	}
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	duration := 3 * time.Second
	if d, err := time.ParseDuration(os.Getenv("PS_SOAK")); err == nil {
		duration = d
	}
	procs, gor := envInt("PS_SOAK_PROCS", 4), envInt("PS_SOAK_GOROUTINES", 4)

	fds, goroutines := countFds(t), runtime.NumGoroutine()
	seg := create(t, 8<<20, nil)
	st := openSoak(t, seg)

	type child struct {
		cmd  *exec.Cmd
		done chan error
	}
	start := func() *child {
		id := ps.Add(st.ctl, 1, 1) - 1
		if id >= soakMaxChildren {
			t.Fatal("too many children")
		}
		cmd := segChild(t, seg, "soak", "ID="+strconv.FormatInt(id, 10), "GOROUTINES="+strconv.Itoa(gor))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := &child{cmd, make(chan error, 1)}
		go func() { c.done <- cmd.Wait() }()
		return c
	}
	children := make([]*child, procs)
	for i := range children {
		children[i] = start()
	}
	kills := 0
	for end := time.Now().Add(duration); time.Now().Before(end); {
		time.Sleep(time.Duration(30+rand.IntN(90)) * time.Millisecond)
		i := rand.IntN(len(children))
		children[i].cmd.Process.Signal(syscall.SIGKILL)
		<-children[i].done
		kills++
		children[i] = start()
	}
	ps.AtomicStore(st.ctl, 0, 1)
	for _, c := range children {
		select {
		case err := <-c.done:
			if err != nil {
				t.Errorf("child %d: %v", c.cmd.Process.Pid, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("child %d did not stop: deadlock", c.cmd.Process.Pid)
		}
	}

	// The invariants.
	n := int(ps.AtomicLoad(st.ctl, 1))
	var ops, viol int64
	for i := range n {
		ops += ps.AtomicLoad(st.ops, i)
		viol += ps.AtomicLoad(st.viol, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := st.m.LockContext(ctx)
	if errors.Is(err, ps.ErrOwnerDead) {
		ps.Add(st.seen, 0, 1)
		st.repairCounter()
		st.m.MarkConsistent()
	} else if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for i := range n {
		committed += st.commits.Load(i)
	}
	if a, b := st.ab.Load(0), st.ab.Load(1); a != committed || b != committed {
		t.Errorf("counter a=%d b=%d, committed work %d", a, b, committed)
	}
	st.m.Unlock()
	if err := st.qm.LockContext(ctx); errors.Is(err, ps.ErrOwnerDead) {
		ps.Add(st.seen, 1, 1)
		st.repairQueue()
		st.qm.MarkConsistent()
	} else if err != nil {
		t.Fatal(err)
	}
	if st.q.Load(2) != st.q.Load(0)-st.q.Load(1) || st.q.Load(2) < 0 || st.q.Load(2) > soakQueueCap {
		t.Errorf("queue: len %d, produced %d, consumed %d", st.q.Load(2), st.q.Load(0), st.q.Load(1))
	}
	st.qm.Unlock()
	if !st.sem.TryAcquire(soakPermits) {
		t.Errorf("semaphore: %d of %d permits back after every process stopped", st.sem.Value(), soakPermits)
	} else {
		st.sem.Release(soakPermits)
	}
	deaths := int64(st.m.OwnerDeaths() + st.qm.OwnerDeaths())
	seen := ps.AtomicLoad(st.seen, 0) + ps.AtomicLoad(st.seen, 1)
	// Every death is reported to the next locker; a locker killed before it
	// recorded the report makes the next one see the death again.
	if seen > deaths || deaths > seen+int64(kills) {
		t.Errorf("owner deaths %d, reported %d, kills %d", deaths, seen, kills)
	}
	if viol != 0 {
		t.Errorf("%d invariant violations (see stderr)", viol)
	}
	t.Logf("soak: %v, %d processes x %d goroutines, %d children in all, %d kills, %d operations, %d committed increments, %d owner deaths (%d reported), queue %d/%d, %d violations",
		duration, procs, gor, n, kills, ops, committed, deaths, seen, st.q.Load(0), st.q.Load(1), viol)

	seg.Close()
	if err := ps.Remove(seg.Name()); err != nil {
		t.Error(err)
	}
	time.Sleep(100 * time.Millisecond) // let exited children's goroutines finish
	if got := countFds(t); got > fds {
		t.Errorf("descriptors: %d before, %d after", fds, got)
	}
	if got := runtime.NumGoroutine(); got > goroutines+1 {
		t.Errorf("goroutines: %d before, %d after", goroutines, got)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
