//go:build darwin || freebsd || linux

package processshared_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestSizeFor: a segment sized by its contents holds exactly them, with
// less than a page to spare; one more object gives ErrNoSpace saying why.
func TestSizeFor(t *testing.T) {
	for _, procs := range []int{0, 4, 300} {
		c := ps.Contents{Mutexes: 3, RWMutexes: 2, Conds: 2, Semaphores: 2, Slots: []int{0, 100, 5000}, Bytes: []int64{1, 4096}, Arrays: []int64{8 * 1000}, Queues: []ps.QueueSize{{Capacity: 10, MaxSize: 100}, {Capacity: 1, MaxSize: 0}}}
		size, opts, err := ps.SizeFor(c, &ps.Options{MaxProcesses: procs})
		if err != nil {
			t.Fatal(err)
		}
		seg, err := ps.Create(shmtest.Name(t), size, opts)
		if err != nil {
			t.Fatalf("Create(%d, %+v): %v", size, opts, err)
		}
		defer seg.Close()
		for i := range c.Mutexes {
			m, err := ps.NewMutex(seg, fmt.Sprint("m", i))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				for j := range c.Conds {
					if _, err := ps.NewCond(seg, fmt.Sprint("c", j), m); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		for i := range c.RWMutexes {
			if _, err := ps.NewRWMutex(seg, fmt.Sprint("rw", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range c.Semaphores {
			if _, err := ps.NewSemaphore(seg, fmt.Sprint("s", i), 1, 0); err != nil {
				t.Fatal(err)
			}
		}
		for i, capacity := range c.Slots {
			if _, err := ps.NewSlot(seg, fmt.Sprint("slot", i), capacity); err != nil {
				t.Fatal(err)
			}
		}
		for i, n := range c.Bytes {
			if _, err := ps.NewBytes(seg, fmt.Sprint("b", i), int(n)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ps.NewArray[int64](seg, "a", 1000); err != nil {
			t.Fatal(err)
		}
		for i, q := range c.Queues {
			if _, err := ps.NewQueue(seg, fmt.Sprint("q", i), q.Capacity, q.MaxSize); err != nil {
				t.Fatal(err)
			}
		}
		if free := seg.Free(); free < 0 || free >= int64(os.Getpagesize()) {
			t.Errorf("MaxProcesses %d: %d bytes left once the contents are made, want less than a page", procs, free)
		}
		_, err = ps.NewMutex(seg, "one more")
		if !errors.Is(err, ps.ErrNoSpace) || !strings.Contains(err.Error(), "MaxObjects") {
			t.Errorf("MaxProcesses %d: one object more than planned: %v, want ErrNoSpace naming MaxObjects", procs, err)
		}
	}
}
