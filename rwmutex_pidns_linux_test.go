//go:build linux

package processshared_test

import (
	"context"
	"errors"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestPIDNSRWMutexKilled: two processes, each pid 1 of its own PID
// namespace and with the same keeper thread id (startPair tries for it).
// A writer SIGKILLed holding the write lock is reported to a reader, who
// gets its read lock; a reader SIGKILLed holding read locks lets a writer
// in, told of nothing. The waiter locks after the death, or is already
// waiting.
//
//	A.1 write-locks (or read-locks twice) and reports.
//	B.1 [waiting: starts to lock and reports that it is still blocked].
//	P.1 kills A with SIGKILL and reaps it.
//	B.2 [after: starts to lock]; RLockContext gets ErrOwnerDead holding a
//	    read lock (A wrote), or LockContext gets the lock (A read).
func TestPIDNSRWMutexKilled(t *testing.T) {
	if childtest.Role() == "" && !ps.Robust() {
		t.Skip("no kernel death mark (processshared_nofutex build): a holder in another PID namespace is taken to be alive, as documented")
	}
	lock := func(rw *ps.RWMutex, read bool) string {
		ctx, cancel := context.WithTimeout(context.Background(), nsBound)
		defer cancel()
		if read {
			err := rw.RLockContext(ctx)
			if err == nil || errors.Is(err, ps.ErrOwnerDead) {
				defer rw.RUnlock()
			}
			return lockResult(err)
		}
		err := rw.LockContext(ctx)
		if err == nil || errors.Is(err, ps.ErrOwnerDead) {
			rw.MarkConsistent()
			defer rw.Unlock()
		}
		return lockResult(err)
	}
	if role := childtest.Role(); role != "" {
		s := nsAttach(t)
		if s == nil {
			return
		}
		rw := rwmutex(t, s, "rw")
		switch role {
		case "hold-write":
			rw.Lock()
			nsSay("locked")
			nsCommand() // killed while waiting here
			t.Error("the holder was not killed")
		case "hold-read":
			rw.RLock()
			rw.RLock()
			nsSay("locked")
			nsCommand()
			t.Error("the holder was not killed")
		case "read-after", "write-after":
			nsSay("%s", lock(rw, role == "read-after"))
		case "read-waiting", "write-waiting":
			reportBlocked(func() string { return lock(rw, role == "read-waiting") })
		}
		return
	}
	needRoot(t)
	for _, tc := range []struct{ holder, waiter, want string }{
		{"hold-write", "read-after", "ownerdead"},
		{"hold-write", "read-waiting", "ownerdead"},
		{"hold-read", "write-after", "ok"},
		{"hold-read", "write-waiting", "ok"},
	} {
		t.Run(tc.holder+"/"+tc.waiter, func(t *testing.T) {
			seg := create(t, 1<<16, nil)
			rw := rwmutex(t, seg, "rw")
			a, b := startPair(t, tc.holder, tc.waiter, seg.Name())
			after := tc.waiter == "read-after" || tc.waiter == "write-after"
			if r := killHolder(t, a, b, "locked", after); r != tc.want {
				t.Errorf("%s after the holder (keeper id %d, %s) was killed, by a process with keeper id %d: %s, want %s", tc.waiter, a.tid, tc.holder, b.tid, r, tc.want)
			}
			b.finish(t)
			if rw.Readers() != 0 || !rw.TryLock() {
				t.Errorf("the rwmutex is not free after the waiter's turn (readers %d)", rw.Readers())
			} else {
				rw.Unlock()
			}
		})
	}
}
