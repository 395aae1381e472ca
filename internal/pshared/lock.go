package pshared

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	ps "github.com/processshared/processshared"
)

var lockCmd = &command{
	name:    "lock",
	summary: "run a command while holding a machine-wide mutex (like flock)",
	run:     runLock,
	help: `Usage: pshared lock [-w SECONDS | -n] [-E CODE] [-v] [--segment NAME] NAME [--] COMMAND [ARG...]

Run COMMAND while holding the cross-process mutex NAME, as flock(1) does
with a lock file: of all the "pshared lock NAME" commands running on the
machine (for one user, or one --segment), one at a time runs its COMMAND;
the others wait their turn.

If the process holding the mutex is killed, even with kill -9, the mutex
is not left locked: the next caller takes it at once, is told on stderr
that the previous holder died, and runs its COMMAND. If pshared itself is
killed while COMMAND runs, COMMAND is killed too (SIGKILL), so that it
does not run on without the lock; processes that COMMAND started in turn
are not, so make a shell's last command an exec: sh -c 'prepare; exec job'.

Options:
  -w, -timeout SECONDS   give up after SECONDS (fractions allowed) if the
                         mutex is still held; 0 is -n
  -n, -nonblock          give up at once if the mutex is held
  -E, -conflict-exit-code CODE
                         exit status when giving up (default 1)
  -v, -verbose           say on stderr why it gave up, and how long it waited
  -segment NAME          the segment holding the names (default: the value of
                         $PSHARED_SEGMENT, or pshared-UID); mode 0600
Options may also follow NAME, before COMMAND. Long options take one or two
dashes (-timeout, --timeout).

Examples:
  # one deploy at a time; wait at most 10 minutes
  pshared lock -w 600 deploy -- ./deploy.sh production

  # in a crontab: if the last sync still runs, skip this one quietly
  */5 * * * * pshared lock -n sync -- rsync -a /src/ /dst/

Exit status:
  1      the mutex was held: -n, or -w expired (or CODE, with -E)
  2      usage error
  3      the segment could not be opened or created, or NAME is a semaphore
  126    COMMAND could not be executed
  127    COMMAND was not found
  other  COMMAND's own exit status; 128+N if signal N killed it
`,
}

func runLock(c *command, args []string) int {
	fs := newFlags(c.name)
	var g guard
	g.register(fs)
	name, argv, done, status := g.parse(c, fs, args)
	if done {
		return status
	}
	path, status := lookCommand(argv)
	if status != exitOK {
		return status
	}
	seg, err := openShared(*g.segment)
	if err != nil {
		return failf("lock %q: %v", name, err)
	}
	defer seg.Close()
	m, err := ps.NewMutex(seg, name)
	if errors.Is(err, ps.ErrMismatch) {
		return failf("lock %q: in segment %s, %q is not a mutex (is it used by pshared sem?): %v", name, seg.Name(), name, err)
	}
	if err != nil {
		return failf("lock %q: %v", name, err)
	}
	start := time.Now()
	if g.NoWait {
		if !m.TryLock() {
			return g.busy("lock %q is held by pid %d", name, m.HolderPID())
		}
		if !m.Consistent() {
			previousDied(seg, name, 0)
			m.MarkConsistent()
		}
	} else {
		ctx := context.Background()
		if d, ok := g.deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d)
			defer cancel()
		}
		var dead *ps.OwnerDeadError
		switch err := m.LockContext(ctx); {
		case err == nil:
		case errors.As(err, &dead):
			previousDied(seg, name, dead.DeadPID)
			m.MarkConsistent()
		case errors.Is(err, context.DeadlineExceeded):
			return g.busy("timed out after %vs: lock %q is held by pid %d", g.Wait.String(), name, m.HolderPID())
		default:
			return failf("lock %q: %v", name, err)
		}
	}
	g.say("got lock %q after %.3fs", name, time.Since(start).Seconds())
	defer m.Unlock()
	return runCommand(path, argv)
}

// previousDied tells the user that the last holder of the mutex name died
// holding it. pid is the dead holder's, or 0 to look it up.
func previousDied(seg *ps.Segment, name string, pid int) {
	if pid == 0 {
		if si, err := seg.Inspect(); err == nil {
			for _, o := range si.Objects {
				if o.Name == name && o.Mutex != nil {
					pid = o.Mutex.DeadPID
				}
			}
		}
	}
	who := "the previous holder"
	if pid != 0 {
		who = fmt.Sprintf("the previous holder (pid %d)", pid)
	}
	fmt.Fprintf(os.Stderr, "pshared: lock %q: %s died while holding it; proceeding\n", name, who)
}
