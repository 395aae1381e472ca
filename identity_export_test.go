package processshared

// KeeperTID returns the identity today's locks record for this process: its
// keeper thread's id (its pid without a robust list). The identity tests
// compare it across processes in separate PID namespaces, to show that two
// live processes, or a dead one and a live one, can share it.
func KeeperTID() uint32 { return theKeeper().tid }
