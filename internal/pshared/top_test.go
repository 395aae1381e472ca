//go:build darwin || freebsd || linux

package pshared

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestTopOnce runs pshared top --once against a live segment whose mutex
// "hot" two handles fight over while "cold" stays idle, and checks the
// frame's columns: hot comes first, with waits per second, and cold shows
// none.
func TestTopOnce(t *testing.T) {
	name := shmtest.Name(t)
	a, err := ps.Create(name, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ps.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := ps.NewMutex(a, "cold"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range []*ps.Segment{a, b} {
		m, err := ps.NewMutex(s, "hot")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := m.LockContext(context.Background()); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(200 * time.Microsecond) // the other handle sleeps meanwhile
				m.Unlock()
				// Room for the other to take it: a waiter that polls
				// (without futexes) would otherwise never find it free,
				// and a wait counts once it ends.
				time.Sleep(time.Millisecond)
			}
		})
	}
	r := sh(t, t.TempDir(), nil, "pshared top --once -d 0.5 "+name)
	close(stop)
	wg.Wait()
	r.want(t, "top --once", exitOK, "^$")
	t.Logf("pshared top --once:\n%s", r.stdout)
	lines := strings.Split(r.stdout, "\n")
	if !strings.HasPrefix(lines[0], "pshared top: segment "+name) {
		t.Fatalf("first line %q", lines[0])
	}
	header := strings.Fields(lines[2])
	want := []string{"OBJECT", "KIND", "WAITERS", "WAITS/S", "WAITING/S", "AVG", "WAIT", "MAX", "WAIT", "TIMEOUTS", "DEATHS", "STATE"}
	if strings.Join(header, " ") != strings.Join(want, " ") {
		t.Fatalf("header %q, want %q", lines[2], strings.Join(want, " "))
	}
	hot, cold := strings.Fields(lines[3]), strings.Fields(lines[4])
	if len(hot) < 10 || hot[0] != "hot" || hot[1] != "mutex" {
		t.Fatalf("first object row %q, want the hot mutex", lines[3])
	}
	if n, err := strconv.ParseFloat(hot[3], 64); err != nil || n <= 0 {
		t.Errorf("hot mutex: WAITS/S %q, want more than 0", hot[3])
	}
	if len(cold) < 10 || cold[0] != "cold" || cold[3] != "0" || cold[4] != "0s" {
		t.Errorf("second object row %q, want the idle mutex with no waits", lines[4])
	}
	if !strings.Contains(r.stdout, "PID") || strings.Count(r.stdout, "alive") < 2 {
		t.Errorf("no process table with this process's two handles:\n%s", r.stdout)
	}
}
