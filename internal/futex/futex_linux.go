//go:build linux && !processshared_nofutex

package futex

import (
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opWait        = 0   // FUTEX_WAIT
	opWake        = 1   // FUTEX_WAKE
	opWaitBitset  = 9   // FUTEX_WAIT_BITSET (absolute timeouts)
	privateFlag   = 128 // FUTEX_PRIVATE_FLAG
	clockRealtime = 256 // FUTEX_CLOCK_REALTIME; absent means CLOCK_MONOTONIC
	bitsetAny     = 0xffffffff

	// Flags of struct futex_waitv.
	size32      = 2   // FUTEX2_SIZE_U32
	waitvPrivat = 128 // FUTEX2_PRIVATE
)

// Wait sleeps while *addr == val, until woken or until deadline (CLOCK_MONOTONIC
// nanoseconds; 0 means none). It wraps FUTEX_WAIT_BITSET. Callers re-check their
// condition after every return: wake-ups may be spurious.
func Wait(addr *uint32, val uint32, deadline int64) Result {
	var ts *unix.Timespec
	if deadline != 0 {
		t := unix.NsecToTimespec(deadline)
		ts = &t
	}
	_, _, e := syscall.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWaitBitset,
		uintptr(val), uintptr(unsafe.Pointer(ts)), 0, bitsetAny)
	runtime.KeepAlive(ts)
	switch e {
	case 0, syscall.EINTR:
		return Woken
	case syscall.EAGAIN:
		return Changed
	case syscall.ETIMEDOUT:
		return TimedOut
	}
	// EFAULT or EINVAL: the word is not usable (unmapped, misaligned). Report
	// a change so the caller re-reads its state and fails there.
	return Changed
}

// Wake wakes up to n waiters on addr and returns how many it woke. It wraps
// FUTEX_WAKE. FUTEX_WAKE never blocks, so it is issued with RawSyscall6 and skips
// the runtime's system call bookkeeping.
func Wake(addr *uint32, n int) int {
	r, _, e := syscall.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(r)
}

// WakePrivate is Wake for a word in this process's private memory.
func WakePrivate(addr *uint32, n int) int {
	r, _, e := syscall.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake|privateFlag, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return int(r)
}

// A Waiter is one entry of a futex_waitv(2) call.
type Waiter struct {
	Val     uint64
	Addr    uint64
	Flags   uint32
	reserve uint32
}

// struct futex_waitv is 24 bytes on every architecture: these fail to
// compile otherwise.
var (
	_ [0]struct{} = [unsafe.Sizeof(Waiter{}) - 24]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(Waiter{}.Addr) - 8]struct{}{}
	_ [0]struct{} = [unsafe.Offsetof(Waiter{}.Flags) - 16]struct{}{}
)

// Shared returns a Waiter for a word in shared memory.
func Shared(addr *uint32, val uint32) Waiter {
	return Waiter{Val: uint64(val), Addr: uint64(uintptr(unsafe.Pointer(addr))), Flags: size32}
}

// Private returns a Waiter for a word in this process's private memory.
func Private(addr *uint32, val uint32) Waiter {
	return Waiter{Val: uint64(val), Addr: uint64(uintptr(unsafe.Pointer(addr))), Flags: size32 | waitvPrivat}
}

// Waitv sleeps until one of the words no longer holds its value, one of them is
// woken, or deadline (CLOCK_MONOTONIC nanoseconds; 0 means none) passes. It
// wraps futex_waitv(2) (Linux 5.16). The caller keeps the words alive.
func Waitv(ws []Waiter, deadline int64) Result {
	var ts *unix.Timespec
	if deadline != 0 {
		t := unix.NsecToTimespec(deadline)
		ts = &t
	}
	_, _, e := syscall.Syscall6(unix.SYS_FUTEX_WAITV, uintptr(unsafe.Pointer(&ws[0])), uintptr(len(ws)), 0,
		uintptr(unsafe.Pointer(ts)), unix.CLOCK_MONOTONIC, 0)
	runtime.KeepAlive(ws)
	runtime.KeepAlive(ts)
	switch e {
	case 0, syscall.EINTR:
		return Woken
	case syscall.EAGAIN:
		return Changed
	case syscall.ETIMEDOUT:
		return TimedOut
	}
	return Changed
}

// HasWaitv reports whether the kernel implements futex_waitv(2). It probes once.
// Built with the processshared_nowaitv tag it reports false, so that the
// paths taken on kernels older than 5.16 (and under qemu-user) can be tested
// on any kernel.
var HasWaitv = sync.OnceValue(func() bool {
	if forceNoWaitv {
		return false
	}
	var w uint32 = 1
	ws := []Waiter{Private(&w, 0)} // value differs: returns EAGAIN at once if implemented
	_, _, e := syscall.Syscall6(unix.SYS_FUTEX_WAITV, uintptr(unsafe.Pointer(&ws[0])), 1, 0, 0, unix.CLOCK_MONOTONIC, 0)
	runtime.KeepAlive(ws)
	return e == syscall.EAGAIN
})

// SetRobustList registers head as the calling thread's robust futex list. It
// wraps set_robust_list(2); see the kernel's Documentation/locking/robust-futex-ABI.
func SetRobustList(head unsafe.Pointer, size uintptr) error {
	_, _, e := syscall.RawSyscall(unix.SYS_SET_ROBUST_LIST, uintptr(head), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Now returns the CLOCK_MONOTONIC time in nanoseconds, the clock the deadlines
// of Wait and Waitv are measured on.
//
// It reads Go's monotonic clock (the vDSO's CLOCK_MONOTONIC, without a
// system call) and adds the offset between the two clocks, measured once:
// clock_gettime through x/sys is a real system call.
func Now() int64 {
	o := monoOffset()
	return o.base + int64(time.Since(o.t))
}

var monoOffset = sync.OnceValue(func() (o struct {
	t    time.Time
	base int64
}) {
	var ts unix.Timespec
	o.t = time.Now()
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	o.base = ts.Nano()
	return o
})

// GetRobustList returns the calling thread's robust futex list head and its
// size. It wraps get_robust_list(2) for the calling thread (pid 0).
// The head is returned as an address: it may be memory the Go runtime does
// not manage (glibc's, in a cgo program); SetRobustListAddr registers it
// again.
func GetRobustList() (head uintptr, size uintptr, err error) {
	_, _, e := syscall.RawSyscall(unix.SYS_GET_ROBUST_LIST, 0, uintptr(unsafe.Pointer(&head)), uintptr(unsafe.Pointer(&size)))
	if e != 0 {
		return 0, 0, e
	}
	return head, size, nil
}

// SetRobustListAddr is SetRobustList for a head known by its address.
func SetRobustListAddr(head, size uintptr) error {
	_, _, e := syscall.RawSyscall(unix.SYS_SET_ROBUST_LIST, head, size, 0)
	if e != 0 {
		return e
	}
	return nil
}
