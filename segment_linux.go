//go:build linux

package processshared

import (
	"bytes"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// shmDir is where named segments live: the tmpfs that shm_open(3) uses.
const shmDir = "/dev/shm"

// symlinkErrno is what open(2) with O_NOFOLLOW returns for a symbolic link.
const symlinkErrno = unix.ELOOP

// processStatus reads process pid's stat file in /proc: its start time in
// clock ticks since boot (field 22; 0 if it cannot be read), and whether it
// has exited and awaits reaping (state, field 3, Z or X).
//
// It reads /proc/PID/task/PID/stat, the stat of the process's main thread,
// whose start time and state are the process's, rather than /proc/PID/stat:
// qemu-user (an arm64 binary run on an amd64 host, say) intercepts a
// process's reads of its own /proc/self/stat and /proc/PID/stat and makes up
// a start time a tick or so later than the kernel's. Another process reads
// the kernel's, sees a different start time, and would take a live process
// for a dead one whose pid was reused.
func processStatus(pid int) (start uint64, exited bool) {
	p := strconv.Itoa(pid)
	b, err := os.ReadFile("/proc/" + p + "/task/" + p + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); the start time is field 22.
	if len(fields) < 20 {
		return 0, false
	}
	start, _ = strconv.ParseUint(string(fields[19]), 10, 64)
	return start, string(fields[0]) == "Z" || string(fields[0]) == "X"
}

// placeholderFlags are the extra flags of the mapping Close leaves in a
// segment's place: it reserves no swap or memory.
const placeholderFlags = unix.MAP_NORESERVE

// selfStart returns this process's start time (see processStatus). It finds
// its own entry in /proc through the /proc/self link, which names the
// process as /proc's PID namespace sees it: in another PID namespace
// (a container that shares the host's /proc, or unshare --pid without
// --mount-proc) os.Getpid is a different number, or someone else's.
func selfStart() uint64 {
	if p, err := os.Readlink("/proc/self"); err == nil {
		if pid, err := strconv.Atoi(p); err == nil {
			return processStart(pid)
		}
	}
	return processStart(os.Getpid())
}

// pidNamespace returns the inode of this process's PID namespace, which
// names the namespace, or 0 if /proc does not tell.
var pidNamespace = sync.OnceValue(func() uint64 {
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/pid", &st) != nil {
		return 0
	}
	return st.Ino
})
