package pshared

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	ps "github.com/processshared/processshared"
)

var rmCmd = &command{
	name:    "rm",
	summary: "remove segments, or every stale one",
	run:     runRm,
	help: `Usage: pshared rm [-f] NAME...
       pshared rm --stale [PATTERN...]

Remove the named processshared segments from /dev/shm, like ipcrm(1).
Processes that have a segment open keep using it until they close it; the
name is gone, and the next process to use the name creates a new segment.
So rm refuses a segment that live processes are attached to, unless -f is
given. It never removes a file that is not a processshared segment.

With --stale, remove every segment that no live process uses: every
process in its table is dead (killed, crashed) or has detached. Segments
in use are never removed: rm checks the process table, then looks in /proc
for processes that have the segment open or mapped without being in the
table yet, then checks the table again just before removing. Segments
whose queues hold messages are kept too, even with no process attached:
the messages wait for a receiver (remove such a segment by NAME). PATTERNs
(shell wildcards) restrict the sweep to the names they match. The names
removed are printed, one a line.

Options:
  -f        remove NAME even if live processes use it or it cannot be read;
            ignore NAMEs that do not exist
  -stale    remove the stale segments (matching PATTERN, if given)

Examples:
  pshared rm --stale
  pshared rm --stale 'myapp-*'
  pshared rm pshared-$(id -u)     # reset lock and sem names, when idle

Exit status:
  0  removed
  1  a segment is in use, or its table cannot be read, and was left
     alone (without -f)
  2  usage error
  3  a NAME does not exist or is not a processshared segment, or removing
     failed (permission denied)
`,
}

func runRm(c *command, args []string) int {
	flags := newFlags(c.name)
	force := flags.Bool("f", false, "")
	stale := flags.Bool("stale", false, "")
	if done, status := parseFlags(c, flags, args); done {
		return status
	}
	if *stale {
		if *force {
			return usageError(c.name, "-f and --stale do not go together")
		}
		removed, err := ps.RemoveStale(flags.Args()...)
		for _, name := range removed {
			fmt.Println(name)
		}
		if errors.Is(err, path.ErrBadPattern) {
			return usageError(c.name, "%v", err)
		}
		if err != nil {
			return failf("rm --stale: %v", err)
		}
		return exitOK
	}
	if flags.NArg() == 0 {
		return usageError(c.name, "missing NAME (or --stale)")
	}
	status := exitOK
	for _, name := range flags.Args() {
		if s := removeOne(name, *force); s > status {
			status = s
		}
	}
	return status
}

// removeOne removes the segment name and returns the exit status for it.
func removeOne(name string, force bool) int {
	si, err := ps.Inspect(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if force {
			return exitOK
		}
		return failf("rm %s: no such segment", name)
	case si.Name == "": // not a segment, or not readable at all
		return failf("rm %s: %v", name, err)
	case err != nil && !force:
		fmt.Fprintf(os.Stderr, "pshared: rm %s: cannot read its process table (%v); use -f to remove it anyway\n", name, err)
		return exitConflict
	}
	var live []int
	for _, p := range si.Processes {
		if p.Alive {
			live = append(live, p.PID)
		}
	}
	if len(live) > 0 && !force {
		fmt.Fprintf(os.Stderr, "pshared: rm %s: in use by live process %v; use -f to remove it anyway\n", name, live)
		return exitConflict
	}
	if err := ps.Remove(name); err != nil && !(force && errors.Is(err, fs.ErrNotExist)) {
		return failf("rm %s: %v", name, err)
	}
	return exitOK
}
