package pshared

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	ps "github.com/processshared/processshared"
)

var holderCmd = &command{
	name:    "holder",
	summary: "print who holds a lock or semaphore, for scripts",
	run:     runHolder,
	help: `Usage: pshared holder [--segment SEG] NAME

Print the pid of the process that holds the lock NAME (a Mutex, as
"pshared lock NAME" takes), or of each process that holds permits of the
semaphore NAME (one a line, with its count after a space), and exit 0.
Exit 1 if nobody alive holds it: it is free, or its holder died (the next
locker takes it over; stderr says so). A holder in another PID namespace
is printed as its pid there, followed by " ns INODE".

The segment is read, not attached to: holder changes nothing.

Options:
  -segment SEG  the segment (default: $PSHARED_SEGMENT, or pshared-UID)

Examples:
  pshared holder backup || echo "nobody runs the backup"
  kill -0 "$(pshared holder backup)"

Exit status:
  0  held; the holder's pid printed
  1  free, or held only by dead processes
  2  usage error
  3  the segment or NAME does not exist, NAME is neither a lock nor a
     semaphore, or the segment cannot be read
`,
}

func runHolder(c *command, args []string) int {
	flags := newFlags(c.name)
	segment := segmentFlag(flags)
	if done, status := parseFlags(c, flags, args); done {
		return status
	}
	if flags.NArg() != 1 {
		return usageError(c.name, "want one NAME")
	}
	name := flags.Arg(0)
	si, err := ps.Inspect(*segment)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return failf("holder %s: no segment %s", name, *segment)
	case err != nil:
		return failf("holder %s: %v", name, err)
	}
	own := ps.OwnPIDNamespace()
	pid := func(p int, ns uint64) string {
		if ns != 0 && own != 0 && ns != own {
			return fmt.Sprintf("%d ns %d", p, ns)
		}
		return fmt.Sprint(p)
	}
	for _, o := range si.Objects {
		if o.Name != name {
			continue
		}
		switch {
		case o.Err != nil:
			return failf("holder %s: %v", name, o.Err)
		case o.Mutex != nil:
			m := o.Mutex
			if !m.Locked {
				return exitConflict
			}
			if !m.HolderAlive {
				fmt.Fprintf(os.Stderr, "pshared: holder %s: held by pid %s, which is dead\n", name, pid(m.HolderPID, m.HolderPIDNamespace))
				return exitConflict
			}
			fmt.Println(pid(m.HolderPID, m.HolderPIDNamespace))
			return exitOK
		case o.Semaphore != nil:
			status := exitConflict
			for _, h := range o.Semaphore.Holders {
				if !h.Alive {
					fmt.Fprintf(os.Stderr, "pshared: holder %s: %d permits held by pid %s, which is dead\n", name, h.Count, pid(h.PID, h.PIDNamespace))
					continue
				}
				fmt.Printf("%s %d\n", pid(h.PID, h.PIDNamespace), h.Count)
				status = exitOK
			}
			return status
		default:
			return failf("holder %s: a %v, neither a lock nor a semaphore", name, o.Kind)
		}
	}
	return failf("holder %s: no such object in %s", name, *segment)
}
