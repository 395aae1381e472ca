package model

import (
	"strings"
	"testing"
)

// toyLock is two threads taking a spin lock: with split set, a load and a
// store (check, then set), which is not a lock at all; otherwise a CAS.
type toyLock struct{ split bool }

type toyState struct {
	word uint8
	pc   [2]uint8 // 0 idle, 1 loaded free (split only), 2 in CS, 3 done
}

func (m toyLock) Init() toyState { return toyState{} }

func (m toyLock) Next(s *toyState, trace bool, steps []Step[toyState]) []Step[toyState] {
	for t := range 2 {
		n := *s
		actor := []string{"T0", "T1"}[t]
		switch s.pc[t] {
		case 0:
			switch {
			case m.split && s.word == 0:
				n.pc[t] = 1
			case !m.split && s.word == 0:
				n.word, n.pc[t] = 1, 2
			default:
				continue // spin: no new state
			}
			steps = append(steps, Step[toyState]{Actor: actor, Label: "toy.lock", Next: n})
		case 1:
			n.word, n.pc[t] = 1, 2
			steps = append(steps, Step[toyState]{Actor: actor, Label: "toy.set", Next: n})
		case 2:
			n.word, n.pc[t] = 0, 3
			steps = append(steps, Step[toyState]{Actor: actor, Label: "toy.unlock", Next: n})
		}
	}
	return steps
}

func (m toyLock) Check(s *toyState) error {
	if s.pc[0] == 2 && s.pc[1] == 2 {
		return Fail("mutual-exclusion", "both threads in the critical section")
	}
	return nil
}

func (m toyLock) Stuck(s *toyState) error {
	for t := range 2 {
		if s.pc[t] != 3 {
			return Fail("deadlock", "T%d cannot finish", t)
		}
	}
	return nil
}

func (m toyLock) Format(s *toyState) string { return "" }

func TestExploreToyLock(t *testing.T) {
	r := Explore[toyState](toyLock{}, Options{})
	t.Logf("CAS lock: %v", r)
	if len(r.Violations) != 0 {
		t.Fatalf("CAS lock: %v", r.Violations[0])
	}
	// The states: idle/idle, one in CS (2), one done and the other idle
	// or in CS (4), both done.
	if r.States != 8 {
		t.Errorf("CAS lock: %d states, want 8", r.States)
	}

	r = Explore[toyState](toyLock{split: true}, Options{})
	t.Logf("check-then-set lock: %v", r)
	if len(r.Violations) != 1 || r.Violations[0].Kind != "mutual-exclusion" {
		t.Fatalf("check-then-set lock: want a mutual exclusion violation, got %v", r.Violations)
	}
	v := r.Violations[0]
	t.Log(v.String())
	// Breadth first: the shortest trace, both load the free word, both set it.
	if len(v.Trace) != 5 {
		t.Errorf("trace of %d steps, want 4 after init", len(v.Trace)-1)
	}
	if !strings.Contains(v.String(), "toy.set") {
		t.Errorf("trace does not show the steps:\n%v", v)
	}
}

func TestFutexWakes(t *testing.T) {
	var f Futex
	f.Sleep(0, 1<<0)
	f.Sleep(1, 1<<0|1<<3)
	f.Sleep(2, 1<<3)
	f.Sleep(4, 1<<0)
	for _, tc := range []struct{ w, n, choices int }{
		{0, 1, 3}, // any one of threads 0, 1, 4
		{0, 2, 3},
		{0, 3, 1},
		{0, 9, 1},
		{3, 1, 2},
		{5, 1, 1}, // nobody sleeps on word 5: one choice, nobody woken
		{0, 0, 1},
	} {
		n := 0
		f.Wakes(tc.w, tc.n, func(woken uint16, after Futex) {
			n++
			for th := range MaxThreads {
				if woken&(1<<th) != 0 && after.Asleep(th) {
					t.Errorf("wake(%d, %d): thread %d woken but still asleep", tc.w, tc.n, th)
				}
			}
			if tc.w == 0 && woken&(1<<1) != 0 && after.Sleepers(3)&(1<<1) != 0 {
				t.Errorf("thread 1, woken on word 0, still queued on word 3")
			}
		})
		if n != tc.choices {
			t.Errorf("wake(%d, %d): %d choices, want %d", tc.w, tc.n, n, tc.choices)
		}
	}
	if got := f.WakeAll(0); got != 1<<0|1<<1|1<<4 {
		t.Errorf("WakeAll woke %b", got)
	}
	if f.Asleep(1) || !f.Asleep(2) {
		t.Errorf("after WakeAll(0): %v", f.On)
	}
}

func TestRobustDeath(t *testing.T) {
	for _, tc := range []struct {
		live, tid, want uint8
		wake            bool
	}{
		{1, 1, liveDied, false},
		{1 | liveWaiters, 1, liveDied | liveWaiters, true},
		{1 | liveDied | liveWaiters, 1, liveDied | liveWaiters, true}, // marked by Close, tid kept: still the kernel's
		{0, 1, 0, false}, // detached
		{liveDied | liveWaiters, 1, liveDied | liveWaiters, false}, // already dead
		{2 | liveWaiters, 1, 2 | liveWaiters, false},               // someone else's
	} {
		live := tc.live
		if wake := robustDeath(&live, tc.tid); live != tc.want || wake != tc.wake {
			t.Errorf("robustDeath(%s, %d) = %s, %v; want %s, %v", formatLive(tc.live), tc.tid, formatLive(live), wake, formatLive(tc.want), tc.wake)
		}
	}
}

func TestSeq(t *testing.T) {
	q := Seq{Bits: 3}
	if q.Add(7, 1) != 0 || q.Sub(0, 1) != 7 || q.Add(5, 6) != 3 {
		t.Errorf("3-bit sequence does not wrap: %d %d %d", q.Add(7, 1), q.Sub(0, 1), q.Add(5, 6))
	}
}

// TestExploreHashCompact checks that hash compaction explores what the
// exact visited set explores (a collision among so few states would be a
// bug in the hashing, not bad luck).
func TestExploreHashCompact(t *testing.T) {
	m, err := NewMutexModel(MutexConfig{Procs: [][]Script{{{Locks: []int{0}, Cancel: true}}, {{Locks: []int{0}}}}, Budget: Budget{Kill: 1, Cancel: 1}})
	if err != nil {
		t.Fatal(err)
	}
	a := Explore[MutexState](m, Options{})
	b := Explore[MutexState](m, Options{HashCompact: true})
	t.Logf("exact: %v; compact: %v", a, b)
	if a.States != b.States || a.Transitions != b.Transitions || a.Quiescent != b.Quiescent {
		t.Errorf("exact %v, compact %v", a, b)
	}
}
