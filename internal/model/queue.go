package model

import (
	"fmt"
	"strings"
)

// A QueueOp is what one call of a goroutine does with the Queue.
type QueueOp uint8

// The Queue calls a script can make.
const (
	QSend  QueueOp = iota // Send of the goroutine's next message
	QRecv                 // Recv (io.EOF counts as done)
	QClose                // Queue.Close: end of stream
)

// QueueConfig is one configuration of the Queue model: one goroutine per
// process (the token is then never contended and is modelled by its
// non-blocking select only).
type QueueConfig struct {
	Procs  [][]QueueOp // the calls of each process's goroutine, in order
	Cap    uint8       // messages the queue holds (1 or 2)
	Budget Budget      // Kill, Cancel and Close; Attach is not modelled
	// CountBits is the width of the head and tail words' message counts
	// (default 2), SeqBits that of the futex words' sequences (default 2):
	// narrow, so that both wrap within a run.
	CountBits, SeqBits uint8

	// BugNoRecheck: a waiter sleeps right after marking the futex word,
	// without looking at the queue again (queue.*.recheck).
	BugNoRecheck bool
	// BugNoWatch: a waiter does not watch the other processes' live
	// words, so a committer killed between its commit and its wake leaves
	// it asleep.
	BugNoWatch bool
}

const (
	qMaxProcs = 2
	qMaxSlots = 2
	qS        = 0x80 // qSleepers in the model's 8-bit futex words
	fwRecv    = 0    // futex word numbers: recvWord, sendWord, then live words
	fwSend    = 1
	fwLive0   = 2
)

// Queue program counters. The Send and Recv paths share the wait states.
const (
	qpOp          uint8 = iota // queue.send.enter / queue.recv.enter / queue.close.enter
	qpLock                     // queue.{send,recv}.lock
	qpCheckClosed              // queue.{send,recv}.check_closed
	qpLoad                     // queue.send.load_head / queue.recv.load_tail
	qpWrite                    // queue.send.write / queue.recv.read
	qpCommit                   // queue.{send,recv}.commit
	qpUnlock                   // queue.{send,recv}.unlock, done
	qpUnlockWait               // queue.{send,recv}.unlock, nothing to do: go and wait
	qpLoadWaiters              // queue.{send,recv}.load_waiters
	qpClear                    // queue.{send,recv}.clear_sleepers
	qpWake                     // queue.{send,recv}.wake
	qpToken                    // token.acquire
	qpLoadWord                 // queue.{send,recv}.load_word
	qpSetS                     // queue.{send,recv}.set_sleepers
	qpWatch                    // wait.watch.cas
	qpRecheck                  // queue.{send,recv}.recheck
	qpWaitv                    // wait.sleep.waitv
	qpWoken                    // wait.sleep.check_lives, once woken
	qpWakeLive                 // wait.sleep.wake_all_live
	qpCheckDone                // wait.sleep.check_done
	qpRelease                  // token.release, then the next call
	qpCLock                    // queue.close.lock
	qpCSet                     // queue.close.set
	qpCUnlock                  // queue.close.unlock
	qpCWakeRecv                // queue.close.wake_recv
	qpCWakeSend                // queue.close.wake_send
	qpDone
	qpDead
)

var qpcName = [...]string{
	qpOp: "op", qpLock: "lock", qpCheckClosed: "check_closed", qpLoad: "load", qpWrite: "write/read",
	qpCommit: "commit", qpUnlock: "unlock", qpUnlockWait: "unlock(wait)", qpLoadWaiters: "load_waiters",
	qpClear: "clear_sleepers", qpWake: "wake", qpToken: "token", qpLoadWord: "load_word", qpSetS: "set_sleepers",
	qpWatch: "watch", qpRecheck: "recheck", qpWaitv: "waitv", qpWoken: "woken", qpWakeLive: "wake_all_live",
	qpCheckDone: "check_done", qpRelease: "release", qpCLock: "close.lock", qpCSet: "close.set",
	qpCUnlock: "close.unlock", qpCWakeRecv: "close.wake_recv", qpCWakeSend: "close.wake_send",
	qpDone: "done", qpDead: "dead",
}

