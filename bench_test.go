//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

func benchSegment(b *testing.B, size int64) *ps.Segment {
	s, err := ps.Create(shmtest.Name(b), size, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkArrayAdd measures an atomic Add on one element of an
// Array[int64]: from one goroutine, and from GOMAXPROCS goroutines hitting
// the same element.
func BenchmarkArrayAdd(b *testing.B) {
	s := benchSegment(b, 1<<16)
	a, err := ps.NewArray[int64](s, "counter", 8)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			ps.Add(a, 0, 1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ps.Add(a, 0, 1)
			}
		})
	})
}

// BenchmarkSlot measures one store and one load of a raw payload, and of a
// gob-encoded []byte, in a slot that fits it exactly.
func BenchmarkSlot(b *testing.B) {
	s := benchSegment(b, 8<<20)
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"1MiB", 1 << 20}} {
		payload := bytes.Repeat([]byte{0x5a}, size.n)
		sl, err := ps.NewSlot(s, "raw-"+size.name, size.n+64)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(size.n))
			for b.Loop() {
				if err := sl.StoreBytes(payload); err != nil {
					b.Fatal(err)
				}
				if _, err := sl.LoadBytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/append", func(b *testing.B) {
			b.SetBytes(int64(size.n))
			buf := make([]byte, 0, size.n)
			for b.Loop() {
				if err := sl.StoreBytes(payload); err != nil {
					b.Fatal(err)
				}
				if buf, err = sl.AppendBytes(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/gob", func(b *testing.B) {
			b.SetBytes(int64(size.n))
			var out []byte
			for b.Loop() {
				if err := sl.Store(payload); err != nil {
					b.Fatal(err)
				}
				if err := sl.Load(&out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
