package main

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A group is a set of figures that measure the same thing, compared with
// one figure of ours (ref, or refFor for a given figure).
type group struct {
	title  string
	unit   string // what one value is
	match  *regexp.Regexp
	not    *regexp.Regexp           // excluded even if match matches
	ref    string                   // our figure the others are compared with
	refFor func(name string) string // overrides ref for some rows
}

var groups = []group{
	{
		title: "Mutex, uncontended",
		unit:  "ns per lock+unlock pair, 1 process",
		match: regexp.MustCompile(`_uncontended$`),
		not:   regexp.MustCompile(`^ps_cond_|rwmutex|rwlock`),
		ref:   "ps_mutex_uncontended",
	},
	{
		title: "RWMutex",
		unit:  "ns per RLock+RUnlock pair (uncontended), else per op (wall time / ops of all processes; a read copies and checks 256 bytes)",
		match: regexp.MustCompile(`rwmutex|rwlock`),
		refFor: func(name string) string {
			switch {
			case strings.HasSuffix(name, "_uncontended"):
				return "ps_rwmutex_rlock_uncontended"
			case strings.Contains(name, "_mixed_"):
				return "ps_rwmutex_mixed_2p"
			case strings.Contains(name, "_read_"):
				return "ps_rwmutex_read_" + name[strings.LastIndex(name, "_")+1:]
			}
			return ""
		},
	},
	{
		title: "Mutex, 2 processes contending",
		unit:  "ns per increment of a shared non-atomic counter (wall time / total increments)",
		match: regexp.MustCompile(`_contended_2[pg]$|^py_mp_value_counter_2p$`),
		ref:   "ps_mutex_contended_2p",
	},
	{
		title: "Mutex, 4 processes contending",
		unit:  "ns per increment of a shared non-atomic counter",
		match: regexp.MustCompile(`_contended_4p$`),
		ref:   "ps_mutex_contended_4p",
	},
	{
		title: "Ping-pong between 2 processes",
		unit:  "ns per round trip",
		match: regexp.MustCompile(`_pingpong`),
		ref:   "ps_sem_pingpong",
		refFor: func(name string) string {
			switch {
			case strings.Contains(name, "cond"):
				return "ps_cond_pingpong"
			case strings.HasSuffix(name, "_pingpong_64b"):
				return "ps_queue_pingpong_64b"
			}
			return "ps_sem_pingpong"
		},
	},
	{
		title: "Condition variable",
		unit:  "ns",
		match: regexp.MustCompile(`^ps_cond_(uncontended|broadcast)|^c_cond_broadcast|^go_futex_broadcast`),
		refFor: func(name string) string {
			if strings.HasPrefix(name, "c_cond_broadcast_") {
				return "ps_cond_broadcast_" + strings.TrimPrefix(name, "c_cond_broadcast_")
			}
			if strings.HasPrefix(name, "go_futex_broadcast_8p") {
				return "ps_cond_broadcast_8p"
			}
			return ""
		},
	},
	{
		title: "Owner death",
		unit:  "median ns from the holder's death to the next owner holding the lock",
		match: regexp.MustCompile(`owner_death|process_death`),
		ref:   "ps_owner_death_sigkill",
	},
	{
		title: "Threads while 1000 goroutines are blocked",
		unit:  "OS threads of the process (fewer is better)",
		match: regexp.MustCompile(`_threads_`),
		ref:   "ps_threads_1000_blocked",
	},
	{
		title: "One-way transfer to another process (Queue, Slot)",
		unit:  "ns per message, end to end, A's slice to B's slice, checked; compared with ps_queue_oneway of the same size",
		match: regexp.MustCompile(`_oneway_|^memmove_`),
		refFor: func(name string) string {
			return "ps_queue_oneway_" + name[strings.LastIndex(name, "_")+1:]
		},
	},
	{
		title: "Floors: system calls",
		unit:  "ns per call",
		match: regexp.MustCompile(`syscall|futex_wake_nowaiter`),
	},
	{
		title: "Other",
		unit:  "",
		match: regexp.MustCompile(`.`),
	},
}

