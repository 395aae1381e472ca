package model

import (
	"slices"
	"strings"
	"testing"
)

func exploreObj(t *testing.T, name string, cfg ObjConfig, opt Options) *Result {
	t.Helper()
	m, err := NewObjModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Explore[ObjState](m, opt)
	t.Logf("%s: %v", name, r)
	return r
}

var objConfigs = []struct {
	name string
	cfg  ObjConfig
}{
	// A user opens, uses and drops the object twice while another process
	// deletes it, creates it again (reusing the extent if nobody pins it)
	// and uses the new one.
	{"user and deleter", ObjConfig{
		Procs:  [][]ObjOp{{OOpen, OUse, ODrop, OOpen, OUse, ODrop}, {ODelete, OCreate, OUse, ODrop}},
		Budget: Budget{Kill: 1, Close: 1}}},
	// Both open and delete: the deleter of the second round is the user
	// of the first, and the new object is deleted and created again
	// while the other may still hold the first.
	{"both delete", ObjConfig{
		Procs:  [][]ObjOp{{OOpen, OUse, ODelete, OCreate, OUse, ODrop}, {OOpen, OUse, ODelete, OCreate, OUse}},
		Budget: Budget{Kill: 1, Close: 1}}},
}

var objBugs = []struct {
	name string
	bug  func(*ObjConfig)
}{
	{"BugNoRecheck", func(c *ObjConfig) { c.BugNoRecheck = true }},
	{"BugNoPinCheck", func(c *ObjConfig) { c.BugNoPinCheck = true }},
	{"BugDeleteNoGen", func(c *ObjConfig) { c.BugDeleteNoGen = true }},
}

// TestObject explores the deletion protocol at the CI configurations, two
// processes of one goroutine with a kill and a Close at every step, and
// checks that every listed step is taken and every step taken is listed.
func TestObject(t *testing.T) {
	taken := map[string]int{}
	for _, tc := range objConfigs {
		r := exploreObj(t, tc.name, tc.cfg, Options{CountLabels: true})
		for _, v := range r.Violations {
			t.Errorf("%s: %v", tc.name, v)
		}
		for l, n := range r.Labels {
			taken[l] += n
		}
	}
	steps := (&ObjModel{}).Steps()
	for _, l := range steps {
		if taken[l] == 0 {
			t.Errorf("step %q is listed but never taken", l)
		}
	}
	for l := range taken {
		if !strings.HasPrefix(l, "env.") && !slices.Contains(steps, l) {
			t.Errorf("step %q is taken but not listed", l)
		}
	}
}

// TestObjectBugs: each planted bug is found, with a trace, in the first
// configuration.
func TestObjectBugs(t *testing.T) {
	for _, tc := range objBugs {
		t.Run(tc.name, func(t *testing.T) {
			cfg := objConfigs[0].cfg
			if tc.name == "BugDeleteNoGen" {
				cfg = objConfigs[1].cfg // two deleters
			}
			tc.bug(&cfg)
			r := exploreObj(t, tc.name, cfg, Options{})
			if len(r.Violations) == 0 {
				t.Fatal("no violation found")
			}
			v := r.Violations[0]
			if v.Kind == "deadlock" || len(v.Trace) < 2 {
				t.Errorf("found %v, want a safety violation with a trace", v)
			}
			t.Log(v.String())
		})
	}
}

// TestObjectDeep explores longer scripts, with two kills and a Close, in
// which both processes delete and create the object twice.
func TestObjectDeep(t *testing.T) {
	opt := deep(t)
	for _, tc := range []struct {
		name string
		cfg  ObjConfig
	}{
		{"two rounds each, 2 kills + Close", ObjConfig{
			Procs:  [][]ObjOp{{OOpen, OUse, ODelete, OCreate, OUse, ODrop, OOpen, OUse, ODelete, OCreate, OUse}, {OOpen, OUse, ODrop, ODelete, OCreate, OUse, ODelete, OCreate, OOpen, OUse}},
			Budget: Budget{Kill: 2, Close: 1}}},
	} {
		report(t, tc.name, exploreObj(t, tc.name, tc.cfg, opt))
	}
}
