package main

import (
	"context"
	"fmt"
	"sync"
)

// figures lists every figure this program measures, in output order.
func figures() []figure {
	contend := func(kind string, procs int) func(context.Context, *config) result {
		return func(ctx context.Context, cfg *config) result { return contended(ctx, cfg, kind, procs) }
	}
	figs := []figure{
		{"ps_mutex_uncontended", psMutexUncontended},
		{"ps_mutex_contended_2p", contend("ps_mutex", 2)},
		{"ps_mutex_contended_4p", contend("ps_mutex", 4)},
		{"ps_sem_uncontended", psSemUncontended},
		{"ps_sem_contended_2p", contend("ps_sem", 2)},
		{"ps_sem_contended_4p", contend("ps_sem", 4)},
		{"ps_csem_uncontended", psCountingSemUncontended},
		{"ps_csem_contended_2p", contend("ps_csem", 2)},
		{"ps_sem_contended_2p_mp128", contend("ps_sem_mp128", 2)},
		{"ps_sem_contended_2p_mp1024", contend("ps_sem_mp1024", 2)},
		{"ps_sem_contended_2p_mp65536", contend("ps_sem_mp65536", 2)},
		{"ps_csem_contended_2p_mp128", contend("ps_csem_mp128", 2)},
		{"ps_csem_contended_2p_mp1024", contend("ps_csem_mp1024", 2)},
		{"ps_csem_contended_2p_mp65536", contend("ps_csem_mp65536", 2)},
		{"c_sem_uncontended", cSem("c_sem_uncontended", "uncontended")}, // its C peer, cpeers/sem.c
		{"c_sem_contended_2p", cSem("c_sem_contended_2p", "contended")}, // likewise
		{"ps_cond_uncontended", psCondUncontended},
		{"ps_sem_pingpong", psSemPingPong},
		{"ps_queue_pingpong_64b", psQueuePingPong},
		{"ps_cond_pingpong", psCondPingPong(1)},
		{"ps_cond_pingpong_2cond", psCondPingPong(2)},
		{"ps_event_pingpong", psEventPingPong},
		{"ps_cond_broadcast_8p", psCondBroadcast},
		{"c_cond_broadcast_8p", cCondBroadcast},                 // its C peer, cpeers/cond_broadcast.c
		{"go_futex_broadcast_8p", goFutexBroadcast(false)},      // its scale in Go, gofutex.go
		{"go_futex_broadcast_8p_chain", goFutexBroadcast(true)}, // likewise
		{"ps_barrier_8p", psBarrier8p},
		{"c_pthread_barrier_8p", cPthreadBarrier}, // its C peer, cpeers/barrier.c
		{"ps_owner_death_sigkill", psOwnerDeath},
		{"ps_threads_1000_blocked", threadsFigure("ps_mutex")},
		{"ps_threads_1000_blocked_sem", threadsFigure("ps_sem")},
		{"ps_threads_1000_blocked_cond", threadsFigure("ps_cond")},
	}
	figs = append(figs, findFigures()...)
	figs = append(figs,
		figure{"ps_queue_oneway_poll_64b", psQueueOneway(64, true)},
		figure{"sock_pingpong_64b", sockObject(64)},
		figure{"c_mq_pingpong_64b", cMqPingPong("c_mq_pingpong_64b", 64)})
	for _, s := range onewaySizes {
		figs = append(figs,
			figure{"ps_queue_oneway_" + s.name, psQueueOneway(s.n, false)},
			figure{"ps_slot_oneway_" + s.name, psSlotOneway(s.n)},
			figure{"goipc_mq_oneway_" + s.name, goipcMqOneway(s.n)},
			figure{"sock_oneway_" + s.name, fdOneway(s.n, "sock")},
			figure{"pipe_oneway_" + s.name, fdOneway(s.n, "pipe")},
			figure{"c_mq_oneway_" + s.name, cMqOneway("c_mq_oneway_"+s.name, s.n)},
			figure{"go_chan_oneway_" + s.name, goChanOneway(s.n)},
			figure{"memmove_" + s.name, memmoveFloor(s.n)})
	}
	figs = append(figs, rwFigures()...) // rwlock.go
	return append(figs,
		figure{"go_sync_mutex_uncontended", goSyncMutexUncontended},
		figure{"go_chan_pingpong", goChanPingPong},
		figure{"go_process_death_sigkill", goProcessDeath},
		figure{"go_threads_1000_blocked", threadsFigure("go_sync")},
		figure{"goipc_futex_mutex_uncontended", goipcMutexUncontended},
		figure{"goipc_futex_mutex_contended_2p", contend("goipc", 2)},
		figure{"goipc_event_pingpong", goipcEventPingPong},
		figure{"goipc_sem_pingpong", goipcSemPingPong},
		figure{"goipc_cond_pingpong", goipcCondPingPong},
		figure{"goipc_threads_1000_blocked", threadsFigure("goipc")},
		figure{"gofrs_flock_uncontended", flockUncontended},
		figure{"gofrs_flock_contended_2p", contend("flock", 2)},
	)
}

// goSyncMutexUncontended is the in-process floor, the same loop as
// ps_mutex_uncontended.
func goSyncMutexUncontended(ctx context.Context, cfg *config) result {
	var m sync.Mutex
	var cnt int
	ns, n, _ := timedLoop(cfg.loopDur(), 1024, func(k int) error {
		for range k {
			m.Lock()
			cnt++
			m.Unlock()
		}
		return nil
	})
	ok := cnt == n+1024 && m.TryLock()
	return result{ns, ok, fmt.Sprintf("sync.Mutex Lock+Unlock pair (+1 increment of a local counter), 1 goroutine (in-process floor), n=%d", n)}
}