// groupLines sorts lines into groups, in group order: in each group ours
// first, in line order, then the others from the fastest (figures without
// a value last).
func groupLines(lines []line) [][]line {
	out := make([][]line, len(groups))
	for _, l := range lines {
		for i, g := range groups {
			if g.match.MatchString(l.name) && (g.not == nil || !g.not.MatchString(l.name)) {
				out[i] = append(out[i], l)
				break
			}
		}
	}
	for _, ls := range out {
		slices.SortStableFunc(ls, func(a, b line) int {
			switch {
			case ours(a.name) || ours(b.name):
				return compareBool(!ours(a.name), !ours(b.name))
			case math.IsNaN(a.value) || math.IsNaN(b.value):
				return compareBool(math.IsNaN(a.value), math.IsNaN(b.value))
			}
			return cmp.Compare(a.value, b.value)
		})
	}
	return out
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func (g group) refOf(name string) string {
	if g.refFor != nil {
		return g.refFor(name)
	}
	return g.ref
}

// ours reports whether a figure measures processshared.
func ours(name string) bool { return strings.HasPrefix(name, "ps_") }

// unitOf returns the unit of a figure's value.
func unitOf(name string) string {
	if strings.Contains(name, "_threads_") {
		return "threads"
	}
	return "ns"
}

// human formats a value with its unit.
func human(v float64, unit string) string {
	if math.IsNaN(v) {
		return "—"
	}
	if unit == "threads" {
		return fmt.Sprintf("%.0f threads", v)
	}
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f ms", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1f µs", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2f µs", v/1e3)
	default:
		return fmt.Sprintf("%.1f ns", v)
	}
}

// versus says who wins between a figure (v) and ours (ref), lower being
// better.
func versus(v, ref float64) string {
	if math.IsNaN(v) || math.IsNaN(ref) || v <= 0 || ref <= 0 {
		return "—"
	}
	r := v / ref
	switch {
	case r >= 1.005:
		return fmt.Sprintf("**ps %.2f× faster**", r)
	case r <= 0.995:
		return fmt.Sprintf("peer %.2f× faster", 1/r)
	default:
		return "even"
	}
}

// A target is one of the goals of the locks issue.
type target struct {
	what     string
	a, b     string  // figure names: a is ours, b the peer
	maxRatio float64 // met if a/b <= maxRatio (strict if strict)
	strict   bool
}

var targets = []target{
	{"uncontended Lock+Unlock ≤ 1.5× sync.Mutex", "ps_mutex_uncontended", "go_sync_mutex_uncontended", 1.5, false},
	{"uncontended Lock+Unlock < glibc robust pthread mutex", "ps_mutex_uncontended", "c_pthread_robust_uncontended", 1, true},
	{"2 processes contending ≤ 1.0× Drepper futex mutex in C", "ps_mutex_contended_2p", "c_futex_mutex_contended_2p", 1, false},
	{"semaphore ping-pong ≤ 1.2× C futex ping-pong with 100 spins", "ps_sem_pingpong", "c_futex_pingpong_spin100", 1.2, false},
	{"semaphore ping-pong ≤ glibc sem_t ping-pong", "ps_sem_pingpong", "c_sem_pingpong", 1, false},
	{"cond ping-pong < glibc pthread_cond ping-pong", "ps_cond_pingpong", "c_cond_pingpong", 1, true},
	{"cond broadcast to 8 processes ≤ 1.0× glibc pthread_cond_broadcast", "ps_cond_broadcast_8p", "c_cond_broadcast_8p", 1, false},
	{"owner death (SIGKILL) to next owner ≤ glibc robust mutex", "ps_owner_death_sigkill", "c_robust_owner_death_sigkill", 1, false},
	{"uncontended RWMutex RLock+RUnlock ≤ 1.5× Mutex Lock+Unlock", "ps_rwmutex_rlock_uncontended", "ps_mutex_uncontended", 1.5, false},
	{"RWMutex reads: 2 processes ≥ 1.5× the throughput of 1 (ns per read ≤ 1/1.5)", "ps_rwmutex_read_2p", "ps_rwmutex_read_1p", 1 / 1.5, false},
	{"threads, 1000 goroutines blocked on a Mutex ≤ 0.1× go-ipc", "ps_threads_1000_blocked", "goipc_threads_1000_blocked", 0.1, false},
	{"threads, 1000 goroutines blocked on a Semaphore ≤ 0.1× go-ipc", "ps_threads_1000_blocked_sem", "goipc_threads_1000_blocked", 0.1, false},
	{"threads, 1000 goroutines blocked on a Cond ≤ 0.1× go-ipc", "ps_threads_1000_blocked_cond", "goipc_threads_1000_blocked", 0.1, false},
}

