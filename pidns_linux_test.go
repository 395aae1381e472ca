//go:build linux

package processshared_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// The tests in this file run their children each as pid 1 of a PID namespace
// of its own (CLONE_NEWPID), as the containers of one Kubernetes pod are:
// they share /dev/shm, and so a named segment, but not pids. In such a child
// every thread id is small, the keeper's is the same in every child (usually
// 1), and pids mean nothing to the other processes. A lock that records a
// process by its thread id, or judges its liveness by kill(pid, 0), takes
// two live processes for one, or a dead one for a live one. Identity must be
// something the segment hands out (see STYLE.md, rule 26).
//
// Creating a PID namespace needs root (CAP_SYS_ADMIN); the tests skip
// without it. As root, a child that cannot be started fails the test.

// nsBound bounds every wait of these tests' children: a lock that never
// comes fails the test after it instead of hanging it. The parent waits for
// a child's report twice as long.
const nsBound = 20 * time.Second

// needRoot skips t unless it runs as root, which creating a PID namespace
// needs.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starting a child in a new PID namespace (CLONE_NEWPID) needs root")
	}
}

// An nsChild is a child process of the running test, speaking a line
// protocol: it reports on its standard output, one line per report, and
// takes commands on its standard input, one line each. The end of its input
// tells it to finish.
type nsChild struct {
	name  string // for messages: role and pid
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // its standard output, closed at EOF
	tid   uint32      // the keeper id it reported when it attached

	mu   sync.Mutex
	seen []string // every line read so far, for failure messages
}

// startNS starts the top-level test of t again as a child with role, in a
// PID namespace of its own if newNS is set, attached to the segment called
// seg (see nsAttach), and waits for it to attach. The child is killed at
// cleanup if it is still running.
func startNS(t *testing.T, role, seg string, newNS bool, env ...string) *nsChild {
	t.Helper()
	test, _, _ := strings.Cut(t.Name(), "/")
	cmd := childtest.Command(t, test, role, append(env, "SEG="+seg)...)
	if newNS {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child %q (new PID namespace: %v): %v", role, newNS, err)
	}
	c := &nsChild{name: fmt.Sprintf("%s (pid %d)", role, cmd.Process.Pid), cmd: cmd, in: in, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.drain(2 * nsBound)
			c.cmd.Wait()
		}
	})
	f := strings.Fields(c.expect(t, "attached"))
	if len(f) != 1 || !strings.HasPrefix(f[0], "tid=") {
		t.Fatalf("child %s: bad report %q", c.name, f)
	}
	tid, err := strconv.ParseUint(strings.TrimPrefix(f[0], "tid="), 10, 32)
	if err != nil {
		t.Fatalf("child %s: bad report %q", c.name, f)
	}
	c.tid = uint32(tid)
	return c
}

// startPair starts two children, each in a PID namespace of its own, with
// roles a and b, and tries up to ten pairs for two that report the same
// keeper id (a child's keeper thread is usually, not always, its thread 1).
// It returns the last pair tried; the others are told to finish.
func startPair(t *testing.T, a, b, seg string, env ...string) (ca, cb *nsChild) {
	t.Helper()
	for try := range 10 {
		if try > 0 {
			ca.finish(t)
			cb.finish(t)
		}
		ca = startNS(t, a, seg, true, env...)
		cb = startNS(t, b, seg, true, env...)
		if ca.tid == cb.tid {
			break
		}
	}
	t.Logf("keeper ids: %s %d, %s %d", a, ca.tid, b, cb.tid)
	if ca.tid != cb.tid {
		t.Logf("no pair of children with the same keeper id in 10 tries: the test shows less")
	}
	return ca, cb
}

// next returns the child's next report.
func (c *nsChild) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("child %s exited before reporting; its output:\n%s", c.name, c.transcript())
		}
		c.mu.Lock()
		c.seen = append(c.seen, l)
		c.mu.Unlock()
		return l
	case <-time.After(2 * nsBound):
		t.Fatalf("child %s reported nothing in %v; its output so far:\n%s", c.name, 2*nsBound, c.transcript())
	}
	panic("unreachable")
}

