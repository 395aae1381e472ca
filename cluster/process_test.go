package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/cluster"
	"github.com/processshared/processshared/internal/childtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Mutual exclusion across processes: 4 processes × 4 goroutines, each
// goroutine with a handle of its own on its process's session, increment a
// counter kept in etcd with a plain read and a plain write. Without the
// mutex increments would be lost; the count must be exact.
func TestMutexHammer(t *testing.T) {
	const procs, goroutines, rounds = 4, 4, 10
	if childtest.Role() == "hammer" {
		cli, s := setup(t, 0)
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			m := mutex(t, s, "counter")
			wg.Go(func() {
				ctx := context.Background()
				for range rounds {
					if err := m.LockContext(ctx); err != nil {
						errs <- err
						return
					}
					resp, err := cli.Get(ctx, prefix(t)+"counter")
					if err != nil {
						errs <- err
						return
					}
					n := 0
					if len(resp.Kvs) > 0 {
						n, _ = strconv.Atoi(string(resp.Kvs[0].Value))
					}
					if _, err := m.Txn(ctx, clientv3.OpPut(prefix(t)+"counter", strconv.Itoa(n+1))); err != nil {
						errs <- err
						return
					}
					if err := m.UnlockContext(ctx); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return
	}
	cli, _ := setup(t, 0)
	var cmds []chan error
	for range procs {
		cmd := childtest.Command(t, t.Name(), "hammer")
		done := make(chan error, 1)
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%v\n%s", err, out)
			}
			done <- err
		}()
		cmds = append(cmds, done)
	}
	for _, done := range cmds {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.Get(context.Background(), prefix(t)+"counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Kvs[0].Value); got != strconv.Itoa(procs*goroutines*rounds) {
		t.Fatalf("counter = %s, want %d", got, procs*goroutines*rounds)
	}
}

// SIGKILL of a holder in the middle of an update:
//
//	C.1 locks "account" and moves 10 from a to b: writes a = 90 ...
//	C.2 ... and is killed before it writes b = 10
//	P.1 waits in LockContext; the child's lease expires (TTL)
//	P.2 LockContext returns ErrOwnerDead naming the child's pid; P sees
//	    a = 90, b = 0, repairs b, MarkConsistent, Unlock
//	P.3 the next Lock is consistent, and the books balance
func TestMutexKilledHolder(t *testing.T) {
	if childtest.Role() == "holder" {
		_, s := setup(t, shortTTL)
		m := mutex(t, s, "account")
		ctx := context.Background()
		if err := m.LockContext(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Txn(ctx, clientv3.OpPut(prefix(t)+"a", "90")); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("HELD %d\n", m.Token())
		time.Sleep(time.Minute) // killed here
		return
	}
	cli, s := setup(t, shortTTL)
	ctx := context.Background()
	for k, v := range map[string]string{"a": "100", "b": "0"} {
		if _, err := cli.Put(ctx, prefix(t)+k, v); err != nil {
			t.Fatal(err)
		}
	}
	cmd, lines := child(t, "holder")
	childToken, _ := strconv.ParseInt(expect(t, lines, "HELD ", 30*time.Second), 10, 64)
	m := mutex(t, s, "account")
	done := make(chan error, 1)
	go func() { done <- m.LockContext(ctx) }()
	mustBlock(t, "LockContext while the holder lives", done)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := await(t, "LockContext after the holder was killed", done, 30*time.Second)
	var dead *ps.OwnerDeadError
	if !errors.As(err, &dead) {
		t.Fatalf("LockContext after the holder was killed: %v, want ErrOwnerDead", err)
	}
	if dead.DeadPID != cmd.Process.Pid || dead.Object != "account" {
		t.Fatalf("OwnerDeadError %+v, want pid %d", dead, cmd.Process.Pid)
	}
	if m.Token() <= childToken {
		t.Fatalf("token %d after the dead holder's %d", m.Token(), childToken)
	}
	get := func(k string) int {
		resp, err := cli.Get(ctx, prefix(t)+k)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(resp.Kvs[0].Value))
		return n
	}
	if a, b := get("a"), get("b"); a+b == 100 {
		t.Fatalf("a = %d, b = %d: the half-done update is not visible", a, b)
	}
	// Repair: complete the transfer.
	if _, err := m.Txn(ctx, clientv3.OpPut(prefix(t)+"b", strconv.Itoa(100-get("a")))); err != nil {
		t.Fatal(err)
	}
	m.MarkConsistent()
	m.Unlock()
	if err := m.LockContext(ctx); err != nil {
		t.Fatalf("lock after the repair: %v", err)
	}
	defer m.Unlock()
	if a, b := get("a"), get("b"); a+b != 100 {
		t.Fatalf("after the repair a = %d, b = %d", a, b)
	}
}

// SIGSTOP of a holder past its TTL, then SIGCONT:
//
//	C.1 locks, prints its token, and waits on Lost
//	P.1 stops C; C's lease expires
//	P.2 P's LockContext returns ErrOwnerDead; P writes the fenced resource
//	    with its (higher) token
//	P.3 continues C
//	C.2 Lost is closed; a guarded Txn is refused, and so is a write to the
//	    fenced resource with C's old token; C reports both
func TestMutexStoppedHolder(t *testing.T) {
	res := "/pstest/" + t.Name() + "/resource"
	if childtest.Role() == "holder" {
		cli, s := setup(t, shortTTL)
		m := mutex(t, s, "m")
		ctx := context.Background()
		if err := m.LockContext(ctx); err != nil {
			t.Fatal(err)
		}
		token := m.Token()
		fmt.Printf("HELD %d\n", token)
		select {
		case <-m.Lost():
		case <-time.After(time.Minute):
			t.Fatal("never told the lock was lost")
		}
		_, err := m.Txn(ctx, clientv3.OpPut(res+"/value", "stale"))
		fmt.Printf("GUARDED %v\n", errors.Is(err, cluster.ErrLockLost))
		ok, err := fencedPut(ctx, cli, res, token, "stale")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("FENCED %v\n", ok)
		if err := m.UnlockContext(ctx); !errors.Is(err, cluster.ErrLockLost) {
			t.Fatalf("unlock after the loss: %v", err)
		}
		return
	}
	cli, s := setup(t, shortTTL)
	initResource(t, cli, res)
	cmd, lines := child(t, "holder")
	childToken, _ := strconv.ParseInt(expect(t, lines, "HELD ", 30*time.Second), 10, 64)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Signal(syscall.SIGCONT)
	m := mutex(t, s, "m")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("lock after the holder stopped past its TTL: %v, want ErrOwnerDead", err)
	}
	if m.Token() <= childToken {
		t.Fatalf("token %d after the stopped holder's %d", m.Token(), childToken)
	}
	if ok, err := fencedPut(ctx, cli, res, m.Token(), "new"); !ok || err != nil {
		t.Fatalf("fenced write of the new holder refused: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if got := expect(t, lines, "GUARDED ", 30*time.Second); got != "true" {
		t.Fatal("the stopped holder's guarded write was not refused")
	}
	if got := expect(t, lines, "FENCED ", 30*time.Second); got != "false" {
		t.Fatal("the stopped holder's write with its old token was accepted")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	resp, err := cli.Get(ctx, res+"/value")
	if err != nil || string(resp.Kvs[0].Value) != "new" {
		t.Fatalf("resource = %v %v, want the new holder's write", resp, err)
	}
	m.MarkConsistent()
	m.Unlock()
}
