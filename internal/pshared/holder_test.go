//go:build darwin || freebsd || linux

package pshared

import (
	"strconv"
	"strings"
	"testing"
)

// TestHolder: pshared holder prints the pid of the process holding a lock
// (pshared itself, which holds it for its command), or of each holder of
// semaphore permits, and exits 1 when the lock is free or its holder died.
func TestHolder(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, "pshared holder L").want(t, "holder of a lock in no segment yet", 3, "no segment")

	h := startHolder(t, env, "lock L")
	r := sh(t, dir, env, "pshared holder L")
	r.want(t, "holder of a held lock", 0, "^$")
	if got := strings.TrimSpace(r.stdout); got != strconv.Itoa(h.cmd.Process.Pid) {
		t.Errorf("holder of a held lock: %q, want pshared's pid %d", got, h.cmd.Process.Pid)
	}
	sh(t, dir, env, "pshared holder nosuch").want(t, "holder of a name not in the segment", 3, "no such object")
	h.release(t)
	r = sh(t, dir, env, "pshared holder L")
	r.want(t, "holder of a free lock", 1, "^$")
	if r.stdout != "" {
		t.Errorf("holder of a free lock printed %q", r.stdout)
	}

	h = startHolder(t, env, "lock L")
	h.kill(t) // pshared dies holding L; its command goes on until stdin closes
	h.stdin.Close()
	sh(t, dir, env, "pshared holder L").want(t, "holder of a lock whose holder died", 1, "which is dead")

	s := startHolder(t, env, "sem -j 3 S")
	r = sh(t, dir, env, "pshared holder S")
	r.want(t, "holder of a semaphore", 0, "^$")
	if got, want := strings.TrimSpace(r.stdout), strconv.Itoa(s.cmd.Process.Pid)+" 1"; got != want {
		t.Errorf("holder of a semaphore: %q, want %q", got, want)
	}
	s.release(t)
	sh(t, dir, env, "pshared holder S").want(t, "holder of an idle semaphore", 1, "^$")
	sh(t, dir, env, "pshared holder").want(t, "holder without NAME", 2, "NAME")
}
