//go:build darwin || freebsd || linux

package processshared_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// Each Segment handle is an identity of its own: locks and permits belong to
// the handle that took them, not to its process. Two handles in one process
// exclude each other as two processes do, and a handle closed while holding
// leaves its locks to the others as held by a dead owner, even if its
// process opens the segment again at once.

// lifecycleBound is the deadline of the waits below: long enough for any
// machine, short enough that a lock left held forever fails the test soon.
const lifecycleBound = 5 * time.Second

// openSeg opens the named segment, closing it at cleanup.
func openSeg(t *testing.T, name string) *ps.Segment {
	t.Helper()
	s, err := ps.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCloseHoldingReopen: a process that closes its Segment while holding a
// Mutex (or a Semaphore's permit) and opens the segment again at once does
// not hold it through the new handle: to the others, its owner is dead.
//
//	P.1 creates the segment, mutex m and semaphore s (value 1, max 1).
//	C.1 opens it, locks m [acquires s's permit], closes the Segment, opens it
//	    again (finding m and s through the new handle) and reports.
//	P.2 LockContext(m) returns ErrOwnerDead [Acquire(s) succeeds], with C
//	    alive and attached.
//	P.3 closes C's input; C.2 exits.
func TestCloseHoldingReopen(t *testing.T) {
	if role := childtest.Role(); role != "" {
		name := os.Getenv("SEG")
		s, err := ps.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		switch role {
		case "mutex":
			mutex(t, s, "m").Lock()
		case "sem":
			if err := semaphore(t, s, "s", 1, 1).Acquire(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openSeg(t, name)
		mutex(t, s, "m")
		semaphore(t, s, "s", 1, 1)
		fmt.Println("reopened")
		os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
		return
	}
	for _, role := range []string{"mutex", "sem"} {
		t.Run(role, func(t *testing.T) {
			seg := create(t, 1<<16, nil)
			m := mutex(t, seg, "m")
			s := semaphore(t, seg, "s", 1, 1)
			cmd := childtest.Command(t, "TestCloseHoldingReopen", role, "SEG="+seg.Name())
			cmd.Stderr = os.Stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			childtest.Start(t, cmd)
			if l, err := bufio.NewReader(stdout).ReadString('\n'); l != "reopened\n" {
				t.Fatalf("child: %q, %v", l, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), lifecycleBound)
			defer cancel()
			switch role {
			case "mutex":
				err := m.LockContext(ctx)
				if !errors.Is(err, ps.ErrOwnerDead) {
					t.Errorf("LockContext of a mutex whose holder closed its Segment (and reopened the segment): %v, want ErrOwnerDead", err)
				}
				if err == nil || errors.Is(err, ps.ErrOwnerDead) {
					m.Unlock()
				}
			case "sem":
				if err := s.Acquire(ctx, 1); err != nil {
					t.Errorf("Acquire of a permit whose holder closed its Segment (and reopened the segment): %v, want the permit", err)
				} else if err := s.Release(1); err != nil {
					t.Error(err)
				}
			}
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("child: %v", err)
			}
		})
	}
}

// TestCloseHoldingOtherHandle is TestCloseHoldingReopen within one process:
// h1 locks m [acquires s's permit] and is closed; through h2 the lock is
// acquired, told its owner died [the permit is acquired].
func TestCloseHoldingOtherHandle(t *testing.T) {
	t.Run("mutex", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), lifecycleBound)
		defer cancel()
		h1 := create(t, 1<<16, nil)
		h2 := openSeg(t, h1.Name())
		m1, m2 := mutex(t, h1, "m"), mutex(t, h2, "m")
		m1.Lock()
		if err := h1.Close(); err != nil {
			t.Fatal(err)
		}
		err := m2.LockContext(ctx)
		if !errors.Is(err, ps.ErrOwnerDead) {
			t.Fatalf("LockContext through h2 after h1 was closed holding the mutex: %v, want ErrOwnerDead", err)
		}
		if m2.Consistent() {
			t.Error("Consistent after taking over from a closed handle")
		}
		m2.Unlock()
	})
	t.Run("sem", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), lifecycleBound)
		defer cancel()
		h1 := create(t, 1<<16, nil)
		h2 := openSeg(t, h1.Name())
		s1, s2 := semaphore(t, h1, "s", 1, 1), semaphore(t, h2, "s", 1, 1)
		if err := s1.Acquire(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := h1.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s2.Acquire(ctx, 1); err != nil {
			t.Fatalf("Acquire through h2 after h1 was closed holding the only permit: %v, want the permit", err)
		}
		if err := s2.Release(1); err != nil {
			t.Fatal(err)
		}
		if v := s2.Value(); v != 1 {
			t.Fatalf("value %d, want 1", v)
		}
	})
}

// TestTwoHandlesExclude: two Segment handles in one process exclude each
// other as two processes do.
//
//	m1 (through h1) locks; m2 (through h2): TryLock fails, LockContext blocks.
//	m1 unlocks; m2's LockContext returns holding the mutex.
//	m1: TryLock fails, Unlock panics with a *NotOwnerError.
//	m2 unlocks.
func TestTwoHandlesExclude(t *testing.T) {
	h1 := create(t, 1<<16, nil)
	h2 := openSeg(t, h1.Name())
	m1, m2 := mutex(t, h1, "m"), mutex(t, h2, "m")
	m1.Lock()
	if m2.TryLock() {
		t.Fatal("TryLock through h2 succeeded while h1 holds the mutex")
	}
	ctx, cancel := context.WithTimeout(context.Background(), lifecycleBound)
	defer cancel()
	var err error
	wait := mustBlock(t, "LockContext through h2 while h1 holds the mutex", func() { err = m2.LockContext(ctx) })
	m1.Unlock()
	wait()
	if err != nil {
		t.Fatalf("LockContext through h2 after h1 unlocked: %v", err)
	}
	if m1.TryLock() {
		t.Fatal("TryLock through h1 succeeded while h2 holds the mutex")
	}
	mustPanic(t, ps.ErrNotOwner, m1.Unlock)
	if !m2.Locked() {
		t.Fatal("h1's refused Unlock unlocked the mutex h2 holds")
	}
	m2.Unlock()
}
