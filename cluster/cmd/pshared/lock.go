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

var lockCmd = &command{
	name: "lock",
	help: `Usage: pshared lock --etcd ENDPOINTS [-w SECONDS | -n] [-E CODE] [-v] [ETCD OPTIONS] NAME [--] COMMAND [ARG...]

Run COMMAND while holding the mutex NAME, kept in etcd: of all the
"pshared lock NAME" commands running against that etcd (with one --prefix),
on any machine, one at a time runs its COMMAND; the others wait their turn,
first come first served.

If the pshared holding the mutex is killed, or its machine stops or loses
its network, the mutex is freed when its lease expires, --ttl seconds
after etcd last heard from it; the next caller is told on stderr that the
previous holder died, and runs its COMMAND. If the lease expires while
COMMAND runs (pshared could not reach etcd for the TTL), another caller
may take the lock: COMMAND gets SIGTERM at once (SIGKILL 10 s later) and
pshared exits 4. If pshared itself is killed while COMMAND runs, COMMAND
is killed too (SIGKILL).

Without --etcd, pshared lock is the machine-wide lock, kept in shared
memory, with the same options and --segment (as in the root module's
pshared).

Options:
  -w, -timeout SECONDS   give up after SECONDS (fractions allowed) if the
                         mutex is still held; 0 is -n
  -n, -nonblock          give up at once if the mutex is held
  -E, -conflict-exit-code CODE
                         exit status when giving up (default 1)
  -v, -verbose           say on stderr why it gave up, and how long it waited
` + etcdHelp + `Options may also follow NAME, before COMMAND. Long options take one or two
dashes (-etcd, --etcd).

Examples:
  # one deploy at a time across the fleet; wait at most 10 minutes
  pshared lock --etcd etcd1:2379,etcd2:2379 -w 600 deploy -- ./deploy.sh

  # in every host's crontab: skip this run if another host's still runs
  */5 * * * * pshared lock --etcd etcd1:2379 -n sync -- rsync -a /src/ /dst/

Exit status:
  1      the mutex was held: -n, or -w expired (or CODE, with -E)
  2      usage error
  3      etcd could not be reached, or the session not created
  4      the lock was lost while COMMAND ran; COMMAND got SIGTERM
  126    COMMAND could not be executed
  127    COMMAND was not found
  other  COMMAND's own exit status; 128+N if signal N killed it
`,
}

func etcdLock(args []string) (int, bool) {
	c := lockCmd
	fs := cli.NewFlags(c.name)
	var g cli.Guard
	g.Register(fs)
	var e etcdFlags
	e.register(fs)
	name, argv, done, status := g.Parse(fs, args, c.name, c.help, checkName)
	if done {
		return status, true
	}
	if e.endpoints == "" {
		return 0, false // the machine-local lock
	}
	if err := e.check(); err != nil {
		return cli.UsageError(c.name, "%v", err), true
	}
	return lockEtcd(&g, &e, name, argv), true
}

func lockEtcd(g *cli.Guard, e *etcdFlags, name string, argv []string) int {
	path, status := cli.LookCommand(argv)
	if status != cli.ExitOK {
		return status
	}
	client, s, err := e.connect()
	if err != nil {
		return cli.Failf("lock %q: %v", name, err)
	}
	defer client.Close()
	defer s.Close()
	m, err := cluster.NewMutex(s, name)
	if err != nil {
		return cli.Failf("lock %q: %v", name, err)
	}
	start := time.Now()
	ctx, interrupted, stop := waitContext(g)
	var ok bool
	if g.NoWait {
		ok, err = m.TryLockContext(ctx)
	} else {
		err = m.LockContext(ctx)
		ok = err == nil || errors.Is(err, ps.ErrOwnerDead)
	}
	stop()
	if sig := interrupted(); sig != 0 {
		if ok {
			uctx, cancel := context.WithTimeout(context.Background(), s.TTL())
			m.UnlockContext(uctx)
			cancel()
		}
		return sig
	}
	var dead *ps.OwnerDeadError
	switch {
	case ok && errors.As(err, &dead):
		previousDied(name, dead)
		mctx, cancel := context.WithTimeout(context.Background(), s.TTL())
		m.MarkConsistentContext(mctx)
		cancel()
	case ok:
	case err == nil:
		return g.Busy("lock %q is held", name)
	case errors.Is(err, context.DeadlineExceeded):
		return g.Busy("timed out after %vs: lock %q is held", g.Wait.String(), name)
	default:
		return cli.Failf("lock %q: %v", name, err)
	}
	g.Say("got lock %q after %.3fs (token %d)", name, time.Since(start).Seconds(), m.Token())
	status, lost := cli.RunCommand(path, argv, m.Lost())
	if lost {
		fmt.Fprintf(os.Stderr, "pshared: lock %q was lost while %s ran (its lease expired: etcd was not reached for %v); sent it SIGTERM\n", name, argv[0], s.TTL())
		return cli.ExitLost
	}
	uctx, cancel := context.WithTimeout(context.Background(), s.TTL())
	defer cancel()
	if err := m.UnlockContext(uctx); err != nil && !errors.Is(err, cluster.ErrLockLost) {
		// The lease is revoked below: that frees the lock too.
		fmt.Fprintf(os.Stderr, "pshared: unlock %q: %v\n", name, err)
	}
	return status
}

func previousDied(name string, dead *ps.OwnerDeadError) {
	who := "the previous holder"
	if dead.DeadPID != 0 {
		who = fmt.Sprintf("the previous holder (pid %d on its machine)", dead.DeadPID)
	}
	fmt.Fprintf(os.Stderr, "pshared: lock %q: %s died while holding it; proceeding\n", name, who)
}
