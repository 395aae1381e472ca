//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"time"

	ps "github.com/processshared/processshared"
)

// buildSync creates an Event, a Barrier, a WaitGroup and a Once for
// FuzzCorruptSegment, each with some state.
func buildSync(s *ps.Segment) error {
	e, err := ps.NewEvent(s, "ev", true)
	if err != nil {
		return err
	}
	e.Set()
	if _, err := ps.NewBarrier(s, "bar", 2); err != nil {
		return err
	}
	g, err := ps.NewWaitGroup(s, "wg")
	if err != nil {
		return err
	}
	g.Add(2)
	o, err := ps.NewOnce(s, "once")
	if err != nil {
		return err
	}
	return o.Do(func(bool) error { return nil })
}

// exerciseSync calls every operation of the objects buildSync made,
// ignoring errors, with short timeouts on blocking calls.
func exerciseSync(s *ps.Segment) {
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Millisecond)
	}
	if e, err := ps.NewEvent(s, "ev", true); err == nil {
		e.IsSet()
		ctx, cancel := short()
		e.WaitContext(ctx)
		cancel()
		e.Set()
		e.Reset()
	}
	if b, err := ps.NewBarrier(s, "bar", 2); err == nil {
		b.Broken()
		ctx, cancel := short()
		b.WaitContext(ctx)
		cancel()
		b.Reset()
	}
	if g, err := ps.NewWaitGroup(s, "wg"); err == nil {
		g.Count()
		g.Add(1)
		g.Done()
		ctx, cancel := short()
		g.WaitContext(ctx)
		cancel()
		g.Reset()
	}
	if o, err := ps.NewOnce(s, "once"); err == nil {
		o.Done()
		ctx, cancel := short()
		o.DoContext(ctx, func(bool) error { return nil })
		cancel()
	}
}
