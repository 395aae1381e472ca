package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/cluster"
	"github.com/processshared/processshared/internal/childtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func semaphore(t testing.TB, s *cluster.Session, name string, n int) *cluster.Semaphore {
	t.Helper()
	m, err := cluster.NewSemaphore(context.Background(), s, name, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSemaphoreMismatch(t *testing.T) {
	cli, s := setup(t, 0)
	semaphore(t, s, "jobs", 2)
	semaphore(t, session(t, cli, 0, prefix(t)), "jobs", 2)
	_, err := cluster.NewSemaphore(context.Background(), s, "jobs", 3)
	if !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("NewSemaphore with another n: %v, want ErrMismatch", err)
	}
}

// Waiters are served in order: a small Acquire behind a large one waits,
// though permits would suffice for it.
func TestSemaphoreFIFO(t *testing.T) {
	cli, s1 := setup(t, 0)
	s2, s3 := session(t, cli, 0, prefix(t)), session(t, cli, 0, prefix(t))
	a, b, c := semaphore(t, s1, "q", 2), semaphore(t, s2, "q", 2), semaphore(t, s3, "q", 2)
	ctx := context.Background()
	if err := a.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if v := a.Value(); v != 0 {
		t.Fatalf("Value = %d with both permits held", v)
	}
	big := make(chan error, 1)
	go func() { big <- b.Acquire(ctx, 2) }()
	mustBlock(t, "Acquire(2)", big)
	small := make(chan error, 1)
	go func() { small <- c.Acquire(ctx, 1) }()
	mustBlock(t, "Acquire(1)", small)
	if err := a.Release(1); err != nil {
		t.Fatal(err)
	}
	mustBlock(t, "Acquire(2), one permit free", big)
	mustBlock(t, "Acquire(1) behind Acquire(2)", small)
	if c.TryAcquire(1) {
		t.Fatal("TryAcquire jumped the queue")
	}
	if err := a.Release(1); err != nil {
		t.Fatal(err)
	}
	if err := await(t, "Acquire(2)", big, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mustBlock(t, "Acquire(1) while Acquire(2) holds", small)
	if err := a.Release(1); !errors.Is(err, ps.ErrOverflow) {
		t.Fatalf("Release by a handle holding nothing: %v, want ErrOverflow", err)
	}
	if err := b.Release(2); err != nil {
		t.Fatal(err)
	}
	if err := await(t, "Acquire(1)", small, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if v := c.Value(); v != 1 {
		t.Fatalf("Value = %d, want 1", v)
	}
	if err := c.Release(1); err != nil {
		t.Fatal(err)
	}
}

// Acquire: cancelled before, while waiting, deadline; the waiter's own
// session ending; a waiter that gave up takes nothing.
func TestSemaphoreAcquireContext(t *testing.T) {
	cli, s1 := setup(t, 0)
	s2 := session(t, cli, 0, prefix(t))
	a, b := semaphore(t, s1, "q", 1), semaphore(t, s2, "q", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Acquire(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	if err := a.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Acquire(ctx, 1) }()
	mustBlock(t, "Acquire", done)
	cancel()
	if err := await(t, "Acquire", done, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer dcancel()
	if err := b.Acquire(dctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	go func() { done <- b.Acquire(context.Background(), 1) }()
	mustBlock(t, "Acquire", done)
	if _, err := cli.Revoke(context.Background(), s2.Lease()); err != nil {
		t.Fatal(err)
	}
	if err := await(t, "Acquire", done, 10*time.Second); !errors.Is(err, cluster.ErrSessionExpired) {
		t.Fatalf("waiter's session ended: %v, want ErrSessionExpired", err)
	}
	if err := a.Release(1); err != nil {
		t.Fatal(err)
	}
	if v := a.Value(); v != 1 {
		t.Fatalf("Value = %d after the waiters gave up, want 1", v)
	}
}

// A cap of 2 holds across 6 processes: each holder records itself under
// inside/ while it holds, and counts the records.
func TestSemaphoreCap(t *testing.T) {
	const procs, rounds, permits = 6, 5, 2
	if childtest.Role() == "worker" {
		cli, s := setup(t, 0)
		m := semaphore(t, s, "cap", permits)
		ctx := context.Background()
		me := fmt.Sprintf("%sinside/%d", prefix(t), s.Lease())
		most := 0
		for range rounds {
			if err := m.Acquire(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Put(ctx, me, ""); err != nil {
				t.Fatal(err)
			}
			resp, err := cli.Get(ctx, prefix(t)+"inside/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			most = max(most, int(resp.Count))
			time.Sleep(20 * time.Millisecond)
			if _, err := cli.Delete(ctx, me); err != nil {
				t.Fatal(err)
			}
			if err := m.Release(1); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Printf("MOST %d\n", most)
		return
	}
	setup(t, 0)
	var outs []chan string
	for range procs {
		cmd := childtest.Command(t, t.Name(), "worker")
		c := make(chan string, 1)
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				c <- fmt.Sprintf("ERR %v\n%s", err, out)
				return
			}
			c <- string(out)
		}()
		outs = append(outs, c)
	}
	overall := 0
	for _, c := range outs {
		out := <-c
		i := strings.Index(out, "MOST ")
		if i < 0 {
			t.Fatalf("worker: %s", out)
		}
		n, _ := strconv.Atoi(strings.Fields(out[i+5:])[0])
		if n > permits {
			t.Fatalf("a worker saw %d holders at once, cap %d", n, permits)
		}
		overall = max(overall, n)
	}
	if overall < 1 {
		t.Fatal("no worker saw itself hold")
	}
	t.Logf("most holders seen at once: %d (cap %d)", overall, permits)
}

// A SIGKILLed holder's permit comes back after its TTL.
func TestSemaphoreKilledHolder(t *testing.T) {
	if childtest.Role() == "holder" {
		_, s := setup(t, shortTTL)
		m := semaphore(t, s, "sem", 2)
		if err := m.Acquire(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		fmt.Println("HELD")
		time.Sleep(time.Minute) // killed here
		return
	}
	_, s := setup(t, shortTTL)
	m := semaphore(t, s, "sem", 2)
	cmd, lines := child(t, "holder")
	expect(t, lines, "HELD", 30*time.Second)
	ctx := context.Background()
	if err := m.Acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 1) }()
	mustBlock(t, "Acquire of the last permit, held by a live process", done)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := await(t, "Acquire after the holder was killed", done, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if v := m.Value(); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
	if err := m.Release(2); err != nil {
		t.Fatal(err)
	}
	if v := m.Value(); v != 2 {
		t.Fatalf("Value = %d after release, want 2", v)
	}
}
