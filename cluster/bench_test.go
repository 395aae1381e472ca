package cluster_test

import (
	"context"
	"testing"

	"github.com/processshared/processshared/cluster"
	"github.com/processshared/processshared/cluster/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// BenchmarkMutexUncontended is one uncontended Lock+Unlock of the cluster
// Mutex and of etcd's concurrency.Mutex, on the same embedded single-node
// server (with fsync, as in production), in one run. The disk's fsync
// dominates, and varies by a factor of 2 or more between rounds here.
func BenchmarkMutexUncontended(b *testing.B) {
	benchUncontended(b, etcdtest.SingleFsync(b))
}

// BenchmarkMutexUncontendedNoFsync is BenchmarkMutexUncontended on a
// server that does not fsync: what is left is the protocol (round trips,
// transaction sizes, the client), which the two differ in.
func BenchmarkMutexUncontendedNoFsync(b *testing.B) {
	benchUncontended(b, etcdtest.Single(b))
}

func benchUncontended(b *testing.B, ep string) {
	cli := etcdtest.Client(b, ep)
	ctx := context.Background()
	// Rounds alternate the two, so that both see the same server, disk
	// and neighbours.
	for range 5 {
		benchCluster(b, cli, ctx)
		benchConcurrency(b, cli, ctx)
	}
}

func benchCluster(b *testing.B, cli *clientv3.Client, ctx context.Context) {
	b.Run("cluster", func(b *testing.B) {
		s := session(b, cli, 0, "/bench/")
		m, err := cluster.NewMutex(s, "m")
		if err != nil {
			b.Fatal(err)
		}
		// The first lock creates the state key.
		if err := m.LockContext(ctx); err != nil {
			b.Fatal(err)
		}
		if err := m.UnlockContext(ctx); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := m.LockContext(ctx); err != nil {
				b.Fatal(err)
			}
			if err := m.UnlockContext(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchConcurrency(b *testing.B, cli *clientv3.Client, ctx context.Context) {
	b.Run("concurrency", func(b *testing.B) {
		s, err := concurrency.NewSession(cli)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		m := concurrency.NewMutex(s, "/bench/concurrency/m")
		for b.Loop() {
			if err := m.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
