//go:build darwin || freebsd || linux

package processshared_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
)

func rwmutex(t *testing.T, s *ps.Segment, name string) *ps.RWMutex {
	t.Helper()
	rw, err := ps.NewRWMutex(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return rw
}

// rwPanic runs f and returns what it panicked with, failing if it did not.
func rwPanic(t *testing.T, what string, f func()) (r any) {
	t.Helper()
	defer func() {
		if r = recover(); r == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
	return nil
}

// rwChild starts a child of the current test with role, which reports on
// its stdout, and returns its stdout and a function that closes its stdin
// (the child's cue to go on).
func rwChild(t *testing.T, seg *ps.Segment, role string, env ...string) (*bufio.Reader, func(), *os.Process) {
	t.Helper()
	cmd := segChild(t, seg, role, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	childtest.Start(t, cmd)
	return bufio.NewReader(out), func() { stdin.Close() }, cmd.Process
}

func expectLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	if got := rwReadLine(r); got != want {
		t.Fatalf("child said %q, want %q", got, want)
	}
}

// TestRWMutexSemantics, across processes:
//
//	R.1  R read-locks and reports.
//	P.1  P's TryRLock succeeds (readers share); its TryLock fails.
//	P.2  P's goroutine W calls Lock and blocks: R holds a read lock.
//	S.1  S, a third process, tries TryRLock (false: a writer waits) and
//	     RLockContext with a short deadline (DeadlineExceeded): a waiting
//	     writer stops new readers.
//	P.3  P releases its read lock; W still waits for R.
//	R.2  R releases: W locks. S's RLock now blocks until W unlocks.
func TestRWMutexSemantics(t *testing.T) {
	switch childtest.Role() {
	case "reader":
		rw := rwmutex(t, inherit(t), "rw")
		rw.RLock()
		fmt.Println("rlocked")
		os.Stdin.Read(make([]byte, 1))
		rw.RUnlock()
		fmt.Println("runlocked")
		return
	case "late":
		rw := rwmutex(t, inherit(t), "rw")
		fmt.Println(rw.TryRLock())
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		fmt.Println(errors.Is(rw.RLockContext(ctx), context.DeadlineExceeded))
		rw.RLock()
		fmt.Println("rlocked")
		rw.RUnlock()
		return
	}
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	r, goOn, _ := rwChild(t, seg, "reader")
	expectLine(t, r, "rlocked")
	if !rw.TryRLock() {
		t.Fatal("TryRLock failed while another process holds a read lock")
	}
	if rw.Readers() != 2 {
		t.Errorf("Readers() = %d, want 2", rw.Readers())
	}
	if rw.TryLock() {
		t.Fatal("TryLock succeeded while readers hold the lock")
	}
	var writing atomic.Bool
	waitW := mustBlock(t, "Lock under readers", func() {
		rw.Lock()
		writing.Store(true)
	})
	// W's claim is in the word once Inspect shows a writer (mustBlock
	// only showed that Lock has not returned).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if rwState(t, seg, "rw").Writer {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blocked writer never showed in Inspect")
		}
	}
	s, _, _ := rwChild(t, seg, "late")
	expectLine(t, s, "false")
	expectLine(t, s, "true")
	rw.RUnlock()
	if writing.Load() {
		t.Fatal("Lock returned while another process holds a read lock")
	}
	goOn()
	expectLine(t, r, "runlocked")
	waitW()
	// S is now blocked in RLock behind the writer.
	lines := make(chan string, 1)
	go func() { lines <- rwReadLine(s) }()
	select {
	case l := <-lines:
		t.Fatalf("reader got in under the writer: %q", l)
	case <-time.After(50 * time.Millisecond):
	}
	rw.Unlock()
	select {
	case l := <-lines:
		if l != "rlocked" {
			t.Fatalf("late reader said %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reader not let in after Unlock")
	}
}

// TestRWMutexSameHandle: goroutines of one handle share read locks, and
// any of them may RUnlock; a writer through the same handle waits for its
// own handle's readers; RLocker is RLock/RUnlock.
func TestRWMutexSameHandle(t *testing.T) {
	rw := rwmutex(t, create(t, 1<<16, nil), "rw")
	rw.RLock()
	rw.RLocker().Lock()
	if n := rw.Readers(); n != 2 {
		t.Fatalf("Readers() = %d, want 2", n)
	}
	wait := mustBlock(t, "Lock under own read locks", rw.Lock)
	done := make(chan bool)
	go func() { rw.RUnlock(); done <- true }()
	<-done
	rw.RLocker().Unlock()
	wait()
	if rw.TryRLock() || rw.TryLock() {
		t.Fatal("TryRLock or TryLock succeeded under the write lock")
	}
	rw.Unlock()
	if !rw.TryLock() {
		t.Fatal("TryLock of a free rwmutex failed")
	}
	rw.Unlock()
	if !rw.Consistent() || rw.OwnerDeaths() != 0 {
		t.Fatal("a fresh rwmutex is not consistent")
	}
}

// TestRWMutexMisuse: RUnlock and Unlock without the lock, Unlock by another
// process, MarkConsistent by a reader, and use after Close.
func TestRWMutexMisuse(t *testing.T) {
	if childtest.Role() == "unlock" {
		rw := rwmutex(t, inherit(t), "rw")
		r := rwPanic(t, "Unlock by another process", rw.Unlock)
		var ne *ps.NotOwnerError
		if err, ok := r.(error); !ok || !errors.As(err, &ne) {
			t.Fatalf("recovered %v, want *NotOwnerError", r)
		}
		fmt.Printf("holder=%d\n", ne.HolderPID)
		return
	}
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	notOwner := func(what string, f func()) {
		t.Helper()
		r := rwPanic(t, what, f)
		if err, ok := r.(error); !ok || !errors.Is(err, ps.ErrNotOwner) {
			t.Fatalf("%s: recovered %v, want ErrNotOwner", what, r)
		}
	}
	if _, err := ps.NewMutex(seg, "rw"); !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("NewMutex of an RWMutex's name: %v, want ErrMismatch", err)
	}
	if m := mutex(t, seg, "m"); m != nil {
		if _, err := ps.NewRWMutex(seg, "m"); !errors.Is(err, ps.ErrMismatch) {
			t.Fatalf("NewRWMutex of a Mutex's name: %v, want ErrMismatch", err)
		}
	}
	other := rwmutex(t, seg, "rw") // another value on the same handle: the same lock
	other.RLock()
	if rw.Readers() != 1 {
		t.Fatalf("Readers() = %d after an RLock through a second value", rw.Readers())
	}
	rw.RUnlock()
	notOwner("RUnlock never locked", rw.RUnlock)
	rw.RLock()
	if rw.Readers() != 1 {
		t.Fatalf("Readers() = %d under one RLock", rw.Readers())
	}
	rw.RUnlock()
	notOwner("RUnlock once too often", rw.RUnlock)
	if rw.Readers() != 0 {
		t.Fatalf("Readers() = %d after a refused RUnlock", rw.Readers())
	}
	notOwner("Unlock of unlocked", rw.Unlock)
	rw.RLock()
	notOwner("MarkConsistent by a reader", rw.MarkConsistent)
	rw.RUnlock()
	rw.Lock()
	want := fmt.Sprintf("holder=%d", os.Getpid())
	if out := childtest.Output(t, segChild(t, seg, "unlock")); !strings.HasPrefix(out, want+"\n") {
		t.Fatalf("child said %q, want %q", out, want)
	}
	rw.MarkConsistent()
	rw.Unlock()

	seg.Close()
	if err := rw.LockContext(context.Background()); !errors.Is(err, ps.ErrClosed) {
		t.Fatalf("LockContext after Close: %v", err)
	}
	if err := rw.RLockContext(context.Background()); !errors.Is(err, ps.ErrClosed) {
		t.Fatalf("RLockContext after Close: %v", err)
	}
	for name, f := range map[string]func(){"RLock": rw.RLock, "Lock": rw.Lock, "RUnlock": rw.RUnlock, "Unlock": rw.Unlock,
		"TryLock": func() { rw.TryLock() }, "TryRLock": func() { rw.TryRLock() }, "Consistent": func() { rw.Consistent() }} {
		r := rwPanic(t, name+" after Close", f)
		if err, ok := r.(error); !ok || !errors.Is(err, ps.ErrClosed) {
			t.Fatalf("%s after Close: recovered %v, want ErrClosed", name, r)
		}
	}
}

