// Package processshared provides synchronization primitives and shared data
// for separate processes on one machine: a Mutex, a condition variable
// (Cond), a Semaphore (of owned or of counting permits), a message Queue,
// a readers/writer lock (RWMutex), an Event, a Barrier, a WaitGroup and a
// Once, byte regions, typed arrays and object slots, all living in shared
// memory segments.
//
// It is for Go programs that run as several processes, parents and the
// children they start or unrelated programs, and that need to coordinate
// through memory at the speed of a futex: worker pools of processes, a
// supervisor and its workers, tools that must not run twice at once. It is
// not for goroutines of one process (use package sync), nor for machines
// that share nothing (use the network).
//
// # Segments
//
// A Segment is a region of shared memory. Named segments live in /dev/shm
// (/tmp/processshared on macOS and FreeBSD) and are found by name (Create,
// Open, OpenOrCreate, Remove); anonymous segments (NewAnonymous) have no name and are handed to child processes
// (Pass on the parent's side, Inherit in the child). Every segment starts
// with a header (magic number, layout version, size) that Open checks before
// mapping anything, so a foreign or truncated file gives an error, never a
// crash.
//
// On Linux a segment's room is claimed when it is made: Create, OpenOrCreate
// and NewAnonymous reserve all of its pages (fallocate(2)) before any process
// maps it. A named segment that /dev/shm cannot hold is refused with an error
// matching syscall.ENOSPC, instead of killing a process with SIGBUS when it
// first touches a page there is no room for. So the whole segment is
// resident (or swapped) and charged to the creating process's memory cgroup
// from creation, however little of it is used. Named segments count against
// /dev/shm too: a tmpfs of half the RAM by default, but of 64 MiB in a Docker
// container (docker run --shm-size changes it). Anonymous segments (memfd)
// count against memory only; one too large for its memory cgroup meets the
// cgroup's limit (reclaim, then its OOM killer) at creation, not later.
// Options.Sparse keeps a segment's file sparse, its pages allocated at first
// touch, and with it that risk of SIGBUS. Segments on macOS and FreeBSD are
// always sparse.
//
// Inside a segment, objects are found by name, like Boost.Interprocess's
// find_or_construct: NewMutex, NewRWMutex, NewCond, NewSemaphore,
// NewCountingSemaphore, NewQueue, NewEvent, NewBarrier, NewWaitGroup,
// NewOnce, NewBytes, NewArray and NewSlot create the named object or open
// the existing one, and opening a name as another kind or size fails with
// ErrMismatch (a Semaphore of owned permits and one of counting permits are
// two kinds). Any number of processes may race to create the same segment
// or object; they all get the same one.
//
// Segment.Delete deletes an object: its name is free at once for a new
// object, and its space is reused, by a later object of its size or
// smaller, once no handle on it is left. Every handle keeps the object it
// was obtained on alive until its Drop (or its Segment's Close, or its
// process's death): a handle on a deleted object keeps working on the old
// object, its blocking calls return ErrDeleted, and it never reaches the
// new object of that name. Drop a handle you no longer use in a segment
// whose objects come and go. A deleted name still takes a directory entry,
// which only a new object of the same name reuses: the directory bounds the
// number of distinct names a segment sees over its life (1.5 × MaxObjects).
//
// # Locks
//
// On Linux, Mutex, Cond and Semaphore are built on futexes (on FreeBSD on
// _umtx_op; on macOS, which offers no kernel wait to Go without cgo, waiters
// poll with backoff; see the README's platform table). Taking and releasing
// an uncontended lock is one atomic instruction each, with no system call;
// Unlock and Release make a system call only when someone sleeps. A
// contended lock spins briefly, then sleeps in the kernel. Only one
// goroutine per process sleeps in the kernel for a given object; the
// process's other waiters park as ordinary goroutines, so a thousand blocked
// goroutines hold a handful of threads.
//
// Every blocking call has a form that takes a context.Context (LockContext,
// WaitContext, Acquire): a deadline becomes the kernel's timeout and
// cancellation wakes the waiter.
//
// Ownership of a Mutex, and of owned Semaphore permits (NewSemaphore; the
// permits of NewCountingSemaphore belong to nobody), is per Segment handle: a
// lock word holds the identity of the handle that locked it, not of a
// goroutine. Any goroutine using that handle may unlock it, as with
// sync.Mutex.
//
// An RWMutex counts each handle's read locks in a cache line of its own
// (shared with no other of the first 16 processes), so that readers in
// several processes do not slow each other down: RLock is an atomic add to
// the reader's own line and two loads of the writer word.
//
// # Identity
//
// Each open Segment handle (each Create, Open, OpenOrCreate, NewAnonymous or
// Inherit) is an identity of its own: an entry of the segment's process
// table and that entry's generation, bumped by every claim, so that no two
// handles ever share one, in one process or many, whatever their PID
// namespaces. A pid or thread id would not do: it is unique only inside one
// PID namespace (the containers of a Kubernetes pod, docker run
// --ipc=shareable and unshare --pid share /dev/shm but not pids, and each
// may run as pid 1), and the kernel reuses it. So:
//
//   - processes in different containers that share /dev/shm exclude each
//     other correctly, Unlock by a non-holder is refused in any namespace,
//     and the death of a holder in another namespace is reported as in one;
//   - two handles in one process exclude each other like two processes;
//   - Close while holding a Mutex, or Semaphore permits, leaves them to the
//     others as held by a dead owner (ErrOwnerDead; the permits return),
//     even if the process opens the segment again at once: the new handle
//     is another identity.
//
// A table entry's generation has k = 31-b bits, where
// b = bits.Len(MaxProcesses-1): k = 24 with the default 128 entries, k = 15
// with the largest table (MaxProcessesLimit, 65536 entries); 1 value in 256
// is skipped (see proc.go), which leaves 2^k·255/256 claims of one entry:
// about 16.7 million with 128 entries, 32,640 with 65536. An entry claimed
// that many times is retired, never reused, so identities never wrap. A
// segment whose MaxProcesses is a power of 2 thus allows about 2^31 claims
// (handles opened over its life) in all, whatever its size: once the first
// entries retire, attach claims the next.
//
// Liveness is judged by identity: on Linux, by the kernel's death mark on the
// process's table entry, in any namespace. Where no kernel marks deaths
// (macOS, FreeBSD, qemu-user, the processshared_nofutex build), a process is
// judged by its pid and start time, and only from its own PID namespace
// (recorded in its entry): a holder in another namespace is taken to be
// alive. ProcessInfo shows a pid with its namespace, and pshared prints one
// from another namespace as "pid 1 in pid namespace 4026532451".
//
// The race detector cannot see synchronization done by atomic operations on
// shared memory; the locks annotate their acquire and release edges so that
// goroutines of one process that synchronize through them get no false
// reports.
//
// # Crashes
//
// A process may die at any instant, SIGKILL included. Every process keeps
// one thread alive for its whole life and registers a robust futex list for
// it with the kernel (set_robust_list(2)); the list holds the process's entry
// in each segment's process table. When the process dies the kernel marks
// those entries dead and wakes a waiter. Waiters sleep on both the lock word
// and the holder's entry (futex_waitv(2), Linux 5.16), so:
//
//   - a Mutex whose holder dies is acquired by the next locker at once,
//     which is told (ErrOwnerDead; Mutex.Consistent) until it calls
//     MarkConsistent;
//   - owned permits of a Semaphore held by a dead process return to the
//     semaphore (counting permits taken by a dead process stay taken);
//   - a dead Cond waiter's registration is reclaimed, so that a Signal
//     wakes a live waiter rather than the dead one;
//   - an object slot whose writer dies mid-write keeps its previous value;
//   - a Queue sender that dies mid-Send delivers nothing, and a receiver
//     that dies mid-Recv leaves the message to the next (at least once);
//   - a Barrier party that dies breaks the barrier (ErrBroken for every
//     waiter until Reset), a process that dies holding WaitGroup Adds
//     breaks the group, and a Once runner that dies has its successor run
//     the function again, told so (retry).
//
// No process's pid is polled on Linux. Where the kernel offers no robust list
// (macOS, FreeBSD, qemu-user) waiters check the holder's pid every 10 ms;
// without futex_waitv (Linux before 5.16) they check the holder's entry
// every 10 ms. Windows is not supported: every call returns an error
// wrapping errors.ErrUnsupported.
//
// # Trust
//
// Every process that can open a segment (its file mode decides who: 0600,
// the creating user only, by default) can write any byte of it, and a
// segment outlives crashed processes. The library promises that what such a
// process writes cannot crash another process inside a library call: every
// offset, length, count and kind read from shared memory is checked against
// the mapping before use, the layout is read once at open, and a file
// truncated under a mapping gives ErrTruncated. What it cannot promise is
// that a process breaking the protocol leaves the others working: it can
// hold a lock forever, make waits run to their timeouts, or overwrite the
// data the locks protect. Give segments only to processes you trust.
//
// # Caveats
//
//   - Named segments outlive the processes that use them, crashed ones
//     included, until Remove; the pshared command lists and removes stale
//     ones.
//   - Slices into a segment (Bytes regions read in place, values handed to
//     callbacks) are valid only until its Close. After Close, methods return
//     ErrClosed, or panic with an error matching ErrClosed where they have
//     no error result. Close may race with calls on other goroutines: it
//     wakes blocked calls, waits for those inside the mapping, and leaves a
//     private placeholder mapping at the segment's addresses until the
//     Segment is garbage, so that a racing call never faults and never
//     writes into another mapping.
//   - Shared values (Mutex, Cond, Semaphore, Array, ...) must not be copied.
//   - Any process that can open a segment can write anything into it. The
//     library checks every offset and size it reads from shared memory
//     before use, so a corrupted segment gives errors, not crashes; but it
//     cannot keep a hostile process from breaking the protocol (holding a
//     lock forever, or rewriting the word of a Mutex you hold, which makes
//     your Unlock panic as an unlock by a non-holder does). Give segments to processes you trust, and
//     keep the default mode 0600.
//   - Processes sharing a segment must have the same byte order and word
//     size (the layout is native).
//   - A process can be attached to at most 2048 segments with owner-death
//     detection (the kernel's robust list limit).
package processshared
