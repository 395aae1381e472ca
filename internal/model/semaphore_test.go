package model

import "testing"

func acquire(n uint8) SemOp { return SemOp{Acquire: true, N: n} }
func release(n uint8) SemOp { return SemOp{N: n} }

func sem(cancel bool, ops ...SemOp) SemScript { return SemScript{Ops: ops, Cancel: cancel} }

func exploreSemaphore(t *testing.T, name string, cfg SemaphoreConfig, opt Options) *Result {
	t.Helper()
	m, err := NewSemaphoreModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[SemState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

// TestSemaphore explores the Semaphore protocol at the CI configurations:
// two processes of one goroutine, or of two and one, with one kill, one
// cancellation and one Close.
func TestSemaphore(t *testing.T) {
	b := Budget{Kill: 1, Cancel: 1, Close: 1}
	for _, tc := range []struct {
		name string
		cfg  SemaphoreConfig
	}{
		{"owned, 2 processes, a binary semaphore", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(1), release(1))}, {sem(true, acquire(1), release(1))}}, Initial: 1, Budget: b}},
		// Mixed sizes over 2 owned permits: P0 needs both.
		{"owned, 2 processes, Acquire(2) and Acquire(1)", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, acquire(1), release(1), acquire(1), release(1))}}, Initial: 2, Budget: b}},
		// A Release of permits not held fails and changes nothing.
		{"owned, Release by a non-holder", SemaphoreConfig{Procs: [][]SemScript{{sem(true, release(1))}, {sem(true, acquire(1), release(1))}}, Initial: 1, Budget: b}},
		{"counting, 2 processes, a binary semaphore", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(1), release(1))}, {sem(true, acquire(1), release(1))}}, Initial: 1, Budget: b, Counting: true}},
		// P1 is a producer (it posts a permit) and then a consumer; P0
		// needs both permits.
		{"counting, Acquire(2) and a producer", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, release(1), acquire(1), release(1))}}, Initial: 1, Budget: b, Counting: true}},
		// Two goroutines of P0 contend for the token, one asking for more
		// than the other; P1 produces.
		{"counting, Acquire(2) and Acquire(1) in one", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2)), sem(true, acquire(1))}, {sem(true, release(1))}}, Budget: b, Counting: true}},
		// Hunger: P0's Acquire(2) may become hungry and hold P1's
		// Acquire(1) back while P2 posts one permit at a time.
		// (TestSemaphoreDeep runs both with a kill, a cancellation and a
		// Close.)
		{"counting, hunger: Acquire(2), Acquire(1) and a producer; a kill", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2))}, {sem(true, acquire(1))}, {sem(false, release(1), release(2))}}, Budget: Budget{Kill: 1}, Counting: true}},
		{"counting, hunger: Acquire(2), Acquire(1) and a producer; a cancellation and a Close", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2))}, {sem(true, acquire(1))}, {sem(false, release(1), release(2))}}, Budget: Budget{Cancel: 1, Close: 1}, Counting: true}},
		{"owned, hunger: Acquire(2) and two Acquire(1); a kill", SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, acquire(1), release(1))}, {sem(false, acquire(1), release(1))}}, Initial: 2, Budget: Budget{Kill: 1}}},
	} {
		r := exploreSemaphore(t, tc.name, tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s: %v", tc.name, v.String())
		}
		if r.Truncated {
			t.Errorf("%s: truncated", tc.name)
		}
	}
}

