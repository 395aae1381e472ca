//go:build linux

package processshared_test

import (
	"context"
	"errors"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestPIDNSIdentityReuse: a dead process's entry and a live process with
// the same keeper id in the table. A fresh PID namespace per child makes it
// certain: C and H are each pid 1 of their own namespace, and their keeper
// threads have the same id (the test retries until they do). Locks and
// permits that C held when it died are C's, not H's; the lock H holds is
// H's, not the dead C's.
//
//	P.1 creates the segment, a semaphore S of value 2 (max 2), mutexes M and M2.
//	C.1 acquires 1 permit of S, locks M2, reports; P.2 kills C (SIGKILL) and reaps it.
//	H.1 attaches and reports its keeper id, the same as C's; H.2 locks M.
//	P.3 TryLock(M) fails: H is alive.
//	P.4 LockContext(M2) acquires it, told the owner died: C is dead.
//	H.3 TryAcquire(2) succeeds (C's permit came back), then releases both.
//	P.5 sees value 2 and takes both permits with TryAcquire(1) twice.
//	H.4 unlocks M.
//
// In "separate-slots", C's entry stays in the table, dead, beside H's. In
// "reused-slot" the table has room for two processes (P and one child), so
// H attaches in the slot the dead C left.
func TestPIDNSIdentityReuse(t *testing.T) {
	if childtest.Role() == "" && !ps.Robust() {
		t.Skip("no kernel death mark (processshared_nofutex build): a holder in another PID namespace is taken to be alive, as documented")
	}
	if role := childtest.Role(); role != "" {
		seg := nsAttach(t)
		if seg == nil {
			return
		}
		s := semaphore(t, seg, "S", 2, 2)
		m, m2 := mutex(t, seg, "M"), mutex(t, seg, "M2")
		switch role {
		case "C":
			if err := s.Acquire(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			m2.Lock()
			nsSay("holding")
			nsCommand() // killed while waiting here
			t.Error("C was not killed")
		case "H":
			m.Lock()
			nsSay("locked")
			if nsCommand() != "sem" {
				return
			}
			if !s.TryAcquire(2) {
				nsSay("TryAcquire(2) failed (value %d)", s.Value())
			} else if err := s.Release(2); err != nil {
				nsSay("Release(2): %v", err)
			} else {
				nsSay("ok")
			}
			if nsCommand() == "unlock" {
				nsSay("%s", notOwnerResult(m.Unlock))
			}
		}
		return
	}
	needRoot(t)
	for _, tc := range []struct {
		name string
		opts *ps.Options
	}{
		{"separate-slots", nil},
		{"reused-slot", &ps.Options{MaxProcesses: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seg *ps.Segment
			var c, h *nsChild
			for try := range 40 { // under load the keeper id varies (1, 3, 4, 5...)
				seg = create(t, 1<<16, tc.opts)
				semaphore(t, seg, "S", 2, 2)
				mutex(t, seg, "M")
				mutex(t, seg, "M2")
				c = startNS(t, "C", seg.Name(), true)
				c.send(t, "go")
				c.expect(t, "holding")
				c.kill(t)
				h = startNS(t, "H", seg.Name(), true)
				if h.tid == c.tid {
					break
				}
				t.Logf("try %d: C's keeper id %d, H's %d", try, c.tid, h.tid)
				h.finish(t)
				seg.Close()
				h = nil
			}
			if h == nil {
				t.Fatalf("in 40 tries, no child H had the keeper id of the dead child C: the test cannot set up a live process with a dead one's id")
			}
			t.Logf("C and H have keeper id %d", h.tid)
			if procs, err := seg.Processes(); err == nil {
				t.Logf("process table: %+v", procs)
			}
			s, m, m2 := semaphore(t, seg, "S", 2, 2), mutex(t, seg, "M"), mutex(t, seg, "M2")
			h.send(t, "go")
			h.expect(t, "locked")
			if m.TryLock() {
				t.Errorf("TryLock took M from the live H, whose keeper id %d is the dead C's", h.tid)
				m.Unlock()
			}
			ctx, cancel := context.WithTimeout(context.Background(), nsBound)
			defer cancel()
			switch err := m2.LockContext(ctx); {
			case errors.Is(err, ps.ErrOwnerDead):
				m2.MarkConsistent()
				m2.Unlock()
			case err == nil:
				t.Errorf("LockContext(M2) held by the dead C: nil, want ErrOwnerDead")
				m2.Unlock()
			default:
				t.Errorf("LockContext(M2) held by the dead C (keeper id %d, the live H's too): %v, want ErrOwnerDead", c.tid, err)
			}
			h.send(t, "sem")
			if r := h.next(t); r != "ok" {
				t.Errorf("in H, with the dead C's keeper id: %s, want C's permit back and both taken", r)
			}
			if v := s.Value(); v != 2 {
				t.Errorf("value %d after H's TryAcquire(2) and Release(2), want 2", v)
			}
			taken := 0
			for range 2 {
				if s.TryAcquire(1) {
					taken++
				}
			}
			if taken != 2 {
				t.Errorf("P took %d of S's 2 permits with TryAcquire(1) twice: the dead C's was not returned", taken)
			}
			if err := s.Release(taken); err != nil {
				t.Error(err)
			}
			h.send(t, "unlock")
			if r := h.next(t); r != "nopanic" {
				t.Errorf("H's Unlock of M: %s, want no panic", r)
			}
			h.finish(t)
		})
	}
}
