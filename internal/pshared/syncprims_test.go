//go:build darwin || freebsd || linux

package pshared

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"

	ps "github.com/processshared/processshared"
)

// TestLsInspectSync: ls and inspect show an Event, a Barrier, a WaitGroup
// and a Once, in words and in JSON.
func TestLsInspectSync(t *testing.T) {
	name, _ := segEnv(t)
	seg, err := ps.Create(name, 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	e, err1 := ps.NewEvent(seg, "E", true)
	b, err2 := ps.NewBarrier(seg, "B", 3)
	g, err3 := ps.NewWaitGroup(seg, "G")
	o, err4 := ps.NewOnce(seg, "O")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	e.Set()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.WaitContext(ctx) // breaks it
	g.Add(2)
	o.Do(func(bool) error { return nil })

	dir := t.TempDir()
	r := sh(t, dir, nil, "pshared ls "+name)
	r.want(t, "ls", exitOK, "^$")
	for _, want := range []string{
		`(?m)^    event +E +set \(auto-reset\)$`,
		`(?m)^    barrier +B +0 of 3 arrived; 1 joined; broken$`,
		`(?m)^    waitgroup +G +2 outstanding; added by pid \d+ ×2 \(alive\)$`,
		`(?m)^    once +O +done$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("ls output does not match %s:\n%s", want, r.stdout)
		}
	}
	r = sh(t, dir, nil, "pshared inspect --json "+name)
	r.want(t, "inspect --json", exitOK, "^$")
	var js jsonSegment
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.stdout)
	}
	byName := map[string]jsonObject{}
	for _, o := range js.Objects {
		byName[o.Name] = o
	}
	if ev := byName["E"].Event; ev == nil || !ev.Set || !ev.AutoReset || byName["E"].Kind != "event" {
		t.Errorf("event: %+v", byName["E"])
	}
	if br := byName["B"].Barrier; br == nil || br.Parties != 3 || br.Joined != 1 || !br.Broken {
		t.Errorf("barrier: %+v", br)
	}
	if wg := byName["G"].WaitGroup; wg == nil || wg.Count != 2 || len(wg.Holders) != 1 || wg.Holders[0].Count != 2 {
		t.Errorf("waitgroup: %+v", wg)
	}
	if on := byName["O"].Once; on == nil || !on.Done {
		t.Errorf("once: %+v", on)
	}
}
