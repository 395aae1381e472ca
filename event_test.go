//go:build linux && !processshared_nofutex

package processshared_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestEventManual: one Set releases every waiter, in three processes, and
// the event stays set until Reset; a Set followed at once by a Reset still
// releases those waiting at the Set.
//
//	W.1  three children wait on e (manual-reset), and report.
//	P.1  P sets e: all three return; IsSet is true; a new Wait returns at
//	     once.
//	P.2  P resets e; a waiter in P blocks; P sets and resets at once: the
//	     waiter returns all the same.
func TestEventManual(t *testing.T) {
	if childtest.Role() == "W" {
		s := inherit(t)
		e := event(t, s, "e", false)
		printf("waiting")
		if err := e.Wait(); err != nil {
			printf("wait: %v", err)
			return
		}
		printf("released")
		return
	}
	seg := create(t, 1<<16, nil)
	e := event(t, seg, "e", false)
	var reads []func() string
	for range 3 {
		cmd, read := child(t, seg, "W")
		if l := read(); l != "waiting" {
			t.Fatalf("child: %q", l)
		}
		waitSleeping(t, cmd.Process.Pid)
		reads = append(reads, read)
	}
	if e.IsSet() {
		t.Fatal("set before Set")
	}
	if err := e.Set(); err != nil {
		t.Fatal(err)
	}
	for i, read := range reads {
		if l := read(); l != "released" {
			t.Fatalf("child %d: %q", i, l)
		}
	}
	if !e.IsSet() {
		t.Fatal("not set after Set")
	}
	within(t, "Wait on a set event", func() { e.Wait() })
	e.Reset()
	if e.IsSet() {
		t.Fatal("set after Reset")
	}
	w := mustBlock(t, "Wait on a reset event", func() { e.Wait() })
	e.Set()
	e.Reset()
	w()
	if _, err := ps.NewEvent(seg, "e", true); !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("opening a manual-reset event as auto-reset: %v, want ErrMismatch", err)
	}
}

// TestEventAuto: each Set releases exactly one waiter; a Set with no waiter
// stays until one comes.
//
//	W.1  three children wait on e (auto-reset).
//	P.1  P sets e three times, each after the last release: one child
//	     returns per Set (the count of returns is exact at each step).
//	P.2  P sets e with nobody waiting: IsSet; P's Wait takes it at once and
//	     e is clear again.
func TestEventAuto(t *testing.T) {
	if childtest.Role() == "W" {
		s := inherit(t)
		e := event(t, s, "e", true)
		n := counter(t, s, "n")
		printf("waiting")
		if err := e.Wait(); err != nil {
			printf("wait: %v", err)
			return
		}
		add(n, 1)
		printf("released")
		return
	}
	seg := create(t, 1<<16, nil)
	e := event(t, seg, "e", true)
	n := counter(t, seg, "n")
	for range 3 {
		cmd, read := child(t, seg, "W")
		if l := read(); l != "waiting" {
			t.Fatalf("child: %q", l)
		}
		waitSleeping(t, cmd.Process.Pid)
	}
	for i := range 3 {
		e.Set()
		deadline := time.Now().Add(20 * time.Second)
		for add(n, 0) != int64(i+1) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := add(n, 0); got != int64(i+1) {
			t.Fatalf("after Set %d: %d released, want %d", i+1, got, i+1)
		}
		// The others must still be waiting: give them time to return
		// wrongly, then count again.
		time.Sleep(20 * time.Millisecond)
		if got := add(n, 0); got != int64(i+1) {
			t.Fatalf("after Set %d: %d released, want %d", i+1, got, i+1)
		}
	}
	e.Set()
	if !e.IsSet() {
		t.Fatal("a Set without waiters was lost")
	}
	within(t, "Wait on a set auto-reset event", func() { e.Wait() })
	if e.IsSet() {
		t.Fatal("auto-reset event still set after a Wait took it")
	}
	if _, err := ps.NewEvent(seg, "e", false); !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("opening an auto-reset event as manual-reset: %v, want ErrMismatch", err)
	}
}

