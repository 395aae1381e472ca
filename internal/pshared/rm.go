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
	summary: "remove segments, or every stale one, or objects in a segment",
	run:     runRm,
	help: `Usage: pshared rm [-f] NAME...
       pshared rm --stale [PATTERN...]
       pshared rm --object [-f] SEGMENT OBJECT...

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

With --object, delete the named objects inside SEGMENT (Segment.Delete):
each name is free at once for a new object, and the old object's space is
reused once the processes holding it have let it go. Processes that hold
the old object keep using it; they never reach a new object of that name.
A Mutex held by a live process, or a Semaphore with permits held by live
processes, is refused unless -f is given (checked just before the
deletion).

Options:
  -f        remove NAME even if live processes use it or it cannot be read;
            ignore NAMEs that do not exist
  -stale    remove the stale segments (matching PATTERN, if given)
  -object   delete OBJECTs inside SEGMENT; with -f, also held locks, and
            ignore OBJECTs that do not exist

Examples:
  pshared rm --stale
  pshared rm --stale 'myapp-*'
  pshared rm pshared-$(id -u)     # reset lock and sem names, when idle
  pshared rm --object myapp tenant-42-lock

Exit status:
  0  removed
  1  a segment is in use, or its table cannot be read, or an object is a
     held lock, and was left alone (without -f)
  2  usage error
  3  a NAME (SEGMENT, OBJECT) does not exist or is not a processshared
     segment, or removing failed (permission denied)
`,
}

func runRm(c *command, args []string) int {
	flags := newFlags(c.name)
	force := flags.Bool("f", false, "")
	stale := flags.Bool("stale", false, "")
	object := flags.Bool("object", false, "")
	if done, status := parseFlags(c, flags, args); done {
		return status
	}
	if *object {
		if *stale {
			return usageError(c.name, "--object and --stale do not go together")
		}
		if flags.NArg() < 2 {
			return usageError(c.name, "--object needs SEGMENT and at least one OBJECT")
		}
		return removeObjects(flags.Arg(0), flags.Args()[1:], *force)
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

// removeObjects deletes the objects names in the segment seg and returns
// the exit status.
func removeObjects(seg string, names []string, force bool) int {
	s, err := ps.Open(seg)
	if errors.Is(err, fs.ErrNotExist) {
		return failf("rm --object %s: no such segment", seg)
	}
	if err != nil {
		return failf("rm --object %s: %v", seg, err)
	}
	defer s.Close()
	status := exitOK
	for _, name := range names {
		if st := removeObject(s, name, force); st > status {
			status = st
		}
	}
	return status
}

// removeObject deletes the object name in s, unless it is a lock that a
// live process holds and force is not set.
func removeObject(s *ps.Segment, name string, force bool) int {
	si, err := s.Inspect()
	if err != nil && !force {
		return failf("rm --object %s %s: %v", s.Name(), name, err)
	}
	var holders []int
	for _, o := range si.Objects {
		if o.Name != name {
			continue
		}
		if m := o.Mutex; m != nil && m.Locked && m.HolderAlive {
			holders = append(holders, m.HolderPID)
		}
		if sem := o.Semaphore; sem != nil {
			for _, h := range sem.Holders {
				if h.Alive {
					holders = append(holders, h.PID)
				}
			}
		}
	}
	if len(holders) > 0 && !force {
		fmt.Fprintf(os.Stderr, "pshared: rm --object %s %s: held by live process %v; use -f to delete it anyway\n", s.Name(), name, holders)
		return exitConflict
	}
	err = s.Delete(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if force {
			return exitOK
		}
		return failf("rm --object %s %s: no such object", s.Name(), name)
	case err != nil:
		return failf("rm --object %s %s: %v", s.Name(), name, err)
	}
	return exitOK
}
