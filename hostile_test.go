//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestTruncatedUnderFoot: another process shrinks a named segment's file
// while it is mapped. Library calls that walk shared memory return
// ErrTruncated instead of dying of SIGBUS (but for the one-CAS fast paths,
// see fault.go).
func TestTruncatedUnderFoot(t *testing.T) {
	seg := create(t, 1<<20, nil)
	m := mutex(t, seg, "m")
	sem := semaphore(t, seg, "sem", 1, 0)
	if err := os.Truncate(filepath.Join("/dev/shm", seg.Name()), 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := seg.Objects(); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Objects: %v, want ErrTruncated", err)
	}
	if _, err := ps.NewMutex(seg, "new"); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("NewMutex: %v, want ErrTruncated", err)
	}
	if sem.TryAcquire(1) {
		t.Error("TryAcquire on a truncated segment succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("LockContext: %v, want ErrTruncated", err)
	}
	if m.TryLock() {
		t.Error("TryLock on a truncated segment succeeded")
	}
	if _, err := ps.Open(seg.Name()); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Open of the truncated file: %v, want ErrTruncated", err)
	}
}

// TestOtherUser: a process of another uid cannot open a segment created with
// the default mode 0600, and can open one created with mode 0666. CI runs as
// root, so the child drops to uid/gid 65534 (nobody) with
// SysProcAttr.Credential.
func TestOtherUser(t *testing.T) {
	if childtest.Role() == "open" {
		_, err := ps.Open(os.Getenv("SEG"))
		switch {
		case err == nil:
			fmt.Println("opened")
		case errors.Is(err, fs.ErrPermission):
			fmt.Println("permission denied")
		default:
			fmt.Println("error:", err)
		}
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to start a child as another user")
	}
	// The child runs a copy of the test binary that uid 65534 may execute.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pstest-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "child.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode fs.FileMode
		want string
	}{{0, "permission denied"}, {0o600, "permission denied"}, {0o666, "opened"}} {
		name := shmtest.Name(t)
		seg, err := ps.Create(name, 1<<16, &ps.Options{Mode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestOtherUser$")
		cmd.Env = append(os.Environ(), childtest.RoleEnv+"=open", "SEG="+name)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		seg.Close()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.HasPrefix(string(out), c.want) {
			t.Errorf("mode %v: child said %q, want %q", c.mode, out, c.want)
		}
	}
}

// TestPlantedSymlink: a symbolic link planted in /dev/shm under a segment's
// name is refused, by Open and by OpenOrCreate, and Create does not follow it.
func TestPlantedSymlink(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := shmtest.Name(t)
	if err := os.Symlink(target, filepath.Join("/dev/shm", name)); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Open(name); !errors.Is(err, ps.ErrInvalidName) {
		t.Errorf("Open: %v, want ErrInvalidName", err)
	}
	if _, err := ps.OpenOrCreate(name, 1<<16, nil); !errors.Is(err, ps.ErrInvalidName) {
		t.Errorf("OpenOrCreate: %v, want ErrInvalidName", err)
	}
	if _, err := ps.Create(name, 1<<16, nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Errorf("the link's target was changed: %q", b)
	}
}

// poke writes b at off in the file of the named segment, as another process
// with access to it could.
func poke(t *testing.T, seg *ps.Segment, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join("/dev/shm", seg.Name()), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptDirectoryEntry: a directory entry whose offset points outside
// the segment gives ErrCorrupt on lookup and listing, to a handle that had
// not seen it before it was rewritten. (A handle validates an entry once,
// when it first sees it, and keeps what it validated: ready entries never
// change, unless someone rewrites the directory.)
func TestCorruptDirectoryEntry(t *testing.T) {
	seg := create(t, 1<<16, &ps.Options{MaxProcesses: 4, MaxObjects: 4})
	mutex(t, seg, "m")
	e := ps.DirEntryOffset(seg, "m")
	poke(t, seg, e+16, []byte{0, 0, 0, 0, 0, 0, 0, 0x7f})
	other := reopen(t, seg)
	if _, err := ps.NewMutex(other, "m"); !errors.Is(err, ps.ErrCorrupt) {
		t.Errorf("NewMutex: %v, want ErrCorrupt", err)
	}
	if _, err := seg.Objects(); !errors.Is(err, ps.ErrCorrupt) {
		t.Errorf("Objects: %v, want ErrCorrupt", err)
	}
	if _, err := ps.NewMutex(seg, "m"); err != nil {
		t.Errorf("NewMutex through the handle that validated m before: %v", err)
	}
	// A state no entry can have, where the probe for "other" starts.
	poke(t, seg, ps.DirProbeStart(seg, "other"), []byte{9, 9, 9, 9})
	if _, err := ps.NewMutex(other, "other"); !errors.Is(err, ps.ErrCorrupt) {
		t.Errorf("NewMutex past a bad entry state: %v, want ErrCorrupt", err)
	}
}

// reopen opens another handle on seg's segment, closed at cleanup.
func reopen(t *testing.T, seg *ps.Segment) *ps.Segment {
	t.Helper()
	s, err := ps.Open(seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestGarbageLockWord: a lock word overwritten with an identity no process
// has is treated as a dead holder: the next locker takes the lock at once
// and is told.
func TestGarbageLockWord(t *testing.T) {
	seg := create(t, 1<<16, nil)
	m := mutex(t, seg, "m")
	objs, err := seg.Objects()
	if err != nil {
		t.Fatal(err)
	}
	poke(t, seg, objs[0].Offset, []byte{0x39, 0x30, 0x05, 0x00}) // tid 340025, nobody's
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, ps.ErrOwnerDead) {
		t.Fatalf("LockContext: %v, want ErrOwnerDead", err)
	}
	m.MarkConsistent()
	m.Unlock()
}

// TestCorruptSlotValue: bytes of a stored value changed behind the slot's
// back fail its checksum.
func TestCorruptSlotValue(t *testing.T) {
	seg := create(t, 1<<16, nil)
	sl, err := ps.NewSlot(seg, "o", 256, ps.WithChecksum())
	if err != nil {
		t.Fatal(err)
	}
	if err := sl.StoreBytes([]byte("the value")); err != nil {
		t.Fatal(err)
	}
	objs, _ := seg.Objects()
	buf := make([]byte, objs[0].Size)
	f, _ := os.Open(filepath.Join("/dev/shm", seg.Name()))
	f.ReadAt(buf, objs[0].Offset)
	f.Close()
	i := bytes.Index(buf, []byte("the value"))
	if i < 0 {
		t.Fatal("value not found in the slot's bytes")
	}
	poke(t, seg, objs[0].Offset+int64(i), []byte("THE"))
	if _, err := sl.LoadBytes(); !errors.Is(err, ps.ErrChecksum) {
		t.Fatalf("LoadBytes: %v, want ErrChecksum", err)
	}
}

// TestTruncatedSlotAndBytes: Slot and Bytes calls on a truncated file return
// ErrTruncated too.
func TestTruncatedSlotAndBytes(t *testing.T) {
	seg := create(t, 1<<20, nil)
	sl, err := ps.NewSlot(seg, "o", 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ps.NewBytes(seg, "b", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if err := sl.Store("before"); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join("/dev/shm", seg.Name()), 4096); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := sl.Load(&v); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Slot.Load: %v, want ErrTruncated", err)
	}
	if err := sl.Store("after"); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Slot.Store: %v, want ErrTruncated", err)
	}
	if _, err := b.ReadAt(make([]byte, 8), 0); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Bytes.ReadAt: %v, want ErrTruncated", err)
	}
	if _, err := b.WriteAt(make([]byte, 8), 0); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Bytes.WriteAt: %v, want ErrTruncated", err)
	}
	if _, err := ps.Load[int64](b, 0); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Load: %v, want ErrTruncated", err)
	}
	if err := seg.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCorruptDirectoryOverlap: a directory entry rewritten to point into
