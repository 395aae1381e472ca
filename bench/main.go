// Command bench compares processshared with its peers: the C, Python, flock
// and Ruby programs of the peers folder (run through its run-all.sh), C
// programs of its own for the figures the peers folder lacks (cpeers/, built
// at run time with the system's C compiler), the Go library go-ipc, file
// locks (gofrs/flock), sockets and the Go runtime's own primitives. It prints one line per figure on stdout,
//
//	name<TAB>value<TAB>correct=yes|no<TAB>notes
//
// the format of the peers folder, and its progress on stderr. Every workload
// checks its own result (a shared counter equals the number of increments,
// sequence numbers arrive in order, ...); a failed check prints correct=no.
//
// Usage, from the bench folder of the repository:
//
//	go run .                  # every figure, a few minutes
//	go run . -quick           # every figure with short runs, indicative only
//	go run . -only='pingpong' # the figures whose name matches a regular expression
//	go run . -write           # also write ../BENCHMARKS.md and chart.svg
//	go run . -write -runs=3   # the same from the median of 3 runs (what BENCHMARKS.md shows)
//
// Cross-process workloads re-execute this binary as their child processes
// (the role travels in an environment variable) and hand them an anonymous
// segment with processshared.Pass, so nothing is left in /dev/shm.
//
// This is a module of its own, so that users of processshared never download
// the peers it depends on.
package main

import (
	"bufio"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A figure is one measured number.
type figure struct {
	name string
	run  func(ctx context.Context, cfg *config) result
}

// A result is what a figure's run reports. ok is its self-check.
type result struct {
	value float64
	ok    bool
	notes string
}

// failed returns the result of a run that could not measure anything.
func failed(err error) result { return result{value: math.NaN(), notes: "error: " + err.Error()} }

// A line is one output line: a figure's name and result.
type line struct {
	name  string
	value float64
	ok    bool
	notes string
}

func (l line) String() string {
	v := "NaN"
	if !math.IsNaN(l.value) {
		v = strconv.FormatFloat(l.value, 'f', 1, 64)
	}
	c := "no"
	if l.ok {
		c = "yes"
	}
	notes := strings.NewReplacer("\t", " ", "\n", " ").Replace(l.notes)
	return fmt.Sprintf("%s\t%s\tcorrect=%s\t%s", l.name, v, c, notes)
}

// parseLine parses a line of the TSV format; ok is false for anything else
// (comments, blank lines, stray output).
func parseLine(s string) (line, bool) {
	f := strings.SplitN(strings.TrimRight(s, "\r\n"), "\t", 4)
	if len(f) < 3 || !strings.HasPrefix(f[2], "correct=") || f[0] == "" || strings.HasPrefix(f[0], "#") {
		return line{}, false
	}
	v, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		v = math.NaN()
	}
	l := line{name: f[0], value: v, ok: f[2] == "correct=yes"}
	if len(f) == 4 {
		l.notes = f[3]
	}
	return l, true
}

// config holds the command line and what was derived from it.
type config struct {
	quick   bool
	only    *regexp.Regexp
	dur     time.Duration // how long each timed loop runs
	timeout time.Duration // bound on one figure
	root    string        // the repository root
	peers   string        // the peers folder; "" to skip
	load0   string        // load average when the run started
	rev     string        // the library's revision when the run started
}

// loopDur returns the duration of a timed loop.
func (c *config) loopDur() time.Duration { return c.dur }

