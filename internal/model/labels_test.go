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
//
// TODO(labels): add a prefix here as its protocol's code gets all its
// labels: "mutex.", "token.", "wait.", "proc.", "sem.". "cond." has them.
var checkedProtocols = []string{"cond."}

// modelSteps returns every code step of every model, without repeats.
func modelSteps() []string {
	var all []string
	for _, s := range [][]string{(&MutexModel{}).Steps(), (&SemaphoreModel{}).Steps(), (&CondModel{}).Steps()} {
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
// the model's steps and the code's `// step:` comments are the same set.
// A comment may name several labels ("// step: a, b") where one line of
// code does several model steps.
func TestLabelsMatchCode(t *testing.T) {
	code := codeSteps(t)
	model := modelSteps()
	t.Logf("%d model steps; %d labels in the code", len(model), len(code))
	for _, prefix := range checkedProtocols {
		for _, l := range model {
			if strings.HasPrefix(l, prefix) && code[l] == nil {
				t.Errorf("model step %q has no // step: comment in the code", l)
			}
		}
		for l, where := range code {
			if strings.HasPrefix(l, prefix) && !slices.Contains(model, l) {
				t.Errorf("%s: // step: %q is not a step of any model", where[0], l)
			}
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
		{Procs: [][]SemScript{{sem(true, acquire(2), release(2))}, {sem(true, release(1), acquire(1), release(1))}}, Initial: 1, Budget: Budget{Kill: 1, Cancel: 1, Close: 1}},
		semaphoreBugs[0].cfg, // pass_wake
		semaphoreBugs[2].cfg, // yield_token
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
