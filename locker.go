package processshared

import "context"

// A Locker is a mutual exclusion lock that can be waited for with a
// context. Both this package's *Mutex and the cluster module's
// *cluster.Mutex (github.com/processshared/processshared/cluster, on etcd)
// satisfy it, so that code written against one host runs unchanged against
// many.
//
// LockContext returns nil when the caller holds the lock, or an error
// matching ErrOwnerDead when it holds the lock but its previous holder died
// holding it (see RobustLocker); any other error means the lock is not held.
type Locker interface {
	LockContext(ctx context.Context) error
	Unlock()
}

// A RobustLocker is a Locker that tracks whether the state it protects is
// consistent after a holder died: *Mutex and *cluster.Mutex.
type RobustLocker interface {
	Locker
	// Consistent reports whether the protected state is consistent: false
	// after a holder died holding the lock, until MarkConsistent.
	Consistent() bool
	// MarkConsistent declares the protected state repaired. Call it while
	// holding the lock.
	MarkConsistent()
}

// A Weighted is a counting semaphore whose permits are acquired with a
// context: *Semaphore and *cluster.Semaphore.
type Weighted interface {
	Acquire(ctx context.Context, n int) error
	TryAcquire(n int) bool
	Release(n int) error
}

var (
	_ RobustLocker = (*Mutex)(nil)
	_ Weighted     = (*Semaphore)(nil)
)
