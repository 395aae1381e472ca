//go:build darwin || freebsd || linux

package processshared_test

import (
	"fmt"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
)

// objectsSegment returns an anonymous segment holding n mutexes, m0 to
// m<n-1>, created in that order.
func objectsSegment(b *testing.B, n int) *ps.Segment {
	b.Helper()
	s, err := ps.NewAnonymous("objects", int64(n)*(64+3*128)+1<<20, &ps.Options{MaxObjects: n, MaxProcesses: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := range n {
		if _, err := ps.NewMutex(s, fmt.Sprintf("m%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkFindByName finds the last object created, in segments of 10,
// 1,000 and 100,000 objects: "first sight" as a handle that has not seen
// the entry yet (it probes the directory, reads and validates the entry),
// "again" as one that has.
func BenchmarkFindByName(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		s := objectsSegment(b, n)
		last := fmt.Sprintf("m%d", n-1)
		b.Run(fmt.Sprintf("objects=%d/first_sight", n), func(b *testing.B) {
			for b.Loop() {
				ps.ForgetSeen(s)
				if _, err := ps.NewMutex(s, last); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("objects=%d/again", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := ps.NewMutex(s, last); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreate10000Objects creates 10,000 mutexes in a new segment; the
// figure is the time for all of them.
func BenchmarkCreate10000Objects(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		s, err := ps.NewAnonymous("objects", n*(64+3*128)+1<<20, &ps.Options{MaxObjects: n, MaxProcesses: 4})
		if err != nil {
			b.Fatal(err)
		}
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("m%d", i)
		}
		b.StartTimer()
		start := time.Now()
		for _, name := range names {
			if _, err := ps.NewMutex(s, name); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/10000")
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
