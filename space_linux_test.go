//go:build linux

package processshared_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
)

// allocated returns how many bytes of the file open as fd have blocks.
func allocated(t *testing.T, fd uintptr) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// fillArray stores into every element of an int64 array that takes the rest
// of s, touching every page of its heap, and reads them back.
func fillArray(t *testing.T, s *ps.Segment) {
	t.Helper()
	n := int(s.Free() / 8)
	a, err := ps.NewArray[int64](s, "all", n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		a.Store(i, int64(i)+1)
	}
	for i := range n {
		if v := a.Load(i); v != int64(i)+1 {
			t.Fatalf("element %d = %d, want %d", i, v, i+1)
		}
	}
}

// TestReserve checks that a new segment's file has all its blocks from
// creation, named or anonymous, unless Options.Sparse is set, and that a
// reserved anonymous segment (its memfd sealed after the reservation) works.
func TestReserve(t *testing.T) {
	const size = 1 << 20
	sparse := &ps.Options{Sparse: true}

	named := create(t, size, nil)
	if got := allocated(t, named.Fd()); got < size {
		t.Errorf("Create: %d of %d bytes allocated, want all", got, size)
	}
	fillArray(t, named)

	named = create(t, size, sparse)
	if got := allocated(t, named.Fd()); got >= size {
		t.Errorf("Create(Sparse): %d of %d bytes allocated, want fewer", got, size)
	}

	anon, err := ps.NewAnonymous("reserve", size, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if got := allocated(t, anon.Fd()); got < size {
		t.Errorf("NewAnonymous: %d of %d bytes allocated, want all", got, size)
	}
	fillArray(t, anon)
	if err := anon.Close(); err != nil {
		t.Fatal(err)
	}

	anon, err = ps.NewAnonymous("reserve-sparse", size, sparse)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if got := allocated(t, anon.Fd()); got >= size {
		t.Errorf("NewAnonymous(Sparse): %d of %d bytes allocated, want fewer", got, size)
	}
}

// TestFullShm creates segments in a /dev/shm too small for them: a 1 MiB
// tmpfs mounted over it in a child of its own, in a private mount
// namespace, so that neither the parent nor other processes see it.
//
//	P.1 starts C in a new mount namespace (CLONE_NEWNS; Go makes / private,
//	    recursively, so the mount does not leak out).
//	C.1 mounts a tmpfs of 1 MiB over /dev/shm.
//	C.2 Create and OpenOrCreate of 8 MiB fail with ENOSPC, leaving nothing.
//	C.3 a 64 KiB segment is created, every page of its heap written, removed.
//	C.4 an 8 MiB segment with Options.Sparse is created (its pages beyond the
//	    tables untouched) and removed; /dev/shm is empty; C prints a marker.
//	P.2 C exited 0 with the marker. A SIGBUS in C would have ended it with
//	    status 2 (the Go runtime's "fatal error: fault [signal SIGBUS ...]")
//	    or, outside Go code, as a signal death.
func TestFullShm(t *testing.T) {
	const marker = "full-shm: ok"
	if childtest.Role() == "full-shm" {
		fullShmChild(t)
		if !t.Failed() {
			os.Stdout.WriteString(marker + "\n")
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs over /dev/shm needs root")
	}
	cmd := childtest.Command(t, "TestFullShm", "full-shm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled():
		t.Fatalf("child killed by %v:\n%s", ee.ProcessState.Sys().(syscall.WaitStatus).Signal(), out)
	case err != nil && strings.Contains(string(out), "SIGBUS"):
		t.Fatalf("child died of SIGBUS: %v\n%s", err, out)
	case err != nil:
		t.Fatalf("child: %v\n%s", err, out)
	case !strings.Contains(string(out), marker):
		t.Fatalf("child exited 0 without %q:\n%s", marker, out)
	}
	t.Logf("child:\n%s", out)
}

func fullShmChild(t *testing.T) {
	if err := unix.Mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a 1 MiB tmpfs on /dev/shm: %v", err)
	}
	empty := func(when string) {
		t.Helper()
		entries, err := os.ReadDir("/dev/shm")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("%s: /dev/shm holds %s", when, e.Name())
		}
	}

	const big = 8 << 20
	name := shmtest.Name(t)
	_, err := ps.Create(name, big, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create(%d bytes) in a 1 MiB /dev/shm: %v, want an error matching ENOSPC", big, err)
	}
	t.Logf("Create: %v", err)
	empty("after Create failed")
	_, err = ps.OpenOrCreate(name, big, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("OpenOrCreate(%d bytes) in a 1 MiB /dev/shm: %v, want an error matching ENOSPC", big, err)
	}
	empty("after OpenOrCreate failed")

	small := shmtest.Name(t)
	s, err := ps.Create(small, 64<<10, nil)
	if err != nil {
		t.Fatalf("Create(64 KiB) in a 1 MiB /dev/shm: %v", err)
	}
	fillArray(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ps.Remove(small); err != nil {
		t.Fatal(err)
	}

	sparse := shmtest.Name(t)
	s, err = ps.Create(sparse, big, &ps.Options{Sparse: true})
	if err != nil {
		t.Fatalf("Create(%d bytes, Sparse) in a 1 MiB /dev/shm: %v", big, err)
	}
	if st, err := os.Stat(filepath.Join("/dev/shm", sparse)); err != nil || st.Size() != big {
		t.Errorf("sparse segment's file: %v, %v; want %d bytes", st, err, big)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ps.Remove(sparse); err != nil {
		t.Fatal(err)
	}
	empty("at the end")
}
