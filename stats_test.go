//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// mutexStats reads m's state through Inspect.
func mutexStats(t *testing.T, seg *ps.Segment, name string) ps.MutexState {
	t.Helper()
	si, err := seg.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	return *objectState(t, si, name).Mutex
}

// TestMutexStats: a mutex's statistics stay zero under an uncontended
// loop, and grow under a 2-process hammer whose critical sections are long
// enough that waiters sleep; timeouts and cancellations are counted.
func TestMutexStats(t *testing.T) {
	const rounds = 200
	hammer := func(m *ps.Mutex) {
		for range rounds {
			if err := m.LockContext(context.Background()); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(50 * time.Microsecond) // long enough for the other to sleep
			m.Unlock()
		}
	}
	if childtest.Role() == "hammer" {
		s := inherit(t)
		m, err := ps.NewMutex(s, "m")
		if err != nil {
			t.Fatal(err)
		}
		hammer(m)
		return
	}
	seg := create(t, 1<<20, nil)
	m, err := ps.NewMutex(seg, "m")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for range 100000 {
		m.Lock()
		n++
		m.Unlock()
	}
	if n != 100000 {
		t.Fatal(n)
	}
	if st := mutexStats(t, seg, "m"); st.Waited != 0 || st.WaitTotal != 0 || st.WaitMax != 0 || st.Timeouts != 0 || st.Cancellations != 0 {
		t.Fatalf("after an uncontended loop: %+v, want no statistics", st)
	}

	child := segChild(t, seg, "hammer")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	hammer(m)
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	st := mutexStats(t, seg, "m")
	t.Logf("after the hammer: %d waits, %v in all, longest %v", st.Waited, st.WaitTotal, st.WaitMax)
	if st.Waited == 0 || st.Waited > 2*rounds || st.WaitTotal <= 0 || st.WaitMax <= 0 || st.WaitMax > st.WaitTotal {
		t.Errorf("after the hammer: %+v, want between 1 and %d waits with their time", st, 2*rounds)
	}
	if st.Timeouts != 0 || st.Cancellations != 0 {
		t.Errorf("after the hammer: %d timeouts, %d cancellations, want none", st.Timeouts, st.Cancellations)
	}

	// A timeout and a cancellation, while another handle holds m.
	other := reopen(t, seg)
	om, err := ps.NewMutex(other, "m")
	if err != nil {
		t.Fatal(err)
	}
	om.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.LockContext(ctx); err != context.DeadlineExceeded {
		t.Fatalf("LockContext of a held mutex: %v, want DeadlineExceeded", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := m.LockContext(ctx); err != context.Canceled {
		t.Fatalf("LockContext of a held mutex: %v, want Canceled", err)
	}
	om.Unlock()
	after := mutexStats(t, seg, "m")
	if after.Timeouts != 1 || after.Cancellations != 1 || after.Waited != st.Waited+2 {
		t.Errorf("after a timeout and a cancellation: %+v, want 1 and 1, and 2 more waits than %d", after, st.Waited)
	}
}
