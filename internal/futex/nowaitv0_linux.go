//go:build linux && !processshared_nofutex && !processshared_nowaitv

package futex

// forceNoWaitv makes HasWaitv report false; see nowaitv_linux.go.
const forceNoWaitv = false
