//go:build darwin || freebsd || linux

package processshared

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileUID returns the owner of the file fi describes.
func fileUID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// removeIfStale unlinks name if it still names the file id and that file is
// still stale.
func removeIfStale(name string, id fileID) (bool, error) {
	si, now, err := inspectNamed(name)
	if err != nil || now != id || !si.Stale {
		return false, nil
	}
	p := filepath.Join(shmDir, name)
	if err := unix.Unlink(p); err != nil {
		if err == unix.ENOENT {
			return false, nil // someone else removed it
		}
		return false, &fs.PathError{Op: "remove", Path: p, Err: err}
	}
	return true, nil
}

// segmentNames returns the names in /dev/shm that could be segment names and
// match one of patterns (all of them if there are none), in order.
func segmentNames(patterns []string) ([]string, error) {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("processshared: pattern %q: %w", p, err)
		}
	}
	entries, err := os.ReadDir(shmDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || checkName(name) != nil {
			continue
		}
		if len(patterns) == 0 || slices.ContainsFunc(patterns, func(p string) bool {
			ok, _ := path.Match(p, name)
			return ok
		}) {
			names = append(names, name)
		}
	}
	return names, nil
}

// inspectNamed describes the segment name through a read-only mapping. Its
// error is set, and the file not described, if the file cannot be opened,
// is not a regular file, or does not start with the segment magic number
// (read with pread, before anything is mapped).
func inspectNamed(name string) (SegmentInfo, fileID, error) {
	p := filepath.Join(shmDir, name)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP {
			err = fmt.Errorf("%w: %s is a symbolic link", ErrNotSegment, p)
		}
		return SegmentInfo{}, fileID{}, &fs.PathError{Op: "inspect", Path: p, Err: err}
	}
	fdOpen := true
	defer func() {
		if fdOpen {
			unix.Close(fd)
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return SegmentInfo{}, fileID{}, &fs.PathError{Op: "inspect", Path: p, Err: err}
	}
	hdr := make([]byte, hdrSize)
	n := 0
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		n, _ = unix.Pread(fd, hdr, 0)
	}
	ne := binary.NativeEndian
	if n < 8 || ne.Uint64(hdr[offMagic:]) != segMagic {
		return SegmentInfo{}, fileID{}, &fs.PathError{Op: "inspect", Path: p, Err: ErrNotSegment}
	}
	id := fileID{uint64(st.Dev), st.Ino}
	si := SegmentInfo{Name: name, Size: st.Size, Mode: fs.FileMode(st.Mode & 0o777), UID: int(st.Uid)}
	l, err := parseHeader(hdr[:n], st.Size)
	if err != nil {
		if n >= hdrSize { // the creator's fields, for an operator to act on
			si.CreatorPID = int(ne.Uint32(hdr[offCreatorPID:]))
			si.CreatorAlive = processAlive(si.CreatorPID, ne.Uint64(hdr[offCreatorStart:]))
			if ns := int64(ne.Uint64(hdr[offCreated:])); ns != 0 {
				si.Created = time.Unix(0, ns)
			}
		}
		si.Err = err
		if errors.Is(err, ErrVersion) && ne.Uint32(hdr[offVersion:]) < layoutVersion {
			// Its tables cannot be read, but whether it is in use can:
			// nobody can use it if no process has it open or mapped
			// (this one, once fd is closed).
			unix.Close(fd)
			fdOpen = false
			si.Stale = !openedOrMapped(map[fileID]bool{id: true})[id]
		}
		return si, id, nil
	}
	si.Size = int64(l.size)
	mem, err := unix.Mmap(fd, 0, int(l.size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		si.Err = os.NewSyscallError("mmap", err)
		return si, id, nil
	}
	defer unix.Munmap(mem)
	// A Segment around the read-only mapping, never attached: its methods
	// that only read (Objects, lookup, lookupSlot) serve as they are.
	v := &Segment{name: name, mem: mem, lay: l}
	objs, oerr := v.Objects()
	v.fill(&si, 0, objs, oerr)
	return si, id, nil
}

// openedOrMapped returns those of ids that some process has open (a
// descriptor under /dev/shm) or mapped, as far as the /proc entries the
// caller may read show.
func openedOrMapped(ids map[fileID]bool) map[fileID]bool {
	found := make(map[fileID]bool)
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		dir := "/proc/" + p.Name()
		fds, _ := os.ReadDir(dir + "/fd")
		for _, fd := range fds {
			link := dir + "/fd/" + fd.Name()
			// Stat only what lives in /dev/shm: stat on another file
			// system (a hung NFS mount) could block.
			if target, err := os.Readlink(link); err != nil || !strings.HasPrefix(target, shmDir+"/") {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(link, &st) == nil {
				if id := (fileID{uint64(st.Dev), st.Ino}); ids[id] {
					found[id] = true
				}
			}
		}
		maps, _ := os.ReadFile(dir + "/maps")
		for line := range strings.Lines(string(maps)) {
			// address perms offset dev inode [path]
			f := strings.Fields(line)
			if len(f) < 5 || f[4] == "0" {
				continue
			}
			major, minor, _ := strings.Cut(f[3], ":")
			maj, err1 := strconv.ParseUint(major, 16, 32)
			mnr, err2 := strconv.ParseUint(minor, 16, 32)
			ino, err3 := strconv.ParseUint(f[4], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				continue
			}
			if id := (fileID{unix.Mkdev(uint32(maj), uint32(mnr)), ino}); ids[id] {
				found[id] = true
			}
		}
	}
	return found
}
