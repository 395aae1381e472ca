//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestCloseRace: Close races with every kind of call on the Segment's
// objects, and loses or wins cleanly. Each round opens a new handle on a
// segment whose objects exist, starts a goroutine per kind of call, each
// looping over its calls, and closes the handle from two goroutines at once
// at a random instant. A call that overlaps Close completes as on an open
// segment or reports the closed one; every call that starts after Close
// returned reports it: an error matching ErrClosed where the method returns
// an error, else a panic whose value is an error matching ErrClosed or a
// string that says "closed". Nothing faults (a fault would crash the test
// binary), nothing hangs, Close never panics, and neither Close returns an
// error. The end state, read through a handle open throughout, shows that
// the closed handles left nothing behind: the mutex can be locked, every
// permit is back, no closed handle is alive in the process table.
//
// A goroutine that locked the mutex and unlocks it while Close runs may be
// told *NotOwnerError instead of "closed": the lock went with the handle.
// That is allowed only once Close has begun, and only for the Unlock of a
// lock the goroutine holds.
//
// PROCESSSHARED_CLOSERACE_ROUNDS sets the number of rounds (default 1000,
// 100 with -short). The rounds stop early, with a note in the log, after
// closeRaceBudget: a slow machine (an emulator, -race) runs fewer.
func TestCloseRace(t *testing.T) {
	rounds := envInt("PROCESSSHARED_CLOSERACE_ROUNDS", 1000)
	if testing.Short() {
		rounds = envInt("PROCESSSHARED_CLOSERACE_ROUNDS", 100)
	}
	stop := time.Now().Add(closeRaceBudget)
	name := shmtest.Name(t)
	base, err := ps.Create(name, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	o := openRaceObjects(t, base)
	if err := o.slot.Store(0); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for r := range rounds {
		closeRaceRound(t, name, time.Duration(rng.IntN(500))*time.Microsecond)
		if t.Failed() {
			t.Fatalf("round %d failed", r)
		}
		if time.Now().After(stop) {
			t.Logf("time budget of %v spent after %d of %d rounds", closeRaceBudget, r+1, rounds)
			break
		}
	}

	// The end state, through base.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch err := o.m.LockContext(ctx); {
	case err == nil:
		o.m.Unlock()
	case errors.Is(err, ps.ErrOwnerDead):
		o.m.MarkConsistent()
		o.m.Unlock()
	default:
		t.Errorf("LockContext after the rounds: %v", err)
	}
	if !o.s.TryAcquire(closeRacePermits) {
		t.Errorf("TryAcquire(%d) after the rounds failed (value %d): permits of closed handles were lost", closeRacePermits, o.s.Value())
	} else {
		if o.s.TryAcquire(1) {
			t.Errorf("TryAcquire(1) succeeded with all %d permits taken: closed handles' permits came back twice", closeRacePermits)
		}
		if err := o.s.Release(closeRacePermits); err != nil {
			t.Error(err)
		}
	}
	var v int
	if err := o.slot.Load(&v); err != nil {
		t.Errorf("Slot.Load after the rounds: %v", err)
	}
	procs, err := base.Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Alive && !p.Self {
			t.Errorf("process table after every other handle was closed: %+v is alive", p)
		}
	}
}

const (
	// closeRacePermits is the value the semaphore starts with.
	closeRacePermits = 4
	// closeRaceBudget bounds the time TestCloseRace spends on its rounds.
	closeRaceBudget = 15 * time.Second
)

// raceObjects are the objects of the Close race, found through one handle.
type raceObjects struct {
	m     *ps.Mutex
	c     *ps.Cond
	s     *ps.Semaphore
	slot  *ps.Slot
	bytes *ps.Bytes
	array *ps.Array[uint64]
}

func openRaceObjects(t *testing.T, h *ps.Segment) raceObjects {
	t.Helper()
	var o raceObjects
	o.m = mutex(t, h, "m")
	o.c = cond(t, h, "c", o.m)
	o.s = semaphore(t, h, "s", closeRacePermits, 0)
	o.slot = newSlot(t, h, "slot", 64)
	o.bytes = newBytes(t, h, "bytes", 256)
	o.array = newArray[uint64](t, h, "array", 8)
	return o
}

// A raceStep is one call (or a pair, such as Lock and Unlock) on an object.
// It reports whether the call said the segment is closed, or, in bad, why
// its outcome is not allowed.
type raceStep struct {
	name string
	f    func() (closed bool, bad string)
}