const (
	qfToken   = 1 << iota // holds its side's token
	qfCtx                 // its context is done
	qfClosed              // Recv: the closed flag it loaded was set
	qfWatch               // it watches the other process's live word
	qfFailed              // its last call returned an error (its script stops)
	qfLockErr             // it gave up on a lock (ctx done or Close)
	qfWoke                // it went through futex_waitv (asleep or returned)
)

type qthread struct {
	pc    uint8
	op    uint8 // index of its current call
	v     uint8 // local: the futex word value it loaded
	msg   uint8 // local: the message it sends or read
	flags uint8
}

type qproc struct {
	life  uint8 // lifeAlive, lifeWalk (killed, robust walk pending), lifeDead
	close uint8 // 0 open; 1 closing; 2 live word marked (D1); 3 woken (D2)
	live  uint8 // its live word: liveTID | liveWaiters | liveDied
}

// QueueState is a state of the Queue model.
type QueueState struct {
	tail, head   uint8 // message counts of the tail and head words
	slot         [qMaxSlots]uint8
	dirty        uint8 // slots with a record being written, not committed
	closed       uint8
	plock, clock uint8 // holder thread+1, 0 free
	recvW, sendW uint8 // futex words: sequence | qS
	sent, got    [qMaxProcs]uint8
	bad          uint8 // 1: a partial message was read; 2: a message out of order or twice
	th           [qMaxProcs]qthread
	pr           [qMaxProcs]qproc
	fx           Futex
	budget       Budget
}

// QueueModel is the Queue's wait protocol (queue.go, "Waiting"), its steps
// named by the code's `// step: queue.*` labels. Checked: no partial
// message is ever read (a receiver reads only committed slots), messages
// arrive once each and in order, the queue never holds more than Cap; in
// quiescent states, no goroutine sleeps while a message (Recv), room
// (Send) or the end of stream is there, nor after its context ended or its
// handle closed.
//
// Abstractions, and where the code differs:
//   - The locks (plock, clock: robust mutexCores, whose protocol
//     MutexModel checks) are atomic steps that succeed when the lock is free
//     or its holder is dead (the takeover, ErrOwnerDead cleared), and give
//     up when the waiter's context is done or its handle closed.
//   - The ring is Cap slots holding message ids in place of bytes; a
//     record's write is one step that marks its slot dirty until the
//     commit. Byte offsets and wrap markers are not modelled (they are
//     tested by TestQueueBasic and FuzzQueueMemory).
//   - One goroutine per process: the token is never contended, so it is
//     token.acquire (the first select) and token.release only. The spin
//     before the token is folded into the fast path.
//   - watchOthers is wait.watch.cas on the other process's live word; a
//     kill's robust-list walk (kernel.robust_walk) wakes every sleeper on
//     the dead word, which with two processes is the one a FUTEX_WAKE of 1
//     wakes. A handle's Close is env.close (its sleeps are fired), then,
//     once its goroutine is out of Segment.enter, D1 and D2
//     (proc.close.mark_closed, proc.close.wake_all).
//   - Queue.Close's wakeWord calls (load, CAS, FUTEX_WAKE) are merged into
//     one step each, queue.close.wake_recv and queue.close.wake_send; a
//     kill inside them is a kill of a watched process, as for Send's.
type QueueModel struct {
	cfg   QueueConfig
	n     int
	count Seq
	seq   Seq
}

// NewQueueModel checks cfg and returns its model.
func NewQueueModel(cfg QueueConfig) (*QueueModel, error) {
	if len(cfg.Procs) == 0 || len(cfg.Procs) > qMaxProcs {
		return nil, fmt.Errorf("model: %d processes (1 to %d)", len(cfg.Procs), qMaxProcs)
	}
	if cfg.Cap == 0 || cfg.Cap > qMaxSlots {
		return nil, fmt.Errorf("model: capacity %d (1 to %d)", cfg.Cap, qMaxSlots)
	}
	if cfg.CountBits == 0 {
		cfg.CountBits = 2
	}
	if cfg.SeqBits == 0 {
		cfg.SeqBits = 2
	}
	if 1<<cfg.CountBits <= int(cfg.Cap) {
		return nil, fmt.Errorf("model: %d count bits cannot tell %d queued from none", cfg.CountBits, cfg.Cap)
	}
	return &QueueModel{cfg: cfg, n: len(cfg.Procs), count: Seq{cfg.CountBits}, seq: Seq{cfg.SeqBits}}, nil
}

