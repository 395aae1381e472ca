package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	ps "github.com/processshared/processshared"
	"golang.org/x/sys/unix"
)

// Environment of a child process.
const (
	roleEnv   = "PSBENCH_ROLE"    // set: this process is a child playing that role
	segEnv    = "PSBENCH_SEG"     // label of the processshared segment handed over with Pass
	idEnv     = "PSBENCH_ID"      // the child's number, from 1
	argEnv    = "PSBENCH_ARG"     // a role-specific argument
	scEnv     = "PSBENCH_SCRATCH" // set: fd 3 is the scratch page
	prefixEnv = "PSBENCH_PREFIX"  // the parent's name prefix
)

// namePrefix starts every name this process gives to things that could
// outlive it: go-ipc objects in /dev/shm, lock files and SysV key files in
// the temporary directory. leftovers looks for it at the end.
func namePrefix() string {
	if p := os.Getenv(prefixEnv); p != "" { // a child: under its parent's prefix
		return fmt.Sprintf("%sc%d-", p, os.Getpid())
	}
	return fmt.Sprintf("psbench-%d-", os.Getpid())
}

var nameSeq atomic.Int64

// uniqueName returns a new name starting with namePrefix.
func uniqueName(what string) string {
	return fmt.Sprintf("%s%d-%s", namePrefix(), nameSeq.Add(1), what)
}

// leftovers lists files with this process's prefix (its children's
// included) in /dev/shm and the temporary directory.
func leftovers() []string {
	var out []string
	for _, dir := range []string{"/dev/shm", os.TempDir()} {
		m, _ := filepath.Glob(filepath.Join(dir, namePrefix()+"*"))
		out = append(out, m...)
	}
	return out
}

// A scratch is a page of plain shared memory (a memfd mapped MAP_SHARED)
// that holds the data the workloads check and the words that coordinate
// parent and children. It is the same for every library measured, so the
// data part of a workload costs all of them the same.
//
// Each word has its own cache line. The data words (counter, owner, seq,
// turn, ...) are read and written with plain loads and stores, ordered only
// by the lock under test; the control words are accessed atomically.
type scratch struct {
	f   *os.File
	mem []byte
}

// Word offsets in a scratch page.
const (
	wCounter  = 0   // data: the shared counter (plain)
	wOwner    = 8   // data: id of the holder, 0 when free (plain)
	wLast     = 16  // data: id of the previous holder (plain)
	wViol     = 24  // data: mutual-exclusion violations seen (plain)
	wHandoffs = 32  // data: times the lock changed process (plain)
	wSeq      = 64  // data: ping-pong sequence number (plain)
	wTurn     = 72  // data: whose turn, cond ping-pong (plain)
	wGen      = 80  // data: broadcast generation (plain, under the mutex)
	wWaiting  = 88  // data: broadcast waiters registered (plain, under the mutex)
	wWoken    = 96  // data: broadcast waiters woken (plain, under the mutex)
	wT1       = 104 // data: time the last waiter woke (plain, under the mutex)
	wReady    = 128 // control: children at the start line
	wGo       = 192 // control: the start signal
	wStop     = 256 // control: the stop signal
	wDone     = 320 // control: children finished
	wTotal    = 384 // control: operations done by the children
	wErrors   = 448 // control: errors seen by children
	wStamp    = 512 // control: a timestamp (owner death)
	wFlag     = 576 // control: a flag (owner death)
	scratchSz = 4096
)

func newScratch() (*scratch, error) {
	fd, err := unix.MemfdCreate("psbench-scratch", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "scratch")
	if err := f.Truncate(scratchSz); err != nil {
		f.Close()
		return nil, err
	}
	return mapScratch(f)
}

func mapScratch(f *os.File) (*scratch, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, scratchSz, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	return &scratch{f: f, mem: mem}, nil
}

func (s *scratch) close() {
	unix.Munmap(s.mem)
	s.f.Close()
}

