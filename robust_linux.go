//go:build linux && !processshared_nofutex

package processshared

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/processshared/processshared/internal/futex"
	"golang.org/x/sys/unix"
)

// The keeper is one OS thread per process that lives as long as the process.
// Goroutines move between threads, so "the thread that locked" means nothing
// in Go; the keeper's thread id is instead the process's identity in every
// lock word and process-table slot, and the keeper's robust futex list (see
// the kernel's Documentation/locking/robust-futex-ABI) holds this process's
// slot in every segment it has open. When the process dies, in any way, its
// threads exit; the kernel walks the keeper's list, sets FUTEX_OWNER_DIED in
// each slot's live word and wakes a waiter. Waiters for a lock sleep on both
// the lock word and the holder's live word (futex_waitv), so they learn of
// the holder's death without polling.
//
// Only the slot words are on the list, never lock words, so locking and
// unlocking never touch the list: they cost what a plain futex mutex costs.
type keeper struct {
	tid    uint32
	robust bool // set_robust_list succeeded

	mu    sync.Mutex                 // serializes list changes (the ABI allows one pending op)
	head  *robustHead                // the registered list head; never freed
	nodes map[uintptr]unsafe.Pointer // the entries on the list
}

// robustHead is the kernel's struct robust_list_head: three words of the
// native size (a pointer, a C long, a pointer), on 32-bit and 64-bit
// architectures alike.
type robustHead struct {
	next          uintptr // struct robust_list *next; &next when empty (a circular list)
	futexOffset   int     // long futex_offset: from a list entry to its futex word
	listOpPending uintptr
}

// The kernel rejects a head of any other size (set_robust_list returns
// EINVAL); this fails to compile if robustHead is not three words.
var _ [0]struct{} = [unsafe.Sizeof(robustHead{}) - 3*unsafe.Sizeof(uintptr(0))]struct{}{}

var theKeeper = sync.OnceValue(func() *keeper {
	k := &keeper{head: new(robustHead), nodes: make(map[uintptr]unsafe.Pointer)}
	k.head.next = uintptr(unsafe.Pointer(&k.head.next))
	k.head.futexOffset = slotLive - slotNext
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		k.tid = uint32(unix.Gettid())
		k.robust = futex.SetRobustList(unsafe.Pointer(k.head), unsafe.Sizeof(*k.head)) == nil
		close(ready)
		select {}
	}()
	<-ready
	return k
})

// The kernel may walk the list while another thread of this process is
// still changing it: SIGKILL ends the keeper and that thread on different
// CPUs. On a weakly ordered CPU (arm64) two plain stores may become visible
// in either order, so the stores that publish a change (head.next, and
// list_op_pending) are atomic, that is release stores: the kernel never
// finds a node in the list before the node's own next pointer.

// link adds the node (a slot's robust_list entry, in shared memory) to the
// list. The caller holds k.mu.
func (k *keeper) link(node unsafe.Pointer) {
	*(*uintptr)(node) = k.head.next
	atomic.StoreUintptr(&k.head.next, uintptr(node))
	k.nodes[uintptr(node)] = node
}

// unlink removes node from the list. The caller holds k.mu.
func (k *keeper) unlink(node unsafe.Pointer) {
	target := uintptr(node)
	if _, ok := k.nodes[target]; !ok {
		return
	}
	next := *(*uintptr)(node)
	if k.head.next == target {
		atomic.StoreUintptr(&k.head.next, next)
	} else {
		for _, q := range k.nodes {
			if *(*uintptr)(q) == target {
				atomic.StoreUintptr((*uintptr)(q), next)
				break
			}
		}
	}
	delete(k.nodes, target)
}

// setPending sets the list_op_pending field: if the process dies before the
// operation completes, the kernel still handles node.
func (k *keeper) setPending(node unsafe.Pointer) {
	atomic.StoreUintptr(&k.head.listOpPending, uintptr(node))
}

// Waking a sleeper that then dies.
//
// Unlock clears a Mutex's word and wakes one sleeping process. If that
// process dies before it takes the lock (it is SIGKILLed between the wake
// and its CAS), the wake is lost: the other sleepers sleep on, on a free
// lock that no fast-path Unlock will wake. The kernel covers this case for
// robust futexes (robust-futex-ABI; handle_futex_death since Linux 5.8,
// commit ca16d5bee598): when a thread dies whose robust list names a futex
// word as its pending operation, and the word's owner bits are 0, the
// kernel wakes one waiter on the word.
//
// So a goroutine about to sleep on a lock word pins its thread and makes
// that word the pending operation of the thread's own robust list (a head
// of its own, futex_offset 0, so that the pending entry is the word
// itself), until it has taken the lock or given up. The word's owner bits
// are an identity, never a thread id (see maxTID), so the kernel never
// mistakes the lock for one the dying thread holds. The thread's previous
// list (glibc registers one per thread in a cgo program) is restored after.

// armPending makes word the pending robust operation of the calling
// goroutine's thread, which it locks, and returns the function that undoes
// both.
//
// A thread that has no robust list of its own (every thread of a program
// without cgo) is given a head of ours, which stays registered on the
// thread when disarmed, with nothing pending and an empty list (the kernel
// then finds nothing to do when the thread exits): the next arm on that
// thread is then one system call (get_robust_list, to see whose head the
// thread has) and two plain stores, rather than three system calls. The
// heads are never freed, since the kernel holds their addresses for the
// lives of their threads. A thread with a list of its own (glibc's, in a cgo
// program) gets a head of ours only while armed, and its own list back.
func armPending(word *uint32) (disarm func()) {
	if !theKeeper().robust {
		return func() {}
	}
	runtime.LockOSThread()
	prev, _, err := futex.GetRobustList()
	if err != nil {
		runtime.UnlockOSThread()
		return func() {}
	}
	if h, ok := threadHeads.Load(prev); ok {
		return armOn(h.(*robustHead), word)
	}
	h := new(robustHead)
	h.next = uintptr(unsafe.Pointer(&h.next))
	if prev == 0 {
		// Registered empty, then armed: the kernel never sees a
		// pending op on a head it does not have.
		if futex.SetRobustList(unsafe.Pointer(h), unsafe.Sizeof(*h)) != nil {
			runtime.UnlockOSThread()
			return func() {}
		}
		threadHeads.Store(uintptr(unsafe.Pointer(h)), h)
		return armOn(h, word)
	}
	h.listOpPending = uintptr(unsafe.Pointer(word))
	if futex.SetRobustList(unsafe.Pointer(h), unsafe.Sizeof(*h)) != nil {
		runtime.UnlockOSThread()
		return func() {}
	}
	return func() {
		futex.SetRobustListAddr(prev, unsafe.Sizeof(*h))
		runtime.KeepAlive(h) // the kernel held its address until now
		runtime.UnlockOSThread()
	}
}

// armOn arms word on h, the calling thread's registered head of ours.
func armOn(h *robustHead, word *uint32) (disarm func()) {
	atomic.StoreUintptr(&h.listOpPending, uintptr(unsafe.Pointer(word)))
	return func() {
		atomic.StoreUintptr(&h.listOpPending, 0)
		runtime.UnlockOSThread()
	}
}

// threadHeads holds the heads armPending left registered on threads, by
// address: never freed (see armPending).
var threadHeads sync.Map // uintptr → *robustHead
