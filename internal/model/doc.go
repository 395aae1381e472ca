// Package model is an explicit-state model checker for processshared's wait
// protocols: the Mutex (with the process-local token, owner-death wake-ups,
// Close and the reuse of a dead process's slot), the Semaphore and the Cond
// (see CondModel: one goroutine per process, its mutex abstracted to its
// fast paths).
//
// It is a separate model, not the code run under a scheduler: each protocol
// is written again as a transition system whose steps are the code's shared
// memory accesses and system calls, one step each, named by a label
// ("mutex.lock.watch_cas"). The code carries the same labels as `// step:`
// comments, and a test checks that the two lists agree (see Labels below).
//
// # Exploration
//
// Explore visits every reachable state breadth first, so that a violation
// comes with a shortest trace, and keeps a visited set of the states
// themselves (they are small comparable values; Options.HashCompact keeps
// 64-bit hashes instead, for deep runs). In every state it checks the
// model's invariants (Model.Check). In every state where only environment
// events are enabled — the protocol has nothing left to do — it calls
// Model.Stuck: a goroutine still asleep or parked there is a lost wake-up
// if what it waits for is available (the lock is free or its holder dead,
// the value covers its request, the token is free), and a deadlock or a
// legitimate wait otherwise. A violation prints as numbered steps, each
// with its actor, label, what it did and the whole state after it:
//
//  7. P1.G0   mutex.lock.set_waiters
//     M0=P0g0|W | L0=t1|LW g0 L1=t1 g0 | P0.G0@op(unlock M0) cs=01 | P1.G0@waitv(lock M0) tok0=G0 | budget k1 c1 x1 a1
//
// The environment acts at every step, within a budget per run: SIGKILL of
// a process, cancellation of a goroutine's context, Close of a process's
// handle, and (Mutex) a newcomer process attaching to a dead process's
// slot. The kernel's reaction to a death (the robust-list walk) is a step of
// its own, so that others run between the death and the walk.
//
// Checked, in every state: mutual exclusion, and that a goroutine in a
// critical section is the one the lock word names; that a goroutine taking a
// mutex whose holder died is told (ErrOwnerDead), and never told falsely;
// that Unlock never finds its lock taken; that permits are conserved (value
// plus every held entry equals the permits created) and a live process's
// held entry is what its goroutines hold. In quiescent states: no lost
// wake-up, no deadlock, no sleeper left behind by Close; for the Semaphore
// this is also where "a wake-up never stays with a waiter that cannot use
// it while another could" is checked, since passing a wake-up on takes
// steps. Liveness beyond that (livelock, starvation) is not checked.
//
// # Kernel semantics assumed
//
// FUTEX_WAIT and futex_waitv compare every word with its expected value and
// enqueue the caller on all of them atomically with respect to FUTEX_WAKE,
// or return EAGAIN. FUTEX_WAKE(w, n) wakes up to n sleepers of w, any of
// them (every choice is explored, not the kernel's order), and a sleeper on
// several words is woken once. A wake-up that finds no sleeper is lost.
// The robust list (Documentation/locking/robust-futex-ABI, and
// handle_futex_death in kernel/futex/core.c): when a process dies, for the
// live word on its keeper's list, if the word's tid bits are the keeper's
// tid, the kernel writes FUTEX_OWNER_DIED | (old & FUTEX_WAITERS), clearing
// the tid, and wakes one waiter if FUTEX_WAITERS was set. (Its wake-up of a
// list_op_pending word that is 0 is not modelled: the protocols do not rely
// on it.) Cancellation and Close fire a sleeper's private cancellation word,
// which wakes exactly that sleeper.
//
// # Abstractions
//
//   - Words are 8 bits. A lock word is the holder's identity, slot+1 (2 bits)
//     and the slot's generation (GenBits, 2 by default), plus the waiters
//     bit W. A live word is tid (4 bits) | LW | DIED. The Semaphore's waiters
//     count has 3 bits. Counters are narrow so that wrap-around is
//     reachable: TestMutexGenerationWrap reuses a slot until a 1-bit
//     generation comes back. Counters are compared for equality only.
//   - Every process has keeper tid 1, as processes in fresh PID namespaces
//     do (MutexConfig.DistinctTIDs gives them distinct tids), so no step may
//     tell processes apart by tid.
//   - A process's Close marks its live word dead by setting DIED itself while
//     keeping its tid (the word is still on its robust list and still the
//     kernel's to report), wakes the word's sleepers, and only then clears it
//     and unlinks it; a kill at any point of Close still wakes a waiter.
//   - The spin before a sleep is folded into the fast path (both are CAS
//     attempts outside Segment.enter). Registering the cancellation word,
//     the ctx.Err check and futex_waitv are one step: a cancellation between
//     them changes the cancellation word, so futex_waitv would return at
//     once, which is what the merged step does.
//   - The Semaphore's internal lock is atomic: each "sem.acquire.locked" or
//     "sem.release.locked" step is one critical section of it. Its journal
//     makes a critical section all-or-nothing when its holder is killed, so
//     the model loses no behaviour of the value and held entries there.
//   - Go's channel hand-off is modelled: a released token goes to one of the
//     goroutines parked on it (any), or becomes free; a select with several
//     ready cases may take any.
//   - A goroutine still in a critical section while its own process closes
//     the segment uses the segment during Close, which the API forbids: it
//     leaves the mutual-exclusion count when Close begins and stops when the
//     mapping goes. Lost wake-ups it causes to other processes still count.
//   - Newcomers attach and may be killed; they take no locks. Two newcomers
//     racing for one slot are not modelled. Deadlines are cancellations.
//     Polling (no futex_waitv, no robust list) is not modelled. The
//     inconsistent flag's persistence until MarkConsistent is not modelled:
//     the check is that the first holder after a death is told.
//
// # Fixes the model makes, and their toggles
//
// The model is the design with the fixes below; each MutexConfig or
// SemaphoreConfig field named Bug… reverts one, and TestMutexBugs and
// TestSemaphoreBugs show the violation (with its trace) each one lets in,
// and that the same configuration passes without it. Bug2, Bug3 and Bug4
// are the lost wake-ups of the issue; BugToken is the token's; the others
// were found by this checker in the design it was given, and the code must
// follow the model there too:
//
//   - BugDetachKill: Close cleared the live word before waking its sleepers.
//   - BugLiveABA: the sleep did not include the holder's slot generation,
//     so the live word could come back to the expected value after the
//     slot's reuse (with colliding tids) and the sleep outlasted the
//     newcomer's wake-up.
//   - BugWatchOwner (Mutex) and BugWatchHolders (Semaphore): a waiter
//     watched the death of the holders it saw only. A third process that
//     takes the lock after, or consumes the wake-up and dies before acting
//     on it, or dies between raising the value and its futex_wake, then
//     leaves the waiter asleep. Waiters watch every other attached process.
//   - BugTokenYield (Semaphore): the holder of the token that finds too few
//     permits, at its last look before sleeping, hands the token to a
//     goroutine of its process waiting for it whose request the value
//     covers; that goroutine registers before it retries the take once and
//     only then parks.
//   - Not toggles: Release and the Acquire fast path hold the segment
//     (Segment.enter), so that Close waits for them.
//
// # Running
//
// go test ./internal/model runs the CI configurations (2 processes × 1
// goroutine, one of each environment event, plus the bug configurations;
// for the Cond also 3 processes × 1 goroutine)
// in seconds, -race included. PSMODEL_DEEP=1 adds 3 × 1 and 2 × 2
// configurations with hash compaction (about a minute and 1 GB);
// PSMODEL_MAXSTATES bounds each run (default 20 million). -v shows the
// state counts and the counterexample traces.
//
// # Labels
//
// A label is protocol.operation.step ("sem.acquire.pass_wake"); "token."
// and "wait." steps are the shared helpers (local.acquire, Segment.sleep),
// "proc." steps are attach and Close. MutexModel.Steps and
// SemaphoreModel.Steps list the code steps; "env." events, "kernel." steps
// and "fault" (a goroutine touching an unmapped segment) are not code.
// TestStepsAreTaken checks that Steps lists exactly the labels the
// explorations take. TestLabelsMatchCode checks, for the protocols listed
// in its table checkedProtocols, that each model step appears as a comment
// `// step: <label>` (several labels: `// step: a, b`) in the root package's
// non-test files, at the line that does it, and that each such comment names
// a model step.
package model
