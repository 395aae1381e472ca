package model

import (
	"math/bits"
	"strings"
)

// MaxThreads bounds the goroutines of one model (processes × goroutines).
const MaxThreads = 8

// Futex is the kernel's side of a model's futex words: who sleeps on what.
// Words are numbered 0-7 by the model; a sleeper's entry is the set of words
// it sleeps on (several for futex_waitv), 0 when it is not asleep. The values
// of the words live in the model's state; the kernel only compares them at
// the instant a thread goes to sleep.
//
// The semantics assumed (futex(2), futex_waitv(2)):
//
//   - FUTEX_WAIT and futex_waitv compare every word with its expected value
//     and enqueue the caller on all of them, atomically with respect to
//     every FUTEX_WAKE; if any word differs they return at once (EAGAIN).
//   - FUTEX_WAKE(w, n) wakes up to n sleepers of w, and takes a sleeper of
//     several words off all of them: it is woken once, by any word. Which
//     sleepers it picks (the kernel's priority and FIFO order) is not
//     modelled: every choice is explored.
//   - A woken sleeper has no enabled step until it is woken; a wake that
//     finds no sleeper is lost, as in the kernel.
type Futex struct {
	On [MaxThreads]uint8
}

// Asleep reports whether thread t sleeps in the kernel.
func (f *Futex) Asleep(t int) bool { return f.On[t] != 0 }

// Sleep enqueues t on the words of set. The caller has compared the words.
func (f *Futex) Sleep(t int, set uint8) { f.On[t] = set }

// Unqueue takes t off every queue: it was woken by a word the model does not
// number (its private cancellation word), or it died.
func (f *Futex) Unqueue(t int) { f.On[t] = 0 }

// Sleepers returns the set of threads asleep on word w.
func (f *Futex) Sleepers(w int) uint16 {
	var m uint16
	for t, on := range f.On {
		if on&(1<<w) != 0 {
			m |= 1 << t
		}
	}
	return m
}

// Wakes calls fn once with every set of threads that FUTEX_WAKE(w, n) may
// wake, and the state of f after that wake.
func (f *Futex) Wakes(w, n int, fn func(woken uint16, after Futex)) {
	all := f.Sleepers(w)
	k := min(n, bits.OnesCount16(all))
	for sub := all; ; sub = (sub - 1) & all {
		if bits.OnesCount16(sub) == k {
			after := *f
			for t := range MaxThreads {
				if sub&(1<<t) != 0 {
					after.On[t] = 0
				}
			}
			fn(sub, after)
		}
		if sub == 0 {
			return
		}
	}
}

// WakeAll is FUTEX_WAKE(w, INT_MAX).
func (f *Futex) WakeAll(w int) uint16 {
	all := f.Sleepers(w)
	for t := range MaxThreads {
		if all&(1<<t) != 0 {
			f.On[t] = 0
		}
	}
	return all
}

// wokeNote describes the threads a wake took off the queues.
func wokeNote(woken uint16, name func(t int) string) string {
	if woken == 0 {
		return "woke nobody"
	}
	var names []string
	for t := range MaxThreads {
		if woken&(1<<t) != 0 {
			names = append(names, name(t))
		}
	}
	return "woke " + strings.Join(names, ",")
}

var (
	procName     = [maxProcs]string{"P0", "P1", "P2"}
	newcomerName = [maxProcs]string{"N0", "N1", "N2"}
)

// A process's live word (its slot in the segment's process table, on its
// robust list), in the model's 8 bits:
//
//	bits 0-3  tid: the keeper thread id (FUTEX_TID_MASK); 0 when the slot is free
//	bit  6    LW, liveWaiters (FUTEX_WAITERS): someone sleeps on the word,
//	          waiting for a death
//	bit  7    DIED (FUTEX_OWNER_DIED): set by the kernel when the owner died,
//	          clearing the tid; or set by the process itself when it closes
//	          its handle, keeping the tid, so that the word is still the
//	          process's in the kernel's eyes and a SIGKILL during Close still
//	          wakes a waiter
const (
	liveTID     = 0x0f
	liveWaiters = 0x40
	liveDied    = 0x80
)

// liveDead reports whether a live word says its process is gone.
func liveDead(v uint8) bool { return v == 0 || v&liveDied != 0 }

// liveFree reports whether a newcomer may claim a slot whose live word is v.
func liveFree(v uint8) bool { return v&liveTID == 0 }

// robustDeath is the kernel's handle_futex_death for a live word on the
// dying thread's robust list: if the word's tid is the dying thread's, it
// sets OWNER_DIED, keeps the waiters bit and clears the tid, and reports
// whether it must wake one waiter (the waiters bit was set).
func robustDeath(live *uint8, tid uint8) (wakeOne bool) {
	v := *live
	if v&liveTID != tid {
		return false
	}
	*live = liveDied | v&liveWaiters
	return v&liveWaiters != 0
}

func formatLive(v uint8) string {
	if v == 0 {
		return "0"
	}
	var b strings.Builder
	var parts []string
	if v&liveTID != 0 {
		parts = append(parts, "t"+string(rune('0'+v&liveTID)))
	}
	if v&liveDied != 0 {
		parts = append(parts, "DIED")
	}
	if v&liveWaiters != 0 {
		parts = append(parts, "LW")
	}
	b.WriteString(strings.Join(parts, "|"))
	return b.String()
}

// A Seq is a narrow wrapping counter: the model gives a sequence or
// generation a few bits so that wrap-around is reachable in a short run.
// Sequences are compared for equality only (STYLE rule 27).
type Seq struct {
	Bits uint8
}

// Mask returns the largest value of q.
func (q Seq) Mask() uint8 { return uint8(1)<<q.Bits - 1 }

// Add returns v+d, wrapped.
func (q Seq) Add(v, d uint8) uint8 { return (v + d) & q.Mask() }

// Sub returns v-d, wrapped.
func (q Seq) Sub(v, d uint8) uint8 { return (v - d) & q.Mask() }

// Budget bounds the environment events of one run. Each event is enabled
// at every step while its budget lasts.
type Budget struct {
	Kill   uint8 // SIGKILL a process (or a newcomer)
	Cancel uint8 // cancel a goroutine's context
	Close  uint8 // Close a process's handle on the segment
	Attach uint8 // a newcomer attaches to a dead process's slot
}
