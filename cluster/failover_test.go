package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/cluster/internal/etcdtest"
	"github.com/processshared/processshared/internal/childtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// runMember is a child process serving as one member of its parent's
// etcd cluster, until it is killed.
func runMember(t *testing.T) {
	var ms []etcdtest.Member
	if err := json.Unmarshal([]byte(os.Getenv("PSTEST_MEMBERS")), &ms); err != nil {
		t.Fatal(err)
	}
	i, _ := strconv.Atoi(os.Getenv("PSTEST_MEMBER"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := ms[i].Start(ctx, os.Getenv("PSTEST_INITIAL"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fmt.Println("READY")
	select {
	case err := <-e.Err():
		t.Fatal(err)
	case <-time.After(5 * time.Minute):
	}
}

// Killing the etcd leader of a 3-member cluster (each member a process,
// SIGKILLed) while 3 clients hold and wait for one Mutex:
//
//	C*.1 each client loops: lock, write the fenced resource with its token,
//	     hold a moment, unlock
//	P.1  once every client has gone round twice, P kills the leader
//	C*.2 the clients go on after the election: each goes round 3 more times
//	P.2  the writes the resource accepted came in strictly increasing token
//	     order, and a write with a stale token is refused
func TestMutexLeaderKilled(t *testing.T) {
	if childtest.Role() == "member" {
		runMember(t)
		return
	}
	ms, initial, err := etcdtest.Members(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := json.Marshal(ms)
	var members []*exec.Cmd
	var readies []<-chan string
	var endpoints []string
	for i, m := range ms {
		cmd, lines := child(t, "member", "PSTEST_MEMBERS="+string(enc), "PSTEST_INITIAL="+initial, "PSTEST_MEMBER="+strconv.Itoa(i))
		members = append(members, cmd)
		readies = append(readies, lines)
		endpoints = append(endpoints, m.Client)
	}
	for _, lines := range readies {
		expect(t, lines, "READY", time.Minute)
	}
	admin := etcdtest.Client(t, endpoints...)
	res := prefix(t) + "resource"
	initResource(t, admin, res)

	const clients, before, after = 3, 2, 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		accepted []int64
		rounds   [clients]int
	)
	killed := make(chan struct{})
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		cli := etcdtest.Client(t, endpoints...)
		m := mutex(t, session(t, cli, 5*time.Second, prefix(t)), "m")
		wg.Go(func() {
			for done := 0; done < after; {
				err := m.LockContext(ctx)
				if err != nil && !errors.Is(err, ps.ErrOwnerDead) {
					if ctx.Err() != nil {
						errs <- fmt.Errorf("client %d: %v after %d rounds since the kill", c, err, done)
						return
					}
					t.Logf("client %d: lock: %v (retrying)", c, err)
					continue
				}
				if err != nil {
					t.Logf("client %d: %v", c, err)
					m.MarkConsistent()
				}
				select {
				case <-killed:
					done++
				default:
				}
				tok := m.Token()
				ok, err := writeFenced(ctx, admin, res, tok)
				if err != nil {
					errs <- fmt.Errorf("client %d: fenced write: %v", c, err)
					return
				}
				select {
				case <-m.Lost():
					t.Logf("client %d: lost the lock with its session", c)
				default:
					if !ok {
						errs <- fmt.Errorf("client %d: fenced write with token %d refused while holding the lock", c, tok)
						return
					}
				}
				if ok {
					mu.Lock()
					accepted = append(accepted, tok)
					rounds[c]++
					mu.Unlock()
				}
				time.Sleep(30 * time.Millisecond) // hold, so that the others wait
				m.Unlock()
			}
			errs <- nil
		})
	}
	for {
		mu.Lock()
		least := min(rounds[0], rounds[1], rounds[2])
		mu.Unlock()
		if least >= before {
			break
		}
		select {
		case err := <-errs:
			t.Fatalf("before the kill: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	leader := -1
	for i, ep := range endpoints {
		st, err := admin.Status(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == st.Header.MemberId {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no leader")
	}
	if err := members[leader].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	atKill := len(accepted)
	mu.Unlock()
	close(killed)
	t.Logf("killed leader %s after %d fenced writes", ms[leader].Name, atKill)
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(accepted); i++ {
		if accepted[i] <= accepted[i-1] {
			t.Fatalf("fenced writes accepted out of token order: %v", accepted)
		}
	}
	if len(accepted) < atKill+clients*after {
		t.Fatalf("%d writes after the kill, want %d", len(accepted)-atKill, clients*after)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if ok, err := writeFenced(sctx, admin, res, accepted[atKill-1]); ok || err != nil {
		t.Fatalf("write with the stale token %d: accepted %v, %v", accepted[atKill-1], ok, err)
	}
	t.Logf("%d fenced writes in token order, %d after the kill", len(accepted), len(accepted)-atKill)
}

// writeFenced is fencedPut, retried across the election. A retry refused
// because an earlier attempt was applied (the resource holds the token
// already) counts as accepted.
func writeFenced(ctx context.Context, cli *clientv3.Client, res string, tok int64) (bool, error) {
	retried := false
	for {
		ok, err := fencedPut(ctx, cli, res, tok, "v")
		if err == nil {
			if !ok && retried {
				resp, err := cli.Get(ctx, res+"/token")
				if err != nil {
					return false, err
				}
				ok = strings.TrimLeft(string(resp.Kvs[0].Value), "0") == strconv.FormatInt(tok, 10)
			}
			return ok, nil
		}
		if ctx.Err() != nil {
			return false, err
		}
		retried = true
		time.Sleep(100 * time.Millisecond)
	}
}
