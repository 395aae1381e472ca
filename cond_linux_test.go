//go:build linux && !processshared_nofutex

package processshared_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// needKernelWait skips tests that tell a sleep in the kernel from a poll.
func needKernelWait(t *testing.T) {
	t.Helper()
	if !ps.HasWaitv() || !ps.Robust() {
		t.Skip("no futex_waitv or no robust list (qemu-user, Linux < 5.16): sleepers poll")
	}
}

// sysFutex is futex(2)'s system call number on amd64 (where a build
// without futex_waitv sleeps in it).
const sysFutex = "202"

// condSleeping waits until a thread of process pid sleeps in futex_waitv,
// or, without futex_waitv, in futex(2).
func condSleeping(t *testing.T, pid int) {
	t.Helper()
	if ps.HasWaitv() {
		waitSleeping(t, pid)
		return
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("futex(2)'s number is known here for amd64 only")
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), sysFutex+" ") {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never slept in futex", pid)
}

// condWaiter is a child waiting on the Cond "c" (mutex "m") of the test's
// segment: it prints a line when it has registered, and its later lines can
// be read with next.
type condWaiter struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

func startCondWaiter(t *testing.T, seg *ps.Segment, m *ps.Mutex, role string, env ...string) *condWaiter {
	t.Helper()
	cmd := segChild(t, seg, role, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	childtest.Start(t, cmd)
	w := &condWaiter{cmd: cmd, out: bufio.NewReader(out)}
	if line := w.next(t); line != "waiting" {
		t.Fatalf("child %s: %q, want waiting", role, line)
	}
	// The child printed while holding m, before Wait: once m is ours, it
	// has registered and unlocked it inside Wait.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.LockContext(ctx); err != nil {
		t.Fatal(err)
	}
	m.Unlock()
	condSleeping(t, cmd.Process.Pid)
	return w
}

// next returns the child's next line of output, without its newline, or
// fails the test if none comes before a generous deadline.
func (w *condWaiter) next(t *testing.T) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		line, err := w.out.ReadString('\n')
		if err != nil {
			line = "(" + err.Error() + ")"
		}
		ch <- strings.TrimSuffix(line, "\n")
	}()
	select {
	case line := <-ch:
		return line
	case <-time.After(20 * time.Second):
		t.Fatalf("child %d said nothing for 20 s: a lost wake-up?", w.cmd.Process.Pid)
		return ""
	}
}

// condChild is the child side of the tests below: it waits once on c,
// holding m, and says how it returned.
func condChild(t *testing.T, hook func()) {
	s := inherit(t)
	m := mutex(t, s, "m")
	c := cond(t, s, "c", m)
	if hook != nil {
		ps.SetTestHookWoken(hook)
	}
	m.Lock()
	fmt.Println("waiting")
	// A lost wake-up shows as a wait that lasts until this timeout, where
	// a Signal wakes the waiter within milliseconds.
	if c.WaitTimeout(10 * time.Second) {
		fmt.Println("woken")
	} else {
		fmt.Println("timed out")
	}
	m.Unlock()
}

