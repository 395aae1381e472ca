package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/cluster"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMutexLockUnlock(t *testing.T) {
	cli, s := setup(t, 0)
	m := mutex(t, s, "a")
	ctx := context.Background()
	var last int64
	for i := range 3 {
		if err := m.LockContext(ctx); err != nil {
			t.Fatalf("lock %d: %v", i, err)
		}
		if !m.Consistent() {
			t.Fatalf("lock %d: not consistent", i)
		}
		tok := m.Token()
		if tok <= last {
			t.Fatalf("lock %d: token %d after %d", i, tok, last)
		}
		last = tok
		if _, err := m.Txn(ctx, clientv3.OpPut(prefix(t)+"x", "1")); err != nil {
			t.Fatalf("guarded txn while holding: %v", err)
		}
		if err := m.UnlockContext(ctx); err != nil {
			t.Fatal(err)
		}
		if m.Token() != 0 {
			t.Fatal("token after unlock")
		}
		if _, err := m.Txn(ctx, clientv3.OpPut(prefix(t)+"x", "2")); !errors.Is(err, cluster.ErrLockLost) {
			t.Fatalf("guarded txn after unlock: %v, want ErrLockLost", err)
		}
	}
	resp, err := cli.Get(ctx, prefix(t)+"x")
	if err != nil || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("x = %v, %v; want the guarded write only", resp, err)
	}
}

// Two sessions (two processes, as far as etcd knows) exclude each other,
// first come first served, and TryLock fails while the other holds.
func TestMutexTwoSessions(t *testing.T) {
	cli, s1 := setup(t, 0)
	s2 := session(t, cli, 0, prefix(t))
	a, b := mutex(t, s1, "m"), mutex(t, s2, "m")
	a.Lock()
	if b.TryLock() {
		t.Fatal("TryLock succeeded while another session holds the mutex")
	}
	done := make(chan error, 1)
	go func() { done <- b.LockContext(context.Background()) }()
	mustBlock(t, "LockContext of the second session", done)
	ta := a.Token()
	a.Unlock()
	if err := await(t, "LockContext", done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if b.Token() <= ta {
		t.Fatalf("token %d after %d", b.Token(), ta)
	}
	if a.TryLock() {
		t.Fatal("TryLock succeeded while another session holds the mutex")
	}
	b.Unlock()
	if !a.TryLock() {
		t.Fatal("TryLock of a free mutex failed")
	}
	a.Unlock()
}

// Goroutines of one process sharing a session (and so a lease) still
// exclude each other: handles on one name take turns on a local lock.
func TestMutexOneSessionTwoHandles(t *testing.T) {
	_, s := setup(t, 0)
	a, b := mutex(t, s, "m"), mutex(t, s, "m")
	a.Lock()
	if b.TryLock() {
		t.Fatal("TryLock of a second handle of the holding session succeeded")
	}
	done := make(chan error, 1)
	go func() { done <- b.LockContext(context.Background()) }()
	mustBlock(t, "LockContext of a second handle", done)
	a.Unlock()
	if err := await(t, "LockContext", done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b.Unlock()
}

// A second Unlock, even after the same session locked again through
// another handle, does nothing (etcd issue 22082).
func TestMutexUnlockIdempotent(t *testing.T) {
	_, s := setup(t, 0)
	a, b := mutex(t, s, "m"), mutex(t, s, "m")
	ctx := context.Background()
	a.Lock()
	if err := a.UnlockContext(ctx); err != nil {
		t.Fatal(err)
	}
	b.Lock() // the same key name, a new create revision
	if err := a.UnlockContext(ctx); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	a.Unlock()
	if _, err := b.Txn(ctx); err != nil {
		t.Fatalf("after the stale unlocks, the new holder lost its lock: %v", err)
	}
	if err := b.MarkConsistentContext(ctx); err != nil {
		t.Fatal(err)
	}
	b.Unlock()
}

// A holder whose session ends while it holds is a dead owner: the next
// holder is told, every holder after it too until MarkConsistent.
func TestMutexOwnerDeadOnClose(t *testing.T) {
	cli, s1 := setup(t, 0)
	s2 := session(t, cli, 0, prefix(t))
	a, b := mutex(t, s1, "m"), mutex(t, s2, "m")
	ctx := context.Background()
	a.Lock()
	done := make(chan error, 1)
	go func() { done <- b.LockContext(ctx) }()
	mustBlock(t, "LockContext", done)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder was not told it lost the lock")
	}
	err := await(t, "LockContext", done, 10*time.Second)
	var dead *ps.OwnerDeadError
	if !errors.As(err, &dead) || !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("LockContext after the holder's session ended: %v, want ErrOwnerDead", err)
	}
	if b.Consistent() {
		t.Fatal("Consistent after a death")
	}
	if err := a.UnlockContext(ctx); !errors.Is(err, cluster.ErrLockLost) {
		t.Fatalf("unlock by the lost holder: %v, want ErrLockLost", err)
	}
	// Not repaired: the next holder is told again.
	b.Unlock()
	if err := b.LockContext(ctx); !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("lock after an unrepaired death: %v, want ErrOwnerDead", err)
	}
	if err := b.MarkConsistentContext(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Consistent() {
		t.Fatal("not Consistent after MarkConsistent")
	}
	b.Unlock()
	if err := b.LockContext(ctx); err != nil {
		t.Fatalf("lock after MarkConsistent: %v", err)
	}
	b.Unlock()
	if _, err := cli.Get(ctx, "x"); err != nil {
		t.Fatal(err)
	}
}

