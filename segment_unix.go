//go:build darwin || freebsd || linux

package processshared

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A named segment is a file in shmDir, mapped MAP_SHARED: on Linux a tmpfs
// file in /dev/shm; on macOS and FreeBSD, where no shm_open can be reached
// without cgo, a regular file in /tmp/processshared (see memfd_none.go).
// Everything that is the same on all of them is here; how a segment's file
// comes to be is in memfd_linux.go and memfd_none.go (the others).

// Create creates a new named segment of size bytes (rounded up to a page):
// a file in /dev/shm on Linux, in /tmp/processshared on macOS and FreeBSD.
// It fails with an error matching fs.ErrExist if the name is taken. Other
// processes never see the segment half-built: Open waits for its creator to
// finish. Its file mode is opts.Mode, 0600 if zero.
//
// On Linux the file's blocks are reserved (fallocate(2)) before anyone can
// map it, unless opts.Sparse is set: if /dev/shm cannot hold size bytes,
// Create fails with an error matching syscall.ENOSPC, instead of a process
// dying of SIGBUS later, when it touches a page there is no room for.
func Create(name string, size int64, opts *Options) (*Segment, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	l, err := newLayout(size, opts)
	if err != nil {
		return nil, err
	}
	f, err := createNamed(name, l, opts.mode(), opts.sparse())
	if err != nil {
		return nil, err
	}
	return newSegment(name, false, f, l.size, opts)
}

// Open opens the existing named segment name. It waits up to
// DefaultInitTimeout for a creator that is still initializing it. A file that
// is not a segment gives ErrNotSegment, one of another layout version
// ErrVersion, a short one ErrTruncated, one whose header holds garbage an
// error matching ErrCorrupt; a missing one an error matching
// fs.ErrNotExist; a symbolic link one matching ErrInvalidName.
func Open(name string) (*Segment, error) { return open(name, nil) }

// OpenOrCreate opens the named segment, creating it with size bytes if it does
// not exist. Any number of processes may race to call it for the same name:
// exactly one creates the segment and all of them get the same, fully
// initialized segment. If the segment exists, size and the options that
// shape a new segment (MaxProcesses, MaxObjects, Mode, Sparse) are ignored,
// whatever they are: even a size too small for a new segment opens an
// existing one. The process that creates it reserves its blocks as Create
// does: a full /dev/shm gives an error matching syscall.ENOSPC.
func OpenOrCreate(name string, size int64, opts *Options) (*Segment, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	for range 100 {
		s, err := open(name, opts)
		if !errors.Is(err, fs.ErrNotExist) {
			return s, err
		}
		l, err := newLayout(size, opts)
		if err != nil {
			return nil, err
		}
		f, err := createNamed(name, l, opts.mode(), opts.sparse())
		if errors.Is(err, fs.ErrExist) {
			continue // lost the race: open the winner's
		}
		if err != nil {
			return nil, err
		}
		return newSegment(name, false, f, l.size, opts)
	}
	return nil, fmt.Errorf("processshared: open or create %q: name keeps appearing and disappearing", name)
}

// Remove removes the named segment's file. Processes that have it open keep
// using it; the memory is freed when the last one closes it. A missing name
// gives an error matching fs.ErrNotExist.
func Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	p := filepath.Join(shmDir, name)
	if err := unix.Unlink(p); err != nil {
		return &fs.PathError{Op: "remove", Path: p, Err: err}
	}
	return nil
}

func initNamed(f *os.File, l layoutInfo, mode fs.FileMode, sparse bool) error {
	// The umask applied at creation; set the mode the caller asked for.
	if err := unix.Fchmod(int(f.Fd()), uint32(mode)); err != nil {
		return os.NewSyscallError("fchmod", err)
	}
	return initFile(f, l, sparse)
}

// initFile sizes f, reserves its blocks unless sparse is set (see reserve),
// and writes a segment header into it, the magic number last. Nobody has f
// mapped yet: where reserve works, a segment that does not fit fails here,
// with an error wrapping ENOSPC, and never faults later for want of room.
func initFile(f *os.File, l layoutInfo, sparse bool) error {
	if err := unix.Ftruncate(int(f.Fd()), int64(l.size)); err != nil {
		return os.NewSyscallError("ftruncate", err)
	}
	if !sparse {
		if err := reserve(f, int64(l.size)); err != nil {
			return fmt.Errorf("processshared: reserve %d bytes for %s: %w", l.size, f.Name(), err)
		}
	}
	hdr := make([]byte, hdrSize)
	initHeader(hdr, l)
	if _, err := f.WriteAt(hdr[8:], 8); err != nil {
		return err
	}
	_, err := f.WriteAt(hdr[:8], 0)
	return err
}

func (o *Options) sparse() bool { return o != nil && o.Sparse }

// isSymlinkErr reports whether err is open(2)'s answer to O_NOFOLLOW on a
// symbolic link: ELOOP, or EMLINK on FreeBSD.
func isSymlinkErr(err error) bool { return err == unix.ELOOP || err == symlinkErrno }