// pick returns quick in quick mode and full otherwise.
func pick[T any](c *config, full, quick T) T {
	if c.quick {
		return quick
	}
	return full
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(childMain(role))
	}
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run . [flags]   (from the bench folder)\n\n"+
			"Runs every figure and prints name<TAB>value<TAB>correct=yes|no<TAB>notes on stdout.\n\n")
		fs.PrintDefaults()
	}
	quick := fs.Bool("quick", false, "short runs of every figure (indicative only), also passes QUICK=1 to run-all.sh")
	only := fs.String("only", "", "run only the figures whose name matches this regular expression")
	peers := fs.String("peers", "../shared/peers", "the peers folder (relative paths are resolved against the repository root); its run-all.sh is run if it exists; \"\" skips it")
	write := fs.Bool("write", false, "write the report (-md) and the chart (-chart) from this run")
	md := fs.String("md", "BENCHMARKS.md", "report file written by -write, relative to the repository root")
	chart := fs.String("chart", "bench/chart.svg", "chart file written by -write, relative to the repository root")
	from := fs.String("from", "", "read the figures from this TSV file (a saved stdout) instead of running them; with -write, regenerates the report")
	dur := fs.Duration("benchtime", 0, "duration of each timed loop (default 1s, 0.1s with -quick)")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on one figure; a figure that takes longer is reported correct=no")
	list := fs.Bool("list", false, "list the figures this program measures itself and exit")
	runs := fs.Int("runs", 1, "run everything this many times and report each figure's median (per-run lines then go to stderr)")
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}

	cfg := &config{quick: *quick, timeout: *timeout}
	var err error
	if cfg.only, err = regexp.Compile(*only); err != nil {
		fmt.Fprintf(os.Stderr, "bench: bad -only: %v\n", err)
		return 2
	}
	cfg.dur = pick(cfg, time.Second, 100*time.Millisecond)
	if *dur > 0 {
		cfg.dur = *dur
	}
	cfg.root = repoRoot()
	if *peers != "" {
		cfg.peers = *peers
		cfg.peers = underRoot(cfg.root, cfg.peers)
	}
	figs := figures()
	if *list {
		for _, f := range figs {
			fmt.Println(f.name)
		}
		return 0
	}

	start := time.Now()
	var lines []line
	if *from != "" {
		lines, err = readTSV(*from)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 2
		}
	} else {
		var all [][]line
		for r := range max(1, *runs) {
			out := io.Writer(os.Stdout)
			if *runs > 1 {
				fmt.Fprintf(os.Stderr, "# bench: run %d of %d\n", r+1, *runs)
				out = prefixWriter{os.Stderr, fmt.Sprintf("# run %d: ", r+1)}
			}
			all = append(all, runAll(cfg, figs, out))
		}
		lines = all[0]
		if len(all) > 1 {
			lines = medians(all)
			for _, l := range lines {
				fmt.Println(l)
			}
		}
	}

	rc := 0
	for _, l := range lines {
		if !l.ok {
			rc = 1
		}
	}
	if *from == "" {
		removeCPeers()
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "# bench: left behind (removed now): %s\n", strings.Join(left, " "))
			for _, p := range left {
				os.Remove(p)
			}
			rc = 1
		}
		fmt.Fprintf(os.Stderr, "# bench: %d figures in %s\n", len(lines), time.Since(start).Round(time.Second))
	}
	if *write {
		mdPath, svgPath := underRoot(cfg.root, *md), underRoot(cfg.root, *chart)
		cmdline := "cd bench && go run . " + strings.Join(os.Args[1:], " ")
		if *from != "" {
			cmdline = "cd bench && go run . -write -runs=" + strconv.Itoa(runsOf(lines)) // the run that produced the file, presumably
			if runsOf(lines) == 1 {
				cmdline = "cd bench && go run . -write"
			}
		}
		if err := writeReport(mdPath, svgPath, cfg, lines, strings.TrimSpace(cmdline), time.Since(start)); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "# bench: wrote %s and %s\n", mdPath, svgPath)
	}
	return rc
}

// runAll runs the selected figures of this program, then the peers folder's
// run-all.sh, printing each line as it comes.
func runAll(cfg *config, figs []figure, out io.Writer) []line {
	var sel []figure
	for _, f := range figs {
		if cfg.only.MatchString(f.name) {
			sel = append(sel, f)
		}
	}
	info := machine()
	if cfg.rev == "" { // the first run's: go run built the binary just before
		cfg.rev, cfg.load0 = revision(cfg.root), loadavg()
	}
	fmt.Fprintf(os.Stderr, "# bench: %s; %s; nproc=%d; %s; %s; loadavg %s; library %s\n", info.date, info.kernel, info.nproc, info.cpu, info.goVersion, loadavg(), cfg.rev)
	if busy() {
		fmt.Fprintln(os.Stderr, "# bench: WARNING: the machine is busy (load average ≥ nproc/2): figures will be skewed")
	}
	fmt.Fprintf(os.Stderr, "# bench: %d figures of this program (loops of %v), then the peers folder %s\n", len(sel), cfg.dur, orNone(cfg.peers))
	var lines []line
	for i, f := range sel {
		t := time.Now()
		fmt.Fprintf(os.Stderr, "# [%d/%d] %s ...", i+1, len(sel), f.name)
		r := runFigure(cfg, f)
		l := line{name: f.name, value: r.value, ok: r.ok, notes: r.notes}
		fmt.Fprintf(os.Stderr, " %s (%.1fs)\n", strings.SplitN(l.String(), "\t", 4)[1], time.Since(t).Seconds())
		fmt.Fprintln(out, l)
		lines = append(lines, l)
	}
	own := make(map[string]bool)
	for _, f := range figs {
		own[f.name] = true
	}
	return append(lines, runPeers(cfg, own, out)...)
}

