package model

import (
	"slices"
	"testing"
)

func exploreQueue(t *testing.T, name string, cfg QueueConfig, opt Options) *Result {
	t.Helper()
	m, err := NewQueueModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[QueueState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

var queueConfigs = []struct {
	name string
	cfg  QueueConfig
}{
	// A producer that ends the stream and a consumer that drains it: the
	// second Send finds the queue full (capacity 1), the third Recv gets
	// io.EOF.
	// With 1-bit counts and sequences, both wrap within the run.
	{"producer and consumer, capacity 1", QueueConfig{
		Procs: [][]QueueOp{{QSend, QSend, QClose}, {QRecv, QRecv, QRecv}}, Cap: 1,
		Budget: Budget{Kill: 1, Cancel: 1, Close: 1}, CountBits: 1, SeqBits: 1}},
	// Both processes send and receive: each may sleep on either word.
	{"both ways, capacity 1", QueueConfig{
		Procs: [][]QueueOp{{QRecv, QSend, QSend}, {QSend, QRecv, QRecv}}, Cap: 1,
		Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
}

// TestQueueDeep explores capacity 2, whose 2-bit counts wrap after four
// messages (3 million states, a few seconds; skipped with -short).
func TestQueueDeep(t *testing.T) {
	if testing.Short() {
		t.Skip("deep")
	}
	cfg := QueueConfig{
		Procs: [][]QueueOp{{QSend, QSend, QSend, QSend, QClose}, {QRecv, QRecv, QRecv, QRecv, QRecv}}, Cap: 2,
		Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}
	r := exploreQueue(t, "capacity 2, counts wrap", cfg, Options{})
	for _, v := range r.Violations {
		t.Errorf("%v", v)
	}
}

// TestQueue explores the Queue protocol at the CI configurations: two
// processes of one goroutine, one kill, one cancellation and one Close of
// a handle, each at every step. It also checks that every listed step of
// the model is taken, and every step taken is listed.
func TestQueue(t *testing.T) {
	taken := map[string]int{}
	for _, tc := range queueConfigs {
		r := exploreQueue(t, tc.name, tc.cfg, Options{CountLabels: true})
		for _, v := range r.Violations {
			t.Errorf("%s: %v", tc.name, v)
		}
		if r.Truncated {
			t.Errorf("%s: truncated", tc.name)
		}
		for l, n := range r.Labels {
			taken[l] += n
		}
	}
	steps := (&QueueModel{}).Steps()
	for _, l := range steps {
		if taken[l] == 0 {
			t.Errorf("step %q is listed but never taken", l)
		}
	}
	for l := range taken {
		if !slices.Contains(steps, l) && l != "env.kill" && l != "env.cancel" && l != "env.close" && l != "kernel.robust_walk" {
			t.Errorf("step %q is taken but not listed", l)
		}
	}
}

var queueBugs = []struct {
	name string
	cfg  QueueConfig
	want string
}{
	{
		// The consumer marks recvWord; the producer commits and loads
		// recvWord before the mark, sees no sleeper, makes no call; the
		// consumer sleeps with a message queued.
		"BugNoRecheck: a waiter sleeps without looking again",
		QueueConfig{Procs: [][]QueueOp{{QSend}, {QRecv}}, Cap: 1, BugNoRecheck: true},
		"lost-wakeup",
	},
	{
		// The producer is killed between its commit and its wake.
		"BugNoWatch: a committer killed before its wake",
		QueueConfig{Procs: [][]QueueOp{{QSend}, {QRecv}}, Cap: 1, Budget: Budget{Kill: 1}, BugNoWatch: true},
		"lost-wakeup",
	},
}

// TestQueueBugs checks that the checker finds each planted bug, and prints
// its shortest counterexample.
func TestQueueBugs(t *testing.T) {
	for _, b := range queueBugs {
		r := exploreQueue(t, b.name, b.cfg, Options{})
		i := slices.IndexFunc(r.Violations, func(v *Violation) bool { return v.Kind == b.want })
		if i < 0 {
			t.Errorf("%s: no %s found (%v)", b.name, b.want, r.Violations)
			continue
		}
		t.Logf("%s:\n%s", b.name, r.Violations[i].String())
	}
}