// TestCondSignalAfterBroadcast: a Signal right after a Broadcast, both
// with one waiter, leaves nothing behind that makes a later Signal go to
// nobody.
//
//	W1.1  W1 waits on c and sleeps in the kernel. Once woken it pauses
//	      (a test hook) before it looks at c.
//	P.1   P broadcasts, then signals: both while W1 has not looked yet.
//	W1.2  W1 returns, woken.
//	W2.1  W2 waits on c and sleeps in the kernel.
//	P.2   P signals.
//	W2.2  W2 must be woken.
//
// The design before this one cleared the signals on Broadcast but kept W1
// counted; the Signal granted W1 a wake-up, which W1 did not take since
// the Broadcast let it go: waiters 0, signals 1 once W1 returned, and P.2's
// Signal found a signal outstanding for every waiter and woke nobody.
func TestCondSignalAfterBroadcast(t *testing.T) {
	switch childtest.Role() {
	case "w1":
		condChild(t, func() { time.Sleep(300 * time.Millisecond) })
		return
	case "w2":
		condChild(t, nil)
		return
	}
	seg := create(t, 1<<20, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	w1 := startCondWaiter(t, seg, m, "w1")
	c.Broadcast()
	c.Signal()
	if line := w1.next(t); line != "woken" {
		t.Fatalf("W1: %q after Broadcast and Signal, want woken", line)
	}
	if err := w1.cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, w, s := ps.CondWords(c); w != 0 || s != 0 {
		t.Errorf("after W1 returned: %d waiters, %d signals; want 0 and 0", w, s)
	}
	w2 := startCondWaiter(t, seg, m, "w2")
	c.Signal()
	if line := w2.next(t); line != "woken" {
		t.Fatalf("W2: %q, want woken by the Signal sent while it slept", line)
	}
}

// TestCondSequenceWrap presets the sequence word just below 2^31 and
// just below 2^32 (as that many Signals without a Broadcast leave it): three
// waiters still sleep until signalled, and each Signal, crossing the wrap,
// wakes exactly one.
//
// The design before this one compared the last Broadcast's sequence with a
// waiter's by the sign of their difference: past 2^31 Signals every waiter
// took the Broadcast of sequence 0 for a newer one and returned at once.
func TestCondSequenceWrap(t *testing.T) {
	const waiters = 3
	if childtest.Role() == "wait" {
		s := inherit(t)
		m := mutex(t, s, "m")
		c := cond(t, s, "c", m)
		ready, woken := counter(t, s, "ready"), counter(t, s, "woken")
		m.Lock()
		*ready++
		c.Wait() // once, no predicate: each return is counted
		*woken++
		m.Unlock()
		return
	}
	for _, preset := range []uint32{1<<31 - 2, 1<<32 - 2} {
		t.Run(fmt.Sprintf("%#x", preset), func(t *testing.T) {
			seg := create(t, 1<<20, nil)
			m := mutex(t, seg, "m")
			c := cond(t, seg, "c", m)
			ready, woken := counter(t, seg, "ready"), counter(t, seg, "woken")
			ps.SetCondWords(c, preset, 0, 0)
			var cmds []*exec.Cmd
			for range waiters {
				cmd := segChild(t, seg, "wait")
				childtest.Start(t, cmd)
				cmds = append(cmds, cmd)
			}
			deadline := time.Now().Add(20 * time.Second)
			locked := func(f func() bool) bool {
				m.Lock()
				defer m.Unlock()
				return f()
			}
			for !locked(func() bool { return *ready == waiters }) {
				if time.Now().After(deadline) {
					t.Fatalf("only %d of %d waiters registered", *ready, waiters)
				}
				time.Sleep(time.Millisecond)
			}
			// Still blocked: give a wrong return room to happen, then
			// check that every waiter sleeps in the kernel.
			time.Sleep(50 * time.Millisecond)
			if n := locked(func() bool { return *woken != 0 }); n {
				t.Fatalf("%d of %d waiters returned from Wait before any Signal", *woken, waiters)
			}
			for _, cmd := range cmds {
				condSleeping(t, cmd.Process.Pid)
			}
			for k := 1; k <= waiters; k++ {
				c.Signal()
				for !locked(func() bool { return *woken >= int64(k) }) {
					if time.Now().After(deadline) {
						t.Fatalf("Signal %d woke nobody", k)
					}
					time.Sleep(time.Millisecond)
				}
				// The woken one took its signal before it counted itself:
				// nothing is outstanding, the others are still registered.
				time.Sleep(20 * time.Millisecond) // room for a wrong second return
				seq, w, s := ps.CondWords(c)
				if n := *woken; n != int64(k) || w != waiters-k || s != 0 {
					t.Fatalf("after Signal %d: %d woken, %d waiters, %d signals; want %d, %d, 0", k, n, w, s, k, waiters-k)
				}
				if seq != preset+uint32(k) {
					t.Fatalf("after Signal %d: seq %#x, want %#x", k, seq, preset+uint32(k))
				}
			}
			for _, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestCondDeadWaiters: waiters killed while waiting are reclaimed. Real
// waiter processes are SIGKILLed in a loop, in a segment with few process
// slots, so that later ones reuse the slots of earlier ones; the records
// of the last dead are then preset as if each dead process had had
// thousands of goroutines waiting: 10,000 dead waiters, all granted a
// wake-up (Signals sent after their deaths); then 65,535, which fills the
// waiters count. Each time a live waiter is woken at once by one Signal,
// sleeps in futex_waitv without polling meanwhile, and the counts come back
// to zero.
//
// The design before this one kept every dead waiter counted: with 65,535
// every Wait polled every 10 ms, and every Signal found all the waiters
// granted and woke nobody.
func TestCondDeadWaiters(t *testing.T) {
	switch childtest.Role() {
	case "dead":
		condChild(t, nil) // killed while waiting
		return
	case "live":
		s := inherit(t)
		m := mutex(t, s, "m")
		c := cond(t, s, "c", m)
		flag := counter(t, s, "flag")
		var kernelReturns atomic.Int64
		ps.SetTestHookWoken(func() { kernelReturns.Add(1) })
		m.Lock()
		fmt.Println("waiting")
		returns := 0
		start := time.Now()
		for *flag == 0 && time.Since(start) < 10*time.Second {
			c.WaitTimeout(10 * time.Second)
			returns++
		}
		fmt.Printf("flag %d returns %d kernel %d\n", *flag, returns, kernelReturns.Load())
		m.Unlock()
		return
	}
	needKernelWait(t)
	killWaiters := func(seg *ps.Segment, m *ps.Mutex, c *ps.Cond, kills, slots int) {
		for i := range kills {
			w := startCondWaiter(t, seg, m, "dead")
			w.cmd.Process.Signal(syscall.SIGKILL)
			w.cmd.Wait()
			// Only the waiters whose slot no later one reused are still
			// registered: a registrant reclaims its slot's record.
			if _, n, _ := ps.CondWords(c); n > min(i+1, slots-1) {
				t.Errorf("after %d kills: %d waiters registered, want at most %d (one per dead slot)", i+1, n, slots-1)
			}
		}
	}
	// Slot reuse: 12 waiters killed in turn, in 4 slots (one the parent's).
	{
		seg := create(t, 1<<20, &ps.Options{MaxProcesses: 4})
		m := mutex(t, seg, "m")
		killWaiters(seg, m, cond(t, seg, "c", m), 12, 4)
	}
	// Scans: the live waiter below claims a free slot, so that only a scan
	// reclaims the dead.
	const kills = 4
	seg := create(t, 1<<20, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	flag := counter(t, seg, "flag")
	killWaiters(seg, m, c, kills, ps.CondSlots(c))
	var dead []int // slots whose record names a dead waiter
	for i := range ps.CondSlots(c) {
		if _, n := ps.CondRecord(c, i); n > 0 {
			dead = append(dead, i)
		}
	}
	if len(dead) != kills {
		t.Fatalf("%d records name a dead waiter, want %d", len(dead), kills)
	}
	for _, tc := range []struct {
		name             string
		waiters, signals int
	}{
		{"10000-granted", 10000, 10000},
		{"65535-full", 65535, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, _, _ := ps.CondWords(c)
			ps.SetCondWords(c, seq, tc.waiters, tc.signals)
			left := tc.waiters
			for j, i := range dead {
				id, _ := ps.CondRecord(c, i)
				n := left / (len(dead) - j)
				ps.SetCondRecord(c, i, id, n)
				left -= n
			}
			m.Lock()
			*flag = 0
			m.Unlock()
			live := startCondWaiter(t, seg, m, "live")
			// Sleeping in the kernel now; a poll would return every 10 ms.
			time.Sleep(200 * time.Millisecond)
			m.Lock()
			*flag = 1
			c.Signal()
			m.Unlock()
			line := live.next(t)
			if err := live.cmd.Wait(); err != nil {
				t.Fatal(err)
			}
			var fl, returns, kernel int
			if _, err := fmt.Sscanf(line, "flag %d returns %d kernel %d", &fl, &returns, &kernel); err != nil {
				t.Fatalf("live waiter said %q", line)
			}
			if fl != 1 || returns != 1 || kernel > 3 {
				t.Errorf("live waiter: %q; want the flag set, 1 return from Wait (the Signal's) and a kernel sleep or two, not a poll", line)
			}
			if _, w, s := ps.CondWords(c); w != 0 || s != 0 {
				t.Errorf("afterwards: %d waiters, %d signals; want the dead reclaimed: 0 and 0", w, s)
			}
			for _, i := range dead {
				if _, n := ps.CondRecord(c, i); n != 0 {
					t.Errorf("afterwards: slot %d's record still counts %d dead waiters", i, n)
				}
			}
		})
	}
}

// TestCondWokenThenKilled: a waiter that a Signal wakes, and that dies
// before it takes the signal, does not take the wake-up with it.
//
//	B.1  B waits on c and sleeps; it will kill itself as soon as it returns
//	     from the kernel.
//	C.1  C waits on c and sleeps, queued behind B.
//	P.1  P signals: one signal outstanding, and the kernel wakes B.
//	B.2  B dies of SIGKILL before it looks at c.
//	C.2  C must be woken: B's thread named c's baton word as its robust
//	     list's pending operation, so the kernel wakes a sleeper on it.
func TestCondWokenThenKilled(t *testing.T) {
	switch childtest.Role() {
	case "B":
		condChild(t, func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) })
		return
	case "C":
		condChild(t, nil)
		return
	}
	needKernelWait(t)
	seg := create(t, 1<<20, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	b := startCondWaiter(t, seg, m, "B")
	cw := startCondWaiter(t, seg, m, "C")
	c.Signal()
	state, _ := b.cmd.Process.Wait()
	if ws, ok := state.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("B: %v, want killed by its hook after its wake-up", state)
	}
	if line := cw.next(t); line != "woken" {
		t.Fatalf("C: %q, want woken by the Signal B died with", line)
	}
}

// TestCondBroadcastThenLaterWaiters: a Broadcast's wake-up is not taken by
// waiters that registered after it, once a later Signal makes them
// eligible too.
//
//	W0.1  W0 waits on c and sleeps in the kernel.
//	P.1   P broadcasts. W0, woken, pauses (a test hook) before it looks.
//	W1    W1 and W2 wait on c and sleep in the kernel.
//	P.2   P signals: W1 and W2 are woken and return.
//	W0.2  W0 goes on, and must return woken, by the Broadcast.
//
// Before "Generations" (cond.go), the Signal added one signal to the
// Broadcast's and made W1 and W2 eligible for both: they took both, and
// W0 found none and slept until its timeout (internal/model's BugPoolMix,
// found with four processes).
func TestCondBroadcastThenLaterWaiters(t *testing.T) {
	switch childtest.Role() {
	case "w0":
		var once atomic.Bool
		condChild(t, func() {
			if once.Swap(true) {
				return
			}
			fmt.Println("hooked")
			gate := os.Getenv("GATE")
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if _, err := os.Stat(gate); err == nil {
					return
				}
			}
		})
		return
	case "w":
		condChild(t, nil)
		return
	}
	needKernelWait(t)
	seg := create(t, 1<<20, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	gate := filepath.Join(t.TempDir(), "gate")
	w0 := startCondWaiter(t, seg, m, "w0", "GATE="+gate)
	c.Broadcast()
	if line := w0.next(t); line != "hooked" {
		t.Fatalf("W0: %q after Broadcast, want hooked", line)
	}
	w1 := startCondWaiter(t, seg, m, "w")
	w2 := startCondWaiter(t, seg, m, "w")
	if _, w, s := ps.CondWords(c); w != 3 || s != 1 {
		t.Fatalf("before the Signal: %d waiters, %d signals; want 3 and 1", w, s)
	}
	c.Signal()
	for i, w := range []*condWaiter{w1, w2} {
		if line := w.next(t); line != "woken" {
			t.Fatalf("W%d: %q after the Signal, want woken", i+1, line)
		}
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if line := w0.next(t); line != "woken" {
		t.Fatalf("W0: %q, want woken by the Broadcast sent while it waited", line)
	}
	for _, w := range []*condWaiter{w0, w1, w2} {
		if err := w.cmd.Wait(); err != nil {
			t.Error(err)
		}
	}
	if _, w, s := ps.CondWords(c); w != 0 || s != 0 {
		t.Errorf("at the end: %d waiters, %d signals; want 0 and 0", w, s)
	}
}
