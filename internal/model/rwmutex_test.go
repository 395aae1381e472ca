package model

import (
	"strings"
	"testing"
)

func exploreRW(t *testing.T, name string, cfg RWConfig, opt Options) *Result {
	t.Helper()
	m, err := NewRWModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[RWState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

var (
	both     = [][]bool{{true, true}, {true, true}, {true, true}}
	rwBudget = Budget{Kill: 1, Cancel: 1, Close: 1}
)

// rwConfigs are the CI configurations: two processes of one goroutine,
// with one kill, one cancellation and one Close anywhere in the run; and
// two goroutines of a process sharing its token and its reader line.
var rwConfigs = []struct {
	name string
	cfg  RWConfig
}{
	{"writer and reader", RWConfig{Procs: [][]string{{"W"}, {"R"}}, Cancel: both, Budget: rwBudget}},
	{"reader then writer, and a writer", RWConfig{Procs: [][]string{{"RW"}, {"W"}}, Cancel: both, Budget: rwBudget}},
	{"two readers", RWConfig{Procs: [][]string{{"R"}, {"R"}}, Cancel: both, Budget: rwBudget}},
	{"two goroutines of a process", RWConfig{Procs: [][]string{{"W", "R"}, {"R"}}, Cancel: both, Budget: Budget{Kill: 1, Cancel: 1}}},
	{"two goroutines of a process, Close", RWConfig{Procs: [][]string{{"R", "W"}, {"W"}}, Cancel: both, Budget: Budget{Close: 1}}},
}

// TestRWMutex explores the RWMutex protocol at the CI configurations.
func TestRWMutex(t *testing.T) {
	for _, tc := range rwConfigs {
		r := exploreRW(t, tc.name, tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s: %v", tc.name, v)
		}
		if r.Truncated {
			t.Errorf("%s: truncated", tc.name)
		}
	}
}

// The planted bugs: the checker must find each, with a trace, and nothing
// without it in the same configuration.
var rwBugs = []struct {
	name string
	cfg  RWConfig
	bug  func(*RWConfig)
	kind string
}{
	{
		"BugNoRecheck: a reader does not look at the writer word after adding itself",
		RWConfig{Procs: [][]string{{"W"}, {"R"}}},
		func(c *RWConfig) { c.BugNoRecheck = true },
		"mutual-exclusion", // and writer-preference
	},
	{
		"BugRUnlockNoWake: the last RUnlock does not wake the draining writer",
		RWConfig{Procs: [][]string{{"W"}, {"R"}}},
		func(c *RWConfig) { c.BugRUnlockNoWake = true },
		"lost-wakeup",
	},
	{
		"BugAbandonNoWake: a writer giving up while draining does not wake the readers it held back",
		RWConfig{Procs: [][]string{{"R"}, {"W"}, {"R"}}, Cancel: [][]bool{{false}, {true}, {false}}, Budget: Budget{Cancel: 1}},
		func(c *RWConfig) { c.BugAbandonNoWake = true },
		"lost-wakeup",
	},
	{
		// P0 writes; P1 and P2 sleep in RLock; P0 dies and the kernel
		// wakes P2 only, which is killed before it wakes P1.
		"BugWatchHolderOnly: a sleeper does not watch the processes other than the holder",
		RWConfig{Procs: [][]string{{"W"}, {"R"}, {"R"}}, Budget: Budget{Kill: 2}},
		func(c *RWConfig) { c.BugWatchHolderOnly = true },
		"lost-wakeup",
	},
}

func TestRWMutexBugs(t *testing.T) {
	for _, tc := range rwBugs {
		if r := exploreRW(t, tc.name+" (fixed)", tc.cfg, Options{}); len(r.Violations) != 0 {
			t.Fatalf("%s: violation without the bug: %v", tc.name, r.Violations[0].String())
		}
		cfg := tc.cfg
		tc.bug(&cfg)
		r := exploreRW(t, tc.name, cfg, Options{AllKinds: true})
		var v *Violation
		for _, x := range r.Violations {
			if x.Kind == tc.kind {
				v = x
			}
		}
		if v == nil || len(v.Trace) < 2 {
			t.Fatalf("%s: no %s found with a trace (found %v)", tc.name, tc.kind, r.Violations)
		}
		t.Logf("%s:\n%s", tc.name, v.String())
	}
}

// TestRWMutexStepsTaken: every listed step is taken in the CI
// configurations, and every code step taken is listed.
func TestRWMutexStepsTaken(t *testing.T) {
	taken := map[string]int{}
	for _, tc := range rwConfigs {
		for l, n := range exploreRW(t, tc.name, tc.cfg, Options{CountLabels: true}).Labels {
			taken[l] += n
		}
	}
	steps := (&RWModel{}).Steps()
	for _, l := range steps {
		if taken[l] == 0 {
			t.Errorf("step %q is listed but never taken", l)
		}
	}
	for l := range taken {
		if !strings.HasPrefix(l, "env.") && !strings.HasPrefix(l, "kernel.") && !contains(steps, l) {
			t.Errorf("step %q is taken but not listed", l)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
