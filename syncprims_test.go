//go:build linux && !processshared_nofutex

package processshared_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
)

// Helpers shared by the tests of Event, Barrier, WaitGroup and Once.

func event(t *testing.T, s *ps.Segment, name string, auto bool) *ps.Event {
	t.Helper()
	e, err := ps.NewEvent(s, name, auto)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func barrier(t *testing.T, s *ps.Segment, name string, n int) *ps.Barrier {
	t.Helper()
	b, err := ps.NewBarrier(s, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitGroup(t *testing.T, s *ps.Segment, name string) *ps.WaitGroup {
	t.Helper()
	g, err := ps.NewWaitGroup(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func once(t *testing.T, s *ps.Segment, name string) *ps.Once {
	t.Helper()
	o, err := ps.NewOnce(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// kill9 kills cmd's process with SIGKILL and reaps it.
func kill9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// within runs f and fails the test if it does not return within 20 s
// (a failure bound, not a timing assertion).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return within 20s", what)
	}
}

// ctxCases runs wait, a blocking call that will not be satisfied, with a
// context cancelled before the call, cancelled during it, and with a
// deadline, and checks each returns its context's error (check may add
// what the primitive promises on top).
func ctxCases(t *testing.T, wait func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	w := mustBlock(t, "wait with a live context", func() { err = wait(ctx) })
	cancel()
	w()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v, want context.DeadlineExceeded", err)
	}
}

func printf(format string, a ...any) { fmt.Printf(format+"\n", a...) }

func add(p *int64, d int64) int64 { return atomic.AddInt64(p, d) }

// TestSyncInspect: Inspect shows the state of each new kind, as another
// process reads it.
func TestSyncInspect(t *testing.T) {
	seg := create(t, 1<<16, nil)
	e := event(t, seg, "e", true)
	e.Set()
	b := barrier(t, seg, "b", 3)
	b.WaitContext(canceled())
	g := waitGroup(t, seg, "g")
	g.Add(3)
	o := once(t, seg, "o")
	o.Do(func(bool) error { return errors.New("fail") })
	si, err := seg.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]ps.ObjectState{}
	for _, o := range si.Objects {
		if o.Err != nil {
			t.Errorf("%s: %v", o.Name, o.Err)
		}
		byName[o.Name] = o
	}
	if st := byName["e"].Event; st == nil || !st.Set || !st.AutoReset || byName["e"].Kind.String() != "event" {
		t.Errorf("event: %+v", st)
	}
	if st := byName["b"].Barrier; st == nil || st.Parties != 3 || st.Joined != 1 || !st.Broken || st.Dead != 0 {
		t.Errorf("barrier: %+v", st)
	}
	if st := byName["g"].WaitGroup; st == nil || st.Count != 3 || len(st.Holders) != 1 || st.Holders[0].Count != 3 || !st.Holders[0].Alive {
		t.Errorf("waitgroup: %+v", st)
	}
	if st := byName["o"].Once; st == nil || st.Done || st.Running || st.Failures != 1 {
		t.Errorf("once: %+v", st)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestSyncClose: Close wakes a goroutine blocked in each new kind's wait,
// which returns ErrClosed; after Close the calls return ErrClosed, and
// the queries panic with an error matching it.
func TestSyncClose(t *testing.T) {
	seg, err := ps.NewAnonymous("close", 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := event(t, seg, "e", false)
	b := barrier(t, seg, "b", 2)
	g := waitGroup(t, seg, "g")
	g.Add(1)
	o := once(t, seg, "o")
	release := make(chan struct{})
	running := make(chan struct{})
	go o.Do(func(bool) error { close(running); <-release; return nil })
	<-running
	errs := make(chan error, 4)
	waits := []func() error{
		e.Wait,
		func() error { _, err := b.Wait(); return err },
		g.Wait,
		func() error { return o.Do(func(bool) error { return nil }) },
	}
	for _, w := range waits {
		go func() { errs <- w() }()
	}
	time.Sleep(50 * time.Millisecond) // let them block (a failure bound below, not an assertion)
	closed := make(chan struct{})
	go func() { seg.Close(); close(closed) }()
	for range waits {
		select {
		case err := <-errs:
			if !errors.Is(err, ps.ErrClosed) {
				t.Errorf("a wait woken by Close: %v, want ErrClosed", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Close did not wake a waiter")
		}
	}
	close(release)
	<-closed
	for name, f := range map[string]func() error{
		"Event.Set": e.Set, "Event.Reset": e.Reset, "Event.Wait": e.Wait,
		"Barrier.Reset": b.Reset, "WaitGroup.Add": func() error { return g.Add(1) }, "WaitGroup.Wait": g.Wait,
		"Once.Do": func() error { return o.Do(func(bool) error { return nil }) },
	} {
		if err := f(); !errors.Is(err, ps.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	for name, f := range map[string]func(){"IsSet": func() { e.IsSet() }, "Broken": func() { b.Broken() }, "Count": func() { g.Count() }, "Done": func() { o.Done() }} {
		func() {
			defer func() {
				if err, _ := recover().(error); !errors.Is(err, ps.ErrClosed) {
					t.Errorf("%s after Close: panic %v, want one matching ErrClosed", name, err)
				}
			}()
			f()
		}()
	}
}

// TestBarrierMisuse: a second Wait of one party while its first waits
// returns an error and does not count as an arrival.
func TestBarrierMisuse(t *testing.T) {
	seg := create(t, 1<<16, nil)
	b := barrier(t, seg, "b", 2)
	other := barrier(t, seg, "b", 2)
	var first error
	w := mustBlock(t, "first Wait", func() { _, first = b.Wait() })
	if _, err := b.Wait(); err == nil || errors.Is(err, ps.ErrBroken) {
		t.Fatalf("second Wait of a waiting party: %v, want a misuse error", err)
	}
	var idx int
	var err error
	within(t, "the other party's Wait", func() { idx, err = other.Wait() })
	w()
	if err != nil || first != nil || idx != 1 {
		t.Fatalf("other party: %d, %v; first: %v", idx, err, first)
	}
}