// prefixWriter writes each line with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			if _, err := io.WriteString(p.w, p.prefix+l); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

// medians combines several runs: per figure, in order of first appearance,
// the median of its values, correct only if it was correct in every run,
// with the notes of the run that gave the median.
func medians(runs [][]line) []line {
	var order []string
	by := map[string][]line{}
	for _, ls := range runs {
		for _, l := range ls {
			if _, seen := by[l.name]; !seen {
				order = append(order, l.name)
			}
			by[l.name] = append(by[l.name], l)
		}
	}
	var out []line
	for _, name := range order {
		ls := by[name]
		var vals []line
		for _, l := range ls {
			if !math.IsNaN(l.value) {
				vals = append(vals, l)
			}
		}
		slices.SortStableFunc(vals, func(a, b line) int { return cmp.Compare(a.value, b.value) })
		m := line{name: name, value: math.NaN(), ok: len(ls) == len(runs)}
		if len(vals) > 0 {
			med := vals[(len(vals)-1)/2]
			m.value, m.notes = med.value, med.notes
		}
		var each []string
		for _, l := range ls {
			m.ok = m.ok && l.ok
			each = append(each, strings.SplitN(l.String(), "\t", 3)[1])
			if !l.ok && m.notes == "" {
				m.notes = l.notes
			}
		}
		m.notes = fmt.Sprintf("median of %d runs (%s); %s", len(runs), strings.Join(each, ", "), m.notes)
		if len(ls) < len(runs) {
			m.notes = fmt.Sprintf("missing from %d of %d runs; ", len(runs)-len(ls), len(runs)) + m.notes
		}
		out = append(out, m)
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// runFigure runs f under cfg.timeout. A figure that does not return in time,
// or panics, is reported as failed; its goroutine is abandoned and its
// children are killed.
func runFigure(cfg *config, f figure) result {
	ctx, cancel := untimed(cfg.timeout)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- failed(fmt.Errorf("panic: %v", p))
			}
		}()
		done <- f.run(ctx, cfg)
	}()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		killChildren()
		select {
		case r := <-done:
			r.ok = false
			r.notes = "timed out; " + r.notes
			return r
		case <-time.After(5 * time.Second):
			return failed(fmt.Errorf("no result within %v", cfg.timeout))
		}
	}
}

// readTSV reads the figure lines of a saved output.
func readTSV(path string) ([]line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return scanLines(f, nil)
}

// scanLines collects the figure lines read from r; each is also passed to
// echo, if not nil.
func scanLines(r io.Reader, echo func(string)) ([]line, error) {
	var out []line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l, ok := parseLine(sc.Text()); ok {
			out = append(out, l)
			if echo != nil {
				echo(sc.Text())
			}
		}
	}
	return out, sc.Err()
}

// repoRoot returns the root of the processshared repository: the nearest
// directory, from the working directory up, whose go.mod declares the
// module; failing that, the working directory's parent.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ".."
	}
	for d := wd; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == "github.com/processshared/processshared" {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			return filepath.Dir(wd)
		}
		d = up
	}
}

// underRoot resolves a relative path against the repository root.
func underRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func modulePath(gomod []byte) string {
	for _, l := range strings.Split(string(gomod), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strings.Trim(strings.TrimSpace(p), `"`)
		}
	}
	return ""
}

// untimed returns a context that is cancelled after d, or by cancel, and
// has no deadline: a wait under it is untimed in the kernel, like the C
// peers' (pthread_cond_wait, sem_wait), where a deadline would arm a kernel
// timer on every sleep. The cancellation still ends a hung wait.
func untimed(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t := time.AfterFunc(d, cancel)
	return ctx, func() { t.Stop(); cancel() }
}
