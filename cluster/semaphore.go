package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	ps "github.com/processshared/processshared"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The keys of the Semaphore NAME, under the session's prefix P:
//
//	P/s/NAME/n              the number of permits, written once by the first
//	                        NewSemaphore (without a lease)
//	P/s/NAME/q/LEASE/SEQ    one per Acquire that holds or waits, attached to
//	                        its session's lease; the value is the number of
//	                        permits it asks for
//
// The q keys, in create-revision order, form one queue: a key holds its
// permits when its count and the counts of every key before it add up to
// at most n. Waiters are served in order (FIFO): a small Acquire behind a
// large one waits its turn. A key's prefix sum only falls (keys before it
// are deleted, or lower their count on a partial Release; keys after it do
// not count), so a key that holds keeps holding, and the holders, a prefix
// of the queue, never hold more than n. A holder whose lease expires loses
// its key, and so gives its permits back.

// A Semaphore is a counting semaphore of n permits shared by processes on
// any number of machines through etcd. Obtain one with NewSemaphore; the
// zero value is not usable. A Semaphore must not be copied.
//
// Permits are held by the handle that acquired them, through its session:
// the permits of a session that ends (its process died, was stopped or cut
// off for longer than the TTL, or closed it) come back when etcd expires
// its lease.
type Semaphore struct {
	s     *Session
	name  string
	n     int
	queue string
	mine  string // this session's q keys: queue + LEASE + "/"

	mu   sync.Mutex
	held []permitKey // in acquisition order
}

type permitKey struct {
	key   string
	rev   int64
	count int
}

// NewSemaphore returns a handle on the Semaphore called name with n
// permits, creating it if it does not exist. An existing semaphore keeps
// the n it was created with: a different n is an error matching
// ps.ErrMismatch.
func NewSemaphore(ctx context.Context, s *Session, name string, n int) (*Semaphore, error) {
	if name == "" {
		return nil, fmt.Errorf("processshared: cluster: %w: empty semaphore name", ps.ErrInvalidName)
	}
	if n < 1 || n > 1<<30 {
		return nil, fmt.Errorf("processshared: cluster: semaphore %q: bad number of permits %d", name, n)
	}
	base := s.key("s", name)
	nkey := base + "n"
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.Version(nkey), "=", 0),
	).Then(
		clientv3.OpPut(nkey, strconv.Itoa(n)),
	).Else(
		clientv3.OpGet(nkey),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("processshared: cluster: semaphore %q: %w", name, err)
	}
	if !resp.Succeeded {
		v := string(resp.Responses[0].GetResponseRange().Kvs[0].Value)
		if have, err := strconv.Atoi(v); err != nil || have != n {
			return nil, fmt.Errorf("%w: semaphore %q has %s permits, not %d", ps.ErrMismatch, name, v, n)
		}
	}
	return &Semaphore{s: s, name: name, n: n, queue: base + "q/", mine: base + "q/" + s.lease + "/"}, nil
}

// Name returns the Semaphore's name.
func (m *Semaphore) Name() string { return m.name }

// Permits returns the number of permits, n.
func (m *Semaphore) Permits() int { return m.n }

// Acquire acquires n permits, waiting for them in order of arrival until
// they are available or ctx is done. On failure it returns ctx.Err(),
// ErrSessionExpired if the session ends before or while it waits, or an
// etcd error, and acquires nothing. Transient etcd errors are retried.
func (m *Semaphore) Acquire(ctx context.Context, n int) error {
	_, err := m.acquire(ctx, n, true)
	return err
}

// TryAcquire acquires n permits if they are available at once, and no
// earlier Acquire waits, and reports whether it did. It returns false if
// etcd cannot be reached; TryAcquireContext tells why.
func (m *Semaphore) TryAcquire(n int) bool {
	ok, _ := m.TryAcquireContext(context.Background(), n)
	return ok
}

// TryAcquireContext is TryAcquire with a context and an error result.
func (m *Semaphore) TryAcquireContext(ctx context.Context, n int) (bool, error) {
	return m.acquire(ctx, n, false)
}