func (m *QueueModel) name(t int) string { return procName[t] + ".G0" }

// Init returns the state before any goroutine started.
func (m *QueueModel) Init() QueueState {
	s := QueueState{budget: m.cfg.Budget}
	s.budget.Attach = 0
	for p := range qMaxProcs {
		if p >= m.n {
			s.th[p].pc = qpDone
			s.pr[p].life = lifeDead
			continue
		}
		s.pr[p].live = 1
		if len(m.cfg.Procs[p]) == 0 {
			s.th[p].pc = qpDone
		}
	}
	return s
}

func (m *QueueModel) op(s *QueueState, t int) QueueOp { return m.cfg.Procs[t][s.th[t].op] }

// queued returns the messages in the queue.
func (m *QueueModel) queued(s *QueueState) uint8 { return m.count.Sub(s.tail, s.head) }

// ready reports whether what the waiter t waits for is there: a message or
// the end of stream for Recv, room or the end of stream for Send.
func (m *QueueModel) ready(s *QueueState, t int) bool {
	if s.closed != 0 {
		return true
	}
	if m.op(s, t) == QRecv {
		return m.queued(s) != 0
	}
	return m.queued(s) < m.cfg.Cap
}

// next ends t's current call and moves to the next.
func (m *QueueModel) next(ns *QueueState, t int) {
	th := &ns.th[t]
	th.op++
	th.v, th.msg = 0, 0
	th.flags &= qfCtx
	if int(th.op) < len(m.cfg.Procs[t]) {
		th.pc = qpOp
	} else {
		th.pc = qpDone
	}
}

// finish ends t's call: through token.release if it holds the token.
// failed stops its script.
func (m *QueueModel) finish(ns *QueueState, t int, failed bool) {
	th := &ns.th[t]
	if failed {
		th.flags |= qfFailed
	}
	if th.flags&qfToken != 0 {
		th.pc = qpRelease
		return
	}
	m.end(ns, t)
}

func (m *QueueModel) end(ns *QueueState, t int) {
	if ns.th[t].flags&qfFailed != 0 {
		ns.th[t].pc, ns.th[t].flags = qpDone, ns.th[t].flags&qfCtx
		return
	}
	m.next(ns, t)
}

// word returns the futex word t's call wakes (the other side's) and the one
// it waits on (its own side's).
func (m *QueueModel) words(s *QueueState, t int) (wake, wait int) {
	if m.op(s, t) == QRecv {
		return fwSend, fwRecv
	}
	return fwRecv, fwSend
}

func (s *QueueState) w(i int) *uint8 {
	if i == fwRecv {
		return &s.recvW
	}
	return &s.sendW
}

// lockFree reports whether the lock holder h (thread+1) lets a locker in:
// free, or held by a process that is gone.
func (s *QueueState) lockFree(h uint8) bool {
	return h == 0 || s.pr[h-1].life != lifeAlive
}

func (m *QueueModel) label(s *QueueState, t int, step string) string {
	switch m.op(s, t) {
	case QRecv:
		return "queue.recv." + step
	case QSend:
		return "queue.send." + step
	}
	return "queue.close." + step
}

// Next appends every step enabled in s.
func (m *QueueModel) Next(s *QueueState, trace bool, steps []Step[QueueState]) []Step[QueueState] {
	e := &emitter[QueueState]{out: steps, trace: trace}
	for t := range m.n {
		m.thread(s, t, e)
	}
	for p := range m.n {
		m.process(s, p, e)
	}
	m.env(s, e)
	return e.out
}

