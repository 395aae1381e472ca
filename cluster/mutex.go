package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	ps "github.com/processshared/processshared"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The keys of the Mutex NAME, under the session's prefix P:
//
//	P/m/NAME/q/LEASE  one per session that holds or waits for the Mutex,
//	                  attached to its lease; the key with the lowest create
//	                  revision is the holder's, the others wait in that
//	                  order (FIFO)
//	P/m/NAME/state    the holder state, without a lease; written only by the
//	                  holder (the session whose q key is first), in the same
//	                  transaction as the lock change:
//	                    "free"                    unlocked, consistent
//	                    "free inconsistent"       unlocked, not repaired
//	                    "held lease=L pid=P host=H" and
//	                    "held inconsistent lease=L ..."  locked by lease L
//
// Transitions, each one etcd transaction:
//
//	lock.fast    if no q key exists and state is "free": create q/LEASE and
//	             write "held ..."; the holder's token is the revision
//	lock.join    create q/LEASE unless it exists; its create revision is
//	             the place in the queue
//	lock.own     once q/LEASE is first: if state still has the revision just
//	             read, write "held ..."; the token is this revision. If the
//	             state read was "held" by another lease, that holder's lease
//	             expired while it held the Mutex: its key went, its state
//	             stayed. The new holder writes "held inconsistent" and gets
//	             ErrOwnerDead.
//	unlock       if q/LEASE still has the holder's create revision: delete it
//	             and write "free" (or "free inconsistent")
//	mark         if q/LEASE still has it: write "held ..." (consistent)
//
// Why this and not etcd's recipe (concurrency.Mutex): there, a lease that
// expires deletes the holder's key exactly as Unlock does, so the next
// holder cannot tell a release from a death. Here Unlock is the only
// transition that writes "free", and it is conditional on the key, so a
// lease expiry leaves "held" behind. The same condition makes Unlock
// idempotent: a retried Unlock cannot delete the key a later Lock of the
// same session created, since that key has another create revision.
//
// Only the first q key writes state: a key's place only improves (keys
// created later sort after it), so a session that saw its key first stays
// first while its key lives, and the previous holder's key, whose unlock
// or mark would write state, is gone.
const (
	stateFree = "free"
	stateHeld = "held"
	flagBad   = "inconsistent"
)

// A Mutex is a mutual exclusion lock shared by processes on any number of
// machines through etcd. Obtain one with NewMutex; the zero value is not
// usable. A Mutex must not be copied.
//
// A Mutex is held by a handle: the goroutine that locked it, or any other
// goroutine of the process using the same handle, may Unlock it. Handles
// of one Session on one name share a process-local lock in front of the
// etcd key, so that two goroutines of a process never both hold it (the
// etcd key is per lease, as in concurrency.Mutex, which lets them).
//
// In the terminology of the Go memory model, the n'th Unlock, in any
// process, "synchronizes before" the m'th Lock returns, for n < m, as far
// as etcd's linearizable reads and writes order them: state kept in etcd
// and written through Txn is ordered; state elsewhere needs the Token.
//
// If the holder's session ends while it holds the Mutex (the process died,
// was stopped or cut off for longer than the TTL, or closed the Session),
// the next locker acquires it once etcd expires the lease, and is told:
// LockContext returns an *ps.OwnerDeadError (matching ps.ErrOwnerDead),
// and Consistent reports false, until a holder calls MarkConsistent. The
// holder that lost it is told too: Lost's channel is closed, and Txn and
// UnlockContext return ErrLockLost.
//
// Fencing: the Mutex excludes others only while etcd says it does. A
// holder that was stopped may still act after its lease expired. Writes to
// etcd made with Txn are refused once the lock is lost; any other resource
// should refuse a write whose Token is not above the last it accepted.
type Mutex struct {
	s     *Session
	name  string
	local chan struct{} // shared by the session's handles of name
	queue string
	myKey string
	state string

	mu         sync.Mutex
	held       bool
	rev        int64 // create revision of myKey while held
	token      int64
	consistent bool
	unlockErr  bool          // an UnlockContext failed: its transaction may have been applied
	lost       chan struct{} // closed if the session ends while held
	unlocked   chan struct{} // closed by Unlock
}

// NewMutex returns a handle on the Mutex called name, which is created
// unlocked on first use. It makes no network call.
func NewMutex(s *Session, name string) (*Mutex, error) {
	if name == "" {
		return nil, fmt.Errorf("processshared: cluster: %w: empty mutex name", ps.ErrInvalidName)
	}
	base := s.key("m", name)
	return &Mutex{
		s:     s,
		name:  name,
		local: s.local(name),
		queue: base + "q/",
		myKey: base + "q/" + s.lease,
		state: base + "state",
	}, nil
}

