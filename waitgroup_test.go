//go:build linux && !processshared_nofutex

package processshared_test

import (
	"errors"
	"os"
	"strconv"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestWaitGroupHammer: 4 worker processes each Add(500) for their tasks,
// then do each (add 1 to a shared counter) and Done it, 500 times; the
// coordinator (the parent) also Adds 500 for tasks that workers 0 and 1
// finish with Done (Done from another process), interleaved with their
// own. The parent's Wait, once every worker has made its Add, returns nil
// only when the counter shows every task done: exactly 4×500 + 500.
func TestWaitGroupHammer(t *testing.T) {
	const workers, tasks = 4, 500
	switch childtest.Role() {
	case "W":
		s := inherit(t)
		g := waitGroup(t, s, "g")
		c := counter(t, s, "c")
		ready := counting(t, s, "ready", 0, 0)
		id, _ := strconv.Atoi(os.Getenv("ID"))
		if err := g.Add(tasks); err != nil {
			t.Fatal(err)
		}
		ready.Release(1)
		for i := range tasks {
			add(c, 1)
			if err := g.Done(); err != nil {
				t.Fatal(err)
			}
			// Workers 0 and 1 also finish the coordinator's tasks.
			if id < 2 && i < tasks/2 {
				add(c, 1)
				if err := g.Done(); err != nil {
					t.Fatal(err)
				}
			}
		}
		return
	}
	seg := create(t, 1<<16, nil)
	g := waitGroup(t, seg, "g")
	c := counter(t, seg, "c")
	ready := counting(t, seg, "ready", 0, 0)
	if err := g.Add(tasks); err != nil { // the coordinator's Adds
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { runChildren(t, seg, workers, "W"); close(done) }()
	if err := ready.Acquire(t.Context(), workers); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := add(c, 0); got != workers*tasks+tasks {
		t.Fatalf("Wait returned with %d tasks done, want %d", got, workers*tasks+tasks)
	}
	<-done
	if n := g.Count(); n != 0 {
		t.Fatalf("count %d at the end", n)
	}
}

// TestWaitGroupKilled: a process that dies holding Adds breaks the group.
//
//	H.1  H does Add(2) and idles.
//	P.1  P's goroutine sleeps in Wait.
//	P.2  P kills H: Wait returns ErrBroken; so does a later Wait; the
//	     count no longer includes H's Adds.
//	P.3  P resets the group; a late Done for H's work (from P) is
//	     accepted; Wait returns nil; one Done more is an error.
func TestWaitGroupKilled(t *testing.T) {
	if childtest.Role() == "H" {
		s := inherit(t)
		g := waitGroup(t, s, "g")
		if err := g.Add(2); err != nil {
			t.Fatal(err)
		}
		printf("added")
		select {}
	}
	seg := create(t, 1<<16, nil)
	g := waitGroup(t, seg, "g")
	h, read := child(t, seg, "H")
	read()
	var err error
	w := mustBlock(t, "Wait", func() { err = g.Wait() })
	kill9(t, h)
	w()
	if !errors.Is(err, ps.ErrBroken) {
		t.Fatalf("Wait after the holder died: %v, want ErrBroken", err)
	}
	if err := g.Wait(); !errors.Is(err, ps.ErrBroken) {
		t.Fatalf("later Wait: %v, want ErrBroken", err)
	}
	if n := g.Count(); n != 0 {
		t.Fatalf("count %d after the holder's death, want 0", n)
	}
	if err := g.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := g.Done(); err != nil {
		t.Fatalf("late Done for the dead holder's work: %v", err)
	}
	within(t, "Wait after Reset", func() {
		if err := g.Wait(); err != nil {
			t.Errorf("Wait after Reset: %v", err)
		}
	})
	g.Done()                         // the second of H's two
	if err := g.Done(); err == nil { // one more than was ever added
		t.Fatal("Done past zero returned nil")
	}
}

// TestWaitGroupContext: Wait cancelled before, during and at its deadline
// returns the context's error; the group is unaffected.
func TestWaitGroupContext(t *testing.T) {
	g := waitGroup(t, create(t, 1<<16, nil), "g")
	g.Add(1)
	ctxCases(t, g.WaitContext)
	g.Done()
	within(t, "Wait at zero", func() {
		if err := g.Wait(); err != nil {
			t.Error(err)
		}
	})
}