// evaluate returns the ratio a/b and a verdict.
func (t target) evaluate(by map[string]line) (ratio string, verdict string) {
	a, okA := by[t.a]
	b, okB := by[t.b]
	switch {
	case !okA || !okB:
		missing := t.a
		if okA {
			missing = t.b
		}
		return "—", "not measured (" + missing + " missing from this run)"
	case !a.ok || math.IsNaN(a.value):
		return "—", "**not met**: " + t.a + " failed its self-check (correct=no)"
	case !b.ok || math.IsNaN(b.value):
		return "—", "unknown: " + t.b + " failed its self-check"
	}
	r := a.value / b.value
	ratio = fmt.Sprintf("%.2f×", r)
	// With several runs, compare within each run (both figures come from
	// the same run, under the same conditions) and judge by the median.
	va, vb := runValues(a), runValues(b)
	if len(va) > 1 && len(va) == len(vb) {
		var rs []float64
		var each []string
		for i := range va {
			rs = append(rs, va[i]/vb[i])
			each = append(each, fmt.Sprintf("%.2f", va[i]/vb[i]))
		}
		slices.Sort(rs)
		r = rs[(len(rs)-1)/2]
		ratio = fmt.Sprintf("%.2f× (runs: %s)", r, strings.Join(each, ", "))
	}
	met := r <= t.maxRatio
	if t.strict {
		met = r < t.maxRatio
	}
	if met {
		return ratio, "met"
	}
	return ratio, "**not met**"
}

// runValues returns the per-run values of a median line, from its notes
// ("median of 3 runs (v1, v2, v3); ..."), or nil.
func runValues(l line) []float64 {
	rest, ok := strings.CutPrefix(l.notes, "median of ")
	if !ok {
		return nil
	}
	_, rest, _ = strings.Cut(rest, "(")
	list, _, _ := strings.Cut(rest, ")")
	var vs []float64
	for _, f := range strings.Split(list, ", ") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil
		}
		vs = append(vs, v)
	}
	return vs
}

// writeReport writes the markdown report and the chart.
func writeReport(mdPath, svgPath string, cfg *config, lines []line, cmdline string, took time.Duration) error {
	by := make(map[string]line)
	for _, l := range lines {
		by[l.name] = l
	}
	grouped := groupLines(lines)
	svg := chartSVG(grouped)
	if err := os.WriteFile(svgPath, []byte(svg), 0o644); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(mdPath), svgPath)
	if err != nil {
		rel = svgPath
	}
	info := machine()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmarks\n\n")
	w("processshared against every peer, measured in one invocation on one machine. Generated by the\n")
	w("harness in [`bench/`](bench/) (a separate Go module, so library users never download its\n")
	w("dependencies); do not edit by hand. Regenerate with\n\n")
	w("    %s\n\n", cmdline)
	w("(`go run . -write` for a single run; `go run . -quick` for a fast, indicative one without\n")
	w("writing; `-only=regex` to select figures; `go run . -h` for the rest). Every figure checks its own result (a shared counter equals the number of\n")
	w("increments, sequence numbers arrive in order, the lock is usable afterwards, …) and is\n")
	w("printed as `name<TAB>value<TAB>correct=yes|no<TAB>notes`, the format of the peers folder,\n")
	w("whose `run-all.sh` (C/glibc, flock, Python, Ruby, Go futex references) runs in the same\n")
	w("invocation.\n\n")
	w("## Machine and run\n\n")
	w("| | |\n|---|---|\n")
	w("| command | `%s` |\n", cmdline)
	w("| date | %s |\n", info.date)
	w("| kernel | %s |\n", info.kernel)
	w("| CPUs (nproc) | %d × %s |\n", info.nproc, info.cpu)
	w("| Go | %s |\n", info.goVersion)
	rev := cfg.rev
	if rev == "" {
		rev = revision(cfg.root)
	}
	w("| processshared | %s |\n", rev)
	if cfg.load0 != "" {
		w("| load average (1, 5, 15 min) at start / end | %s / %s |\n", cfg.load0, loadavg())
	}
	if took > time.Second {
		w("| duration | %s |\n", took.Round(time.Second))
	}
	if n := runsOf(lines); n > 1 {
		w("| runs | %d; each figure is the median of its %d values, correct only if correct in every run |\n", n, n)
	}
	if cfg.quick {
		w("| mode | **-quick**: short loops, figures only indicative |\n")
	}
	w("\nCross-process round trips on a shared 2-vCPU VM swing by 2× between runs, and a process\n")
	w("that sleeps in the kernel is woken slowly when its CPU has gone idle: compare ratios\n")
	w("within one run, not absolute numbers across runs or machines.\n\n")

	w("## Targets\n\n")
	w("The goals set in the locks issue; a ratio is ours ÷ the peer's (lower is better). With\n")
	w("several runs, the ratio is the median of the per-run ratios (each run's two figures were\n")
	w("measured under the same conditions), and the verdict follows it.\n\n")
	w("| target | ours | peer | ratio | verdict |\n|---|---|---|---|---|\n")
	for _, t := range targets {
		ratio, verdict := t.evaluate(by)
		w("| %s | `%s` %s | `%s` %s | %s | %s |\n", t.what, t.a, human(by[t.a].value, unitOf(t.a)), t.b, human(by[t.b].value, unitOf(t.b)), ratio, verdict)
	}
	if notes := findingNotes(by); notes != "" {
		w("\n%s", notes)
	}
	b.WriteString(queueReport(by))

	w("\n## Chart\n\n")
	w("Log scale, one scale per group; processshared in orange, lower is better everywhere.\n\n")
	w("![processshared against its peers](%s)\n\n", filepath.ToSlash(rel))

	w("## All figures\n\n")
	w("\"vs ps\" compares a figure with processshared's figure for the same work (named in the\n")
	w("group's heading): **ps N× faster** means the peer's value is N times ours.\n")
	for i, ls := range grouped {
		if len(ls) == 0 {
			continue
		}
		g := groups[i]
		w("\n### %s\n\n", g.title)
		if g.unit != "" {
			w("Unit: %s.", g.unit)
		}
		if g.ref != "" {
			w(" Compared with `%s`.", g.ref)
		}
		w("\n\n| figure | value | vs ps | ok | what one op is |\n|---|---|---|---|---|\n")
		for _, l := range ls {
			vs := "—"
			if ref := g.refOf(l.name); ref != "" && !ours(l.name) {
				if r, ok := by[ref]; ok && r.ok {
					vs = versus(l.value, r.value)
					if ref != g.ref {
						vs += " (vs `" + ref + "`)"
					}
				}
			}
			name := "`" + l.name + "`"
			if ours(l.name) {
				name = "**" + name + "**"
			}
			ok := "yes"
			if !l.ok {
				ok = "**no**"
			}
			w("| %s | %s | %s | %s | %s |\n", name, human(l.value, unitOf(l.name)), vs, ok, mdEscape(shortNote(l)))
		}
	}
	w("\n## Raw output\n\n<details><summary>%d lines, as printed by the harness</summary>\n\n```\n", len(lines))
	for _, l := range lines {
		w("%s\n", l)
	}
	w("```\n\n</details>\n")
	return os.WriteFile(mdPath, []byte(b.String()), 0o644)
}