// Name returns the Mutex's name.
func (m *Mutex) Name() string { return m.name }

func (m *Mutex) heldValue(inconsistent bool) string {
	if inconsistent {
		return stateHeld + " " + flagBad + " " + m.s.holder
	}
	return stateHeld + " " + m.s.holder
}

// holderState is a decoded state key.
type holderState struct {
	held, inconsistent bool
	lease              string
	pid                int
	modRev             int64
}

func parseState(kv *mvccpb.KeyValue) holderState {
	if kv == nil {
		return holderState{}
	}
	st := holderState{modRev: kv.ModRevision}
	for i, f := range strings.Fields(string(kv.Value)) {
		switch {
		case i == 0:
			st.held = f == stateHeld
		case f == flagBad:
			st.inconsistent = true
		case strings.HasPrefix(f, "lease="):
			st.lease = f[len("lease="):]
		case strings.HasPrefix(f, "pid="):
			st.pid, _ = strconv.Atoi(f[len("pid="):])
		}
	}
	return st
}

// Lock locks m, waiting as long as it takes; etcd errors that may pass
// (a leader election, a member going away) are retried. If the previous
// holder died, Lock acquires m and Consistent reports false. Lock panics if
// the session has ended or ends while it waits, or on any other error:
// use LockContext to handle them.
func (m *Mutex) Lock() {
	err := m.LockContext(context.Background())
	if err != nil && !errors.Is(err, ps.ErrOwnerDead) {
		panic(fmt.Errorf("processshared: cluster: Lock of mutex %q: %w", m.name, err))
	}
}

// LockContext locks m, or returns ctx.Err() if ctx is done first (an error
// satisfying errors.Is(err, context.DeadlineExceeded) for a deadline).
// Waiting goroutines of one process queue on a local lock, and processes
// in etcd, first come first served; transient etcd errors are retried.
//
// If the previous holder's session ended while it held m, or the state is
// still marked inconsistent, LockContext acquires m and returns an
// *ps.OwnerDeadError (matching ps.ErrOwnerDead): the caller holds m and
// must repair the protected state. It returns ErrSessionExpired if the
// session ends before or while it waits, and a wrapped etcd error for
// failures that will not pass (permission denied, ...). On any error but
// ErrOwnerDead, m is not held, and the caller's place in the queue is
// given up.
func (m *Mutex) LockContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.s.expired() {
		return ErrSessionExpired
	}
	select {
	case m.local <- struct{}{}:
	default:
		select {
		case m.local <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.s.Done():
			return ErrSessionExpired
		}
	}
	ok, err := m.lock(ctx, true)
	if !ok {
		<-m.local
	}
	return err
}

// TryLock tries to lock m and reports whether it succeeded: it fails if
// another session or another handle of this process holds m, or etcd
// cannot be reached. If the previous holder died, TryLock succeeds and
// Consistent reports false.
func (m *Mutex) TryLock() bool {
	ok, _ := m.TryLockContext(context.Background())
	return ok
}

// TryLockContext is TryLock with a context and an error result: it returns
// (false, nil) if m is held, (true, *ps.OwnerDeadError) if it acquired m
// from a dead holder, and (false, err) if etcd failed or the session has
// ended (ErrSessionExpired).
func (m *Mutex) TryLockContext(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if m.s.expired() {
		return false, ErrSessionExpired
	}
	select {
	case m.local <- struct{}{}:
	default:
		return false, nil
	}
	ok, err := m.lock(ctx, false)
	if !ok {
		<-m.local
	}
	return ok, err
}

// lock runs after the local lock was taken. It returns whether m is now
// held, and the error for LockContext.
func (m *Mutex) lock(ctx context.Context, wait bool) (bool, error) {
	cli := m.s.cli
	resp, err := cli.Txn(ctx).If( // step: lock.fast
		clientv3.Compare(clientv3.CreateRevision(m.queue), "=", 0).WithPrefix(),
		clientv3.Compare(clientv3.Value(m.state), "=", stateFree),
	).Then(
		clientv3.OpPut(m.myKey, "", clientv3.WithLease(m.s.Lease())),
		clientv3.OpPut(m.state, m.heldValue(false)),
	).Commit()
	switch {
	case err == nil && resp.Succeeded:
		m.acquired(resp.Header.Revision, resp.Header.Revision, true)
		return true, nil
	case err == nil, transient(ctx, err):
		// Held, or never used, or the holder died, or the call failed
		// (and may have been applied: join finds the key if it was).
		return m.lockSlow(ctx, wait)
	default:
		// The transaction may have been applied before ctx ended it.
		m.cleanup()
		return false, m.stopErr(ctx, ctx, err)
	}
}

