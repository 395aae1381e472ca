package model

import (
	"os"
	"strconv"
	"testing"
)

// deep skips t unless PSMODEL_DEEP=1, and returns the options of a deep
// run: hash compaction, and at most PSMODEL_MAXSTATES states (default 20
// million, about 2 GB) per configuration.
func deep(t *testing.T) Options {
	if os.Getenv("PSMODEL_DEEP") != "1" {
		t.Skip("set PSMODEL_DEEP=1 for the deep configurations (minutes)")
	}
	opt := Options{HashCompact: true, AllKinds: true, MaxStates: 20_000_000}
	if s := os.Getenv("PSMODEL_MAXSTATES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("PSMODEL_MAXSTATES=%q: %v", s, err)
		}
		opt.MaxStates = n
	}
	return opt
}

func report(t *testing.T, name string, r *Result) {
	t.Helper()
	for _, v := range r.Violations {
		t.Errorf("%s: %v", name, v.String())
	}
	if r.Truncated {
		t.Logf("%s: truncated at %d states: raise PSMODEL_MAXSTATES to finish it", name, r.States)
	}
}

// TestMutexDeep explores 3 processes × 1 goroutine and 2 × 2 with the
// environment events in groups, two kills, the two-mutex death wake-up
// across three processes, and goroutines that lock twice.
func TestMutexDeep(t *testing.T) {
	opt := deep(t)
	c := lockOnce(true, 0)
	for _, tc := range []struct {
		name string
		cfg  MutexConfig
	}{
		// Every event at once does not finish in 30 million states with
		// three processes: the budgets are split so that each run does.
		// Every pair that interacts (kill with Close, kill with newcomer)
		// is in one run.
		{"3×1, kill + cancel + newcomer", MutexConfig{Procs: [][]Script{{c}, {c}, {c}}, Budget: Budget{Kill: 1, Cancel: 1, Attach: 1}}},
		{"3×1, kill + Close", MutexConfig{Procs: [][]Script{{c}, {c}, {c}}, Budget: Budget{Kill: 1, Close: 1}}},
		{"3×1, cancel + Close + newcomer", MutexConfig{Procs: [][]Script{{c}, {c}, {c}}, Budget: Budget{Cancel: 1, Close: 1, Attach: 1}}},
		{"2×2, kill + cancel", MutexConfig{Procs: [][]Script{{c, c}, {c, c}}, Budget: Budget{Kill: 1, Cancel: 1}}},
		{"2×2, kill + newcomer", MutexConfig{Procs: [][]Script{{c, c}, {c, c}}, Budget: Budget{Kill: 1, Attach: 1}}},
		{"2×2, Close", MutexConfig{Procs: [][]Script{{c, c}, {c, c}}, Budget: Budget{Close: 1}}},
		{"3×1, two kills", MutexConfig{Procs: [][]Script{{c}, {c}, {c}}, Budget: Budget{Kill: 2, Cancel: 1}}},
		{"3×1, 2 mutexes, kill and newcomer", MutexConfig{Procs: [][]Script{{lockOnce(true, 0, 1)}, {lockOnce(true, 0)}, {lockOnce(true, 1)}}, Budget: Budget{Kill: 1, Attach: 1, Cancel: 1}}},
		{"2×2, 2 rounds each", MutexConfig{Procs: [][]Script{{{Locks: []int{0}, Rounds: 2}, c}, {c, {Locks: []int{0}, Rounds: 2}}}, Budget: Budget{Kill: 1, Cancel: 1}}},
	} {
		report(t, tc.name, exploreMutex(t, tc.name, tc.cfg, opt))
	}
}

