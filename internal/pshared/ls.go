package pshared

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/tabwriter"

	ps "github.com/processshared/processshared"
)

var lsCmd = &command{
	name:    "ls",
	summary: "list the segments in /dev/shm, their processes and objects",
	run:     runLs,
	help: `Usage: pshared ls [--json] [PATTERN...]

List the processshared segments in /dev/shm: name, size, mode, owner,
creator, the processes attached to each (alive or dead), whether it is
stale (no live process uses it: "pshared rm --stale" would remove it; a
segment whose queues hold messages is never stale, it is "kept"), and
under each segment its objects with their state: a mutex free or held by
a pid, alive or dead; a semaphore's free permits, waiters and holders; the
waiters of a cond; whether a slot was written.

Segments are read through read-only mappings: listing attaches to nothing
and changes nothing. Files of /dev/shm that are not processshared segments,
and segments the caller may not read, are not shown.

PATTERNs (shell wildcards: *, ?, [...]) select segments by name.

Options:
  -json     print a JSON array, one element per segment

Examples:
  pshared ls
  pshared ls 'myapp-*'
  pshared ls --json | jq '.[] | select(.stale) | .name'

Exit status:
  0  listed (perhaps nothing)
  2  usage error, or a malformed PATTERN
  3  /dev/shm cannot be read
`,
}

func runLs(c *command, args []string) int {
	fs := newFlags(c.name)
	asJSON := fs.Bool("json", false, "")
	if done, status := parseFlags(c, fs, args); done {
		return status
	}
	list, err := ps.List(fs.Args()...)
	if err != nil {
		if errors.Is(err, path.ErrBadPattern) {
			return usageError(c.name, "%v", err)
		}
		return failf("ls: %v", err)
	}
	if *asJSON {
		out := []jsonSegment{}
		for _, si := range list {
			out = append(out, toJSON(si))
		}
		writeJSON(os.Stdout, out)
		return exitOK
	}
	printList(os.Stdout, list)
	return exitOK
}

// printList prints a table of the segments, and under each segment's row
// its objects and their state.
func printList(w io.Writer, list []ps.SegmentInfo) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no segments")
		return
	}
	var rows bytes.Buffer
	tw := tabwriter.NewWriter(&rows, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tSIZE\tMODE\tOWNER\tCREATOR\tSTATUS")
	for _, si := range list {
		creator := "-"
		if si.CreatorPID != 0 {
			creator = fmt.Sprintf("%s (%s)", strings.TrimPrefix(pidText(si.CreatorPID, si.CreatorPIDNamespace), "pid "), aliveWord(si.CreatorAlive, "running", "exited"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", si.Name, humanSize(si.Size), si.Mode, owner(si.UID), creator, status(si))
	}
	tw.Flush()
	lines := strings.SplitAfter(rows.String(), "\n")
	io.WriteString(w, lines[0])
	for i, si := range list {
		io.WriteString(w, lines[i+1])
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		for _, o := range si.Objects {
			fmt.Fprintf(tw, "    %v\t%s\t%s\n", o.Kind, o.Name, objectState(o))
		}
		tw.Flush()
	}
}
