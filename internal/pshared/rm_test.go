//go:build darwin || freebsd || linux

package pshared

import "testing"

// TestRmObject: pshared rm --object deletes objects inside a segment,
// refuses a lock that a live process holds unless -f, and frees the name:
// the holder keeps its old lock and releases it, and a new lock of that
// name is another object.
func TestRmObject(t *testing.T) {
	seg, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, "pshared lock idle -- true").want(t, "lock idle", exitOK, "^$")
	sh(t, dir, env, "pshared rm --object "+seg+" idle").want(t, "rm --object of a free lock", exitOK, "^$")
	sh(t, dir, env, "pshared rm --object "+seg+" idle").want(t, "rm --object of a deleted lock", exitError, "no such object")
	sh(t, dir, env, "pshared rm --object -f "+seg+" idle").want(t, "rm --object -f of a deleted lock", exitOK, "^$")
	sh(t, dir, env, "pshared rm --object "+seg+"-nosuch x").want(t, "rm --object in a missing segment", exitError, "no such segment")
	sh(t, dir, env, "pshared rm --object "+seg).want(t, "rm --object without OBJECT", exitUsage, "OBJECT")
	sh(t, dir, env, "pshared rm --object --stale "+seg+" x").want(t, "rm --object --stale", exitUsage, "do not go together")

	h := startHolder(t, env, "lock L")
	sh(t, dir, env, "pshared rm --object "+seg+" L").want(t, "rm --object of a held lock", exitConflict, "held by live process")
	sh(t, dir, env, "pshared holder L").want(t, "holder after a refused rm", exitOK, "^$")
	s := startHolder(t, env, "sem -j 2 S")
	sh(t, dir, env, "pshared rm --object "+seg+" S").want(t, "rm --object of a semaphore with a permit held", exitConflict, "held by live process")
	s.release(t)
	sh(t, dir, env, "pshared rm --object "+seg+" S").want(t, "rm --object of an idle semaphore", exitOK, "^$")

	sh(t, dir, env, "pshared rm --object -f "+seg+" L").want(t, "rm --object -f of a held lock", exitOK, "^$")
	sh(t, dir, env, "pshared holder L").want(t, "holder of a deleted lock", exitError, "no such object")
	// The name is free: a new L is free although the old one is held.
	sh(t, dir, env, "pshared lock -n L -- true").want(t, "lock -n of the new L", exitOK, "^$")
	h.release(t)
}
