//go:build darwin || freebsd || linux

package processshared_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestMutexKillLoop kills a process that locks and unlocks in a loop at
// random instants, 100 times (1000 with -long... see below). After each
// kill the parent must get the lock, told of the death if the child held
// it. The protected state is two counters the holder keeps equal: a death
// between their updates shows as a == b+1 and must come with ErrOwnerDead.
// In half the trials a parent goroutine is already asleep in Lock when the
// kill lands, so the kernel's wake-up on death is exercised too.
func TestMutexKillLoop(t *testing.T) {
	if childtest.Role() == "loop" {
		s := inherit(t)
		m := mutex(t, s, "m")
		a, b := counter(t, s, "a"), counter(t, s, "b")
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for i := 0; ; i++ {
					m.Lock()
					*a++
					if i%3 == 0 {
						time.Sleep(time.Microsecond)
					}
					*b = *a
					m.Unlock()
				}
			})
		}
		os.Stdout.WriteString("running\n")
		wg.Wait()
		return
	}
	trials := 100
	if !testing.Short() && os.Getenv("PS_LONG") != "" {
		trials = 1000
	}
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	a, b := counter(t, seg, "a"), counter(t, seg, "b")
	deaths := 0
	for trial := range trials {
		cmd := segChild(t, seg, "loop")
		stdout, _ := cmd.StdoutPipe()
		childtest.Start(t, cmd)
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		var res chan error
		if trial%2 == 1 {
			res = make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res <- m.LockContext(ctx)
			}()
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		var err error
		if res != nil {
			err = <-res
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = m.LockContext(ctx)
			cancel()
		}
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
			m.MarkConsistent()
		default:
			t.Fatalf("trial %d: Lock after kill: %v", trial, err)
		}
		m.Unlock()
	}
	if m.OwnerDeaths() != deaths {
		t.Fatalf("OwnerDeaths %d, saw %d", m.OwnerDeaths(), deaths)
	}
	t.Logf("%d trials, %d killed while holding the lock", trials, deaths)
}

// TestMutexHammer: processes × goroutines increment a shared counter and a
// process-local one under the Mutex; both end exact. Under -race, the local
// counter checks that the acquire/release annotations hide no real race and
// report no false one.
func TestMutexHammer(t *testing.T) {
	const procs, gor, n = 3, 8, 2000
	work := func(s *ps.Segment) {
		m := mutex(t, s, "m")
		c := counter(t, s, "c")
		local := 0
		var wg sync.WaitGroup
		for range gor {
			wg.Go(func() {
				for range n {
					m.Lock()
					*c++
					local++
					m.Unlock()
				}
			})
		}
		wg.Wait()
		if local != gor*n {
			panic("local counter " + strconv.Itoa(local))
		}
	}
	if childtest.Role() == "hammer" {
		work(inherit(t))
		return
	}
	seg := create(t, 1<<16, nil)
	done := make(chan struct{})
	go func() { runChildren(t, seg, procs-1, "hammer"); close(done) }()
	work(seg)
	<-done
	if c := *counter(t, seg, "c"); c != procs*gor*n {
		t.Fatalf("counter %d, want %d", c, procs*gor*n)
	}
}

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := strings.CutPrefix(string(line), "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

// TestThreads1000Blocked: 1000 goroutines blocked on one Mutex, Semaphore
// or Cond hold a handful of OS threads, not one each.
func TestThreads1000Blocked(t *testing.T) {
	const n = 1000
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	sem := counting(t, seg, "s", 0, 0)
	cm := mutex(t, seg, "cm")
	c := cond(t, seg, "c", cm)
	for _, kind := range []string{"mutex", "semaphore", "cond"} {
		t.Run(kind, func(t *testing.T) {
			base := threads(t)
			var started, done sync.WaitGroup
			m.Lock()
			for range n {
				started.Add(1)
				done.Go(func() {
					switch kind {
					case "mutex":
						started.Done()
						m.Lock()
						m.Unlock()
					case "semaphore":
						started.Done()
						sem.Acquire(context.Background(), 1)
					case "cond":
						cm.Lock()
						started.Done()
						c.Wait()
						cm.Unlock()
					}
				})
			}
			started.Wait()
			time.Sleep(200 * time.Millisecond) // let them reach their sleep
			during := threads(t)
			m.Unlock()
			switch kind {
			case "semaphore":
				sem.Release(n)
			case "cond":
				cm.Lock()
				c.Broadcast()
				cm.Unlock()
			}
			done.Wait()
			t.Logf("%s: %d threads before, %d with %d goroutines blocked", kind, base, during, n)
			if during > base+8 {
				t.Fatalf("%d goroutines blocked on a %s hold %d threads (%d before)", n, kind, during, base)
			}
		})
	}
}