func (s *scratch) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }
func (s *scratch) load(off int) uint64 { return atomic.LoadUint64(s.u64(off)) }
func (s *scratch) store(off int, v uint64) {
	atomic.StoreUint64(s.u64(off), v)
}
func (s *scratch) add(off int, d uint64) uint64 { return atomic.AddUint64(s.u64(off), d) }

// awaitAtLeast waits until the control word at off reaches want, spinning
// briefly and then sleeping in short steps; it gives up when ctx ends.
func (s *scratch) awaitAtLeast(ctx context.Context, off int, want uint64) error {
	for i := 0; s.load(off) < want; i++ {
		if i < 1000 {
			runtime.Gosched()
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for word %d to reach %d (at %d): %w", off, want, s.load(off), err)
		}
		time.Sleep(20 * time.Microsecond)
	}
	return nil
}

// mono returns CLOCK_MONOTONIC in nanoseconds: unlike time.Now's monotonic
// reading, it can be compared between processes.
func mono() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// A child is a re-executed copy of this program playing a role.
type child struct {
	cmd   *exec.Cmd
	label string     // role and id, for messages
	done  chan error // receives the exit error once
	err   error
	got   bool
}

var (
	childrenMu sync.Mutex
	children   = map[*child]bool{}
)

// killChildren kills every child still running (a figure timed out).
func killChildren() {
	childrenMu.Lock()
	defer childrenMu.Unlock()
	for c := range children {
		c.cmd.Process.Kill()
	}
}

// spawn starts a child with role, handing it the scratch page (fd 3) and, if
// seg is not nil, the segment (with ps.Pass). If the child fails, onFail is
// called (to cancel what the parent is blocked in). The child dies with ctx.
func spawn(ctx context.Context, role string, id int, arg string, sc *scratch, seg *ps.Segment, onFail func(), files ...*os.File) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, idEnv+"="+strconv.Itoa(id), argEnv+"="+arg, prefixEnv+"="+namePrefix())
	if sc != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, sc.f) // fd 3
		cmd.Env = append(cmd.Env, scEnv+"=3")
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, files...)
	if seg != nil {
		cmd.Env = append(cmd.Env, segEnv+"="+seg.Name())
		if err := ps.Pass(cmd, seg); err != nil {
			return nil, err
		}
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan error, 1), label: fmt.Sprintf("%s %d", role, id)}
	childrenMu.Lock()
	children[c] = true
	childrenMu.Unlock()
	go func() {
		err := cmd.Wait()
		childrenMu.Lock()
		delete(children, c)
		childrenMu.Unlock()
		if err != nil && onFail != nil {
			onFail()
		}
		c.done <- err
	}()
	return c, nil
}

// wait waits for the child to exit and returns its exit error.
func (c *child) wait(ctx context.Context) error {
	if c.got {
		return c.err
	}
	select {
	case c.err = <-c.done:
		c.got = true
		if c.err != nil {
			return fmt.Errorf("child %s: %w", c.label, c.err)
		}
		return nil
	case <-ctx.Done():
		c.cmd.Process.Kill()
		return fmt.Errorf("child %s did not exit: %w", c.label, ctx.Err())
	}
}