var semaphoreBugs = []struct {
	name string
	cfg  SemaphoreConfig
	bug  func(*SemaphoreConfig)
}{
	{
		// Lost wake-up 2, as the issue tells it: Acquire(3) sleeps first,
		// then Acquire(1); Release(1) wakes only the first, which finds
		// 1 < 3 and sleeps again, while Acquire(1) sleeps on with the
		// value 1.
		"Bug2: Release wakes one sleeper, which asks for more",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(3))}, {sem(false, acquire(1))}, {sem(false, release(1))}}, Counting: true},
		func(c *SemaphoreConfig) { c.Bug2 = true },
	},
	{
		// Release(1) wakes only P0, whose context is then done: it
		// returns, and P1 sleeps on with the value 1.
		"Bug2: Release wakes one sleeper, which is cancelled",
		SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(1))}, {sem(false, acquire(1))}, {sem(false, release(1))}}, Budget: Budget{Cancel: 1}, Counting: true},
		func(c *SemaphoreConfig) { c.Bug2 = true },
	},
	{
		// P0.G0 holds the token, P0.G1 waits for it wanting 1; Release(1)
		// comes before P0.G0's last look, which finds 1 < 2 and sleeps:
		// nobody wakes it, and P0.G1 stays parked with the value 1.
		"BugTokenYield: the token holder does not yield before sleeping",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2)), sem(false, acquire(1))}, {sem(false, release(1))}}, Counting: true},
		func(c *SemaphoreConfig) { c.BugTokenYield = true },
	},
	{
		// P0.G1 finds too few and then the token busy; Release(1) comes
		// after P0.G0's could found nobody registered, and before P0.G1
		// registers; P0.G1 parks without looking again.
		"BugNoRetry: a goroutine finding the token busy does not retry",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2)), sem(false, acquire(1))}, {sem(false, release(1))}}, Counting: true},
		func(c *SemaphoreConfig) { c.BugNoRetry = true },
	},
	{
		// The old code's token: no retry, no yield before sleeping, a
		// yield after every sleep, which passes a goroutine that is not
		// parked yet by.
		"BugYieldAlways: the token yielded after a sleep only",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2)), sem(false, acquire(1))}, {sem(false, release(1))}}, Counting: true},
		func(c *SemaphoreConfig) { c.BugYieldAlways = true },
	},
	{
		// P1, holding nothing, is killed between raising the value and its
		// wake-up: P0 watched the holders only, none.
		"BugWatchHolders: sleepers watch the holders only",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2))}, {sem(false, release(1))}}, Initial: 1, Budget: Budget{Kill: 1}, Counting: true},
		func(c *SemaphoreConfig) { c.BugWatchHolders = true },
	},
	{
		// The code's order: P0 takes both permits; P1's reclaimDead finds
		// P0 alive and sets LW; P0 is killed, and the kernel's wake-up
		// finds nobody asleep; P1's watchOthers skips P0 as dead, and P1
		// sleeps for 1 with P0's 2 permits never reclaimed.
		"BugReclaimFirst: reclaimDead before watchOthers",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2))}, {sem(false, acquire(1))}}, Initial: 2, Budget: Budget{Kill: 1}},
		func(c *SemaphoreConfig) { c.BugReclaimFirst = true },
	},
	{
		// Owned permits: P0 releases a permit it does not hold. With the
		// old producer semantics the permit is added, and 2 exist of a
		// semaphore made with 1.
		"BugGrantUnheld: Release by a non-holder adds permits",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, release(1))}, {sem(false, acquire(1), release(1))}}, Initial: 1},
		func(c *SemaphoreConfig) { c.BugGrantUnheld = true },
	},
	{
		// P0 posts as it closes: its CAS lands after mark_closed, when P1
		// already watches it no more, and P0 is killed before its wake.
		"BugPostOutside: a counting post outside Segment.enter",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(1), release(1))}, {sem(false, acquire(1))}}, Initial: 1, Budget: Budget{Kill: 1, Close: 1}, Counting: true},
		func(c *SemaphoreConfig) { c.BugPostOutside = true },
	},
	{
		// P0 becomes hungry for 2 and holds P1 back; P2's second Release
		// wakes both, P1 sleeps again (still held back), P0 takes its 2
		// and its sated wakes nobody: P1 sleeps on with 1 free.
		"BugSatedNoWake: the end of a hunger wakes nobody",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2))}, {sem(false, acquire(1))}, {sem(false, release(1), release(2))}}, Counting: true},
		func(c *SemaphoreConfig) { c.BugSatedNoWake = true },
	},
	{
		// P0, hungry for 2, is killed; P1, held back with 1 free, is woken
		// by the death and takes the record for a live hunger.
		"BugNoTakeover: a dead hungry waiter's hunger is not taken over",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2))}, {sem(false, acquire(1))}, {sem(false, release(1))}}, Budget: Budget{Kill: 1}, Counting: true},
		func(c *SemaphoreConfig) { c.BugNoTakeover = true },
	},
	{
		// P0, hungry for 2, is cancelled and leaves svHungry set: P1 is
		// held back for ever with 1 free.
		"BugNoSated: a hungry waiter that gives up keeps its hunger",
		SemaphoreConfig{Procs: [][]SemScript{{sem(true, acquire(2))}, {sem(false, acquire(1))}, {sem(false, release(1))}}, Budget: Budget{Cancel: 1}, Counting: true},
		func(c *SemaphoreConfig) { c.BugNoSated = true },
	},
	{
		// P0.G0 (Acquire(2)) asks could before G1 registers; G1's retry
		// finds P1 holding the permit; P1's Release finds no sleepers bit;
		// G0's CAS of the bit succeeds on the same value (ABA) and it
		// sleeps, with G1 parked on its token and the permit free.
		"BugCouldFirst: could before the sleepers bit",
		SemaphoreConfig{Procs: [][]SemScript{{sem(false, acquire(2)), sem(false, acquire(1))}, {sem(false, acquire(1), release(1))}}, Initial: 1},
		func(c *SemaphoreConfig) { c.BugCouldFirst = true },
	},
}

func TestSemaphoreBugs(t *testing.T) {
	for _, tc := range semaphoreBugs {
		t.Run(tc.name, func(t *testing.T) {
			r := exploreSemaphore(t, "fixed", tc.cfg, Options{})
			for _, v := range r.Violations {
				t.Errorf("fixed: %v", v)
			}
			cfg := tc.cfg
			tc.bug(&cfg)
			r = exploreSemaphore(t, "bug", cfg, Options{})
			if len(r.Violations) == 0 {
				t.Fatalf("bug: no violation found")
			}
			t.Log(r.Violations[0].String())
		})
	}
}
