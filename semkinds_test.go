//go:build darwin || freebsd || linux

package processshared_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestCountingConsumerKeepsItems: items a consumer of counting permits took
// never come back, whether it exits cleanly or is SIGKILLed.
//
//	P.1  P makes a counting semaphore of 5 items.
//	C1   C1 takes 3 items, closes its segment and exits 0.
//	C2   C2 takes 2 items and SIGKILLs itself.
//	P.2  P finds 0 items: TryAcquire and a timed Acquire fail; then a
//	     post of 1 gives exactly 1.
func TestCountingConsumerKeepsItems(t *testing.T) {
	switch childtest.Role() {
	case "exit", "kill":
		s := inherit(t)
		sem := counting(t, s, "items", 0, 0)
		n, _ := strconv.Atoi(os.Getenv("N"))
		if err := sem.Acquire(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		if childtest.Role() == "kill" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	seg := create(t, 1<<16, nil)
	sem := counting(t, seg, "items", 5, 0)
	c1 := segChild(t, seg, "exit", "N=3")
	c1.Stderr = nil
	if out, err := c1.CombinedOutput(); err != nil {
		t.Fatalf("consumer that exits: %v\n%s", err, out)
	}
	err := segChild(t, seg, "kill", "N=2").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("consumer that is killed: %v, want killed by SIGKILL", err)
	}
	if v := sem.Value(); v != 0 {
		t.Fatalf("value %d after the consumers took all 5 items, want 0", v)
	}
	if sem.TryAcquire(1) {
		t.Fatal("TryAcquire(1) found an item the consumers had taken")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := sem.Acquire(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire(1) after the consumers: %v, want DeadlineExceeded", err)
	}
	if err := sem.Release(1); err != nil || sem.Value() != 1 {
		t.Fatalf("post of 1: %v, value %d", err, sem.Value())
	}
}

// TestOwnedReleaseNotHeld: Release of owned permits the handle does not
// hold returns ErrNotHeld and changes nothing: in the creating process,
// through another handle of the same process, and from another process.
func TestOwnedReleaseNotHeld(t *testing.T) {
	if childtest.Role() == "release" {
		sem := semaphore(t, inherit(t), "jobs", 2, 2)
		fmt.Println(sem.Release(1))
		return
	}
	seg := create(t, 1<<16, nil)
	sem := semaphore(t, seg, "jobs", 2, 2)
	if err := sem.Release(1); !errors.Is(err, ps.ErrNotHeld) {
		t.Fatalf("Release(1) holding none: %v, want ErrNotHeld", err)
	}
	if err := sem.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := sem.Release(2); !errors.Is(err, ps.ErrNotHeld) {
		t.Fatalf("Release(2) holding 1: %v, want ErrNotHeld", err)
	}
	other := semaphore(t, openSeg(t, seg.Name()), "jobs", 2, 2)
	if err := other.Release(1); !errors.Is(err, ps.ErrNotHeld) {
		t.Fatalf("Release(1) through another handle: %v, want ErrNotHeld", err)
	}
	out := childtest.Output(t, segChild(t, seg, "release"))
	if !strings.Contains(out, ps.ErrNotHeld.Error()) {
		t.Fatalf("Release(1) in another process: %q, want ErrNotHeld", out)
	}
	if v := sem.Value(); v != 1 {
		t.Fatalf("value %d after refused Releases, want 1", v)
	}
	if err := sem.Release(1); err != nil || sem.Value() != 2 {
		t.Fatalf("Release by the holder: %v, value %d", err, sem.Value())
	}
}

// TestSemaphoreKindMismatch: a semaphore opened as the other kind gives
// ErrMismatch, in its own process and in another.
func TestSemaphoreKindMismatch(t *testing.T) {
	if childtest.Role() == "open" {
		s := inherit(t)
		_, err1 := ps.NewCountingSemaphore(s, "owned", 1, 1)
		_, err2 := ps.NewSemaphore(s, "counting", 1, 1)
		fmt.Println(errors.Is(err1, ps.ErrMismatch), errors.Is(err2, ps.ErrMismatch))
		return
	}
	seg := create(t, 1<<16, nil)
	semaphore(t, seg, "owned", 1, 1)
	counting(t, seg, "counting", 1, 1)
	if _, err := ps.NewCountingSemaphore(seg, "owned", 1, 1); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("owned opened as counting: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewSemaphore(seg, "counting", 1, 1); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("counting opened as owned: %v, want ErrMismatch", err)
	}
	if out := childtest.Output(t, segChild(t, seg, "open")); !strings.HasPrefix(out, "true true\n") {
		t.Errorf("another process: %q, want both ErrMismatch", out)
	}
	objs, err := seg.Objects()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]ps.Kind{}
	for _, o := range objs {
		kinds[o.Name] = o.Kind
	}
	if kinds["owned"] != ps.KindSemaphore || kinds["counting"] != ps.KindCountingSemaphore {
		t.Errorf("kinds %v", kinds)
	}
}

// TestOwnedHolderKilledAtRandom: 200 times, a child that loops acquiring
// and releasing 1 to 3 of 3 owned permits is SIGKILLed at a random instant.
// Every time, the value never exceeds 3 while it runs, and all 3 permits
// come back: an Acquire(3) gets them, and no fourth is there.
func TestOwnedHolderKilledAtRandom(t *testing.T) {
	const total = 3
	trials := 200
	if childtest.Role() == "loop" {
		sem := semaphore(t, inherit(t), "jobs", total, total)
		ctx := context.Background()
		fmt.Println("ready")
		for i := 0; ; i++ {
			n := 1 + i%total
			if err := sem.Acquire(ctx, n); err != nil {
				fmt.Println(err)
				return
			}
			if err := sem.Release(n); err != nil {
				fmt.Println(err)
				return
			}
		}
	}
	// A table entry per trial: where no kernel marks deaths (the
	// processshared_nofutex build) a killed child's entry is not reused.
	seg := create(t, 1<<20, &ps.Options{MaxProcesses: 2 * trials})
	sem := semaphore(t, seg, "jobs", total, total)
	held := 0
	for trial := range trials {
		cmd := segChild(t, seg, "loop")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		childtest.Start(t, cmd)
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("trial %d: child said %q", trial, line)
		}
		stop := time.Now().Add(time.Duration(rand.IntN(2000)) * time.Microsecond)
		for time.Now().Before(stop) {
			if v := sem.Value(); v > total {
				t.Fatalf("trial %d: value %d above the %d permits", trial, v, total)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if v := sem.Value(); v > total {
			t.Fatalf("trial %d: value %d above the %d permits after the kill", trial, v, total)
		}
		if sem.Value() < total {
			held++ // the child died holding permits
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = sem.Acquire(ctx, total)
		cancel()
		if err != nil {
			t.Fatalf("trial %d: Acquire(%d) after the kill: %v (value %d): permits lost", trial, total, err, sem.Value())
		}
		if sem.TryAcquire(1) {
			t.Fatalf("trial %d: a permit beyond the %d", trial, total)
		}
		if err := sem.Release(total); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d trials, %d with the child killed holding permits", trials, held)
	if held == 0 {
		t.Errorf("no child was killed holding permits: the test did not test recovery")
	}
}

// TestSemaphoreMixedHammer: 4 processes for 10 s acquire 1, 2 or 3 of 4
// permits, hold them a moment, and release them, for each kind. A shared
// count of permits in use never exceeds 4, every permit is there at the
// end (exact conservation), and no waiter waits while enough permits for
// it are free: each child publishes the Acquire it waits in, and the
// parent, sampling, fails if one waits for 2 s of samples that all saw
// enough permits free. While a waiter is hungry (see Semaphore), enough is
// 3, the most any waiter asks for, since the hungry one holds the others
// back.
func TestSemaphoreMixedHammer(t *testing.T) {
	const procs, total = 4, 4
	run := 10 * time.Second
	if testing.Short() {
		run = 2 * time.Second
	}
	open := func(s *ps.Segment, kind string) (*ps.Semaphore, *ps.Array[uint64]) {
		var sem *ps.Semaphore
		if kind == "owned" {
			sem = semaphore(t, s, "sem", total, total)
		} else {
			sem = counting(t, s, "sem", total, total)
		}
		// 0: permits in use; 1..procs: the waiting Acquire of child i
		// (seq<<8 | n, 0 when not waiting); procs+1..: ops done.
		a, err := ps.NewArray[uint64](s, "state", 1+2*procs)
		if err != nil {
			t.Fatal(err)
		}
		return sem, a
	}
	if role := childtest.Role(); role != "" {
		s := inherit(t)
		sem, a := open(s, role)
		id, _ := strconv.Atoi(os.Getenv("ID"))
		rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
		deadline := time.Now().Add(run)
		ctx, cancel := context.WithTimeout(context.Background(), run+30*time.Second)
		defer cancel()
		for seq := uint64(1); time.Now().Before(deadline); seq++ {
			n := 1 + rng.IntN(3)
			ps.AtomicStore(a, 1+id, seq<<8|uint64(n))
			if err := sem.Acquire(ctx, n); err != nil {
				t.Fatalf("child %d: Acquire(%d): %v", id, n, err)
			}
			ps.AtomicStore(a, 1+id, 0)
			if u := ps.Add(a, 0, uint64(n)); u > total {
				t.Fatalf("child %d: %d permits in use", id, u)
			}
			for range rng.IntN(200) {
			}
			ps.Add(a, 0, ^uint64(n-1))
			if err := sem.Release(n); err != nil {
				t.Fatalf("child %d: Release(%d): %v", id, n, err)
			}
			ps.Add(a, 1+procs+id, 1)
		}
		return
	}
	for _, kind := range []string{"owned", "counting"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			seg := create(t, 1<<20, nil)
			sem, a := open(seg, kind)
			done := make(chan struct{})
			go func() { runChildren(t, seg, procs, kind); close(done) }()
			// since[i]: the first sample, of a run of samples that saw the
			// same Acquire of child i waiting with enough permits free.
			since := make([]time.Time, procs)
			last := make([]uint64, procs)
			samples := 0
		loop:
			for {
				select {
				case <-done:
					break loop
				case <-time.After(time.Millisecond):
				}
				samples++
				now := time.Now()
				for i := range procs {
					w := ps.AtomicLoad(a, 1+i)
					v := uint64(sem.Value())
					// A hungry waiter rightly holds the others back
					// (see Semaphore): while there is one, enough free
					// is enough for any waiter, so that it takes them.
					need := w & 0xff
					if ps.SemaphoreHungry(sem) {
						need = 3
					}
					if w == 0 || need > v || w != last[i] {
						since[i], last[i] = time.Time{}, w
						if w != 0 && need <= v {
							since[i] = now
						}
						continue
					}
					if since[i].IsZero() {
						since[i] = now
					} else if now.Sub(since[i]) > 2*time.Second {
						t.Errorf("child %d waits in Acquire(%d) (#%d) for %v while every sample saw enough free", i, w&0xff, w>>8, now.Sub(since[i]))
						since[i] = now
					}
				}
			}
			var ops uint64
			for i := range procs {
				ops += ps.AtomicLoad(a, 1+procs+i)
			}
			if u := ps.AtomicLoad(a, 0); u != 0 {
				t.Errorf("%d permits in use at the end", u)
			}
			if v := sem.Value(); v != total {
				t.Errorf("value %d at the end, want %d", v, total)
			}
			t.Logf("%s: %d Acquire/Release pairs, %d samples", kind, ops, samples)
			if ops == 0 {
				t.Errorf("no operation done")
			}
		})
	}
}

// TestSemaphoreFairness: an Acquire(3) of 3 owned permits is not starved
// by two other processes that acquire and release 1 in a loop, holding it
// 200 µs: 20 times, it gets its permits within the test's generous bound
// (10 s). After 1 ms of waiting it becomes the hungry waiter and the
// streams are held back (see Semaphore's Fairness); without that bound it
// took up to about 1 s here, and where sleeps poll (no futex_waitv) it was
// starved.
func TestSemaphoreFairness(t *testing.T) {
	if childtest.Role() == "stream" {
		sem := semaphore(t, inherit(t), "sem", 3, 3)
		ctx := context.Background()
		stop, _ := time.ParseDuration(os.Getenv("RUN"))
		hold, _ := time.ParseDuration(os.Getenv("HOLD"))
		deadline := time.Now().Add(stop)
		for time.Now().Before(deadline) {
			if err := sem.Acquire(ctx, 1); err != nil {
				t.Fatal(err)
			}
			for start := time.Now(); time.Since(start) < hold; {
			}
			if err := sem.Release(1); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	seg := create(t, 1<<16, nil)
	sem := semaphore(t, seg, "sem", 3, 3)
	for range 2 {
		childtest.Start(t, segChild(t, seg, "stream", "RUN=30s", "HOLD=200us"))
	}
	time.Sleep(100 * time.Millisecond) // let the streams start
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err := sem.Acquire(ctx, 3)
		cancel()
		if err != nil {
			t.Fatalf("Acquire(3) #%d against two streams of Acquire(1): %v after %v", i, err, time.Since(start))
		}
		t.Logf("Acquire(3) #%d: %v", i, time.Since(start))
		if err := sem.Release(3); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // the streams take over again
	}
}

// TestInspectSemaphoreKinds: Inspect tells the two kinds apart, by kind and
// in the state, and shows a counting semaphore's value and maximum.
func TestInspectSemaphoreKinds(t *testing.T) {
	seg := create(t, 1<<16, nil)
	owned := semaphore(t, seg, "owned", 2, 2)
	items := counting(t, seg, "items", 0, 5)
	if err := owned.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	defer owned.Release(1)
	if err := items.Release(3); err != nil {
		t.Fatal(err)
	}
	si, err := seg.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	o, c := objectState(t, si, "owned"), objectState(t, si, "items")
	if o.Kind != ps.KindSemaphore || o.Semaphore == nil || o.Semaphore.Counting || o.Semaphore.Value != 1 || len(o.Semaphore.Holders) != 1 {
		t.Errorf("owned: %v %+v", o.Kind, o.Semaphore)
	}
	if c.Kind != ps.KindCountingSemaphore || c.Semaphore == nil || !c.Semaphore.Counting || c.Semaphore.Value != 3 || c.Semaphore.Max != 5 || len(c.Semaphore.Holders) != 0 {
		t.Errorf("counting: %v %+v", c.Kind, c.Semaphore)
	}
	if c.Kind.String() != "counting-semaphore" || owned.Counting() || !items.Counting() {
		t.Errorf("kind %q, Counting %v %v", c.Kind, owned.Counting(), items.Counting())
	}
}

// TestSemaphoreHunger: the starvation bound across processes, and that a
// hunger passes the permits it held back on, however it ends.
//
//	P.1  P makes a counting semaphore at 0; X sleeps in Acquire(3) (it
//	     is cancelled by SIGUSR1).
//	P.2  After more than 1 ms, P releases 1: X wakes, finds too few, and
//	     becomes the hungry waiter (Inspect shows it).
//	Y    Y calls Acquire(1), and is held back: the permit stays free.
//	P.3  The hunger ends: X gets its 3 (P releases 2 more, then 1 for Y),
//	     or X is cancelled, or SIGKILLed. Y gets its permit, in the last
//	     two cases the one that was held back, with no further Release.
func TestSemaphoreHunger(t *testing.T) {
	switch childtest.Role() {
	case "X":
		sem := counting(t, inherit(t), "sem", 0, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() {
			<-usr1
			cancel()
		}()
		fmt.Println("waiting")
		if err := sem.Acquire(ctx, 3); err != nil {
			fmt.Printf("acquire 3: %v\n", err)
		} else {
			fmt.Println("acquired 3")
		}
		// Stay alive (until P kills X): only the end of the hunger, not
		// X's exit, may wake Y.
		time.Sleep(time.Minute)
		return
	case "Y":
		sem := counting(t, inherit(t), "sem", 0, 0)
		// No deadline: a sleep that times out looks again, and would find
		// a permit that nobody woke it for. P gives up on Y after 20 s.
		fmt.Println("trying")
		if err := sem.Acquire(context.Background(), 1); err != nil {
			fmt.Printf("acquire 1: %v\n", err)
			return
		}
		fmt.Println("acquired 1")
		return
	}
	for _, end := range []string{"acquired", "cancelled", "killed"} {
		t.Run(end, func(t *testing.T) {
			seg := create(t, 1<<16, nil)
			sem := counting(t, seg, "sem", 0, 0)
			state := func() ps.SemaphoreState {
				t.Helper()
				st, err := seg.Inspect()
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range st.Objects {
					if o.Name == "sem" {
						return *o.Semaphore
					}
				}
				t.Fatal("no semaphore in Inspect")
				return ps.SemaphoreState{}
			}
			until := func(what string, ok func(ps.SemaphoreState) bool) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); !ok(state()); {
					if time.Now().After(deadline) {
						t.Fatalf("%s: not within 10 s (state %+v)", what, state())
					}
					time.Sleep(time.Millisecond)
				}
			}
			x, readX := child(t, seg, "X")
			if l := readX(); l != "waiting" {
				t.Fatalf("X: %q", l)
			}
			until("X waits", func(s ps.SemaphoreState) bool { return s.Waiters > 0 })
			time.Sleep(5 * time.Millisecond) // X has waited more than 1 ms
			if err := sem.Release(1); err != nil {
				t.Fatal(err)
			}
			until("X is hungry", func(s ps.SemaphoreState) bool { return s.Hungry })
			_, readY := child(t, seg, "Y")
			if l := readY(); l != "trying" {
				t.Fatalf("Y: %q", l)
			}
			// Y is held back: however long it tries, the permit stays.
			time.Sleep(50 * time.Millisecond)
			if v := sem.Value(); v != 1 {
				t.Fatalf("value %d while X is hungry, want 1 (Y took it)", v)
			}
			switch end {
			case "acquired":
				if err := sem.Release(2); err != nil {
					t.Fatal(err)
				}
				if l := readX(); l != "acquired 3" {
					t.Fatalf("X: %q", l)
				}
				// Y, waiting for over 1 ms too, may be the hungry one now.
				if v := sem.Value(); v != 0 {
					t.Fatalf("value %d after X's Acquire(3), want 0", v)
				}
				if err := sem.Release(1); err != nil {
					t.Fatal(err)
				}
			case "cancelled":
				x.Process.Signal(syscall.SIGUSR1)
				if l := readX(); l != "acquire 3: context canceled" {
					t.Fatalf("X: %q", l)
				}
			case "killed":
				x.Process.Kill()
			}
			// readY fails the test if Y still waits 20 s after the hunger
			// ended.
			if l := readY(); l != "acquired 1" {
				t.Fatalf("Y: %q, want its permit once X's hunger is over", l)
			}
			if st := state(); st.Value != 0 || st.Hungry {
				t.Errorf("at the end: %+v, want value 0 and no hunger", st)
			}
		})
	}
}
