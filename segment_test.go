//go:build darwin || freebsd || linux

package processshared_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
)

func create(t *testing.T, size int64, opts *ps.Options) *ps.Segment {
	t.Helper()
	s, err := ps.Create(shmtest.Name(t), size, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCreateOpenRemove(t *testing.T) {
	name := shmtest.Name(t)
	s, err := ps.Create(name, 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := ps.Create(name, 1<<16, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist", err)
	}
	st, err := os.Stat(filepath.Join("/dev/shm", name))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	o, err := ps.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != s.Size() {
		t.Errorf("opened size %d, created %d", o.Size(), s.Size())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ps.Remove(name); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Open(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Remove: %v, want fs.ErrNotExist", err)
	}
	if err := ps.Remove(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove: %v, want fs.ErrNotExist", err)
	}
}

func TestMode(t *testing.T) {
	name := shmtest.Name(t)
	s, err := ps.Create(name, 1<<16, &ps.Options{Mode: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Stat(filepath.Join("/dev/shm", name))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "../etc/passwd", "x..y", "nul\x00", strings.Repeat("n", ps.MaxSegmentNameLen+1)} {
		if _, err := ps.Create(name, 1<<16, nil); !errors.Is(err, ps.ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := ps.Open(name); !errors.Is(err, ps.ErrInvalidName) {
			t.Errorf("Open(%q): %v, want ErrInvalidName", name, err)
		}
		if err := ps.Remove(name); !errors.Is(err, ps.ErrInvalidName) {
			t.Errorf("Remove(%q): %v, want ErrInvalidName", name, err)
		}
	}
}

func TestOpenForeignFiles(t *testing.T) {
	seg := create(t, 1<<16, nil)
	valid, err := os.ReadFile(filepath.Join("/dev/shm", seg.Name()))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		content []byte
		want    error
	}{
		{"garbage", []byte(strings.Repeat("not a segment ", 100)), ps.ErrNotSegment},
		{"short", []byte("PSSH"), ps.ErrNotSegment},
		{"truncated", valid[:8192], ps.ErrTruncated},
		{"version", func() []byte { b := append([]byte(nil), valid...); b[8] = 99; return b }(), ps.ErrVersion},
		{"corrupt", func() []byte { b := append([]byte(nil), valid...); b[24] = 7; return b }(), ps.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := shmtest.Name(t)
			if err := os.WriteFile(filepath.Join("/dev/shm", name), c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ps.Open(name); !errors.Is(err, c.want) {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
		})
	}
	t.Run("symlink", func(t *testing.T) {
		name := shmtest.Name(t)
		if err := os.Symlink(filepath.Join("/dev/shm", seg.Name()), filepath.Join("/dev/shm", name)); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.Open(name); !errors.Is(err, ps.ErrInvalidName) {
			t.Fatalf("Open of a symlink: %v, want ErrInvalidName", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		name := shmtest.Name(t)
		if err := os.WriteFile(filepath.Join("/dev/shm", name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.OpenOrCreate(name, 1<<16, &ps.Options{InitTimeout: 50e6}); !errors.Is(err, ps.ErrNotInitialized) {
			t.Fatalf("OpenOrCreate of an empty file: %v, want ErrNotInitialized", err)
		}
	})
}

func TestUseAfterClose(t *testing.T) {
	s := create(t, 1<<16, nil)
	s.Close()
	if _, err := s.Objects(); !errors.Is(err, ps.ErrClosed) {
		t.Errorf("Objects after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestOpenOrCreateRace starts 8 processes that race to open-or-create one name
// and to find-or-create objects in it; all must see the same segment and the
// same objects.
func TestOpenOrCreateRace(t *testing.T) {
	const procs = 8
	if childtest.Role() == "race" {
		name := os.Getenv("SEG")
		s, err := ps.OpenOrCreate(name, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// Everyone creates the same 20 objects, and one of their own.
		for i := range 20 {
			if _, err := ps.NewMutex(s, "shared-"+string(rune('a'+i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ps.NewMutex(s, "own-"+os.Getenv("ID")); err != nil {
			t.Fatal(err)
		}
		return
	}
	name := shmtest.Name(t)
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for i := range procs {
		cmd := childtest.Command(t, "TestOpenOrCreateRace", "race", "SEG="+name, "ID="+string(rune('0'+i)))
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child: %v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := ps.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	objs, err := s.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 20+procs {
		t.Fatalf("%d objects, want %d: %v", len(objs), 20+procs, objs)
	}
	seen := map[string]bool{}
	for _, o := range objs {
		if seen[o.Name] {
			t.Fatalf("object %q created twice", o.Name)
		}
		seen[o.Name] = true
	}
}

func TestObjectErrors(t *testing.T) {
	s := create(t, 64<<10, &ps.Options{MaxObjects: 4})
	if _, err := ps.NewMutex(s, ""); !errors.Is(err, ps.ErrInvalidName) {
		t.Errorf("empty object name: %v", err)
	}
	if _, err := ps.NewMutex(s, strings.Repeat("x", ps.MaxObjectNameLen+1)); !errors.Is(err, ps.ErrInvalidName) {
		t.Errorf("long object name: %v", err)
	}
	if _, err := ps.NewMutex(s, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.NewSemaphore(s, "m", 0, 0); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("mutex opened as semaphore: %v, want ErrMismatch", err)
	}
	for i := range 3 {
		if _, err := ps.NewMutex(s, "n"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ps.NewMutex(s, "one too many"); !errors.Is(err, ps.ErrNoSpace) {
		t.Errorf("full directory: %v, want ErrNoSpace", err)
	}
}

// TestOpenOrCreateExisting: OpenOrCreate opens an existing segment whatever
// size and shaping options it is given, as documented; the size matters only
// to the process that creates.
func TestOpenOrCreateExisting(t *testing.T) {
	name := shmtest.Name(t)
	seg, err := ps.Create(name, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	m, err := ps.NewMutex(seg, "m")
	if err != nil {
		t.Fatal(err)
	}
	m.Lock()
	defer m.Unlock()
	for _, c := range []struct {
		size int64
		opts *ps.Options
	}{
		{0, nil},
		{-1, nil},
		{4096, nil}, // too small for a new segment's tables
		{1 << 20, &ps.Options{MaxProcesses: ps.MaxProcessesLimit + 1}},
	} {
		s, err := ps.OpenOrCreate(name, c.size, c.opts)
		if err != nil {
			t.Errorf("OpenOrCreate(%q, %d, %+v) of an existing segment: %v", name, c.size, c.opts, err)
			continue
		}
		if s.Size() != seg.Size() {
			t.Errorf("OpenOrCreate(%d): size %d, want the existing %d", c.size, s.Size(), seg.Size())
		}
		m2, err := ps.NewMutex(s, "m")
		if err != nil {
			t.Fatal(err)
		}
		if m2.TryLock() {
			t.Errorf("OpenOrCreate(%d) gave a segment whose mutex m is free: not the existing one", c.size)
		}
		s.Close()
	}
	// A size a new segment cannot have still fails when the name is free.
	if _, err := ps.OpenOrCreate(shmtest.Name(t), 0, nil); err == nil {
		t.Error("OpenOrCreate of a new segment with size 0 succeeded")
	}
}

// TestMaxObjects: a segment holds exactly Options.MaxObjects objects; one
// more gives ErrNoSpace saying why, and the others stay usable.
func TestMaxObjects(t *testing.T) {
	seg := create(t, 1<<20, &ps.Options{MaxObjects: 5, MaxProcesses: 4})
	for i := range 5 {
		if _, err := ps.NewMutex(seg, fmt.Sprint("m", i)); err != nil {
			t.Fatalf("object %d of 5: %v", i+1, err)
		}
	}
	_, err := ps.NewMutex(seg, "m5")
	if !errors.Is(err, ps.ErrNoSpace) || !strings.Contains(err.Error(), "MaxObjects") {
		t.Fatalf("object 6 of 5: %v, want ErrNoSpace naming MaxObjects", err)
	}
	other := reopen(t, seg)
	for i := range 5 { // found again, through another handle too
		for _, s := range []*ps.Segment{seg, other} {
			if _, err := ps.NewMutex(s, fmt.Sprint("m", i)); err != nil {
				t.Errorf("object %d after the directory filled: %v", i, err)
			}
		}
	}
	objs, err := seg.Objects()
	if err != nil || len(objs) != 5 {
		t.Fatalf("Objects: %d, %v; want the 5", len(objs), err)
	}
	for i, o := range objs {
		if want := fmt.Sprint("m", i); o.Name != want {
			t.Errorf("Objects()[%d] = %q, want %q (creation order)", i, o.Name, want)
		}
	}
}