func (m *QueueModel) thread(s *QueueState, t int, e *emitter[QueueState]) {
	th := &s.th[t]
	if th.pc >= qpDone || s.pr[t].life != lifeAlive || th.pc == qpWoken && s.fx.Asleep(t) {
		return
	}
	op := m.op(s, t)
	actor := m.name(t)
	ns := *s
	nt := &ns.th[t]
	closing := s.pr[t].close != 0
	ctxDone := th.flags&qfCtx != 0
	add := func(label, note string) { e.add(actor, label, false, ns, note) }
	wakeW, waitW := 0, 0
	if op != QClose {
		wakeW, waitW = m.words(s, t)
	}
	lk := &ns.clock
	if op != QRecv {
		lk = &ns.plock
	}

	switch th.pc {
	case qpOp:
		if closing || ctxDone && op != QClose {
			nt.flags |= qfFailed
			m.end(&ns, t)
			add(m.label(s, t, "enter"), "ErrClosed or ctx done")
			return
		}
		if op == QClose {
			nt.pc = qpCLock
		} else {
			nt.pc = qpLock
		}
		add(m.label(s, t, "enter"), "")
	case qpLock, qpCLock:
		h := *lk
		if s.lockFree(h) {
			*lk = uint8(t + 1)
			note := ""
			if h != 0 {
				note = "took it over from the dead " + m.name(int(h-1))
			}
			if th.pc == qpCLock {
				nt.pc = qpCSet
			} else {
				nt.pc = qpCheckClosed
			}
			add(m.label(s, t, "lock"), note)
			return
		}
		if op != QClose && (ctxDone || closing) {
			m.finish(&ns, t, true)
			add(m.label(s, t, "lock"), "gave up waiting for the lock")
		}
		// Otherwise blocked behind a live holder, who moves.
	case qpCheckClosed:
		if op == QSend && s.closed != 0 {
			*lk = 0
			m.finish(&ns, t, true)
			add("queue.send.check_closed", "ErrQueueClosed; unlocked")
			return
		}
		if op == QRecv && s.closed != 0 {
			nt.flags |= qfClosed
		}
		nt.pc = qpLoad
		add(m.label(s, t, "check_closed"), "")
	case qpLoad:
		n := m.queued(s)
		if op == QSend {
			if n >= m.cfg.Cap {
				nt.pc = qpUnlockWait
				add("queue.send.load_head", "full")
				return
			}
			nt.pc = qpWrite
			add("queue.send.load_head", "room")
			return
		}
		if n == 0 {
			if th.flags&qfClosed != 0 {
				*lk = 0
				m.finish(&ns, t, false)
				add("queue.recv.load_tail", "empty and closed: io.EOF; unlocked")
				return
			}
			nt.pc = qpUnlockWait
			add("queue.recv.load_tail", "empty")
			return
		}
		nt.pc = qpWrite
		add("queue.recv.load_tail", "")
	case qpWrite:
		if op == QSend {
			i := s.tail % m.cfg.Cap
			nt.msg = uint8(t)<<4 | s.sent[t]&0x0f
			ns.slot[i] = nt.msg
			ns.dirty |= 1 << i
			nt.pc = qpCommit
			add("queue.send.write", e.notef("slot %d", int(i), 0))
			return
		}
		i := s.head % m.cfg.Cap
		if s.dirty&(1<<i) != 0 {
			ns.bad |= 1
		}
		nt.msg = s.slot[i]
		nt.pc = qpCommit
		add("queue.recv.read", e.notef("slot %d", int(i), 0))
	case qpCommit:
		if op == QSend {
			ns.dirty &^= 1 << (s.tail % m.cfg.Cap)
			ns.tail = m.count.Add(s.tail, 1)
			ns.sent[t]++
		} else {
			ns.head = m.count.Add(s.head, 1)
			p, k := th.msg>>4, th.msg&0x0f
			if int(p) >= qMaxProcs || k != s.got[p]&0x0f {
				ns.bad |= 2
			} else {
				ns.got[p]++
			}
		}
		nt.pc = qpUnlock
		add(m.label(s, t, "commit"), "")
	case qpUnlock:
		*lk = 0
		nt.pc = qpLoadWaiters
		add(m.label(s, t, "unlock"), "")
	case qpUnlockWait:
		*lk = 0
		if th.flags&qfToken != 0 {
			nt.pc = qpLoadWord
		} else {
			nt.pc = qpToken // the spin is folded into the fast path
		}
		add(m.label(s, t, "unlock"), "")
	case qpLoadWaiters:
		v := *s.w(wakeW)
		if v&qS == 0 {
			m.finish(&ns, t, false)
			add(m.label(s, t, "load_waiters"), "no sleepers: no system call")
			return
		}
		nt.v = v
		nt.pc = qpClear
		add(m.label(s, t, "load_waiters"), "")
	case qpClear:
		w := ns.w(wakeW)
		if *w != th.v {
			nt.pc = qpLoadWaiters
			add(m.label(s, t, "clear_sleepers"), "CAS failed")
			return
		}
		*w = m.seq.Add(th.v&^qS, 1)
		nt.pc = qpWake
		add(m.label(s, t, "clear_sleepers"), "")
	case qpWake:
		woken := ns.fx.WakeAll(wakeW)
		m.finish(&ns, t, false)
		add(m.label(s, t, "wake"), e.woke(woken, m.name))
	case qpToken:
		nt.flags |= qfToken
		nt.pc = qpLock
		add("token.acquire", "")
	case qpLoadWord:
		nt.v = *s.w(waitW)
		if nt.v&qS != 0 {
			nt.pc = qpWatch
		} else {
			nt.pc = qpSetS
		}
		add(m.label(s, t, "load_word"), "")
	case qpSetS:
		w := ns.w(waitW)
		if *w != th.v {
			nt.pc = qpLoadWord
			add(m.label(s, t, "set_sleepers"), "CAS failed")
			return
		}
		*w |= qS
		nt.v |= qS
		nt.pc = qpWatch
		add(m.label(s, t, "set_sleepers"), "")
	case qpWatch:
		o := 1 - t
		nt.flags &^= qfWatch
		if !m.cfg.BugNoWatch && o < m.n && !liveDead(s.pr[o].live) {
			ns.pr[o].live |= liveWaiters
			nt.flags |= qfWatch
		}
		if m.cfg.BugNoRecheck {
			nt.pc = qpWaitv
		} else {
			nt.pc = qpRecheck
		}
		add("wait.watch.cas", "")
	case qpRecheck:
		if m.ready(s, t) {
			nt.pc = qpLock
			add(m.label(s, t, "recheck"), "ready: try again")
			return
		}
		nt.pc = qpWaitv
		add(m.label(s, t, "recheck"), "")
	case qpWaitv:
		if closing || ctxDone {
			nt.pc = qpCheckDone
			add("wait.sleep.waitv", "ErrClosed or ctx done")
			return
		}
		nt.pc = qpWoken
		nt.flags |= qfWoke
		o := 1 - t
		watched := th.flags&qfWatch != 0
		if *s.w(waitW) != th.v || watched && s.pr[o].live != 1|liveWaiters {
			add("wait.sleep.waitv", "EAGAIN")
			return
		}
		set := uint8(1) << waitW
		if watched {
			set |= 1 << (fwLive0 + o)
		}
		ns.fx.Sleep(t, set)
		add("wait.sleep.waitv", "asleep")
	case qpWoken:
		o := 1 - t
		if th.flags&qfWatch != 0 && s.pr[o].live != 1|liveWaiters {
			nt.pc = qpWakeLive
		} else {
			nt.pc = qpCheckDone
		}
		add("wait.sleep.check_lives", "")
	case qpWakeLive:
		woken := ns.fx.WakeAll(fwLive0 + 1 - t)
		nt.pc = qpCheckDone
		add("wait.sleep.wake_all_live", e.woke(woken, m.name))
	case qpCheckDone:
		if closing || ctxDone {
			m.finish(&ns, t, true)
			add("wait.sleep.check_done", "ErrClosed or ctx done")
			return
		}
		nt.pc = qpLock
		add("wait.sleep.check_done", "look again")
	case qpRelease:
		nt.flags &^= qfToken
		m.end(&ns, t)
		add("token.release", "")
	case qpCSet:
		ns.closed = 1
		nt.pc = qpCUnlock
		add("queue.close.set", "")
	case qpCUnlock:
		ns.plock = 0
		nt.pc = qpCWakeRecv
		add("queue.close.unlock", "")
	case qpCWakeRecv, qpCWakeSend:
		// wakeWord's load, CAS and FUTEX_WAKE, merged (doc.go).
		w := fwRecv
		if th.pc == qpCWakeSend {
			w = fwSend
			m.next(&ns, t)
		} else {
			nt.pc = qpCWakeSend
		}
		var woken uint16
		if v := *s.w(w); v&qS != 0 {
			*ns.w(w) = m.seq.Add(v&^qS, 1)
			woken = ns.fx.WakeAll(w)
		}
		label := "queue.close.wake_recv"
		if w == fwSend {
			label = "queue.close.wake_send"
		}
		add(label, e.woke(woken, m.name))
	}
}

