//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

func newSlot(t *testing.T, s *ps.Segment, name string, capacity int, opts ...ps.SlotOption) *ps.Slot {
	t.Helper()
	sl, err := ps.NewSlot(s, name, capacity, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// objectInfo returns the directory entry of the object called name.
func objectInfo(t testing.TB, s *ps.Segment, name string) ps.ObjectInfo {
	t.Helper()
	objs, err := s.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no object %q in %v", name, objs)
	return ps.ObjectInfo{}
}

// shmFile opens the file of the named segment s, to read and write its bytes
// behind the library's back.
func shmFile(t testing.TB, s *ps.Segment) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join("/dev/shm", s.Name()), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSlotChildStoresObject is the seed's H3: a child stores a Go value in a
// slot, the parent loads an equal one.
func TestSlotChildStoresObject(t *testing.T) {
	if childtest.Role() == "store" {
		sl := newSlot(t, inheritEnv(t, "SEG"), "obj", 256)
		if err := sl.Store([]string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		return
	}
	s := create(t, 1<<16, nil)
	sl := newSlot(t, s, "obj", 256)
	runChild(t, "TestSlotChildStoresObject", "store", []*ps.Segment{s}, "SEG="+s.Name())
	var got []string
	if err := sl.Load(&got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("loaded %q", got)
	}
}

// TestSlotChecksumAcrossProcesses: a value stored WithChecksum by a child is
// checked by the parent's handle, made without the option; a byte of it
// changed behind the slot's back then fails the check. A value the child
// stores without the option is loaded as stored, and the same change goes
// unseen (no checksum to fail).
//
//	C.1 stores "checked value" WithChecksum.
//	P.1 loads it (plain handle); flips a byte of it; loads: ErrChecksum.
//	C.2 stores "plain value" without the option.
//	P.2 loads it; flips a byte of it; loads the changed value.
func TestSlotChecksumAcrossProcesses(t *testing.T) {
	if childtest.Role() == "store" {
		var opts []ps.SlotOption
		if os.Getenv("CRC") == "1" {
			opts = append(opts, ps.WithChecksum())
		}
		sl := newSlot(t, inheritEnv(t, "SEG"), "v", 64, opts...)
		if err := sl.StoreBytes([]byte(os.Getenv("VALUE"))); err != nil {
			t.Fatal(err)
		}
		return
	}
	s := create(t, 1<<16, nil)
	sl := newSlot(t, s, "v", 64)
	info := objectInfo(t, s, "v")
	f := shmFile(t, s)
	for _, c := range []struct{ crc, value string }{{"1", "checked value"}, {"0", "plain value"}} {
		runChild(t, "TestSlotChecksumAcrossProcesses", "store", []*ps.Segment{s}, "SEG="+s.Name(), "CRC="+c.crc, "VALUE="+c.value)
		if got, err := sl.LoadBytes(); err != nil || string(got) != c.value {
			t.Fatalf("CRC=%s: loaded %q, %v", c.crc, got, err)
		}
		mem := make([]byte, info.Size)
		f.ReadAt(mem, info.Offset)
		i := bytes.Index(mem, []byte(c.value))
		if i < 0 {
			t.Fatalf("CRC=%s: value not found in the slot's memory", c.crc)
		}
		f.WriteAt([]byte{'V'}, info.Offset+int64(i))
		got, err := sl.LoadBytes()
		switch {
		case c.crc == "1" && !errors.Is(err, ps.ErrChecksum):
			t.Errorf("changed value stored with a checksum: %q, %v; want ErrChecksum", got, err)
		case c.crc == "0" && (err != nil || string(got) != "V"+c.value[1:]):
			t.Errorf("changed value stored without a checksum: %q, %v; want the changed value", got, err)
		}
	}
}

// TestSlotTooLarge is the seed's H4: a value too large for the slot is
// refused with ErrTooLarge, and the previous value stays.
//
//	P.1 stores "first" in a slot of capacity 32.
//	C.1 stores 100 bytes of JSON, gets ErrTooLarge; same raw.
//	P.2 loads "first".
func TestSlotTooLarge(t *testing.T) {
	if childtest.Role() == "store" {
		sl := newSlot(t, inheritEnv(t, "SEG"), "small", 32, ps.WithCodec(ps.JSONCodec{}))
		if err := sl.Store(strings.Repeat("x", 100)); !errors.Is(err, ps.ErrTooLarge) {
			t.Errorf("Store of 102 bytes: %v, want ErrTooLarge", err)
		}
		if err := sl.StoreBytes(make([]byte, 33)); !errors.Is(err, ps.ErrTooLarge) {
			t.Errorf("StoreBytes of 33 bytes: %v, want ErrTooLarge", err)
		}
		return
	}
	s := create(t, 1<<16, nil)
	sl := newSlot(t, s, "small", 32, ps.WithCodec(ps.JSONCodec{}))
	if sl.Cap() != 32 || sl.Name() != "small" {
		t.Fatalf("Cap %d, Name %q", sl.Cap(), sl.Name())
	}
	if err := sl.Store("first"); err != nil {
		t.Fatal(err)
	}
	runChild(t, "TestSlotTooLarge", "store", []*ps.Segment{s}, "SEG="+s.Name())
	var got string
	if err := sl.Load(&got); err != nil || got != "first" {
		t.Fatalf("Load: %q, %v; want \"first\"", got, err)
	}
	if err := sl.StoreBytes(make([]byte, 32)); err != nil {
		t.Errorf("StoreBytes of exactly the capacity: %v", err)
	}
}

// TestObjectsDisjoint is the seed's H5: objects side by side in a segment do
// not disturb one another. A child fills every byte of each object; the
// parent finds each object holding only what was written to it.
func TestObjectsDisjoint(t *testing.T) {
	open := func(s *ps.Segment) (*ps.Bytes, *ps.Array[int64], *ps.Slot, *ps.Bytes) {
		return newBytes(t, s, "b1", 100), newArray[int64](t, s, "a", 13), newSlot(t, s, "s", 50), newBytes(t, s, "b2", 1)
	}
	if childtest.Role() == "fill" {
		b1, a, sl, b2 := open(inheritEnv(t, "SEG"))
		b1.WriteAt(bytes.Repeat([]byte{0x11}, 100), 0)
		for i := range a.Len() {
			a.Store(i, -1)
		}
		if err := sl.StoreBytes(bytes.Repeat([]byte{0x22}, 50)); err != nil {
			t.Fatal(err)
		}
		b2.WriteAt([]byte{0x33}, 0)
		return
	}
	s := create(t, 1<<16, nil)
	b1, a, sl, b2 := open(s)
	objs, err := s.Objects()
	if err != nil || len(objs) != 4 {
		t.Fatalf("Objects: %v, %v", objs, err)
	}
	for i := 1; i < len(objs); i++ {
		if prev := objs[i-1]; prev.Offset+prev.Size > objs[i].Offset {
			t.Errorf("%q [%d+%d] overlaps %q at %d", prev.Name, prev.Offset, prev.Size, objs[i].Name, objs[i].Offset)
		}
	}
	runChild(t, "TestObjectsDisjoint", "fill", []*ps.Segment{s}, "SEG="+s.Name())
	got := make([]byte, 100)
	b1.ReadAt(got, 0)
	if !bytes.Equal(got, bytes.Repeat([]byte{0x11}, 100)) {
		t.Errorf("b1: % x", got)
	}
	for i, v := range a.All() {
		if v != -1 {
			t.Errorf("a[%d] = %d", i, v)
		}
	}
	if p, err := sl.LoadBytes(); err != nil || !bytes.Equal(p, bytes.Repeat([]byte{0x22}, 50)) {
		t.Errorf("slot: % x, %v", p, err)
	}
	b2.ReadAt(got[:1], 0)
	if got[0] != 0x33 {
		t.Errorf("b2: %x", got[0])
	}
}

func TestSlotEmpty(t *testing.T) {
	s := create(t, 1<<16, nil)
	sl := newSlot(t, s, "empty", 16)
	var v int
	if err := sl.Load(&v); !errors.Is(err, ps.ErrEmpty) {
		t.Errorf("Load of a new slot: %v, want ErrEmpty", err)
	}
	if p, err := sl.LoadBytes(); p != nil || !errors.Is(err, ps.ErrEmpty) {
		t.Errorf("LoadBytes of a new slot: %v, %v, want ErrEmpty", p, err)
	}
	dst := []byte("keep")
	if p, err := sl.AppendBytes(dst); !bytes.Equal(p, dst) || !errors.Is(err, ps.ErrEmpty) {
		t.Errorf("AppendBytes of a new slot: %q, %v, want ErrEmpty", p, err)
	}
}

func TestSlotBytes(t *testing.T) {
	s := create(t, 1<<16, nil)
	sl := newSlot(t, s, "raw", 100)
	for _, p := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{0xff}, 100), []byte("\x00\xD1\x9B\x86\x00")} {
		if err := sl.StoreBytes(p); err != nil {
			t.Fatal(err)
		}
		got, err := sl.LoadBytes()
		if err != nil || !bytes.Equal(got, p) || got == nil {
			t.Fatalf("LoadBytes after StoreBytes(%q): %q, %v", p, got, err)
		}
		if got, err := sl.AppendBytes([]byte("pre:")); err != nil || string(got) != "pre:"+string(p) {
			t.Fatalf("AppendBytes: %q, %v", got, err)
		}
	}
	// The caller's slices are its own.
	p := []byte("abc")
	sl.StoreBytes(p)
	p[0] = 'X'
	got, _ := sl.LoadBytes()
	got[1] = 'Y'
	if again, _ := sl.LoadBytes(); string(again) != "abc" {
		t.Fatalf("slot value %q changed through the caller's slices", again)
	}
}

func TestSlotCodecs(t *testing.T) {
	type record struct {
		Name  string
		Tags  []string
		Score float64
	}
	want := record{Name: "Mária", Tags: []string{"x", "y"}, Score: 2.5}
	s := create(t, 1<<16, nil)
	for _, c := range []struct {
		name  string
		codec ps.Codec
	}{{"gob", ps.GobCodec{}}, {"json", ps.JSONCodec{}}} {
		t.Run(c.name, func(t *testing.T) {
			sl := newSlot(t, s, c.name, 200, ps.WithCodec(c.codec))
			if err := sl.Store(want); err != nil {
				t.Fatal(err)
			}
			var got record
			if err := sl.Load(&got); err != nil {
				t.Fatal(err)
			}
			if got.Name != want.Name || !slices.Equal(got.Tags, want.Tags) || got.Score != want.Score {
				t.Fatalf("loaded %+v, want %+v", got, want)
			}
			var wrong map[int]bool
			if err := sl.Load(&wrong); err == nil {
				t.Errorf("Load into %T succeeded", wrong)
			}
			if err := sl.Store(func() {}); err == nil {
				t.Errorf("Store of a func succeeded")
			}
		})
	}
	raw, err := newSlot(t, s, "json", 200).LoadBytes()
	if err != nil || !bytes.HasPrefix(raw, []byte(`{"Name":"Mária"`)) {
		t.Errorf("raw JSON: %s, %v", raw, err)
	}
}

func TestSlotErrors(t *testing.T) {
	s := create(t, 1<<16, nil)
	newSlot(t, s, "s", 100)
	if _, err := ps.NewSlot(s, "s", 101); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen with another capacity: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewBytes(s, "s", 100); !errors.Is(err, ps.ErrMismatch) {
		t.Errorf("reopen as Bytes: %v, want ErrMismatch", err)
	}
	if _, err := ps.NewSlot(s, "neg", -1); !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("negative capacity: %v, want ErrOutOfRange", err)
	}
	if _, err := ps.NewSlot(s, "huge", ps.MaxSlotCapacity+1); !errors.Is(err, ps.ErrOutOfRange) {
		t.Errorf("capacity over MaxSlotCapacity: %v, want ErrOutOfRange", err)
	}
	if _, err := ps.NewSlot(s, "big", 1<<16); !errors.Is(err, ps.ErrNoSpace) {
		t.Errorf("capacity larger than the segment: %v, want ErrNoSpace", err)
	}
	zero := newSlot(t, s, "zero", 0)
	if err := zero.StoreBytes(nil); err != nil {
		t.Errorf("StoreBytes(nil) into a zero-capacity slot: %v", err)
	}
	if err := zero.StoreBytes([]byte{1}); !errors.Is(err, ps.ErrTooLarge) {
		t.Errorf("StoreBytes of 1 byte into a zero-capacity slot: %v", err)
	}
}

