package pshared

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ps "github.com/processshared/processshared"
)

var inspectCmd = &command{
	name:    "inspect",
	summary: "show one segment in detail: processes, objects, their state",
	run:     runInspect,
	help: `Usage: pshared inspect [--json] NAME

Show the segment NAME of /dev/shm in detail: its file, its creator, every
process in its table (alive or dead, and since when), and every object
with its state: who holds a mutex and whether that process is alive, how
many permits of a semaphore are free and who holds the others, how many
goroutines wait on a cond, whether a slot was written.

The segment is read through a read-only mapping: inspecting it does not
attach to it, lock anything, or change a byte. What it shows was true at
one instant during the call.

Options:
  -json     print JSON instead (the schema of one element of "ls --json")

Example:
  pshared inspect pshared-$(id -u)

Exit status:
  0  shown
  2  usage error
  3  NAME does not exist, is not a processshared segment, or cannot be
     read (permission denied, another layout version, corrupt)
`,
}

func runInspect(c *command, args []string) int {
	fs := newFlags(c.name)
	asJSON := fs.Bool("json", false, "")
	if done, status := parseFlags(c, fs, args); done {
		return status
	}
	if fs.NArg() != 1 {
		return usageError(c.name, "want one segment NAME, got %d arguments", fs.NArg())
	}
	si, err := ps.Inspect(fs.Arg(0))
	if si.Name == "" { // not a segment at all
		return failf("inspect: %v", err)
	}
	if *asJSON {
		writeJSON(os.Stdout, toJSON(si))
	} else {
		printSegment(os.Stdout, si)
	}
	if err != nil {
		return failf("inspect %s: %v", si.Name, err)
	}
	return exitOK
}

// printSegment prints si in detail.
func printSegment(w io.Writer, si ps.SegmentInfo) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "segment\t%s\n", si.Name)
	fmt.Fprintf(tw, "file\t/dev/shm/%s, %s (%d bytes), %v, owner %s\n", si.Name, humanSize(si.Size), si.Size, si.Mode, owner(si.UID))
	if si.CreatorPID != 0 {
		fmt.Fprintf(tw, "created\t%s by %s (%s)\n", clock(si.Created), pidText(si.CreatorPID, si.CreatorPIDNamespace), aliveWord(si.CreatorAlive, "running", "exited"))
	}
	if si.Err == nil {
		fmt.Fprintf(tw, "capacity\t%d processes, %d objects, %s free\n", si.MaxProcesses, si.MaxObjects, humanSize(si.Free))
	}
	fmt.Fprintf(tw, "status\t%s\n", status(si))
	tw.Flush()
	if si.Err != nil {
		return
	}
	fmt.Fprintln(w)
	if len(si.Processes) == 0 {
		fmt.Fprintln(w, "no processes attached")
	} else {
		fmt.Fprintln(tw, "PID\tSTATE\tATTACHED\tSLOT")
		for _, p := range si.Processes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", strings.TrimPrefix(pidText(p.PID, p.PIDNamespace), "pid "), aliveWord(p.Alive, "alive", "dead"), clock(p.Since), p.Slot)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if len(si.Objects) == 0 {
		fmt.Fprintln(w, "no objects")
		return
	}
	fmt.Fprintln(tw, "KIND\tNAME\tSIZE\tSTATE")
	for _, o := range si.Objects {
		fmt.Fprintf(tw, "%v\t%s\t%d\t%s\n", o.Kind, o.Name, o.Size, objectState(o))
	}
	tw.Flush()
}

// status says whether si is in use.
func status(si ps.SegmentInfo) string {
	alive, dead := 0, 0
	for _, p := range si.Processes {
		if p.Alive {
			alive++
		} else {
			dead++
		}
	}
	switch {
	case si.Err != nil:
		return "unreadable: " + si.Err.Error()
	case si.Stale && alive+dead == 0:
		return "stale: no process attached"
	case si.Stale:
		return fmt.Sprintf("stale: %s dead, none alive", plural(dead, "process", "processes"))
	case alive == 0 && si.Queued > 0:
		return fmt.Sprintf("kept: %s queued, no live process (rm --stale keeps it)", plural(si.Queued, "message", "messages"))
	default:
		return fmt.Sprintf("in use: %s alive, %d dead", plural(alive, "process", "processes"), dead)
	}
}

