//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// FuzzSlotDecode writes fuzz bytes over a slot's memory, at a fuzz-chosen
// offset, and loads: Load and LoadBytes return a value or an error, never
// panic, never read out of bounds. It also stores the fuzz bytes as a raw
// value and decodes them with the gob and JSON codecs.
//
// The segment is anonymous, written through its descriptor with pwrite(2),
// so an interrupted fuzz worker leaves nothing in /dev/shm.
func FuzzSlotDecode(f *testing.F) {
	s, err := ps.NewAnonymous("fuzz-slot", 1<<16, &ps.Options{MaxObjects: 4, MaxProcesses: 4})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	sl, err := ps.NewSlot(s, "s", 256, ps.WithChecksum()) // its stores carry a checksum, js's do not
	if err != nil {
		f.Fatal(err)
	}
	js, err := ps.NewSlot(s, "s", 256, ps.WithCodec(ps.JSONCodec{}))
	if err != nil {
		f.Fatal(err)
	}
	if err := sl.Store([]string{"a", "b"}); err != nil {
		f.Fatal(err)
	}
	info := objectInfo(f, s, "s")
	fd := int(s.Fd())
	valid := make([]byte, info.Size)
	if _, err := syscall.Pread(fd, valid, info.Offset); err != nil {
		f.Fatal(err)
	}
	gobbed, _ := ps.GobCodec{}.Marshal([]string{"x", "y", "z"})

	f.Add(uint16(0), valid)
	f.Add(uint16(64), []byte{2, 0, 0, 0, 0, 0, 0, 0})                    // generation
	f.Add(uint16(128), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}) // seq, length
	f.Add(uint16(128+192), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add(uint16(128+192+32), []byte("garbage in the data"))
	f.Add(uint16(0), gobbed)
	f.Add(uint16(0), []byte(`["x","y"]`))
	f.Add(uint16(0), []byte{})

	f.Fuzz(func(t *testing.T, at uint16, data []byte) {
		// A valid slot, unlocked, holding a value.
		if _, err := syscall.Pwrite(fd, valid, info.Offset); err != nil {
			t.Fatal(err)
		}
		// The fuzz bytes as a value to decode.
		if len(data) <= sl.Cap() {
			st := sl // with a checksum
			if at&1 != 0 {
				st = js // without
			}
			if err := st.StoreBytes(data); err != nil {
				t.Fatalf("StoreBytes: %v", err)
			}
			if p, err := sl.LoadBytes(); err != nil || !bytes.Equal(p, data) {
				t.Fatalf("LoadBytes after StoreBytes: %q, %v", p, err)
			}
			var v []string
			sl.Load(&v)
			var w any
			js.Load(&w)
		}
		// The fuzz bytes as the slot's memory.
		off := int64(at) % info.Size
		n := min(int64(len(data)), info.Size-off)
		if _, err := syscall.Pwrite(fd, data[:n], info.Offset+off); err != nil {
			t.Fatal(err)
		}
		p, err := sl.LoadBytes()
		if err == nil && len(p) > sl.Cap() {
			t.Fatalf("LoadBytes returned %d bytes from a slot of capacity %d", len(p), sl.Cap())
		}
		if err != nil && !errors.Is(err, ps.ErrEmpty) && !errors.Is(err, ps.ErrChecksum) && !errors.Is(err, ps.ErrCorrupt) {
			t.Fatalf("LoadBytes of garbage: unexpected error %v", err)
		}
		var v []string
		sl.Load(&v)
	})
}

// fuzzImage returns the file of a small valid segment holding a Bytes, an
// Array and a Slot with a value, for the segment fuzzers to start from.
func fuzzImage(f *testing.F) []byte {
	s, err := ps.Create(shmtest.Name(f), 4096, &ps.Options{MaxObjects: 8, MaxProcesses: 4})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	b, err := ps.NewBytes(s, "b", 64)
	if err != nil {
		f.Fatal(err)
	}
	b.WriteAt([]byte("bytes"), 0)
	a, err := ps.NewArray[int64](s, "a", 8)
	if err != nil {
		f.Fatal(err)
	}
	a.Store(0, 42)
	sl, err := ps.NewSlot(s, "s", 100)
	if err != nil {
		f.Fatal(err)
	}
	if err := sl.Store("value"); err != nil {
		f.Fatal(err)
	}
	q, err := ps.NewQueue(s, "q", 2, 32)
	if err != nil {
		f.Fatal(err)
	}
	q.Send([]byte("queued"))
	img, err := os.ReadFile(filepath.Join("/dev/shm", s.Name()))
	if err != nil {
		f.Fatal(err)
	}
	return img
}

