package pshared

import (
	"context"
	"errors"
	"time"

	ps "github.com/processshared/processshared"
)

var semCmd = &command{
	name:    "sem",
	summary: "run a command when one of N permits is free (like GNU parallel's sem)",
	run:     runSem,
	help: `Usage: pshared sem [-j N] [-w SECONDS | -n] [-E CODE] [-v] [--segment NAME] NAME [--] COMMAND [ARG...]

Run COMMAND when one of the N permits of the semaphore NAME is free, and
give the permit back when COMMAND ends: across every shell of the machine
(for one user, or one --segment), at most N commands of that NAME run at
once. Unlike GNU parallel's sem, COMMAND runs in the foreground.

A permit held by a process that was killed, even with kill -9, is not lost:
the next caller that finds too few permits takes it back. If pshared itself
is killed while COMMAND runs, COMMAND is killed too (SIGKILL), but not the
processes COMMAND started in turn.

The semaphore is created on first use with N permits. Every user of NAME
must give the same N; to change it, remove the segment while nothing runs
(pshared rm SEGMENT), or use another NAME.

Options:
  -j, -jobs N            permits: at most N commands at once (default 1)
  -w, -timeout SECONDS   give up after SECONDS if no permit is free; 0 is -n
  -n, -nonblock          give up at once if no permit is free
  -E, -conflict-exit-code CODE
                         exit status when giving up (default 1)
  -v, -verbose           say on stderr why it gave up, and how long it waited
  -segment NAME          the segment holding the names (default: the value of
                         $PSHARED_SEGMENT, or pshared-UID); mode 0600
Options may also follow NAME, before COMMAND.

Examples:
  # compress every log, 4 at a time, from one loop or many shells
  for f in *.log; do pshared sem -j 4 gzip -- gzip "$f" & done; wait

  # at most 2 heavy builds on this machine; give up after an hour
  pshared sem -j 2 -w 3600 build -- make -j8

Exit status:
  1      no permit was free: -n, or -w expired (or CODE, with -E)
  2      usage error
  3      the segment could not be opened or created, NAME exists with
         another N, or NAME is a mutex
  126    COMMAND could not be executed
  127    COMMAND was not found
  other  COMMAND's own exit status; 128+N if signal N killed it
`,
}

func runSem(c *command, args []string) int {
	fs := newFlags(c.name)
	var g guard
	g.register(fs)
	jobs := fs.Int("j", 1, "")
	fs.IntVar(jobs, "jobs", 1, "")
	name, argv, done, status := g.parse(c, fs, args)
	if done {
		return status
	}
	if *jobs < 1 || *jobs > 1<<20 {
		return usageError(c.name, "-j %d: want at least 1 permit", *jobs)
	}
	path, status := lookCommand(argv)
	if status != exitOK {
		return status
	}
	seg, err := openShared(*g.segment)
	if err != nil {
		return failf("sem %q: %v", name, err)
	}
	defer seg.Close()
	sem, err := ps.NewSemaphore(seg, name, *jobs, *jobs)
	if errors.Is(err, ps.ErrMismatch) {
		return semMismatch(seg, name, *jobs, err)
	}
	if err != nil {
		return failf("sem %q: %v", name, err)
	}
	start := time.Now()
	if g.NoWait {
		if !sem.TryAcquire(1) {
			return g.busy("sem %q: all %d permits are taken", name, *jobs)
		}
	} else {
		ctx := context.Background()
		if d, ok := g.deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d)
			defer cancel()
		}
		switch err := sem.Acquire(ctx, 1); {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded):
			return g.busy("timed out after %vs: sem %q: all %d permits are taken", g.Wait.String(), name, *jobs)
		default:
			return failf("sem %q: %v", name, err)
		}
	}
	g.say("got a permit of sem %q after %.3fs", name, time.Since(start).Seconds())
	status = runCommand(path, argv)
	if err := sem.Release(1); err != nil {
		return failf("sem %q: %v", name, err)
	}
	return status
}

// semMismatch explains why NAME cannot be a semaphore of n permits.
func semMismatch(seg *ps.Segment, name string, n int, err error) int {
	objs, _ := seg.Objects()
	for _, o := range objs {
		if o.Name != name {
			continue
		}
		if o.Kind != ps.KindSemaphore {
			return failf("sem %q: in segment %s, %q is a %v (is it used by pshared lock?), not a semaphore", name, seg.Name(), name, o.Kind)
		}
		return failf("sem %q exists with %d permits, not %d: use -j %d, or another NAME (segment %s)", name, o.Param, n, o.Param, seg.Name())
	}
	return failf("sem %q: %v", name, err)
}