func open(name string, opts *Options) (*Segment, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(shmDir, name)
	if err := checkDir(false); err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if isSymlinkErr(err) {
			err = fmt.Errorf("%w: %s is a symbolic link", ErrInvalidName, p)
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	l, err := readHeader(f, opts.initTimeout())
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return newSegment(name, false, f, l.size, opts)
}

// readHeader reads and validates f's header with pread, never through a
// mapping, so a short or foreign file cannot raise SIGBUS. It waits up to
// timeout for a creator to publish the magic number.
func readHeader(f *os.File, timeout time.Duration) (layoutInfo, error) {
	deadline := time.Now().Add(timeout)
	hdr := make([]byte, hdrSize)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return layoutInfo{}, os.NewSyscallError("fstat", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return layoutInfo{}, ErrNotSegment
		}
		n, _ := f.ReadAt(hdr, 0)
		clear(hdr[n:])
		if !bytes.Equal(hdr[:8], make([]byte, 8)) { // the magic number is written last
			return parseHeader(hdr[:n], st.Size)
		}
		if time.Now().After(deadline) {
			return layoutInfo{}, fmt.Errorf("%w (file has %d bytes, no magic number)", ErrNotInitialized, st.Size)
		}
		time.Sleep(delay)
	}
}

// mapFile maps size bytes of f, shared. The mapping is made with MmapPtr,
// not Mmap, because Close replaces it in place (retire).
func mapFile(f *os.File, size uint64) ([]byte, error) {
	p, err := unix.MmapPtr(int(f.Fd()), 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return unsafe.Slice((*byte)(p), size), nil
}

func unmap(mem []byte) error {
	if len(mem) == 0 {
		return nil
	}
	return os.NewSyscallError("munmap", unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem))))
}

// retire replaces the segment's shared mapping, in place, with a private
// anonymous one that reserves no memory (placeholderFlags): a call racing
// with Close that still touches the addresses reads zeros or writes to
// pages of its own, never to the segment and never to whatever the system
// might map there next. The placeholder is unmapped when the Segment is
// garbage: every object holds its Segment, so by then no call can reach
// the addresses.
func (s *Segment) retire() error {
	mem := s.mem
	if len(mem) == 0 {
		return nil
	}
	addr := unsafe.Pointer(unsafe.SliceData(mem))
	_, err := unix.MmapPtr(-1, 0, addr, uintptr(len(mem)), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_FIXED|placeholderFlags)
	if err != nil {
		// Without a placeholder the addresses must stay mapped: keep the
		// shared mapping (a late write lands in the segment, as it would
		// have before Close) rather than leave a hole.
		return os.NewSyscallError("mmap placeholder", err)
	}
	runtime.AddCleanup(s, func(r mapRange) { unix.MunmapPtr(r.addr, r.n) }, mapRange{addr, uintptr(len(mem))})
	return nil
}

// A mapRange is an address range to unmap.
type mapRange struct {
	addr unsafe.Pointer
	n    uintptr
}

// fileIDOf returns f's device and inode numbers.
func fileIDOf(f *os.File) fileID {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return fileID{}
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}
}

// processAlive reports whether the process pid that started at start (0 if
// unknown) is still running. A process that has exited but not yet been
// reaped by its parent (a zombie, to which kill(2) still answers) is not:
// its parent may well be the process waiting for it to let go of a lock.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return false
	}
	now, exited := processStatus(pid)
	if exited {
		return false
	}
	if start != 0 && now != 0 && now != start {
		return false // the pid was reused
	}
	return true
}

// processStart returns the start time of process pid (see processStatus), or
// 0 if it is not known. With the pid it identifies a process even after the
// pid is reused.
func processStart(pid int) uint64 {
	start, _ := processStatus(pid)
	return start
}

func setCloexec(fd int) { unix.CloseOnExec(fd) }

// inheritFd maps the segment on a duplicate of the inherited descriptor fd.
func inheritFd(name string, fd int) (*Segment, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("processshared: inherit %q: %w", name, os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err))
	}
	f := os.NewFile(uintptr(nfd), name)
	l, err := readHeader(f, DefaultInitTimeout)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("processshared: inherit %q: %w", name, err)
	}
	var st unix.Stat_t
	anon := unix.Fstat(nfd, &st) == nil && st.Nlink == 0
	return newSegment(name, anon, f, l.size, nil)
}

// createExcl creates the named segment's file at p with O_EXCL and
// initializes it, the magic number last: until then openers wait (see
// readHeader). A creator that dies half-way leaves a file without a magic
// number, which Open reports as ErrNotInitialized and Remove removes.
func createExcl(p string, l layoutInfo, mode fs.FileMode, sparse bool) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode))
	if err != nil {
		if err == unix.EEXIST {
			err = fs.ErrExist
		}
		return nil, &fs.PathError{Op: "create", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	if err := initNamed(f, l, mode, sparse); err != nil {
		f.Close()
		unix.Unlink(p)
		return nil, err
	}
	return f, nil
}
