package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// C peers of this program's own: C programs in cpeers/ that measure exactly
// what one of our figures measures, for the figures the peers folder has no
// counterpart of. Each is a separate program (not cgo: this module builds
// with CGO_ENABLED=0), compiled at run time with the system's C compiler
// ($CC, else cc, else gcc) into a temporary directory that lives as long as
// this process (one compilation for all the runs of -runs), and prints one
// line of the usual format. Without a C compiler, its figure is reported as
// not run (correct=no).

//go:embed cpeers/cond_broadcast.c
var condBroadcastC []byte

// cCondBroadcast is c_cond_broadcast_8p: the measure of ps_cond_broadcast_8p
// (psCondBroadcast) with glibc's process-shared mutex and cond and fork()ed
// waiters, with the same warm-up, the same minimum number of rounds and the
// same loop duration.
func cCondBroadcast(ctx context.Context, cfg *config) result {
	const procs = 8
	args := []string{
		"-p", strconv.Itoa(procs),
		"-w", "3", // psCondBroadcast's warm
		"-r", strconv.Itoa(pick(cfg, 50, 10)), // its minRounds
		"-d", strconv.FormatInt(cfg.loopDur().Nanoseconds(), 10),
	}
	return runCPeer(ctx, "c_cond_broadcast_8p", "cond_broadcast", condBroadcastC, args)
}

//go:embed cpeers/sem.c
var semC []byte

// cSem is c_sem_uncontended (sem_wait+sem_post of a process-shared sem_t of
// one permit, one process: the loop of ps_sem_uncontended) and
// c_sem_contended_2p (two processes incrementing a shared counter under it:
// the measure of ps_sem_contended_2p), for the same loop duration.
func cSem(name, mode string) func(context.Context, *config) result {
	return func(ctx context.Context, cfg *config) result {
		args := []string{"-m", mode, "-n", name, "-d", strconv.FormatInt(cfg.loopDur().Nanoseconds(), 10)}
		return runCPeer(ctx, name, "sem", semC, args)
	}
}

// runCPeer builds (once per process) and runs a C peer that prints the line
// of figure name.
func runCPeer(ctx context.Context, name, prog string, src []byte, args []string) result {
	bin, err := buildCPeer(prog, src)
	if err != nil {
		return result{value: nanValue(), notes: "not run: " + err.Error()}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = prefixWriter{os.Stderr, "# " + prog + ": "}
	cmd.WaitDelay = time.Second // its children die with it (PR_SET_PDEATHSIG)
	runErr := cmd.Run()
	ls, _ := scanLines(&stdout, nil)
	for _, l := range ls {
		if l.name != name {
			continue
		}
		r := result{l.value, l.ok, l.notes}
		if runErr != nil && r.ok { // it says correct=yes but failed: trust the failure
			r.ok = false
			r.notes += fmt.Sprintf("; %s: %v", prog, runErr)
		}
		return r
	}
	if runErr == nil {
		runErr = fmt.Errorf("no %s line in its output %q", name, strings.TrimSpace(stdout.String()))
	}
	return failed(fmt.Errorf("%s: %w", prog, runErr))
}

var cpeers struct {
	sync.Mutex
	dir   string            // the temporary directory of the binaries, "" before the first
	built map[string]string // program -> binary
	err   map[string]error  // program -> why it could not be built
}

// buildCPeer compiles src into the temporary directory, the first time it
// is asked for prog, and returns the binary.
func buildCPeer(prog string, src []byte) (string, error) {
	cpeers.Lock()
	defer cpeers.Unlock()
	if bin, ok := cpeers.built[prog]; ok {
		return bin, nil
	}
	if err, ok := cpeers.err[prog]; ok {
		return "", err
	}
	bin, err := compileC(prog, src)
	if err != nil {
		if cpeers.err == nil {
			cpeers.err = map[string]error{}
		}
		cpeers.err[prog] = err
		return "", err
	}
	if cpeers.built == nil {
		cpeers.built = map[string]string{}
	}
	cpeers.built[prog] = bin
	return bin, nil
}

func compileC(prog string, src []byte) (string, error) {
	cc, err := cCompiler()
	if err != nil {
		return "", err
	}
	name := filepath.Base(cc[0])
	if cpeers.dir == "" {
		// Named like everything else this process leaves in the temporary
		// directory, so that leftovers finds it if removeCPeers is skipped.
		if cpeers.dir, err = os.MkdirTemp("", uniqueName("cpeers")); err != nil {
			return "", err
		}
	}
	c := filepath.Join(cpeers.dir, prog+".c")
	bin := filepath.Join(cpeers.dir, prog)
	if err := os.WriteFile(c, src, 0o644); err != nil {
		return "", err
	}
	// The flags of the peers folder's C Makefile.
	argv := append(cc[1:len(cc):len(cc)], "-O2", "-Wall", "-Wextra", "-pthread", "-o", bin, c)
	out, err := exec.Command(cc[0], argv...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s failed to compile %s.c: %v: %s", name, prog, err, strings.Join(strings.Fields(string(out)), " "))
	}
	if len(bytes.TrimSpace(out)) > 0 { // warnings
		prefixWriter{os.Stderr, "# " + name + ": "}.Write(out)
	}
	return bin, nil
}

// cCompiler returns the C compiler and its own arguments: $CC if set (as
// make splits it: "gcc -m64"), else cc, else gcc.
func cCompiler() ([]string, error) {
	var tried []string
	if cc := strings.Fields(os.Getenv("CC")); len(cc) > 0 {
		if p, err := exec.LookPath(cc[0]); err == nil {
			return append([]string{p}, cc[1:]...), nil
		}
		tried = append(tried, "$CC="+cc[0])
	}
	for _, cc := range []string{"cc", "gcc"} {
		if p, err := exec.LookPath(cc); err == nil {
			return []string{p}, nil
		}
		tried = append(tried, cc)
	}
	return nil, fmt.Errorf("no C compiler found in PATH (tried %s)", strings.Join(tried, ", "))
}

// removeCPeers removes the temporary directory of the C peers.
func removeCPeers() {
	cpeers.Lock()
	defer cpeers.Unlock()
	if cpeers.dir != "" {
		os.RemoveAll(cpeers.dir)
		cpeers.dir = ""
		cpeers.built = nil
	}
}
