//go:build darwin || freebsd || linux

package processshared_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
	"golang.org/x/sys/unix"
)

// inspectChild runs the roles the inspection tests need in a child that
// attaches to the segment its parent passed:
//
//	wait  attach, say so, and stay until stdin closes
//	die   attach, lock mutex "m" and take 2 permits of semaphore "sem" if
//	      they exist (HOLD=1), say so, and SIGKILL itself
func inspectChild(t *testing.T) {
	s := inherit(t)
	if os.Getenv("HOLD") == "1" {
		mutex(t, s, "m").Lock()
		sem, err := ps.NewSemaphore(s, "sem", 3, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := sem.Acquire(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("attached")
	switch childtest.Role() {
	case "wait":
		os.Stdin.Read(make([]byte, 1))
	case "die":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// startAttached starts a child of the current test in role (see
// inspectChild) and returns once it has attached to seg. Closing stdin ends
// a "wait" child; a "die" child is dead and reaped when it returns.
func startAttached(t *testing.T, seg *ps.Segment, role string, env ...string) (cmd *exec.Cmd, stdin io.WriteCloser) {
	t.Helper()
	// No second of sleep before a race-enabled child's successful exit.
	env = append(env, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	cmd = segChild(t, seg, role, env...)
	stdin, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	childtest.Start(t, cmd)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "attached\n" {
		t.Fatalf("child %s: %q, %v", role, line, err)
	}
	if role == "die" {
		cmd.Wait()
	}
	return cmd, stdin
}

func findProc(procs []ps.ProcessInfo, pid int) (ps.ProcessInfo, bool) {
	i := slices.IndexFunc(procs, func(p ps.ProcessInfo) bool { return p.PID == pid })
	if i < 0 {
		return ps.ProcessInfo{}, false
	}
	return procs[i], true
}

// TestInspectProcesses: P attaches twice (Create, Open), C1 attaches and
// waits, C2 attaches and is killed. Processes lists all four entries, with
// C2 dead and only the asking Segment's entry Self; List sees the same
// table and adds no entry of its own.
func TestInspectProcesses(t *testing.T) {
	if childtest.Role() != "" {
		inspectChild(t)
		return
	}
	seg := create(t, 1<<16, nil)
	before := time.Now()
	procs, err := seg.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].PID != os.Getpid() || !procs[0].Alive || !procs[0].Self {
		t.Fatalf("own segment: %+v, want one live Self entry for pid %d", procs, os.Getpid())
	}
	if procs[0].Since.IsZero() || procs[0].Since.After(before) {
		t.Errorf("Since %v, want before %v", procs[0].Since, before)
	}
	again, err := ps.Open(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	waiter, stdin := startAttached(t, seg, "wait")
	victim, _ := startAttached(t, seg, "die")

	procs, err = again.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 4 {
		t.Fatalf("%d entries, want 4: %+v", len(procs), procs)
	}
	self := 0
	for _, p := range procs {
		if p.Self {
			self++
		}
	}
	if self != 1 {
		t.Errorf("%d entries marked Self, want 1 (the asking Segment's): %+v", self, procs)
	}
	if p, ok := findProc(procs, waiter.Process.Pid); !ok || !p.Alive || p.Self {
		t.Errorf("waiting child %d: %+v, want alive, not Self", waiter.Process.Pid, p)
	}
	if p, ok := findProc(procs, victim.Process.Pid); !ok || p.Alive {
		t.Errorf("killed child %d: %+v, want dead", victim.Process.Pid, p)
	}

	list, err := ps.List(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != seg.Name() {
		t.Fatalf("List(%q): %+v", seg.Name(), list)
	}
	si := list[0]
	if len(si.Processes) != 4 {
		t.Errorf("List: %d entries, want 4 (listing must not attach): %+v", len(si.Processes), si.Processes)
	}
	if si.CreatorPID != os.Getpid() || !si.CreatorAlive || si.Created.IsZero() || si.Created.After(before) {
		t.Errorf("creator %d alive=%v created %v", si.CreatorPID, si.CreatorAlive, si.Created)
	}
	if si.Size != seg.Size() || si.Mode != 0o600 || si.UID != os.Getuid() || si.Stale || si.Err != nil {
		t.Errorf("List: %+v", si)
	}
	stdin.Close()
	waiter.Wait()
	procs, _ = seg.Processes()
	if _, ok := findProc(procs, waiter.Process.Pid); ok {
		t.Errorf("child that closed its segment still listed: %+v", procs)
	}
	seg.Close()
	if _, err := seg.Processes(); !errors.Is(err, ps.ErrClosed) {
		t.Errorf("Processes after Close: %v", err)
	}
	if _, err := seg.Inspect(); !errors.Is(err, ps.ErrClosed) {
		t.Errorf("Inspect after Close: %v", err)
	}
}

func objectState(t *testing.T, si ps.SegmentInfo, name string) ps.ObjectState {
	t.Helper()
	i := slices.IndexFunc(si.Objects, func(o ps.ObjectState) bool { return o.Name == name })
	if i < 0 {
		t.Fatalf("no object %q in %+v", name, si.Objects)
	}
	return si.Objects[i]
}

// TestInspectObjects: C locks mutex "m", takes 2 of the 3 permits of "sem"
// and is killed; P holds the third permit, and a goroutine of P waits on a
// Cond. Inspect tells it all, before and after P takes the mutex over.
func TestInspectObjects(t *testing.T) {
	if childtest.Role() != "" {
		inspectChild(t)
		return
	}
	seg := create(t, 1<<20, nil)
	m := mutex(t, seg, "m")
	sem, err := ps.NewSemaphore(seg, "sem", 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := sem.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	defer sem.Release(1)
	cm := mutex(t, seg, "cm")
	c, err := ps.NewCond(seg, "c", cm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps.NewBytes(seg, "b", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.NewArray[int32](seg, "a", 10); err != nil {
		t.Fatal(err)
	}
	slot, err := ps.NewSlot(seg, "slot", 64)
	if err != nil {
		t.Fatal(err)
	}
	victim, _ := startAttached(t, seg, "die", "HOLD=1")

	si, err := seg.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	if ms := objectState(t, si, "m").Mutex; ms == nil || !ms.Locked || ms.HolderPID != victim.Process.Pid ||
		ms.HolderAlive || !ms.Consistent || ms.OwnerDeaths != 0 {
		t.Errorf("mutex held by a dead child: %+v", ms)
	}
	ss := objectState(t, si, "sem").Semaphore
	if ss == nil || ss.Value != 0 || ss.Max != 3 || len(ss.Holders) != 2 {
		t.Fatalf("semaphore: %+v", ss)
	}
	for _, h := range ss.Holders {
		ns := ps.OwnPIDNamespace() // the child's too
		want := ps.PermitHolder{PID: os.Getpid(), PIDNamespace: ns, Alive: true, Count: 1}
		if h.PID != os.Getpid() {
			want = ps.PermitHolder{PID: victim.Process.Pid, PIDNamespace: ns, Alive: false, Count: 2}
		}
		if h != want {
			t.Errorf("permit holder %+v, want %+v", h, want)
		}
	}
	if b := objectState(t, si, "b"); b.Kind != ps.KindBytes || b.Size != 100 {
		t.Errorf("bytes: %+v", b)
	}
	if a := objectState(t, si, "a"); a.Kind != ps.KindArray || a.Size != 40 || a.Param != 4 {
		t.Errorf("array: %+v", a)
	}
	if sl := objectState(t, si, "slot"); sl.Slot == nil || sl.Slot.Written || sl.Param != 64 {
		t.Errorf("empty slot: %+v", sl)
	}
	if cs := objectState(t, si, "c").Cond; cs == nil || cs.Waiters != 0 {
		t.Errorf("cond: %+v", cs)
	}

	// P.2 takes the mutex over from the dead child.
	if err := m.LockContext(context.Background()); !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("Lock after holder died: %v", err)
	}
	if err := slot.Store([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	// A goroutine waits on the cond. If the test ends early, the cleanup
	// (which runs before the segment's) ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	woken := make(chan struct{})
	t.Cleanup(func() { cancel(); <-woken })
	go func() {
		defer close(woken)
		if cm.LockContext(ctx) != nil {
			return
		}
		if err := c.WaitContext(ctx); !errors.Is(err, ps.ErrClosed) {
			cm.Unlock()
		}
	}()
	for {
		if si, err = seg.Inspect(); err != nil {
			t.Fatal(err)
		}
		if cs := objectState(t, si, "c").Cond; cs == nil {
			t.Fatalf("cond: %+v", objectState(t, si, "c"))
		} else if cs.Waiters == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	c.Signal()
	<-woken
	if ms := objectState(t, si, "m").Mutex; ms == nil || !ms.Locked || ms.HolderPID != os.Getpid() || !ms.HolderAlive ||
		ms.Consistent || ms.OwnerDeaths != 1 || ms.DeadPID != victim.Process.Pid {
		t.Errorf("mutex taken over: %+v", ms)
	}
	if sl := objectState(t, si, "slot").Slot; sl == nil || !sl.Written || sl.Generation != 1 || sl.Len == 0 {
		t.Errorf("written slot: %+v", sl)
	}
	m.MarkConsistent()
	m.Unlock()

	// The read-only view of another process agrees.
	named, err := ps.Inspect(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	if ms := objectState(t, named, "m").Mutex; ms == nil || ms.Locked || !ms.Consistent || ms.OwnerDeaths != 1 {
		t.Errorf("Inspect(name): mutex %+v", ms)
	}
	if len(named.Objects) != len(si.Objects) {
		t.Errorf("Inspect(name): %d objects, Segment.Inspect %d", len(named.Objects), len(si.Objects))
	}
}

// TestInspectTruncated: another process truncates a segment's file under
// the mapping; inspecting it reports ErrTruncated instead of crashing on
// SIGBUS.
func TestInspectTruncated(t *testing.T) {
	seg := create(t, 1<<20, nil)
	mutex(t, seg, "m")
	path := filepath.Join("/dev/shm", seg.Name())
	// Keep the first page: it holds the header and this process's table
	// entry, which Close writes.
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	defer os.Truncate(path, seg.Size())
	if _, err := seg.Inspect(); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Inspect of a truncated segment: %v, want ErrTruncated", err)
	}
	if _, err := seg.Processes(); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Processes of a truncated segment: %v, want ErrTruncated", err)
	}
	if _, err := ps.Inspect(seg.Name()); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Inspect(name) of a truncated segment: %v, want ErrTruncated", err)
	}
}

// segmentImage returns the bytes of a new segment, closed, with the mutex
// "m" in it and an empty process table, and the header with which to edit
// its creator.
func segmentImage(t *testing.T) []byte {
	t.Helper()
	s := create(t, 1<<16, &ps.Options{MaxProcesses: 8, MaxObjects: 8})
	mutex(t, s, "m")
	s.Close()
	img, err := os.ReadFile(filepath.Join("/dev/shm", s.Name()))
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Remove(s.Name()); err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	procOff, procCap := ne.Uint32(img[24:]), ne.Uint32(img[28:])
	clear(img[procOff : procOff+procCap*64])
	return img
}

// writeImage writes img as a new segment whose creator is pid.
func writeImage(t *testing.T, img []byte, pid int) string {
	t.Helper()
	img = slices.Clone(img)
	binary.NativeEndian.PutUint32(img[56:], uint32(pid))
	binary.NativeEndian.PutUint64(img[72:], 0) // start time unknown
	name := shmtest.Name(t)
	if err := os.WriteFile(filepath.Join("/dev/shm", name), img, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestRemoveStale sets up segments in every state and checks that List
// calls stale, and RemoveStale removes, exactly those no process uses.
//
//	crashed    its only process attached, locked a mutex and was killed
//	inUse      its only process (a child) is attached and waiting
//	closed     created and closed: nobody attached any more
//	orphan     never attached to, creator dead (died before attaching)
//	creating   never attached to, creator alive (about to attach)
//	opened     never attached to, creator dead, held open by a descriptor
//	mapped     never attached to, creator dead, mapped without a descriptor
//	queued     created, 2 messages sent into a queue, closed: nobody
//	           attached, but the messages keep it (not stale)
func TestRemoveStale(t *testing.T) {
	if childtest.Role() != "" {
		inspectChild(t)
		return
	}
	crashedSeg := create(t, 1<<16, nil)
	startAttached(t, crashedSeg, "die", "HOLD=1")
	crashed := crashedSeg.Name()
	crashedSeg.Close()

	inUseSeg := create(t, 1<<16, nil)
	child, stdin := startAttached(t, inUseSeg, "wait")
	defer func() { stdin.Close(); child.Wait() }()
	inUse := inUseSeg.Name()
	inUseSeg.Close()

	closedSeg := create(t, 1<<16, nil)
	closed := closedSeg.Name()
	closedSeg.Close()

	queuedSeg := create(t, 1<<16, nil)
	q, err := ps.NewQueue(queuedSeg, "q", 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	q.Send([]byte("one"))
	q.Send([]byte("two"))
	queued := queuedSeg.Name()
	queuedSeg.Close()

	img := segmentImage(t)
	dead := deadPID(t)
	orphan := writeImage(t, img, dead)
	creating := writeImage(t, img, os.Getpid())
	opened := writeImage(t, img, dead)
	f, err := os.Open(filepath.Join("/dev/shm", opened))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapped := writeImage(t, img, dead)
	mf, err := os.Open(filepath.Join("/dev/shm", mapped))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(mf.Fd()), 0, len(img), unix.PROT_READ, unix.MAP_SHARED)
	mf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)

	pattern := fmt.Sprintf("%s%d-*-%s", shmtest.Prefix, os.Getpid(), t.Name())
	list, err := ps.List(pattern)
	if err != nil {
		t.Fatal(err)
	}
	stale := map[string]bool{}
	for _, si := range list {
		if si.Err != nil {
			t.Errorf("%s: %v", si.Name, si.Err)
		}
		stale[si.Name] = si.Stale
		if si.Name == queued && si.Queued != 2 {
			t.Errorf("queued: Queued %d, want 2", si.Queued)
		}
	}
	want := map[string]bool{crashed: true, inUse: false, closed: true, orphan: true, creating: false, opened: true, mapped: true, queued: false}
	for name, w := range want {
		if s, ok := stale[name]; !ok || s != w {
			t.Errorf("List: %s listed=%v stale=%v, want stale=%v", name, ok, s, w)
		}
	}
	if len(list) != len(want) {
		t.Errorf("List(%q): %d segments, want %d", pattern, len(list), len(want))
	}

	si, err := ps.Inspect(crashed)
	if err != nil {
		t.Fatal(err)
	}
	if len(si.Processes) != 1 || si.Processes[0].Alive || si.Processes[0].PID == os.Getpid() {
		t.Fatalf("crashed: processes %+v, want the dead child alone", si.Processes)
	}
	if ms := objectState(t, si, "m").Mutex; ms == nil || !ms.Locked || ms.HolderAlive || ms.HolderPID != si.Processes[0].PID {
		t.Errorf("crashed: mutex %+v, want held by the dead child", ms)
	}

	removed, err := ps.RemoveStale(pattern)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	wantRemoved := []string{crashed, closed, orphan}
	slices.Sort(wantRemoved)
	if !slices.Equal(removed, wantRemoved) {
		t.Errorf("RemoveStale removed %v, want %v", removed, wantRemoved)
	}
	for _, name := range []string{inUse, creating, opened, mapped, queued} {
		if _, err := os.Stat(filepath.Join("/dev/shm", name)); err != nil {
			t.Errorf("RemoveStale removed %s: %v", name, err)
		}
	}
	// The child still uses its segment through the name.
	if s, err := ps.Open(inUse); err != nil {
		t.Errorf("Open of the live segment after RemoveStale: %v", err)
	} else {
		s.Close()
	}
}

// TestListForeignFiles: files that are not segments are skipped silently;
// a segment of another layout version is listed with its error.
func TestListForeignFiles(t *testing.T) {
	seg := create(t, 1<<16, nil)
	valid, err := os.ReadFile(filepath.Join("/dev/shm", seg.Name()))
	if err != nil {
		t.Fatal(err)
	}
	write := func(content []byte) string {
		name := shmtest.Name(t)
		if err := os.WriteFile(filepath.Join("/dev/shm", name), content, 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	garbage := write([]byte("not a segment, not at all"))
	empty := write(nil)
	version := write(func() []byte { b := slices.Clone(valid); b[8] = 99; return b }())
	link := shmtest.Name(t)
	if err := os.Symlink(filepath.Join("/dev/shm", seg.Name()), filepath.Join("/dev/shm", link)); err != nil {
		t.Fatal(err)
	}
	list, err := ps.List(fmt.Sprintf("%s%d-*-%s", shmtest.Prefix, os.Getpid(), t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, si := range list {
		names = append(names, si.Name)
	}
	if want := []string{seg.Name(), version}; !slices.Equal(names, want) {
		t.Fatalf("List: %v, want %v", names, want)
	}
	if !errors.Is(list[1].Err, ps.ErrVersion) || list[1].Stale || list[1].CreatorPID != os.Getpid() {
		t.Errorf("segment of version 99: %+v", list[1])
	}
	for _, name := range []string{garbage, empty, link} {
		if _, err := ps.Inspect(name); !errors.Is(err, ps.ErrNotSegment) {
			t.Errorf("Inspect(%s): %v, want ErrNotSegment", name, err)
		}
	}
	if _, err := ps.Inspect(shmtest.Name(t)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Inspect of a missing name: %v, want fs.ErrNotExist", err)
	}
	if _, err := ps.Inspect("../etc/passwd"); !errors.Is(err, ps.ErrInvalidName) {
		t.Errorf("Inspect(../etc/passwd): %v, want ErrInvalidName", err)
	}
	if _, err := ps.List("["); err == nil {
		t.Error("List with a malformed pattern succeeded")
	}
	removed, err := ps.RemoveStale(fmt.Sprintf("%s%d-*-%s", shmtest.Prefix, os.Getpid(), t.Name()))
	if err != nil || len(removed) != 0 {
		t.Errorf("RemoveStale: %v, %v; want nothing removed (the segment is in use, the rest are not stale)", removed, err)
	}
}

// FuzzInspect writes a segment with garbage in its tables and objects and
// inspects it: Inspect must return, with or without an error, and never
// panic or fault. Each 6 bytes of input overwrite a 32-bit word of a valid
// image: 2 bytes of offset, 4 of value.
func FuzzInspect(f *testing.F) {
	ne := binary.NativeEndian
	patch := func(off uint16, v uint32) []byte {
		b := ne.AppendUint16(nil, off)
		return ne.AppendUint32(b, v)
	}
	f.Add([]byte{})
	f.Add(patch(16, 1<<30))           // size
	f.Add(patch(256, 0x40001234))     // a dead process entry
	f.Add(patch(256+8*64+16, 0xffff)) // first directory entry's offset
	f.Add(append(patch(256+8*64+24, 0xfffffff0), patch(256+8*64+4, 6)...))
	f.Add(patch(256+8*64+8, 0xffffffff)) // a slot's capacity, a semaphore's max
	valid := fuzzInspectImage(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		img := slices.Clone(valid)
		for ; len(data) >= 6; data = data[6:] {
			off := int(ne.Uint16(data))
			if off+4 <= len(img) {
				ne.PutUint32(img[off:], ne.Uint32(data[2:]))
			}
		}
		name := shmtest.Name(t)
		if err := os.WriteFile(filepath.Join("/dev/shm", name), img, 0o600); err != nil {
			t.Fatal(err)
		}
		ps.Inspect(name)
		ps.RemoveStale(name)
	})
}

// fuzzInspectImage returns the bytes of a segment holding one object of
// each kind, with its creator's entry in the process table.
func fuzzInspectImage(tb testing.TB) []byte {
	s, err := ps.Create(shmtest.Name(tb), 1<<16, &ps.Options{MaxProcesses: 8, MaxObjects: 8})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	m, err := ps.NewMutex(s, "m")
	if err != nil {
		tb.Fatal(err)
	}
	m.Lock()
	defer m.Unlock()
	if _, err := ps.NewCond(s, "c", m); err != nil {
		tb.Fatal(err)
	}
	sem, err := ps.NewSemaphore(s, "sem", 2, 2)
	if err != nil || !sem.TryAcquire(1) {
		tb.Fatal(err, "or TryAcquire failed")
	}
	defer sem.Release(1)
	sl, err := ps.NewSlot(s, "slot", 32)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sl.StoreBytes([]byte("value")); err != nil {
		tb.Fatal(err)
	}
	if _, err := ps.NewArray[int64](s, "a", 4); err != nil {
		tb.Fatal(err)
	}
	img, err := os.ReadFile(filepath.Join("/dev/shm", s.Name()))
	if err != nil {
		tb.Fatal(err)
	}
	return img
}
