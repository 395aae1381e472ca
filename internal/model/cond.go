package model

// CondModel will be the Cond wait protocol (cond.go).
//
// TODO(cond): Cond is being redesigned (a generation-based Broadcast, and
// at most as many signals outstanding as there are waiters); model it once
// that design is settled. What it needs is here already:
//
//   - Seq, to give the sequence and generation words a few bits (3 is
//     enough for a run of a handful of Signals) so that wrap-around is
//     reachable, and to compare them for equality only;
//   - Futex, for sleeping on the sequence word and the holders' live words
//     with futex_waitv, and for every choice of whom a FUTEX_WAKE wakes;
//   - Budget and the env events of MutexModel (kill, cancel, Close), whose
//     code can be copied, and MutexModel itself for the mutex a waiter
//     releases and reacquires (its steps keep their "mutex." labels);
//   - Check, for "signals ≤ waiters" and "a signal never goes to a waiter
//     that cannot take it while another could" in every state, and Stuck,
//     for a waiter asleep while a signal meant for it is pending.
type CondModel struct{}

// Steps returns the labels of the model's code steps: none yet.
func (m *CondModel) Steps() []string { return nil }
