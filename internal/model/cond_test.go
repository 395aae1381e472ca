package model

import (
	"strings"
	"testing"
)

const (
	cw = CondWait
	cs = CondSignal
	cb = CondBroadcast
)

func exploreCond(t *testing.T, name string, cfg CondConfig, opt Options) *Result {
	t.Helper()
	m, err := NewCondModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[CondState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

// condConfigs are the CI configurations: one kill, one cancellation and one
// Close, at every step, with a 3-bit seq that starts where its first grant
// wraps it.
var condConfigs = []struct {
	name string
	cfg  CondConfig
}{
	{"a waiter and a signaller", CondConfig{Procs: [][]CondOp{{cw}, {cs}}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}, InitSeq: 7}},
	{"a waiter twice, a signaller twice", CondConfig{Procs: [][]CondOp{{cw, cw}, {cs, cs}}, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}, InitSeq: 7}},
	{"two waiters, a broadcast and a signal", CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cb, cs}}, Budget: Budget{Kill: 1}, InitSeq: 7}},
	{"two waiters, one cancelled, a broadcast and a signal", CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cb, cs}}, Budget: Budget{Cancel: 1}, InitSeq: 7}},
	{"two waiters, one closed, a broadcast", CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cb}}, Budget: Budget{Close: 1}, InitSeq: 7}},
	{"two waiters, a waiter that signals, a broadcast", CondConfig{Procs: [][]CondOp{{cw, cw}, {cw}, {cb}}, Budget: Budget{Kill: 1}, InitSeq: 7}},
	{"a waiter killed and restarted twice, in 2 slots", CondConfig{Procs: [][]CondOp{{cw}, {cs}}, Budget: Budget{Kill: 2, Attach: 2}, MaxW: 2}},
}

// TestCond explores the Cond protocol at the CI configurations.
func TestCond(t *testing.T) {
	for _, tc := range condConfigs {
		r := exploreCond(t, tc.name, tc.cfg, Options{})
		for _, v := range r.Violations {
			t.Errorf("%s: %s", tc.name, v.String())
		}
		if r.Truncated {
			t.Errorf("%s: truncated", tc.name)
		}
	}
}

var condBugs = []struct {
	name string
	kind string
	cfg  CondConfig
	bug  func(*CondConfig)
}{
	{
		// Bug 1: W1 waits; Broadcast; Signal; W1 returns released by the
		// Broadcast, leaving the signal; W2 waits; Signal finds a signal
		// for every waiter and wakes nobody.
		"Signal after Broadcast", "lost-wakeup",
		CondConfig{Procs: [][]CondOp{{cw}, {cw}, {cb, cs, cs}}},
		func(c *CondConfig) { c.BugBroadcastNoGrant = true },
	},
	{
		// Bug 2: seq past half its range (as after 2^31 Signals) and no
		// Broadcast yet: the signed difference takes generation 0 for a
		// Broadcast newer than the waiter.
		"sequence wrap", "wrap",
		CondConfig{Procs: [][]CondOp{{cw}, {cs}}, InitSeq: 5},
		func(c *CondConfig) { c.BugBroadcastNoGrant, c.BugOrderedSeq = true, true },
	},
	{
		// Bug 3: dead waiters stay counted; two deaths fill a count of 2.
		"dead waiters", "saturated",
		CondConfig{Procs: [][]CondOp{{cw}, {cs}}, Budget: Budget{Kill: 2, Attach: 2}, MaxW: 2},
		func(c *CondConfig) { c.BugNoReclaim = true },
	},
}

// TestCondBugs shows that each bug toggle lets in its violation, printed
// with its trace (-v), and that the same configuration passes without it.
func TestCondBugs(t *testing.T) {
	for _, tc := range condBugs {
		if r := exploreCond(t, tc.name+" (fixed)", tc.cfg, Options{}); len(r.Violations) > 0 {
			t.Errorf("%s, fixed: %v", tc.name, r.Violations[0])
		}
		cfg := tc.cfg
		tc.bug(&cfg)
		r := exploreCond(t, tc.name+" (bug)", cfg, Options{})
		if len(r.Violations) == 0 {
			t.Errorf("%s: the bug toggle lets in no violation", tc.name)
			continue
		}
		v := r.Violations[0]
		if v.Kind != tc.kind {
			t.Errorf("%s: violation %v, want kind %s", tc.name, v, tc.kind)
		}
		t.Logf("%s: counterexample:\n%s", tc.name, v.String())
	}
}

// TestCondSignallerWindow explores the known window: a signaller killed
// between its grant and its wake-up. It reports what it finds and fails
// only if something else than that lost wake-up shows.
func TestCondSignallerWindow(t *testing.T) {
	cfg := CondConfig{Procs: [][]CondOp{{cw}, {cs}}, Budget: Budget{Kill: 1}, KillSignaller: true}
	r := exploreCond(t, "signaller killed", cfg, Options{})
	for _, v := range r.Violations {
		if v.Kind != "lost-wakeup" || !strings.Contains(v.String(), "env.kill") {
			t.Errorf("%v", v)
		}
		t.Logf("known window:\n%s", v.String())
	}
}

// TestCondKillWindow explores the second known window: kills between the
// two writes of a registration, take, leave or reclaim. The only violation
// it may show is the count filled by registrations no record names.
func TestCondKillWindow(t *testing.T) {
	cfg := CondConfig{Procs: [][]CondOp{{cw}, {cs}}, Budget: Budget{Kill: 2, Attach: 2}, MaxW: 2, KillInWindow: true}
	r := exploreCond(t, "killed in the window", cfg, Options{AllKinds: true})
	for _, v := range r.Violations {
		if v.Kind != "saturated" {
			t.Errorf("%s", v.String())
		}
		t.Logf("known window:\n%s", v.String())
	}
}
