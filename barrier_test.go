//go:build linux && !processshared_nofutex

package processshared_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestBarrierHammer: 4 processes × 300 generations. Each party adds 1 to a
// shared counter before each Wait; after generation g's Wait returns it
// must find the counter between 4(g+1) (all of g arrived first) and
// 4(g+2)-1 (the next generation cannot complete without it). Each
// generation's arrival indices are 0-3, each once: every party ORs
// 1<<index into the generation's mask, and every mask ends at 0b1111.
func TestBarrierHammer(t *testing.T) {
	const parties, gens = 4, 300
	if childtest.Role() == "P" {
		s := inherit(t)
		b := barrier(t, s, "b", parties)
		c := counter(t, s, "c")
		masks, err := ps.NewArray[uint32](s, "masks", gens)
		if err != nil {
			t.Fatal(err)
		}
		for g := range int64(gens) {
			add(c, 1)
			idx, err := b.Wait()
			if err != nil {
				t.Fatalf("generation %d: %v", g, err)
			}
			if v := add(c, 0); v < parties*(g+1) || v > parties*(g+2)-1 {
				t.Fatalf("generation %d: counter %d after Wait, want %d to %d", g, v, parties*(g+1), parties*(g+2)-1)
			}
			if idx < 0 || idx >= parties {
				t.Fatalf("generation %d: index %d", g, idx)
			}
			for {
				old := masks.Load(int(g))
				if ps.CompareAndSwap(masks, int(g), old, old|1<<idx) {
					break
				}
			}
		}
		return
	}
	seg := create(t, 1<<18, nil)
	if _, err := ps.NewArray[uint32](seg, "masks", gens); err != nil {
		t.Fatal(err)
	}
	counter(t, seg, "c")
	runChildren(t, seg, parties, "P")
	masks, _ := ps.NewArray[uint32](seg, "masks", gens)
	for g := range gens {
		if m := masks.Load(g); m != 1<<parties-1 {
			t.Fatalf("generation %d: arrival indices %04b, want each of 0-%d once", g, m, parties-1)
		}
	}
	if c := counter(t, seg, "c"); *c != parties*gens {
		t.Fatalf("counter %d, want %d", *c, parties*gens)
	}
}

// TestBarrierPartyKilled: a party that joined and dies, before arriving or
// while waiting, breaks the barrier: every waiter, now and later, gets
// ErrBroken, until Reset; after Reset the dead party's place can be taken
// and the barrier works again.
//
//	J.1  J joins b (3 parties) and idles (role J), or arrives and sleeps
//	     in Wait (role A).
//	W.1  W joins and sleeps in Wait.
//	P.1  P joins; P kills J.
//	W.2  W returns ErrBroken. P's Wait returns ErrBroken.
//	P.2  P resets b; a new child N joins in J's place; P, W2 (a new
//	     waiter in P) and N complete a generation.
func TestBarrierPartyKilled(t *testing.T) {
	switch childtest.Role() {
	case "J", "A", "W", "N":
		s := inherit(t)
		b := barrier(t, s, "b", 3)
		printf("joined")
		if childtest.Role() == "J" {
			select {}
		}
		idx, err := b.Wait()
		switch {
		case errors.Is(err, ps.ErrBroken):
			printf("broken")
		case err != nil:
			printf("wait: %v", err)
		default:
			printf("index %d", idx)
		}
		return
	}
	for _, role := range []string{"J", "A"} {
		seg := create(t, 1<<16, nil)
		j, readJ := child(t, seg, role)
		readJ()
		if role == "A" {
			waitSleeping(t, j.Process.Pid)
		}
		w, readW := child(t, seg, "W")
		readW()
		waitSleeping(t, w.Process.Pid)
		b := barrier(t, seg, "b", 3)
		kill9(t, j)
		if l := readW(); l != "broken" {
			t.Fatalf("%s killed: the waiter got %q, want broken", role, l)
		}
		if _, err := b.Wait(); !errors.Is(err, ps.ErrBroken) {
			t.Fatalf("%s killed: a later Wait got %v, want ErrBroken", role, err)
		}
		if !b.Broken() {
			t.Fatal("Broken() false after a death")
		}
		// W returned, and exits: wait for that before the Reset, which
		// frees the entries of dead parties only. (Waiting after it let a
		// slow exit leave W's entry to a dead party, which broke the
		// barrier again under the new parties.)
		w.Wait()
		if err := b.Reset(); err != nil {
			t.Fatal(err)
		}
		if b.Broken() {
			t.Fatal("Broken() true after Reset")
		}
		// W is gone too: two new parties.
		n1, read1 := child(t, seg, "N")
		read1()
		waitSleeping(t, n1.Process.Pid)
		n2, read2 := child(t, seg, "N")
		read2()
		waitSleeping(t, n2.Process.Pid)
		var idx int
		var err error
		within(t, "Wait after Reset", func() { idx, err = b.Wait() })
		if err != nil || idx != 2 {
			t.Fatalf("after Reset: index %d, %v; want 2, nil", idx, err)
		}
		for _, read := range []func() string{read1, read2} {
			if l := read(); l != "index 0" && l != "index 1" {
				t.Fatalf("new party: %q", l)
			}
		}
	}
}

// TestBarrierContext: a Wait whose context ends, before the call, during it
// or at its deadline, returns the context's error (matching ErrBroken too)
// and breaks the barrier for another process's waiter.
//
//	W.1  W (another process) joins b (2 parties) and sleeps in Wait.
//	P.1  P's Wait gives up (each of the three ways, with a Reset and a new
//	     W between them): W returns ErrBroken.
func TestBarrierContext(t *testing.T) {
	if childtest.Role() == "W" {
		s := inherit(t)
		b := barrier(t, s, "b"+os.Getenv("N"), 3)
		printf("joined")
		if _, err := b.Wait(); errors.Is(err, ps.ErrBroken) {
			printf("broken")
		} else {
			printf("wait: %v", err)
		}
		return
	}
	seg := create(t, 1<<16, nil)
	n := 0
	ctxCases(t, func(ctx context.Context) error {
		n++
		// Three parties: P, W, and one that never joins, so the
		// generation cannot complete.
		b := barrier(t, seg, "b"+strconv.Itoa(n), 3)
		w, read := child(t, seg, "W", "N="+strconv.Itoa(n))
		read()
		waitSleeping(t, w.Process.Pid)
		_, err := b.WaitContext(ctx)
		if !errors.Is(err, ps.ErrBroken) {
			t.Errorf("gave up: %v, want it to match ErrBroken too", err)
		}
		if l := read(); l != "broken" {
			t.Errorf("the other waiter: %q, want broken", l)
		}
		return err
	})
}

// TestBarrierJoin: a barrier takes only its parties; the party count is
// checked on open.
func TestBarrierJoin(t *testing.T) {
	seg := create(t, 1<<16, nil)
	barrier(t, seg, "b", 2)
	barrier(t, seg, "b", 2)
	if _, err := ps.NewBarrier(seg, "b", 2); !errors.Is(err, ps.ErrTooManyProcesses) {
		t.Fatalf("third party of two: %v, want ErrTooManyProcesses", err)
	}
	if _, err := ps.NewBarrier(seg, "b", 3); !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("opened with another party count: %v, want ErrMismatch", err)
	}
	one := barrier(t, seg, "one", 1)
	for i := range 3 {
		if idx, err := one.Wait(); idx != 0 || err != nil {
			t.Fatalf("Wait %d of a 1-party barrier: %d, %v", i, idx, err)
		}
	}
}
