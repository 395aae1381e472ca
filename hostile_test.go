package processshared_test

import (
	"context"
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
// ErrTruncated instead of dying of SIGBUS.
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
	if err := sem.Release(1); !errors.Is(err, ps.ErrTruncated) {
		t.Errorf("Semaphore.Release: %v, want ErrTruncated", err)
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