// panicValue calls f and returns the value it panicked with, or nil.
func panicValue(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

// closedPanic reports whether r, a recovered panic value, says that the
// segment is closed.
func closedPanic(r any) bool {
	switch v := r.(type) {
	case error:
		return errors.Is(v, ps.ErrClosed)
	case string:
		return strings.Contains(v, "closed")
	}
	return false
}

// noErrorResult judges a call without an error result that panicked with r.
func noErrorResult(call string, r any) (bool, string) {
	switch {
	case r == nil:
		return false, ""
	case closedPanic(r):
		return true, ""
	}
	return false, fmt.Sprintf("%s panicked: %v", call, r)
}

// errorResult judges a call with an error result that returned err, or
// panicked with r (which it must not), and whose other allowed errors are
// ok.
func errorResult(call string, r any, err error, ok ...error) (bool, string) {
	if r != nil {
		return false, fmt.Sprintf("%s panicked: %v", call, r)
	}
	if err == nil {
		return false, ""
	}
	if errors.Is(err, ps.ErrClosed) {
		return true, ""
	}
	for _, e := range ok {
		if errors.Is(err, e) {
			return false, ""
		}
	}
	return false, fmt.Sprintf("%s: %v", call, err)
}

// closeRaceRound runs one round of TestCloseRace: it opens the segment name,
// runs every kind of call on it, and closes it after delay.
func closeRaceRound(t *testing.T, name string, delay time.Duration) {
	h, err := ps.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close() // if the round fails before its Close
	o := openRaceObjects(t, h)
	var closing atomic.Bool          // set before Close is called
	closeDone := make(chan struct{}) // closed once Close has returned
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// unlock unlocks the mutex, which the calling goroutine holds.
	unlock := func() (bool, string) {
		r := panicValue(o.m.Unlock)
		var ne *ps.NotOwnerError
		if err, _ := r.(error); errors.As(err, &ne) && closing.Load() {
			return true, "" // the lock went with the handle being closed
		}
		return noErrorResult("Unlock", r)
	}
	// locked continues a step after a lock call returned err: it unlocks
	// if the call returned holding the mutex.
	locked := func(call string, r any, err error, ok ...error) (bool, string) {
		closed, bad := errorResult(call, r, err, append(ok, ps.ErrOwnerDead)...)
		if closed || bad != "" {
			return closed, bad
		}
		return unlock()
	}
	lockUnlock := raceStep{"Lock+Unlock", func() (bool, string) {
		if closed, bad := noErrorResult("Lock", panicValue(o.m.Lock)); closed || bad != "" {
			return closed, bad
		}
		return unlock()
	}}
	lockContext := raceStep{"LockContext+Unlock", func() (bool, string) {
		var err error
		r := panicValue(func() { err = o.m.LockContext(ctx) })
		if errors.Is(err, ps.ErrOwnerDead) {
			if closed, bad := noErrorResult("MarkConsistent", panicValue(o.m.MarkConsistent)); closed || bad != "" {
				return closed, bad
			}
		}
		return locked("LockContext", r, err)
	}}
	tryLock := raceStep{"TryLock+Unlock", func() (bool, string) {
		var ok bool
		if closed, bad := noErrorResult("TryLock", panicValue(func() { ok = o.m.TryLock() })); closed || bad != "" || !ok {
			return closed, bad
		}
		return unlock()
	}}
	acquire := raceStep{"Acquire+Release", func() (bool, string) {
		var err error
		r := panicValue(func() { err = o.s.Acquire(ctx, 1) })
		if closed, bad := errorResult("Acquire", r, err); closed || bad != "" {
			return closed, bad
		}
		r = panicValue(func() { err = o.s.Release(1) })
		return errorResult("Release", r, err)
	}}
	tryAcquire := raceStep{"TryAcquire+Release", func() (bool, string) {
		var ok bool
		if closed, bad := noErrorResult("TryAcquire", panicValue(func() { ok = o.s.TryAcquire(1) })); closed || bad != "" {
			return closed, bad
		}
		if !ok {
			if closing.Load() {
				return false, ""
			}
			return false, "TryAcquire(1) failed: at most 2 of the permits are held by live goroutines, the others are free or reclaimable"
		}
		var err error
		r := panicValue(func() { err = o.s.Release(1) })
		return errorResult("Release", r, err)
	}}
	value := raceStep{"Value", func() (bool, string) {
		v := -1
		closed, bad := noErrorResult("Value", panicValue(func() { v = o.s.Value() }))
		if !closed && bad == "" && (v < 0 || v > closeRacePermits) {
			bad = fmt.Sprintf("Value %d, out of [0, %d]", v, closeRacePermits)
		}
		return closed, bad
	}}
	wait := raceStep{"Lock+WaitContext+Unlock", func() (bool, string) {
		if closed, bad := noErrorResult("Lock", panicValue(o.m.Lock)); closed || bad != "" {
			return closed, bad
		}
		wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		var err error
		r := panicValue(func() { err = o.c.WaitContext(wctx) })
		return locked("WaitContext", r, err, context.DeadlineExceeded)
	}}
	call := func(name string, f func()) raceStep {
		return raceStep{name, func() (bool, string) { return noErrorResult(name, panicValue(f)) }}
	}
	callErr := func(name string, f func() error) raceStep {
		return raceStep{name, func() (bool, string) {
			var err error
			r := panicValue(func() { err = f() })
			return errorResult(name, r, err)
		}}
	}
	buf := make([]byte, 64)
	kinds := []struct {
		name  string
		steps []raceStep
		after []raceStep // extra calls, once Close has returned
	}{
		{"Lock", []raceStep{lockUnlock}, []raceStep{
			call("Unlock", o.m.Unlock),
			call("MarkConsistent", o.m.MarkConsistent),
		}},
		{"LockContext", []raceStep{lockContext}, nil},
		{"TryLock", []raceStep{tryLock}, nil},
		{"Acquire", []raceStep{acquire}, []raceStep{
			callErr("Release", func() error { return o.s.Release(1) }),
		}},
		{"TryAcquire", []raceStep{tryAcquire, value}, nil},
		{"Cond.WaitContext", []raceStep{wait}, []raceStep{
			callErr("WaitContext", func() error { return o.c.WaitContext(ctx) }),
		}},
		{"Cond.Signal", []raceStep{call("Signal", o.c.Signal), call("Broadcast", o.c.Broadcast)}, nil},
		{"Slot", []raceStep{
			callErr("Slot.Store", func() error { return o.slot.Store(1) }),
			callErr("Slot.Load", func() error { var v int; return o.slot.Load(&v) }),
		}, nil},
		{"Bytes", []raceStep{
			callErr("Bytes.WriteAt", func() error { _, err := o.bytes.WriteAt(buf[:32], 0); return err }),
			callErr("Bytes.ReadAt", func() error { _, err := o.bytes.ReadAt(make([]byte, 32), 0); return err }),
		}, nil},
		{"Array", []raceStep{
			call("Array.Load", func() { o.array.Load(0) }),
			call("Array.Store", func() { o.array.Store(1, 1) }),
			call("Add", func() { ps.Add(o.array, 2, 1) }),
			call("AtomicLoad", func() { ps.AtomicLoad(o.array, 3) }),
		}, nil},
		{"Mutex state", []raceStep{
			call("Locked", func() { o.m.Locked() }),
			call("HolderPID", func() { o.m.HolderPID() }),
			call("Consistent", func() { o.m.Consistent() }),
			call("OwnerDeaths", func() { o.m.OwnerDeaths() }),
		}, nil},
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, k := range kinds {
		wg.Go(func() {
			<-start
		loop:
			for i := 0; ; i++ {
				st := k.steps[i%len(k.steps)]
				closed, bad := st.f()
				if bad != "" {
					t.Errorf("%s, racing with Close: %s", st.name, bad)
					return
				}
				select {
				case <-closeDone:
					break loop
				default:
				}
				if closed {
					break
				}
			}
			<-closeDone
			for _, st := range append(k.steps, k.after...) {
				closed, bad := st.f()
				switch {
				case bad != "":
					t.Errorf("%s after Close returned: %s", st.name, bad)
				case !closed:
					t.Errorf("%s after Close returned: no error matching ErrClosed, no panic saying closed", st.name)
				}
			}
		})
	}

	close(start)
	for t0 := time.Now(); time.Since(t0) < delay; {
		runtime.Gosched()
	}
	closing.Store(true)
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Go(func() {
			var err error
			if r := panicValue(func() { err = h.Close() }); r != nil {
				t.Errorf("Close panicked: %v", r)
			} else if err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	cwg.Wait()
	if err := h.Close(); err != nil {
		t.Errorf("third Close: %v", err)
	}
	close(closeDone)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("calls still running 30 s after Close:\n%s", buf[:runtime.Stack(buf, true)])
	}
}