// TestSemaphoreDeep explores 3 processes × 1 goroutine with every
// environment event, 2 × 2 with the events in pairs (all three at once do
// not finish in 20 million states), hunger (3 × 1) with every event for
// counting permits and in pairs for owned ones, and 3 × 1 with two kills.
func TestSemaphoreDeep(t *testing.T) {
	opt := deep(t)
	b := Budget{Kill: 1, Cancel: 1, Close: 1}
	twoByTwo := [][]SemScript{{sem(true, acquire(2), release(2)), sem(true, acquire(1), release(1))}, {sem(true, acquire(1), release(1)), sem(true, release(1))}}
	for _, tc := range []struct {
		name string
		cfg  SemaphoreConfig
	}{
		{"3×1", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, acquire(1), release(1))}, {sem(true, release(1))}}, Initial: 1, Budget: b}},
		{"2×2, kill + cancel", SemaphoreConfig{Procs: twoByTwo, Initial: 1, Budget: Budget{Kill: 1, Cancel: 1}}},
		{"2×2, Close + cancel", SemaphoreConfig{Procs: twoByTwo, Initial: 1, Budget: Budget{Close: 1, Cancel: 1}}},
		{"2×2, kill + Close", SemaphoreConfig{Procs: twoByTwo, Initial: 1, Budget: Budget{Kill: 1, Close: 1}}},
		{"hunger, counting", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2))}, {sem(true, acquire(1))}, {sem(false, release(1), release(2))}}, Budget: b, Counting: true}},
		{"hunger, owned, kill + cancel", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, acquire(1), release(1))}, {sem(false, acquire(1), release(1))}}, Initial: 2, Budget: Budget{Kill: 1, Cancel: 1}}},
		{"hunger, owned, Close + cancel", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, acquire(1), release(1))}, {sem(false, acquire(1), release(1))}}, Initial: 2, Budget: Budget{Close: 1, Cancel: 1}}},
		{"3×1, two kills", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(1), release(1))}, {sem(true, acquire(1), release(1))}, {sem(true, acquire(1), release(1))}}, Initial: 1, Budget: Budget{Kill: 2, Cancel: 1}}},
	} {
		report(t, tc.name, exploreSemaphore(t, tc.name, tc.cfg, opt))
	}
}

// TestRWMutexDeep explores 3 processes × 1 goroutine and 2 × 2 with the
// environment events, two kills, and goroutines that lock twice.
func TestRWMutexDeep(t *testing.T) {
	opt := deep(t)
	for _, tc := range []struct {
		name string
		cfg  RWConfig
	}{
		{"3×1, W R W, everything", RWConfig{Procs: [][]string{{"W"}, {"R"}, {"W"}}, Cancel: both, Budget: rwBudget}},
		{"3×1, R W R, everything", RWConfig{Procs: [][]string{{"R"}, {"W"}, {"R"}}, Cancel: both, Budget: rwBudget}},
		{"3×1, two kills", RWConfig{Procs: [][]string{{"W"}, {"RW"}, {"R"}}, Cancel: both, Budget: Budget{Kill: 2, Cancel: 1}}},
		// Every event at once does not finish in 20 million states.
		{"2×2, kill + cancel", RWConfig{Procs: [][]string{{"W", "R"}, {"R", "W"}}, Cancel: both, Budget: Budget{Kill: 1, Cancel: 1}}},
		{"2×2, Close + cancel", RWConfig{Procs: [][]string{{"W", "R"}, {"R", "W"}}, Cancel: both, Budget: Budget{Close: 1, Cancel: 1}}},
		{"2×2, twice each", RWConfig{Procs: [][]string{{"RW", "WR"}, {"WR"}}, Cancel: both, Budget: Budget{Kill: 1, Cancel: 1}}},
	} {
		m, err := NewRWModel(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := Explore[RWState](m, opt)
		t.Logf("%s: %v", tc.name, r)
		report(t, tc.name, r)
	}
}

// TestCondDeep explores three waiters and a broadcaster, so that
// Broadcast's two wake-ups leave a third sleeper for the baton chain, with
// the environment events one at a time. (Before "Generations" in
// cond.go, the kill and the broadcast-and-signal configurations found a
// lost Broadcast wake-up: BugPoolMix.)
func TestCondDeep(t *testing.T) {
	opt := deep(t)
	for _, tc := range []struct {
		name string
		cfg  CondConfig
	}{
		{"three waiters, a broadcast, kill", CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cw}, {cb}}, Budget: Budget{Kill: 1}, InitSeq: 7}},
		{"three waiters, a broadcast, cancel", CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cw}, {cb}}, Budget: Budget{Cancel: 1}, InitSeq: 7}},
		{"three waiters, a broadcast, Close", CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cw}, {cb}}, Budget: Budget{Close: 1}, InitSeq: 7}},
		{"three waiters, a broadcast and a signal", CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cw}, {cb, cs}}, InitSeq: 7}},
	} {
		report(t, tc.name, exploreCond(t, tc.name, tc.cfg, opt))
	}
	// The planted bug: the pool mixed (W0 waits; Broadcast grants it; W1
	// and W2 register; a Signal makes them eligible, and they take both
	// signals; W0 sleeps on). Four processes take minutes without hash
	// compaction, so it is here rather than in TestCondBugs.
	cfg := CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cw}, {cb, cs}}, InitSeq: 7, BugPoolMix: true}
	r := exploreCond(t, "Broadcast's signal taken by later waiters (BugPoolMix)", cfg, Options{MaxStates: opt.MaxStates})
	if len(r.Violations) == 0 || r.Violations[0].Kind != "lost-wakeup" {
		t.Errorf("BugPoolMix: no lost wake-up found")
	}
	for _, v := range r.Violations {
		t.Logf("%s", v.String())
	}
}