// A waiter whose own session ends stops waiting, with ErrSessionExpired,
// and a lock through an ended session fails at once.
func TestMutexWaiterSessionExpired(t *testing.T) {
	cli, s1 := setup(t, 0)
	s2 := session(t, cli, 0, prefix(t))
	a, b := mutex(t, s1, "m"), mutex(t, s2, "m")
	a.Lock()
	defer a.Unlock()
	done := make(chan error, 1)
	go func() { done <- b.LockContext(context.Background()) }()
	mustBlock(t, "LockContext", done)
	// Revoke the lease behind the session's back, as its expiry would.
	if _, err := cli.Revoke(context.Background(), s2.Lease()); err != nil {
		t.Fatal(err)
	}
	if err := await(t, "LockContext", done, 10*time.Second); !errors.Is(err, cluster.ErrSessionExpired) {
		t.Fatalf("LockContext of a waiter whose session ended: %v, want ErrSessionExpired", err)
	}
	if err := b.LockContext(context.Background()); !errors.Is(err, cluster.ErrSessionExpired) {
		t.Fatalf("LockContext on an ended session: %v", err)
	}
	if ok, err := b.TryLockContext(context.Background()); ok || !errors.Is(err, cluster.ErrSessionExpired) {
		t.Fatalf("TryLockContext on an ended session: %v %v", ok, err)
	}
}

// LockContext: cancelled before, cancelled while waiting, deadline
// exceeded; a waiter that gave up leaves no key in the queue.
func TestMutexLockContext(t *testing.T) {
	cli, s1 := setup(t, 0)
	s2 := session(t, cli, 0, prefix(t))
	s3 := session(t, cli, 0, prefix(t))
	a, b, c := mutex(t, s1, "m"), mutex(t, s2, "m"), mutex(t, s3, "m")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.LockContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before, free mutex: %v", err)
	}

	a.Lock()
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.LockContext(ctx) }()
	mustBlock(t, "LockContext", done)
	cancel()
	if err := await(t, "cancelled LockContext", done, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: %v", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer dcancel()
	if err := b.LockContext(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}

	// The two waiters that gave up are not in the queue: after a's
	// unlock, c gets the mutex at once.
	a.Unlock()
	if !c.TryLock() {
		t.Fatal("a waiter that gave up still blocks the mutex")
	}
	c.Unlock()
	resp, err := cli.Get(context.Background(), prefix(t)+"m/m/q/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("queue keys left: %v %v", resp.Count, err)
	}
}

// The holder is told when it loses the lock: Lost is closed, and writes
// guarded by the lock are refused.
func TestMutexLost(t *testing.T) {
	cli, s := setup(t, 2*time.Second)
	m := mutex(t, s, "m")
	m.Lock()
	select {
	case <-m.Lost():
		t.Fatal("Lost closed while the lock is held")
	default:
	}
	if _, err := cli.Revoke(context.Background(), s.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the lease ended")
	}
	if _, err := m.Txn(context.Background(), clientv3.OpPut(prefix(t)+"x", "1")); !errors.Is(err, cluster.ErrLockLost) {
		t.Fatalf("guarded txn after the loss: %v", err)
	}
	m.Unlock() // does not block or panic
}
