//go:build darwin || freebsd || linux

package pshared

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestLsInspectRm sets up, with pshared itself, a segment in use (a lock
// and a permit held by live processes) and a stale one (its only process,
// holding a lock, was killed with -9), and checks what ls and inspect say,
// that rm --stale removes the stale one only, and that rm refuses a
// segment in use.
func TestLsInspectRm(t *testing.T) {
	live, liveEnv := segEnv(t)
	stale, staleEnv := segEnv(t)
	dir := t.TempDir()
	locker := startHolder(t, liveEnv, "lock L")
	permit := startHolder(t, liveEnv, "sem -j 2 S")
	dead := startHolder(t, staleEnv, "lock L")
	dead.kill(t)
	pattern := fmt.Sprintf("'%s%d-*-%s'", shmtest.Prefix, os.Getpid(), t.Name())

	r := sh(t, dir, nil, "pshared ls --json "+pattern)
	r.want(t, "ls --json", exitOK, "^$")
	var list []jsonSegment
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	segs := map[string]jsonSegment{}
	for _, s := range list {
		segs[s.Name] = s
	}
	if len(list) != 2 {
		t.Fatalf("ls --json: %d segments, want 2:\n%s", len(list), r.stdout)
	}
	l, s := segs[live], segs[stale]
	if l.Stale || len(l.Processes) != 2 || !l.Processes[0].Alive || !l.Processes[1].Alive || l.Mode != "0600" {
		t.Errorf("segment in use: %+v", l)
	}
	if len(l.Objects) != 2 || l.Objects[0].Mutex == nil || l.Objects[1].Semaphore == nil {
		t.Fatalf("segment in use: objects %+v", l.Objects)
	}
	if m := l.Objects[0].Mutex; !m.Locked || m.HolderPID != locker.cmd.Process.Pid || !m.HolderAlive {
		t.Errorf("lock held by a live pshared: %+v", m)
	}
	if sem := l.Objects[1].Semaphore; sem.Value != 1 || sem.Max != 2 || len(sem.Holders) != 1 ||
		sem.Holders[0] != (jsonHolder{PID: permit.cmd.Process.Pid, PIDNamespace: ps.OwnPIDNamespace(), Alive: true, Count: 1}) {
		t.Errorf("semaphore with one permit held: %+v", sem)
	}
	if !s.Stale || len(s.Processes) != 1 || s.Processes[0].Alive || s.Processes[0].PID != dead.cmd.Process.Pid {
		t.Errorf("stale segment: %+v", s)
	}
	if len(s.Objects) != 1 || s.Objects[0].Mutex == nil {
		t.Fatalf("stale segment: objects %+v", s.Objects)
	}
	if m := s.Objects[0].Mutex; !m.Locked || m.HolderAlive || m.HolderPID != dead.cmd.Process.Pid {
		t.Errorf("lock held by a killed pshared: %+v", m)
	}

	r = sh(t, dir, nil, "pshared ls "+pattern)
	r.want(t, "ls", exitOK, "^$")
	deadPID, lockerPID := strconv.Itoa(dead.cmd.Process.Pid), strconv.Itoa(locker.cmd.Process.Pid)
	for _, want := range []string{
		`(?m)^SEGMENT +SIZE +MODE +OWNER +CREATOR +STATUS$`,
		`(?m)^` + stale + ` +4 MiB +-rw------- .* stale: 1 process dead, none alive$`,
		`(?m)^    mutex +L +held by pid ` + deadPID + ` \(dead\)$`,
		`(?m)^` + live + ` .* in use: 2 processes alive, 0 dead$`,
		`(?m)^    mutex +L +held by pid ` + lockerPID + ` \(alive\)$`,
		`(?m)^    semaphore +S +1 of 2 free; held by pid \d+ ×1 \(alive\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("ls output does not match %s:\n%s", want, r.stdout)
		}
	}

	r = sh(t, dir, nil, "pshared inspect "+stale)
	r.want(t, "inspect", exitOK, "^$")
	for _, want := range []string{
		`(?m)^status +stale: 1 process dead, none alive$`,
		`(?m)^` + deadPID + ` +dead +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +0$`,
		`(?m)^mutex +L +64 +held by pid ` + deadPID + ` \(dead\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("inspect output does not match %s:\n%s", want, r.stdout)
		}
	}
	r = sh(t, dir, nil, "pshared inspect --json "+live)
	r.want(t, "inspect --json", exitOK, "^$")
	var one jsonSegment
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || one.Name != live || len(one.Objects) != 2 {
		t.Errorf("inspect --json: %v\n%s", err, r.stdout)
	}

	sh(t, dir, nil, "pshared rm "+live).want(t, "rm of a segment in use", exitConflict, `in use by live process`)
	r = sh(t, dir, nil, "pshared rm --stale "+pattern)
	r.want(t, "rm --stale", exitOK, "^$")
	if r.stdout != stale+"\n" {
		t.Errorf("rm --stale removed %q, want %s only", r.stdout, stale)
	}
	if _, err := os.Stat(filepath.Join("/dev/shm", live)); err != nil {
		t.Fatalf("rm --stale removed the segment in use: %v", err)
	}
	if _, err := os.Stat(filepath.Join("/dev/shm", stale)); err == nil {
		t.Fatalf("rm --stale left the stale segment")
	}
	locker.release(t)
	permit.release(t)
	sh(t, dir, nil, "pshared rm "+live).want(t, "rm of an idle segment", exitOK, "^$")
	sh(t, dir, nil, "pshared rm "+live).want(t, "rm of a missing segment", exitError, "no such segment")
	sh(t, dir, nil, "pshared rm -f "+live).want(t, "rm -f of a missing segment", exitOK, "^$")
	sh(t, dir, nil, "pshared inspect "+live).want(t, "inspect of a missing segment", exitError, "no such file")
	sh(t, dir, nil, "pshared ls "+pattern).want(t, "ls of nothing", exitOK, "^$")

	// Files that are not segments are left alone.
	other := shmtest.Name(t)
	if err := os.WriteFile(filepath.Join("/dev/shm", other), []byte(strings.Repeat("x", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, dir, nil, "pshared rm "+other).want(t, "rm of a foreign file", exitError, "not a processshared segment")
	sh(t, dir, nil, "pshared rm -f "+other).want(t, "rm -f of a foreign file", exitError, "not a processshared segment")
	sh(t, dir, nil, "pshared inspect "+other).want(t, "inspect of a foreign file", exitError, "not a processshared segment")
	if r := sh(t, dir, nil, "pshared ls "+pattern); r.stdout != "no segments\n" {
		t.Errorf("ls lists a foreign file:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join("/dev/shm", other)); err != nil {
		t.Errorf("the foreign file is gone: %v", err)
	}
}