// another object, or off the objects' alignment, gives ErrCorrupt rather
// than two handles on one lock word (found by FuzzCorruptSegment).
func TestCorruptDirectoryOverlap(t *testing.T) {
	seg := create(t, 1<<16, &ps.Options{MaxProcesses: 4, MaxObjects: 4})
	mutex(t, seg, "m")
	mutex(t, seg, "n")
	objs, err := seg.Objects()
	if err != nil {
		t.Fatal(err)
	}
	n := ps.DirEntryOffset(seg, "n")
	var off [8]byte
	binary.NativeEndian.PutUint64(off[:], uint64(objs[0].Offset))
	poke(t, seg, n+16, off[:]) // n's offset := m's
	other := reopen(t, seg)
	if _, err := ps.NewMutex(other, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.NewMutex(other, "n"); !errors.Is(err, ps.ErrCorrupt) {
		t.Errorf("NewMutex of an entry overlapping another: %v, want ErrCorrupt", err)
	}
	binary.NativeEndian.PutUint64(off[:], uint64(objs[1].Offset+1))
	poke(t, seg, n+16, off[:])
	if _, err := ps.NewMutex(reopen(t, seg), "n"); !errors.Is(err, ps.ErrCorrupt) {
		t.Errorf("NewMutex of a misaligned entry: %v, want ErrCorrupt", err)
	}
}

// TestDescriptorsPerSegment: a segment costs one file descriptor, however
// many objects it holds (the Ruby gem needed three per Mutex).
func TestDescriptorsPerSegment(t *testing.T) {
	before := countFds(t)
	seg := create(t, 1<<20, nil)
	for i := range 200 {
		var err error
		switch i % 4 {
		case 0:
			_, err = ps.NewMutex(seg, fmt.Sprint("m", i))
		case 1:
			_, err = ps.NewSemaphore(seg, fmt.Sprint("s", i), 1, 0)
		case 2:
			_, err = ps.NewSlot(seg, fmt.Sprint("o", i), 64)
		case 3:
			_, err = ps.NewArray[int64](seg, fmt.Sprint("a", i), 4)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := countFds(t); got != before+1 {
		t.Fatalf("%d descriptors for one segment of 200 objects (%d before)", got-before, before)
	}
}
