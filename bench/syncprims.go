package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	ps "github.com/processshared/processshared"
)

// psEventPingPong is ps_event_pingpong: the post/wait ping-pong of
// ps_sem_pingpong through two auto-reset Events, one per direction.
func psEventPingPong(ctx context.Context, cfg *config) result {
	t, err := newTeam(ctx, true)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	ping, err1 := ps.NewEvent(t.seg, "ping", true)
	pong, err2 := ps.NewEvent(t.seg, "pong", true)
	if err := errors.Join(err1, err2); err != nil {
		return failed(err)
	}
	if err := t.spawn("ps_event_pong", 1, ""); err != nil {
		return failed(err)
	}
	p := pingPostWait(t.sc, ping.Set, pong.WaitContext)
	p.note = "two processshared auto-reset Events: Set / WaitContext"
	r := pingpong(ctx, cfg, t, p)
	if pong.IsSet() {
		r.ok = false
		r.notes += "; pong still set after the run"
	}
	return r
}

// Barrier generations: barrierProcs child processes (the parties) each
// call Wait barrierGens(cfg) times; before each Wait a party adds 1 to a
// shared counter, and after it checks that the counter covers every
// party's arrival in that generation. Party 1 reads CLOCK_MONOTONIC after
// the warm-up generations and after the last; the figure is the time
// between the two divided by the generations between them. The C peer
// (cpeers/barrier.c, c_pthread_barrier_8p) does the same with glibc's
// process-shared pthread_barrier_t and fork()ed parties.
const (
	barrierProcs = 8
	barrierWarm  = 50
)

func barrierGens(cfg *config) int { return pick(cfg, 3000, 500) }

func psBarrier8p(ctx context.Context, cfg *config) result {
	t, err := newTeam(ctx, true)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	gens := barrierGens(cfg)
	// Created here, so that no party can find it missing; each child
	// joins as a party.
	if _, err := ps.NewArray[int64](t.seg, "arrivals", 1); err != nil {
		return failed(err)
	}
	for i := 1; i <= barrierProcs; i++ {
		if err := t.spawn("ps_barrier_party", i, strconv.Itoa(gens)); err != nil {
			return failed(err)
		}
	}
	if err := t.wait(); err != nil {
		return failed(err)
	}
	sc := t.sc
	t0, t1 := int64(*sc.u64(wGen)), int64(*sc.u64(wT1))
	ok := sc.load(wErrors) == 0 && sc.load(wTotal) == uint64(barrierProcs*gens) && t1 > t0
	n := gens - barrierWarm
	return result{float64(t1-t0) / float64(n), ok,
		fmt.Sprintf("time per generation of a processshared Barrier of %d parties, one per process (re-exec children); %d generations (+%d warm-up), timed by party 1; every party checked after each Wait that all %d arrived (%d Waits returned, want %d)",
			barrierProcs, n, barrierWarm, barrierProcs, sc.load(wTotal), barrierProcs*gens)}
}

//go:embed cpeers/barrier.c
var barrierC []byte

// cPthreadBarrier is c_pthread_barrier_8p, psBarrier8p's C peer.
func cPthreadBarrier(ctx context.Context, cfg *config) result {
	args := []string{"-p", strconv.Itoa(barrierProcs), "-w", strconv.Itoa(barrierWarm), "-g", strconv.Itoa(barrierGens(cfg))}
	return runCPeer(ctx, "c_pthread_barrier_8p", "barrier", barrierC, args)
}

func init() {
	childRoles["ps_event_pong"] = func(c *childEnv) error {
		ping, err1 := ps.NewEvent(c.seg, "ping", true)
		pong, err2 := ps.NewEvent(c.seg, "pong", true)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return pongPostWait(c, func() error { return ping.WaitContext(c.ctx) }, pong.Set)
	}
	childRoles["ps_barrier_party"] = func(c *childEnv) error {
		gens, _ := strconv.Atoi(c.arg)
		b, err := ps.NewBarrier(c.seg, "b", barrierProcs)
		if err != nil {
			return err
		}
		arr, err := ps.NewArray[int64](c.seg, "arrivals", 1)
		if err != nil {
			return err
		}
		var done uint64
		defer func() { c.sc.add(wTotal, done) }()
		for g := range gens {
			ps.Add(arr, 0, 1)
			if _, err := b.WaitContext(c.ctx); err != nil {
				return fmt.Errorf("generation %d: %w", g, err)
			}
			done++
			if v := ps.AtomicLoad(arr, 0); v < int64(barrierProcs*(g+1)) {
				c.sc.add(wErrors, 1)
				return fmt.Errorf("generation %d: %d arrivals counted after Wait, want at least %d", g, v, barrierProcs*(g+1))
			}
			if c.id == 1 && (g == barrierWarm-1 || g == gens-1) {
				w := wGen
				if g == gens-1 {
					w = wT1
				}
				atomic.StoreUint64(c.sc.u64(w), uint64(mono()))
			}
		}
		return nil
	}
}
