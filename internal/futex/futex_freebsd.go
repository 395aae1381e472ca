//go:build freebsd && !processshared_nofutex

package futex

import (
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Operations of _umtx_op(2). The words live in MAP_SHARED mappings, so the
// shared forms are used: UMTX_OP_WAIT_UINT and UMTX_OP_WAKE key the word on
// the backing object when the mapping is shared (AUTO_SHARE in the kernel),
// as process-shared pthread objects do. The _PRIVATE forms would key it on
// this process's address space, and a Wake from another process would be
// lost.
const (
	umtxOpWake        = 3  // UMTX_OP_WAKE
	umtxOpWaitUint    = 11 // UMTX_OP_WAIT_UINT
	umtxOpWakePrivate = 16 // UMTX_OP_WAKE_PRIVATE
)

// umtxTime is the kernel's struct _umtx_time: a timeout, relative here
// (_flags has no UMTX_ABSTIME), on the clock _clockid.
type umtxTime struct {
	timeout unix.Timespec
	flags   uint32
	clockid uint32
}

// Wait sleeps while *addr == val, until woken or until deadline (Now
// nanoseconds; 0 means none). It wraps _umtx_op(UMTX_OP_WAIT_UINT). Callers
// re-check their condition after every return: wake-ups may be spurious.
func Wait(addr *uint32, val uint32, deadline int64) Result {
	t := int64(-1)
	if deadline != 0 {
		if t = deadline - Now(); t <= 0 {
			return TimedOut
		}
	}
	switch umtxWait(addr, val, t) {
	case 0, syscall.EINTR:
		return Woken
	case syscall.ETIMEDOUT:
		return TimedOut
	}
	// EFAULT or EINVAL: the word is not usable. Report a change so the
	// caller re-reads its state and fails there.
	return Changed
}

// umtxWait wraps _umtx_op(addr, UMTX_OP_WAIT_UINT, val), with a timeout of
// t nanoseconds if t >= 0. It returns at once, with 0, if *addr != val.
func umtxWait(addr *uint32, val uint32, t int64) syscall.Errno {
	var size, ut uintptr
	var tm umtxTime
	if t >= 0 {
		tm = umtxTime{timeout: unix.NsecToTimespec(t), clockid: unix.CLOCK_MONOTONIC}
		size, ut = unsafe.Sizeof(tm), uintptr(unsafe.Pointer(&tm))
	}
	_, _, e := syscall.Syscall6(unix.SYS__UMTX_OP, uintptr(unsafe.Pointer(addr)), umtxOpWaitUint, uintptr(val), size, ut, 0)
	runtime.KeepAlive(&tm)
	return e
}

// Wake wakes up to n waiters on addr. It wraps _umtx_op(UMTX_OP_WAKE), which
// does not say how many it woke: it returns 0.
func Wake(addr *uint32, n int) int {
	syscall.RawSyscall6(unix.SYS__UMTX_OP, uintptr(unsafe.Pointer(addr)), umtxOpWake, uintptr(n), 0, 0, 0)
	return 0
}

// WakePrivate is Wake for a word in this process's private memory.
func WakePrivate(addr *uint32, n int) int {
	syscall.RawSyscall6(unix.SYS__UMTX_OP, uintptr(unsafe.Pointer(addr)), umtxOpWakePrivate, uintptr(n), 0, 0, 0)
	return 0
}

// nap sleeps in the kernel on the word of w for at most t nanoseconds, and
// reports whether it was woken (rather than timed out). If the kernel refuses
// the wait, it sleeps without it, so that Waitv still polls.
func nap(w *Waiter, t int64) bool {
	switch umtxWait(w.addr, w.val, t) {
	case 0:
		return true
	case syscall.EINTR, syscall.ETIMEDOUT:
		return false
	}
	time.Sleep(time.Duration(t))
	return false
}
