package processshared

// EventState is the state of an Event at the instant it was read.
type EventState struct {
	Set       bool
	AutoReset bool
	Sleepers  bool // processes may be sleeping on it
}

// BarrierState is the state of a Barrier at the instant it was read.
type BarrierState struct {
	Parties    int    // the parties it waits for
	Joined     int    // entries taken by a party, alive or dead
	Dead       int    // joined parties that are dead: the barrier breaks when one is seen
	Arrived    int    // parties waiting in the current generation
	Generation uint32 // generations completed or reset (it wraps)
	Broken     bool   // until Reset
}

// WaitGroupState is the state of a WaitGroup at the instant it was read.
type WaitGroupState struct {
	Count   int            // Adds not yet matched by a Done
	Broken  bool           // a process died holding Adds; until Reset
	Dropped int            // Adds of dead processes not yet matched by a late Done
	Deaths  int            // processes that died holding Adds, since it was created
	Holders []PermitHolder // the processes holding Adds, and how many
}

// OnceState is the state of a Once at the instant it was read.
type OnceState struct {
	Done        bool // the function has succeeded
	Running     bool // a process is running it
	RunnerPID   int  // that process, or 0
	RunnerAlive bool // false: the next caller takes over
	Failures    int  // runs that failed or died
}

// syncState fills st for the Event, Barrier, WaitGroup or Once of size
// bytes at off, which objectState checked holds at least need bytes (see
// syncNeed).
func (s *Segment) syncState(st *ObjectState, off, size uint64) {
	mem := s.mem
	switch st.Kind {
	case KindEvent:
		w := load32(mem, off+evWord)
		st.Event = &EventState{Set: w&evSet != 0, AutoReset: st.Param == eventAuto, Sleepers: w&evSleepers != 0}
	case KindBarrier:
		b := &BarrierState{
			Parties:    int(load32(mem, off+barParties)),
			Arrived:    int(load32(mem, off+barCount)),
			Generation: load32(mem, off+barGen),
			Broken:     load32(mem, off+barBroken) != 0,
		}
		for e := off + barParty; e+8 <= off+size && e < off+barParty+uint64(st.Param)*8; e += 8 {
			if id := load32(mem, e); id != 0 {
				b.Joined++
				if !s.lookup(id).alive {
					b.Dead++
				}
			}
		}
		st.Barrier = b
	case KindWaitGroup:
		g := &WaitGroupState{
			Count:   int(load32(mem, off+wgCounter)),
			Broken:  load32(mem, off+wgBroken) != 0,
			Dropped: int(load32(mem, off+wgDropped)),
			Deaths:  int(load32(mem, off+wgDeaths)),
		}
		for i := range s.lay.procCap {
			e := off + wgHeld + i*8
			if e+8 > off+size {
				break
			}
			if n := load32(mem, e+4); n != 0 {
				h := s.lookup(load32(mem, e))
				g.Holders = append(g.Holders, PermitHolder{PID: h.pid, PIDNamespace: h.pidns, Alive: h.alive, Count: int(n)})
			}
		}
		st.WaitGroup = g
	case KindOnce:
		o := &OnceState{
			Done:     load32(mem, off+onceState) == onceDone,
			Running:  load32(mem, off+onceState) == onceRunning,
			Failures: int(load32(mem, off+onceFailures)),
		}
		if o.Running {
			h := s.lookup(load32(mem, off+onceRunner))
			o.RunnerPID, o.RunnerAlive = h.pid, h.alive
		}
		st.Once = o
	}
}

// syncNeed returns the bytes an object of kind k must have for syncState,
// and whether k is one of its kinds.
func syncNeed(k Kind) (uint64, bool) {
	switch k {
	case KindEvent:
		return eventSize, true
	case KindBarrier:
		return barParty, true
	case KindWaitGroup:
		return wgHeld, true
	case KindOnce:
		return onceSize, true
	}
	return 0, false
}
