//go:build linux && !processshared_nofutex

package processshared_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// sysFutexWaitv is futex_waitv's system call number, the same on amd64 and
// arm64.
const sysFutexWaitv = "449"

// waitSleeping waits until one of pid's threads sleeps in futex_waitv (where
// only the library's waits sleep), as /proc/PID/task/*/syscall shows.
func waitSleeping(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), sysFutexWaitv+" ") {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never slept in futex_waitv", pid)
}

// TestMutexWokenThenKilled: a sleeper that Unlock wakes, and that dies
// before it takes the lock, does not take the wake with it.
//
//	P.1  P locks m.
//	B.1  B sleeps in LockContext(m); it will kill itself as soon as it
//	     returns from the kernel.
//	C.1  C sleeps in LockContext(m), queued behind B.
//	P.2  P unlocks m: the word becomes 0 and one sleeper, B (the first in
//	     the kernel's queue), is woken.
//	B.2  B dies of SIGKILL before it looks at the word.
//	C.2  C must get m: the kernel wakes it, since B's thread named the lock
//	     word as its robust list's pending operation (armPending).
//
// Without that, C sleeps until its deadline: P's Unlock cleared the
// waiters bit, and nobody else will ever wake it.
func TestMutexWokenThenKilled(t *testing.T) {
	switch childtest.Role() {
	case "B", "C":
		s := inherit(t)
		m, err := ps.NewMutex(s, "m")
		if err != nil {
			t.Fatal(err)
		}
		if childtest.Role() == "B" {
			ps.SetTestHookWoken(func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) })
		}
		// A lost wake-up shows as a wait that lasts until the deadline
		// (the lock is free by then, so it may still succeed): C must get
		// the lock well before, where it gets it within milliseconds.
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.LockContext(ctx); err != nil {
			fmt.Println("lock:", err)
			return
		}
		if d := time.Since(start); d > 10*time.Second {
			fmt.Printf("locked only after %v\n", d)
		} else {
			fmt.Println("locked")
		}
		m.Unlock()
		return
	}
	if !ps.HasWaitv() || !ps.Robust() {
		t.Skip("no futex_waitv or no robust list (qemu-user, Linux < 5.16): sleepers poll")
	}
	seg := create(t, 1<<20, nil)
	m, err := ps.NewMutex(seg, "m")
	if err != nil {
		t.Fatal(err)
	}
	m.Lock()
	b := segChild(t, seg, "B")
	b.Stdout = nil
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Process.Kill()
	waitSleeping(t, b.Process.Pid)
	c := segChild(t, seg, "C")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	waitSleeping(t, c.Process.Pid)
	m.Unlock()
	state, _ := b.Process.Wait()
	if ws, ok := state.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("B: %v, want killed by its hook after its wake-up", state)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if err := c.Wait(); err != nil || line != "locked\n" {
		t.Fatalf("C: %q, %v; want it to get the lock B was woken for", line, err)
	}
}
