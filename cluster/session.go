package cluster

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DefaultTTL is the lease TTL of a Session whose Options leave TTL zero.
//
// The TTL bounds how long a dead process keeps what it held: a holder that
// is killed, or cut off from etcd, is seen dead by the others when its
// lease expires, at least TTL after its last keep-alive, and longer across
// an etcd leader change (the new leader extends every lease by an election
// timeout). etcd's concurrency package defaults to 60 s; with default
// election timing etcd raises any TTL below about 2 s to that minimum.
// On one machine the local Mutex reports a death in about 86 µs.
//
// A shorter TTL detects deaths sooner, but the process must then reach etcd
// at least every TTL/3 (the keep-alive period) or lose its locks.
const DefaultTTL = 10 * time.Second

// DefaultPrefix is the key prefix under which a Session keeps its locks
// and semaphores when Options leave Prefix empty.
const DefaultPrefix = "/processshared/"

// Options configure a Session.
type Options struct {
	// TTL is the lease's time to live, rounded up to whole seconds
	// (DefaultTTL if zero).
	TTL time.Duration
	// Prefix is prepended to every key (DefaultPrefix if empty). Processes
	// that should meet must use the same prefix.
	Prefix string
}

// A Session is one process's lease in etcd, kept alive in the background,
// and the locks and semaphores taken through it. Everything held through
// a Session is released when its lease ends: at Close, or when etcd has
// not heard from the process for TTL (it died, stopped, or lost its
// network), which the next holder of a Mutex is told (ErrOwnerDead).
//
// Use one Session per process: the lease is what tells other processes
// that this one is alive. Obtain one with NewSession; the zero value is
// not usable. A Session is safe for use by many goroutines.
type Session struct {
	cli    *clientv3.Client
	cs     *concurrency.Session
	prefix string
	ttl    time.Duration
	lease  string // the lease id in hex, the last element of this session's keys
	holder string // what the holder state records about this process

	mu     sync.Mutex
	locals map[string]chan struct{} // per Mutex name: the process-local lock in front of the key
	seq    uint64                   // names this session's semaphore keys
}

// NewSession grants a lease with the TTL of opts (nil for the defaults) and
// keeps it alive in the background until Close, or until etcd lets it
// expire. ctx bounds the grant only.
func NewSession(ctx context.Context, cli *clientv3.Client, opts *Options) (*Session, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.TTL < 0 || o.TTL > math.MaxInt32*time.Second {
		return nil, fmt.Errorf("processshared: cluster: bad TTL %v", o.TTL)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	secs := int64((o.TTL + time.Second - 1) / time.Second)
	lease, err := cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("processshared: cluster: grant lease: %w", err)
	}
	cs, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(secs)))
	if err != nil {
		revokeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		cli.Revoke(revokeCtx, lease.ID)
		cancel()
		return nil, fmt.Errorf("processshared: cluster: keep lease alive: %w", err)
	}
	host, _ := os.Hostname()
	return &Session{
		cli:    cli,
		cs:     cs,
		prefix: o.Prefix,
		ttl:    time.Duration(secs) * time.Second,
		lease:  fmt.Sprintf("%x", int64(lease.ID)),
		holder: fmt.Sprintf("lease=%x pid=%d host=%s", int64(lease.ID), os.Getpid(), url.QueryEscape(host)),
		locals: make(map[string]chan struct{}),
	}, nil
}

// Client returns the etcd client the session uses.
func (s *Session) Client() *clientv3.Client { return s.cli }

// Lease returns the session's lease.
func (s *Session) Lease() clientv3.LeaseID { return s.cs.Lease() }

// TTL returns the lease's time to live, in whole seconds.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done returns a channel that is closed when the session ends: its lease
// expired or was revoked, or Close was called.
func (s *Session) Done() <-chan struct{} { return s.cs.Done() }

// expired reports whether the session has ended.
func (s *Session) expired() bool {
	select {
	case <-s.cs.Done():
		return true
	default:
		return false
	}
}

// Close revokes the lease, which releases every lock and permit taken
// through the session; a Mutex held at Close is, for its next holder, a
// Mutex whose owner died (ErrOwnerDead), as with a local Segment closed
// while holding. Close does not close the client. A second Close returns
// nil.
func (s *Session) Close() error {
	if s.expired() {
		return nil
	}
	if err := s.cs.Close(); err != nil {
		return fmt.Errorf("processshared: cluster: revoke lease: %w", err)
	}
	return nil
}

// local returns the process-local lock of the mutex called name: the
// etcd key of a Mutex is per lease, so goroutines of one process must take
// turns before it.
func (s *Session) local(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.locals[name]
	if c == nil {
		c = make(chan struct{}, 1)
		s.locals[name] = c
	}
	return c
}

func (s *Session) nextSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

// key returns the key prefix of the object kind ("m" or "s") called name:
// the name is escaped, so that no name's keys lie under another's.
func (s *Session) key(kind, name string) string {
	return s.prefix + kind + "/" + url.PathEscape(name) + "/"
}

// ctxDone returns a context that is done when ctx is, or when the session
// ends.
func (s *Session) ctxDone(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-s.cs.Done():
			cancel(ErrSessionExpired)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// retry sleeps a little before an etcd call is retried, and returns the
// reason to stop instead: ctx is done or the session ended.
func (s *Session) retry(ctx context.Context, attempt int) error {
	d := time.Duration(min(attempt+1, 10)) * 50 * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.cs.Done():
		return ErrSessionExpired
	}
}
