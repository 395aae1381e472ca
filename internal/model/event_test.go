package model

import (
	"slices"
	"strings"
	"testing"
)

func escript(cancel bool, ops ...EventOp) EventScript { return EventScript{Ops: ops, Cancel: cancel} }

var eventConfigs = []struct {
	name string
	cfg  EventConfig
}{
	{"manual: a waiter, a setter that resets", EventConfig{Procs: []EventScript{
		escript(true, EvWait), escript(true, EvSet, EvReset)}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
	{"auto: a waiter twice, a setter twice", EventConfig{Auto: true, Procs: []EventScript{
		escript(true, EvWait, EvWait), escript(true, EvSet, EvSet)}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}}},
	{"auto: two waiters, one Set", EventConfig{Auto: true, Procs: []EventScript{
		escript(true, EvWait), escript(true, EvWait), escript(false, EvSet)}, Budget: Budget{Kill: 1, Cancel: 1}}},
}

func exploreEvent(t *testing.T, name string, cfg EventConfig, opt Options) *Result {
	t.Helper()
	m, err := NewEventModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[EventState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

// TestEvent explores the Event at its CI configurations.
func TestEvent(t *testing.T) {
	for _, tc := range eventConfigs {
		r := exploreEvent(t, tc.name, tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s: %v", tc.name, v)
		}
		if r.Truncated {
			t.Errorf("%s: truncated", tc.name)
		}
	}
}

var eventBugs = []struct {
	name string
	cfg  EventConfig
	bug  func(*EventConfig)
}{
	{
		// P1's Set is killed between its CAS and its wake.
		"BugNoWatch: a sleeper does not watch the setter",
		EventConfig{Procs: []EventScript{escript(false, EvWait), escript(false, EvSet)}, Budget: Budget{Kill: 1}},
		func(c *EventConfig) { c.BugNoWatch = true },
	},
	{
		// Manual-reset: two sleepers, one woken.
		"BugWakeOne: Set wakes one of two sleepers of a manual-reset event",
		EventConfig{Procs: []EventScript{escript(false, EvWait), escript(false, EvWait), escript(false, EvSet)}},
		func(c *EventConfig) { c.BugWakeOne = true },
	},
}

// TestEventBugs: each planted bug is found, with a trace, and the same
// configuration passes without it.
func TestEventBugs(t *testing.T) {
	for _, tc := range eventBugs {
		r := exploreEvent(t, tc.name+" (fixed)", tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s, without the bug: %v", tc.name, v)
		}
		cfg := tc.cfg
		tc.bug(&cfg)
		r = exploreEvent(t, tc.name, cfg, Options{})
		if len(r.Violations) == 0 {
			t.Errorf("%s: no violation found", tc.name)
			continue
		}
		if v := r.Violations[0]; v.Kind != "lost-wakeup" {
			t.Errorf("%s: found %s, want lost-wakeup", tc.name, v.Kind)
		}
		t.Logf("%s:\n%s", tc.name, r.Violations[0].String())
	}
}

// TestEventStepsAreTaken: every listed step is taken, every label taken
// is listed.
func TestEventStepsAreTaken(t *testing.T) {
	taken := map[string]int{}
	for _, tc := range eventConfigs {
		m, err := NewEventModel(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for l, n := range Explore[EventState](m, Options{CountLabels: true}).Labels {
			taken[l] += n
		}
	}
	steps := (&EventModel{}).Steps()
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

// TestEventDeep explores three processes with two kills, a cancellation
// and a Close (PSMODEL_DEEP=1).
func TestEventDeep(t *testing.T) {
	opt := deep(t)
	b := Budget{Kill: 2, Cancel: 1, Close: 1}
	for _, auto := range []bool{false, true} {
		cfg := EventConfig{Auto: auto, Procs: []EventScript{escript(true, EvWait, EvWait), escript(true, EvWait), escript(true, EvSet, EvReset, EvSet)}, Budget: b}
		report(t, "3 processes", exploreEvent(t, "3 processes", cfg, opt))
	}
}
