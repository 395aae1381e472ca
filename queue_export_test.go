package processshared

// RaceEnabled reports whether the race detector is on, so that tests can
// shrink their loads under it.
const RaceEnabled = raceEnabled

// QueueLockDeaths returns how many holders of q's producers' and
// consumers' locks died holding them.
func QueueLockDeaths(q *Queue) (producers, consumers int) {
	return int(load32(q.s.mem, q.off+qPLock+mtxDeaths)), int(load32(q.s.mem, q.off+qCLock+mtxDeaths))
}
