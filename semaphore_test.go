//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

func semaphore(t *testing.T, s *ps.Segment, name string, initial, max int) *ps.Semaphore {
	t.Helper()
	m, err := ps.NewSemaphore(s, name, initial, max)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func counting(t *testing.T, s *ps.Segment, name string, initial, max int) *ps.Semaphore {
	t.Helper()
	m, err := ps.NewCountingSemaphore(s, name, initial, max)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSemaphoreCounter is the seed's S1: 4 processes × 1000 increments of a
// shared int under the Semaphore end at exactly 4000; without it, the lost
// updates show (< 4000).
func TestSemaphoreCounter(t *testing.T) {
	const procs, n = 4, 1000
	if role := childtest.Role(); role != "" {
		s := inherit(t)
		sem := semaphore(t, s, "sem", 1, 1)
		start := counting(t, s, "start", 0, 0)
		c := counter(t, s, "c")
		if err := start.Acquire(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		for range n {
			if role == "locked" {
				sem.Acquire(context.Background(), 1)
			}
			v := *c
			time.Sleep(10 * time.Microsecond) // widen the window between read and write
			*c = v + 1
			if role == "locked" {
				sem.Release(1)
			}
		}
		return
	}
	for _, role := range []string{"locked", "unlocked"} {
		t.Run(role, func(t *testing.T) {
			seg := create(t, 1<<16, nil)
			start := counting(t, seg, "start", 0, 0)
			c := counter(t, seg, "c")
			done := make(chan struct{})
			go func() { runChildren(t, seg, procs, role); close(done) }()
			time.Sleep(50 * time.Millisecond)
			start.Release(procs) // start together
			<-done
			if role == "locked" && *c != procs*n {
				t.Fatalf("counter %d, want %d", *c, procs*n)
			}
			if role == "unlocked" && *c >= procs*n {
				t.Fatalf("counter %d without the semaphore: the race did not show", *c)
			}
			t.Logf("counter %d", *c)
		})
	}
}

// TestSemaphoreValue covers S2 (the value tracks Release and Acquire) and
// S4–S6 (TryAcquire at once on nonzero and zero; a timed Acquire expires).
func TestSemaphoreValue(t *testing.T) {
	sem := counting(t, create(t, 1<<16, nil), "s", 2, 0)
	if sem.Value() != 2 {
		t.Fatalf("initial value %d", sem.Value())
	}
	if !sem.TryAcquire(1) || sem.Value() != 1 {
		t.Fatalf("TryAcquire on 2: value %d", sem.Value())
	}
	if err := sem.Acquire(context.Background(), 1); err != nil || sem.Value() != 0 {
		t.Fatalf("Acquire: %v, value %d", err, sem.Value())
	}
	if sem.TryAcquire(1) {
		t.Fatal("TryAcquire on 0 succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := sem.Acquire(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed Acquire: %v", err)
	}
	if err := sem.Release(3); err != nil || sem.Value() != 3 {
		t.Fatalf("Release(3): %v, value %d", err, sem.Value())
	}
	if err := sem.Acquire(context.Background(), 3); err != nil || sem.Value() != 0 {
		t.Fatalf("Acquire(3): %v, value %d", err, sem.Value())
	}
}

// TestSemaphoreBounded is the seed's B1: a bounded counting semaphore
// refuses a Release past its maximum and keeps its value.
func TestSemaphoreBounded(t *testing.T) {
	seg := create(t, 1<<16, nil)
	bin := counting(t, seg, "bin", 1, 1)
	if err := bin.Release(1); !errors.Is(err, ps.ErrOverflow) {
		t.Fatalf("Release past max: %v, want ErrOverflow", err)
	}
	if bin.Value() != 1 {
		t.Fatalf("value %d after refused Release", bin.Value())
	}
	if _, err := ps.NewCountingSemaphore(seg, "bin", 1, 2); !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("reopen with another max: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewCountingSemaphore(seg, "bad", 3, 2); err == nil {
		t.Fatal("initial > max accepted")
	}
	// Owned permits have a fixed total: max is 0 or the initial value.
	if _, err := ps.NewSemaphore(seg, "owned", 1, 2); err == nil {
		t.Fatal("owned permits with max 2 and initial 1 accepted")
	}
}

// TestSemaphoreBlockedGoroutine is S3: a goroutine blocked in Acquire does
// not block the process's other goroutines, which go on using the segment.
func TestSemaphoreBlockedGoroutine(t *testing.T) {
	seg := create(t, 1<<16, nil)
	sem := counting(t, seg, "s", 0, 0)
	other := semaphore(t, seg, "other", 1, 0)
	wait := mustBlock(t, "Acquire on 0", func() { sem.Acquire(context.Background(), 1) })
	for range 100 {
		if err := other.Acquire(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		other.Release(1)
	}
	sem.Release(1)
	wait()
}

// TestSemaphoreCrossProcessWake is S7: a Release from another process ends
// a blocked Acquire early.
func TestSemaphoreCrossProcessWake(t *testing.T) {
	if childtest.Role() == "post" {
		sem := counting(t, inherit(t), "s", 0, 0)
		time.Sleep(30 * time.Millisecond)
		if err := sem.Release(1); err != nil {
			t.Fatal(err)
		}
		return
	}
	seg := create(t, 1<<16, nil)
	sem := counting(t, seg, "s", 0, 0)
	cmd := segChild(t, seg, "post")
	childtest.Start(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sem.Acquire(ctx, 1); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	cmd.Wait()
}

func TestSemaphoreContext(t *testing.T) {
	sem := semaphore(t, create(t, 1<<16, nil), "s", 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sem.Acquire(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := sem.Acquire(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := sem.Acquire(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if sem.Value() != 0 {
		t.Fatalf("failed Acquires changed the value to %d", sem.Value())
	}
}

// TestSemaphoreDeadHolder: C acquires both permits and is killed; P, blocked
// in Acquire, gets the permits back without anyone releasing them.
func TestSemaphoreDeadHolder(t *testing.T) {
	if childtest.Role() == "die" {
		sem := semaphore(t, inherit(t), "s", 2, 2)
		if err := sem.Acquire(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		fmt.Println("held")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	seg := create(t, 1<<16, nil)
	sem := semaphore(t, seg, "s", 2, 2)
	cmd := segChild(t, seg, "die")
	stdout, _ := cmd.StdoutPipe()
	childtest.Start(t, cmd)
	buf := make([]byte, 5)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sem.Acquire(ctx, 2); err != nil {
		t.Fatalf("Acquire after the holder died: %v", err)
	}
	cmd.Wait()
	if err := sem.Release(2); err != nil || sem.Value() != 2 {
		t.Fatalf("Release: %v, value %d, want 2", err, sem.Value())
	}
}

func BenchmarkSemaphoreUncontended(b *testing.B) {
	seg, err := ps.NewAnonymous("bench", 1<<16, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	sem, err := ps.NewSemaphore(seg, "s", 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		sem.Acquire(ctx, 1)
		sem.Release(1)
	}
}

func BenchmarkCountingSemaphoreUncontended(b *testing.B) {
	seg, err := ps.NewAnonymous("bench", 1<<16, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	sem, err := ps.NewCountingSemaphore(seg, "s", 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		sem.Acquire(ctx, 1)
		sem.Release(1)
	}
}