// waitAll waits for every child and returns the first error.
func waitAll(ctx context.Context, kids []*child) error {
	var first error
	for _, k := range kids {
		if err := k.wait(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// killAll kills the children that are still running.
func killAll(kids []*child) {
	for _, k := range kids {
		if !k.got {
			k.cmd.Process.Kill()
		}
	}
}

// A team is what a cross-process workload sets up: a scratch page, an
// anonymous segment, and children. Its context is cancelled when a child
// fails, so that a parent blocked on a lock the child should have released
// returns instead of hanging.
type team struct {
	ctx    context.Context
	cancel context.CancelFunc
	sc     *scratch
	seg    *ps.Segment
	kids   []*child
}

// newTeam makes a scratch page and, with segment set, an anonymous segment.
func newTeam(ctx context.Context, segment bool) (*team, error) {
	return newTeamMax(ctx, segment, 0)
}

// newTeamMax is newTeam with a segment of maxProcs process-table slots
// (0: the default). The segment has 1 MiB, as every team's had before
// MaxProcesses could exceed 1024; where the table and four Semaphores
// would take more than half of that (a table slot is 64 bytes, an owned
// Semaphore has 8 a slot, an extent header 8 per 64 slots), it has what
// ps.SizeFor says they take plus 1 MiB.
func newTeamMax(ctx context.Context, segment bool, maxProcs int) (*team, error) {
	t := &team{}
	t.ctx, t.cancel = context.WithCancel(ctx)
	var err error
	if t.sc, err = newScratch(); err != nil {
		return nil, err
	}
	if segment {
		var opts *ps.Options
		size := int64(1 << 20)
		if maxProcs != 0 {
			opts = &ps.Options{MaxProcesses: maxProcs}
			need, _, err := ps.SizeFor(ps.Contents{Semaphores: 4}, &ps.Options{MaxProcesses: maxProcs, MaxObjects: ps.DefaultMaxObjects})
			if err != nil {
				t.sc.close()
				return nil, err
			}
			if need > size/2 {
				size = need + 1<<20
			}
		}
		if t.seg, err = ps.NewAnonymous(uniqueName("seg"), size, opts); err != nil {
			t.sc.close()
			return nil, err
		}
	}
	return t, nil
}

// spawn starts a child of the team, passing files after the scratch page.
func (t *team) spawn(role string, id int, arg string, files ...*os.File) error {
	c, err := spawn(t.ctx, role, id, arg, t.sc, t.seg, t.cancel, files...)
	if err != nil {
		return err
	}
	t.kids = append(t.kids, c)
	return nil
}

// wait waits for every child; it returns the first failure.
func (t *team) wait() error { return waitAll(t.ctx, t.kids) }

// close kills what still runs and releases everything.
func (t *team) close() {
	killAll(t.kids)
	for _, k := range t.kids {
		if !k.got {
			<-k.done
		}
	}
	t.cancel()
	if t.seg != nil {
		t.seg.Close()
	}
	t.sc.close()
}

// childMain runs this process as a child. The scratch page is fd 3; the
// segment, if any, is inherited. The exit status says whether it succeeded.
func childMain(role string) int {
	ppid := os.Getppid()
	ctx, cancel := untimed(5 * time.Minute)
	defer cancel()
	go func() { // a child outlives neither its parent nor a hang
		for {
			time.Sleep(50 * time.Millisecond)
			if os.Getppid() != ppid || ctx.Err() != nil {
				fmt.Fprintf(os.Stderr, "bench child %s: parent gone or timed out\n", role)
				os.Exit(3)
			}
		}
	}()
	c := &childEnv{ctx: ctx, role: role, arg: os.Getenv(argEnv)}
	c.id, _ = strconv.Atoi(os.Getenv(idEnv))
	var err error
	if os.Getenv(segEnv) != "" {
		if c.seg, err = ps.Inherit(os.Getenv(segEnv)); err != nil {
			fmt.Fprintf(os.Stderr, "bench child %s: %v\n", role, err)
			return 2
		}
		defer c.seg.Close()
	}
	if os.Getenv(scEnv) == "3" {
		if c.sc, err = mapScratch(os.NewFile(3, "scratch")); err != nil {
			fmt.Fprintf(os.Stderr, "bench child %s: %v\n", role, err)
			return 2
		}
	}
	fn, ok := childRoles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench child: unknown role %q\n", role)
		return 2
	}
	if err := fn(c); err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s %d: %v\n", role, c.id, err)
		if c.sc != nil {
			c.sc.add(wErrors, 1)
		}
		return 1
	}
	return 0
}

// childEnv is what a child role gets.
type childEnv struct {
	ctx  context.Context
	role string
	id   int
	arg  string
	sc   *scratch
	seg  *ps.Segment
}

// childRoles maps a role to its function; filled by the workload files.
var childRoles = map[string]func(*childEnv) error{}