// TestEventPingPong is the hammer: two processes pass a turn back and forth
// 3000 times through two auto-reset events, each incrementing a shared
// counter on its turn. Invariant: each side finds the counter at exactly
// the value its turn implies (strict alternation), and it ends at 6000.
func TestEventPingPong(t *testing.T) {
	const rounds = 3000
	play := func(s *ps.Segment, mine, theirs *ps.Event, c *int64, first int64) error {
		for i := range int64(rounds) {
			if err := mine.Wait(); err != nil {
				return err
			}
			if got, want := add(c, 1), 2*i+first+1; got != want {
				return errors.New("counter " + strconv.FormatInt(got, 10) + ", want " + strconv.FormatInt(want, 10))
			}
			if err := theirs.Set(); err != nil {
				return err
			}
		}
		return nil
	}
	if childtest.Role() == "B" {
		s := inherit(t)
		if err := play(s, event(t, s, "b", true), event(t, s, "a", true), counter(t, s, "c"), 1); err != nil {
			t.Fatal(err)
		}
		return
	}
	seg := create(t, 1<<16, nil)
	a, b, c := event(t, seg, "a", true), event(t, seg, "b", true), counter(t, seg, "c")
	cmd := segChild(t, seg, "B")
	childtest.Start(t, cmd)
	a.Set()
	if err := play(seg, a, b, c, 0); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if *c != 2*rounds {
		t.Fatalf("counter %d, want %d", *c, 2*rounds)
	}
}

// TestEventWaiterKilled: a waiter killed while asleep takes nothing with
// it; an auto-reset Set goes to the live waiter.
//
//	K.1  K sleeps in Wait on e (auto-reset).
//	W.1  W sleeps in Wait on e.
//	P.1  P kills K.
//	P.2  P sets e: W returns.
func TestEventWaiterKilled(t *testing.T) {
	if r := childtest.Role(); r == "K" || r == "W" {
		s := inherit(t)
		e := event(t, s, "e", true)
		printf("waiting")
		if err := e.Wait(); err != nil {
			printf("wait: %v", err)
			return
		}
		printf("released")
		return
	}
	seg := create(t, 1<<16, nil)
	e := event(t, seg, "e", true)
	k, readK := child(t, seg, "K")
	readK()
	waitSleeping(t, k.Process.Pid)
	w, readW := child(t, seg, "W")
	readW()
	waitSleeping(t, w.Process.Pid)
	kill9(t, k)
	e.Set()
	if l := readW(); l != "released" {
		t.Fatalf("live waiter: %q", l)
	}
}

// TestEventSetterKilled: a setter killed between its CAS (the event is
// set) and its FUTEX_WAKE does not leave the waiters asleep: they watch its
// death and look again.
//
//	W.1  P's goroutine sleeps in Wait on e (manual-reset).
//	S.1  S sets e and is SIGKILLed by a test hook right after the CAS,
//	     before its wake.
//	W.2  the waiter returns.
func TestEventSetterKilled(t *testing.T) {
	if childtest.Role() == "S" {
		s := inherit(t)
		e := event(t, s, "e", os.Getenv("AUTO") == "true")
		ps.SetTestHookEventSet(func() {
			p, _ := os.FindProcess(os.Getpid())
			p.Kill()
			time.Sleep(time.Hour)
		})
		e.Set()
		printf("woke them")
		return
	}
	for _, auto := range []bool{false, true} {
		seg := create(t, 1<<16, nil)
		e := event(t, seg, "e", auto)
		var err error
		w := mustBlock(t, "Wait", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = e.WaitContext(ctx)
		})
		cmd := segChild(t, seg, "S", "AUTO="+strconv.FormatBool(auto))
		out, _ := cmd.Output()
		if len(out) != 0 {
			t.Fatalf("setter was not killed in Set: %q", out)
		}
		w()
		if err != nil {
			t.Fatalf("auto %v: Wait after the setter died: %v", auto, err)
		}
	}
}

// TestEventContext: Wait cancelled before, during and at its deadline
// returns the context's error and takes no Set.
func TestEventContext(t *testing.T) {
	for _, auto := range []bool{false, true} {
		e := event(t, create(t, 1<<16, nil), "e", auto)
		ctxCases(t, e.WaitContext)
		if e.IsSet() {
			t.Fatal("set by a cancelled Wait")
		}
		// A Set that comes after a cancelled wait is not lost.
		e.Set()
		within(t, "Wait after cancelled waits", func() {
			if err := e.Wait(); err != nil {
				t.Error(err)
			}
		})
	}
}
