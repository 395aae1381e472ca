//go:build darwin || freebsd || (linux && processshared_nofutex)

package processshared

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Without memfd_create and O_TMPFILE (macOS, FreeBSD; and Linux built with
// the processshared_nofutex tag, which tests this file there) segments are
// plain files:
//
//   - a named segment is a file in shmDir, created with O_EXCL|O_NOFOLLOW and
//     initialized in place, its magic number written last (openers wait for
//     it). On macOS and FreeBSD shmDir is /tmp/processshared, made on first
//     use with mode 1777 like /dev/shm: a fixed path, so that unrelated
//     processes (whose $TMPDIR may differ: macOS gives each user and each
//     launchd job its own) find the same names. The files are regular files
//     of the file system under /tmp: the kernel may write their dirty pages
//     to disk, as it does for any shared file mapping, and they survive a
//     reboot unless /tmp is cleared;
//   - an anonymous segment is a file created in shmDir under a random name
//     and unlinked at once, before anything is written to it. There are no
//     seals: a process that holds its descriptor (a child it was passed to)
//     can truncate it, after which accesses to the lost pages fault (SIGBUS)
//     in every process that maps it.

// anonPrefix starts the short-lived names of anonymous segments' files.
const anonPrefix = ".processshared-anon-"

// NewAnonymous creates a segment of size bytes that has no name in the
// segment directory. It is backed by a file created in the segment directory
// and unlinked at once; the label names it for Pass and Inherit. Unlike on
// Linux, its size is not sealed: a process that was handed it can truncate
// it. It disappears when the last process holding it closes it or exits.
func NewAnonymous(label string, size int64, opts *Options) (*Segment, error) {
	if err := checkName(label); err != nil {
		return nil, err
	}
	l, err := newLayout(size, opts)
	if err != nil {
		return nil, err
	}
	if err := checkDir(true); err != nil {
		return nil, &fs.PathError{Op: "create", Path: shmDir, Err: err}
	}
	f, err := os.CreateTemp(shmDir, anonPrefix+"*") // O_EXCL, mode 0600, close-on-exec
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	if err := initFile(f, l, opts.sparse()); err != nil {
		f.Close()
		return nil, err
	}
	return newSegment(label, true, f, l.size, opts)
}

// createNamed creates and initializes the file of a named segment.
func createNamed(name string, l layoutInfo, mode fs.FileMode, sparse bool) (*os.File, error) {
	p := filepath.Join(shmDir, name)
	if err := checkDir(true); err != nil {
		return nil, &fs.PathError{Op: "create", Path: p, Err: err}
	}
	return createExcl(p, l, mode, sparse)
}

// checkDir checks that shmDir can be trusted with segments: a directory, not
// a symbolic link, owned by root or by the caller, and sticky if others may
// write to it, so that no other user can remove or replace a segment's file.
// With create set it first makes shmDir, mode 1777, if it does not exist.
// A directory made by another user fails the check: to share segments
// between users, have root make it (mkdir -m 1777 /tmp/processshared).
func checkDir(create bool) error {
	var st unix.Stat_t
	err := unix.Lstat(shmDir, &st)
	if err == unix.ENOENT && create {
		if err = unix.Mkdir(shmDir, 0o700); err == nil {
			// Made by us: open it up as /dev/shm is (Mkdir's mode is
			// subject to the umask, and may not set the sticky bit).
			err = unix.Chmod(shmDir, 0o1777)
		} else if err == unix.EEXIST {
			err = nil // another process made it
		}
		if err == nil {
			err = unix.Lstat(shmDir, &st)
		}
	}
	if err == unix.ENOENT {
		return nil // nothing there yet: opening a name in it fails with ENOENT
	}
	if err != nil {
		return os.NewSyscallError("lstat", err)
	}
	uid := uint32(os.Geteuid())
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%w: segment directory %s is not a directory", fs.ErrPermission, shmDir)
	case st.Uid != 0 && st.Uid != uid:
		return fmt.Errorf("%w: segment directory %s belongs to uid %d", fs.ErrPermission, shmDir, st.Uid)
	case st.Uid != uid && st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return fmt.Errorf("%w: segment directory %s is writable by others and not sticky", fs.ErrPermission, shmDir)
	}
	return nil
}
