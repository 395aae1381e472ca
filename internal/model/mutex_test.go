package model

import (
	"fmt"
	"strings"
	"testing"
)

// lockOnce is a goroutine that locks mutexes in order once, with a
// cancellable context if cancel is set.
func lockOnce(cancel bool, mutexes ...int) Script {
	return Script{Locks: mutexes, Cancel: cancel}
}

// everything is one of each environment event.
var everything = Budget{Kill: 1, Cancel: 1, Close: 1, Attach: 1}

// exploreMutex explores cfg and logs what it counted.
func exploreMutex(t *testing.T, name string, cfg MutexConfig, opt Options) *Result {
	t.Helper()
	m, err := NewMutexModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[MutexState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

// TestMutex explores the Mutex protocol at the CI configurations: two
// processes of one goroutine, one kill, one cancellation, one Close and one
// newcomer anywhere in the run.
func TestMutex(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  MutexConfig
	}{
		{"2 processes, 1 mutex", MutexConfig{Procs: [][]Script{{lockOnce(true, 0)}, {lockOnce(true, 0)}}, Budget: everything}},
		// P0 holds both when it dies: the kernel's one death wake-up
		// must reach P1 whichever mutex it waits for.
		{"2 processes, 2 mutexes", MutexConfig{Procs: [][]Script{{lockOnce(true, 0, 1)}, {lockOnce(true, 1)}}, Budget: everything}},
	} {
		r := exploreMutex(t, tc.name, tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s: %v", tc.name, v)
		}
		if r.Truncated {
			t.Errorf("%s: truncated", tc.name)
		}
	}
}

// The bugs: each reverts one fix; the checker must find a violation with
// it, and none without it in the same configuration.
var mutexBugs = []struct {
	name string
	cfg  MutexConfig
	bug  func(*MutexConfig)
}{
	{
		// Lost wake-up 3: P0.G0 unlocks and wakes P1.G0, which finds its
		// context cancelled and returns; P0.G1 sleeps on a free lock.
		"Bug3: a cancelled sleeper keeps its wake-up",
		MutexConfig{Procs: [][]Script{{lockOnce(false, 0), lockOnce(false, 0)}, {lockOnce(true, 0)}}, Budget: Budget{Cancel: 1}},
		func(c *MutexConfig) { c.Bug3 = true },
	},
	{
		// Lost wake-up 4: P0 dies holding M0 and M1; the kernel wakes
		// P1.G0 only; a newcomer takes P0's slot before P1.G0 looks, so it
		// sees no DIED and wakes nobody; P1.G1 sleeps on.
		"Bug4: the newcomer does not wake the dead slot's sleepers",
		MutexConfig{Procs: [][]Script{{lockOnce(false, 0, 1)}, {lockOnce(false, 0), lockOnce(false, 1)}}, Budget: Budget{Kill: 1, Attach: 1}},
		func(c *MutexConfig) { c.Bug4 = true },
	},
	{
		// P0.G0 holds the token, sleeps, is cancelled and keeps it: P0.G1
		// stays parked on the token after P1 unlocks.
		"BugToken: a cancelled goroutine keeps the token",
		MutexConfig{Procs: [][]Script{{lockOnce(true, 0), lockOnce(false, 0)}, {lockOnce(false, 0)}}, Budget: Budget{Cancel: 1}},
		func(c *MutexConfig) { c.BugToken = true },
	},
	{
		// P0 closes holding M0, clears its live word and is killed before
		// it wakes P1, which sleeps on that word.
		"BugDetachKill: Close clears the live word before waking",
		MutexConfig{Procs: [][]Script{{lockOnce(true, 0)}, {lockOnce(true, 0)}}, Budget: Budget{Kill: 1, Close: 1}},
		func(c *MutexConfig) { c.BugDetachKill = true },
	},
	{
		// With every process's tid 1 (PID namespaces), P0's live word goes
		// t1|LW → DIED|LW → t1 (a newcomer) → t1|LW between P1.G0's
		// generation check and its sleep, which matches again.
		"BugLiveABA: the sleep does not include the generation",
		MutexConfig{Procs: [][]Script{{lockOnce(false, 0, 1)}, {lockOnce(false, 0), lockOnce(false, 1)}}, Budget: Budget{Kill: 1, Attach: 1}},
		func(c *MutexConfig) { c.BugLiveABA = true },
	},
	{
		// Distinct tids, so no PID namespaces needed: P0 dies holding M0;
		// N0 claims its slot (A1); P1 looks P0 up, sees N0's live word
		// under P0's generation, sets liveWaiters, rechecks the generation
		// (still P0's) and sleeps; N0 bumps the generation (A2), clears
		// liveWaiters (A3) and is killed before its wake-up: the kernel
		// finds no liveWaiters bit to wake on.
		"BugAttachOrder: the code's claim order, killed in A3",
		MutexConfig{Procs: [][]Script{{lockOnce(false, 0)}, {lockOnce(false, 0)}}, Budget: Budget{Kill: 2, Attach: 1}, DistinctTIDs: true},
		func(c *MutexConfig) { c.BugAttachOrder = true },
	},
	{
		// As the code has it (the claim order, and no generation in the
		// sleep), with distinct tids and one kill: P0 dies holding M0 and
		// M1; N0 claims its slot; P1.G0 and P1.G1 both see N0's live word
		// under P0's generation; P1.G0 sets liveWaiters; N0 bumps the
		// generation and clears it; P1.G1 sets it again, finds the new
		// generation and takes M1 over; N0 wakes nobody; P1.G0's sleep
		// matches and outlasts it.
		"BugAttachOrder and BugLiveABA: the code's claim and sleep",
		MutexConfig{Procs: [][]Script{{lockOnce(false, 0, 1)}, {lockOnce(false, 0), lockOnce(false, 1)}}, Budget: Budget{Kill: 1, Attach: 1}, DistinctTIDs: true},
		func(c *MutexConfig) { c.BugAttachOrder, c.BugLiveABA = true, true },
	},
	{
		// The code's sleep: the holder watched only, and the lock word as
		// the pending robust op (armPending), which passes on the wake-up
		// of a process killed before it takes the lock. P0 unlocks and
		// wakes P2, which takes M0 and is killed holding it; P1 watched
		// P0 only, and sleeps on M0 while P0 lives.
		"BugWatchOwner with PendingWake: the code's watch",
		MutexConfig{Procs: [][]Script{{lockOnce(false, 0)}, {lockOnce(false, 0)}, {lockOnce(false, 0)}}, Budget: Budget{Kill: 1}, DistinctTIDs: true, PendingWake: true},
		func(c *MutexConfig) { c.BugWatchOwner = true },
	},
	{
		// P0 unlocks and wakes P2, which is killed before it acts; P1
		// watches P0 only and sleeps on a free lock.
		"BugWatchOwner: waiters watch the holder only",
		MutexConfig{Procs: [][]Script{{lockOnce(false, 0)}, {lockOnce(false, 0)}, {lockOnce(false, 0)}}, Budget: Budget{Kill: 1}},
		func(c *MutexConfig) { c.BugWatchOwner = true },
	},
}

func TestMutexBugs(t *testing.T) {
	fixed := map[string]bool{} // configurations explored without a bug
	for _, tc := range mutexBugs {
		t.Run(tc.name, func(t *testing.T) {
			if key := fmt.Sprint(tc.cfg); !fixed[key] {
				fixed[key] = true
				r := exploreMutex(t, "fixed", tc.cfg, Options{})
				for _, v := range r.Violations {
					t.Errorf("fixed: %v", v)
				}
			}
			cfg := tc.cfg
			tc.bug(&cfg)
			r := exploreMutex(t, "bug", cfg, Options{})
			if len(r.Violations) == 0 {
				t.Fatalf("bug: no violation found")
			}
			t.Log(r.Violations[0].String())
		})
	}
}

// TestMutexAttachAsCoded explores the code's claim order (A1 live, A2 gen,
// A3 wake all, liveWaiters left set) with its sleep (the generation word in
// the futex_waitv set) in the configurations where the earlier claim (A3
// cleared liveWaiters before its wake) loses a wake-up.
func TestMutexAttachAsCoded(t *testing.T) {
	for _, tc := range mutexBugs {
		if !strings.HasPrefix(tc.name, "BugAttachOrder") {
			continue
		}
		for _, tids := range []bool{true, false} {
			cfg := tc.cfg
			cfg.BugAttachOrder, cfg.AttachNoClear, cfg.DistinctTIDs = true, true, tids
			r := exploreMutex(t, tc.name+" as coded", cfg, Options{})
			for _, v := range r.Violations {
				t.Errorf("%s, as coded (distinct tids %v): %v", tc.name, tids, v)
			}
			if r.Truncated {
				t.Errorf("%s: truncated", tc.name)
			}
		}
	}
}

// TestMutexBugLiveABANeedsCollidingTIDs shows why every process has tid 1
// by default: with distinct tids the live word cannot come back to the
// value a sleeper expects, and the ABA is out of reach.
func TestMutexBugLiveABANeedsCollidingTIDs(t *testing.T) {
	cfg := MutexConfig{Procs: [][]Script{{lockOnce(false, 0, 1)}, {lockOnce(false, 0), lockOnce(false, 1)}}, Budget: Budget{Kill: 1, Attach: 1}, BugLiveABA: true, DistinctTIDs: true}
	if r := exploreMutex(t, "BugLiveABA, distinct tids", cfg, Options{}); len(r.Violations) != 0 {
		t.Errorf("%v", r.Violations[0])
	}
}

// TestMutexGenerationWrap reuses a slot twice: with a 1-bit generation the
// dead holder's identity comes back as the second newcomer's, so waiters
// take the dead holder for alive; with 2 bits they do not.
func TestMutexGenerationWrap(t *testing.T) {
	cfg := MutexConfig{Procs: [][]Script{{lockOnce(false, 0)}, {lockOnce(false, 0)}}, Budget: Budget{Kill: 2, Attach: 2}}
	cfg.GenBits = 2
	if r := exploreMutex(t, "2-bit generation", cfg, Options{}); len(r.Violations) != 0 {
		t.Errorf("2-bit generation: %v", r.Violations[0])
	}
	cfg.GenBits = 1
	r := exploreMutex(t, "1-bit generation", cfg, Options{})
	if len(r.Violations) == 0 {
		t.Fatal("1-bit generation: wrap-around not found")
	}
	t.Log(r.Violations[0].String())
}