func TestSlotUseAfterClose(t *testing.T) {
	s := create(t, 1<<16, nil)
	sl := newSlot(t, s, "s", 100)
	sl.Store(1)
	s.Close()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ps.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	check("Store", sl.Store(2))
	check("StoreBytes", sl.StoreBytes([]byte{1}))
	var v int
	check("Load", sl.Load(&v))
	_, err := sl.LoadBytes()
	check("LoadBytes", err)
	_, err = ps.NewSlot(s, "s", 100)
	check("NewSlot", err)
}

// TestSlotCorrupt flips each byte of a slot's memory in turn, behind the
// library's back, and loads. Stored WithChecksum: every load returns the
// stored value or an error, never another value. Stored without: a flip of
// the value's bytes or length may change the value returned (nothing can
// tell), but never past the capacity, and the other fields still give
// errors (a flip that sets the flags' checksum bit gives ErrChecksum). A Store repairs the slot either way.
func TestSlotCorrupt(t *testing.T) {
	t.Run("checksum", func(t *testing.T) { testSlotCorrupt(t, true) })
	t.Run("plain", func(t *testing.T) { testSlotCorrupt(t, false) })
}

func testSlotCorrupt(t *testing.T, checksum bool) {
	s := create(t, 1<<16, nil)
	var opts []ps.SlotOption
	if checksum {
		opts = append(opts, ps.WithChecksum())
	}
	sl := newSlot(t, s, "s", 40, opts...)
	want := []byte("the value, 26 bytes long..")
	if err := sl.StoreBytes(want); err != nil {
		t.Fatal(err)
	}
	info := objectInfo(t, s, "s")
	f := shmFile(t, s)
	orig := make([]byte, info.Size)
	if _, err := f.ReadAt(orig, info.Offset); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i := 64; i < len(orig); i++ { // the writer lock is not the slot's to check
		for _, x := range []byte{0x01, 0x80, 0xff} {
			f.WriteAt([]byte{orig[i] ^ x}, info.Offset+int64(i))
			got, err := sl.LoadBytes()
			switch {
			case err == nil && bytes.Equal(got, want):
				counts["intact"]++
			case errors.Is(err, ps.ErrChecksum):
				counts["checksum"]++
			case errors.Is(err, ps.ErrCorrupt):
				counts["corrupt"]++
			case errors.Is(err, ps.ErrEmpty):
				counts["empty"]++
			case err == nil && !checksum && len(got) <= sl.Cap():
				counts["changed"]++
			default:
				t.Fatalf("byte %d ^ %#x: LoadBytes returned %q, %v", i, x, got, err)
			}
			f.WriteAt(orig[i:i+1], info.Offset+int64(i))
		}
	}
	t.Logf("outcomes: %v", counts)
	if checksum && (counts["checksum"] == 0 || counts["corrupt"] == 0) || !checksum && (counts["corrupt"] == 0 || counts["changed"] == 0) {
		t.Errorf("outcomes %v: not those of a slot stored with checksum=%v", counts, checksum)
	}
	// Garbage everywhere but the lock, then a Store: the slot works again.
	f.WriteAt(bytes.Repeat([]byte{0xa5}, len(orig)-64), info.Offset+64)
	if _, err := sl.LoadBytes(); err == nil {
		t.Fatal("LoadBytes of garbage succeeded")
	}
	if err := sl.StoreBytes([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if got, err := sl.LoadBytes(); err != nil || string(got) != "fresh" {
		t.Fatalf("after repair: %q, %v", got, err)
	}
}

// tornValue fills buf with value number k and returns it: an 8-byte header
// holding k, then a length depending on k of bytes all equal to byte(k).
func tornValue(buf []byte, k uint64) []byte {
	const min = 64 << 10
	n := min + int(k*7919%uint64(len(buf)-min))
	p := buf[:n]
	binary.LittleEndian.PutUint64(p, k)
	p[8] = byte(k)
	for i := 9; i < n; i += i - 8 {
		copy(p[i:], p[8:i])
	}
	return p
}

// checkTornValue reports whether p is a value made by tornValue for a buffer
// of size capacity, and returns its number.
func checkTornValue(p []byte, capacity int) (uint64, error) {
	if len(p) < 9 {
		return 0, fmt.Errorf("value of %d bytes", len(p))
	}
	k := binary.LittleEndian.Uint64(p)
	if want := len(tornValue(make([]byte, capacity), k)); len(p) != want {
		return k, fmt.Errorf("value %d has %d bytes, want %d", k, len(p), want)
	}
	for i, c := range p[8:] {
		if c != byte(k) {
			return k, fmt.Errorf("value %d: byte %d is %#x, want %#x", k, 8+i, c, byte(k))
		}
	}
	return k, nil
}

// TestSlotTornWrite kills a writer with SIGKILL at random moments, 20 times,
// while it stores large values in a loop; after each kill the parent loads
// a complete, valid value, or ErrEmpty before any value was stored.
//
//	P.1 creates a slot of 1 MiB.
//	C.1 (one per trial, numbering its values from trial<<32) stores values
//	    of 64 KiB to 1 MiB in a loop, each write taking the writer lock,
//	    which its predecessor may have died holding.
//	P.2 waits until C has stored a value (every fourth trial it does not),
//	    sleeps 0-3 ms, and kills C.
//	P.3 loads: a valid value, never a mix of two.
func TestSlotTornWrite(t *testing.T) {
	const capacity = 1 << 20
	if childtest.Role() == "writer" {
		sl := newSlot(t, inheritEnv(t, "SEG"), "torn", capacity)
		k, _ := strconv.ParseUint(os.Getenv("START"), 10, 64)
		buf := make([]byte, capacity)
		for ; ; k++ {
			if err := sl.StoreBytes(tornValue(buf, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := create(t, 4<<20, nil)
	sl := newSlot(t, s, "torn", capacity)
	info := objectInfo(t, s, "torn")
	f := shmFile(t, s)
	stored, heldLock := false, 0
	for trial := range 20 {
		start := uint64(trial) << 32
		cmd := childCmd(t, "TestSlotTornWrite", "writer", []*ps.Segment{s}, "SEG="+s.Name(), "START="+strconv.FormatUint(start, 10))
		cmd.Stderr = nil
		childtest.Start(t, cmd)
		if trial%4 == 0 {
			time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		} else {
			deadline := time.Now().Add(time.Minute)
			for {
				if p, err := sl.LoadBytes(); err == nil && binary.LittleEndian.Uint64(p) >= start {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("trial %d: the writer stored nothing in a minute", trial)
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		var word [4]byte
		f.ReadAt(word[:], info.Offset)
		if word != [4]byte{} {
			heldLock++
		}
		p, err := sl.LoadBytes()
		switch {
		case errors.Is(err, ps.ErrEmpty) && !stored:
			t.Logf("trial %d: empty", trial)
			continue
		case err != nil:
			t.Fatalf("trial %d: LoadBytes: %v", trial, err)
		}
		k, err := checkTornValue(p, capacity)
		if err != nil {
			t.Fatalf("trial %d: torn value: %v", trial, err)
		}
		t.Logf("trial %d: value %d of trial %d (%d bytes)", trial, k&(1<<32-1), k>>32, len(p))
		stored = true
	}
	t.Logf("killed holding the writer lock in %d of 20 trials", heldLock)
	// The lock of a dead writer does not stop the next one.
	if err := sl.StoreBytes([]byte("after the kills")); err != nil {
		t.Fatal(err)
	}
	if p, err := sl.LoadBytes(); err != nil || string(p) != "after the kills" {
		t.Fatalf("after the kills: %q, %v", p, err)
	}
}

// TestSlotHammer has 3 writer processes store 2000 values each while 4
// reader goroutines load as fast as they can: every load is a valid value.
func TestSlotHammer(t *testing.T) {
	const capacity, writers, values, readers = 128 << 10, 3, 2000, 4
	if childtest.Role() == "writer" {
		sl := newSlot(t, inheritEnv(t, "SEG"), "h", capacity)
		id, _ := strconv.ParseUint(os.Getenv("ID"), 10, 64)
		buf := make([]byte, capacity)
		for k := range uint64(values) {
			if err := sl.StoreBytes(tornValue(buf, id<<32|k)); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	s := create(t, 1<<20, nil)
	sl := newSlot(t, s, "h", capacity)
	if err := sl.StoreBytes(tornValue(make([]byte, capacity), 99<<32)); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var loads atomic.Int64
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			var buf []byte
			for !done.Load() {
				p, err := sl.AppendBytes(buf[:0])
				if err != nil {
					t.Errorf("load: %v", err)
					return
				}
				if _, err := checkTornValue(p, capacity); err != nil {
					t.Errorf("load: %v", err)
					return
				}
				buf = p
				loads.Add(1)
			}
		})
	}
	var wg sync.WaitGroup
	for i := range writers {
		cmd := childCmd(t, "TestSlotHammer", "writer", []*ps.Segment{s}, "SEG="+s.Name(), "ID="+strconv.Itoa(i))
		wg.Go(func() {
			if out, err := cmd.Output(); err != nil {
				t.Errorf("writer %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rg.Wait()
	p, err := sl.LoadBytes()
	if err != nil {
		t.Fatal(err)
	}
	k, err := checkTornValue(p, capacity)
	if err != nil || k&(1<<32-1) != values-1 {
		t.Fatalf("final value %d (%v), want the last of a writer", k, err)
	}
	t.Logf("%d loads", loads.Load())
}
