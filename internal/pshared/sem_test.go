//go:build darwin || freebsd || linux

package pshared

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSemLimit: 6 concurrent "pshared sem -j 2" runs of a command that
// records its start and end in a file: reading the file in order, never
// more than 2 run at once.
func TestSemLimit(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, `
		for i in 1 2 3 4 5 6; do
			(pshared sem -j 2 S -- sh -c 'echo start >> out; sleep 0.1; echo end >> out' || echo "fail $?" >> out) &
		done
		wait
	`).want(t, "6 × pshared sem -j 2", exitOK, "^$")
	out, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	running, most, ended := 0, 0, 0
	for _, line := range strings.Fields(string(out)) {
		switch line {
		case "start":
			running++
			most = max(most, running)
		case "end":
			running--
			ended++
		default:
			t.Fatalf("unexpected line %q:\n%s", line, out)
		}
	}
	if most > 2 || ended != 6 {
		t.Fatalf("%d commands ran at once (want at most 2), %d ended (want 6):\n%s", most, ended, out)
	}
	t.Logf("at most %d at once", most)

	r := sh(t, dir, env, "pshared sem -j 3 S -- true")
	r.want(t, "-j 3 on a semaphore of 2", exitError, `sem "S" exists with 2 permits, not 3: use -j 2`)
}

// TestSemBusy: with both permits held, -n and -w give up with status 1;
// a permit held by a pshared killed with -9 is taken back by the next
// caller.
func TestSemBusy(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	a := startHolder(t, env, "sem -j 2 S")
	b := startHolder(t, env, "sem -j 2 S")
	sh(t, dir, env, "pshared sem -j 2 -n S -- echo ran").want(t, "-n", exitConflict, "^$")
	sh(t, dir, env, "pshared sem -j 2 -w 0.2 S -- echo ran").want(t, "-w 0.2", exitConflict, "^$")
	sh(t, dir, env, "pshared sem -j 2 -E 9 -v -n S -- echo ran").want(t, "-E 9 -v -n", 9, `all 2 permits are taken`)
	b.kill(t)
	waitGone(t, b.inner)
	r := sh(t, dir, env, "pshared sem -j 2 S -- echo ran")
	r.want(t, "sem after a holder was killed", exitOK, "^$")
	if r.stdout != "ran\n" {
		t.Errorf("command output %q", r.stdout)
	}
	a.release(t)
	sh(t, dir, env, "pshared sem -j 2 -n S -- sh -c 'exit 7'").want(t, "exit status", 7, "^$")
	sh(t, dir, env, "pshared sem -j 2 S -- no-such-command-xyz").want(t, "missing command", exitNotFound, "command not found")
}