// TestRWMutexContext: RLockContext under a writer and LockContext under a
// writer and under a reader (another process), each cancelled before,
// during, and at its deadline. A writer that gives up while draining lets
// the readers it held back in.
func TestRWMutexContext(t *testing.T) {
	switch childtest.Role() {
	case "writer", "reader":
		rw := rwmutex(t, inherit(t), "rw")
		if childtest.Role() == "writer" {
			rw.Lock()
		} else {
			rw.RLock()
		}
		fmt.Println("locked")
		os.Stdin.Read(make([]byte, 1))
		if childtest.Role() == "writer" {
			rw.Unlock()
		} else {
			rw.RUnlock()
		}
		return
	}
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	check := func(name string, lock func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := lock(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s cancelled before: %v", name, err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		errc := make(chan error)
		go func() { errc <- lock(ctx) }()
		time.Sleep(20 * time.Millisecond)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("%s cancelled during: %v", name, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if err := lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s deadline: %v", name, err)
		}
	}
	for _, role := range []string{"writer", "reader"} {
		r, goOn, p := rwChild(t, seg, role)
		expectLine(t, r, "locked")
		if role == "writer" {
			check("RLockContext under a writer", rw.RLockContext)
		}
		check("LockContext under a "+role, rw.LockContext)
		if role == "reader" && !rw.TryRLock() {
			t.Fatal("TryRLock failed after a writer gave up")
		} else if role == "reader" {
			rw.RUnlock()
		}
		goOn()
		p.Wait()
	}
	if err := rw.LockContext(context.Background()); err != nil {
		t.Fatalf("LockContext after the children left: %v", err)
	}
	rw.Unlock()
	// Three calls waited past their deadline; at least three (those
	// cancelled before they slept may not count) were cancelled waiting.
	if st := rwState(t, seg, "rw"); st.Timeouts != 3 || st.Cancellations < 3 || st.Waited < 6 || st.WaitTotal <= 0 {
		t.Errorf("statistics: %d timeouts (want 3), %d cancellations (want 3 or more), %d waits, %v", st.Timeouts, st.Cancellations, st.Waited, st.WaitTotal)
	}
}

// TestRWMutexHammer: 3 processes × 3 goroutines (a writer and two readers
// each) on one 256-byte record of 32 words. A writer sets every word to
// a new value one by one; a reader copies the record and checks that every
// word is equal, and that no writer is inside while it reads. Shared
// counters of writers and readers inside check exclusion from both sides;
// the final record equals the number of writes made.
func TestRWMutexHammer(t *testing.T) {
	const words, writes, reads, procs = 32, 2000, 5000, 3
	type counters struct{ writersIn, readersIn, bad, written *int64 }
	open := func(s *ps.Segment) (*ps.RWMutex, *ps.Array[int64], counters) {
		rec, err := ps.NewArray[int64](s, "record", words)
		if err != nil {
			t.Fatal(err)
		}
		return rwmutex(t, s, "rw"), rec, counters{counter(t, s, "w"), counter(t, s, "r"), counter(t, s, "bad"), counter(t, s, "n")}
	}
	if childtest.Role() == "hammer" {
		s := inherit(t)
		rw, rec, c := open(s)
		// Start together, so that the processes overlap.
		ready := counter(t, s, "ready")
		atomic.AddInt64(ready, 1)
		for atomic.LoadInt64(ready) < procs {
			time.Sleep(time.Millisecond)
		}
		var wg sync.WaitGroup
		wg.Go(func() { // writer
			for range writes {
				rw.Lock()
				if atomic.AddInt64(c.writersIn, 1) != 1 || atomic.LoadInt64(c.readersIn) != 0 {
					atomic.AddInt64(c.bad, 1)
				}
				v := rec.Load(0) + 1
				for i := range words {
					rec.Store(i, v)
				}
				atomic.AddInt64(c.written, 1)
				atomic.AddInt64(c.writersIn, -1)
				rw.Unlock()
			}
		})
		reader := func() {
			var buf [words]int64
			for range reads {
				rw.RLock()
				atomic.AddInt64(c.readersIn, 1)
				if atomic.LoadInt64(c.writersIn) != 0 {
					atomic.AddInt64(c.bad, 1)
				}
				rec.CopyTo(buf[:])
				for _, w := range buf {
					if w != buf[0] {
						atomic.AddInt64(c.bad, 1)
						break
					}
				}
				atomic.AddInt64(c.readersIn, -1)
				rw.RUnlock()
			}
		}
		wg.Go(reader)
		wg.Go(reader)
		wg.Wait()
		return
	}
	seg := create(t, 1<<16, nil)
	_, rec, c := open(seg)
	runChildren(t, seg, procs, "hammer")
	t.Logf("%d writes, %d bad observations", *c.written, *c.bad)
	if *c.bad != 0 {
		t.Fatalf("%d observations of a half-written record or a writer among readers", *c.bad)
	}
	if *c.written != procs*writes || rec.Load(0) != procs*writes || rec.Load(words-1) != procs*writes {
		t.Fatalf("record %d..%d after %d writes, want %d", rec.Load(0), rec.Load(words-1), *c.written, procs*writes)
	}
}

// TestRWMutexWriterKilled: W locks, writes half a record and is killed
// (SIGKILL) while P sleeps in RLockContext. P gets the read lock at once
// and is told (ErrOwnerDead); every locker is told until a writer calls
// MarkConsistent.
func TestRWMutexWriterKilled(t *testing.T) {
	if childtest.Role() == "die" {
		rw := rwmutex(t, inherit(t), "rw")
		rw.Lock()
		fmt.Println("locked")
		os.Stdin.Read(make([]byte, 1))
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	r, goOn, p := rwChild(t, seg, "die")
	expectLine(t, r, "locked")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error)
	go func() { errc <- rw.RLockContext(ctx) }()
	time.Sleep(20 * time.Millisecond)
	goOn()
	err := <-errc
	var de *ps.OwnerDeadError
	if !errors.As(err, &de) || !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("RLockContext after the writer died: %v, want ErrOwnerDead", err)
	}
	if de.DeadPID != p.Pid {
		t.Errorf("DeadPID %d, want %d", de.DeadPID, p.Pid)
	}
	if rw.Readers() != 1 || rw.Consistent() || rw.OwnerDeaths() != 1 {
		t.Fatalf("after the death: Readers=%d Consistent=%v OwnerDeaths=%d", rw.Readers(), rw.Consistent(), rw.OwnerDeaths())
	}
	if err := rw.RLockContext(ctx); !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("second RLockContext: %v, want ErrOwnerDead again", err)
	}
	rw.RUnlock()
	rw.RUnlock()
	if err := rw.LockContext(ctx); !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("LockContext before MarkConsistent: %v, want ErrOwnerDead", err)
	}
	rw.MarkConsistent()
	rw.Unlock()
	if err := rw.RLockContext(ctx); err != nil {
		t.Fatalf("RLockContext after MarkConsistent: %v", err)
	}
	rw.RUnlock()
	if rw.OwnerDeaths() != 1 {
		t.Fatalf("OwnerDeaths %d, want 1", rw.OwnerDeaths())
	}
}