// cleanup removes this session's key of a lock call that failed before it
// knew the key's revision (a join or fast path whose reply did not come):
// the local lock is held and m is not, so a key there is that call's.
func (m *Mutex) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), m.s.ttl)
	defer cancel()
	resp, err := m.s.cli.Get(ctx, m.myKey)
	if err == nil && len(resp.Kvs) > 0 {
		m.leave(resp.Kvs[0].CreateRevision)
	}
}

// stopErr returns the error a lock call ends with after err: the session
// ended, ctx is done, or etcd failed.
func (m *Mutex) stopErr(ctx, wctx context.Context, err error) error {
	if context.Cause(wctx) == ErrSessionExpired || leaseGone(err) || errors.Is(err, ErrSessionExpired) {
		return ErrSessionExpired
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("processshared: cluster: mutex %q: %w", m.name, err)
}

func (m *Mutex) lockSlow(ctx context.Context, wait bool) (ok bool, err error) {
	wctx, cancel := m.s.ctxDone(ctx)
	defer cancel()
	cli := m.s.cli
	var myRev int64
	for attempt := 0; ; attempt++ {
		resp, err := cli.Txn(wctx).If( // step: lock.join
			clientv3.Compare(clientv3.CreateRevision(m.myKey), "=", 0),
		).Then(
			clientv3.OpPut(m.myKey, "", clientv3.WithLease(m.s.Lease())),
		).Else(
			clientv3.OpGet(m.myKey),
		).Commit()
		if err == nil {
			myRev = resp.Header.Revision
			if !resp.Succeeded {
				myRev = resp.Responses[0].GetResponseRange().Kvs[0].CreateRevision
			}
			break
		}
		if !transient(wctx, err) || m.s.retry(wctx, attempt) != nil {
			m.cleanup()
			return false, m.stopErr(ctx, wctx, err)
		}
	}
	defer func() {
		if !ok {
			m.leave(myRev)
		}
	}()
	for attempt := 0; ; {
		resp, err := cli.Txn(wctx).Then(
			clientv3.OpGet(m.queue, clientv3.WithFirstCreate()...),
			clientv3.OpGet(m.state),
			clientv3.OpGet(m.queue, append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(myRev-1))...),
		).Commit()
		if err != nil {
			if !transient(wctx, err) || m.s.retry(wctx, attempt) != nil {
				return false, m.stopErr(ctx, wctx, err)
			}
			attempt++
			continue
		}
		attempt = 0
		first := resp.Responses[0].GetResponseRange().Kvs
		var stateKV *mvccpb.KeyValue
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			stateKV = kvs[0]
		}
		pred := resp.Responses[2].GetResponseRange().Kvs
		if len(first) > 0 && first[0].CreateRevision == myRev {
			ok, err := m.own(wctx, myRev, stateKV)
			if err != nil && !errors.Is(err, ps.ErrOwnerDead) {
				if !transient(wctx, err) || m.s.retry(wctx, attempt) != nil {
					return false, m.stopErr(ctx, wctx, err)
				}
				attempt++
				continue
			}
			if ok {
				return true, err
			}
			continue // the state changed under us: read again
		}
		if len(pred) == 0 {
			// Not first, and no key before ours: ours is gone, with the
			// lease.
			return false, ErrSessionExpired
		}
		if !wait {
			return false, nil
		}
		if err := m.waitDelete(wctx, string(pred[0].Key), resp.Header.Revision+1); err != nil {
			return false, m.stopErr(ctx, wctx, err)
		}
	}
}

// waitDelete waits until key is deleted at revision rev or later, or the
// watch fails (the caller reads again), or wctx is done (its error).
func (m *Mutex) waitDelete(wctx context.Context, key string, rev int64) error {
	return waitEvent(wctx, m.s.cli, key, rev, false)
}

// waitEvent waits for a delete of key (with prefix: of a key under it, or
// a put too) at rev or later. A watch that breaks returns nil: the caller
// reads again.
func waitEvent(wctx context.Context, cli *clientv3.Client, key string, rev int64, prefix bool) error {
	ctx, cancel := context.WithCancel(wctx)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(rev)}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	} else {
		opts = append(opts, clientv3.WithFilterPut())
	}
	for wr := range cli.Watch(clientv3.WithRequireLeader(ctx), key, opts...) {
		if wr.Err() != nil || wr.Canceled {
			break
		}
		if len(wr.Events) > 0 {
			return nil
		}
	}
	return wctx.Err()
}

