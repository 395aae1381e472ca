//go:build darwin

package processshared

import (
	"os"

	"golang.org/x/sys/unix"
)

// shmDir is where named segments live; see memfd_none.go.
const shmDir = "/tmp/processshared"

// symlinkErrno is what open(2) with O_NOFOLLOW returns for a symbolic link.
const symlinkErrno = unix.ELOOP

// processStatus returns the start time of process pid in microseconds
// since the epoch (p_starttime of sysctl kern.proc.pid; 0 if it cannot be
// read), and whether it has exited and awaits reaping (p_stat SZOMB).
func processStatus(pid int) (start uint64, exited bool) {
	const szomb = 5 // SZOMB, <sys/proc.h>
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(kp.Proc.P_pid) != pid {
		return 0, false
	}
	t := kp.Proc.P_starttime
	return uint64(t.Sec)*1e6 + uint64(t.Usec), kp.Proc.P_stat == szomb
}

// placeholderFlags are the extra flags of the mapping Close leaves in a
// segment's place (none: the system has no MAP_NORESERVE, and untouched
// anonymous pages cost nothing).
const placeholderFlags = 0

// selfStart returns this process's start time (see processStatus).
func selfStart() uint64 { return processStart(os.Getpid()) }

// pidNamespace returns 0: the system has no PID namespaces.
func pidNamespace() uint64 { return 0 }
