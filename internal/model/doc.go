// Package model is an explicit-state model checker for processshared's wait
// protocols: the Mutex (with the process-local token, owner-death wake-ups,
// Close and the reuse of a dead process's slot), the Semaphore and the Cond
// (see CondModel: one goroutine per process, its mutex abstracted to its
// fast paths), the Queue, the deletion of objects (ObjModel: handles
// that pin an object's extent, Delete, and the reuse of the extent by a
// new object), and the bookkeeping of owned permits (OwnedModel: the
// Semaphore's holder mode and table mode, with kills and Close at every
// step).
//
// It is a separate model, not the code run under a scheduler: each protocol
// is written again as a transition system whose steps are the code's shared
// memory accesses and system calls, one step each, named by a label
// ("wait.watch.cas"). The code carries the same labels as `// step:`
// comments, and a test checks that the two lists agree (see Labels below),
// but for the differences listed under "Where the code differs".
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
// it while another could" is checked: a waiter asleep or parked on the
// token while the value (with dead holders' permits) covers its request.
// A sleep that polls (it could not watch a process) may time out at any
// step, so a state with one is never quiescent. Liveness beyond that
// (livelock, starvation) is not checked.
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
// the tid, and wakes one waiter if FUTEX_WAITERS was set. Its wake-up of
// one waiter on a list_op_pending word whose owner bits are 0 (Linux 5.8
// and later) is modelled only with MutexConfig.PendingWake: the model's
// protocols do not rely on it, the code's Mutex does (armPending).
// Cancellation and Close fire a sleeper's private cancellation word, which
// wakes exactly that sleeper.
//
// # Abstractions
//
//   - Words are 8 bits. A lock word is the holder's identity, slot+1 (2 bits)
//     and the slot's generation (GenBits, 2 by default), plus the waiters
//     bit W. A live word is tid (4 bits) | LW | DIED. The Semaphore's value
//     word is the count (7 bits, which never wrap: Release refuses to
//     overflow) and the sleepers bit S. Counters are narrow so that wrap-around is
//     reachable: TestMutexGenerationWrap reuses a slot until a 1-bit
//     generation comes back. Counters are compared for equality only.
//   - Every process has keeper tid 1, as processes in fresh PID namespaces
//     do (MutexConfig.DistinctTIDs gives them distinct tids), so no step may
//     tell processes apart by tid.
//   - A process's Close is detach's D1–D4 (proc.go, "A handle's release")
//     and the unmap, one step each: proc.close.mark_closed sets DIED in its
//     live word keeping the tid (the word is still on its robust list and
//     still the kernel's to report), proc.close.wake_all wakes the word's
//     sleepers, proc.close.unlink takes it off the list and
//     proc.close.clear zeroes it; proc.close.unmap is Segment.retire. A kill
//     before the unlink still has the kernel mark the word and wake a
//     waiter; a kill between the unlink and the clear leaves the word
//     tid|DIED off the list: dead to every lookup, never claimed again. What
//     Close does before D1 (its closed flag, firing its own cancellation
//     words, waiting for the calls inside Segment.enter) is the env.close
//     event and the first step's wait.
//   - The spin before a sleep is folded into the fast path (both are CASes
//     of a free word, and in Lock both run outside Segment.enter): the
//     spin's CAS carries mutex.lock.fast_cas, and its checks of the closed
//     flag mutex.lock.check_closed. Lock checks closed after its CAS (the CAS
//     may land on Close's placeholder), the model before it; a CAS that
//     reaches the real word just before Close is the model's fast_cas racing
//     env.close, which takes the lock for an identity about to die.
//     LockContext enters the segment before its fast path, so its
//     Segment.enter is both mutex.lock.check_closed and mutex.lock.enter.
//   - Registering the cancellation word (Segment.addCancel), the ctx.Err
//     check and futex_waitv are one step, wait.sleep.waitv, which all three
//     lines carry. A cancellation or Close between them changes the
//     cancellation word, so futex_waitv returns at once, which is what the
//     merged step does. That holds only because the value futex_waitv
//     expects of the cancellation word is the one the word had before
//     addCancel published it (the constant cval in Segment.sleep): had sleep
//     read the word after addCancel, a fire between the two would be in the
//     value read, futex_waitv would sleep, and nothing would wake it. The
//     model, which has no step between registering and sleeping, cannot show
//     that; TestCloseRace (closerace_test.go) found it as a hang in 1 run of
//     12, and commit 751a902 moved the read before the registration.
//   - proc.lookup.live and proc.lookup.gen are the two loads of
//     Segment.lookup, and wait.watch.cas and wait.watch.recheck_gen the CAS
//     and the load of watch; the model takes them for the holder of the lock
//     and, for its fix of BugWatchOwner, for every other attached process
//     (whose watch needs no recheck: the generation is in the sleep).
//   - token.acquire and token.acquire_wait are the two selects of
//     local.acquire, token.release is local.release. armPending and its
//     undo touch only the thread's own robust-list head: with PendingWake
//     the model arms the word from the token to the return, merged into the
//     steps around them; without it (the default) they are not modelled.
//     A goroutine's Segment.exit is merged into the step before it (it
//     touches no shared word; it only lets Close go on), but for
//     sem.acquire.exit, Acquire's return without the token.
//   - The Semaphore's Acquire enters the segment twice, the second time in
//     acquireSlow, nested in the first; both carry sem.acquire.enter. The
//     second can fail only once Close has begun, and then returns ErrClosed
//     holding nothing, which to every other process is the goroutine
//     stopping. Release's Segment.enter is sem.release.enter. The spin is
//     one step, sem.acquire.spin, its last load of the value: it sees
//     enough (and the try after it is sem.acquire.try again) or gives up
//     having seen too few; its spinner gate is not modelled.
//   - The Semaphore's internal lock is a lock held across steps, not a
//     mutexCore (the Mutex model checks that): a goroutine waits while
//     another holds it, the kernel's robust-list walk frees it when its
//     holder dies, and once the waiter's process has begun Close the wait
//     may return ErrClosed (the lock's token select and sleep watch Close).
//     Its journal makes each update of value and held all-or-nothing when
//     the holder is killed, and only the holder changes the count (the
//     sleepers bit aside), so a critical section's reads and updates of
//     them are merged into the step they are in: tryAcquire and Release's
//     critical sections are one step each (sem.acquire.try,
//     sem.acquire.retry, sem.release.locked), and in acquireSlow the
//     lock and first take are sem.acquire.locked, a reclaim goes with the
//     lookup that found its holder dead, and the second take and the
//     unlock go with the step before them. What the lock does not protect,
//     the live words, is read and CASed one step at a time: each lookup of
//     reclaimDead and watchOthers is proc.lookup.live (the Semaphore model
//     has no newcomers, so generation words never change and
//     proc.lookup.gen and wait.watch.recheck_gen are no steps of it), each
//     CAS of a live word wait.watch.cas. reclaimDead only reclaims (the
//     watches are watchOthers'); under BugWatchHolders, the older code, it
//     watches the holders, and a watch whose CAS fails makes the sleep poll
//     (it may time out at any step: kernel.timeout).
//   - The process-local side of the Semaphore's token (local.acquireFor)
//     is token.acquire (its first select), sem.acquire.register (the
//     demand made visible to could, under local.mu), sem.acquire.retry,
//     token.acquire and token.acquire_wait (local.acquire's selects) and
//     sem.acquire.unregister (its deferred undo). local.could is
//     sem.acquire.could, a step of its own after the load whose value it
//     is given (sem.acquire.load_value before a sleep, sem.acquire.load_woken
//     after one).
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
//     the check is that the first holder after a death is told. Not
//     modelled, and so not labelled: TryLock, TryAcquire, Value, the
//     retirement of a slot whose generation is exhausted, the liveness of
//     slots the kernel does not watch (pidAlive), and the process table's
//     high-water mark (proc.go, A0): the models' scans read every slot, and
//     a scan bounded by procHigh is such a scan with its reads of the slots
//     it skips all made when it loaded procHigh, when they were free.
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
//   - Bug2 (Semaphore), lost wake-up 2 of the issue: Release woke one
//     sleeper, which may ask for more than the value or be cancelled, while
//     another sleeper could use it. Release clears the sleepers bit and
//     wakes every sleeping process (at most one sleeper each, the token's
//     holder), so no sleeper needs to pass a wake-up on.
//   - BugTokenYield and BugNoRetry (Semaphore): the holder of the token
//     that finds too few permits, at its last look before sleeping, hands
//     the token to a goroutine of its process waiting for it whose request
//     the value covers (sem.acquire.could); that goroutine registers its
//     demand before it retries the take once and only then parks
//     (sem.acquire.retry). Without either half, a Release between the
//     waiting goroutine's first take and the holder's last look leaves it
//     parked with the value covering it.
//   - BugAttachOrder: the claim of a slot as the code has it (proc.go
//     A1–A3: the live word, then the generation, then clear liveWaiters and
//     wake all; the lookup reads the live word first). A waiter that looks
//     the dead holder up between A1 and A2 sees the newcomer's live word
//     under the old generation and sleeps on it; A3's clear then leaves the
//     kernel nothing to wake on if the newcomer is killed before its
//     wake-up, and without the generation in the sleep a second waiter can
//     set liveWaiters again after the clear, with distinct tids. The model
//     bumps the generation first, which presumes a claim that is exclusive
//     without the live word's CAS (two newcomers racing for a slot are not
//     modelled).
//   - BugYieldAlways (Semaphore): the token as the code handled it before
//     5496d27, no retry after finding it busy and a yield after every sleep
//     instead of BugTokenYield's fix.
//   - BugReclaimFirst (Semaphore): acquireSlow's order in the code until
//     this checker found it losing a wake-up (fixed since: watchOthers,
//     then reclaimDead, as the model has it):
//     under the internal lock reclaimDead looks the holders up (reclaiming
//     the permits of the dead ones) and then watchOthers reads every live
//     word again for the watches the sleep uses. A holder that reclaimDead
//     finds alive and that dies before watchOthers reads its live word is
//     skipped as dead there, its permits are never reclaimed, and the
//     kernel's wake-up for its death came before anyone slept. The model
//     watches first and reclaims after: a holder that dies after its watch
//     changes a word the sleep names, one that died before the reclaim's
//     lookup is reclaimed.
//   - BugPostOutside (Semaphore): a counting post as the code had it until
//     this checker, given Close's placeholder, found it losing a wake-up:
//     every post's CAS outside Segment.enter, and the wake skipped once
//     closed. A post that lands after its own Close marked the handle dead
//     (the others no longer watch it), killed before its wake, leaves them
//     asleep with the permits free.
//   - BugSatedNoWake, BugNoTakeover, BugNoSated (Semaphore): the end of a
//     hunger wakes nobody; a dead hungry waiter's record is taken for a
//     live one; a hungry waiter that gives up keeps its hunger. Each leaves
//     a waiter held back, or asleep, with permits for it.
//   - Not toggles: Release and the Acquire fast path hold the segment
//     (Segment.enter), so that Close waits for them.
//
// PendingWake is not a fix but the code's armPending, off by default:
// TestMutexBugs shows that with it, watching the holder only still loses a
// wake-up (the woken process takes the lock and dies holding it).
//
// # Where the code differs
//
// The code does not yet follow the model everywhere: these are differences
// in behaviour, which renaming cannot close. Each label on one side only is
// listed in knownGaps (labels_test.go), so the label check stays on.
//
//   - Mutex: a waiter also names the lock word as its thread's pending
//     robust op (mutexCore.lockSleep, armPending), which the model has only
//     as PendingWake (mutex.lock.arm_pending is code only). Like the model,
//     the code watches every other attached process (watchOthers) since
//     the process an Unlock wakes may take the lock and die holding it
//     (BugWatchOwner with PendingWake found that the code watched the holder
//     only), and its sleep names each watched slot's generation word
//     (BugLiveABA found it missing).
//   - Attach: the code claims a slot A1 live, A2 generation, A3 wake all,
//     and its lookup reads the live word before the generation
//     (BugAttachOrder). With AttachNoClear (A3 no longer clears
//     liveWaiters before its wake, which BugAttachOrder showed fatal when
//     the newcomer is killed between the two) and the generation in the
//     sleep, that order passes: TestMutexAttachAsCoded.
//   - Mutex: lockSleep passes a wake-up on after every error of sleep, also
//     those returned before futex_waitv, which consumed none (the model
//     passes it only after sleeping): a FUTEX_WAKE too many, which wakes a
//     sleeper spuriously at worst.
//   - Semaphore: like the model, a sleeper watches every other attached
//     process (watchOthers; BugWatchHolders found that it watched the
//     holders only), a goroutine that finds the token busy retries its take
//     once its demand is visible (local.acquireFor, sem.acquire.retry), and
//     the token's holder yields it when a goroutine waiting for it could
//     use the value, before it sleeps and after a wake (BugYieldAlways was
//     the code yielding after every sleep, and not before). Like the model,
//     Release clears the sleepers bit and wakes every sleeper
//     (sem.release.clear_sleepers, sem.release.wake), and a sleeper passes
//     nothing on.
//   - Semaphore of counting permits (SemaphoreConfig.Counting): its
//     fast_cas steps run outside Segment.enter, and Close does not wait for
//     them; once the process is unmapped they find Close's zero
//     placeholder, on which neither CAS can succeed (no permits, no
//     semLive), and go to the slow path, whose enter fails. Release's
//     fast_cas posts only without sleepers or hunger; the post that must
//     wake (post_cas, wake) runs inside enter.
//   - Semaphore hunger: a waiter's starveAfter is a nondeterministic choice
//     at its last look (load_value: it may or may not have waited long);
//     the lookup of the identity the record names is merged into
//     hungry_load, and the CAS loop that sets semHungry into hungry_set.
//     OwnedModel has no hunger: its takes and gives are those of a state
//     word without semHungry, which the code's CASes keep as they find it.
//   - RWMutex (rwmutex.go, RWModel): the model folds RLock's fast path
//     (outside Segment.enter) into its slow path, which takes the same
//     shared steps (rw.rlock.load, add, recheck, rw.runlock.sub) inside
//     enter; folds the lookups of an identity into the load that finds it
//     (the model has no newcomers, so identities are process+1 and never
//     reused: a reader line's claim, whose old owner is always dead, is
//     one step, rw.rlock.claim, where the code, under a process-local lock,
//     raises high, swaps the count to 0 and CASes the owner); folds the
//     waiters' spin (spinTries loads of a held word) into the load; has the
//     kernel's robust-list walk wake one sleeper of a dead live word, whose
//     wait.sleep.wake_all_live wakes the others, as the code does; and
//     leaves out TryLock and TryRLock, which take the same steps without
//     sleeping.
//     Its fixes, each a toggle that TestRWMutexBugs shows found with a
//     trace: BugNoRecheck (the reader's half of the Dekker pair),
//     BugRUnlockNoWake (the draining writer's wake-up), BugAbandonNoWake (a
//     writer that gives up while draining frees the word and must wake the
//     readers it held back), BugWatchHolderOnly (a sleeper watched the
//     holder's live word only, as the code first did: the kernel's one
//     death wake-up went to a sleeper that was killed before it passed it
//     on; the code's sleeps now watch every other process, watchOthers,
//     found by the deep run before the toggle existed). The checker also found, before the code
//     followed it, that a reader's takeover of a dead writer marked the
//     state inconsistent before its CAS: when the CAS failed (the writer's
//     Unlock raced with its Close and freed the word itself) the next
//     lockers were told of a death that was not one. The reader now takes
//     the word, marks, and frees it (rw.rlock.takeover, takeover_wake).
//   - Event, Barrier, WaitGroup, Once (EventModel, LockedModel): their own
//     abstractions are in the models' docs (critical sections one step,
//     watchAll one step, the kernel's walk waking every watcher of the
//     dead, no newcomers). The code's watchAll also makes the sleep poll
//     while the table has a free or dead slot, for a newcomer that changes
//     the state and dies before its wake; the models have no newcomers, so
//     no step for it. Their planted
//     bugs: LockedConfig.BugNoWatch, BugCheckFirst (the code's first
//     order, found by this checker: the look at the state came before the
//     watches), BugBarrierGenOnly, BugPeekAny, BugWGNoReclaim; EventConfig.BugNoWatch,
//     BugWakeOne (TestLockedBugs, TestEventBugs).
//
//   - Deletion (ObjModel): the model gives each process one handle at a
//     time, where the code counts handles per Segment handle (Segment.pins)
//     and sets or clears the bit at the first and the last; its Close
//     comes between two operations, as the code's does in effect (Close
//     waits for calls inside the segment). It has no newcomer on a dead
//     process's slot: the code's clearStalePins, run by the newcomer before
//     it opens anything, only clears bits, which can only make a reuse
//     come sooner for extents no live handle of that slot holds. Entry
//     generations have 2 bits, so they wrap within a run. "user.use" is
//     the handle's memory accesses, not a line of code. Its creators claim
//     only deleted entries (there is one entry, with a name), so a dead
//     creator's entry is always deleted again, as the code's waitClaim does
//     for an entry whose generation is set; an entry claimed from empty by
//     a creator that died before its name was whole becomes dead, which
//     the model does not have. The allocator's scan of the free table is
//     one step (obj.alloc.check_pins) that picks the first unpinned word.
//   - Owned permits (OwnedModel, "osem." labels): it checks the
//     bookkeeping (conservation, what the state records for each process,
//     refusals, the return of the dead's permits), not the sleeps: an
//     Acquire that finds too few fails, as TryAcquire does. The sleeps and
//     wake-ups are SemaphoreModel's. Its owned configuration has the
//     locked Release (table mode: the value changes under the internal
//     lock, then sem.release.clear_sleepers and wake); holder mode's
//     Release, one CAS that adds the permits and clears the sleepers bit,
//     then a wake if it was set, is the counting post that the Counting
//     configuration checks; a holder-mode take changes neither the bit nor
//     a sleeper's chance. No configuration runs both kinds of Release
//     against one sleeper. A lookup of the holder is folded into the step
//     that acts on it (osem.reclaim.holder, osem.spill.entry), and the
//     reclaim's scan of the entries into the step that finds a dead one
//     (osem.reclaim.entry). Its planted bugs, found with traces by
//     TestOwnedBugs: BugSpillNoJournal, BugReplaySpill and
//     BugReclaimTableOnly.

