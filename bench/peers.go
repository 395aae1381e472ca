package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// runPeers runs the peers folder's run-all.sh, if the folder exists, and
// passes its figure lines through to stdout (its stderr goes to stderr,
// prefixed). Figures this program measures itself (own) are not asked for,
// so that every name appears once.
func runPeers(cfg *config, own map[string]bool, out io.Writer) []line {
	if cfg.peers == "" {
		fmt.Fprintln(os.Stderr, "# bench: -peers is empty: skipping the C, Python, flock and Ruby peers")
		return nil
	}
	script := filepath.Join(cfg.peers, "run-all.sh")
	if _, err := os.Stat(script); err != nil {
		fmt.Fprintf(os.Stderr, "# bench: no peers folder (%v): skipping the C, Python, flock and Ruby peers\n", err)
		return nil
	}
	only, any := peerSelection(script, cfg, own)
	if !any {
		fmt.Fprintln(os.Stderr, "# bench: no peer figure selected")
		return nil
	}
	cmd := exec.Command(script)
	cmd.Env = append(os.Environ(), "ONLY="+only)
	if cfg.quick {
		cmd.Env = append(cmd.Env, "QUICK=1")
	}
	cmd.Stdin = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "# bench: run-all.sh: %v\n", err)
		return nil
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "# bench: run-all.sh: %v\n", err)
		return nil
	}
	fmt.Fprintf(os.Stderr, "# bench: running %s (%d figures%s)\n", script, strings.Count(only, "|")+1, map[bool]string{true: ", QUICK=1"}[cfg.quick])
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "# bench: run-all.sh: %v\n", err)
		return nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { prefixLines(os.Stderr, stderr, "peers: ") })
	var lines []line
	var progress sync.Mutex
	lines, _ = scanLines(stdout, func(s string) {
		progress.Lock()
		defer progress.Unlock()
		fmt.Fprintln(out, s)
	})
	io.Copy(io.Discard, stdout)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		fmt.Fprintf(os.Stderr, "# bench: run-all.sh: %v (a figure failed its check or is missing)\n", err)
	}
	var kept []line
	for _, l := range lines {
		if !own[l.name] { // should not happen; keep our own measurement
			kept = append(kept, l)
		}
	}
	return kept
}

func prefixLines(w io.Writer, r io.Reader, prefix string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fmt.Fprintln(w, prefix+sc.Text())
	}
}

// tableRow matches a row of the figure table in run-all.sh:
// "name | group | args | quick args".
var tableRow = regexp.MustCompile(`^([a-z0-9_]+)\s*\|\s*[a-z]+\s*\|`)

// peerSelection returns the ONLY regular expression for run-all.sh: the
// names of its figures table that -only selects and that this program does
// not measure itself, and whether there is any. If the table cannot be read,
// it falls back to -only itself (own figures are then dropped from the
// output instead).
func peerSelection(script string, cfg *config, own map[string]bool) (string, bool) {
	b, err := os.ReadFile(script)
	var names []string
	if err == nil {
		in := false
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case strings.Contains(l, "<<'TABLE'"):
				in = true
			case strings.TrimSpace(l) == "TABLE":
				in = false
			case in:
				if m := tableRow.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
					names = append(names, m[1])
				}
			}
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(os.Stderr, "# bench: cannot read the figure table of run-all.sh; passing -only as ONLY")
		return cfg.only.String(), true
	}
	var sel []string
	for _, n := range names {
		if !own[n] && cfg.only.MatchString(n) {
			sel = append(sel, n)
		}
	}
	return "^(" + strings.Join(sel, "|") + ")$", len(sel) > 0
}
