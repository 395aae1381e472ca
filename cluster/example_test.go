package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/cluster"
	"github.com/processshared/processshared/cluster/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// runLocked runs f holding l, on one machine or many: it takes either
// backend's Mutex. After a holder died it repairs first.
func runLocked(ctx context.Context, l ps.RobustLocker, repair, f func()) error {
	switch err := l.LockContext(ctx); {
	case err == nil:
	case errors.Is(err, ps.ErrOwnerDead):
		repair()
		l.MarkConsistent()
	default:
		return err
	}
	defer l.Unlock()
	f()
	return nil
}

// One function, two backends: a Mutex in shared memory, for the processes
// of one machine, and a Mutex in etcd, for processes anywhere.
func Example() {
	ctx := context.Background()

	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	local, err := ps.NewMutex(seg, "jobs")
	if err != nil {
		log.Fatal(err)
	}

	endpoint, stop := exampleEtcd() // an etcd of the example's own
	defer stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	s, err := cluster.NewSession(ctx, cli, nil) // one per process
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	remote, err := cluster.NewMutex(s, "jobs")
	if err != nil {
		log.Fatal(err)
	}

	for _, l := range []ps.RobustLocker{local, remote} {
		err := runLocked(ctx, l, func() { fmt.Println("repair") }, func() { fmt.Printf("%T holds\n", l) })
		if err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// *processshared.Mutex holds
	// *cluster.Mutex holds
}

// exampleEtcd starts a single-node etcd in a temporary directory.
func exampleEtcd() (endpoint string, stop func()) {
	dir, err := os.MkdirTemp("", "example-etcd-")
	if err != nil {
		log.Fatal(err)
	}
	ms, initial, err := etcdtest.Members(dir, 1)
	if err != nil {
		log.Fatal(err)
	}
	e, err := ms[0].Start(context.Background(), initial, true)
	if err != nil {
		log.Fatal(err)
	}
	return ms[0].Client, func() { e.Close(); os.RemoveAll(dir) }
}
