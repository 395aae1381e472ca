//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

func cond(t *testing.T, s *ps.Segment, name string, m *ps.Mutex) *ps.Cond {
	t.Helper()
	c, err := ps.NewCond(s, name, m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCondSignal is the seed's C1 with a predicate loop: C waits until the
// shared value is set; P sets it and signals.
func TestCondSignal(t *testing.T) {
	if childtest.Role() == "wait" {
		s := inherit(t)
		m := mutex(t, s, "m")
		c := cond(t, s, "c", m)
		v := counter(t, s, "v")
		m.Lock()
		for *v == 0 {
			c.Wait()
		}
		fmt.Println("got", *v)
		m.Unlock()
		return
	}
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	v := counter(t, seg, "v")
	cmd := segChild(t, seg, "wait")
	done := make(chan string)
	go func() { out, _ := cmd.Output(); done <- strings.TrimSuffix(string(out), "PASS\n") }()
	time.Sleep(30 * time.Millisecond)
	m.Lock()
	*v = 42
	c.Signal()
	m.Unlock()
	select {
	case out := <-done:
		if out != "got 42\n" {
			t.Fatalf("child said %q", out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("waiter never woke")
	}
}

// TestCondBroadcast is the seed's C2: a Broadcast reaches 10 processes that
// wait on the Cond; each counts itself, and the count reaches 10.
func TestCondBroadcast(t *testing.T) {
	const procs = 10
	if childtest.Role() == "wait" {
		s := inherit(t)
		m := mutex(t, s, "m")
		c := cond(t, s, "c", m)
		ready, go_, woken := counter(t, s, "ready"), counter(t, s, "go"), counter(t, s, "woken")
		m.Lock()
		*ready++
		for *go_ == 0 {
			c.Wait()
		}
		*woken++
		m.Unlock()
		return
	}
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	ready, go_, woken := counter(t, seg, "ready"), counter(t, seg, "go"), counter(t, seg, "woken")
	done := make(chan struct{})
	go func() { runChildren(t, seg, procs, "wait"); close(done) }()
	for {
		m.Lock()
		n := *ready
		m.Unlock()
		if n == procs {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.Lock()
	*go_ = 1
	c.Broadcast()
	m.Unlock()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("broadcast did not reach every process")
	}
	if *woken != procs {
		t.Fatalf("count = %d, want %d", *woken, procs)
	}
}

// TestCondTimeout is the seed's C3: a timed wait returns after its timeout
// and says so.
func TestCondTimeout(t *testing.T) {
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	m.Lock()
	start := time.Now()
	if c.WaitTimeout(30 * time.Millisecond) {
		t.Fatal("WaitTimeout reported a wake-up nobody sent")
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("WaitTimeout returned before its timeout")
	}
	if m.TryLock() {
		t.Fatal("WaitTimeout returned without the mutex")
	}
	m.Unlock()
}

// TestCondSignalNotRemembered is the seed's C4: a Signal with no waiter does
// not wake a later waiter.
func TestCondSignalNotRemembered(t *testing.T) {
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	c.Signal()
	c.Broadcast()
	m.Lock()
	defer m.Unlock()
	if c.WaitTimeout(30 * time.Millisecond) {
		t.Fatal("an earlier Signal woke a later waiter")
	}
}

func TestCondContext(t *testing.T) {
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	m.Lock()
	defer m.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.WaitContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := c.WaitContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.WaitContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	// Each return above held the mutex again: a TryLock from here fails.
	if m.TryLock() {
		t.Fatal("WaitContext returned without the mutex")
	}
}

// TestCondPingPong passes a turn back and forth between two processes many
// times with Signal only: a single lost wake-up hangs it.
func TestCondPingPong(t *testing.T) {
	const rounds = 2000
	play := func(s *ps.Segment, me int64) {
		m := mutex(t, s, "m")
		c := cond(t, s, "c", m)
		turn := counter(t, s, "turn")
		for i := range rounds {
			m.Lock()
			for *turn%2 != me {
				c.Wait()
			}
			if *turn != int64(2*i)+me {
				panic(fmt.Sprintf("turn %d, want %d", *turn, 2*i+int(me)))
			}
			*turn++
			c.Signal()
			m.Unlock()
		}
	}
	if childtest.Role() == "pong" {
		play(inherit(t), 1)
		return
	}
	seg := create(t, 1<<16, nil)
	cmd := segChild(t, seg, "pong")
	childtest.Start(t, cmd)
	play(seg, 0)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if v := *counter(t, seg, "turn"); v != 2*rounds {
		t.Fatalf("turn %d, want %d", v, 2*rounds)
	}
}

// TestCondDeadWaiter: C waits on the Cond and is killed. Signal and
// Broadcast still return at once, and a new waiter is woken normally.
func TestCondDeadWaiter(t *testing.T) {
	if childtest.Role() == "wait" {
		s := inherit(t)
		m := mutex(t, s, "m")
		c := cond(t, s, "c", m)
		m.Lock()
		fmt.Println("waiting")
		c.Wait()
		select {}
	}
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	cmd := segChild(t, seg, "wait")
	stdout, _ := cmd.StdoutPipe()
	childtest.Start(t, cmd)
	buf := make([]byte, 8)
	stdout.Read(buf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.LockContext(ctx); err != nil { // the child released m inside Wait
		t.Fatal(err)
	}
	m.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	c.Signal()
	c.Broadcast()
	var woke atomic.Bool
	m.Lock()
	go func() {
		time.Sleep(20 * time.Millisecond)
		m.Lock()
		woke.Store(true)
		c.Signal()
		m.Unlock()
	}()
	for !woke.Load() {
		if !c.WaitTimeout(10 * time.Second) {
			t.Fatal("waiter after a dead waiter was not woken")
		}
	}
	m.Unlock()
}

// TestCondHammer runs processes × goroutines that hand work through a
// bounded queue guarded by one Mutex and two Conds; every item is consumed
// exactly once. Run under -race it also checks the race annotations.
func TestCondHammer(t *testing.T) {
	const procs, gor, items = 3, 4, 300
	work := func(s *ps.Segment) {
		m := mutex(t, s, "m")
		notEmpty := cond(t, s, "notEmpty", m)
		notFull := cond(t, s, "notFull", m)
		queued, produced, consumed := counter(t, s, "queued"), counter(t, s, "produced"), counter(t, s, "consumed")
		var local int // process-local, guarded by m: -race must not complain
		var wg sync.WaitGroup
		for g := range gor {
			wg.Go(func() {
				for range items {
					if g%2 == 0 {
						m.Lock()
						for *queued >= 4 {
							notFull.Wait()
						}
						*queued++
						*produced++
						local++
						notEmpty.Signal()
						m.Unlock()
					} else {
						m.Lock()
						for *queued == 0 {
							notEmpty.Wait()
						}
						*queued--
						*consumed++
						local++
						notFull.Signal()
						m.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if local != gor*items {
			panic("local count " + strconv.Itoa(local))
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
	p, c, q := *counter(t, seg, "produced"), *counter(t, seg, "consumed"), *counter(t, seg, "queued")
	if p != procs*gor/2*items || c != p || q != 0 {
		t.Fatalf("produced %d consumed %d queued %d, want %d %d 0", p, c, q, procs*gor/2*items, procs*gor/2*items)
	}
}

// TestCondClosed: after Close, WaitContext returns ErrClosed, and Wait,
// WaitTimeout, Signal and Broadcast panic with an error matching it.
func TestCondClosed(t *testing.T) {
	seg, err := ps.Create(shmtest.Name(t), 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := mutex(t, seg, "m")
	c := cond(t, seg, "c", m)
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitContext(context.Background()); !errors.Is(err, ps.ErrClosed) {
		t.Errorf("WaitContext after Close: %v, want ErrClosed", err)
	}
	mustPanic(t, ps.ErrClosed, c.Wait)
	mustPanic(t, ps.ErrClosed, func() { c.WaitTimeout(time.Second) })
	mustPanic(t, ps.ErrClosed, c.Signal)
	mustPanic(t, ps.ErrClosed, c.Broadcast)
}
