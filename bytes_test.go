//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// runChild runs test (a top-level test of this binary) as a child process
// with role, hands it segs with Pass, and waits for it to pass. The child
// finds a segment's name in the environment variable its parent sets (see
// inheritEnv).
func runChild(t *testing.T, test, role string, segs []*ps.Segment, env ...string) {
	t.Helper()
	childtest.Output(t, childCmd(t, test, role, segs, env...))
}

// childCmd returns the command runChild runs. Under the race detector, the
// child skips the detector's one-second sleep at exit.
func childCmd(t *testing.T, test, role string, segs []*ps.Segment, env ...string) *exec.Cmd {
	t.Helper()
	env = append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd := childtest.Command(t, test, role, env...)
	if err := ps.Pass(cmd, segs...); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// inheritEnv attaches a child to the segment whose name is in the
// environment variable env.
func inheritEnv(t *testing.T, env string) *ps.Segment {
	t.Helper()
	s, err := ps.Inherit(os.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newBytes(t *testing.T, s *ps.Segment, name string, size int) *ps.Bytes {
	t.Helper()
	b, err := ps.NewBytes(s, name, size)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustPanic calls f and checks that it panics with an error matching want.
func mustPanic(t *testing.T, want error, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one matching %v", want)
		}
		if err, ok := r.(error); !ok || !errors.Is(err, want) {
			t.Fatalf("panic %v, want an error matching %v", r, want)
		}
	}()
	f()
}

// TestBytesChildWritesByte is the seed's H1: a child writes a byte, the
// parent reads it.
//
//	P.1 creates the segment and a 16-byte region, hands it to C.
//	C.1 finds the region and writes 0x2a at offset 3, then exits.
//	P.2 reads 0x2a at offset 3, zeros elsewhere.
func TestBytesChildWritesByte(t *testing.T) {
	if childtest.Role() == "write" {
		b := newBytes(t, inheritEnv(t, "SEG"), "b", 16)
		if _, err := b.WriteAt([]byte{0x2a}, 3); err != nil {
			t.Fatal(err)
		}
		return
	}
	s := create(t, 1<<16, nil)
	b := newBytes(t, s, "b", 16)
	runChild(t, "TestBytesChildWritesByte", "write", []*ps.Segment{s}, "SEG="+s.Name())
	got := make([]byte, 16)
	if n, err := b.ReadAt(got, 0); n != 16 || err != nil {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	want := make([]byte, 16)
	want[3] = 0x2a
	if !bytes.Equal(got, want) {
		t.Fatalf("read % x, want % x", got, want)
	}
}

// TestBytesTypedChild is the seed's H2: typed numbers written by a child, in
// the machine's byte order, are read back by the parent. The child opens the
// segment by name, not through Pass.
func TestBytesTypedChild(t *testing.T) {
	if childtest.Role() == "write" {
		s, err := ps.Open(os.Getenv("SEG"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		b := newBytes(t, s, "typed", 64)
		for _, err := range []error{
			ps.Store(b, 0, int64(-1234567890123)),
			ps.Store(b, 8, math.Pi),
			ps.Store(b, 17, uint32(0xdeadbeef)), // unaligned
			ps.StoreSlice(b, 24, []uint16{1, 2, 65535}),
			ps.Store(b, 63, int8(-5)),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	s := create(t, 1<<16, nil)
	b := newBytes(t, s, "typed", 64)
	runChild(t, "TestBytesTypedChild", "write", nil, "SEG="+s.Name())
	if v, err := ps.Load[int64](b, 0); v != -1234567890123 || err != nil {
		t.Errorf("Load[int64]: %d, %v", v, err)
	}
	if v, err := ps.Load[float64](b, 8); v != math.Pi || err != nil {
		t.Errorf("Load[float64]: %v, %v", v, err)
	}
	if v, err := ps.Load[uint32](b, 17); v != 0xdeadbeef || err != nil {
		t.Errorf("Load[uint32]: %#x, %v", v, err)
	}
	u := make([]uint16, 3)
	if err := ps.LoadSlice(b, 24, u); err != nil || u[0] != 1 || u[1] != 2 || u[2] != 65535 {
		t.Errorf("LoadSlice: %v, %v", u, err)
	}
	if v, err := ps.Load[int8](b, 63); v != -5 || err != nil {
		t.Errorf("Load[int8]: %d, %v", v, err)
	}
	// The machine's byte order, byte for byte.
	raw := make([]byte, 4)
	b.ReadAt(raw, 17)
	want := binary.NativeEndian.AppendUint32(nil, 0xdeadbeef)
	if !bytes.Equal(raw, want) {
		t.Errorf("uint32 stored as % x, want % x", raw, want)
	}
}

func TestBytesReadWriteAt(t *testing.T) {
	s := create(t, 1<<16, nil)
	b := newBytes(t, s, "rw", 8)
	if b.Len() != 8 || b.Name() != "rw" {
		t.Fatalf("Len %d, Name %q", b.Len(), b.Name())
	}
	if n, err := b.WriteAt([]byte("abcdefgh"), 0); n != 8 || err != nil {
		t.Fatalf("WriteAt whole: %d, %v", n, err)
	}
	// Past the end: nothing written.
	for _, c := range []struct {
		p   string
		off int64
	}{{"XY", 7}, {"X", 8}, {"X", -1}, {"X", math.MaxInt64}, {"XYZXYZXYZ", 0}} {
		if n, err := b.WriteAt([]byte(c.p), c.off); n != 0 || !errors.Is(err, ps.ErrOutOfRange) {
			t.Errorf("WriteAt(%q, %d): %d, %v; want 0, ErrOutOfRange", c.p, c.off, n, err)
		}
	}
	if n, err := b.WriteAt(nil, 8); n != 0 || err != nil {
		t.Errorf("WriteAt(nil, end): %d, %v", n, err)
	}
	p := make([]byte, 4)
	if n, err := b.ReadAt(p, 6); n != 2 || err != io.EOF || string(p[:n]) != "gh" {
		t.Errorf("ReadAt over the end: %d %q, %v; want 2 \"gh\", EOF", n, p[:n], err)
	}
	if n, err := b.ReadAt(p, 8); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end: %d, %v; want 0, EOF", n, err)
	}
	if n, err := b.ReadAt(p, math.MaxInt64); n != 0 || err != io.EOF {
		t.Errorf("ReadAt far past the end: %d, %v; want 0, EOF", n, err)
	}
	if n, err := b.ReadAt(p, -1); n != 0 || !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("ReadAt(-1): %d, %v; want ErrOutOfRange", n, err)
	}
	if n, err := b.ReadAt(p, 2); n != 4 || err != nil || string(p) != "cdef" {
		t.Errorf("ReadAt inside: %d %q, %v", n, p, err)
	}
	var _ io.ReaderAt = b
	var _ io.WriterAt = b
}

func TestBytesTypedBounds(t *testing.T) {
	s := create(t, 1<<16, nil)
	b := newBytes(t, s, "typed", 16)
	for _, off := range []int64{-1, 9, 16, math.MaxInt64, math.MinInt64} {
		if _, err := ps.Load[int64](b, off); !errors.Is(err, ps.ErrOutOfRange) {
			t.Errorf("Load[int64](%d): %v, want ErrOutOfRange", off, err)
		}
		if err := ps.Store(b, off, int64(1)); !errors.Is(err, ps.ErrOutOfRange) {
			t.Errorf("Store[int64](%d): %v, want ErrOutOfRange", off, err)
		}
	}
	if err := ps.Store(b, 8, int64(7)); err != nil {
		t.Fatal(err)
	}
	if err := ps.Store(b, 15, uint8(9)); err != nil {
		t.Fatal(err)
	}
	dst := []int32{-1, -1, -1, -1, -1}
	if err := ps.LoadSlice(b, 0, dst); !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("LoadSlice of 20 bytes from 16: %v", err)
	}
	if dst[0] != -1 {
		t.Errorf("failed LoadSlice changed dst: %v", dst)
	}
	before := make([]byte, 16)
	b.ReadAt(before, 0)
	if err := ps.StoreSlice(b, 8, []int32{1, 2, 3}); !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("StoreSlice of 12 bytes at 8 of 16: %v", err)
	}
	after := make([]byte, 16)
	b.ReadAt(after, 0)
	if !bytes.Equal(before, after) {
		t.Errorf("failed StoreSlice wrote: % x → % x", before, after)
	}
	if err := ps.LoadSlice(b, 16, []float32{}); err != nil {
		t.Errorf("empty LoadSlice at the end: %v", err)
	}
	if err := ps.StoreSlice(b, 17, []float32{}); !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("empty StoreSlice past the end: %v", err)
	}
	if err := ps.StoreSlice(b, 0, []float64{1.5, -2}); err != nil {
		t.Fatal(err)
	}
	f := make([]float64, 2)
	if err := ps.LoadSlice(b, 0, f); err != nil || f[0] != 1.5 || f[1] != -2 {
		t.Errorf("LoadSlice: %v, %v", f, err)
	}
	type celsius float32 // a defined type: ~float32
	if err := ps.Store(b, 0, celsius(-40)); err != nil {
		t.Fatal(err)
	}
	if v, err := ps.Load[celsius](b, 0); v != -40 || err != nil {
		t.Errorf("Load[celsius]: %v, %v", v, err)
	}
}

// TestCursor is the seed's I1-I3 (SharedMemoryIO): a child writes ASCII,
// UTF-8 and binary strings through a Cursor, the parent reads them back
// through its own.
func TestCursor(t *testing.T) {
	texts := []struct{ name, s string }{
		{"ascii", "Hello, world."},
		{"utf8", "Mária"},
		{"binary", "\x00\xD1\x9B\x86\x00"},
	}
	if childtest.Role() == "write" {
		c := newBytes(t, inheritEnv(t, "SEG"), "io", 64).NewCursor()
		for _, x := range texts {
			if n, err := c.Write([]byte(x.s)); n != len(x.s) || err != nil {
				t.Fatalf("Write(%q): %d, %v", x.s, n, err)
			}
		}
		return
	}
	s := create(t, 1<<16, nil)
	b := newBytes(t, s, "io", 64)
	runChild(t, "TestCursor", "write", []*ps.Segment{s}, "SEG="+s.Name())
	c := b.NewCursor()
	var _ io.ReadWriteSeeker = c
	for _, x := range texts {
		t.Run(x.name, func(t *testing.T) {
			got := make([]byte, len(x.s))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != x.s {
				t.Fatalf("read %q, want %q", got, x.s)
			}
		})
	}
	// Round trip within one process, from a second cursor.
	for _, x := range texts {
		t.Run(x.name+"/roundtrip", func(t *testing.T) {
			c := b.NewCursor()
			if _, err := c.Seek(40, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(c, x.s); err != nil {
				t.Fatal(err)
			}
			if pos, err := c.Seek(-int64(len(x.s)), io.SeekCurrent); pos != 40 || err != nil {
				t.Fatalf("Seek back: %d, %v", pos, err)
			}
			got := make([]byte, len(x.s))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != x.s {
				t.Fatalf("read %q, %v; want %q", got, err, x.s)
			}
		})
	}
}

func TestCursorSeek(t *testing.T) {
	s := create(t, 1<<16, nil)
	c := newBytes(t, s, "io", 10).NewCursor()
	if pos, err := c.Seek(-3, io.SeekEnd); pos != 7 || err != nil {
		t.Fatalf("Seek(-3, End): %d, %v", pos, err)
	}
	if n, err := c.Write([]byte("abcd")); n != 0 || !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("Write over the end: %d, %v; want 0, ErrOutOfRange", n, err)
	}
	if n, err := c.Write([]byte("abc")); n != 3 || err != nil {
		t.Errorf("Write to the end: %d, %v", n, err)
	}
	if pos, _ := c.Seek(0, io.SeekCurrent); pos != 10 {
		t.Errorf("position %d after writing to the end, want 10", pos)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end: %d, %v", n, err)
	}
	for _, c2 := range []struct {
		off    int64
		whence int
	}{{-1, io.SeekStart}, {-11, io.SeekEnd}, {-100, io.SeekCurrent}, {0, 42}, {math.MaxInt64, io.SeekEnd}} {
		if pos, err := c.Seek(c2.off, c2.whence); pos != 10 || !errors.Is(err, ps.ErrOutOfRange) {
			t.Errorf("Seek(%d, %d): %d, %v; want position kept, ErrOutOfRange", c2.off, c2.whence, pos, err)
		}
	}
	if pos, err := c.Seek(100, io.SeekStart); pos != 100 || err != nil {
		t.Errorf("Seek past the end: %d, %v", pos, err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read past the end: %d, %v", n, err)
	}
	if n, err := c.Write([]byte("x")); n != 0 || !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("Write past the end: %d, %v", n, err)
	}
	c.Seek(0, io.SeekStart)
	all, err := io.ReadAll(c)
	if err != nil || len(all) != 10 || string(all[7:]) != "abc" {
		t.Errorf("ReadAll: %q, %v", all, err)
	}
}

func TestBytesErrors(t *testing.T) {
	s := create(t, 1<<16, nil)
	newBytes(t, s, "b", 16)
	if _, err := ps.NewBytes(s, "b", 17); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen with another size: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewArray[byte](s, "b", 16); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen as an Array: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewBytes(s, "neg", -1); !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("negative size: %v, want ErrOutOfRange", err)
	}
	if _, err := ps.NewBytes(s, "huge", math.MaxInt); !errors.Is(err, ps.ErrNoSpace) {
		t.Errorf("huge size: %v, want ErrNoSpace", err)
	}
	if _, err := ps.NewBytes(s, "big", 1<<16); !errors.Is(err, ps.ErrNoSpace) {
		t.Errorf("size of the whole segment: %v, want ErrNoSpace", err)
	}
	if _, err := ps.NewBytes(s, "", 1); !errors.Is(err, ps.ErrInvalidName) {
		t.Errorf("empty name: %v, want ErrInvalidName", err)
	}
	if b, err := ps.NewBytes(s, "zero", 0); err != nil || b.Len() != 0 {
		t.Errorf("zero size: %v", err)
	}
}

func TestBytesUseAfterClose(t *testing.T) {
	s := create(t, 1<<16, nil)
	b := newBytes(t, s, "b", 16)
	c := b.NewCursor()
	s.Close()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ps.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	_, err := b.ReadAt(make([]byte, 1), 0)
	check("ReadAt", err)
	_, err = b.WriteAt([]byte{1}, 0)
	check("WriteAt", err)
	_, err = c.Read(make([]byte, 1))
	check("Cursor.Read", err)
	_, err = c.Write([]byte{1})
	check("Cursor.Write", err)
	_, err = ps.Load[int32](b, 0)
	check("Load", err)
	check("Store", ps.Store(b, 0, int32(1)))
	check("LoadSlice", ps.LoadSlice(b, 0, make([]int16, 2)))
	check("StoreSlice", ps.StoreSlice(b, 0, []int16{1, 2}))
	_, err = ps.NewBytes(s, "b", 16)
	check("NewBytes", err)
	if b.Len() != 16 {
		t.Errorf("Len after Close: %d", b.Len())
	}
}

// TestAnonymousPass hands an anonymous segment to a child, which writes into
// it; the parent sees the write.
func TestAnonymousPass(t *testing.T) {
	if childtest.Role() == "write" {
		s := inheritEnv(t, "SEG")
		if !s.Anonymous() {
			t.Error("inherited segment is not anonymous")
		}
		if _, err := newBytes(t, s, "b", 8).WriteAt([]byte("from kid"), 0); err != nil {
			t.Fatal(err)
		}
		return
	}
	s, err := ps.NewAnonymous("anon-pass", 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := newBytes(t, s, "b", 8)
	runChild(t, "TestAnonymousPass", "write", []*ps.Segment{s}, "SEG="+s.Name())
	got := make([]byte, 8)
	b.ReadAt(got, 0)
	if string(got) != "from kid" {
		t.Fatalf("read %q", got)
	}
}

// TestSeveralSegments hands a named and two anonymous segments to one child,
// which writes a Bytes, an Array and a Slot, one in each.
func TestSeveralSegments(t *testing.T) {
	if childtest.Role() == "write" {
		named := inheritEnv(t, "NAMED")
		anon1 := inheritEnv(t, "ANON1")
		anon2 := inheritEnv(t, "ANON2")
		if named.Anonymous() || !anon1.Anonymous() || !anon2.Anonymous() {
			t.Errorf("Anonymous: %v %v %v", named.Anonymous(), anon1.Anonymous(), anon2.Anonymous())
		}
		if _, err := newBytes(t, named, "x", 4).WriteAt([]byte("name"), 0); err != nil {
			t.Fatal(err)
		}
		a := newArray[int64](t, anon1, "x", 4)
		a.Store(3, 33)
		sl := newSlot(t, anon2, "x", 64)
		if err := sl.Store(map[string]int{"one": 1}); err != nil {
			t.Fatal(err)
		}
		return
	}
	named := create(t, 1<<16, nil)
	var anons []*ps.Segment
	for _, label := range []string{"anon-1", "anon-2"} {
		s, err := ps.NewAnonymous(label, 1<<16, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		anons = append(anons, s)
	}
	b := newBytes(t, named, "x", 4)
	a := newArray[int64](t, anons[0], "x", 4)
	sl := newSlot(t, anons[1], "x", 64)
	// Two calls to Pass for the same command.
	cmd := childtest.Command(t, "TestSeveralSegments", "write",
		"NAMED="+named.Name(), "ANON1="+anons[0].Name(), "ANON2="+anons[1].Name())
	if err := ps.Pass(cmd, named, anons[0]); err != nil {
		t.Fatal(err)
	}
	if err := ps.Pass(cmd, anons[1]); err != nil {
		t.Fatal(err)
	}
	childtest.Output(t, cmd)
	got := make([]byte, 4)
	b.ReadAt(got, 0)
	if string(got) != "name" {
		t.Errorf("named segment: %q", got)
	}
	if v := a.Load(3); v != 33 {
		t.Errorf("first anonymous segment: %d", v)
	}
	var m map[string]int
	if err := sl.Load(&m); err != nil || m["one"] != 1 {
		t.Errorf("second anonymous segment: %v, %v", m, err)
	}
}
