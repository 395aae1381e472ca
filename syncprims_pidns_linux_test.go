//go:build linux && !processshared_nofutex

package processshared_test

import (
	"context"
	"errors"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestPIDNSSyncKilled: the role a Barrier party, a WaitGroup's holder of
// Adds, and a Once's runner play in one PID namespace is seen dead from
// another when it is SIGKILLed, though both processes may be pid 1 and have
// the same keeper id (startPair tries for it). The other process, waiting
// (or coming after), gets ErrBroken from the Barrier and the WaitGroup and
// runs f itself, told retry, from the Once.
//
//	P.1  creates the segment.
//	A.1  joins the 2-party barrier / Adds 1 / runs f, and reports.
//	B.1  waits (or starts after A's death).
//	P.2  kills A: B reports what its call returned.
func TestPIDNSSyncKilled(t *testing.T) {
	if childtest.Role() == "" && !ps.Robust() {
		t.Skip("no kernel death mark (processshared_nofutex build)")
	}
	wait := func(seg *ps.Segment, kind string) string {
		ctx, cancel := context.WithTimeout(context.Background(), nsBound)
		defer cancel()
		var err error
		switch kind {
		case "barrier":
			_, err = barrier(t, seg, "b", 2).WaitContext(ctx)
		case "waitgroup":
			err = waitGroup(t, seg, "g").WaitContext(ctx)
		case "once":
			retried := false
			err = once(t, seg, "o").DoContext(ctx, func(retry bool) error { retried = retry; return nil })
			if err == nil && !retried {
				return "ran f without retry"
			}
		}
		switch {
		case errors.Is(err, ps.ErrBroken):
			return "broken"
		case err != nil:
			return "error " + err.Error()
		}
		return "ok"
	}
	if role := childtest.Role(); role != "" {
		seg := nsAttach(t)
		if seg == nil {
			return
		}
		kind := role[:len(role)-2]
		switch role[len(role)-2:] {
		case ".a":
			switch kind {
			case "barrier":
				barrier(t, seg, "b", 2)
			case "waitgroup":
				if err := waitGroup(t, seg, "g").Add(1); err != nil {
					t.Fatal(err)
				}
			case "once":
				go once(t, seg, "o").Do(func(bool) error { select {} })
				for !func() bool { si, _ := seg.Inspect(); return onceRunning(si) }() {
				}
			}
			nsSay("held")
			nsCommand() // killed while waiting here
			t.Error("not killed")
		case ".b":
			reportBlocked(func() string { return wait(seg, kind) })
		case ".c":
			nsSay("%s", wait(seg, kind))
		}
		return
	}
	needRoot(t)
	want := map[string]string{"barrier": "broken", "waitgroup": "broken", "once": "ok"}
	for _, kind := range []string{"barrier", "waitgroup", "once"} {
		for _, after := range []bool{false, true} {
			name := kind + "/waiting"
			role := kind + ".b"
			if after {
				name, role = kind+"/after", kind+".c"
			}
			t.Run(name, func(t *testing.T) {
				seg := create(t, 1<<16, nil)
				a, b := startPair(t, kind+".a", role, seg.Name())
				if r := killHolder(t, a, b, "held", after); r != want[kind] {
					t.Errorf("%s: after the other namespace's process (keeper id %d) was killed, a process with keeper id %d got %q, want %q", kind, a.tid, b.tid, r, want[kind])
				}
				b.finish(t)
			})
		}
	}
}

func onceRunning(si ps.SegmentInfo) bool {
	for _, o := range si.Objects {
		if o.Once != nil && o.Once.Running {
			return true
		}
	}
	return false
}