// shortNote returns the part of a figure's notes that says what was
// measured: the whole note for a failure, else up to the first "; ".
func shortNote(l line) string {
	notes, median := l.notes, ""
	if strings.HasPrefix(notes, "median of ") {
		median, notes, _ = strings.Cut(notes, "; ")
		median = " [" + median + "]"
	}
	if !l.ok {
		return notes + median
	}
	n, _, _ := strings.Cut(notes, "; ")
	return n + median
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// runsOf returns the number of runs the lines are medians of (1 if they
// are not).
func runsOf(lines []line) int {
	for _, l := range lines {
		var n int
		if _, err := fmt.Sscanf(l.notes, "median of %d runs", &n); err == nil {
			return n
		}
	}
	return 1
}

// findingNotes explains figures that need a word.
func findingNotes(by map[string]line) string {
	var b strings.Builder
	if l, ok := by["ps_owner_death_sigkill"]; ok && l.ok {
		b.WriteString("Owner death: the dying holder is a Go process (several threads), the C holder a\n")
		b.WriteString("one-thread process. The kernel reports the death when it walks the robust list of the\n")
		b.WriteString("holder's keeper thread, which happens while the process's threads are torn down")
		if g, ok := by["go_process_death_sigkill"]; ok && g.ok {
			fmt.Fprintf(&b, ";\nthe whole teardown of such a process, until the parent's wait4 returns, takes %s\n(`go_process_death_sigkill`)", human(g.value, "ns"))
		}
		b.WriteString(".\n")
	}
	if l, ok := by["ps_cond_pingpong"]; ok && !l.ok {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("`ps_cond_pingpong` fails: with both sides signalling and waiting on one Cond (the\n")
		b.WriteString("protocol of `c_cond_pingpong`), the `Signal` of one side is taken by that side's own\n")
		b.WriteString("`Wait` that follows it, and the other side, already waiting, is never woken: both\n")
		b.WriteString("wait for ever (the harness declares a stall after 5 s). `ps_cond_pingpong_2cond`, one\n")
		b.WriteString("Cond per direction, avoids the steal and gives the round-trip cost.\n")
		if l2, ok := by["ps_cond_pingpong_2cond"]; ok && l2.ok {
			if c, ok := by["c_cond_pingpong"]; ok && c.ok {
				fmt.Fprintf(&b, "For reference, `ps_cond_pingpong_2cond` ÷ `c_cond_pingpong` = %.2f×.\n", l2.value/c.value)
			}
		}
	}
	return b.String()
}
