//go:build !linux

package processshared

import "os"

// reserve does nothing: golang.org/x/sys offers no fallocate(2) here (macOS
// has only F_PREALLOCATE, which reserves disk space without allocating the
// file's pages; FreeBSD's posix_fallocate(2) is not wrapped, and ZFS refuses
// it). A segment's file stays sparse, as with Options.Sparse on Linux: its
// blocks are allocated when first touched, and a full file system then
// raises SIGBUS in the process that touches them.
func reserve(f *os.File, size int64) error { return nil }
