package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/cluster"
	"github.com/processshared/processshared/internal/cli"
)

var semCmd = &command{
	name: "sem",
	help: `Usage: pshared sem --etcd ENDPOINTS [-j N] [-w SECONDS | -n] [-E CODE] [-v] [ETCD OPTIONS] NAME [--] COMMAND [ARG...]

Run COMMAND when one of the N permits of the semaphore NAME, kept in etcd,
is free, and give the permit back when COMMAND ends: across every machine
using that etcd (with one --prefix), at most N commands of that NAME run
at once. Waiters are served in order of arrival.

A permit held by a pshared that was killed, or whose machine stopped or
lost its network, comes back when its lease expires (--ttl). If the lease
expires while COMMAND runs, COMMAND gets SIGTERM (SIGKILL 10 s later) and
pshared exits 4.

The semaphore is created on first use with N permits. Every user of NAME
must give the same N (or exit 3); to change it, use another NAME.

Without --etcd, pshared sem is the machine-wide semaphore, kept in shared
memory, with the same options and --segment.

Options:
  -j, -jobs N            permits: at most N commands at once (default 1)
  -w, -timeout SECONDS   give up after SECONDS if no permit is free; 0 is -n
  -n, -nonblock          give up at once if no permit is free
  -E, -conflict-exit-code CODE
                         exit status when giving up (default 1)
  -v, -verbose           say on stderr why it gave up, and how long it waited
` + etcdHelp + `Options may also follow NAME, before COMMAND.

Examples:
  # at most 2 heavy builds at once across the build farm
  pshared sem --etcd etcd1:2379 -j 2 -w 3600 build -- make -j8

Exit status:
  1      no permit was free: -n, or -w expired (or CODE, with -E)
  2      usage error
  3      etcd could not be reached, or NAME exists with another N
  4      the permit was lost while COMMAND ran; COMMAND got SIGTERM
  126    COMMAND could not be executed
  127    COMMAND was not found
  other  COMMAND's own exit status; 128+N if signal N killed it
`,
}

func etcdSem(args []string) (int, bool) {
	c := semCmd
	fs := cli.NewFlags(c.name)
	var g cli.Guard
	g.Register(fs)
	var e etcdFlags
	e.register(fs)
	jobs := fs.Int("j", 1, "")
	fs.IntVar(jobs, "jobs", 1, "")
	name, argv, done, status := g.Parse(fs, args, c.name, c.help, checkName)
	if done {
		return status, true
	}
	if e.endpoints == "" {
		return 0, false // the machine-local semaphore
	}
	if *jobs < 1 || *jobs > 1<<20 {
		return cli.UsageError(c.name, "-j %d: want at least 1 permit", *jobs), true
	}
	if err := e.check(); err != nil {
		return cli.UsageError(c.name, "%v", err), true
	}
	return semEtcd(&g, &e, name, argv, *jobs), true
}

func semEtcd(g *cli.Guard, e *etcdFlags, name string, argv []string, jobs int) int {
	path, status := cli.LookCommand(argv)
	if status != cli.ExitOK {
		return status
	}
	client, s, err := e.connect()
	if err != nil {
		return cli.Failf("sem %q: %v", name, err)
	}
	defer client.Close()
	defer s.Close()
	nctx, cancel := context.WithTimeout(context.Background(), s.TTL())
	sem, err := cluster.NewSemaphore(nctx, s, name, jobs)
	cancel()
	if errors.Is(err, ps.ErrMismatch) {
		return cli.Failf("sem %q: %v: use that -j, or another NAME", name, err)
	}
	if err != nil {
		return cli.Failf("sem %q: %v", name, err)
	}
	start := time.Now()
	ctx, interrupted, stop := waitContext(g)
	var ok bool
	if g.NoWait {
		ok, err = sem.TryAcquireContext(ctx, 1)
	} else {
		err = sem.Acquire(ctx, 1)
		ok = err == nil
	}
	stop()
	if sig := interrupted(); sig != 0 {
		if ok {
			uctx, cancel := context.WithTimeout(context.Background(), s.TTL())
			sem.ReleaseContext(uctx, 1)
			cancel()
		}
		return sig
	}
	switch {
	case ok:
	case err == nil:
		return g.Busy("sem %q: all %d permits are taken", name, jobs)
	case errors.Is(err, context.DeadlineExceeded):
		return g.Busy("timed out after %vs: sem %q: all %d permits are taken", g.Wait.String(), name, jobs)
	default:
		return cli.Failf("sem %q: %v", name, err)
	}
	g.Say("got a permit of sem %q after %.3fs", name, time.Since(start).Seconds())
	status, lost := cli.RunCommand(path, argv, s.Done())
	if lost {
		fmt.Fprintf(os.Stderr, "pshared: the permit of sem %q was lost while %s ran (its lease expired: etcd was not reached for %v); sent it SIGTERM\n", name, argv[0], s.TTL())
		return cli.ExitLost
	}
	if err := sem.Release(1); err != nil {
		fmt.Fprintf(os.Stderr, "pshared: sem %q: %v\n", name, err)
	}
	return status
}