// useImage writes img as the segment file called name, opens it, and uses
// it: lists its objects, looks up the objects fuzzImage made and reads them,
// creates a new one. Every step may fail; none may crash or hang.
func useImage(t *testing.T, name string, img []byte) {
	path := filepath.Join("/dev/shm", name)
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if len(img) >= 8 && binary.NativeEndian.Uint64(img) != 0 {
		if s, err := ps.Open(name); err == nil {
			s.Close()
		}
	}
	// Reopen with a short wait: a file without a magic number is one being
	// created, and lookups wait for directory entries claimed by live
	// processes; neither should cost the fuzzer DefaultInitTimeout.
	s, err := ps.OpenOrCreate(name, 4096, &ps.Options{MaxObjects: 1, MaxProcesses: 1, InitTimeout: time.Millisecond})
	if err != nil {
		return
	}
	defer s.Close()
	s.Objects()
	if b, err := ps.NewBytes(s, "b", 64); err == nil {
		b.ReadAt(make([]byte, 64), 0)
		ps.Load[int64](b, 8)
	}
	if a, err := ps.NewArray[int64](s, "a", 8); err == nil {
		for range a.All() {
		}
		ps.Add(a, 7, 1)
	}
	if sl, err := ps.NewSlot(s, "s", 100); err == nil {
		var v string
		sl.Load(&v)
	}
	if q, err := ps.NewQueue(s, "q", 2, 32); err == nil {
		useQueue(q)
	}
	if b, err := ps.NewBytes(s, "new", 16); err == nil {
		b.WriteAt([]byte("x"), 15)
	}
	s.Objects()
}

// FuzzSegmentHeader writes fuzz bytes as a whole segment file and opens it:
// Open returns a segment or an error, and a segment it returns is safe to
// use.
func FuzzSegmentHeader(f *testing.F) {
	img := fuzzImage(f)
	f.Add(img)
	f.Add(img[:256])
	f.Add(img[:8])
	f.Add([]byte("PSSHSEG1"))
	f.Add([]byte{})
	bad := bytes.Clone(img)
	bad[36] = 0xff // directory capacity
	f.Add(bad)
	name := shmtest.Name(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		useImage(t, name, data)
	})
}

// FuzzSegmentTables overwrites a fuzz-chosen range of a valid segment file
// (header, process table, directory or objects) with fuzz bytes, then opens
// and uses it as FuzzSegmentHeader does.
func FuzzSegmentTables(f *testing.F) {
	img := fuzzImage(f)
	const procOff, dirOff = 256, 256 + 4*64
	heapOff := int(binary.NativeEndian.Uint64(img[40:]))
	seeds := []struct {
		at   int
		data []byte
	}{
		{16, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},                // size
		{48, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},                // heap next
		{procOff, []byte{1, 0, 0, 0x40, 1, 0, 0, 0}},                                // a dead process
		{dirOff, []byte{1, 0, 0, 0x40}},                                             // entry claimed by pid 1
		{dirOff, []byte{7, 0, 0, 0}},                                                // entry with a bad state
		{dirOff + 16, []byte{0, 0x10, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},    // object offset and size
		{dirOff + 128 + 8, []byte{16, 0, 0, 0}},                                     // array element size
		{dirOff + 128 + 24, []byte{0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, // array size
		{dirOff + 3*128, []byte{1, 0, 0, 0, 1, 0, 0, 0}},                            // a ready entry from nowhere
		{heapOff, []byte("garbage")},
	}
	for _, s := range seeds {
		f.Add(uint16(s.at), s.data)
	}
	name := shmtest.Name(f)
	f.Fuzz(func(t *testing.T, at uint16, data []byte) {
		c := bytes.Clone(img)
		off := int(at) % len(c)
		copy(c[off:], data)
		useImage(t, name, c)
	})
}