// inFlight reports whether t is inside Segment.enter: Close waits for it.
func (m *QueueModel) inFlight(s *QueueState, t int) bool {
	pc := s.th[t].pc
	return pc != qpOp && pc < qpDone
}

// process is the kernel's robust-list walk after a kill, and a closing
// handle's detach (D1, D2: the live word marked dead, its sleepers woken).
func (m *QueueModel) process(s *QueueState, p int, e *emitter[QueueState]) {
	pr := &s.pr[p]
	ns := *s
	switch {
	case pr.life == lifeWalk:
		// handle_futex_death: the word still has the tid (Close keeps it).
		ns.pr[p].life = lifeDead
		woken := uint16(0)
		if robustDeath(&ns.pr[p].live, 1) {
			woken = ns.fx.WakeAll(fwLive0 + p) // one waiter: one other process
		}
		e.add("kernel", "kernel.robust_walk", false, ns, e.woke(woken, m.name))
	case pr.life == lifeAlive && pr.close == 1 && !m.inFlight(s, p):
		ns.pr[p].live |= liveDied
		ns.pr[p].close = 2
		e.add(procName[p], "proc.close.mark_closed", false, ns, "")
	case pr.life == lifeAlive && pr.close == 2:
		ns.pr[p].close = 3
		woken := ns.fx.WakeAll(fwLive0 + p)
		e.add(procName[p], "proc.close.wake_all", false, ns, e.woke(woken, m.name))
	}
}

