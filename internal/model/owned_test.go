package model

import (
	"slices"
	"strings"
	"testing"
)

func oacq(n uint8) OwnedOp { return OwnedOp{Kind: OAcquire, N: n} }
func orel(n uint8) OwnedOp { return OwnedOp{Kind: ORelease, N: n} }

var oreclaim = OwnedOp{Kind: OReclaim}

func exploreOwned(t *testing.T, name string, cfg OwnedConfig, opt Options) *Result {
	t.Helper()
	m, err := NewOwnedModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[OwnedState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

var ownedConfigs = []struct {
	name string
	cfg  OwnedConfig
}{
	// Two holders of different sizes over 3 permits, so that each spills
	// the other's holding to the table, and a third process that reclaims
	// the permits of the dead.
	{"two holders and a reclaimer", OwnedConfig{
		Procs:  [][]OwnedOp{{oacq(1), orel(1)}, {oacq(2), orel(2)}, {oreclaim}},
		Total:  3,
		Budget: Budget{Kill: 1, Close: 1}}},
	// One process takes twice and releases in two steps (holder mode
	// throughout unless the other spills it), the other takes one, gives
	// it back and releases what it never held (ErrNotHeld), then reclaims.
	{"partial releases and a non-holder", OwnedConfig{
		Procs:  [][]OwnedOp{{oacq(1), oacq(1), orel(1), orel(1)}, {oacq(1), orel(1), orel(1), oreclaim}},
		Total:  2,
		Budget: Budget{Kill: 1, Close: 1}}},
	// Two kills: a holder in table mode and the spiller can both die.
	{"two kills", OwnedConfig{
		Procs:  [][]OwnedOp{{oacq(1), orel(1)}, {oacq(1), orel(1)}, {oacq(1), oreclaim}},
		Total:  2,
		Budget: Budget{Kill: 2}}},
}

// TestOwned explores the owned permits' bookkeeping with kills and Close at
// every step, and checks that every listed step is taken and every step
// taken is listed.
func TestOwned(t *testing.T) {
	taken := map[string]int{}
	for _, tc := range ownedConfigs {
		r := exploreOwned(t, tc.name, tc.cfg, Options{CountLabels: true})
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
	steps := (&OwnedModel{}).Steps()
	for _, l := range steps {
		if taken[l] == 0 {
			t.Errorf("step %s is never taken", l)
		}
	}
	for l := range taken {
		if !strings.HasPrefix(l, "env.") && !slices.Contains(steps, l) {
			t.Errorf("step %s is taken but not listed in Steps", l)
		}
	}
}

// TestOwnedBugs checks that the exploration finds each planted bug of the
// owned permits' recovery, with a trace.
func TestOwnedBugs(t *testing.T) {
	for _, tc := range []struct {
		name string
		bug  func(*OwnedConfig)
	}{
		{"BugSpillNoJournal", func(c *OwnedConfig) { c.BugSpillNoJournal = true }},
		{"BugReplaySpill", func(c *OwnedConfig) { c.BugReplaySpill = true }},
		{"BugReclaimTableOnly", func(c *OwnedConfig) { c.BugReclaimTableOnly = true }},
	} {
		cfg := ownedConfigs[0].cfg
		tc.bug(&cfg)
		r := exploreOwned(t, tc.name, cfg, Options{})
		if len(r.Violations) == 0 {
			t.Errorf("%s: no violation found", tc.name)
			continue
		}
		v := r.Violations[0]
		if len(v.Trace) < 2 {
			t.Errorf("%s: violation without a trace: %v", tc.name, v)
		}
		t.Logf("%s: %s", tc.name, v.String())
	}
}
