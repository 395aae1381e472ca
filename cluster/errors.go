package cluster

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrSessionExpired is returned when a Session's lease has expired or was
// revoked (by Close, or by an operator): nothing can be locked through it
// any more, and what it held is released. A waiter whose session expires
// gets it from LockContext or Acquire.
var ErrSessionExpired = errors.New("processshared: cluster: session expired")

// ErrLockLost is returned when an operation needs a lock that this handle
// no longer holds: its session expired while it held it (another process
// may have held it since), or it was never locked or already unlocked.
var ErrLockLost = errors.New("processshared: cluster: lock is not held (lost with its session, or unlocked)")

// transient reports whether err, returned by an etcd call while ctx is not
// done, is worth retrying: the cluster is electing a leader, or the member
// the client talked to went away.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	switch rpctypes.Error(err) {
	case rpctypes.ErrLeaderChanged, rpctypes.ErrNoLeader, rpctypes.ErrNotCapable,
		rpctypes.ErrStopped, rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail,
		rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrUnhealthy, rpctypes.ErrTooManyRequests:
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true // a per-call timeout inside the client, ctx itself is not done
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		return true
	}
	return false
}

// leaseGone reports whether err says the session's lease no longer exists.
func leaseGone(err error) bool {
	return errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound)
}
