package model

import (
	"slices"
	"strings"
	"testing"
)

func lscript(cancel bool, ops ...LockedOp) LockedScript {
	return LockedScript{Ops: ops, Cancel: cancel}
}

// lockedConfigs are the CI configurations of the LockedModel: 2 processes
// × 1 goroutine, with a kill, a cancellation and a Close.
var lockedConfigs = []struct {
	name string
	cfg  LockedConfig
}{
	{"Barrier: 2 parties, 2 generations", LockedConfig{Procs: []LockedScript{
		lscript(true, OpBarrierWait, OpBarrierWait), lscript(true, OpBarrierWait, OpBarrierWait)}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
	{"Barrier: a Reset after a generation", LockedConfig{Procs: []LockedScript{
		lscript(true, OpBarrierWait, OpBarrierReset), lscript(true, OpBarrierWait, OpBarrierWait)}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
	{"WaitGroup: a worker Adds for itself, another Waits", LockedConfig{Procs: []LockedScript{
		lscript(true, OpWGAdd, OpWGDone), lscript(true, OpWGWait)}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
	{"WaitGroup: Add in one, Done from the other, Wait in both", LockedConfig{Procs: []LockedScript{
		lscript(true, OpWGAdd, OpWGWait), lscript(true, OpWGDone, OpWGWait)}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
	{"Once: two callers", LockedConfig{Procs: []LockedScript{
		lscript(true, OpOnceDo), lscript(true, OpOnceDo)}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
	{"Once: two callers, the first run fails", LockedConfig{Procs: []LockedScript{
		lscript(true, OpOnceDo), lscript(true, OpOnceDo)}, OnceFailFirst: true, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
}

func exploreLocked(t *testing.T, name string, cfg LockedConfig, opt Options) *Result {
	t.Helper()
	m, err := NewLockedModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[LockedState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

// TestLocked explores Barrier, WaitGroup and Once at the CI configurations.
func TestLocked(t *testing.T) {
	for _, tc := range lockedConfigs {
		r := exploreLocked(t, tc.name, tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s: %v", tc.name, v)
		}
		if r.Truncated {
			t.Errorf("%s: truncated", tc.name)
		}
	}
}

var lockedBugs = []struct {
	name string
	cfg  LockedConfig
	bug  func(*LockedConfig)
	kind string
}{
	{
		// P1 joins and is killed before it arrives, while P0 sleeps in
		// Wait: nothing bumps seq, and P0 watches nobody.
		"BugNoWatch: a Barrier sleeper does not watch the other parties",
		LockedConfig{Procs: []LockedScript{lscript(false, OpBarrierWait), lscript(false, OpBarrierReset)}, Budget: Budget{Kill: 1}},
		func(c *LockedConfig) { c.BugNoWatch = true },
		"lost-wakeup",
	},
	{
		// Three parties; P1's context ends and it breaks the barrier;
		// P0, woken, looks only at the generation and sleeps again.
		"BugBarrierGenOnly: a woken Barrier waiter ignores broken",
		LockedConfig{Procs: []LockedScript{lscript(false, OpBarrierWait), lscript(true, OpBarrierWait), lscript(false)}, Budget: Budget{Cancel: 1}},
		func(c *LockedConfig) { c.BugBarrierGenOnly = true },
		"lost-wakeup",
	},
	{
		// P1 is killed after P0's cond found it alive and before P0's
		// watch: P0 neither breaks the barrier nor watches P1.
		"BugCheckFirst: a Barrier waiter looks before it watches",
		LockedConfig{Procs: []LockedScript{lscript(false, OpBarrierWait), lscript(false, OpBarrierReset)}, Budget: Budget{Kill: 1}},
		func(c *LockedConfig) { c.BugCheckFirst = true },
		"lost-wakeup",
	},
	{
		// P1 resets while P0 waits: P0's peek sees the generation move.
		"BugPeekAny: a Barrier waiter's peek takes a Reset for a completion",
		LockedConfig{Procs: []LockedScript{lscript(false, OpBarrierWait), lscript(false, OpBarrierReset)}},
		func(c *LockedConfig) { c.BugPeekAny = true },
		"barrier-early",
	},
	{
		"BugWGNoReclaim: Wait does not drop a dead holder's Adds",
		LockedConfig{Procs: []LockedScript{lscript(false, OpWGAdd, OpWGDone), lscript(false, OpWGWait)}, Budget: Budget{Kill: 1}},
		func(c *LockedConfig) { c.BugWGNoReclaim = true },
		"lost-wakeup",
	},
}

// TestLockedBugs: each planted bug is found, with a printed trace, and the
// same configuration passes without it.
func TestLockedBugs(t *testing.T) {
	for _, tc := range lockedBugs {
		r := exploreLocked(t, tc.name+" (fixed)", tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s, without the bug: %v", tc.name, v)
		}
		cfg := tc.cfg
		tc.bug(&cfg)
		r = exploreLocked(t, tc.name, cfg, Options{})
		if len(r.Violations) == 0 {
			t.Errorf("%s: no violation found", tc.name)
			continue
		}
		v := r.Violations[0]
		if v.Kind != tc.kind {
			t.Errorf("%s: found %s, want %s", tc.name, v.Kind, tc.kind)
		}
		t.Logf("%s:\n%s", tc.name, v.String())
	}
}

// TestLockedStepsAreTaken: every step the LockedModel lists is taken in
// its CI configurations, and every label taken is listed.
func TestLockedStepsAreTaken(t *testing.T) {
	taken := map[string]int{}
	for _, tc := range lockedConfigs {
		m, err := NewLockedModel(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for l, n := range Explore[LockedState](m, Options{CountLabels: true}).Labels {
			taken[l] += n
		}
	}
	steps := (&LockedModel{}).Steps()
	for _, l := range steps {
		if taken[l] == 0 {
			t.Errorf("step %q is listed but never taken", l)
		}
	}
	for l := range taken {
		if !strings.HasPrefix(l, "env.") && !strings.HasPrefix(l, "kernel.") && !slices.Contains(steps, l) {
			t.Errorf("step %q is taken but not listed in Steps", l)
		}
	}
}

// TestLockedDeep explores three processes with two kills, a cancellation
// and a Close (PSMODEL_DEEP=1).
func TestLockedDeep(t *testing.T) {
	opt := deep(t)
	b := Budget{Kill: 2, Cancel: 1, Close: 1}
	for _, tc := range []struct {
		name string
		cfg  LockedConfig
	}{
		{"Barrier: 3 parties, 2 generations", LockedConfig{Procs: []LockedScript{
			lscript(true, OpBarrierWait, OpBarrierWait), lscript(true, OpBarrierWait, OpBarrierWait), lscript(true, OpBarrierWait, OpBarrierReset)}, Budget: b}},
		{"WaitGroup: two workers, a waiter", LockedConfig{Procs: []LockedScript{
			lscript(true, OpWGAdd, OpWGDone, OpWGWait), lscript(true, OpWGAdd, OpWGDone), lscript(true, OpWGWait)}, Budget: b}},
		{"Once: three callers, the first run fails", LockedConfig{Procs: []LockedScript{
			lscript(true, OpOnceDo), lscript(true, OpOnceDo), lscript(true, OpOnceDo)}, OnceFailFirst: true, Budget: b}},
	} {
		report(t, tc.name, exploreLocked(t, tc.name, tc.cfg, opt))
	}
}