// own makes the caller, whose key myRev is first, the holder, unless the
// state changed since it was read as stateKV.
func (m *Mutex) own(wctx context.Context, myRev int64, stateKV *mvccpb.KeyValue) (bool, error) {
	st := parseState(stateKV)
	if st.held && st.lease == m.s.lease && st.modRev >= myRev {
		// This session wrote it since its key was created: an earlier
		// call's reply was lost, or a failed Unlock left the key.
		m.acquired(myRev, st.modRev, !st.inconsistent)
		return true, m.deadErr(st.inconsistent, 0)
	}
	dead := st.held
	inconsistent := dead || st.inconsistent
	cmp := clientv3.Compare(clientv3.Version(m.state), "=", 0)
	if stateKV != nil {
		cmp = clientv3.Compare(clientv3.ModRevision(m.state), "=", stateKV.ModRevision)
	}
	resp, err := m.s.cli.Txn(wctx).If( // step: lock.own
		clientv3.Compare(clientv3.CreateRevision(m.myKey), "=", myRev), cmp,
	).Then(
		clientv3.OpPut(m.state, m.heldValue(inconsistent)),
	).Commit()
	if err != nil || !resp.Succeeded {
		return false, err
	}
	m.acquired(myRev, resp.Header.Revision, !inconsistent)
	pid := 0
	if dead {
		pid = st.pid
	}
	return true, m.deadErr(inconsistent, pid)
}

func (m *Mutex) deadErr(inconsistent bool, pid int) error {
	if !inconsistent {
		return nil
	}
	return &ps.OwnerDeadError{Object: m.name, DeadPID: pid}
}

// acquired records that the handle holds m with key revision rev.
func (m *Mutex) acquired(rev, token int64, consistent bool) {
	lost, unlocked := make(chan struct{}), make(chan struct{})
	m.mu.Lock()
	m.held, m.rev, m.token, m.consistent = true, rev, token, consistent
	m.unlockErr = false
	m.lost, m.unlocked = lost, unlocked
	m.mu.Unlock()
	go func() {
		select {
		case <-m.s.Done():
			close(lost)
		case <-unlocked:
		}
	}()
}

// releaseOps returns the operations that release the key myRev of a lock
// call that failed: delete it, and set the state free if this session
// wrote it since the key was created (a reply lost, or cut off by ctx, may
// have made it the holder).
func (m *Mutex) releaseOps(myRev int64) []clientv3.Op {
	since := clientv3.Compare(clientv3.ModRevision(m.state), ">", myRev-1)
	return []clientv3.Op{
		clientv3.OpDelete(m.myKey),
		clientv3.OpTxn(
			[]clientv3.Cmp{since, clientv3.Compare(clientv3.Value(m.state), "=", m.heldValue(false))},
			[]clientv3.Op{clientv3.OpPut(m.state, stateFree)},
			[]clientv3.Op{clientv3.OpTxn(
				[]clientv3.Cmp{since, clientv3.Compare(clientv3.Value(m.state), "=", m.heldValue(true))},
				[]clientv3.Op{clientv3.OpPut(m.state, stateFree+" "+flagBad)},
				nil)},
		),
	}
}

// leave gives up the place in the queue of a lock call that failed, at
// the best effort: if it cannot, the key goes with the lease.
func (m *Mutex) leave(myRev int64) {
	ctx, cancel := context.WithTimeout(context.Background(), m.s.ttl)
	defer cancel()
	m.s.cli.Txn(ctx).If(m.isOwner(myRev)).Then(m.releaseOps(myRev)...).Commit()
}

func (m *Mutex) isOwner(rev int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(m.myKey), "=", rev)
}

// Unlock unlocks m. Unlocking a Mutex this handle does not hold (never
// locked, already unlocked, or lost) does nothing: Unlock is idempotent,
// and never releases a later holder's lock, even one of this session.
// It retries etcd errors until etcd answers or the session ends (which
// releases m as well); use UnlockContext to bound the wait or see errors.
func (m *Mutex) Unlock() {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), m.s.ttl)
		err := m.UnlockContext(ctx)
		cancel()
		if err == nil || errors.Is(err, ErrLockLost) {
			return
		}
		if m.s.retry(context.Background(), attempt) != nil {
			m.forget(m.heldRev())
			return
		}
	}
}