// objectState describes the state of an object in a few words.
func objectState(o ps.ObjectState) string {
	if o.Err != nil {
		return "unreadable: " + o.Err.Error()
	}
	switch {
	case o.Mutex != nil:
		m := o.Mutex
		var parts []string
		switch {
		case !m.Locked:
			parts = append(parts, "free")
		case m.HolderPID == 0:
			parts = append(parts, "held by a process that is gone")
		default:
			parts = append(parts, fmt.Sprintf("held by %s (%s)", pidText(m.HolderPID, m.HolderPIDNamespace), aliveWord(m.HolderAlive, "alive", "dead")))
		}
		if !m.Consistent {
			parts = append(parts, fmt.Sprintf("inconsistent: pid %d died holding it", m.DeadPID))
		}
		if m.OwnerDeaths > 0 {
			parts = append(parts, fmt.Sprintf("%s died holding it so far", plural(m.OwnerDeaths, "holder", "holders")))
		}
		if m.Waited > 0 {
			w := fmt.Sprintf("%d waits (%v in all, longest %v)", m.Waited, m.WaitTotal.Round(time.Microsecond), m.WaitMax.Round(time.Microsecond))
			if m.Timeouts+m.Cancellations > 0 {
				w += fmt.Sprintf(", %d timed out, %d cancelled", m.Timeouts, m.Cancellations)
			}
			parts = append(parts, w)
		}
		return strings.Join(parts, "; ")
	case o.RWMutex != nil:
		rw := o.RWMutex
		var parts []string
		switch {
		case !rw.Writer && len(rw.Readers) == 0:
			parts = append(parts, "free")
		case rw.Writer && rw.WriterPID == 0:
			parts = append(parts, "writer: a process that is gone")
		case rw.Writer:
			parts = append(parts, fmt.Sprintf("writer %s (%s)", pidText(rw.WriterPID, rw.WriterPIDNamespace), aliveWord(rw.WriterAlive, "alive", "dead")))
		}
		if len(rw.Readers) > 0 {
			var hs []string
			for _, h := range rw.Readers {
				hs = append(hs, fmt.Sprintf("%s ×%d (%s)", pidText(h.PID, h.PIDNamespace), h.Count, aliveWord(h.Alive, "alive", "dead")))
			}
			parts = append(parts, "read by "+strings.Join(hs, ", "))
		}
		if rw.Waiters {
			parts = append(parts, "waiters")
		}
		if !rw.Consistent {
			parts = append(parts, fmt.Sprintf("inconsistent: pid %d died writing", rw.DeadPID))
		}
		if rw.OwnerDeaths > 0 {
			parts = append(parts, fmt.Sprintf("%s died holding it so far", plural(rw.OwnerDeaths, "writer", "writers")))
		}
		if rw.Waited > 0 {
			w := fmt.Sprintf("%d waits (%v in all)", rw.Waited, rw.WaitTotal.Round(time.Microsecond))
			if rw.Timeouts+rw.Cancellations > 0 {
				w += fmt.Sprintf(", %d timed out, %d cancelled", rw.Timeouts, rw.Cancellations)
			}
			parts = append(parts, w)
		}
		return strings.Join(parts, "; ")
	case o.Semaphore != nil:
		s := o.Semaphore
		str := fmt.Sprintf("%d free", s.Value)
		if s.Max != 0 {
			str = fmt.Sprintf("%d of %d free", s.Value, s.Max)
		}
		if s.Waiters > 0 {
			str += fmt.Sprintf(", %d waiting", s.Waiters)
		}
		if s.Hungry {
			str += ", a waiter hungry"
		}
		if len(s.Holders) > 0 {
			var hs []string
			for _, h := range s.Holders {
				hs = append(hs, fmt.Sprintf("%s ×%d (%s)", pidText(h.PID, h.PIDNamespace), h.Count, aliveWord(h.Alive, "alive", "dead")))
			}
			str += "; held by " + strings.Join(hs, ", ")
		}
		return str
	case o.Cond != nil:
		return fmt.Sprintf("%d waiting", o.Cond.Waiters)
	case o.Event != nil, o.Barrier != nil, o.WaitGroup != nil, o.Once != nil:
		return syncStateWords(o)
	case o.Queue != nil:
		q := o.Queue
		str := fmt.Sprintf("%d of %d queued (messages up to %d bytes)", q.Len, q.Cap, o.Param)
		if q.Senders > 0 || q.Receivers > 0 {
			str += fmt.Sprintf("; %d blocked sending, %d blocked receiving", q.Senders, q.Receivers)
		}
		if q.Closed {
			str += "; closed"
		}
		return str
	case o.Slot != nil:
		if !o.Slot.Written {
			return fmt.Sprintf("empty (capacity %d bytes)", o.Param)
		}
		return fmt.Sprintf("%d bytes written, generation %d (capacity %d)", o.Slot.Len, o.Slot.Generation, o.Param)
	case o.Kind == ps.KindArray && o.Param != 0:
		return fmt.Sprintf("%d elements of %d bytes", o.Size/int64(o.Param), o.Param)
	case o.Kind == ps.KindBytes:
		return fmt.Sprintf("%d bytes", o.Size)
	}
	return ""
}

