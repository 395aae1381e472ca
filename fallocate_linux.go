//go:build linux

package processshared

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// reserveChunk is the most one fallocate(2) call reserves. A call that
// sees a signal pending may fail with EINTR (tmpfs checks between pages: on
// older kernels for any signal, now for fatal ones only) and give back the
// pages it allocated, and the Go runtime signals its threads every 10 ms to
// preempt goroutines. Reserving in chunks keeps what earlier chunks got, so
// a large segment is reserved in the end however often the caller is
// interrupted.
const reserveChunk = 64 << 20

// reserve allocates the blocks of f's first size bytes (fallocate(2), mode
// 0, in chunks of reserveChunk, retrying a chunk after EINTR), so that no
// access to them can later fail for want of room: that would be SIGBUS. f is
// already size bytes long, so its size does not change. A full file system
// gives an error wrapping ENOSPC. A file system that cannot reserve
// (EOPNOTSUPP, ENOSYS) leaves f sparse, as Options.Sparse does.
func reserve(f *os.File, size int64) error {
	defer runtime.KeepAlive(f)
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		n := min(size-off, reserveChunk)
		switch err := unix.Fallocate(fd, 0, off, n); err {
		case nil:
			off += n
		case unix.EINTR:
			// Interrupted; the chunk's pages were given back. Again.
		case unix.EOPNOTSUPP, unix.ENOSYS:
			return nil
		default:
			return os.NewSyscallError("fallocate", err)
		}
	}
	return nil
}
