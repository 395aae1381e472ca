//go:build !darwin && !freebsd && !linux

package processshared

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// This system has no segments yet (Windows would need file mappings and
// kernel objects): every call that would create or open one returns an error
// wrapping errors.ErrUnsupported. Everything else compiles and, having no
// Segment to work on, is never reached.

const shmDir = ""

func unsupported(op, name string) error {
	return fmt.Errorf("processshared: %s %q: shared memory segments are not supported on %s/%s: %w",
		op, name, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Create would create a named segment. Here it returns an error wrapping
// errors.ErrUnsupported.
func Create(name string, size int64, opts *Options) (*Segment, error) {
	return nil, unsupported("create", name)
}

// Open would open a named segment. Here it returns an error wrapping
// errors.ErrUnsupported.
func Open(name string) (*Segment, error) { return nil, unsupported("open", name) }

// OpenOrCreate would open or create a named segment. Here it returns an
// error wrapping errors.ErrUnsupported.
func OpenOrCreate(name string, size int64, opts *Options) (*Segment, error) {
	return nil, unsupported("open or create", name)
}

// NewAnonymous would create an anonymous segment. Here it returns an error
// wrapping errors.ErrUnsupported.
func NewAnonymous(label string, size int64, opts *Options) (*Segment, error) {
	return nil, unsupported("create anonymous", label)
}

// Remove would remove a named segment. Here it returns an error wrapping
// errors.ErrUnsupported.
func Remove(name string) error { return unsupported("remove", name) }

func inheritFd(name string, fd int) (*Segment, error) { return nil, unsupported("inherit", name) }

func mapFile(f *os.File, size uint64) ([]byte, error) { return nil, unsupported("map", f.Name()) }

func unmap(mem []byte) error { return nil }

func (s *Segment) retire() error { return nil }

func fileIDOf(f *os.File) fileID { return fileID{} }

func selfStart() uint64 { return 0 }

func pidNamespace() uint64 { return 0 }

func setCloexec(fd int) {}

// processStart returns 0: unknown.
func processStart(pid int) uint64 { return 0 }

// processAlive reports true: without a way to tell, a holder is never taken
// for dead.
func processAlive(pid int, start uint64) bool { return pid > 0 }