// # Running
//
// go test ./internal/model runs the CI configurations (2 processes × 1
// goroutine, one of each environment event, a Semaphore process of two
// goroutines, plus the bug configurations; for the Cond also 3 processes ×
// 1 goroutine) in seconds, -race included. PSMODEL_DEEP=1 adds 3 × 1 and
// 2 × 2 configurations with hash compaction (a few minutes and 1 GB; the
// Semaphore's under two);
// PSMODEL_MAXSTATES bounds each run (default 20 million). -v shows the
// state counts and the counterexample traces.
//
// # Labels
//
// A label is protocol.operation.step ("sem.acquire.set_sleepers"); "token.",
// "wait." and "proc.lookup." steps are the shared helpers (local.acquire
// and release, Segment.sleep and watch, Segment.lookup), "proc.attach." and
// "proc.close." steps are attach and Close. MutexModel.Steps and
// SemaphoreModel.Steps list the code steps; "env." events, "kernel." steps
// and "fault" (a goroutine touching an unmapped segment) are not code, and
// neither are the steps only a Bug… toggle takes. TestStepsAreTaken checks
// that Steps lists exactly the labels the explorations take.
// TestLabelsMatchCode checks, for the protocols listed in its table
// checkedProtocols, that each model step appears as a comment
// `// step: <label>` in the root package's non-test files, at the line that
// does it, and that each such comment names a model step, but for the
// labels of knownGaps. One line may do several steps (`// step: a, b`), one
// step may be several lines where the model merges them (see
// Abstractions), and text after a semicolon is prose
// (`// step: proc.close.clear; D4`).
package model
