package processshared_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
)

// TestTruncatedUnderFoot: another process shrinks a named segment's file
// while it is mapped. Library calls that walk shared memory return
// ErrTruncated instead of dying of SIGBUS.
func TestTruncatedUnderFoot(t *testing.T) {
	seg := create(t, 1<<20, nil)
	m := mutex(t, seg, "m")
	sem := semaphore(t, seg, "sem", 1, 0)
	if err := os.Truncate(filepath.Join("/dev/shm", seg.Name()), 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := seg.Objects(); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Objects: %v, want ErrTruncated", err)
	}
	if _, err := ps.NewMutex(seg, "new"); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("NewMutex: %v, want ErrTruncated", err)
	}
	if err := sem.Release(1); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Semaphore.Release: %v, want ErrTruncated", err)
	}
	if sem.TryAcquire(1) {
		t.Error("TryAcquire on a truncated segment succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("LockContext: %v, want ErrTruncated", err)
	}
	if m.TryLock() {
		t.Error("TryLock on a truncated segment succeeded")
	}
	if _, err := ps.Open(seg.Name()); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Open of the truncated file: %v, want ErrTruncated", err)
	}
}