// expect returns the rest of the child's next report, which must start with
// the word want.
func (c *nsChild) expect(t *testing.T, want string) string {
	t.Helper()
	l := c.next(t)
	first, rest, _ := strings.Cut(l, " ")
	if first != want {
		c.drain(time.Second) // the rest of a failing child's message
		t.Fatalf("child %s reported %q, want %q …; its output:\n%s", c.name, l, want, c.transcript())
	}
	return rest
}

// send gives the child a command.
func (c *nsChild) send(t *testing.T, cmd string) {
	t.Helper()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		t.Fatalf("child %s: sending %q: %v", c.name, cmd, err)
	}
}

// kill kills the child with SIGKILL and reaps it.
func (c *nsChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", c.name, err)
	}
	c.drain(2 * nsBound)
	c.cmd.Wait()
}

// finish closes the child's input, lets it finish and checks that it passed.
func (c *nsChild) finish(t *testing.T) {
	t.Helper()
	c.in.Close()
	c.drain(2 * nsBound)
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child %s: %v; its output:\n%s", c.name, err, c.transcript())
	}
}

// drain reads the child's output to its end, for at most d, keeping it for
// transcript. Wait requires it.
func (c *nsChild) drain(d time.Duration) {
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return
			}
			c.mu.Lock()
			c.seen = append(c.seen, l)
			c.mu.Unlock()
		case <-timeout:
			return
		}
	}
}

func (c *nsChild) transcript() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "\t" + strings.Join(c.seen, "\n\t")
}

// The child's side of the protocol.

// childInput is the child's standard input, read a line at a time.
var childInput = sync.OnceValue(func() *bufio.Scanner { return bufio.NewScanner(os.Stdin) })

// nsCommand returns the child's next command, or "" at the end of its input.
func nsCommand() string {
	if childInput().Scan() {
		return childInput().Text()
	}
	return ""
}

// nsSay sends a report to the parent.
func nsSay(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// nsAttach is the child's first step: it opens the segment whose name is in
// $SEG, reports "attached tid=N" with its keeper id, and waits for the
// command "go". It returns nil if its input ends first: the parent did not
// want this child after all.
func nsAttach(t *testing.T) *ps.Segment {
	t.Helper()
	s, err := ps.Open(os.Getenv("SEG"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nsSay("attached tid=%d", ps.KeeperTID())
	if cmd := nsCommand(); cmd != "go" {
		return nil
	}
	return s
}

// lockResult describes the result of a lock call in a word for the parent:
// "ok", "ownerdead", or the error.
func lockResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ps.ErrOwnerDead):
		return "ownerdead"
	}
	return "error " + err.Error()
}

// notOwnerResult calls unlock and describes how it panicked: "notowner" for
// a *NotOwnerError, "nopanic" if it did not.
func notOwnerResult(unlock func()) (res string) {
	defer func() {
		r := recover()
		var ne *ps.NotOwnerError
		switch err, _ := r.(error); {
		case r == nil:
			res = "nopanic"
		case errors.As(err, &ne):
			res = "notowner"
		default:
			res = fmt.Sprintf("panic %v", r)
		}
	}()
	unlock()
	return ""
}

// reportBlocked runs f in a goroutine and reports "waiting" if it has not
// returned after a short while (or its result at once, if it has), then the
// result f returns, bounded by nsBound.
func reportBlocked(f func() string) {
	res := make(chan string, 1)
	go func() { res <- f() }()
	select {
	case r := <-res:
		nsSay("returned %s", r)
		return
	case <-time.After(100 * time.Millisecond):
		nsSay("waiting")
	}
	select {
	case r := <-res:
		nsSay("%s", r)
	case <-time.After(nsBound):
		nsSay("hung for %v", nsBound)
		os.Exit(1) // the call still blocked would panic when cleanup closes the segment
	}
}