// UnlockContext unlocks m, like Unlock. It returns nil if it released m,
// or if this handle did not hold it; ErrLockLost if m was lost (its
// session ended while it was held: the caller's critical section may have
// overlapped another holder's); or an etcd error, after which the handle
// still holds m and UnlockContext may be called again.
func (m *Mutex) UnlockContext(ctx context.Context) error {
	m.mu.Lock()
	held, rev, retried, consistent := m.held, m.rev, m.unlockErr, m.consistent
	m.mu.Unlock()
	if !held {
		return nil
	}
	free := stateFree
	if !consistent {
		free += " " + flagBad
	}
	resp, err := m.s.cli.Txn(ctx).If(m.isOwner(rev)).Then( // step: unlock
		clientv3.OpDelete(m.myKey),
		clientv3.OpPut(m.state, free),
	).Commit()
	if err != nil {
		m.mu.Lock()
		if m.held && m.rev == rev {
			m.unlockErr = true
		}
		m.mu.Unlock()
		return fmt.Errorf("processshared: cluster: unlock of mutex %q: %w", m.name, err)
	}
	if !m.forget(rev) || resp.Succeeded || retried {
		return nil
	}
	return ErrLockLost
}

func (m *Mutex) heldRev() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev
}

// forget drops the hold with key revision rev, and the local lock; it
// reports whether it did (false if another Unlock did first).
func (m *Mutex) forget(rev int64) bool {
	m.mu.Lock()
	if !m.held || m.rev != rev {
		m.mu.Unlock()
		return false
	}
	m.held = false
	close(m.unlocked)
	m.mu.Unlock()
	<-m.local
	return true
}

// Consistent reports whether the state m protects is consistent, as its
// last acquisition through this handle found it: false after a holder died
// holding m, until MarkConsistent.
func (m *Mutex) Consistent() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consistent
}

// MarkConsistent declares the state m protects repaired after a holder's
// death. Call it while holding m. If etcd cannot be reached within the
// TTL, m stays marked inconsistent, which errs on the safe side: the next
// holder is told of the death too. Use MarkConsistentContext to see errors.
func (m *Mutex) MarkConsistent() {
	ctx, cancel := context.WithTimeout(context.Background(), m.s.ttl)
	defer cancel()
	m.MarkConsistentContext(ctx)
}

// MarkConsistentContext is MarkConsistent with a context and an error
// result: ErrLockLost if this handle does not hold m, or an etcd error.
func (m *Mutex) MarkConsistentContext(ctx context.Context) error {
	m.mu.Lock()
	held, rev := m.held, m.rev
	m.mu.Unlock()
	if !held {
		return ErrLockLost
	}
	resp, err := m.s.cli.Txn(ctx).If(m.isOwner(rev)).Then(clientv3.OpPut(m.state, m.heldValue(false))).Commit() // step: mark
	if err != nil {
		return fmt.Errorf("processshared: cluster: mark mutex %q consistent: %w", m.name, err)
	}
	if !resp.Succeeded {
		return ErrLockLost
	}
	m.mu.Lock()
	if m.held && m.rev == rev {
		m.consistent = true
	}
	m.mu.Unlock()
	return nil
}

// Token returns the fencing token of the current hold: the etcd revision
// at which this handle acquired m, higher than every earlier holder's. It
// returns 0 if the handle does not hold m. A resource that accepts a
// write only with a token above the last it saw refuses a holder that
// lost m to a later one (Kleppmann's fencing token).
func (m *Mutex) Token() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held {
		return 0
	}
	return m.token
}

// Lost returns a channel that is closed if the session ends while this
// handle holds m: from then on, m may be held by another. If the handle
// does not hold m, the channel is closed already. A channel returned
// during one hold is never closed after Unlock.
func (m *Mutex) Lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held {
		c := make(chan struct{})
		close(c)
		return c
	}
	return m.lost
}

// IsOwner returns the comparison that holds while this handle holds m, for
// use in the If of a transaction of one's own (as concurrency.Mutex's
// IsOwner).
func (m *Mutex) IsOwner() clientv3.Cmp {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held {
		return m.isOwner(-1) // no key has create revision -1
	}
	return m.isOwner(m.rev)
}

// Txn applies ops in one etcd transaction if, and only if, this handle
// still holds m when etcd applies it. It returns ErrLockLost, applying
// nothing, if it does not.
func (m *Mutex) Txn(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	resp, err := m.s.cli.Txn(ctx).If(m.IsOwner()).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("processshared: cluster: guarded txn on mutex %q: %w", m.name, err)
	}
	if !resp.Succeeded {
		return resp, ErrLockLost
	}
	return resp, nil
}

var _ ps.RobustLocker = (*Mutex)(nil)
