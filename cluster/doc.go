// Package cluster is processshared's Mutex and Semaphore for processes on
// more than one machine, kept in etcd (go.etcd.io/etcd, v3.7). It is a
// module of its own, so that users of the machine-local package never
// download etcd.
//
// Use the root package when every process runs on one machine: its locks
// cost nanoseconds and see a death within about 86 µs. Use this one when
// they do not: Lock and Unlock cost a round trip to etcd and a disk write
// each (about 1.5–2 ms the pair on a local single node), and a death is
// seen only when the dead process's lease expires. Code that takes a
// ps.RobustLocker (LockContext, Unlock, Consistent, MarkConsistent) or a
// ps.Weighted (Acquire, TryAcquire, Release) runs against either.
//
// # Sessions
//
// A process creates one Session: a lease in etcd with a TTL (DefaultTTL,
// 10 s, unless Options say otherwise), kept alive in the background. Every
// lock and permit it takes is attached to that lease, and is released
// when the lease ends: at Session.Close, or when etcd has not heard from
// the process for the TTL.
//
// # Locks
//
// A Mutex has the local Mutex's methods (Lock, Unlock, TryLock,
// LockContext, Consistent, MarkConsistent) and, for the calls that reach
// the network, forms with a context and an error result (UnlockContext,
// TryLockContext, MarkConsistentContext). Waiters are served first come,
// first served. Goroutines of one process queue on a process-local lock in
// front of the etcd key, so two of them never both hold it.
//
// A Semaphore of n permits (n fixed at creation: another n is
// ps.ErrMismatch) has Acquire, TryAcquire, Release and Value, and serves
// waiters in order of arrival.
//
// # Crashes
//
// A process that dies, or stops, or loses its network, while holding a
// Mutex, keeps it until its lease expires: at least the TTL after its last
// keep-alive, and longer across an etcd leader change. Then the next
// locker acquires it and is told, as locally: LockContext returns an error
// matching ps.ErrOwnerDead, and Consistent is false until MarkConsistent.
// The Mutex's state lives in etcd, written only by the holder in the same
// transaction as each lock change, so a lease that expires cannot be
// mistaken for an Unlock (as it is with etcd's concurrency.Mutex). The
// permits of a Semaphore holder whose lease expired come back.
//
// A holder that outlives its lease (a stopped process that continues) is
// told: Mutex.Lost's channel is closed, and a waiter whose own session
// ends gets ErrSessionExpired.
//
// # Fencing
//
// No lock service can stop a holder that was paused from acting after its
// lease expired and another took the lock. Protect the resource instead:
// Mutex.Txn applies etcd operations only while the handle still holds the
// Mutex, and Mutex.Token is a number higher than every earlier holder's
// (the etcd revision of the acquisition) that any other resource can
// check, refusing a token below the last it accepted.
//
// # Caveats
//
// The TTL trades detection time for tolerance: a process that cannot
// reach etcd for the TTL (a long GC pause, a network partition) loses its
// locks. etcd raises TTLs below about 2 s (with default election timing)
// to that minimum. Names are escaped into keys under the session's prefix;
// processes that should meet must use the same prefix.
package cluster
