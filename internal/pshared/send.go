package pshared

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/cli"
)

// Queues made by send and recv, unless -c and -m say otherwise.
const (
	defaultQueueCap = 64
	defaultQueueMax = 4096
)

var sendCmd = &command{
	name:    "send",
	summary: "send messages to a queue, from arguments or lines of stdin",
	run:     runSend,
	help: `Usage: pshared send [-0] [-w SECONDS | -n] [-c CAP] [-m BYTES] [--segment NAME] NAME [MSG...]

Send each MSG to the queue NAME, in order; with no MSG, send each line of
standard input (without its newline), or with -0 each NUL-terminated
string. Another shell receives them with pshared recv. When the queue is
full, send waits for room.

The queue is created on first use, by send or recv, holding at most CAP
messages of at most BYTES bytes each. Every user of NAME must give the
same CAP and BYTES (or none: the defaults, 64 and 4096).

Options:
  -0                     stdin holds NUL-terminated messages, not lines
  -w, -timeout SECONDS   give up if the queue stays full this long in all
  -n, -nonblock          give up at once if the queue is full
  -c, -cap CAP           messages the queue holds, when send creates it (64)
  -m, -max BYTES         longest message, when send creates it (4096)
  -segment NAME          the segment holding the names (default: the value of
                         $PSHARED_SEGMENT, or pshared-UID)

Examples:
  # hand work to whoever runs "pshared recv jobs"
  ls *.log | pshared send jobs
  pshared send jobs "compress a.log" "compress b.log"
  pshared close jobs          # no more work: receivers finish, then exit 0

Exit status:
  0      every message was sent
  1      the queue stayed full: -n, or -w expired
  2      usage error
  3      the segment or queue could not be opened or created (NAME exists as
         another object, or with another CAP or BYTES), a message is longer
         than BYTES, or the queue was closed (pshared close)
`,
}

// queueFlags are the options send and recv share.
type queueFlags struct {
	nul      bool
	wait     cli.Seconds
	capacity int
	max      int
	segment  *string
}

func (q *queueFlags) register(fs *flag.FlagSet) {
	q.wait = -1
	fs.BoolVar(&q.nul, "0", false, "")
	fs.Var(&q.wait, "w", "")
	fs.Var(&q.wait, "timeout", "")
	fs.IntVar(&q.capacity, "c", defaultQueueCap, "")
	fs.IntVar(&q.capacity, "cap", defaultQueueCap, "")
	fs.IntVar(&q.max, "m", defaultQueueMax, "")
	fs.IntVar(&q.max, "max", defaultQueueMax, "")
	q.segment = segmentFlag(fs)
}

// parse parses [OPTION...] NAME [OPTION...] [ARG...].
func (q *queueFlags) parse(c *command, fs *flag.FlagSet, args []string) (name string, rest []string, done bool, status int) {
	if done, status := parseFlags(c, fs, args); done {
		return "", nil, true, status
	}
	rest = fs.Args()
	if len(rest) == 0 {
		return "", nil, true, usageError(c.name, "missing NAME")
	}
	name, rest = rest[0], rest[1:]
	if len(rest) > 0 && len(rest[0]) > 1 && rest[0][0] == '-' && rest[0] != "--" {
		if done, status := parseFlags(c, fs, rest); done {
			return "", nil, true, status
		}
		rest = fs.Args()
	} else if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if err := checkObjectName(name); err != nil {
		return "", nil, true, usageError(c.name, "%v", err)
	}
	if q.capacity < 1 || q.capacity > ps.MaxQueueCapacity || q.max < 0 || q.max > 64<<20 {
		return "", nil, true, usageError(c.name, "-c %d -m %d: want 1 to %d messages of 0 to %d bytes", q.capacity, q.max, ps.MaxQueueCapacity, 64<<20)
	}
	return name, rest, false, 0
}

// context returns the context of the whole command's waits (-w).
func (q *queueFlags) context() (context.Context, context.CancelFunc) {
	if q.wait < 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), q.wait.Duration())
}

// open opens the queue NAME, creating it with the flags' size.
func (q *queueFlags) open(c *command, name string) (*ps.Segment, *ps.Queue, int) {
	seg, err := openShared(*q.segment)
	if err != nil {
		return nil, nil, failf("%s %q: %v", c.name, name, err)
	}
	queue, err := ps.NewQueue(seg, name, q.capacity, q.max)
	if err != nil {
		seg.Close()
		if errors.Is(err, ps.ErrMismatch) {
			return nil, nil, failf("%s: %v (give the same -c and -m as its creator, or use another NAME)", c.name, err)
		}
		return nil, nil, failf("%s: %v", c.name, err)
	}
	return seg, queue, exitOK
}

func runSend(c *command, args []string) int {
	fs := newFlags(c.name)
	var q queueFlags
	q.register(fs)
	nowait := fs.Bool("n", false, "")
	fs.BoolVar(nowait, "nonblock", false, "")
	name, msgs, done, status := q.parse(c, fs, args)
	if done {
		return status
	}
	seg, queue, status := q.open(c, name)
	if status != exitOK {
		return status
	}
	defer seg.Close()
	ctx, cancel := q.context()
	defer cancel()
	send := func(m []byte) int {
		if *nowait || q.wait == 0 {
			ok, err := queue.TrySend(m)
			if err != nil {
				return failf("send: %v", err)
			}
			if !ok {
				return exitConflict
			}
			return exitOK
		}
		switch err := queue.SendContext(ctx, m); {
		case err == nil:
			return exitOK
		case errors.Is(err, context.DeadlineExceeded):
			return exitConflict
		default:
			return failf("send: %v", err)
		}
	}
	if len(msgs) > 0 {
		for _, m := range msgs {
			if st := send([]byte(m)); st != exitOK {
				return st
			}
		}
		return exitOK
	}
	sep := byte('\n')
	if q.nul {
		sep = 0
	}
	r := bufio.NewReaderSize(os.Stdin, 64<<10)
	for {
		line, err := r.ReadBytes(sep)
		if len(line) > 0 {
			if st := send(bytes.TrimSuffix(line, []byte{sep})); st != exitOK {
				return st
			}
		}
		if err == io.EOF {
			return exitOK
		}
		if err != nil {
			return failf("send: reading stdin: %v", err)
		}
	}
}