// killHolder has the holder a take what it holds (and report held), then
// kills a with SIGKILL and reaps it, either before telling b to start
// (after) or once b reports that it is waiting. It returns b's next report.
func killHolder(t *testing.T, a, b *nsChild, held string, after bool) string {
	t.Helper()
	a.send(t, "go")
	a.expect(t, held)
	if after {
		a.kill(t)
		b.send(t, "go")
	} else {
		b.send(t, "go")
		b.expect(t, "waiting")
		a.kill(t)
	}
	return b.next(t)
}

// TestPIDNSMutexHammer: two processes, each pid 1 of its own PID namespace
// and with the same keeper thread id (startPair tries for it), increment a
// shared counter 20000 times each under one Mutex, from two goroutines
// each; the counter ends exact.
//
//	P.1 creates the segment, the mutex and the counter.
//	C1.1, C2.1 attach and report; P.2 starts both.
//	C1.2, C2.2 increment under the mutex and report.
//	P.3 checks the counter.
func TestPIDNSMutexHammer(t *testing.T) {
	const n, goroutines = 20000, 2
	if childtest.Role() == "hammer" {
		s := nsAttach(t)
		if s == nil {
			return
		}
		m := mutex(t, s, "m")
		a := newArray[int64](t, s, "count", 1)
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range n / goroutines {
					m.Lock()
					a.Store(0, a.Load(0)+1)
					m.Unlock()
				}
			})
		}
		wg.Wait()
		nsSay("done")
		return
	}
	needRoot(t)
	seg := create(t, 1<<16, nil)
	mutex(t, seg, "m")
	a := newArray[int64](t, seg, "count", 1)
	c1, c2 := startPair(t, "hammer", "hammer", seg.Name())
	c1.send(t, "go")
	c2.send(t, "go")
	c1.expect(t, "done")
	c2.expect(t, "done")
	c1.finish(t)
	c2.finish(t)
	if got := a.Load(0); got != 2*n {
		t.Fatalf("counter %d after 2 × %d increments under the mutex: lost updates", got, n)
	}
}

// TestPIDNSUnlockByNonHolder: the Mutex held by one process cannot be
// unlocked by another that has the same keeper thread id.
//
//	A.1 locks m and reports.
//	B.1 (same keeper id, another PID namespace) unlocks m: *NotOwnerError.
//	P.1 sees m still locked.
//	A.2 unlocks m: no panic.
func TestPIDNSUnlockByNonHolder(t *testing.T) {
	switch childtest.Role() {
	case "hold":
		s := nsAttach(t)
		if s == nil {
			return
		}
		m := mutex(t, s, "m")
		m.Lock()
		nsSay("locked")
		if nsCommand() == "unlock" {
			nsSay("%s", notOwnerResult(m.Unlock))
		}
		return
	case "unlock":
		s := nsAttach(t)
		if s == nil {
			return
		}
		nsSay("%s", notOwnerResult(mutex(t, s, "m").Unlock))
		return
	}
	needRoot(t)
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	a, b := startPair(t, "hold", "unlock", seg.Name())
	a.send(t, "go")
	a.expect(t, "locked")
	b.send(t, "go")
	if r := b.next(t); r != "notowner" {
		t.Errorf("Unlock by a process that does not hold the mutex (keeper id %d, the holder's %d): %s, want a *NotOwnerError panic", b.tid, a.tid, r)
	}
	b.finish(t)
	if !m.Locked() {
		t.Errorf("the mutex is unlocked after the non-holder's refused Unlock")
	}
	a.send(t, "unlock")
	if r := a.next(t); r != "nopanic" {
		t.Errorf("the holder's Unlock: %s, want no panic", r)
	}
	a.finish(t)
	if !m.TryLock() {
		t.Fatal("TryLock after the holder unlocked failed")
	}
	m.Unlock()
}

