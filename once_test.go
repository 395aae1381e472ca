//go:build linux && !processshared_nofutex

package processshared_test

import (
	"context"
	"errors"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestOnceProcesses: 6 processes call Do at once; f runs exactly once (a
// shared counter ends at 1), with retry false, and every Do returns nil
// after it.
func TestOnceProcesses(t *testing.T) {
	if childtest.Role() == "D" {
		s := inherit(t)
		o := once(t, s, "o")
		c := counter(t, s, "c")
		start := counting(t, s, "start", 0, 0)
		start.Acquire(context.Background(), 1)
		err := o.Do(func(retry bool) error {
			if retry {
				t.Error("retry on the first run")
			}
			time.Sleep(10 * time.Millisecond)
			add(c, 1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if add(c, 0) != 1 {
			t.Fatalf("Do returned with the counter at %d", add(c, 0))
		}
		return
	}
	seg := create(t, 1<<16, nil)
	c := counter(t, seg, "c")
	start := counting(t, seg, "start", 0, 0)
	once(t, seg, "o")
	done := make(chan struct{})
	go func() { runChildren(t, seg, 6, "D"); close(done) }()
	time.Sleep(50 * time.Millisecond)
	start.Release(6)
	<-done
	if *c != 1 {
		t.Fatalf("f ran %d times", *c)
	}
}

// TestOnceRunnerKilled: the runner dies inside f; a waiter runs f again and
// is told.
//
//	R.1  R calls Do; its f reports and blocks.
//	P.1  P's goroutine calls Do and waits (R is running f).
//	P.2  P kills R: P's Do runs f with retry true, and returns nil.
//	P.3  a later Do returns nil without running f.
func TestOnceRunnerKilled(t *testing.T) {
	if childtest.Role() == "R" {
		s := inherit(t)
		o := once(t, s, "o")
		o.Do(func(bool) error {
			printf("running")
			select {}
		})
		return
	}
	seg := create(t, 1<<16, nil)
	o := once(t, seg, "o")
	r, read := child(t, seg, "R")
	if l := read(); l != "running" {
		t.Fatalf("runner: %q", l)
	}
	var err error
	ran, retried := 0, false
	w := mustBlock(t, "Do while another process runs f", func() {
		err = o.Do(func(retry bool) error { ran++; retried = retry; return nil })
	})
	kill9(t, r)
	w()
	if err != nil || ran != 1 || !retried {
		t.Fatalf("Do after the runner died: %v, ran %d, retry %v; want nil, 1, true", err, ran, retried)
	}
	if !o.Done() {
		t.Fatal("not Done")
	}
	if err := o.Do(func(bool) error { ran++; return nil }); err != nil || ran != 1 {
		t.Fatalf("Do after success: %v, ran %d", err, ran)
	}
}

// TestOnceError: f failing (an error, then a panic) leaves the Once not
// done; the next caller, in another process, runs f with retry true.
func TestOnceError(t *testing.T) {
	if childtest.Role() == "C" {
		s := inherit(t)
		o := once(t, s, "o")
		err := o.Do(func(retry bool) error {
			if !retry {
				return errors.New("not told about the failed run")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	seg := create(t, 1<<16, nil)
	o := once(t, seg, "o")
	boom := errors.New("boom")
	if err := o.Do(func(bool) error { return boom }); err != boom {
		t.Fatalf("Do: %v, want f's error", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("f's panic was not passed on")
			}
		}()
		o.Do(func(bool) error { panic("f panics") })
	}()
	if o.Done() {
		t.Fatal("Done after failures")
	}
	runChildren(t, seg, 1, "C")
	if !o.Done() {
		t.Fatal("not Done after the child's run")
	}
}

// TestOnceContext: a Do waiting for another's run, cancelled before, during
// or at its deadline, returns the context's error and does not run f.
func TestOnceContext(t *testing.T) {
	o := once(t, create(t, 1<<16, nil), "o")
	release := make(chan struct{})
	running := make(chan struct{})
	go o.Do(func(bool) error { close(running); <-release; return nil })
	<-running
	ctxCases(t, func(ctx context.Context) error {
		return o.DoContext(ctx, func(bool) error { t.Error("f ran twice"); return nil })
	})
	close(release)
	within(t, "Do after the run", func() {
		if err := o.Do(func(bool) error { t.Error("f ran again"); return nil }); err != nil {
			t.Error(err)
		}
	})
}

var _ = ps.ErrBroken