func (m *QueueModel) env(s *QueueState, e *emitter[QueueState]) {
	for p := range m.n {
		pr := &s.pr[p]
		if pr.life != lifeAlive {
			continue
		}
		if s.budget.Kill > 0 && (s.th[p].pc < qpDone || pr.close == 1 || pr.close == 2) {
			ns := *s
			ns.budget.Kill--
			ns.pr[p].life = lifeWalk
			ns.fx.Unqueue(p)
			if ns.th[p].pc < qpDone {
				ns.th[p].pc = qpDead
			}
			e.add("env", "env.kill", true, ns, "SIGKILL "+procName[p])
		}
		if s.budget.Close > 0 && pr.close == 0 && s.th[p].pc < qpDone {
			ns := *s
			ns.budget.Close--
			ns.pr[p].close = 1
			ns.fx.Unqueue(p) // Close fires its sleepers' cancellation words
			e.add("env", "env.close", true, ns, "Close "+procName[p]+"'s handle")
		}
		th := &s.th[p]
		if s.budget.Cancel > 0 && th.flags&qfCtx == 0 && th.pc < qpDone && m.op(s, p) != QClose {
			ns := *s
			ns.budget.Cancel--
			ns.th[p].flags |= qfCtx
			ns.fx.Unqueue(p)
			e.add("env", "env.cancel", true, ns, "cancel "+m.name(p)+"'s context")
		}
	}
}

// Check checks the invariants that hold in every state.
func (m *QueueModel) Check(s *QueueState) error {
	if s.bad&1 != 0 {
		return Fail("partial-message", "a receiver read a record that was not committed")
	}
	if s.bad&2 != 0 {
		return Fail("order", "a message was received out of order or twice")
	}
	if n := m.queued(s); n > m.cfg.Cap {
		return Fail("overflow", "%d messages queued, capacity %d", n, m.cfg.Cap)
	}
	return nil
}