func aliveWord(alive bool, yes, no string) string {
	if alive {
		return yes
	}
	return no
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05")
}

func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < 4 {
		v /= 1024
		i++
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + "KMGTP"[i:i+1] + "iB"
}

func owner(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// The JSON form of a segment, shared by ls and inspect.
type jsonSegment struct {
	Name         string        `json:"name"`
	Size         int64         `json:"size"`
	Mode         string        `json:"mode"`
	UID          int           `json:"uid"`
	CreatorPID   int           `json:"creator_pid"`
	CreatorPIDNS uint64        `json:"creator_pid_namespace,omitempty"`
	CreatorAlive bool          `json:"creator_alive"`
	Created      *time.Time    `json:"created,omitempty"`
	MaxProcesses int           `json:"max_processes"`
	MaxObjects   int           `json:"max_objects"`
	Free         int64         `json:"free"`
	Stale        bool          `json:"stale"`
	Queued       int           `json:"queued"`
	Error        string        `json:"error,omitempty"`
	Processes    []jsonProcess `json:"processes"`
	Objects      []jsonObject  `json:"objects"`
}

type jsonProcess struct {
	PID   int        `json:"pid"`
	PIDNS uint64     `json:"pid_namespace,omitempty"`
	Alive bool       `json:"alive"`
	Since *time.Time `json:"since,omitempty"`
	Slot  int        `json:"slot"`
}

type jsonObject struct {
	Name      string         `json:"name"`
	Kind      string         `json:"kind"`
	Offset    int64          `json:"offset"`
	Size      int64          `json:"size"`
	Param     uint32         `json:"param"`
	State     string         `json:"state"` // objectState's words
	Error     string         `json:"error,omitempty"`
	Mutex     *jsonMutex     `json:"mutex,omitempty"`
	RWMutex   *jsonRWMutex   `json:"rwmutex,omitempty"`
	Semaphore *jsonSemaphore `json:"semaphore,omitempty"`
	Cond      *jsonCond      `json:"cond,omitempty"`
	Slot      *jsonSlot      `json:"slot,omitempty"`
	Queue     *jsonQueue     `json:"queue,omitempty"`
	Event     *jsonEvent     `json:"event,omitempty"`
	Barrier   *jsonBarrier   `json:"barrier,omitempty"`
	WaitGroup *jsonWaitGroup `json:"waitgroup,omitempty"`
	Once      *jsonOnce      `json:"once,omitempty"`
}

type jsonQueue struct {
	Len       int  `json:"len"`
	Cap       int  `json:"cap"`
	Closed    bool `json:"closed"`
	Senders   int  `json:"blocked_senders"`
	Receivers int  `json:"blocked_receivers"`
	Sleepers  bool `json:"sleepers"`
}

type jsonMutex struct {
	Locked             bool   `json:"locked"`
	HolderPID          int    `json:"holder_pid"`
	HolderPIDNamespace uint64 `json:"holder_pid_namespace,omitempty"`
	HolderAlive        bool   `json:"holder_alive"`
	Waiters            bool   `json:"waiters"`
	Consistent         bool   `json:"consistent"`
	OwnerDeaths        int    `json:"owner_deaths"`
	DeadPID            int    `json:"dead_pid"`
	// Statistics: waits that slept, their total and longest time in
	// nanoseconds, and those that timed out or were cancelled.
	Waited        uint64        `json:"waited"`
	WaitTotal     time.Duration `json:"wait_total_ns"`
	WaitMax       time.Duration `json:"wait_max_ns"`
	Timeouts      int           `json:"timeouts"`
	Cancellations int           `json:"cancellations"`
}

type jsonRWMutex struct {
	Writer             bool         `json:"writer"`
	WriterPID          int          `json:"writer_pid"`
	WriterPIDNamespace uint64       `json:"writer_pid_namespace,omitempty"`
	WriterAlive        bool         `json:"writer_alive"`
	Waiters            bool         `json:"waiters"`
	Readers            []jsonHolder `json:"readers"`
	Consistent         bool         `json:"consistent"`
	OwnerDeaths        int          `json:"owner_deaths"`
	DeadPID            int          `json:"dead_pid"`
	// Statistics: lock calls that slept, their total time in
	// nanoseconds, and those that timed out or were cancelled.
	Waited        uint64        `json:"waited"`
	WaitTotal     time.Duration `json:"wait_total_ns"`
	Timeouts      int           `json:"timeouts"`
	Cancellations int           `json:"cancellations"`
}

type jsonSemaphore struct {
	Counting bool         `json:"counting"`
	Value    int          `json:"value"`
	Max      int          `json:"max"`
	Waiters  int          `json:"waiters"`
	Holders  []jsonHolder `json:"holders"`
	Hungry   bool         `json:"hungry"`
}

type jsonHolder struct {
	PID          int    `json:"pid"`
	PIDNamespace uint64 `json:"pid_namespace,omitempty"`
	Alive        bool   `json:"alive"`
	Count        int    `json:"count"`
}

type jsonCond struct {
	Waiters int `json:"waiters"`
	Signals int `json:"signals"`
}

type jsonSlot struct {
	Written    bool   `json:"written"`
	Generation uint64 `json:"generation"`
	Len        int    `json:"len"`
}

func toJSON(si ps.SegmentInfo) jsonSegment {
	js := jsonSegment{
		Name:         si.Name,
		Size:         si.Size,
		Mode:         fmt.Sprintf("%04o", uint32(si.Mode.Perm())),
		UID:          si.UID,
		CreatorPID:   si.CreatorPID,
		CreatorPIDNS: si.CreatorPIDNamespace,
		CreatorAlive: si.CreatorAlive,
		Created:      timePtr(si.Created),
		MaxProcesses: si.MaxProcesses,
		MaxObjects:   si.MaxObjects,
		Free:         si.Free,
		Stale:        si.Stale,
		Queued:       si.Queued,
		Error:        errString(si.Err),
		Processes:    []jsonProcess{},
		Objects:      []jsonObject{},
	}
	for _, p := range si.Processes {
		js.Processes = append(js.Processes, jsonProcess{PID: p.PID, PIDNS: p.PIDNamespace, Alive: p.Alive, Since: timePtr(p.Since), Slot: p.Slot})
	}
	for _, o := range si.Objects {
		jo := jsonObject{
			Name: o.Name, Kind: o.Kind.String(), Offset: o.Offset, Size: o.Size, Param: o.Param,
			State: objectState(o), Error: errString(o.Err),
		}
		if m := o.Mutex; m != nil {
			jm := jsonMutex(*m)
			jo.Mutex = &jm
		}
		if rw := o.RWMutex; rw != nil {
			jo.RWMutex = &jsonRWMutex{Writer: rw.Writer, WriterPID: rw.WriterPID, WriterPIDNamespace: rw.WriterPIDNamespace,
				WriterAlive: rw.WriterAlive, Waiters: rw.Waiters, Readers: []jsonHolder{},
				Consistent: rw.Consistent, OwnerDeaths: rw.OwnerDeaths, DeadPID: rw.DeadPID,
				Waited: rw.Waited, WaitTotal: rw.WaitTotal, Timeouts: rw.Timeouts, Cancellations: rw.Cancellations}
			for _, h := range rw.Readers {
				jo.RWMutex.Readers = append(jo.RWMutex.Readers, jsonHolder(h))
			}
		}
		if s := o.Semaphore; s != nil {
			jo.Semaphore = &jsonSemaphore{Counting: s.Counting, Value: s.Value, Max: s.Max, Waiters: s.Waiters, Holders: []jsonHolder{}, Hungry: s.Hungry}
			for _, h := range s.Holders {
				jo.Semaphore.Holders = append(jo.Semaphore.Holders, jsonHolder(h))
			}
		}
		if c := o.Cond; c != nil {
			jc := jsonCond(*c)
			jo.Cond = &jc
		}
		if sl := o.Slot; sl != nil {
			jsl := jsonSlot(*sl)
			jo.Slot = &jsl
		}
		if q := o.Queue; q != nil {
			jq := jsonQueue(*q)
			jo.Queue = &jq
		}
		syncJSON(&jo, o)
		js.Objects = append(js.Objects, jo)
	}
	return js
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// pidText names the process pid of PID namespace ns: "pid 42", or, for a
// namespace other than this process's, "pid 1 in pid namespace 4026532451",
// since that pid may belong to someone else here.
func pidText(pid int, ns uint64) string {
	if ns != 0 && ns != ps.OwnPIDNamespace() {
		return fmt.Sprintf("pid %d in pid namespace %d", pid, ns)
	}
	return fmt.Sprintf("pid %d", pid)
}
