//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// FuzzCorruptSegment maps a real segment holding one object of every kind,
// overwrites bytes anywhere in it with fuzz input (as a buggy or hostile
// process could), and then drives the whole public API over it. Every call
// must return a value or an error: no panic, no fault, no hang past the
// short timeouts given to blocking calls.
func FuzzCorruptSegment(f *testing.F) {
	f.Add(uint32(0), []byte("garbage"))
	f.Add(uint32(256), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})         // process table
	f.Add(uint32(16640), []byte{1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff}) // directory
	f.Add(uint32(50000), make([]byte, 300))
	// Layout 4, MaxProcesses 8, MaxObjects 16: the directory at 768 (25
	// entries), the free table at 3968, the heap from 4096.
	for e := uint32(768); e < 768+25*128; e += 128 {
		f.Add(e+4, []byte{9, 0, 0, 0}) // an entry's generation
	}
	f.Add(uint32(768), []byte{3, 0, 0, 0})                                                                    // an entry deleted under its handles
	f.Add(uint32(3968), []byte{0x40, 0x10, 0, 0, 0, 0, 0, 0})                                                 // a free word naming a live object
	f.Add(uint32(4096), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0, 0, 0, 0, 0, 0xff}) // an extent header
	f.Fuzz(func(t *testing.T, at uint32, data []byte) {
		name := shmtest.Name(t)
		// A short InitTimeout: a corrupted entry can look claimed by a live
		// process, and lookups wait that long for it.
		seg, err := ps.Create(name, 96<<10, &ps.Options{MaxObjects: 16, MaxProcesses: 8, InitTimeout: 2 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer seg.Close()
		build(t, seg)
		file, err := os.OpenFile(filepath.Join("/dev/shm", name), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		file.WriteAt(data, int64(at)%seg.Size())
		file.Close()

		// A fresh open sees the corruption from the start (and validates
		// the header); the first handle sees it under its feet.
		if s2, err := ps.Open(name); err == nil {
			s2.Objects()
			s2.Close()
		}
		exercise(seg)
	})
}

// build creates one object of every kind.
func build(t *testing.T, s *ps.Segment) {
	m, err := ps.NewMutex(s, "m")
	if err == nil {
		_, err = ps.NewCond(s, "c", m)
	}
	if err == nil {
		_, err = ps.NewRWMutex(s, "rw")
	}
	if err == nil {
		_, err = ps.NewSemaphore(s, "s", 2, 2)
	}
	if err == nil {
		_, err = ps.NewCountingSemaphore(s, "cs", 1, 4)
	}
	if err == nil {
		_, err = ps.NewBytes(s, "b", 64)
	}
	if err == nil {
		_, err = ps.NewArray[int64](s, "a", 8)
	}
	if err == nil {
		var sl *ps.Slot
		if sl, err = ps.NewSlot(s, "o", 128); err == nil {
			err = sl.Store([]string{"a", "b"})
		}
	}
	if err == nil {
		var q *ps.Queue
		if q, err = ps.NewQueue(s, "q", 4, 64); err == nil {
			err = q.Send([]byte("queued"))
		}
	}
	if err == nil {
		err = buildSync(s)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// exercise calls every public operation on s's objects, ignoring errors.
func exercise(s *ps.Segment) {
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Millisecond)
	}
	s.Objects()
	s.Free()
	if m, err := ps.NewMutex(s, "m"); err == nil {
		m.Locked()
		m.HolderPID()
		m.Consistent()
		m.OwnerDeaths()
		ctx, cancel := short()
		if err := m.LockContext(ctx); err == nil || errors.Is(err, ps.ErrOwnerDead) {
			m.MarkConsistent()
			if c, err := ps.NewCond(s, "c", m); err == nil {
				c.Signal()
				c.Broadcast()
				c.WaitTimeout(time.Millisecond)
			}
			m.Unlock()
		}
		cancel()
		if m.TryLock() {
			m.Unlock()
		}
	}
	if rw, err := ps.NewRWMutex(s, "rw"); err == nil {
		rw.Consistent()
		rw.OwnerDeaths()
		rw.Readers()
		ctx, cancel := short()
		if err := rw.RLockContext(ctx); err == nil || errors.Is(err, ps.ErrOwnerDead) {
			if rw.TryRLock() {
				rw.RUnlock()
			}
			rw.RUnlock()
		}
		cancel()
		ctx, cancel = short()
		if err := rw.LockContext(ctx); err == nil || errors.Is(err, ps.ErrOwnerDead) {
			rw.MarkConsistent()
			rw.Unlock()
		}
		cancel()
		if rw.TryLock() {
			rw.Unlock()
		}
		if rw.TryRLock() {
			rw.RUnlock()
		}
	}
	useSem := func(sem *ps.Semaphore) {
		sem.Value()
		if sem.TryAcquire(1) {
			sem.Release(1)
		}
		ctx, cancel := short()
		if sem.Acquire(ctx, 1) == nil {
			sem.Release(1)
		}
		cancel()
		sem.Release(1)
	}
	if sem, err := ps.NewSemaphore(s, "s", 2, 2); err == nil {
		useSem(sem)
	}
	if sem, err := ps.NewCountingSemaphore(s, "cs", 1, 4); err == nil {
		useSem(sem)
	}
	if b, err := ps.NewBytes(s, "b", 64); err == nil {
		buf := make([]byte, 80)
		b.ReadAt(buf, 0)
		b.WriteAt(buf[:10], 50)
		ps.Load[int64](b, 8)
		ps.Store[uint32](b, 60, 7)
		c := b.NewCursor()
		c.Seek(3, 0)
		c.Read(buf)
		c.Write(buf[:5])
	}
	if a, err := ps.NewArray[int64](s, "a", 8); err == nil {
		a.Store(1, a.Load(0))
		ps.Add(a, 2, 1)
		ps.CompareAndSwap(a, 3, 0, 1)
		for range a.All() {
		}
		a.CopyTo(make([]int64, 8))
	}
	if sl, err := ps.NewSlot(s, "o", 128); err == nil {
		var v []string
		sl.Load(&v)
		sl.LoadBytes()
		sl.Store([]string{"c"})
	}
	if q, err := ps.NewQueue(s, "q", 4, 64); err == nil {
		useQueue(q)
	}
	exerciseSync(s)
	ps.NewMutex(s, "new object")
	// Delete and create again, with handles dropped and not.
	if b, err := ps.NewBytes(s, "b", 64); err == nil {
		s.Delete("b")
		b.ReadAt(make([]byte, 8), 0)
		if b2, err := ps.NewBytes(s, "b", 64); err == nil {
			b2.WriteAt([]byte("again"), 0)
			b2.Drop()
		}
		b.Drop()
	}
	if m, err := ps.NewMutex(s, "m"); err == nil {
		s.Delete("m")
		ctx, cancel := short()
		if err := m.LockContext(ctx); err == nil || errors.Is(err, ps.ErrOwnerDead) {
			m.Unlock()
		}
		cancel()
		m.Drop()
		if m2, err := ps.NewMutex(s, "m"); err == nil {
			if m2.TryLock() {
				m2.Unlock()
			}
		}
	}
	s.Delete("new object")
	ps.NewArray[int64](s, "reuse", 8)
	s.Objects()
}
