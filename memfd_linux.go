//go:build linux && !processshared_nofutex

package processshared

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// On Linux a named segment's file is built unnamed (O_TMPFILE) and linked
// into /dev/shm once complete; an anonymous segment is a memfd whose size is
// sealed. memfd_none.go does without both, on the systems that lack them and
// on Linux built with the processshared_nofutex tag (which tests it there).

// NewAnonymous creates a segment of size bytes that has no name in the
// segment directory. On Linux it is backed by memfd_create(2); the label
// names it in /proc/PID/fd and for Pass and Inherit. Its size is sealed
// (F_SEAL_SHRINK, F_SEAL_GROW), so no process can truncate it. Its pages
// are reserved before the size is sealed, unless opts.Sparse is set: they
// count against memory and the memory cgroup (not /dev/shm) from creation,
// and memory that cannot be had is refused here (an error, or the cgroup's
// OOM killer), not at a later touch of a page (SIGBUS). It disappears when
// the last process holding it closes it or exits.
func NewAnonymous(label string, size int64, opts *Options) (*Segment, error) {
	if err := checkName(label); err != nil {
		return nil, err
	}
	l, err := newLayout(size, opts)
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("processshared:"+label, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+label)
	if err := initFile(f, l, opts.sparse()); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	return newSegment(label, true, f, l.size, opts)
}

// checkDir checks shmDir before a segment is opened in it: /dev/shm belongs
// to the system, there is nothing to check.
func checkDir(create bool) error { return nil }

// createNamed creates and initializes the file of a named segment. It builds
// the file unnamed (O_TMPFILE) and links it in only when complete, so a
// creator that dies half-way leaves nothing behind. Where O_TMPFILE is
// unavailable it creates the name with O_EXCL and writes the magic number
// last; openers wait for it.
func createNamed(name string, l layoutInfo, mode fs.FileMode, sparse bool) (*os.File, error) {
	p := filepath.Join(shmDir, name)
	fd, err := unix.Open(shmDir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(mode))
	if err == nil {
		f := os.NewFile(uintptr(fd), p)
		if err := initNamed(f, l, mode, sparse); err != nil {
			f.Close()
			return nil, err
		}
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, p, unix.AT_SYMLINK_FOLLOW)
		if err == nil {
			return f, nil
		}
		f.Close()
		if err == unix.EEXIST {
			return nil, &fs.PathError{Op: "create", Path: p, Err: fs.ErrExist}
		}
		if err != unix.ENOENT { // ENOENT: no /proc; fall back
			return nil, &fs.PathError{Op: "create", Path: p, Err: err}
		}
	}
	return createExcl(p, l, mode, sparse)
}