// Stuck reports a goroutine left asleep while what it waits for is there.
func (m *QueueModel) Stuck(s *QueueState) error {
	for t := range m.n {
		th := &s.th[t]
		if th.pc >= qpDone || s.pr[t].life != lifeAlive {
			continue
		}
		asleep := th.pc == qpWoken && s.fx.Asleep(t)
		if !asleep {
			return Fail("stuck", "%s cannot move at %s", m.name(t), qpcName[th.pc])
		}
		switch {
		case s.pr[t].close != 0:
			return Fail("close-no-wake", "%s sleeps after its process closed", m.name(t))
		case th.flags&qfCtx != 0:
			return Fail("cancel-no-wake", "%s sleeps with its context done", m.name(t))
		case m.ready(s, t):
			return Fail("lost-wakeup", "%s sleeps in %v with %d queued (closed %d)", m.name(t), m.op(s, t), m.queued(s), s.closed)
		}
	}
	return nil
}

func (o QueueOp) String() string {
	switch o {
	case QSend:
		return "Send"
	case QRecv:
		return "Recv"
	}
	return "Close"
}

// Format describes s on one line.
func (m *QueueModel) Format(s *QueueState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tail=%d head=%d slots=%x dirty=%b closed=%d plock=%d clock=%d recvW=%s sendW=%s |",
		s.tail, s.head, s.slot[:m.cfg.Cap], s.dirty, s.closed, s.plock, s.clock, fmtWord(s.recvW), fmtWord(s.sendW))
	for t := range m.n {
		th := &s.th[t]
		op := "-"
		if th.pc < qpDone {
			op = m.op(s, t).String()
		}
		fmt.Fprintf(&b, " %s@%s(%s) v=%s L=%s", m.name(t), qpcName[th.pc], op, fmtWord(th.v), formatLive(s.pr[t].live))
		if s.fx.Asleep(t) {
			b.WriteString(" asleep")
		}
		if th.flags&qfCtx != 0 {
			b.WriteString(" ctx-done")
		}
		if s.pr[t].close != 0 {
			fmt.Fprintf(&b, " closing%d", s.pr[t].close)
		}
	}
	fmt.Fprintf(&b, " | budget k%d c%d x%d", s.budget.Kill, s.budget.Cancel, s.budget.Close)
	return b.String()
}

func fmtWord(v uint8) string {
	if v&qS != 0 {
		return fmt.Sprintf("%d|S", v&^qS)
	}
	return fmt.Sprint(v)
}

// queueSteps are the code steps of the Queue model, as its `// step:`
// labels in queue.go and the shared wait and token steps it takes.
var queueSteps = []string{
	"queue.send.enter", "queue.send.lock", "queue.send.check_closed", "queue.send.load_head",
	"queue.send.write", "queue.send.commit", "queue.send.unlock", "queue.send.load_waiters",
	"queue.send.clear_sleepers", "queue.send.wake", "queue.send.load_word", "queue.send.set_sleepers",
	"queue.send.recheck",
	"queue.recv.enter", "queue.recv.lock", "queue.recv.check_closed", "queue.recv.load_tail",
	"queue.recv.read", "queue.recv.commit", "queue.recv.unlock", "queue.recv.load_waiters",
	"queue.recv.clear_sleepers", "queue.recv.wake", "queue.recv.load_word", "queue.recv.set_sleepers",
	"queue.recv.recheck",
	"queue.close.enter", "queue.close.lock", "queue.close.set", "queue.close.unlock",
	"queue.close.wake_recv", "queue.close.wake_send",
	"token.acquire", "token.release",
	"wait.watch.cas", "wait.sleep.waitv", "wait.sleep.check_lives", "wait.sleep.wake_all_live",
	"wait.sleep.check_done",
	"proc.close.mark_closed", "proc.close.wake_all",
}

// Steps returns the labels of the model's code steps.
func (m *QueueModel) Steps() []string { return append([]string(nil), queueSteps...) }