func (m *Semaphore) acquire(ctx context.Context, n int, wait bool) (ok bool, err error) {
	if n < 0 || n > m.n {
		return false, fmt.Errorf("processshared: cluster: Acquire(%d) on semaphore %q of %d permits: bad count", n, m.name, m.n)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if m.s.expired() {
		return false, ErrSessionExpired
	}
	if n == 0 {
		return true, nil
	}
	wctx, cancel := m.s.ctxDone(ctx)
	defer cancel()
	cli := m.s.cli
	key := m.mine + strconv.FormatUint(m.s.nextSeq(), 10)
	var myRev int64
	for attempt := 0; ; attempt++ {
		// Retrying the put is safe: if an earlier one was applied, the
		// key exists and its create revision is kept.
		resp, err := cli.Txn(wctx).If(
			clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
		).Then(
			clientv3.OpPut(key, strconv.Itoa(n), clientv3.WithLease(m.s.Lease())),
		).Else(
			clientv3.OpGet(key),
		).Commit()
		if err == nil {
			myRev = resp.Header.Revision
			if !resp.Succeeded {
				myRev = resp.Responses[0].GetResponseRange().Kvs[0].CreateRevision
			}
			break
		}
		if !transient(wctx, err) || m.s.retry(wctx, attempt) != nil {
			// The put may have been applied: the key is this call's own.
			m.leave(key, 0)
			return false, m.stopErr(ctx, wctx, err)
		}
	}
	defer func() {
		if !ok {
			m.leave(key, myRev)
		}
	}()
	for attempt := 0; ; {
		resp, err := cli.Get(wctx, m.queue, clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend),
			clientv3.WithMaxCreateRev(myRev))
		if err != nil {
			if !transient(wctx, err) || m.s.retry(wctx, attempt) != nil {
				return false, m.stopErr(ctx, wctx, err)
			}
			attempt++
			continue
		}
		attempt = 0
		sum, mineSeen := 0, false
		for _, kv := range resp.Kvs {
			c, err := strconv.Atoi(string(kv.Value))
			if err != nil || c < 0 {
				return false, fmt.Errorf("processshared: cluster: semaphore %q: %w: key %q holds %q", m.name, ps.ErrCorrupt, kv.Key, kv.Value)
			}
			sum += c
			if kv.CreateRevision == myRev {
				mineSeen = true
			}
		}
		if !mineSeen {
			return false, ErrSessionExpired // the key went with the lease
		}
		if sum <= m.n {
			m.mu.Lock()
			m.held = append(m.held, permitKey{key: key, rev: myRev, count: n})
			m.mu.Unlock()
			return true, nil
		}
		if !wait {
			return false, nil
		}
		if err := waitEvent(wctx, cli, m.queue, resp.Header.Revision+1, true); err != nil {
			return false, m.stopErr(ctx, wctx, err)
		}
	}
}

func (m *Semaphore) stopErr(ctx, wctx context.Context, err error) error {
	if context.Cause(wctx) == ErrSessionExpired || leaseGone(err) {
		return ErrSessionExpired
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("processshared: cluster: semaphore %q: %w", m.name, err)
}

// leave deletes the key of a failed Acquire (with create revision rev, or
// whatever it has if rev is 0: no other call uses the key's name), at the
// best effort: if it cannot, the key goes with the lease.
func (m *Semaphore) leave(key string, rev int64) {
	ctx, cancel := context.WithTimeout(context.Background(), m.s.ttl)
	defer cancel()
	if rev == 0 {
		m.s.cli.Delete(ctx, key)
		return
	}
	m.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
}

// Release releases n of the permits this handle holds, the most recently
// acquired first. It returns an error matching ps.ErrOverflow, and
// releases nothing, if the handle holds fewer than n; or an etcd error. A
// permit lost with the session counts as released.
func (m *Semaphore) Release(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.s.ttl)
	defer cancel()
	return m.ReleaseContext(ctx, n)
}

// ReleaseContext is Release with a context.
func (m *Semaphore) ReleaseContext(ctx context.Context, n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	total := 0
	for _, k := range m.held {
		total += k.count
	}
	if n < 0 || n > total {
		return fmt.Errorf("%w: semaphore %q: release of %d permits by a handle holding %d", ps.ErrOverflow, m.name, n, total)
	}
	var ops []clientv3.Op
	left := n
	i := len(m.held)
	for left > 0 {
		i--
		k := m.held[i]
		// Each op is guarded by the key's create revision, so that a key
		// of a later Acquire with the same name is never touched.
		cmp := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k.key), "=", k.rev)}
		if k.count <= left {
			ops = append(ops, clientv3.OpTxn(cmp, []clientv3.Op{clientv3.OpDelete(k.key)}, nil))
			left -= k.count
			continue
		}
		put := clientv3.OpPut(k.key, strconv.Itoa(k.count-left), clientv3.WithIgnoreLease())
		ops = append(ops, clientv3.OpTxn(cmp, []clientv3.Op{put}, nil))
		left = 0
	}
	if len(ops) > 0 {
		if _, err := m.s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("processshared: cluster: release on semaphore %q: %w", m.name, err)
		}
	}
	// Drop what was released from the record.
	left = n
	for left > 0 {
		k := &m.held[len(m.held)-1]
		if k.count <= left {
			left -= k.count
			m.held = m.held[:len(m.held)-1]
			continue
		}
		k.count -= left
		left = 0
	}
	return nil
}

// Value returns the number of permits not held at the instant of the
// call, or 0 if etcd cannot be reached within the TTL (ValueContext tells
// why). Waiters do not count: permits may be free while a large Acquire
// waits for more.
func (m *Semaphore) Value() int {
	ctx, cancel := context.WithTimeout(context.Background(), m.s.ttl)
	defer cancel()
	v, _ := m.ValueContext(ctx)
	return v
}

// ValueContext is Value with a context and an error result.
func (m *Semaphore) ValueContext(ctx context.Context) (int, error) {
	resp, err := m.s.cli.Get(ctx, m.queue, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return 0, fmt.Errorf("processshared: cluster: semaphore %q: %w", m.name, err)
	}
	sum := 0
	for _, kv := range resp.Kvs {
		c, err := strconv.Atoi(string(kv.Value))
		if err != nil || c < 0 {
			return 0, fmt.Errorf("processshared: cluster: semaphore %q: %w: key %q holds %q", m.name, ps.ErrCorrupt, kv.Key, kv.Value)
		}
		if sum+c > m.n {
			break
		}
		sum += c
	}
	return m.n - sum, nil
}

var _ ps.Weighted = (*Semaphore)(nil)