// TestPIDNSOwnerKilled: a Mutex whose holder is SIGKILLed goes to a waiter
// in another PID namespace with the same keeper thread id, told the owner
// died: the waiter locks after the death, or is already waiting in
// LockContext or in Lock.
//
//	A.1 locks m and reports.
//	B.1 (same keeper id, another namespace) [waiting: starts to lock, and
//	    reports that it is still blocked].
//	P.1 kills A with SIGKILL and reaps it.
//	B.2 [after: starts to lock]; acquires m, told the owner died.
func TestPIDNSOwnerKilled(t *testing.T) {
	if childtest.Role() == "" && !ps.Robust() {
		t.Skip("no kernel death mark (processshared_nofutex build): a holder in another PID namespace is taken to be alive, as documented")
	}
	lockContext := func(m *ps.Mutex) string {
		ctx, cancel := context.WithTimeout(context.Background(), nsBound)
		defer cancel()
		err := m.LockContext(ctx)
		if err == nil || errors.Is(err, ps.ErrOwnerDead) {
			defer m.Unlock()
		}
		return lockResult(err)
	}
	lock := func(m *ps.Mutex) string {
		m.Lock()
		defer m.Unlock()
		if !m.Consistent() {
			return "ownerdead"
		}
		return "ok"
	}
	if role := childtest.Role(); role != "" {
		s := nsAttach(t)
		if s == nil {
			return
		}
		m := mutex(t, s, "m")
		switch role {
		case "hold":
			m.Lock()
			nsSay("locked")
			nsCommand() // killed while waiting here
			t.Error("the holder was not killed")
		case "after":
			nsSay("%s", lockContext(m))
		case "waiting-context":
			reportBlocked(func() string { return lockContext(m) })
		case "waiting-lock":
			reportBlocked(func() string { return lock(m) })
		}
		return
	}
	needRoot(t)
	for _, role := range []string{"after", "waiting-context", "waiting-lock"} {
		t.Run(role, func(t *testing.T) {
			seg := create(t, 1<<16, nil)
			m := mutex(t, seg, "m")
			a, b := startPair(t, "hold", role, seg.Name())
			if r := killHolder(t, a, b, "locked", role == "after"); r != "ownerdead" {
				t.Errorf("lock after the holder (keeper id %d) was killed, by a process with keeper id %d: %s, want ErrOwnerDead", a.tid, b.tid, r)
			}
			b.finish(t)
			if m.Locked() {
				t.Errorf("the mutex is still locked after the waiter's turn")
			}
		})
	}
}

