package pshared

var closeCmd = &command{
	name:    "close",
	summary: "end a queue's stream: receivers drain it, then exit 0",
	run:     runClose,
	help: `Usage: pshared close [-c CAP] [-m BYTES] [--segment NAME] NAME

End the stream of the queue NAME: every pshared recv (and every program's
Recv) gets the messages still queued, then the end of the stream, and
exits 0; pshared send (and Send) fails from then on. Closing a closed
queue does nothing.

Options:
  -c, -cap CAP           messages the queue holds, if close creates it (64)
  -m, -max BYTES         longest message, if close creates it (4096)
  -segment NAME          the segment holding the names (default: the value of
                         $PSHARED_SEGMENT, or pshared-UID)

Example:
  producer | pshared send jobs; pshared close jobs

Exit status:
  0      the stream is ended
  2      usage error
  3      the segment or queue could not be opened or created
`,
}

func runClose(c *command, args []string) int {
	fs := newFlags(c.name)
	var q queueFlags
	q.register(fs)
	name, rest, done, status := q.parse(c, fs, args)
	if done {
		return status
	}
	if len(rest) > 0 {
		return usageError(c.name, "unexpected arguments after NAME: %q", rest)
	}
	seg, queue, status := q.open(c, name)
	if status != exitOK {
		return status
	}
	defer seg.Close()
	if err := queue.Close(); err != nil {
		return failf("close: %v", err)
	}
	return exitOK
}
