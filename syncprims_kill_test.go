//go:build linux && !processshared_nofutex

package processshared_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestSyncKilledAtRandom SIGKILLs a process using a Barrier, a WaitGroup
// or a Once at a random instant of its work, 8 times each, and checks that
// the survivors never hang (every wait is bounded by a generous failure
// bound) and get what the documentation promises:
//
//   - Barrier (3 parties, all looping Wait): the two survivors get
//     ErrBroken, whatever generation the kill fell in.
//   - WaitGroup (a worker looping Add(1), Done): the parent's Wait,
//     started before the kill, returns nil (it saw the counter at 0) or
//     ErrBroken; a Wait after the kill returns nil with nothing dropped
//     (the worker died between a Done and an Add), or ErrBroken with its
//     one Add dropped and one death counted, and the count is 0.
//   - Once (3 callers whose f takes a random time): every survivor's Do
//     returns nil, the Once is done, and f completed at least once.
func TestSyncKilledAtRandom(t *testing.T) {
	bound := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 20*time.Second)
	}
	if role := childtest.Role(); role != "" {
		s := inherit(t)
		ctx, cancel := bound()
		defer cancel()
		switch role {
		case "barrier":
			b := barrier(t, s, "b", 3)
			printf("joined")
			for {
				if _, err := b.WaitContext(ctx); err != nil {
					if errors.Is(err, ps.ErrBroken) {
						printf("broken")
					} else {
						printf("wait: %v", err)
					}
					return
				}
			}
		case "waitgroup":
			g := waitGroup(t, s, "g")
			printf("ready")
			for {
				g.Add(1)
				g.Done()
			}
		case "once":
			o := once(t, s, "o")
			c := counter(t, s, "completed")
			printf("ready")
			err := o.DoContext(ctx, func(bool) error {
				time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
				add(c, 1)
				return nil
			})
			if err != nil {
				printf("do: %v", err)
				return
			}
			printf("done")
		}
		return
	}
	randomKill := func(t *testing.T, cmd interface{ Signal(os.Signal) error }) {
		time.Sleep(time.Duration(rand.IntN(20000)) * time.Microsecond)
		cmd.Signal(os.Kill)
	}
	for trial := range 8 {
		t.Logf("trial %d", trial)
		seg := create(t, 1<<16, nil)

		// Barrier.
		b := barrier(t, seg, "b", 3)
		k, readK := child(t, seg, "barrier")
		readK()
		w, readW := child(t, seg, "barrier")
		readW()
		errc := make(chan error, 1)
		go func() {
			ctx, cancel := bound()
			defer cancel()
			for {
				if _, err := b.WaitContext(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
		randomKill(t, k.Process)
		k.Wait()
		if err := <-errc; !errors.Is(err, ps.ErrBroken) {
			t.Fatalf("trial %d: the parent's Wait after a party's death: %v, want ErrBroken", trial, err)
		}
		if l := readW(); l != "broken" {
			t.Fatalf("trial %d: the other party: %q, want broken", trial, l)
		}

		// WaitGroup.
		g := waitGroup(t, seg, "g")
		wk, readWk := child(t, seg, "waitgroup")
		readWk()
		go func() {
			ctx, cancel := bound()
			defer cancel()
			errc <- g.WaitContext(ctx)
		}()
		randomKill(t, wk.Process)
		wk.Wait()
		if err := <-errc; err != nil && !errors.Is(err, ps.ErrBroken) {
			t.Fatalf("trial %d: Wait during the worker's life: %v", trial, err)
		}
		ctx, cancel := bound()
		err := g.WaitContext(ctx)
		cancel()
		st := waitGroupState(t, seg, "g")
		switch {
		case err == nil && st.Count == 0 && st.Deaths == 0 && st.Dropped == 0:
			// it died between a Done and the next Add
		case errors.Is(err, ps.ErrBroken) && st.Count == 0 && st.Deaths == 1 && st.Dropped == 1:
			// it died holding its Add, which was dropped
		default:
			t.Fatalf("trial %d: Wait after the worker died: %v, with %+v", trial, err, st)
		}

		// Once.
		var reads []func() string
		var cmds []interface{ Signal(os.Signal) error }
		for range 3 {
			c, read := child(t, seg, "once")
			read()
			reads = append(reads, read)
			cmds = append(cmds, c.Process)
		}
		victim := rand.IntN(3)
		randomKill(t, cmds[victim])
		for i, read := range reads {
			if i == victim {
				continue
			}
			if l := read(); l != "done" {
				t.Fatalf("trial %d: a surviving caller of Do: %q", trial, l)
			}
		}
		o := once(t, seg, "o")
		if !o.Done() || *counter(t, seg, "completed") < 1 {
			t.Fatalf("trial %d: Once done %v, f completed %d times", trial, o.Done(), *counter(t, seg, "completed"))
		}
		w.Wait()
	}
}

func waitGroupState(t *testing.T, s *ps.Segment, name string) ps.WaitGroupState {
	t.Helper()
	si, err := s.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range si.Objects {
		if o.Name == name && o.WaitGroup != nil {
			return *o.WaitGroup
		}
	}
	t.Fatalf("no waitgroup %q in Inspect", name)
	return ps.WaitGroupState{}
}