// TestPIDNSSemaphoreHolderKilled: the permit of a process SIGKILLed while
// holding it returns to the semaphore, for a process in another PID
// namespace with the same keeper thread id that acquires after the death or
// is already waiting.
//
//	P.1 creates a semaphore of value 1, max 1.
//	A.1 acquires its permit and reports.
//	B.1 (same keeper id) [waiting: starts to acquire, reports still blocked].
//	P.2 kills A with SIGKILL and reaps it.
//	B.2 [after: starts to acquire]; acquires the dead A's permit and
//	    releases it; P.3 sees value 1.
func TestPIDNSSemaphoreHolderKilled(t *testing.T) {
	if childtest.Role() == "" && !ps.Robust() {
		t.Skip("no kernel death mark (processshared_nofutex build): a holder in another PID namespace is taken to be alive, as documented")
	}
	acquire := func(s *ps.Semaphore) string {
		ctx, cancel := context.WithTimeout(context.Background(), nsBound)
		defer cancel()
		if err := s.Acquire(ctx, 1); err != nil {
			return "error " + err.Error()
		}
		if err := s.Release(1); err != nil {
			return "release error " + err.Error()
		}
		return "ok"
	}
	if role := childtest.Role(); role != "" {
		seg := nsAttach(t)
		if seg == nil {
			return
		}
		s := semaphore(t, seg, "s", 1, 1)
		switch role {
		case "hold":
			if err := s.Acquire(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			nsSay("acquired")
			nsCommand() // killed while waiting here
			t.Error("the holder was not killed")
		case "after":
			nsSay("%s", acquire(s))
		case "waiting":
			reportBlocked(func() string { return acquire(s) })
		}
		return
	}
	needRoot(t)
	for _, role := range []string{"after", "waiting"} {
		t.Run(role, func(t *testing.T) {
			seg := create(t, 1<<16, nil)
			s := semaphore(t, seg, "s", 1, 1)
			a, b := startPair(t, "hold", role, seg.Name())
			if r := killHolder(t, a, b, "acquired", role == "after"); r != "ok" {
				t.Errorf("Acquire after the holder (keeper id %d) was killed, by a process with keeper id %d: %s, want its permit", a.tid, b.tid, r)
			}
			b.finish(t)
			if v := s.Value(); v != 1 {
				t.Errorf("value %d after the waiter's turn, want 1", v)
			}
		})
	}
}

// TestPIDNSSemaphoreNonHolder: a process with the same keeper thread id as
// the live holder of a semaphore's only permit gets nothing until the holder
// releases it: its permits are not the holder's.
//
//	P.1 creates a semaphore of value 1, max 1.
//	A.1 acquires its permit and reports.
//	B.1 (same keeper id, another namespace): TryAcquire fails, an Acquire
//	    with a short deadline runs out; B reports.
//	A.2 releases; B.2 acquires, releases; P.2 sees value 1.
func TestPIDNSSemaphoreNonHolder(t *testing.T) {
	if role := childtest.Role(); role != "" {
		seg := nsAttach(t)
		if seg == nil {
			return
		}
		s := semaphore(t, seg, "s", 1, 1)
		switch role {
		case "hold":
			if err := s.Acquire(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			nsSay("acquired")
			if nsCommand() == "release" {
				if err := s.Release(1); err != nil {
					nsSay("error %v", err)
				} else {
					nsSay("released")
				}
			}
		case "other":
			if s.TryAcquire(1) {
				nsSay("TryAcquire took the live holder's permit")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			switch err := s.Acquire(ctx, 1); {
			case err == nil:
				nsSay("Acquire took the live holder's permit")
				return
			case !errors.Is(err, context.DeadlineExceeded):
				nsSay("Acquire: %v", err)
				return
			}
			nsSay("refused")
			if nsCommand() != "acquire" {
				return
			}
			ctx, cancel = context.WithTimeout(context.Background(), nsBound)
			defer cancel()
			if err := s.Acquire(ctx, 1); err != nil {
				nsSay("error %v", err)
				return
			}
			if err := s.Release(1); err != nil {
				nsSay("release error %v", err)
				return
			}
			nsSay("ok")
		}
		return
	}
	needRoot(t)
	seg := create(t, 1<<16, nil)
	s := semaphore(t, seg, "s", 1, 1)
	a, b := startPair(t, "hold", "other", seg.Name())
	a.send(t, "go")
	a.expect(t, "acquired")
	b.send(t, "go")
	if r := b.next(t); r != "refused" {
		t.Errorf("process with keeper id %d while one with %d holds the only permit: %s", b.tid, a.tid, r)
	}
	a.send(t, "release")
	a.expect(t, "released")
	a.finish(t)
	b.send(t, "acquire")
	if r := b.next(t); r != "ok" {
		t.Errorf("Acquire after the holder released: %s", r)
	}
	b.finish(t)
	if v := s.Value(); v != 1 {
		t.Errorf("value %d after both released, want 1", v)
	}
}

// TestPIDNSConcurrentCreate: processes in different PID namespaces that
// create the same object names at the same instant all get the same
// objects. Three children are each pid 1 of a new namespace; the fourth
// shares the test's namespace, so that its pid exists in none of the
// others' (a directory claim that records the creator's pid, checked with
// kill(pid, 0), is then taken for a dead creator's, and the name is created
// twice). The objects are semaphores of more than a page (the segment
// allows 512 processes), so that a creator's first store to a new object
// faults in a page while others look at its claim.
//
//	P.1 creates the segment and a barrier.
//	C.1 (all four) attach; P.2 starts them.
//	C.2 each round: meet at the barrier, then create the round's names, in
//	    the same order, each a semaphore of value 0, and release 1 permit
//	    to each.
//	P.3 sees each name once in the directory, its value 4.
func TestPIDNSConcurrentCreate(t *testing.T) {
	const children, rounds, names = 4, 48, 32
	name := func(r, i int) string { return fmt.Sprintf("r%d-%d", r, i) }
	if childtest.Role() == "create" {
		s := nsAttach(t)
		if s == nil {
			return
		}
		barrier := newArray[uint32](t, s, "barrier", 1)
		deadline := time.Now().Add(nsBound)
		for r := range rounds {
			ps.Add(barrier, 0, 1)
			for ps.AtomicLoad(barrier, 0) < uint32(children*(r+1)) {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: the others did not come to the barrier", r)
				}
				runtime.Gosched()
			}
			for i := range names {
				if err := counting(t, s, name(r, i), 0, 0).Release(1); err != nil {
					t.Fatal(err)
				}
			}
		}
		nsSay("done")
		return
	}
	needRoot(t)
	opts := &ps.Options{MaxObjects: 1 + 2*rounds*names, MaxProcesses: 512}
	seg := create(t, 16<<20, opts)
	newArray[uint32](t, seg, "barrier", 1)
	var cs []*nsChild
	for i := range children {
		cs = append(cs, startNS(t, "create", seg.Name(), i > 0))
	}
	for _, c := range cs {
		c.send(t, "go")
	}
	for _, c := range cs {
		c.expect(t, "done")
		c.finish(t)
	}
	objs, err := seg.Objects()
	if err != nil {
		t.Fatal(err)
	}
	count := make(map[string]int)
	for _, o := range objs {
		count[o.Name]++
	}
	for r := range rounds {
		for i := range names {
			n := name(r, i)
			if count[n] != 1 {
				t.Errorf("%q is in the directory %d times, want once", n, count[n])
			}
			if v := counting(t, seg, n, 0, 0).Value(); v != children {
				t.Errorf("%q has value %d, want %d: the children did not all get the same semaphore", n, v, children)
			}
		}
	}
}

// TestPIDNSDeletePinners: the handles of processes in PID namespaces of
// their own, with the same keeper thread id, keep a deleted object's space
// from reuse while either lives, and not after both were killed.
//
//	P.1 creates k; A and B (same keeper id) open it and report.
//	P.2 deletes k: a new object of k's size goes elsewhere.
//	P.3 kills A: the next one still goes elsewhere (B's handle pins k).
//	P.4 kills B: the next one takes k's space.
func TestPIDNSDeletePinners(t *testing.T) {
	if childtest.Role() == "" && !ps.Robust() {
		t.Skip("no kernel death mark (processshared_nofutex build): a process in another PID namespace is taken to be alive, as documented")
	}
	if role := childtest.Role(); role != "" {
		s := nsAttach(t)
		if s == nil {
			return
		}
		mutex(t, s, "k")
		nsSay("opened")
		nsCommand() // killed while waiting here
		return
	}
	needRoot(t)
	seg := create(t, 1<<16, nil)
	k := mutex(t, seg, "k")
	off := offsetOf(t, seg, "k")
	k.Drop()
	a, b := startPair(t, "pin", "pin", seg.Name())
	for _, c := range []*nsChild{a, b} {
		c.send(t, "go")
		c.expect(t, "opened")
	}
	if err := seg.Delete("k"); err != nil {
		t.Fatal(err)
	}
	for i, kill := range []*nsChild{nil, a, b} {
		if kill != nil {
			kill.kill(t)
		}
		name := fmt.Sprint("after", i)
		mutex(t, seg, name)
		got := offsetOf(t, seg, name)
		if i < 2 && got == off {
			t.Fatalf("%s took the deleted k's space while a pinner (keeper ids %d, %d) lived", name, a.tid, b.tid)
		}
		if i == 2 && got != off {
			t.Errorf("after both pinners were killed, %s is at %d, want k's %d", name, got, off)
		}
	}
}
