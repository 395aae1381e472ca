package model

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkedProtocols lists the label prefixes whose steps must match the code
// one for one: every model step of the protocol has a `// step: <label>`
// comment in the root package's non-test .go files, and every such comment
// names a model step.
var checkedProtocols = []string{"mutex.", "token.", "wait.", "proc.", "sem.", "cond.", "queue.", "rw.", "lw.", "event.", "obj.", "osem."}

// A gap is a label of a checked protocol that is on one side only, because
// the model and the code differ there in behaviour, not in naming: a step
// of the model that the code does not take (modelOnly), or a step of the
// code that the model lacks. doc.go, "Where the code differs", says what
// each difference is. A gap stays listed until one side follows the other;
// TestLabelsMatchCode fails when a listed gap has closed, so the list
// cannot go stale.
type gap struct {
	modelOnly bool
	why       string
}

var knownGaps = map[string]gap{
	// The code arms the kernel's pending-op wake-up (as well as watching
	// every other attached process, as the model does), which the model has
	// only as PendingWake, merged into the steps around it.
	"mutex.lock.arm_pending": {false, "the model arms the pending op only with PendingWake, and not as a step"},
}

// modelSteps returns every code step of every model, without repeats.
func modelSteps() []string {
	var all []string
	for _, s := range [][]string{(&MutexModel{}).Steps(), (&SemaphoreModel{}).Steps(), (&CondModel{}).Steps(), (&QueueModel{}).Steps(), (&RWModel{}).Steps(), (&LockedModel{}).Steps(), (&EventModel{}).Steps(), (&ObjModel{}).Steps(), (&OwnedModel{}).Steps()} {
		all = append(all, s...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// codeSteps returns the labels of the `// step:` comments in the root
// package's non-test files, with where each is.
func codeSteps(t *testing.T) map[string][]string {
	files, err := filepath.Glob("../../*.go")
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string][]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range f.Comments {
			for _, c := range g.List {
				text, ok := strings.CutPrefix(c.Text, "// step:")
				if !ok {
					continue
				}
				text, _, _ = strings.Cut(text, ";") // "; A1": prose, not labels
				for label := range strings.FieldsSeq(text) {
					label = strings.TrimSuffix(label, ",")
					steps[label] = append(steps[label], fset.Position(c.Pos()).String())
				}
			}
		}
	}
	return steps
}

// TestLabelsMatchCode checks, for each protocol in checkedProtocols, that
// the model's steps and the code's `// step:` comments are the same set,
// but for knownGaps. A comment may name several labels ("// step: a, b")
// where one line of code does several model steps, and a label may be on
// several lines where the model merges them into one step (doc.go,
// Abstractions); text after a ";" is prose ("// step: proc.close.clear; D4").
func TestLabelsMatchCode(t *testing.T) {
	code := codeSteps(t)
	model := modelSteps()
	t.Logf("%d model steps; %d labels in the code", len(model), len(code))
	checked := func(l string) bool {
		return slices.ContainsFunc(checkedProtocols, func(p string) bool { return strings.HasPrefix(l, p) })
	}
	for _, l := range model {
		if !checked(l) {
			continue
		}
		g, isGap := knownGaps[l]
		switch {
		case code[l] == nil && !isGap:
			t.Errorf("model step %q has no // step: comment in the code", l)
		case code[l] != nil && isGap && g.modelOnly:
			t.Errorf("%s: known gap %q (%s) has closed: remove it from knownGaps and doc.go", code[l][0], l, g.why)
		}
	}
	for l, where := range code {
		if !checked(l) || slices.Contains(model, l) {
			continue
		}
		if g, isGap := knownGaps[l]; !isGap || g.modelOnly {
			t.Errorf("%s: // step: %q is not a step of any model", where[0], l)
		}
	}
	for l, g := range knownGaps {
		switch {
		case g.modelOnly && !slices.Contains(model, l):
			t.Errorf("known gap %q: not a model step (any more): remove it from knownGaps and doc.go", l)
		case !g.modelOnly && code[l] == nil:
			t.Errorf("known gap %q: no // step: comment in the code (any more): remove it from knownGaps and doc.go", l)
		case !g.modelOnly && slices.Contains(model, l):
			t.Errorf("known gap %q (%s) has closed: the model has the step; remove it from knownGaps and doc.go", l, g.why)
		}
	}
}

// TestStepsAreTaken checks each model's Steps against the labels its
// explorations take: every listed step is taken somewhere, and every label
// taken is listed (or is the environment's, the kernel's, or a fault).
func TestStepsAreTaken(t *testing.T) {
	notCode := func(l string) bool {
		return strings.HasPrefix(l, "env.") || strings.HasPrefix(l, "kernel.") || l == "fault"
	}
	check := func(name string, steps []string, taken map[string]int) {
		for _, l := range steps {
			if taken[l] == 0 {
				t.Errorf("%s: step %q is listed but never taken", name, l)
			}
		}
		for l := range taken {
			if !notCode(l) && !slices.Contains(steps, l) {
				t.Errorf("%s: step %q is taken but not listed in Steps", name, l)
			}
		}
	}
	opt := Options{CountLabels: true}
	taken := map[string]int{}
	for _, cfg := range []MutexConfig{
		{Procs: [][]Script{{lockOnce(true, 0)}, {lockOnce(true, 0)}}, Budget: everything},
		mutexBugs[0].cfg, // two goroutines of a process: the token is contended
	} {
		m, err := NewMutexModel(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for l, n := range Explore[MutexState](m, opt).Labels {
			taken[l] += n
		}
	}
	check("Mutex", (&MutexModel{}).Steps(), taken)

	taken = map[string]int{}
	for _, cfg := range []SemaphoreConfig{
		{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, release(1), acquire(1), release(1))}}, Initial: 1, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}, Counting: true},
		{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, acquire(1), release(1), release(1))}}, Initial: 2, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}},
		semaphoreBugs[0].cfg, // three processes
		semaphoreBugs[2].cfg, // two goroutines of a process: the token is contended
	} {
		m, err := NewSemaphoreModel(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for l, n := range Explore[SemState](m, opt).Labels {
			taken[l] += n
		}
	}
	check("Semaphore", (&SemaphoreModel{}).Steps(), taken)

	taken = map[string]int{}
	for _, tc := range condConfigs {
		m, err := NewCondModel(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for l, n := range Explore[CondState](m, opt).Labels {
			taken[l] += n
		}
	}
	check("Cond", (&CondModel{}).Steps(), taken)
}
