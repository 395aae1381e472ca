package pshared

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
)

var recvCmd = &command{
	name:    "recv",
	summary: "receive messages from a queue, one per line",
	run:     runRecv,
	help: `Usage: pshared recv [-n COUNT] [-w SECONDS] [-0] [-c CAP] [-m BYTES] [--segment NAME] NAME

Receive messages from the queue NAME and write them to standard output,
one per line (or each followed by a NUL with -0), until COUNT messages were
received or the stream ended (pshared close, or Close in a program). Each
message goes to exactly one receiver: several pshared recv on one NAME
share the work. When the queue is empty, recv waits.

The queue is created on first use, as for pshared send.

Options:
  -n, -count COUNT       stop after COUNT messages (default: at the end of
                         the stream)
  -w, -timeout SECONDS   give up after SECONDS in all
  -0                     end each message with a NUL, not a newline
  -c, -cap CAP           messages the queue holds, when recv creates it (64)
  -m, -max BYTES         longest message, when recv creates it (4096)
  -segment NAME          the segment holding the names (default: the value of
                         $PSHARED_SEGMENT, or pshared-UID)

Examples:
  # a worker: one job at a time until "pshared close jobs"
  pshared recv jobs | while read -r job; do $job; done

  # wait up to 10 s for one message
  msg=$(pshared recv -n 1 -w 10 replies)

Exit status:
  0      COUNT messages were received, or the stream ended
  1      -w expired first (the messages received so far were written)
  2      usage error
  3      the segment or queue could not be opened or created, or its
         memory holds garbage
`,
}

func runRecv(c *command, args []string) int {
	fs := newFlags(c.name)
	var q queueFlags
	q.register(fs)
	count := fs.Int("n", -1, "")
	fs.IntVar(count, "count", -1, "")
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
	ctx, cancel := q.context()
	defer cancel()
	sep := byte('\n')
	if q.nul {
		sep = 0
	}
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer w.Flush()
	write := func(m []byte) error {
		w.Write(m)
		return w.WriteByte(sep)
	}
	for n := 0; *count < 0 || n < *count; n++ {
		// Write what is queued without waiting; flush before a wait, so
		// that a reader downstream sees every message received so far.
		m, ok, err := queue.TryRecv()
		if err == nil && !ok {
			if err := w.Flush(); err != nil {
				return failf("recv: %v", err)
			}
			m, err = queue.RecvContext(ctx)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return exitOK
		case errors.Is(err, context.DeadlineExceeded):
			return exitConflict
		default:
			return failf("recv: %v", err)
		}
		if err := write(m); err != nil {
			return failf("recv: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		return failf("recv: %v", err)
	}
	return exitOK
}