// TestRWMutexReaderKilled: R read-locks twice and is killed while P sleeps
// in LockContext; P gets the write lock, not told of any death: a dead
// reader's holds are returned. Then a reader that closes its Segment
// holding a read lock: the same.
func TestRWMutexReaderKilled(t *testing.T) {
	switch childtest.Role() {
	case "die", "close":
		s := inherit(t)
		rw := rwmutex(t, s, "rw")
		rw.RLock()
		rw.RLock()
		fmt.Println("rlocked")
		os.Stdin.Read(make([]byte, 1))
		if childtest.Role() == "close" {
			s.Close()
			os.Stdin.Read(make([]byte, 1))
			return
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	for _, role := range []string{"die", "close"} {
		r, goOn, p := rwChild(t, seg, role)
		expectLine(t, r, "rlocked")
		if rw.Readers() != 2 {
			t.Fatalf("Readers() = %d, want 2", rw.Readers())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errc := make(chan error)
		go func() { errc <- rw.LockContext(ctx) }()
		time.Sleep(20 * time.Millisecond)
		goOn()
		if err := <-errc; err != nil {
			t.Fatalf("%s: LockContext after the reader left: %v, want nil", role, err)
		}
		cancel()
		if !rw.Consistent() || rw.Readers() != 0 {
			t.Fatalf("%s: Consistent=%v Readers=%d", role, rw.Consistent(), rw.Readers())
		}
		rw.Unlock()
		p.Kill()
		p.Wait()
	}
}

// TestRWMutexWriterCloses: a writer that closes its Segment holding the
// write lock is a dead writer to the next locker.
func TestRWMutexWriterCloses(t *testing.T) {
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	other, err := ps.Open(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	rw2 := rwmutex(t, other, "rw")
	rw2.Lock()
	wait := mustBlock(t, "RLock under another handle's write lock", rw.RLock)
	other.Close()
	wait()
	if rw.Consistent() {
		t.Fatal("Consistent after the writer closed holding the lock")
	}
	rw.RUnlock()
	if !rw.TryLock() {
		t.Fatal("TryLock failed")
	}
	rw.MarkConsistent()
	rw.Unlock()
}

// TestRWMutexInspect: Inspect shows the readers of each process, then the
// writer, and after a writer's death the inconsistent state.
func TestRWMutexInspect(t *testing.T) {
	if childtest.Role() == "reader" {
		rw := rwmutex(t, inherit(t), "rw")
		rw.RLock()
		rw.RLock()
		fmt.Println("rlocked")
		os.Stdin.Read(make([]byte, 1))
		return
	}
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	state := func() *ps.RWMutexState { t.Helper(); return rwState(t, seg, "rw") }
	if st := state(); st.Writer || len(st.Readers) != 0 || !st.Consistent {
		t.Fatalf("fresh rwmutex: %+v", st)
	}
	r, goOn, p := rwChild(t, seg, "reader")
	expectLine(t, r, "rlocked")
	rw.RLock()
	st := state()
	counts := map[int]int{}
	for _, h := range st.Readers {
		if h.Alive {
			counts[h.PID] = h.Count
		}
	}
	if st.Writer || len(st.Readers) != 2 || counts[os.Getpid()] != 1 || counts[p.Pid] != 2 {
		t.Fatalf("two reader processes: %+v", st)
	}
	rw.RUnlock()
	goOn()
	p.Wait()
	if st := state(); len(st.Readers) != 1 || st.Readers[0].Alive || st.Readers[0].PID != p.Pid {
		t.Fatalf("after the reader exited holding 2: %+v (its dead holds are shown, not counted)", st)
	}
	rw.Lock()
	if st := state(); !st.Writer || st.WriterPID != os.Getpid() || !st.WriterAlive {
		t.Fatalf("write-locked: %+v", st)
	}
	rw.Unlock()
}

// rwReadLine reads a line from a child, without its newline.
func rwReadLine(r *bufio.Reader) string {
	line, err := r.ReadString('\n')
	if err != nil && line == "" {
		return "(" + err.Error() + ")"
	}
	return strings.TrimSuffix(line, "\n")
}

// TestRWMutexCloseWakes: Close wakes a reader sleeping behind a writer of
// another handle, and a writer sleeping while it waits for a reader of
// another handle: both return ErrClosed. The waiting writer frees the
// writer word as it leaves, so the other handle's next locker is not told
// of a death.
func TestRWMutexCloseWakes(t *testing.T) {
	seg := create(t, 1<<16, nil)
	other, err := ps.Open(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held := rwmutex(t, other, "rw")
	for _, what := range []string{"RLockContext under a writer", "LockContext under a reader"} {
		s, err := ps.Open(seg.Name())
		if err != nil {
			t.Fatal(err)
		}
		rw := rwmutex(t, s, "rw")
		lock, unlock := held.Lock, held.Unlock
		wait := rw.RLockContext
		if what == "LockContext under a reader" {
			lock, unlock, wait = held.RLock, held.RUnlock, rw.LockContext
		}
		lock()
		errc := make(chan error, 1)
		go func() { errc <- wait(context.Background()) }()
		select {
		case err := <-errc:
			t.Fatalf("%s returned at once: %v", what, err)
		case <-time.After(50 * time.Millisecond):
		}
		s.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, ps.ErrClosed) {
				t.Fatalf("%s, then Close: %v, want ErrClosed", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Close did not wake the waiter", what)
		}
		unlock()
	}
	if err := held.LockContext(context.Background()); err != nil {
		t.Fatalf("LockContext after the closed handles left: %v, want nil", err)
	}
	held.Unlock()
}

// TestRWMutexKillLoop kills, at random instants, a process whose two
// goroutines write (Lock; a++; b = a; Unlock) and read (RLockContext; a
// must equal b unless told of a dead writer; RUnlock) in a loop, 60 times.
// After each kill the parent must get the write lock, told of the death if
// the child died writing (a == b+1 then shows the half-done update), and
// not told if it died reading or outside. In a third of the trials a
// parent reader, and in another third a parent writer, is already waiting
// when the kill lands.
func TestRWMutexKillLoop(t *testing.T) {
	if childtest.Role() == "loop" {
		s := inherit(t)
		rw := rwmutex(t, s, "rw")
		a, b, bad := counter(t, s, "a"), counter(t, s, "b"), counter(t, s, "bad")
		go func() {
			for i := 0; ; i++ {
				rw.Lock()
				*a++
				if i%3 == 0 {
					time.Sleep(time.Microsecond)
				}
				*b = *a
				rw.Unlock()
			}
		}()
		go func() {
			for {
				if err := rw.RLockContext(context.Background()); err == nil {
					if *a != *b {
						atomic.AddInt64(bad, 1)
					}
				} else if !errors.Is(err, ps.ErrOwnerDead) {
					panic(err)
				}
				rw.RUnlock()
			}
		}()
		os.Stdout.WriteString("running\n")
		select {}
	}
	const trials = 60
	seg := create(t, 1<<16, nil)
	rw := rwmutex(t, seg, "rw")
	a, b, bad := counter(t, seg, "a"), counter(t, seg, "b"), counter(t, seg, "bad")
	deaths := 0
	for trial := range trials {
		cmd := segChild(t, seg, "loop")
		stdout, _ := cmd.StdoutPipe()
		childtest.Start(t, cmd)
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var res chan error
		switch trial % 3 {
		case 1: // a reader waits
			res = make(chan error, 1)
			go func() {
				err := rw.RLockContext(ctx)
				if err == nil || errors.Is(err, ps.ErrOwnerDead) {
					rw.RUnlock()
				}
				res <- err
			}()
		case 2: // a writer waits
			res = make(chan error, 1)
			go func() { res <- rw.LockContext(ctx) }()
		}
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		var err error
		if res != nil {
			err = <-res
			if e := err; (e == nil || errors.Is(e, ps.ErrOwnerDead)) && trial%3 == 1 {
				err = rw.LockContext(ctx) // the reader is done: now the write lock
			} else if e != nil && !errors.Is(e, ps.ErrOwnerDead) {
				t.Fatalf("trial %d: waiter after the kill: %v", trial, e)
			}
		} else {
			err = rw.LockContext(ctx)
		}
		cancel()
		switch {
		case err == nil:
			if *a != *b {
				t.Fatalf("trial %d: a=%d b=%d without ErrOwnerDead", trial, *a, *b)
			}
		case errors.Is(err, ps.ErrOwnerDead):
			deaths++
			if *a != *b && *a != *b+1 {
				t.Fatalf("trial %d: a=%d b=%d", trial, *a, *b)
			}
			*b = *a
			rw.MarkConsistent()
		default:
			t.Fatalf("trial %d: Lock after kill: %v", trial, err)
		}
		if n := rw.Readers(); n != 0 {
			t.Fatalf("trial %d: %d read locks counted under the write lock", trial, n)
		}
		rw.Unlock()
	}
	if rw.OwnerDeaths() != deaths || atomic.LoadInt64(bad) != 0 {
		t.Fatalf("OwnerDeaths %d, saw %d; readers saw a half-done update %d times", rw.OwnerDeaths(), deaths, atomic.LoadInt64(bad))
	}
	t.Logf("%d trials, %d killed while writing", trials, deaths)
}

// TestRWMutexFirstRLocks: the first read locks of a handle, taken by many
// goroutines at once (each claims the handle's reader line), are all
// counted: a writer through another handle waits for every one.
func TestRWMutexFirstRLocks(t *testing.T) {
	seg := create(t, 1<<16, nil)
	for round := range 20 {
		s, err := ps.Open(seg.Name())
		if err != nil {
			t.Fatal(err)
		}
		rw := rwmutex(t, s, "rw")
		const g = 8
		var in, out sync.WaitGroup
		release := make(chan struct{})
		in.Add(g)
		for range g {
			out.Go(func() {
				rw.RLock()
				in.Done()
				<-release
				rw.RUnlock()
			})
		}
		in.Wait()
		if n := rw.Readers(); n != g {
			t.Fatalf("round %d: Readers() = %d, want %d", round, n, g)
		}
		w := rwmutex(t, seg, "rw")
		if w.TryLock() {
			t.Fatalf("round %d: TryLock succeeded under %d read locks", round, g)
		}
		close(release)
		out.Wait()
		if !w.TryLock() {
			t.Fatalf("round %d: TryLock failed after the readers left", round)
		}
		w.Unlock()
		s.Close()
	}
}

// rwState returns the state Inspect shows of the RWMutex name in seg.
func rwState(t *testing.T, seg *ps.Segment, name string) *ps.RWMutexState {
	t.Helper()
	si, err := ps.Inspect(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range si.Objects {
		if o.Name == name && o.Kind == ps.KindRWMutex && o.RWMutex != nil && o.Err == nil {
			return o.RWMutex
		}
	}
	t.Fatalf("no rwmutex %q in %+v", name, si.Objects)
	return nil
}

// TestRWMutexCorrupt writes garbage (all ones, the high bit alone, 2³¹-1,
// 1, a random word) over each word of an RWMutex's header and of its first
// two reader lines, and then drives every operation (exercise, as
// FuzzCorruptSegment does): each returns or fails with an error; none
// panics or hangs.
func TestRWMutexCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for word := range 40 { // 16 header words, then 24 words of reader lines
		for _, pattern := range []uint32{0xffffffff, 0x80000000, 0x7fffffff, 1, rng.Uint32()} {
			name := shmtest.Name(t)
			seg, err := ps.Create(name, 96<<10, &ps.Options{MaxObjects: 16, MaxProcesses: 8, InitTimeout: 2 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			build(t, seg)
			var off int64 = -1
			objs, _ := seg.Objects()
			for _, o := range objs {
				if o.Name == "rw" {
					off = o.Offset
				}
			}
			if off < 0 {
				t.Fatal("no rwmutex built")
			}
			f, err := os.OpenFile(filepath.Join("/dev/shm", name), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var b [4]byte
			binary.NativeEndian.PutUint32(b[:], pattern)
			f.WriteAt(b[:], off+4*int64(word))
			f.Close()
			start := time.Now()
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("word %d = %#x: panic %v", word, pattern, r)
					}
				}()
				exercise(seg)
			}()
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("word %d = %#x: exercise took %v", word, pattern, d)
			}
			seg.Close()
		}
	}
}
