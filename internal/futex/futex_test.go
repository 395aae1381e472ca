package futex_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/processshared/processshared/internal/futex"
)

// These run against whichever implementation the build selects: the kernel's
// futexes on Linux, polling with -tags processshared_nofutex.

func TestWaitChangedAtOnce(t *testing.T) {
	w := uint32(1)
	if r := futex.Wait(&w, 0, futex.Now()+int64(time.Second)); r == futex.TimedOut {
		t.Fatalf("Wait on a word that differs: %v", r)
	}
}

func TestWaitDeadline(t *testing.T) {
	w := uint32(0)
	start := time.Now()
	for futex.Wait(&w, 0, futex.Now()+int64(20*time.Millisecond)) != futex.TimedOut {
		if time.Since(start) > 10*time.Second {
			t.Fatal("Wait never timed out")
		}
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("Wait timed out after %v, before its deadline", d)
	}
}

func TestWaitDeadlinePassed(t *testing.T) {
	w := uint32(0)
	if r := futex.Wait(&w, 0, futex.Now()-1); r != futex.TimedOut {
		t.Fatalf("Wait with a past deadline: %v", r)
	}
}

// TestWaitWake: a change and a Wake end a Wait with no deadline.
func TestWaitWake(t *testing.T) {
	var w uint32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for atomic.LoadUint32(&w) == 0 {
			futex.Wait(&w, 0, 0)
		}
	}()
	time.Sleep(10 * time.Millisecond)
	atomic.StoreUint32(&w, 1)
	futex.Wake(&w, 1)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("waiter never woke")
	}
}

// TestWaitvAnyWord: a change of any word ends a Waitv, the private one too.
func TestWaitvAnyWord(t *testing.T) {
	if !futex.HasWaitv() {
		t.Skip("no futex_waitv")
	}
	for i := range 3 {
		var words [3]uint32
		done := make(chan struct{})
		go func() {
			defer close(done)
			for atomic.LoadUint32(&words[i]) == 0 {
				futex.Waitv([]futex.Waiter{
					futex.Shared(&words[0], 0),
					futex.Private(&words[1], 0),
					futex.Shared(&words[2], 0),
				}, 0)
			}
		}()
		time.Sleep(10 * time.Millisecond)
		atomic.StoreUint32(&words[i], 1)
		if i == 1 {
			futex.WakePrivate(&words[i], 1)
		} else {
			futex.Wake(&words[i], 1)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Waitv never noticed word %d", i)
		}
	}
}

func TestWaitvDeadline(t *testing.T) {
	if !futex.HasWaitv() {
		t.Skip("no futex_waitv")
	}
	var a, b uint32
	start := time.Now()
	for futex.Waitv([]futex.Waiter{futex.Shared(&a, 0), futex.Private(&b, 0)}, futex.Now()+int64(20*time.Millisecond)) != futex.TimedOut {
		if time.Since(start) > 10*time.Second {
			t.Fatal("Waitv never timed out")
		}
	}
}

func TestDeadline(t *testing.T) {
	if futex.Deadline(time.Time{}) != 0 {
		t.Fatal("the zero time must give no deadline")
	}
	now := futex.Now()
	d := futex.Deadline(time.Now().Add(time.Second))
	if d < now+int64(900*time.Millisecond) || d > now+int64(2*time.Second) {
		t.Fatalf("Deadline(now+1s) = now%+d", d-now)
	}
}
