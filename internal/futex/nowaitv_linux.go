//go:build linux && !processshared_nofutex && processshared_nowaitv

package futex

// forceNoWaitv makes HasWaitv report false, as on a kernel without
// futex_waitv(2) (before 5.16, or under qemu-user): the build tag
// processshared_nowaitv tests those paths on any kernel.
const forceNoWaitv = true
