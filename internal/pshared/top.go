package pshared

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/cli"
)

var topCmd = &command{
	name:    "top",
	summary: "a live view of a segment's hottest locks and its processes",
	run:     runTop,
	help: `Usage: pshared top [--once] [-d SECONDS] [SEGMENT]

Show, refreshed every -d seconds (1 by default), the objects of SEGMENT
(the segment lock and sem use if none is given: $PSHARED_SEGMENT, or
pshared-UID) hottest first, and the processes attached to it. For each
Mutex: its state, whether processes wait for it, and over the last
interval the waits per second (Locks that had to sleep, after a short
spin), the time spent waiting per second, the average and longest wait
of the interval, and timeouts and owner deaths since it was created. For
a Semaphore and a Cond: the waiters.

Each frame clears a terminal with the VT100 sequence every terminal
emulator and ssh client understands; when stdout is not a terminal the
frames follow each other, separated by a blank line. Stop with Ctrl-C.

The segment is read, not attached to: top changes nothing.

Options:
  -once         print one frame, measured over one interval, and exit
  -d SECONDS    the interval (default 1)

Example:
  pshared top --once myapp-locks

Exit status:
  0  done (--once), or interrupted
  2  usage error
  3  SEGMENT does not exist or cannot be read
`,
}

func runTop(c *command, args []string) int {
	flags := newFlags(c.name)
	once := flags.Bool("once", false, "")
	interval := cli.Seconds(1)
	flags.Var(&interval, "d", "")
	segment := segmentFlag(flags)
	if done, status := parseFlags(c, flags, args); done {
		return status
	}
	switch flags.NArg() {
	case 0:
	case 1:
		*segment = flags.Arg(0)
	default:
		return usageError(c.name, "want at most one SEGMENT")
	}
	d := time.Duration(float64(interval) * float64(time.Second))
	if d < 10*time.Millisecond {
		return usageError(c.name, "-d %v: the interval must be at least 0.01 seconds", interval)
	}
	fi, err := os.Stdout.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0 // a terminal (or /dev/null)
	prev, prevAt, err := sample(*segment)
	if err != nil {
		return failf("top: %v", err)
	}
	for i := 0; ; i++ {
		time.Sleep(d)
		cur, at, err := sample(*segment)
		if err != nil {
			return failf("top: %v", err)
		}
		switch {
		case tty:
			fmt.Print("\033[H\033[2J")
		case i > 0:
			fmt.Println()
		}
		printTop(os.Stdout, prev, cur, at.Sub(prevAt), at)
		if *once {
			return exitOK
		}
		prev, prevAt = cur, at
	}
}

// sample inspects the segment name, and says when.
func sample(name string) (ps.SegmentInfo, time.Time, error) {
	si, err := ps.Inspect(name)
	at := time.Now()
	if si.Name == "" || si.Err != nil {
		if err == nil {
			err = si.Err
		}
		return si, at, err
	}
	return si, at, nil
}

// A topRow is one object of a frame.
type topRow struct {
	o              ps.ObjectState
	waitsPerSec    float64
	waitingEach    time.Duration // time spent waiting in each second
	avg, max       time.Duration // of the interval's waits (max: since created)
	waiters        string
	timeouts, dead int
}

// printTop prints a frame: what changed from prev to cur over d.
func printTop(w io.Writer, prev, cur ps.SegmentInfo, d time.Duration, at time.Time) {
	before := map[string]ps.ObjectState{}
	for _, o := range prev.Objects {
		before[o.Name] = o
	}
	var rows []topRow
	for _, o := range cur.Objects {
		r := topRow{o: o, waiters: "-"}
		switch {
		case o.Mutex != nil:
			m := o.Mutex
			r.waiters = aliveWord(m.Waiters, "yes", "no")
			r.timeouts, r.dead, r.max = m.Timeouts, m.OwnerDeaths, m.WaitMax
			if p := before[o.Name].Mutex; p != nil && m.Waited >= p.Waited {
				n := m.Waited - p.Waited
				r.waitsPerSec = float64(n) / d.Seconds()
				r.waitingEach = time.Duration(float64(m.WaitTotal-p.WaitTotal) / d.Seconds())
				if n > 0 {
					r.avg = (m.WaitTotal - p.WaitTotal) / time.Duration(n)
				}
			}
		case o.Semaphore != nil:
			r.waiters = fmt.Sprint(o.Semaphore.Waiters)
		case o.Cond != nil:
			r.waiters = fmt.Sprint(o.Cond.Waiters)
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b topRow) int {
		if c := cmp.Compare(b.waitsPerSec, a.waitsPerSec); c != 0 {
			return c
		}
		return cmp.Compare(b.waitingEach, a.waitingEach)
	})
	alive := 0
	for _, p := range cur.Processes {
		if p.Alive {
			alive++
		}
	}
	fmt.Fprintf(w, "pshared top: segment %s, %s, %s attached (%d alive), over %v\n\n",
		cur.Name, at.Format("15:04:05"), plural(len(cur.Processes), "process", "processes"), alive, d.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tKIND\tWAITERS\tWAITS/S\tWAITING/S\tAVG WAIT\tMAX WAIT\tTIMEOUTS\tDEATHS\tSTATE")
	for _, r := range rows {
		dash := func(s string, ok bool) string {
			if !ok {
				return "-"
			}
			return s
		}
		isMutex := r.o.Mutex != nil
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.o.Name, r.o.Kind, r.waiters,
			dash(fmt.Sprintf("%.0f", r.waitsPerSec), isMutex),
			dash(r.waitingEach.Round(time.Microsecond).String(), isMutex),
			dash(r.avg.Round(time.Microsecond).String(), isMutex),
			dash(r.max.Round(time.Microsecond).String(), isMutex),
			dash(fmt.Sprint(r.timeouts), isMutex),
			dash(fmt.Sprint(r.dead), isMutex),
			objectState(r.o))
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(no objects)")
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "PID\tSTATE\tATTACHED\tSLOT")
	for _, p := range cur.Processes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", strings.TrimPrefix(pidText(p.PID, p.PIDNamespace), "pid "), aliveWord(p.Alive, "alive", "dead"), clock(p.Since), p.Slot)
	}
	tw.Flush()
}
