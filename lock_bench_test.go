//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
)

// Benchmarks of the locks. The cross-process ones run the test binary again
// as the second process: the child is started with -test.bench selecting the
// same benchmark and -test.benchtime=1x, finds its role with childtest.Role,
// and does its half of the work once, with the count the parent passes in
// BENCH_N. The full comparison with C, go-ipc and the others is the harness
// in bench/ (see BENCHMARKS.md).
//
//	go test -run='^$' -bench=. -benchtime=1s

// benchLockSegment returns an anonymous segment closed at the end of the
// benchmark.
func benchLockSegment(tb testing.TB) *ps.Segment {
	tb.Helper()
	s, err := ps.NewAnonymous("bench", 1<<20, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// benchLockChild returns a command that runs benchmark name (a top-level
// benchmark) of this test binary as the child with role, handing it seg and
// n, the number of operations it must do. It is childtest.Command with
// -test.run replaced by -test.bench, which is what runs a benchmark.
func benchLockChild(b *testing.B, name, role string, seg *ps.Segment, n int) *exec.Cmd {
	b.Helper()
	cmd := childtest.Command(b, name, role, "BENCH_N="+strconv.Itoa(n), "BENCH_SEG="+seg.Name())
	args := []string{cmd.Args[0], "-test.run=^$", "-test.bench=^" + name + "$", "-test.benchtime=1x"}
	for _, a := range cmd.Args[1:] {
		if !strings.HasPrefix(a, "-test.run=") {
			args = append(args, a)
		}
	}
	cmd.Args = args
	cmd.Stderr = os.Stderr // the child's stdout carries its own benchmark line: dropped
	if err := ps.Pass(cmd, seg); err != nil {
		b.Fatal(err)
	}
	return cmd
}

// benchLockInherit attaches a child to the parent's segment and returns it
// with the operation count.
func benchLockInherit(tb testing.TB) (*ps.Segment, int) {
	tb.Helper()
	s, err := ps.Inherit(os.Getenv("BENCH_SEG"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	n, err := strconv.Atoi(os.Getenv("BENCH_N"))
	if err != nil {
		tb.Fatal("BENCH_N:", err)
	}
	return s, n
}

// benchLockCtl returns the control words shared by parent and child:
// [0] the child is ready, [1] go, [2] the child is done.
func benchLockCtl(tb testing.TB, s *ps.Segment) *ps.Array[uint32] {
	tb.Helper()
	a, err := ps.NewArray[uint32](s, "ctl", 3)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// benchLockAwait waits until control word i is set, or fails after 30 s
// (the other process is gone).
func benchLockAwait(tb testing.TB, ctl *ps.Array[uint32], i int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for ps.AtomicLoad(ctl, i) == 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("control word %d never set", i)
		}
		time.Sleep(10 * time.Microsecond)
	}
}

// BenchmarkMutexUncontended measures Lock+Unlock of a Mutex nobody else
// uses (around the increment of a local counter): two compare-and-swaps, no
// system call.
func BenchmarkMutexUncontended(b *testing.B) {
	m, err := ps.NewMutex(benchLockSegment(b), "m")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		m.Lock()
		n++
		m.Unlock()
	}
	if n != b.N {
		b.Fatalf("counter %d, want %d", n, b.N)
	}
}

// BenchmarkSyncMutexUncontended is the same loop over a sync.Mutex, the
// in-process floor BenchmarkMutexUncontended is judged against.
func BenchmarkSyncMutexUncontended(b *testing.B) {
	var m sync.Mutex
	n := 0
	for b.Loop() {
		m.Lock()
		n++
		m.Unlock()
	}
	if n != b.N {
		b.Fatalf("counter %d, want %d", n, b.N)
	}
}

// BenchmarkMutexContended2P measures, per increment, two processes
// incrementing a shared non-atomic counter under one Mutex: b.N increments
// in all, half in each process. The counter is checked at the end.
func BenchmarkMutexContended2P(b *testing.B) {
	if childtest.Role() == "contend" {
		s, n := benchLockInherit(b)
		m, err := ps.NewMutex(s, "m")
		if err != nil {
			b.Fatal(err)
		}
		cnt, err := ps.SharedInt64(s, "counter")
		if err != nil {
			b.Fatal(err)
		}
		ctl := benchLockCtl(b, s)
		ps.AtomicStore(ctl, 0, 1)
		benchLockAwait(b, ctl, 1)
		for range n {
			m.Lock()
			*cnt++
			m.Unlock()
		}
		ps.AtomicStore(ctl, 2, 1)
		return
	}
	s := benchLockSegment(b)
	m, err := ps.NewMutex(s, "m")
	if err != nil {
		b.Fatal(err)
	}
	cnt, err := ps.SharedInt64(s, "counter")
	if err != nil {
		b.Fatal(err)
	}
	ctl := benchLockCtl(b, s)
	theirs := b.N / 2
	cmd := benchLockChild(b, "BenchmarkMutexContended2P", "contend", s, theirs)
	childtest.Start(b, cmd)
	benchLockAwait(b, ctl, 0)
	b.ResetTimer()
	ps.AtomicStore(ctl, 1, 1)
	for range b.N - theirs {
		m.Lock()
		*cnt++
		m.Unlock()
	}
	benchLockAwait(b, ctl, 2)
	b.StopTimer()
	if err := cmd.Wait(); err != nil {
		b.Fatal("child:", err)
	}
	if *cnt != int64(b.N) {
		b.Fatalf("counter %d, want %d: mutual exclusion broken", *cnt, b.N)
	}
}

// BenchmarkSemaphorePingPong measures a round trip between two processes
// through two Semaphores: the parent releases ping and acquires pong, the
// child the reverse. A sequence number is checked on every hop.
func BenchmarkSemaphorePingPong(b *testing.B) {
	open := func(s *ps.Segment) (ping, pong *ps.Semaphore, seq *int64) {
		var err error
		if ping, err = ps.NewCountingSemaphore(s, "ping", 0, 0); err != nil {
			b.Fatal(err)
		}
		if pong, err = ps.NewCountingSemaphore(s, "pong", 0, 0); err != nil {
			b.Fatal(err)
		}
		if seq, err = ps.SharedInt64(s, "seq"); err != nil {
			b.Fatal(err)
		}
		return ping, pong, seq
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if childtest.Role() == "pong" {
		s, n := benchLockInherit(b)
		ping, pong, seq := open(s)
		for i := range int64(n) {
			if err := ping.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
			if *seq != 2*i+1 {
				b.Fatalf("round %d: sequence %d", i, *seq)
			}
			*seq = 2*i + 2
			if err := pong.Release(1); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	s := benchLockSegment(b)
	ping, pong, seq := open(s)
	cmd := benchLockChild(b, "BenchmarkSemaphorePingPong", "pong", s, b.N)
	childtest.Start(b, cmd)
	b.ResetTimer()
	for i := range int64(b.N) {
		*seq = 2*i + 1
		if err := ping.Release(1); err != nil {
			b.Fatal(err)
		}
		if err := pong.Acquire(ctx, 1); err != nil {
			b.Fatal(err)
		}
		if *seq != 2*i+2 {
			b.Fatalf("round %d: sequence %d", i, *seq)
		}
	}
	b.StopTimer()
	if err := cmd.Wait(); err != nil {
		b.Fatal("child:", err)
	}
}

// BenchmarkCondPingPong measures a round trip between two processes with a
// Mutex, a Cond and a turn word, the protocol of c_cond_pingpong in the
// peers folder: under the mutex each side hands the turn over, signals,
// and waits on the same Cond until the turn comes back. A sequence number
// is checked on every hop. A wait that stalls for 10 s (a lost wake-up)
// fails the benchmark instead of hanging it.
func BenchmarkCondPingPong(b *testing.B) {
	open := func(s *ps.Segment) (*ps.Mutex, *ps.Cond, *int64, *int64) {
		m, err := ps.NewMutex(s, "m")
		if err != nil {
			b.Fatal(err)
		}
		c, err := ps.NewCond(s, "c", m)
		if err != nil {
			b.Fatal(err)
		}
		turn, err := ps.SharedInt64(s, "turn")
		if err != nil {
			b.Fatal(err)
		}
		seq, err := ps.SharedInt64(s, "seq")
		if err != nil {
			b.Fatal(err)
		}
		return m, c, turn, seq
	}
	// wait waits on c until *turn == want, failing if it stalls.
	wait := func(c *ps.Cond, turn *int64, want int64) {
		for *turn != want {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.WaitContext(ctx)
			cancel()
			if err != nil {
				c.L.Unlock()
				b.Fatalf("waiting for turn %d: %v (a lost wake-up?)", want, err)
			}
		}
	}
	if childtest.Role() == "pong" {
		s, n := benchLockInherit(b)
		m, c, turn, seq := open(s)
		for i := range int64(n) {
			m.Lock()
			wait(c, turn, 1)
			if *seq != 2*i+1 {
				m.Unlock()
				b.Fatalf("round %d: sequence %d", i, *seq)
			}
			*seq = 2*i + 2
			*turn = 0
			c.Signal()
			m.Unlock()
		}
		return
	}
	s := benchLockSegment(b)
	m, c, turn, seq := open(s)
	cmd := benchLockChild(b, "BenchmarkCondPingPong", "pong", s, b.N)
	childtest.Start(b, cmd)
	b.ResetTimer()
	for i := range int64(b.N) {
		m.Lock()
		*seq = 2*i + 1
		*turn = 1
		c.Signal()
		wait(c, turn, 0)
		if *seq != 2*i+2 {
			m.Unlock()
			b.Fatalf("round %d: sequence %d", i, *seq)
		}
		m.Unlock()
	}
	b.StopTimer()
	if err := cmd.Wait(); err != nil {
		b.Fatal("child:", err)
	}
}

// BenchmarkTryLockHeld measures a failing TryLock on a Mutex that another
// handle holds, with tables of 16 and 1024 entries and the holder in table
// entry 2 or 1000: finding the holder indexes the table, so the
// cost must not grow with either. The holder is a handle of this process
// (its entry is alive, as another process's would be).
func BenchmarkTryLockHeld(b *testing.B) {
	for _, c := range []struct{ procs, slot int }{{16, 2}, {1024, 2}, {1024, 1000}} {
		b.Run("procs="+strconv.Itoa(c.procs)+"/slot="+strconv.Itoa(c.slot), func(b *testing.B) {
			name := shmtest.Name(b)
			s, err := ps.Create(name, 4<<20, &ps.Options{MaxProcesses: c.procs})
			if err != nil {
				b.Fatal(err)
			}
			defer ps.Remove(name)
			defer s.Close()
			// s is entry 0; fill entries up to the holder's.
			for range c.slot - 1 {
				f, err := ps.Open(name)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
			}
			h, err := ps.Open(name)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			if ps.SlotOf(h) != c.slot {
				b.Fatalf("holder in entry %d, want %d", ps.SlotOf(h), c.slot)
			}
			hm, err := ps.NewMutex(h, "m")
			if err != nil {
				b.Fatal(err)
			}
			hm.Lock()
			defer hm.Unlock()
			m, err := ps.NewMutex(s, "m")
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if m.TryLock() {
					b.Fatal("TryLock succeeded on a held mutex")
				}
			}
		})
	}
}

// BenchmarkSemTryAcquireTable measures a failing TryAcquire of an owned
// Semaphore in table mode, with tables of 128 and 65536 entries: two other
// handles of this process hold its 2 permits (the second one's take spilled
// the first's to its held entry), so each TryAcquire takes the internal
// lock and runs the table-mode reclaim, which scans the held entries. The
// scan stops at procHigh (3 here), so the cost must not grow with the
// table.
func BenchmarkSemTryAcquireTable(b *testing.B) {
	for _, procs := range []int{128, ps.MaxProcessesLimit} {
		b.Run("procs="+strconv.Itoa(procs), func(b *testing.B) {
			name := shmtest.Name(b)
			s, err := ps.Create(name, 8<<20, &ps.Options{MaxProcesses: procs})
			if err != nil {
				b.Fatal(err)
			}
			defer ps.Remove(name)
			defer s.Close()
			var sems []*ps.Semaphore
			for range 2 {
				h, err := ps.Open(name)
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close()
				m, err := ps.NewSemaphore(h, "jobs", 2, 2)
				if err != nil {
					b.Fatal(err)
				}
				if !m.TryAcquire(1) {
					b.Fatal("TryAcquire(1) failed with a permit free")
				}
				sems = append(sems, m)
			}
			defer func() {
				for _, m := range sems {
					m.Release(1)
				}
			}()
			m, err := ps.NewSemaphore(s, "jobs", 2, 2)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, table := ps.SemaphoreEntry(m, 1); !table {
				b.Fatal("the semaphore is not in table mode")
			}
			b.ResetTimer()
			for range b.N {
				if m.TryAcquire(1) {
					b.Fatal("TryAcquire succeeded with every permit held")
				}
			}
		})
	}
}
