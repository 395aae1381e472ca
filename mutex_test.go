//go:build darwin || freebsd || linux

package processshared_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// mustBlock runs f in a goroutine and checks that it has not returned after
// a short while; it returns a function that waits for f to return.
func mustBlock(t *testing.T, what string, f func()) (wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
		t.Fatalf("%s did not block", what)
	case <-time.After(50 * time.Millisecond):
	}
	return func() {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not unblock", what)
		}
	}
}

// segChild starts the current test as a child with role, handing it seg.
func segChild(t *testing.T, seg *ps.Segment, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := childtest.Command(t, t.Name(), role, append(env, "SEG="+seg.Name())...)
	if err := ps.Pass(cmd, seg); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	return cmd
}

// inherit attaches a child to the segment its parent passed.
func inherit(t *testing.T) *ps.Segment {
	t.Helper()
	s, err := ps.Inherit(os.Getenv("SEG"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mutex(t *testing.T, s *ps.Segment, name string) *ps.Mutex {
	t.Helper()
	m, err := ps.NewMutex(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func counter(t *testing.T, s *ps.Segment, name string) *int64 {
	t.Helper()
	p, err := ps.SharedInt64(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runChildren runs n children of the current test with the given role and
// waits for all of them; child i gets ID=i.
func runChildren(t *testing.T, seg *ps.Segment, n int, role string, env ...string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		cmd := segChild(t, seg, role, append(env, "ID="+strconv.Itoa(i))...)
		cmd.Stderr = nil
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMutexIncDec is the seed's L1/L2: 10 processes each do 10 × (lock; read;
// write +1 or -1; unlock) on a shared int, which ends at 0. The second
// variant uses a Semaphore of one permit as the lock.
func TestMutexIncDec(t *testing.T) {
	if childtest.Role() != "" {
		s := inherit(t)
		c := counter(t, s, "value")
		id, _ := strconv.Atoi(os.Getenv("ID"))
		delta := int64(1 - 2*(id%2))
		var lock sync.Locker = mutex(t, s, "lock")
		if childtest.Role() == "sem" {
			sem, err := ps.NewSemaphore(s, "sem", 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			lock = semLocker{sem}
		}
		for range 10 {
			lock.Lock()
			v := *c
			time.Sleep(time.Millisecond / 10)
			*c = v + delta
			lock.Unlock()
		}
		return
	}
	for _, role := range []string{"mutex", "sem"} {
		t.Run(role, func(t *testing.T) {
			seg := create(t, 1<<16, nil)
			c := counter(t, seg, "value")
			runChildren(t, seg, 10, role)
			if *c != 0 {
				t.Fatalf("value should be zero: %d", *c)
			}
		})
	}
}

type semLocker struct{ s *ps.Semaphore }

func (l semLocker) Lock() {
	if err := l.s.Acquire(context.Background(), 1); err != nil {
		panic(err)
	}
}
func (l semLocker) Unlock() {
	if err := l.s.Release(1); err != nil {
		panic(err)
	}
}

// TestMutexUnlockByOtherProcess is the seed's M1: P.1 locks; C.1 tries to
// unlock and is refused with an error naming P's pid.
func TestMutexUnlockByOtherProcess(t *testing.T) {
	if childtest.Role() == "unlock" {
		m := mutex(t, inherit(t), "m")
		defer func() {
			r := recover()
			err, ok := r.(error)
			var ne *ps.NotOwnerError
			if !ok || !errors.As(err, &ne) || !errors.Is(err, ps.ErrNotOwner) {
				t.Fatalf("Unlock by non-holder: recovered %v, want *NotOwnerError", r)
			}
			fmt.Printf("holder=%d caller=%d\n", ne.HolderPID, ne.CallerPID)
		}()
		m.Unlock()
		return
	}
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	m.Lock()
	defer m.Unlock()
	out := childtest.Output(t, segChild(t, seg, "unlock"))
	if !strings.Contains(out, fmt.Sprintf("holder=%d ", os.Getpid())) {
		t.Fatalf("child said %q, want holder=%d", out, os.Getpid())
	}
	if !m.Locked() || m.HolderPID() != os.Getpid() {
		t.Fatalf("after refused unlock: Locked=%v HolderPID=%d", m.Locked(), m.HolderPID())
	}
}

func TestMutexUnlockUnlocked(t *testing.T) {
	m := mutex(t, create(t, 1<<16, nil), "m")
	defer func() {
		if r := recover(); r == nil || !errors.Is(r.(error), ps.ErrNotOwner) {
			t.Fatalf("Unlock of unlocked mutex: recovered %v", r)
		}
	}()
	m.Unlock()
}

// TestMutexSameProcess covers M2–M4 in Go's terms: a second Lock in the
// holding process blocks, and another goroutine may unlock.
func TestMutexSameProcess(t *testing.T) {
	m := mutex(t, create(t, 1<<16, nil), "m")
	m.Lock()
	wait := mustBlock(t, "second Lock", m.Lock)
	m.Unlock()
	wait()
	done := make(chan bool)
	go func() { m.Unlock(); done <- true }() // unlock from another goroutine
	<-done
	if !m.TryLock() {
		t.Fatal("TryLock after unlock from another goroutine failed")
	}
	m.Unlock()
}

// TestMutexTryLock covers T1–T5: TryLock succeeds on a free mutex, fails on a
// held one (by this process or another), and inspection tells who holds it.
func TestMutexTryLock(t *testing.T) {
	if childtest.Role() == "hold" {
		m := mutex(t, inherit(t), "m")
		m.Lock()
		fmt.Println("locked")
		os.Stdin.Read(make([]byte, 1)) // hold until the parent closes stdin
		m.Unlock()
		return
	}
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	if m.Locked() || m.HolderPID() != 0 {
		t.Fatal("new mutex is locked")
	}
	if !m.TryLock() {
		t.Fatal("TryLock on free mutex failed")
	}
	if !m.Locked() || m.HolderPID() != os.Getpid() {
		t.Fatalf("Locked=%v HolderPID=%d, want true, %d", m.Locked(), m.HolderPID(), os.Getpid())
	}
	if m.TryLock() {
		t.Fatal("TryLock on mutex held by this process succeeded")
	}
	m.Unlock()
	cmd := segChild(t, seg, "hold")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	childtest.Start(t, cmd)
	buf := make([]byte, 7)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("child: %q %v", buf, err)
	}
	if m.TryLock() {
		t.Fatal("TryLock on mutex held by another process succeeded")
	}
	if m.HolderPID() != cmd.Process.Pid {
		t.Fatalf("HolderPID %d, want child %d", m.HolderPID(), cmd.Process.Pid)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !m.TryLock() {
		t.Fatal("TryLock after child unlocked failed")
	}
	m.Unlock()
}

func TestMutexContext(t *testing.T) {
	m := mutex(t, create(t, 1<<16, nil), "m")
	m.Lock()
	defer m.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.LockContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- m.LockContext(ctx) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during: %v", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}

// TestMutexOwnerDeath: C.1 locks and is killed (SIGKILL) while P's goroutine
// sleeps in Lock; P.2 acquires at once, told the owner died; until P marks
// the state consistent, every Lock is told again.
func TestMutexOwnerDeath(t *testing.T) {
	if childtest.Role() == "die" {
		m := mutex(t, inherit(t), "m")
		m.Lock()
		fmt.Println("locked")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	m.Lock() // the child's Lock waits for this
	cmd := segChild(t, seg, "die")
	stdout, _ := cmd.StdoutPipe()
	childtest.Start(t, cmd)
	time.Sleep(20 * time.Millisecond)
	m.Unlock() // C.1 now locks
	buf := make([]byte, 7)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatalf("child: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := m.LockContext(ctx)
	var de *ps.OwnerDeadError
	if !errors.Is(err, ps.ErrOwnerDead) || !errors.As(err, &de) {
		t.Fatalf("Lock after holder died: %v, want ErrOwnerDead", err)
	}
	if de.DeadPID != cmd.Process.Pid {
		t.Errorf("DeadPID %d, want %d", de.DeadPID, cmd.Process.Pid)
	}
	cmd.Wait()
	if m.Consistent() || m.OwnerDeaths() != 1 {
		t.Fatalf("Consistent=%v OwnerDeaths=%d after death", m.Consistent(), m.OwnerDeaths())
	}
	m.Unlock()
	if err := m.LockContext(ctx); !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("relock before MarkConsistent: %v, want ErrOwnerDead again", err)
	}
	m.MarkConsistent()
	m.Unlock()
	if err := m.LockContext(ctx); err != nil {
		t.Fatalf("relock after MarkConsistent: %v", err)
	}
	m.Unlock()
}

// child starts the current test as a child with role (and env), reading
// its standard output; it returns the command and a function that reads
// one line, failing the test if none comes within a generous bound.
func child(t *testing.T, seg *ps.Segment, role string, env ...string) (*exec.Cmd, func() string) {
	t.Helper()
	cmd := segChild(t, seg, role, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		r := bufio.NewReader(out)
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				lines <- l[:len(l)-min(1, len(l))]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	return cmd, func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				return "(exited)"
			}
			return l
		case <-time.After(20 * time.Second):
			t.Fatalf("child %s: no line within 20s", role)
			return ""
		}
	}
}
