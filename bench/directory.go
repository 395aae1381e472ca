package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	ps "github.com/processshared/processshared"
)

// Directory: finding an object by name, and creating many.
//
// ps_find_last_<n>: in a segment holding n Mutexes, NewMutex of the last
// one created followed by its Drop (a handle obtained and let go), through
// a Segment handle that has looked the name up before: what a service that
// opens a lock per request pays. The target: the 100,000-object
// figure at most 2x the 10-object one.
//
// ps_create_10000: creating 10,000 Mutexes, each of a new name, in a fresh
// segment sized for them; the value is the total time of the 10,000, in
// ns. Target: under 100 ms.
//
// ps_delete_cycle: Delete of a Mutex, NewMutex of its name again (reusing
// its space) and Drop, in a segment of 1,000 objects.

func findFigures() []figure {
	figs := []figure{}
	for _, n := range []int{10, 1000, 100000} {
		name := "ps_find_last_" + strconv.Itoa(n)
		if n >= 1000 {
			name = "ps_find_last_" + strconv.Itoa(n/1000) + "k"
		}
		figs = append(figs, figure{name, psFindLast(n)})
	}
	return append(figs, figure{"ps_create_10000", psCreateMany(10000)}, figure{"ps_delete_cycle", psDeleteCycle})
}

// objectSegment returns an anonymous segment with room for n Mutexes.
func objectSegment(n int) (*ps.Segment, error) {
	c := ps.Contents{Mutexes: n}
	size, opts, err := ps.SizeFor(c, nil)
	if err != nil {
		return nil, err
	}
	return ps.NewAnonymous(uniqueName("dir"), size, opts)
}

func psFindLast(n int) func(context.Context, *config) result {
	return func(ctx context.Context, cfg *config) result {
		seg, err := objectSegment(n)
		if err != nil {
			return failed(err)
		}
		defer seg.Close()
		var last *ps.Mutex
		for i := range n {
			m, err := ps.NewMutex(seg, "tenant-"+strconv.Itoa(i))
			if err != nil {
				return failed(err)
			}
			if last != nil {
				last.Drop()
			}
			last = m
		}
		name := last.Name()
		last.Drop()
		ns, iters, err := timedLoop(cfg.loopDur(), 256, func(k int) error {
			for range k {
				m, err := ps.NewMutex(seg, name)
				if err != nil {
					return err
				}
				m.Drop()
			}
			return nil
		})
		if err != nil {
			return failed(err)
		}
		objs, err := seg.Objects()
		ok := err == nil && len(objs) == n
		return result{ns, ok, fmt.Sprintf("NewMutex+Drop of the last of %d objects, a handle that looked it up before, n=%d; %d objects listed after", n, iters, len(objs))}
	}
}

func psCreateMany(n int) func(context.Context, *config) result {
	return func(ctx context.Context, cfg *config) result {
		seg, err := objectSegment(n)
		if err != nil {
			return failed(err)
		}
		defer seg.Close()
		names := make([]string, n)
		for i := range names {
			names[i] = "tenant-" + strconv.Itoa(i)
		}
		start := time.Now()
		for _, name := range names {
			m, err := ps.NewMutex(seg, name)
			if err != nil {
				return failed(err)
			}
			m.Drop()
		}
		d := time.Since(start)
		_, err = ps.NewMutex(seg, "one more")
		objs, oerr := seg.Objects()
		ok := err != nil && oerr == nil && len(objs) == n
		return result{float64(d.Nanoseconds()), ok, fmt.Sprintf("total ns to create %d Mutexes of new names (%v); %d listed, one more refused: %v", n, d.Round(time.Microsecond), len(objs), err != nil)}
	}
}

func psDeleteCycle(ctx context.Context, cfg *config) result {
	seg, err := objectSegment(1000)
	if err != nil {
		return failed(err)
	}
	defer seg.Close()
	for i := range 999 {
		m, err := ps.NewMutex(seg, "tenant-"+strconv.Itoa(i))
		if err != nil {
			return failed(err)
		}
		m.Drop()
	}
	var free int64
	locked := 0
	ns, iters, err := timedLoop(cfg.loopDur(), 256, func(k int) error {
		for range k {
			m, err := ps.NewMutex(seg, "job")
			if err != nil {
				return err
			}
			m.Lock()
			locked++
			m.Unlock()
			m.Drop()
			if err := seg.Delete("job"); err != nil {
				return err
			}
		}
		if free == 0 {
			free = seg.Free() // after the first round, which took the space
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	ok := seg.Free() == free && locked == iters+256
	return result{ns, ok, fmt.Sprintf("NewMutex, Lock+Unlock, Drop, Delete of one name in a segment of 1,000 objects, n=%d; space reused (Free unchanged): %v", iters, seg.Free() == free)}
}
