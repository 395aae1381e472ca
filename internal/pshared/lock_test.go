//go:build darwin || freebsd || linux

package pshared

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLockExclusive: 5 concurrent "pshared lock" runs of a command that
// writes a start and an end marker to one file, with a pause between: the
// markers never interleave.
func TestLockExclusive(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, `
		for i in 1 2 3 4 5; do
			(pshared lock L -- sh -c 'echo "start $$" >> out; sleep 0.05; echo "end $$" >> out' || echo "fail $?" >> out) &
		done
		wait
	`).want(t, "5 × pshared lock", exitOK, "^$")
	out, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10:\n%s", len(lines), out)
	}
	for i := 0; i < len(lines); i += 2 {
		start, end := strings.TrimPrefix(lines[i], "start "), strings.TrimPrefix(lines[i+1], "end ")
		if start == lines[i] || end == lines[i+1] || start != end {
			t.Fatalf("commands overlapped at line %d:\n%s", i+1, out)
		}
	}
}

// TestLockBusy: while H holds the lock, -w 0.2 times out and -n gives up,
// both with status 1 (or -E's); neither waits for H, which releases only
// after they returned. Then -n succeeds.
func TestLockBusy(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	h := startHolder(t, env, "lock L")
	sh(t, dir, env, "pshared lock -w 0.2 L -- echo ran").want(t, "-w 0.2", exitConflict, "^$")
	sh(t, dir, env, "pshared lock -n L -- echo ran").want(t, "-n", exitConflict, "^$")
	sh(t, dir, env, "pshared lock -w 0 L -- echo ran").want(t, "-w 0", exitConflict, "^$")
	sh(t, dir, env, "pshared lock -E 75 -n L -- echo ran").want(t, "-E 75 -n", 75, "^$")
	sh(t, dir, env, "pshared lock L -v -n -- echo ran").want(t, "-v -n after NAME", exitConflict,
		`lock "L" is held by pid `+strconv.Itoa(h.cmd.Process.Pid))
	sh(t, dir, env, "pshared lock --timeout=0.1 --verbose L -- echo ran").want(t, "--timeout --verbose", exitConflict, "timed out after 0.1s")
	h.release(t)
	r := sh(t, dir, env, "pshared lock -n L -- echo ran")
	r.want(t, "-n on a free lock", exitOK, "^$")
	if r.stdout != "ran\n" {
		t.Errorf("command output %q", r.stdout)
	}
}

// TestLockHolderKilled: H holds the lock and is killed with -9. Its command
// is killed with it; the next caller proceeds at once, told on stderr that
// H died; the one after it is told nothing. (The pid of H is named only if
// the library still knows it: attaching to the segment may reuse H's
// process table entry before the lock is taken over.)
func TestLockHolderKilled(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	h := startHolder(t, env, "lock L")
	h.kill(t)
	waitGone(t, h.inner)
	r := sh(t, dir, env, "pshared lock L -- echo ran")
	r.want(t, "lock after the holder was killed", exitOK,
		`^pshared: lock "L": the previous holder( \(pid `+strconv.Itoa(h.cmd.Process.Pid)+`\))? died while holding it; proceeding\n$`)
	if r.stdout != "ran\n" {
		t.Errorf("command output %q", r.stdout)
	}
	sh(t, dir, env, "pshared lock L -- true").want(t, "the lock after", exitOK, "^$")

	// The same with -n.
	h = startHolder(t, env, "lock L")
	h.kill(t)
	sh(t, dir, env, "pshared lock -n L -- true").want(t, "-n after the holder was killed", exitOK,
		`the previous holder( \(pid `+strconv.Itoa(h.cmd.Process.Pid)+`\))? died`)
}

// TestLockExitStatus: COMMAND's status passes through; a command that is
// missing or not executable gives 127 or 126, as in a shell; one killed by
// a signal N gives 128+N.
func TestLockExitStatus(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, dir, env, "pshared lock L -- sh -c 'exit 42'").want(t, "exit 42", 42, "^$")
	sh(t, dir, env, "pshared lock L -- no-such-command-xyz").want(t, "missing command", exitNotFound, "command not found")
	sh(t, dir, env, "pshared lock L -- ./no-such-file").want(t, "missing file", exitNotFound, "command not found")
	sh(t, dir, env, "pshared lock L -- ./noexec").want(t, "not executable", exitCannotRun, "cannot execute")
	sh(t, dir, env, "pshared lock L -- sh -c 'kill -TERM $$'").want(t, "killed by SIGTERM", 128+15, "^$")
	// A command that is not found does not wait for the lock.
	startHolder(t, env, "lock L")
	sh(t, dir, env, "pshared lock L -- no-such-command-xyz").want(t, "missing command, lock held", exitNotFound, "command not found")
}

// TestLockNameIsSemaphore: lock and sem names share one segment.
func TestLockNameIsSemaphore(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, "pshared sem S -- true").want(t, "sem S", exitOK, "^$")
	sh(t, dir, env, "pshared lock S -- true").want(t, "lock S", exitError, `"S" is not a mutex`)
	sh(t, dir, env, "pshared lock --segment ../x L -- true").want(t, "bad segment name", exitError, "invalid name")
}
